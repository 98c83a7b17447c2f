#pragma once
/// @file
/// An ordered list of HTTP header fields with case-insensitive lookup.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace obsgw {

namespace http {
class RequestParser;
}

/// ASCII case-insensitive comparison, as HTTP field names and tokens need. Inline: it runs for every header.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    unsigned char lx = x | 0x20;
    if (lx != (y | 0x20) || lx < 'a' || lx > 'z') return false;
  }
  return true;
}

/// An owned header field (for headers configured or built by policies).
struct HeaderField {
  std::string name;
  std::string value;
};

/// A header field inside a Headers list. The views stay valid until the list is changed.
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

/// Header fields in arrival order. Names compare case-insensitively; duplicates are kept.
///
/// All names and values live in one buffer that clear() keeps, so a Headers object reused for the next request
/// on a connection costs no allocation.
class Headers {
 public:
  class const_iterator;

  /// Value of the first field named `name`, if any.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t count(std::string_view name) const noexcept;

  /// Appends a field (keeps existing ones of the same name).
  void add(std::string_view name, std::string_view value);
  /// Replaces every field of that name with one field (at the position of the first).
  void set(std::string_view name, std::string_view value);
  /// Removes every field of that name; returns how many were removed.
  std::size_t remove(std::string_view name);
  /// Removes every field named one of `names`, in one pass over the fields; returns how many were removed.
  std::size_t remove_all(std::span<const std::string_view> names);
  /// Removes every field for which `pred(HeaderView)` is true.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    std::size_t before = entries_.size();
    auto first = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return pred(view(e)); });
    if (first == entries_.end()) return 0;
    entries_.erase(std::remove_if(first, entries_.end(), [&](const Entry& e) { return pred(view(e)); }), entries_.end());
    return before - entries_.size();
  }

  /// Whether `pred(HeaderView)` holds for every field the request parser did not validate itself: fields added or
  /// replaced later (by policies), which the forwarder checks before they go upstream. Stops at the first failure.
  /// The parser's mark stays with its field when others are removed or replaced, so a long validated value (a
  /// bearer token) is not scanned again for every policy that edits another header.
  template <class Pred>
  bool untrusted_all_of(Pred pred) const {
    for (const auto& e : entries_)
      if (!e.trusted && !pred(view(e))) return false;
    return true;
  }

  const_iterator begin() const noexcept;
  const_iterator end() const noexcept;
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  /// Removes every field, keeping the memory for reuse.
  void clear() noexcept {
    entries_.clear();
    arena_.clear();
  }
  /// Bytes of names and values held (including those of removed fields, until clear()).
  std::size_t byte_size() const noexcept { return arena_.size(); }
  void reserve(std::size_t fields, std::size_t bytes = 0) {
    entries_.reserve(fields);
    arena_.reserve(bytes);
  }

 private:
  // Only the parser marks fields, once it has checked every name and value: a mark set anywhere else would switch
  // off the forwarder's check for CR, LF and other bytes that could split the request upstream.
  friend class http::RequestParser;
  void mark_trusted() noexcept {
    for (auto& e : entries_) e.trusted = true;
  }

  struct Entry {
    std::uint32_t name_offset, name_size, value_offset, value_size;
    bool trusted = false;
  };
  HeaderView view(const Entry& e) const noexcept {
    return {std::string_view(arena_.data() + e.name_offset, e.name_size),
            std::string_view(arena_.data() + e.value_offset, e.value_size)};
  }
  Entry store(std::string_view name, std::string_view value);

  std::string arena_;
  std::vector<Entry> entries_;

 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = HeaderView;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = HeaderView;
    const_iterator() = default;
    HeaderView operator*() const noexcept { return owner_->view(*it_); }
    const_iterator& operator++() noexcept {
      ++it_;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto copy = *this;
      ++it_;
      return copy;
    }
    bool operator==(const const_iterator& o) const noexcept { return it_ == o.it_; }

   private:
    friend class Headers;
    const_iterator(const Headers* owner, std::vector<Entry>::const_iterator it) : owner_(owner), it_(it) {}
    const Headers* owner_ = nullptr;
    std::vector<Entry>::const_iterator it_;
  };
};

inline Headers::const_iterator Headers::begin() const noexcept { return const_iterator(this, entries_.begin()); }
inline Headers::const_iterator Headers::end() const noexcept { return const_iterator(this, entries_.end()); }

}  // namespace obsgw
