#pragma once
/// @file
/// An ordered list of HTTP header fields with case-insensitive lookup.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace obsgw {

/// ASCII case-insensitive comparison, as HTTP field names and tokens need.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// One header field as it appears on the wire (value without surrounding whitespace).
struct HeaderField {
  std::string name;
  std::string value;
};

/// Header fields in arrival order. Names compare case-insensitively; duplicates are kept.
class Headers {
 public:
  using const_iterator = std::vector<HeaderField>::const_iterator;

  /// Value of the first field named `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t count(std::string_view name) const noexcept;

  /// Appends a field (keeps existing ones of the same name).
  void add(std::string_view name, std::string_view value);
  /// Replaces every field of that name with one field.
  void set(std::string_view name, std::string_view value);
  /// Removes every field of that name; returns how many were removed.
  std::size_t remove(std::string_view name);
  /// Removes every field for which `pred(field)` is true.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    std::size_t before = fields_.size();
    std::erase_if(fields_, pred);
    return before - fields_.size();
  }

  const_iterator begin() const noexcept { return fields_.begin(); }
  const_iterator end() const noexcept { return fields_.end(); }
  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  void clear() noexcept { fields_.clear(); }
  void reserve(std::size_t n) { fields_.reserve(n); }

 private:
  std::vector<HeaderField> fields_;
};

}  // namespace obsgw
