// A throw-away self-signed certificate for 127.0.0.1, made with the openssl CLI in a fresh
// mktemp directory that is removed when the object dies. For tests only.
#pragma once

#include <string>

namespace qb::testing {

class TestCertificate {
 public:
  // Throws std::runtime_error when openssl fails (a test setup failure).
  TestCertificate();
  ~TestCertificate();
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;

  const std::string& dir() const { return dir_; }
  std::string cert_file() const { return dir_ + "/cert.pem"; }  // also the CA file to trust
  std::string key_file() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
};

}  // namespace qb::testing
