#include "config/secrets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace obsgw::config {

std::string read_secret_value(const ConfigNode& n, std::string_view file_key, std::string_view env_key, ConfigProblems& p) {
  auto file = n.find(file_key);
  auto env = n.find(env_key);
  if (file && env) p.add(n.path(), fmt::format("give either {} or {}, not both", file_key, env_key));
  if (file) {
    std::string path = n.get_string(file_key, "", p);
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      p.add(file->path(), fmt::format("cannot read \"{}\"", path));
      return {};
    }
    std::stringstream ss;
    ss << f.rdbuf();
    std::string secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) p.add(file->path(), fmt::format("\"{}\" is empty", path));
    return secret;
  }
  if (env) {
    std::string name = n.get_string(env_key, "", p);
    const char* value = std::getenv(name.c_str());
    if (!value || !*value) p.add(env->path(), fmt::format("environment variable \"{}\" is not set", name));
    return value ? value : "";
  }
  return {};
}

}  // namespace obsgw::config
