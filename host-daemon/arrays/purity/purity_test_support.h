// Test support: a FakeFlashArray with a throw-away certificate and a token file, and helpers.
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>

#include "host-daemon/arrays/purity/rest_client.h"
#include "tests/purity/fake_flasharray.h"
#include "tests/purity/test_certificate.h"

namespace qb::arrays::purity {

inline constexpr const char* kTestApiToken = "0f2e2884-9486-c6c2-438c-f50418f2aac3-test";

struct SimulatedArray {
  qb::testing::TestCertificate certificate;
  qb::testing::FakeFlashArray array{certificate.cert_file(), certificate.key_file(), kTestApiToken};

  RestClientOptions Options() const {
    RestClientOptions options;
    options.host = "127.0.0.1";
    options.port = array.port();
    options.ca_file = certificate.cert_file();
    return options;
  }

  // Writes `content` to a file in the certificate's temp dir with `mode`; returns its path.
  std::string WriteFile(const std::string& name, const std::string& content, mode_t mode) const {
    const std::string path = certificate.dir() + "/" + name;
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
};

}  // namespace qb::arrays::purity
