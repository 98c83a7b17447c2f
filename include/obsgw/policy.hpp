#pragma once
/// @file
/// Composable request policies and the phase each runs in.
///
/// A request passes through fixed phases (docs/pipeline.md draws the chart):
///   route → admit → authenticate → authorize → resolve_tenant → limit → transform → sign → forward → complete
/// A route lists its policies; the gateway orders them by phase (keeping the listed order within a phase).
/// Any policy may answer the client itself; `on_complete` of every policy that ran is called in all cases.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <asio/awaitable.hpp>

#include "obsgw/exchange.hpp"
#include "obsgw/http_message.hpp"
#include "obsgw/verdict.hpp"

namespace obsgw {

enum class Phase : unsigned char {
  admit,           ///< refuse early from what the connection shows (IP rules, limits keyed by IP, route or header),
                   ///< before any identity work is spent on the request
  authenticate,    ///< establish Exchange::identity
  authorize,       ///< decide whether that identity may use the route (scopes, groups, roles, claims)
  resolve_tenant,  ///< establish Exchange::tenants
  limit,           ///< admit or refuse (rate limits, quotas, IP rules)
  transform,       ///< edit the upstream request (headers, path)
  sign,            ///< sign what is forwarded; runs last so that it sees the final request
};

const char* to_string(Phase p) noexcept;

/// A policy object is built once (from config or code), is immutable afterwards and is shared by every
/// io thread: any mutable state inside it must be thread-safe or per thread.
class Policy {
 public:
  virtual ~Policy() = default;

  virtual Phase phase() const noexcept = 0;
  /// Short name for logs and metrics ("jwt", "headers", ...).
  virtual std::string_view name() const noexcept = 0;

  /// The synchronous step, run on the io thread. Decide from local state and return proceed or reject;
  /// return Verdict::suspend() when asynchronous work is needed, and the pipeline then awaits
  /// on_request_async(). Must not block.
  virtual Verdict on_request(Exchange& ex) const = 0;

  /// The asynchronous step, awaited only after on_request() returned suspend().
  virtual asio::awaitable<Verdict> on_request_async(Exchange& ex) const;

  /// When non-zero, the whole request body (at most this many bytes, else 413) is read and stored in
  /// Exchange::buffered_body() before on_request() runs.
  virtual std::size_t body_limit() const noexcept { return 0; }
  /// With body_limit(): whether the policy will read this request's body SHA-256
  /// (Exchange::buffered_body_sha256()), which is then computed piece by piece as the body arrives rather than in
  /// a pass over it afterwards. Asked with the request head, before the body is read.
  virtual bool needs_body_sha256(const Exchange&) const noexcept { return false; }

  /// Called with the response head before it is sent to the client (upstream answers and the
  /// gateway's own rejections alike).
  virtual void on_response(Exchange&, ResponseHead&) const {}

  /// Called once the exchange is over, whatever its outcome. Must not throw.
  virtual void on_complete(const Exchange&) const noexcept {}

  /// Request headers this policy reads from the client and then removes or replaces itself (the tenant
  /// resolver's X-Scope-OrgID, an authenticator's identity headers). A forward-auth route leaves these to the
  /// policy instead of removing them before policies run.
  virtual std::vector<std::string> owned_request_headers() const { return {}; }
};

/// Establishes who is calling (Exchange::identity) or rejects with 401.
class Authenticator : public Policy {
 public:
  Phase phase() const noexcept final { return Phase::authenticate; }
};

/// Decides whether the authenticated identity may use the route, or rejects with 403.
class Authorizer : public Policy {
 public:
  Phase phase() const noexcept final { return Phase::authorize; }
};

/// Establishes the tenant(s) the request acts for (Exchange::tenants) or rejects with 403.
class TenantResolver : public Policy {
 public:
  Phase phase() const noexcept final { return Phase::resolve_tenant; }
};

/// Admits the request or rejects it with 429. Runs in Phase::limit by default; a limiter whose keys need no
/// identity may run in Phase::admit instead, so that a flood is refused before tokens are verified.
class RateLimiter : public Policy {
 public:
  Phase phase() const noexcept override { return Phase::limit; }
};

/// Signs the request that goes upstream.
class Signer : public Policy {
 public:
  Phase phase() const noexcept final { return Phase::sign; }
};

}  // namespace obsgw
