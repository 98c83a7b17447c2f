#pragma once
/// @file
/// A condition on a token's claims, used by authenticators (what every token of a provider must satisfy, else
/// 401) and by the authorize policy (what a route requires, else 403).

#include <string>
#include <vector>

namespace obsgw {

struct ClaimRule {
  std::string claim;  ///< dotted path into the claims ("realm_access.roles"); a key containing dots also works
  /// The claim (a string, or an array of strings; the "scope"/"scp" string counts word by word, no other claim
  /// is split) must hold every one of these.
  std::vector<std::string> contains;
  /// The claim (or one element of it) must equal one of these.
  std::vector<std::string> one_of;
};

}  // namespace obsgw
