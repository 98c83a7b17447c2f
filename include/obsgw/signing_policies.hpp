#pragma once
/// @file
/// The request-signature scheme of request_signature.hpp as policies: a Signer for what the gateway forwards,
/// and an Authenticator for agents that sign what they send.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/policy.hpp"
#include "obsgw/request_signature.hpp"

namespace obsgw {

struct RequestSignerOptions {
  std::shared_ptr<const SigningKey> key;
  /// Request headers to sign (as the upstream receives them), e.g. "x-scope-orgid", "content-type". Headers the
  /// proxy frames itself (Host, Content-Length, X-Forwarded-*) cannot be signed.
  std::vector<std::string> headers;
  /// The body must be hashed before the head is sent, so it is read whole first: larger bodies get 413.
  std::size_t max_body_bytes = 10u << 20;
};

/// Runs in Phase::sign, after every other policy edited the request. The signed target is the path and query
/// the upstream receives (its URL's base path included).
std::shared_ptr<const Signer> make_request_signer(RequestSignerOptions options);

struct SignedClient {
  std::shared_ptr<const SigningKey> key;  ///< the client signs with this id and secret
  std::string subject;                    ///< Identity::subject (default: the key id)
  std::vector<std::string> tenants;
  std::vector<std::string> scopes;
  std::vector<std::string> groups;
};

struct HmacAuthenticatorOptions {
  std::vector<SignedClient> clients;
  std::chrono::seconds window{300};  ///< accepted clock difference, both ways
  /// Refuse a signature seen before within the window (one process; a fleet needs its own replay store).
  bool reject_replays = true;
  std::size_t max_body_bytes = 10u << 20;
};

/// Verifies X-Gateway-Signature on the request as the client sent it (path before any rewrite), sets the
/// identity (method "hmac", client_id = key id), removes the signature headers. 401 invalid_signature otherwise.
std::shared_ptr<const Authenticator> make_hmac_authenticator(HmacAuthenticatorOptions options);

}  // namespace obsgw
