#include "auth/claim_query.hpp"

#include <fmt/format.h>

namespace obsgw::auth {

namespace {
void collect(simdjson::dom::element v, std::vector<std::string>& out, bool nested) {
  switch (v.type()) {
    case simdjson::dom::element_type::STRING:
      out.emplace_back(v.get_string().value_unsafe());
      break;
    case simdjson::dom::element_type::INT64:
      out.push_back(std::to_string(v.get_int64().value_unsafe()));
      break;
    case simdjson::dom::element_type::UINT64:
      out.push_back(std::to_string(v.get_uint64().value_unsafe()));
      break;
    case simdjson::dom::element_type::BOOL:
      if (!nested) out.emplace_back(v.get_bool().value_unsafe() ? "true" : "false");
      break;
    case simdjson::dom::element_type::ARRAY:
      if (!nested) {
        simdjson::dom::array items = v.get_array().value_unsafe();
        for (simdjson::dom::element item : items) collect(item, out, true);
      }
      break;
    default:
      break;
  }
}
}  // namespace

std::vector<std::string> claim_values(simdjson::dom::element payload, std::string_view path, bool* was_string) {
  std::vector<std::string> out;
  simdjson::dom::element at;
  if (was_string) *was_string = false;
  if (payload[path].get(at) == simdjson::SUCCESS) {  // the whole path as one key first
    if (was_string) *was_string = at.is_string();
    collect(at, out, false);
    return out;
  }
  at = payload;
  while (!path.empty()) {
    auto dot = path.find('.');
    std::string_view key = path.substr(0, dot);
    simdjson::dom::object obj;
    if (at.get_object().get(obj) != simdjson::SUCCESS || obj[key].get(at) != simdjson::SUCCESS) return out;
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  if (was_string) *was_string = at.is_string();
  collect(at, out, false);
  return out;
}

std::vector<std::string> claim_values(std::string_view payload_json, std::string_view path) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(payload_json.data(), payload_json.size(), true).get(doc) != simdjson::SUCCESS) return {};
  return claim_values(doc, path);
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto space = s.find(' ');
    if (space != 0) out.emplace_back(s.substr(0, space));
    if (space == std::string_view::npos) break;
    s.remove_prefix(space + 1);
  }
  return out;
}

}  // namespace obsgw::auth
