#include "obsgw/request_signature.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace obsgw {

namespace {

// Fetched once: OpenSSL 3 otherwise looks algorithms up by name on every implicit use.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
EVP_MAC* hmac_mac() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

void append_hex(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t at = out.size();
  out.resize(at + 2 * n);  // one growth, then plain stores (push_back per character showed in profiles)
  char* o = out.data() + at;
  for (std::size_t i = 0; i < n; ++i) {
    o[2 * i] = kHex[p[i] >> 4];
    o[2 * i + 1] = kHex[p[i] & 15];
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::atomic<std::uint64_t> g_next_key_serial{1};

// Each io thread keys its own HMAC context once per SigningKey and re-initialises it with the same key for every
// request: keying costs two digest blocks and allocations, re-initialising costs neither.
struct ThreadMac {
  std::uint64_t serial = 0;
  EVP_MAC_CTX* ctx = nullptr;
};
struct ThreadMacs {
  std::vector<ThreadMac> entries;
  ~ThreadMacs() {
    for (auto& e : entries) EVP_MAC_CTX_free(e.ctx);
  }
};
constexpr std::size_t kThreadMacs = 64;

}  // namespace

std::string sha256_hex(std::string_view data) {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char digest[32];
  unsigned int len = 0;
  if (!ctx || !EVP_DigestInit_ex2(ctx.get(), sha256_md(), nullptr) || !EVP_DigestUpdate(ctx.get(), data.data(), data.size()) ||
      !EVP_DigestFinal_ex(ctx.get(), digest, &len))
    throw std::runtime_error("SHA-256 failed");
  std::string out;
  out.reserve(64);
  append_hex(out, digest, len);
  return out;
}

std::string canonical_signature_string(std::string_view method, std::string_view target, std::int64_t timestamp,
                                       std::string_view key_id, const std::vector<std::string>& signed_headers,
                                       const Headers& headers, std::string_view body_sha256_hex) {
  std::string s;
  s.reserve(128 + target.size() + signed_headers.size() * 48);
  s.append("OBSGW-HMAC-SHA256\n");
  fmt::format_to(std::back_inserter(s), "{}\n", timestamp);
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
  return s;
}

SigningKey::SigningKey(std::string id, std::string secret) : id_(std::move(id)), secret_(std::move(secret)) {
  if (id_.empty()) throw std::invalid_argument("a signing key needs an id");
  for (char c : id_)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == ';' || c == ',')
      throw std::invalid_argument(fmt::format("key id \"{}\": visible ASCII only, without ';' and ','", id_));
  if (secret_.size() < 32) throw std::invalid_argument(fmt::format("key \"{}\": the secret has {} bytes; at least 32 are needed", id_, secret_.size()));
  serial_ = g_next_key_serial.fetch_add(1, std::memory_order_relaxed);
}

SigningKey::~SigningKey() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

std::string SigningKey::sign(std::string_view text) const {
  thread_local ThreadMacs macs;
  EVP_MAC_CTX* ctx = nullptr;
  for (std::size_t i = 0; i < macs.entries.size(); ++i)
    if (macs.entries[i].serial == serial_) {
      ctx = macs.entries[i].ctx;
      // Least recently used goes first when the cache is full: move this one to the back.
      if (i + 1 != macs.entries.size()) std::rotate(macs.entries.begin() + static_cast<std::ptrdiff_t>(i),
                                                    macs.entries.begin() + static_cast<std::ptrdiff_t>(i) + 1, macs.entries.end());
      break;
    }
  if (!ctx) {
    ctx = EVP_MAC_CTX_new(hmac_mac());
    if (!ctx) throw std::runtime_error("HMAC context allocation failed");
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0), OSSL_PARAM_construct_end()};
    if (!EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(secret_.data()), secret_.size(), params)) {
      EVP_MAC_CTX_free(ctx);
      throw std::runtime_error("HMAC keying failed");
    }
    if (macs.entries.size() >= kThreadMacs) {  // the least recently used goes
      EVP_MAC_CTX_free(macs.entries.front().ctx);
      macs.entries.erase(macs.entries.begin());
    }
    macs.entries.push_back({serial_, ctx});
  } else if (!EVP_MAC_init(ctx, nullptr, 0, nullptr)) {  // same key again
    throw std::runtime_error("HMAC re-initialisation failed");
  }
  unsigned char mac[32];
  std::size_t len = 0;
  if (!EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(text.data()), text.size()) ||
      !EVP_MAC_final(ctx, mac, &len, sizeof mac))
    throw std::runtime_error("HMAC failed");
  std::string out = "sha256=";
  out.reserve(7 + 64);
  append_hex(out, mac, len);
  return out;
}

SignatureVerifier::SignatureVerifier(std::vector<std::shared_ptr<const SigningKey>> keys, std::chrono::seconds window)
    : keys_(std::move(keys)), window_(window) {
  if (keys_.empty()) throw std::invalid_argument("a signature verifier needs at least one key");
}

SignatureVerifier::Result SignatureVerifier::verify(std::string_view method, std::string_view target, const Headers& headers,
                                                    std::string_view body, std::int64_t now, std::string* key_id) const {
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
  const std::string digest = sha256_hex(body);
  if (content->size() != digest.size() || CRYPTO_memcmp(content->data(), digest.data(), digest.size()) != 0)
    return Result::body_mismatch;
  const std::string expected = key->sign(canonical_signature_string(method, target, ts, *kid, names, headers, digest));
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
