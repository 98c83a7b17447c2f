// OpenSSL 3 deprecates the SHA-256 primitives in favour of EVP, whose digest contexts are heap objects behind a
// provider dispatch: re-keying an HMAC through EVP_MAC copies them with an allocation each time, and costs a
// third more than a whole HMAC of a 300-byte canonical string done here on plain SHA256_CTX values, which copy
// like any struct. The primitives are the same assembly underneath.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "obsgw/request_signature.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "signing/sha256_stream.hpp"
#include "util/hex.hpp"

namespace obsgw {

namespace {

constexpr std::size_t kBlock = 64;  // SHA-256 block size

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

struct SigningKey::Pads {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

std::string sha256_hex(std::string_view data) {
  signing::Sha256Stream s;
  s.update(data);
  return s.hex_digest();
}

void canonical_signature_string(std::string& s, std::string_view method, std::string_view target,
                                std::int64_t timestamp, std::string_view key_id,
                                const std::vector<std::string>& signed_headers, const Headers& headers,
                                std::string_view body_sha256_hex) {
  s.clear();
  s.reserve(128 + target.size() + signed_headers.size() * 48);
  s.append("OBSGW-HMAC-SHA256\n");
  char digits[24];
  s.append(digits, static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, timestamp).ptr - digits));
  s.push_back('\n');
  s.append(key_id).push_back('\n');
  s.append(method).push_back('\n');
  s.append(target).push_back('\n');
  for (std::size_t i = 0; i < signed_headers.size(); ++i) s.append(i ? ";" : "").append(signed_headers[i]);
  s.push_back('\n');
  for (const auto& name : signed_headers) {
    s.append(name).push_back(':');
    bool first = true;
    for (const auto& f : headers) {
      if (!iequals(f.name, name)) continue;
      if (!first) s.push_back(',');
      first = false;
      s.append(trim(f.value));
    }
    s.push_back('\n');
  }
  s.append(body_sha256_hex);
}

std::string canonical_signature_string(std::string_view method, std::string_view target, std::int64_t timestamp,
                                       std::string_view key_id, const std::vector<std::string>& signed_headers,
                                       const Headers& headers, std::string_view body_sha256_hex) {
  std::string s;
  canonical_signature_string(s, method, target, timestamp, key_id, signed_headers, headers, body_sha256_hex);
  return s;
}

SigningKey::SigningKey(std::string id, std::string secret) : id_(std::move(id)), pads_(std::make_unique<Pads>()) {
  if (id_.empty()) throw std::invalid_argument("a signing key needs an id");
  for (char c : id_)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == ';' || c == ',')
      throw std::invalid_argument(fmt::format("key id \"{}\": visible ASCII only, without ';' and ','", id_));
  if (secret.size() < 32) throw std::invalid_argument(fmt::format("key \"{}\": the secret has {} bytes; at least 32 are needed", id_, secret.size()));
  // RFC 2104: a key longer than the block is hashed first; then the inner and outer blocks are the key XOR 0x36
  // and 0x5c, zero-padded.
  unsigned char key[kBlock] = {};
  if (secret.size() > kBlock) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, secret.data(), secret.size());
    SHA256_Final(key, &c);
    OPENSSL_cleanse(&c, sizeof c);  // its state is the HMAC key
  } else {
    std::memcpy(key, secret.data(), secret.size());
  }
  unsigned char inner[kBlock], outer[kBlock];
  for (std::size_t i = 0; i < kBlock; ++i) {
    inner[i] = key[i] ^ 0x36;
    outer[i] = key[i] ^ 0x5c;
  }
  SHA256_Init(&pads_->inner);
  SHA256_Update(&pads_->inner, inner, kBlock);
  SHA256_Init(&pads_->outer);
  SHA256_Update(&pads_->outer, outer, kBlock);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(inner, sizeof inner);
  OPENSSL_cleanse(outer, sizeof outer);
  OPENSSL_cleanse(secret.data(), secret.size());
}

SigningKey::~SigningKey() {
  if (pads_) OPENSSL_cleanse(pads_.get(), sizeof *pads_);
}

std::string SigningKey::sign(std::string_view text) const {
  std::string out;
  sign(text, out);
  return out;
}

