#pragma once
// Secrets in the config are named, never written there: a file or an environment variable.

#include <string>
#include <string_view>

#include "obsgw/config_node.hpp"

namespace obsgw::config {

// A secret from a file (trailing line breaks dropped) or an environment variable; records a problem at `where`
// when it is unreadable, empty or unset.
std::string read_secret_file(const std::string& path, const std::string& where, ConfigProblems& p);
std::string read_secret_env(const std::string& name, const std::string& where, ConfigProblems& p);

// Reads the secret that `file_key` (a file; trailing line breaks dropped) or `env_key` (an environment variable)
// names in `n`; records a problem when both are given, or the one given is unreadable, empty or unset.
// Returns "" when neither key is present.
std::string read_secret_value(const ConfigNode& n, std::string_view file_key, std::string_view env_key, ConfigProblems& p);

}  // namespace obsgw::config
