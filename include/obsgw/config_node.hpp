#pragma once
/// @file
/// A read-only view of one value of a parsed JSON configuration, with its path for error messages
/// (`routes[2].policies[0].request.set`). Custom policy factories read their settings through it.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace obsgw {

namespace detail {
struct JsonNode;
}

/// Collects every problem found while reading a config, each prefixed with its path.
class ConfigProblems {
 public:
  void add(std::string_view path, std::string_view message);
  bool empty() const noexcept { return list_.empty(); }
  const std::vector<std::string>& list() const noexcept { return list_; }

 private:
  std::vector<std::string> list_;
};

class ConfigNode {
 public:
  enum class Type : unsigned char { null, boolean, number, string, array, object };

  /// Parses JSON text. Throws std::runtime_error with the parser's message (and `source`) when malformed.
  static ConfigNode parse(std::string_view json, std::string_view source = "config");

  Type type() const noexcept;
  const std::string& path() const noexcept { return path_; }
  const char* type_name() const noexcept;

  bool is_object() const noexcept { return type() == Type::object; }
  bool is_array() const noexcept { return type() == Type::array; }
  bool is_string() const noexcept { return type() == Type::string; }

  /// The document this node belongs to, for factories that read a shared top-level section (such as "redis").
  ConfigNode document() const { return ConfigNode(root_, root_.get(), ""); }

  /// Member of an object (nullopt when absent or when this is not an object).
  std::optional<ConfigNode> find(std::string_view key) const;
  /// Members of an object in document order.
  std::vector<std::pair<std::string, ConfigNode>> members() const;
  /// Elements of an array.
  std::vector<ConfigNode> elements() const;

  std::string_view string_value() const noexcept;  ///< "" unless a string
  bool bool_value() const noexcept;
  double number_value() const noexcept;
  bool is_integer() const noexcept;  ///< a number with no fraction that fits in int64
  std::int64_t int_value() const noexcept;

  /// Records "unknown key" for every member not in `allowed`. Records a type error when not an object.
  bool expect_object(std::initializer_list<std::string_view> allowed, ConfigProblems& problems) const;

  // Typed readers of optional members: they record a problem (and return the fallback) on a wrong type.
  std::string get_string(std::string_view key, std::string fallback, ConfigProblems& problems) const;
  bool get_bool(std::string_view key, bool fallback, ConfigProblems& problems) const;
  /// Integer in [min, max].
  std::int64_t get_int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max,
                       ConfigProblems& problems) const;
  std::vector<std::string> get_string_list(std::string_view key, ConfigProblems& problems) const;

 private:
  ConfigNode(std::shared_ptr<const detail::JsonNode> root, const detail::JsonNode* node, std::string path);
  std::shared_ptr<const detail::JsonNode> root_;
  const detail::JsonNode* node_;
  std::string path_;
};

}  // namespace obsgw