void SigningKey::sign(std::string_view text, std::string& out) const {
  SHA256_CTX ctx = pads_->inner;
  unsigned char inner_digest[SHA256_DIGEST_LENGTH];
  unsigned char mac[SHA256_DIGEST_LENGTH];
  bool ok = SHA256_Update(&ctx, text.data(), text.size()) && SHA256_Final(inner_digest, &ctx);
  ctx = pads_->outer;
  ok = ok && SHA256_Update(&ctx, inner_digest, sizeof inner_digest) && SHA256_Final(mac, &ctx);
  OPENSSL_cleanse(&ctx, sizeof ctx);
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
  out.clear();
  out.reserve(7 + 64);
  out.append("sha256=");
  util::append_hex(out, mac, sizeof mac);
}

SignatureVerifier::SignatureVerifier(std::vector<std::shared_ptr<const SigningKey>> keys, std::chrono::seconds window)
    : keys_(std::move(keys)), window_(window) {
  if (keys_.empty()) throw std::invalid_argument("a signature verifier needs at least one key");
}

SignatureVerifier::Result SignatureVerifier::verify(std::string_view method, std::string_view target, const Headers& headers,
                                                    std::string_view body, std::int64_t now, std::string* key_id) const {
  return check(method, target, headers, body, {}, now, key_id);
}

SignatureVerifier::Result SignatureVerifier::verify_digest(std::string_view method, std::string_view target,
                                                           const Headers& headers, std::string_view body_sha256_hex,
                                                           std::int64_t now, std::string* key_id) const {
  return check(method, target, headers, {}, body_sha256_hex, now, key_id);
}

SignatureVerifier::Result SignatureVerifier::check(std::string_view method, std::string_view target, const Headers& headers,
                                                   std::string_view body, std::string_view body_sha256_hex,
                                                   std::int64_t now, std::string* key_id) const {
  auto signature = headers.get(kSignatureHeader);
  if (!signature) return Result::missing;
  auto ts_text = headers.get(kSignatureTimestampHeader);
  auto kid = headers.get(kSignatureKeyIdHeader);
  auto names_text = headers.get(kSignedHeadersHeader).value_or("");
  auto content = headers.get(kContentSha256Header);
  if (!ts_text || !kid || !content || headers.count(kSignatureHeader) != 1 || headers.count(kSignatureTimestampHeader) != 1 ||
      headers.count(kSignatureKeyIdHeader) != 1 || headers.count(kSignedHeadersHeader) > 1 || headers.count(kContentSha256Header) != 1)
    return Result::malformed;
  std::int64_t ts = 0;
  auto [p, ec] = std::from_chars(ts_text->data(), ts_text->data() + ts_text->size(), ts);
  if (ec != std::errc() || p != ts_text->data() + ts_text->size() || ts_text->empty()) return Result::malformed;
  std::vector<std::string> names;
  for (std::string_view rest = names_text; !rest.empty();) {
    auto semi = rest.find(';');
    std::string name(rest.substr(0, semi));
    if (name.empty() || name.size() > 64) return Result::malformed;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.push_back(std::move(name));
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
    if (rest.empty()) return Result::malformed;
  }
  if (names.size() > 32) return Result::malformed;
  const SigningKey* key = nullptr;
  for (const auto& k : keys_)
    if (k->id() == *kid) key = k.get();
  if (!key) return Result::unknown_key;
  const std::int64_t skew = ts > now ? ts - now : now - ts;
  if (skew > window_.count()) return Result::stale;
  std::string computed;
  const std::string_view digest = body_sha256_hex.empty() ? std::string_view(computed = sha256_hex(body)) : body_sha256_hex;
  if (content->size() != digest.size() || CRYPTO_memcmp(content->data(), digest.data(), digest.size()) != 0)
    return Result::body_mismatch;
  thread_local std::string canonical, expected;  // per thread: no allocation per verified request
  canonical_signature_string(canonical, method, target, ts, *kid, names, headers, digest);
  key->sign(canonical, expected);
  if (signature->size() != expected.size() || CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0)
    return Result::bad_signature;
  if (key_id) *key_id = key->id();
  return Result::ok;
}

const char* to_string(SignatureVerifier::Result r) noexcept {
  switch (r) {
    case SignatureVerifier::Result::ok: return "ok";
    case SignatureVerifier::Result::missing: return "missing";
    case SignatureVerifier::Result::malformed: return "malformed";
    case SignatureVerifier::Result::unknown_key: return "unknown_key";
    case SignatureVerifier::Result::stale: return "stale";
    case SignatureVerifier::Result::body_mismatch: return "body_mismatch";
    case SignatureVerifier::Result::bad_signature: return "bad_signature";
  }
  return "?";
}

}  // namespace obsgw
