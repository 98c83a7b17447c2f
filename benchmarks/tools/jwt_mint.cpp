// jwt_mint: keys and signed JWTs for the benchmark suite (benchmarks/suite.py compiles it in its temporary
// directory: g++ -O2 -std=c++17 -pthread jwt_mint.cpp -lcrypto).
//
//   jwt_mint keys DIR
//       Makes an RSA-2048 key and a P-256 key. For each algorithm ALG in {rs256, es256} it writes
//       DIR/ALG.key.pem (private, PKCS#8), DIR/ALG.pub.pem (public, SubjectPublicKeyInfo: what HAProxy's
//       jwt_verify reads) and DIR/ALG.jwks.json (a JWK Set with the public key, kid "k1": what gatewayd reads).
//
//   jwt_mint sign KEY.pem ALG ISSUER AUDIENCE EXP FIRST COUNT SLICES OUT
//       Signs COUNT tokens with serial numbers FIRST .. FIRST+COUNT-1, on every core, and writes them one per
//       line into SLICES files OUT.0 .. OUT.(SLICES-1), each a consecutive run of serials (one file per wrk
//       thread; with SLICES = 0 everything goes to OUT itself). ALG is RS256 or ES256; EXP the `exp` claim.
//
// Tokens are RFC 9068-shaped access tokens (header typ "at+jwt", kid "k1") with the claims iss, sub, aud (a
// string), exp, iat, nbf, jti, client_id, scope and tenant ("tenant-<serial % 16>"): about 690 bytes with RS256,
// 430 with ES256. Every serial gives a different token.

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "jwt_mint: %s\n", what.c_str());
  std::exit(1);
}

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// base64url without padding (RFC 7515).
std::string base64url(const unsigned char* data, std::size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  std::uint32_t bits = 0;
  int pending = 0;
  for (std::size_t i = 0; i < size; ++i) {
    bits = (bits << 8) | data[i];
    pending += 8;
    while (pending >= 6) {
      pending -= 6;
      out += kAlphabet[(bits >> pending) & 63];
    }
  }
  if (pending > 0) out += kAlphabet[(bits << (6 - pending)) & 63];
  return out;
}

std::string base64url(const std::string& s) { return base64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

// A big-number parameter of a key as base64url, left-padded to `width` bytes (0: its natural length).
std::string key_param(EVP_PKEY* key, const char* name, int width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) die(std::string("key parameter missing: ") + name);
  std::vector<unsigned char> bytes(static_cast<std::size_t>(width > 0 ? width : BN_num_bytes(bn)));
  BN_bn2binpad(bn, bytes.data(), static_cast<int>(bytes.size()));
  BN_free(bn);
  return base64url(bytes.data(), bytes.size());
}

std::string public_jwk_set(EVP_PKEY* key, const char* alg) {
  if (EVP_PKEY_is_a(key, "EC"))
    return std::string(R"({"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":")") + alg + R"(","x":")" +
           key_param(key, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" + key_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32) +
           "\"}]}\n";
  return std::string(R"({"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":")") + alg + R"(","n":")" +
         key_param(key, OSSL_PKEY_PARAM_RSA_N, 0) + R"(","e":")" + key_param(key, OSSL_PKEY_PARAM_RSA_E, 0) + "\"}]}\n";
}

void write_pem(const std::string& path, EVP_PKEY* key, bool private_half) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) die("cannot write " + path);
  const int ok = private_half ? PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) : PEM_write_PUBKEY(f, key);
  if (std::fclose(f) != 0 || ok != 1) die("cannot write " + path);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out.flush()) die("cannot write " + path);
}

Key read_private_key(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) die("cannot open " + path);
  Key key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr), EVP_PKEY_free);
  std::fclose(f);
  if (!key) die("cannot read a private key from " + path);
  return key;
}

int command_keys(const std::string& dir) {
  struct Spec {
    const char* file;
    const char* alg;
    Key key;
  };
  Spec specs[] = {{"rs256", "RS256", Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), EVP_PKEY_free)},
                  {"es256", "ES256", Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free)}};
  for (auto& s : specs) {
    if (!s.key) die(std::string("key generation failed for ") + s.alg);
    const std::string base = dir + "/" + s.file;
    write_pem(base + ".key.pem", s.key.get(), true);
    write_pem(base + ".pub.pem", s.key.get(), false);
    write_text(base + ".jwks.json", public_jwk_set(s.key.get(), s.alg));
  }
  return 0;
}

