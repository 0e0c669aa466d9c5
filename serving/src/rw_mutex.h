// A reader-writer mutex that lets a waiting writer in ahead of new readers (glibc's default
// rwlock, behind std::shared_mutex, prefers readers: a steady stream of requests would starve
// Reload and the catalogue updates). Works with std::shared_lock / std::unique_lock.
#pragma once

#include <pthread.h>

#include "qianmian/core/status.h"

namespace qm::serving {

class WriterFirstMutex {
 public:
  WriterFirstMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    QM_CHECK(pthread_rwlock_init(&lock_, &attr) == 0);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriterFirstMutex() { pthread_rwlock_destroy(&lock_); }
  WriterFirstMutex(const WriterFirstMutex&) = delete;
  WriterFirstMutex& operator=(const WriterFirstMutex&) = delete;

  void lock() { QM_CHECK(pthread_rwlock_wrlock(&lock_) == 0); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { QM_CHECK(pthread_rwlock_rdlock(&lock_) == 0); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace qm::serving
