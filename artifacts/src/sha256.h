// SHA-256 over OpenSSL, private to qm_artifacts (OpenSSL stays out of public headers).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <string>

#include "qianmian/core/status.h"

namespace qm::artifacts {

// An OpenSSL SHA-256 context.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    QM_CHECK(ctx_ != nullptr);
    QM_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n) { QM_CHECK(EVP_DigestUpdate(ctx_, data, n) == 1); }
  void Update(const std::string& s) { Update(s.data(), s.size()); }
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    QM_CHECK(EVP_DigestFinal_ex(ctx_, digest, &len) == 1);
    static const char kHex[] = "0123456789abcdef";
    std::string out(2 * len, '0');
    for (unsigned int i = 0; i < len; ++i) {
      out[2 * i] = kHex[digest[i] >> 4];
      out[2 * i + 1] = kHex[digest[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace qm::artifacts
