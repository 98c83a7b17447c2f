#include "config/secrets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace obsgw::config {

std::string read_secret_file(const std::string& path, const std::string& where, ConfigProblems& p) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    p.add(where, fmt::format("cannot read \"{}\"", path));
    return {};
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string secret = ss.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) p.add(where, fmt::format("\"{}\" is empty", path));
  return secret;
}

std::string read_secret_env(const std::string& name, const std::string& where, ConfigProblems& p) {
  const char* value = std::getenv(name.c_str());
  if (!value || !*value) p.add(where, fmt::format("environment variable \"{}\" is not set", name));
  return value ? value : "";
}

std::string read_secret_value(const ConfigNode& n, std::string_view file_key, std::string_view env_key, ConfigProblems& p) {
  auto file = n.find(file_key);
  auto env = n.find(env_key);
  if (file && env) p.add(n.path(), fmt::format("give either {} or {}, not both", file_key, env_key));
  if (file) return read_secret_file(n.get_string(file_key, "", p), file->path(), p);
  if (env) return read_secret_env(n.get_string(env_key, "", p), env->path(), p);
  return {};
}

}  // namespace obsgw::config
