#include "auth/jwk.hpp"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <fmt/format.h>
#include <simdjson.h>

#include "auth/base64url.hpp"

namespace obsgw::auth {

namespace {

struct ParamBuildDeleter {
  void operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct CtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct BnDeleter {
  void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};

std::shared_ptr<EVP_PKEY> from_params(const char* type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, CtxDeleter> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    return nullptr;
  std::shared_ptr<EVP_PKEY> key(pkey, EVP_PKEY_free);
  // Refuse points that are not on the curve and similar malformed public keys.
  std::unique_ptr<EVP_PKEY_CTX, CtxDeleter> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

std::shared_ptr<EVP_PKEY> import_rsa(std::string_view n_b64, std::string_view e_b64, std::string& why) {
  auto n = base64url_decode(n_b64), e = base64url_decode(e_b64);
  if (!n || !e || n->empty() || e->empty()) {
    why = "n or e is not base64url";
    return nullptr;
  }
  std::unique_ptr<BIGNUM, BnDeleter> bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnDeleter> bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (BN_num_bits(bn_n.get()) < 2048) {
    why = fmt::format("RSA modulus of {} bits (at least 2048 required)", BN_num_bits(bn_n.get()));
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get());
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = params ? from_params("RSA", params.get()) : nullptr;
  if (!key) why = "not a valid RSA public key";
  return key;
}

std::shared_ptr<EVP_PKEY> import_ec(std::string_view crv, std::string_view x_b64, std::string_view y_b64, std::string& why) {
  const std::size_t size = crv == "P-256" ? 32 : 48;
  auto x = base64url_decode(x_b64), y = base64url_decode(y_b64);
  if (!x || !y || x->size() != size || y->size() != size) {
    why = fmt::format("x and y must be {} bytes of base64url", size);
    return nullptr;
  }
  std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> bld(OSSL_PARAM_BLD_new());
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, crv == "P-256" ? "P-256" : "P-384", 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld.get()));
  auto key = params ? from_params("EC", params.get()) : nullptr;
  if (!key) why = "not a valid point on the curve";
  return key;
}

std::shared_ptr<EVP_PKEY> import_ed25519(std::string_view x_b64, std::string& why) {
  auto x = base64url_decode(x_b64);
  if (!x || x->size() != 32) {
    why = "x must be 32 bytes of base64url";
    return nullptr;
  }
  EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(x->data()), x->size());
  if (!raw) why = "not a valid Ed25519 public key";
  return raw ? std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free) : nullptr;
}

std::string_view str(simdjson::dom::element obj, const char* key) {
  std::string_view v;
  if (obj[key].get(v) != simdjson::SUCCESS) return {};
  return v;
}

std::string b64_of_bn(const EVP_PKEY* pkey, const char* param) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(pkey, param, &bn);
  std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(bn);
  return base64url_encode(bytes);
}

}  // namespace

const char* to_string(KeyKind kind) noexcept {
  switch (kind) {
    case KeyKind::rsa: return "RSA";
    case KeyKind::ec_p256: return "EC P-256";
    case KeyKind::ec_p384: return "EC P-384";
    case KeyKind::ed25519: return "Ed25519";
  }
  return "?";
}

JwkSet parse_jwk_set(std::string_view json, std::string& error) {
  JwkSet set;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  simdjson::dom::array keys;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || doc["keys"].get(keys) != simdjson::SUCCESS) {
    error = "not a JWK Set (an object with a \"keys\" array)";
    return set;
  }
  std::size_t index = 0;
  for (simdjson::dom::element jwk : keys) {
    std::string where = fmt::format("keys[{}]", index++);
    if (!jwk.is_object()) {
      set.skipped.push_back(where + ": not an object");
      continue;
    }
    std::string_view kty = str(jwk, "kty"), use = str(jwk, "use"), crv = str(jwk, "crv");
    VerificationKey key;
    key.kid = std::string(str(jwk, "kid"));
    key.alg = std::string(str(jwk, "alg"));
    if (!use.empty() && use != "sig") {
      set.skipped.push_back(fmt::format("{}: use is \"{}\"", where, use));
      continue;
    }
    simdjson::dom::array ops;
    if (jwk["key_ops"].get(ops) == simdjson::SUCCESS) {
      bool verify = false;
      for (auto op : ops) verify = verify || (op.is_string() && std::string_view(op.get_string().value_unsafe()) == "verify");
      if (!verify) {
        set.skipped.push_back(where + ": key_ops without \"verify\"");
        continue;
      }
    }
    if (!str(jwk, "d").empty()) {
      // A private key in a published set is a provider mistake; its public half would work, but refuse loudly.
      set.skipped.push_back(where + ": contains private key material");
      continue;
    }
    std::string why;
    if (kty == "RSA") {
      key.kind = KeyKind::rsa;
      key.pkey = import_rsa(str(jwk, "n"), str(jwk, "e"), why);
    } else if (kty == "EC" && (crv == "P-256" || crv == "P-384")) {
      key.kind = crv == "P-256" ? KeyKind::ec_p256 : KeyKind::ec_p384;
      key.pkey = import_ec(crv, str(jwk, "x"), str(jwk, "y"), why);
    } else if (kty == "OKP" && crv == "Ed25519") {
      key.kind = KeyKind::ed25519;
      key.pkey = import_ed25519(str(jwk, "x"), why);
    } else {
      set.skipped.push_back(fmt::format("{}: unsupported key type \"{}\"{}", where, kty,
                                        crv.empty() ? "" : fmt::format(" (crv \"{}\")", crv)));
      continue;
    }
    if (!key.pkey) {
      set.skipped.push_back(fmt::format("{}: {}", where, why));
      continue;
    }
    set.keys.push_back(std::move(key));
  }
  return set;
}

std::string public_jwk_json(const EVP_PKEY* pkey, std::string_view kid, std::string_view alg) {
  std::string head = fmt::format("{{\"kid\":\"{}\",\"alg\":\"{}\",\"use\":\"sig\",", kid, alg);
  if (EVP_PKEY_is_a(pkey, "RSA"))
    return head + fmt::format("\"kty\":\"RSA\",\"n\":\"{}\",\"e\":\"{}\"}}", b64_of_bn(pkey, OSSL_PKEY_PARAM_RSA_N),
                              b64_of_bn(pkey, OSSL_PKEY_PARAM_RSA_E));
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[32] = {};
    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr);
    std::string crv = std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256" ? "P-256" : "P-384";
    std::size_t size = crv == "P-256" ? 32 : 48;
    unsigned char point[200];
    std::size_t len = 0;
    EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
    std::string_view p(reinterpret_cast<const char*>(point) + 1, len - 1);
    return head + fmt::format("\"kty\":\"EC\",\"crv\":\"{}\",\"x\":\"{}\",\"y\":\"{}\"}}", crv,
                              base64url_encode(p.substr(0, size)), base64url_encode(p.substr(size)));
  }
  unsigned char raw[32];
  std::size_t len = sizeof raw;
  EVP_PKEY_get_raw_public_key(pkey, raw, &len);
  return head + fmt::format("\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"{}\"}}",
                            base64url_encode(std::string_view(reinterpret_cast<const char*>(raw), len)));
}

}  // namespace obsgw::auth
