#pragma once
/// @file
/// What a policy decides about a request.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/headers.hpp"

namespace obsgw {

/// A refusal: the status, a stable machine-readable code and a human message, sent to the client as
/// `{"error": code, "message": message, <details>, "request_id": ...}`, plus any headers the refusal needs
/// (`WWW-Authenticate`, `Retry-After`, ...). Details are further members for programs (the limit that was hit,
/// seconds to wait), so that clients need not parse the message.
struct Rejection {
  /// One member of the JSON body: its name and its value already in JSON (a quoted string or a number).
  struct Detail {
    std::string name;
    std::string json;
  };
  int status = 403;
  std::string code;
  std::string message;
  std::vector<HeaderField> headers;
  std::vector<Detail> details;
};

/// The outcome of a policy's synchronous step. Proceeding and suspending cost no allocation;
/// only a rejection carries data.
class Verdict {
 public:
  enum class Kind : unsigned char { proceed, reject, suspend };

  /// Go on with the next policy.
  static Verdict proceed() noexcept { return Verdict(Kind::proceed); }
  /// The policy needs asynchronous work: the pipeline will `co_await Policy::on_request_async`.
  static Verdict suspend() noexcept { return Verdict(Kind::suspend); }
  /// Answer the client now with `status` and a JSON error body.
  static Verdict reject(int status, std::string_view code, std::string_view message);

  /// Adds a header to a rejection (no effect on other kinds).
  Verdict& with_header(std::string_view name, std::string_view value) &;
  Verdict&& with_header(std::string_view name, std::string_view value) &&;
  /// Adds a member to a rejection's JSON body: a string, or an integer. Names other than "error", "message"
  /// and "request_id", which the body always has.
  Verdict& with_detail(std::string_view name, std::string_view value) &;
  Verdict&& with_detail(std::string_view name, std::string_view value) &&;
  Verdict& with_detail(std::string_view name, long long value) &;
  Verdict&& with_detail(std::string_view name, long long value) &&;

  Kind kind() const noexcept { return kind_; }
  bool proceeds() const noexcept { return kind_ == Kind::proceed; }
  bool rejects() const noexcept { return kind_ == Kind::reject; }
  bool suspends() const noexcept { return kind_ == Kind::suspend; }
  /// The rejection; only valid when rejects().
  const Rejection& rejection() const noexcept { return *rejection_; }

 private:
  explicit Verdict(Kind k) noexcept : kind_(k) {}
  Kind kind_;
  std::unique_ptr<Rejection> rejection_;
};

}  // namespace obsgw
