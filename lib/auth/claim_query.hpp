#pragma once
// Reading claims by a dotted path ("realm_access.roles", "tenant_id") from a verified token's payload, as the
// tenant resolver, identity extraction and claim rules need them.

#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace obsgw::auth {

// Values at `path`: a string gives itself, an array its string (and number) elements, a number or boolean its
// JSON text. An absent path or any other type gives nothing. A key that itself contains dots (as some
// providers use, "https://example.com/tenant") is found when the whole path names it.
// `was_string` (optional) tells whether the claim was a single JSON string (not an array).
std::vector<std::string> claim_values(simdjson::dom::element payload, std::string_view path, bool* was_string = nullptr);

// The same from JSON text, with a parser kept per thread (the text is copied to add simdjson's padding).
std::vector<std::string> claim_values(std::string_view payload_json, std::string_view path);

// Splits a space-separated claim ("scope") into words.
std::vector<std::string> split_words(std::string_view text);

}  // namespace obsgw::auth
