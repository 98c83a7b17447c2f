#pragma once
// Checks the config loaders make on files a config names, so that a missing file is reported with its key path
// when the config is loaded, not when a request needs it.

#include <fstream>
#include <string>

namespace obsgw::config {

inline bool readable(const std::string& path) {
  std::ifstream f(path);
  return f.good();
}

}  // namespace obsgw::config
