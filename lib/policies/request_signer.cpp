#include <charconv>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "obsgw/router.hpp"
#include "obsgw/signing_policies.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {

namespace {

class RequestSigner final : public Signer {
 public:
  explicit RequestSigner(RequestSignerOptions o) : options_(std::move(o)) {
    if (!options_.key) throw std::invalid_argument("a signer needs a key");
    if (options_.max_body_bytes == 0) throw std::invalid_argument("max_body_bytes must be > 0");
    for (auto& h : options_.headers) {
      for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!http::is_token(h)) throw std::invalid_argument(fmt::format("\"{}\" is not a header name", h));
      if (proxy::is_proxy_managed(h) || h.starts_with("x-forwarded-") || h == "forwarded")
        throw std::invalid_argument(fmt::format("\"{}\" is written by the proxy after signing and cannot be signed", h));
      for (auto own : kSignatureHeaders)
        if (iequals(h, own)) throw std::invalid_argument(fmt::format("\"{}\" is part of the signature itself", h));
      names_ += (names_.empty() ? "" : ";") + h;
    }
  }

  std::string_view name() const noexcept override { return "sign"; }
  std::size_t body_limit() const noexcept override { return options_.max_body_bytes; }
  bool needs_body_sha256(const Exchange&) const noexcept override { return true; }

  Verdict on_request(Exchange& ex) const override {
    RequestHead& req = ex.request();
    req.headers.remove_all(kSignatureHeaders);
    thread_local std::string target;  // per thread: no allocation per request
    target.clear();
    if (ex.route() && ex.route()->forwarder) target.append(ex.route()->forwarder->path_prefix());
    target.append(req.path);
    if (!req.query.empty()) target.append(1, '?').append(req.query);
    const std::string* body = ex.buffered_body();
    // Most signed requests without a body are GETs: their digest is a constant. A body was hashed as it arrived.
    static const std::string kEmptyDigest = sha256_hex({});
    const std::string* streamed = ex.buffered_body_sha256();
    std::string computed;  // only for a body that was not hashed as it arrived
    const std::string_view digest =
        !body || body->empty() ? kEmptyDigest : streamed ? *streamed : std::string_view(computed = sha256_hex(*body));
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    thread_local std::string canonical, signature;
    canonical_signature_string(canonical, req.method, target, now, options_.key->id(), options_.headers, req.headers,
                               digest);
    options_.key->sign(canonical, signature);
    char now_text[24];
    const auto now_end = std::to_chars(now_text, now_text + sizeof now_text, now).ptr;
    // Every earlier copy was removed above, so adding is setting.
    req.headers.add(kSignatureTimestampHeader, std::string_view(now_text, static_cast<std::size_t>(now_end - now_text)));
    req.headers.add(kSignatureKeyIdHeader, options_.key->id());
    req.headers.add(kSignedHeadersHeader, names_);
    req.headers.add(kContentSha256Header, digest);
    req.headers.add(kSignatureHeader, signature);
    return Verdict::proceed();
  }

 private:
  RequestSignerOptions options_;
  std::string names_;
};

}  // namespace

std::shared_ptr<const Signer> make_request_signer(RequestSignerOptions options) {
  return std::make_shared<RequestSigner>(std::move(options));
}

}  // namespace obsgw
