#include "obsgw/headers.hpp"

#include <algorithm>

#include "http/char_classes.hpp"

namespace obsgw {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (http::ascii_lower(a[i]) != http::ascii_lower(b[i])) return false;
  return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const auto& f : fields_)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

std::size_t Headers::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const auto& f : fields_) n += iequals(f.name, name) ? 1 : 0;
  return n;
}

void Headers::add(std::string_view name, std::string_view value) {
  fields_.push_back(HeaderField{std::string(name), std::string(value)});
}

void Headers::set(std::string_view name, std::string_view value) {
  auto match = [&](const HeaderField& f) { return iequals(f.name, name); };
  auto first = std::find_if(fields_.begin(), fields_.end(), match);
  if (first == fields_.end()) {
    add(name, value);
    return;
  }
  first->value.assign(value);
  fields_.erase(std::remove_if(std::next(first), fields_.end(), match), fields_.end());
}

std::size_t Headers::remove(std::string_view name) {
  return remove_if([&](const HeaderField& f) { return iequals(f.name, name); });
}

}  // namespace obsgw
