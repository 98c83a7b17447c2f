#include "obsgw/config_node.hpp"

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

namespace obsgw {

namespace detail {
struct JsonNode {
  ConfigNode::Type type = ConfigNode::Type::null;
  bool boolean = false;
  double number = 0;
  bool integer = false;
  std::int64_t int_value = 0;
  std::string string;
  std::vector<JsonNode> array;
  std::vector<std::pair<std::string, JsonNode>> object;
};
}  // namespace detail

namespace {
using detail::JsonNode;

void convert(simdjson::dom::element e, JsonNode& out, const std::string& path) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::ARRAY: {
      out.type = ConfigNode::Type::array;
      std::size_t i = 0;
      simdjson::dom::array arr = e.get_array().value_unsafe();  // keep it alive for the loop
      for (auto child : arr) {
        out.array.emplace_back();
        convert(child, out.array.back(), fmt::format("{}[{}]", path, i++));
      }
      break;
    }
    case T::OBJECT: {
      out.type = ConfigNode::Type::object;
      std::set<std::string_view> seen;
      simdjson::dom::object obj = e.get_object().value_unsafe();
      for (auto field : obj) {
        std::string child_path = path.empty() ? std::string(field.key) : path + "." + std::string(field.key);
        if (!seen.insert(field.key).second) throw std::runtime_error(fmt::format("{}: duplicate key", child_path));
        out.object.emplace_back(std::string(field.key), JsonNode{});
        convert(field.value, out.object.back().second, child_path);
      }
      break;
    }
    case T::INT64:
      out.type = ConfigNode::Type::number;
      out.int_value = e.get_int64().value_unsafe();
      out.number = static_cast<double>(out.int_value);
      out.integer = true;
      break;
    case T::UINT64:
      out.type = ConfigNode::Type::number;
      out.number = static_cast<double>(e.get_uint64().value_unsafe());
      break;
    case T::DOUBLE: {
      out.type = ConfigNode::Type::number;
      out.number = e.get_double().value_unsafe();
      double ip;
      if (std::modf(out.number, &ip) == 0.0 && std::fabs(out.number) < 9.0e15) {
        out.integer = true;
        out.int_value = static_cast<std::int64_t>(out.number);
      }
      break;
    }
    case T::STRING:
      out.type = ConfigNode::Type::string;
      out.string = std::string(e.get_string().value_unsafe());
      break;
    case T::BOOL:
      out.type = ConfigNode::Type::boolean;
      out.boolean = e.get_bool().value_unsafe();
      break;
    case T::NULL_VALUE:
      out.type = ConfigNode::Type::null;
      break;
  }
}
}  // namespace

void ConfigProblems::add(std::string_view path, std::string_view message) {
  list_.push_back(path.empty() ? std::string(message) : fmt::format("{}: {}", path, message));
}

ConfigNode::ConfigNode(std::shared_ptr<const detail::JsonNode> root, const detail::JsonNode* node, std::string path)
    : root_(std::move(root)), node_(node), path_(std::move(path)) {}

ConfigNode ConfigNode::parse(std::string_view json, std::string_view source) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  auto err = parser.parse(padded).get(doc);
  if (err) throw std::runtime_error(fmt::format("{}: not valid JSON: {}", source, simdjson::error_message(err)));
  auto root = std::make_shared<JsonNode>();
  convert(doc, *root, "");
  const JsonNode* p = root.get();
  return ConfigNode(std::move(root), p, "");
}

ConfigNode::Type ConfigNode::type() const noexcept { return node_->type; }

const char* ConfigNode::type_name() const noexcept {
  switch (type()) {
    case Type::null: return "null";
    case Type::boolean: return "a boolean";
    case Type::number: return "a number";
    case Type::string: return "a string";
    case Type::array: return "an array";
    case Type::object: return "an object";
  }
  return "?";
}

std::optional<ConfigNode> ConfigNode::find(std::string_view key) const {
  if (node_->type != Type::object) return std::nullopt;
  for (const auto& [k, v] : node_->object)
    if (k == key) return ConfigNode(root_, &v, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
  return std::nullopt;
}

std::vector<std::pair<std::string, ConfigNode>> ConfigNode::members() const {
  std::vector<std::pair<std::string, ConfigNode>> out;
  if (node_->type != Type::object) return out;
  for (const auto& [k, v] : node_->object) out.emplace_back(k, ConfigNode(root_, &v, path_.empty() ? k : path_ + "." + k));
  return out;
}

std::vector<ConfigNode> ConfigNode::elements() const {
  std::vector<ConfigNode> out;
  if (node_->type != Type::array) return out;
  for (std::size_t i = 0; i < node_->array.size(); ++i)
    out.push_back(ConfigNode(root_, &node_->array[i], fmt::format("{}[{}]", path_, i)));
  return out;
}

std::string_view ConfigNode::string_value() const noexcept { return node_->string; }
bool ConfigNode::bool_value() const noexcept { return node_->boolean; }
double ConfigNode::number_value() const noexcept { return node_->number; }
bool ConfigNode::is_integer() const noexcept { return node_->type == Type::number && node_->integer; }
std::int64_t ConfigNode::int_value() const noexcept { return node_->int_value; }

bool ConfigNode::expect_object(std::initializer_list<std::string_view> allowed, ConfigProblems& problems) const {
  if (type() != Type::object) {
    problems.add(path_, fmt::format("expected an object, got {}", type_name()));
    return false;
  }
  for (const auto& [k, v] : node_->object) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k;
    if (!ok) {
      std::string known;
      for (auto a : allowed) known += (known.empty() ? "" : ", ") + std::string(a);
      problems.add(path_.empty() ? k : path_ + "." + k, fmt::format("unknown key (known keys: {})", known));
    }
  }
  return true;
}

std::string ConfigNode::get_string(std::string_view key, std::string fallback, ConfigProblems& problems) const {
  auto n = find(key);
  if (!n) return fallback;
  if (!n->is_string()) {
    problems.add(n->path(), fmt::format("expected a string, got {}", n->type_name()));
    return fallback;
  }
  return std::string(n->string_value());
}

bool ConfigNode::get_bool(std::string_view key, bool fallback, ConfigProblems& problems) const {
  auto n = find(key);
  if (!n) return fallback;
  if (n->type() != Type::boolean) {
    problems.add(n->path(), fmt::format("expected true or false, got {}", n->type_name()));
    return fallback;
  }
  return n->bool_value();
}

std::int64_t ConfigNode::get_int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max,
                                 ConfigProblems& problems) const {
  auto n = find(key);
  if (!n) return fallback;
  if (!n->is_integer()) {
    problems.add(n->path(), fmt::format("expected an integer, got {}", n->type() == Type::number ? "a fraction" : n->type_name()));
    return fallback;
  }
  if (n->int_value() < min || n->int_value() > max) {
    problems.add(n->path(), fmt::format("must be between {} and {}, got {}", min, max, n->int_value()));
    return fallback;
  }
  return n->int_value();
}

std::vector<std::string> ConfigNode::get_string_list(std::string_view key, ConfigProblems& problems) const {
  std::vector<std::string> out;
  auto n = find(key);
  if (!n) return out;
  if (!n->is_array()) {
    problems.add(n->path(), fmt::format("expected an array of strings, got {}", n->type_name()));
    return out;
  }
  for (const auto& e : n->elements()) {
    if (!e.is_string()) problems.add(e.path(), fmt::format("expected a string, got {}", e.type_name()));
    else out.emplace_back(e.string_value());
  }
  return out;
}

}  // namespace obsgw
