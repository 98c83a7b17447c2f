#include "obsgw/headers.hpp"

#include <algorithm>

#include "http/char_classes.hpp"

namespace obsgw {

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const auto& e : entries_)
    if (e.name_size == name.size() && iequals(view(e).name, name)) return view(e).value;
  return std::nullopt;
}

std::size_t Headers::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const auto& e : entries_) n += (e.name_size == name.size() && iequals(view(e).name, name)) ? 1 : 0;
  return n;
}

Headers::Entry Headers::store(std::string_view name, std::string_view value) {
  // The arguments may be views into our own buffer, which appending can move: copy those first.
  const char* lo = arena_.data();
  const char* hi = lo + arena_.size();
  auto inside = [&](std::string_view v) { return !v.empty() && v.data() >= lo && v.data() < hi; };
  if (inside(name) || inside(value)) {
    std::string n(name), v(value);
    return store(n, v);
  }
  Entry e{static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(name.size()), 0,
          static_cast<std::uint32_t>(value.size()), false};
  arena_.append(name);
  e.value_offset = static_cast<std::uint32_t>(arena_.size());
  arena_.append(value);
  return e;
}

void Headers::add(std::string_view name, std::string_view value) { entries_.push_back(store(name, value)); }

void Headers::set(std::string_view name, std::string_view value) {
  std::string name_copy;
  if (!name.empty() && name.data() >= arena_.data() && name.data() < arena_.data() + arena_.size()) {
    name_copy.assign(name);  // a view into our own buffer would dangle once store() appends
    name = name_copy;
  }
  auto match = [&](const Entry& e) { return e.name_size == name.size() && iequals(view(e).name, name); };
  auto first = std::find_if(entries_.begin(), entries_.end(), match);
  if (first == entries_.end()) {
    add(name, value);
    return;
  }
  std::size_t index = static_cast<std::size_t>(first - entries_.begin());
  Entry replaced = store(name, value);
  entries_[index] = replaced;
  entries_.erase(std::remove_if(entries_.begin() + static_cast<std::ptrdiff_t>(index) + 1, entries_.end(), match),
                 entries_.end());
}

std::size_t Headers::remove(std::string_view name) {
  return remove_if([&](const HeaderView& f) { return iequals(f.name, name); });
}

std::size_t Headers::remove_all(std::span<const std::string_view> names) {
  return remove_if([&](const HeaderView& f) {
    for (auto n : names)
      if (iequals(f.name, n)) return true;
    return false;
  });
}

}  // namespace obsgw