struct Claims {
  std::string issuer, audience;
  long long exp = 0, iat = 0;
};

// A JWS signature in its JWT form: RSA as is, ECDSA converted from DER to R || S (32 bytes each).
std::string signature(EVP_MD_CTX* ctx, EVP_PKEY* key, const std::string& input, bool ec) {
  unsigned char der[512];
  std::size_t len = sizeof der;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx, der, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    die("signing failed");
  if (!ec) return base64url(der, len);
  const unsigned char* p = der;
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  if (!sig) die("cannot decode an ECDSA signature");
  unsigned char rs[64];
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
  ECDSA_SIG_free(sig);
  return base64url(rs, sizeof rs);
}

std::string payload(const Claims& c, long long serial) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                R"({"iss":"%s","sub":"agent-%lld","aud":"%s","exp":%lld,"iat":%lld,"nbf":%lld,"jti":"%016llx",)"
                R"("client_id":"agent-%lld","scope":"logs:write metrics:write traces:write","tenant":"tenant-%lld"})",
                c.issuer.c_str(), serial, c.audience.c_str(), c.exp, c.iat, c.iat, static_cast<unsigned long long>(serial) * 2654435761ULL,
                serial, serial % 16);
  return buf;
}

// Tokens for serials [first, first + count), one per line.
std::string sign_range(EVP_PKEY* key, const std::string& alg, const Claims& claims, long long first, long long count) {
  const bool ec = alg == "ES256";
  const std::string header = base64url(R"({"alg":")" + alg + R"(","typ":"at+jwt","kid":"k1"})");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string out;
  for (long long serial = first; serial < first + count; ++serial) {
    const std::string input = header + "." + base64url(payload(claims, serial));
    out += input;
    out += '.';
    out += signature(ctx.get(), key, input, ec);
    out += '\n';
  }
  return out;
}

// Signs [first, first + count) on `workers` threads; the pieces come back in serial order.
std::string sign_parallel(EVP_PKEY* key, const std::string& alg, const Claims& claims, long long first, long long count,
                          unsigned workers) {
  std::vector<std::string> pieces(workers);
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) {
    const long long from = first + count * w / workers, to = first + count * (w + 1) / workers;
    threads.emplace_back([&, w, from, to] { pieces[w] = sign_range(key, alg, claims, from, to - from); });
  }
  for (auto& t : threads) t.join();
  std::string all;
  for (auto& p : pieces) all += p;
  return all;
}

int command_sign(char** argv) {
  const std::string key_path = argv[0], alg = argv[1];
  if (alg != "RS256" && alg != "ES256") die("ALG must be RS256 or ES256");
  Claims claims{argv[2], argv[3], std::atoll(argv[4]), static_cast<long long>(std::time(nullptr)) - 5};
  const long long first = std::atoll(argv[5]), count = std::atoll(argv[6]), slices = std::atoll(argv[7]);
  const std::string out = argv[8];
  if (count < 1 || slices < 0 || slices > count) die("need COUNT >= 1 and 0 <= SLICES <= COUNT");
  Key key = read_private_key(key_path);
  const unsigned workers = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), static_cast<unsigned>(count)));
  if (slices == 0) {
    write_text(out, sign_parallel(key.get(), alg, claims, first, count, workers));
    return 0;
  }
  for (long long s = 0; s < slices; ++s) {
    const long long from = first + count * s / slices, to = first + count * (s + 1) / slices;
    write_text(out + "." + std::to_string(s), sign_parallel(key.get(), alg, claims, from, to - from, workers));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "keys" && argc == 3) return command_keys(argv[2]);
  if (command == "sign" && argc == 11) return command_sign(argv + 2);
  std::fprintf(stderr,
               "usage: jwt_mint keys DIR\n"
               "       jwt_mint sign KEY.pem RS256|ES256 ISSUER AUDIENCE EXP FIRST COUNT SLICES OUT\n");
  return 2;
}
