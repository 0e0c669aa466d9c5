// Thread names for the server's threads (top -H, ps -L, /proc/PID/task/*/comm, perf --comms).
#pragma once

#include <pthread.h>

#include <string>

namespace qm::server {

// Names the calling thread (Linux keeps 15 characters); threads it starts inherit the name.
inline void NameThisThread(const std::string& name) { pthread_setname_np(pthread_self(), name.substr(0, 15).c_str()); }

}  // namespace qm::server
