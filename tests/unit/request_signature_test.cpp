// Request signatures: the canonical string against an independent computation (Python's hmac/hashlib), the
// verifier's every refusal, the Signer policy and the hmac Authenticator with replays.

#include "obsgw/request_signature.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "obsgw/router.hpp"
#include "obsgw/signing_policies.hpp"
#include "signing/sha256_stream.hpp"

namespace obsgw {
namespace {

using ::testing::HasSubstr;

const std::string kSecret = "0123456789abcdef0123456789abcdef";
const std::string kBody = R"({"streams":[]})";
constexpr std::int64_t kTs = 1700000000;

Headers signed_request_headers(const SigningKey& key, std::int64_t ts, std::string_view body = kBody) {
  Headers h;
  h.add("Content-Type", "application/json");
  h.add("X-Scope-OrgID", " acme ");
  auto digest = sha256_hex(body);
  auto canonical = canonical_signature_string("POST", "/loki/api/v1/push?x=1", ts, key.id(), {"content-type", "x-scope-orgid"}, h, digest);
  h.add(kSignatureTimestampHeader, std::to_string(ts));
  h.add(kSignatureKeyIdHeader, key.id());
  h.add(kSignedHeadersHeader, "content-type;x-scope-orgid");
  h.add(kContentSha256Header, digest);
  h.add(kSignatureHeader, key.sign(canonical));
  return h;
}

TEST(RequestSignature, MatchesAnIndependentImplementation) {
  // Expected values computed with Python's hashlib/hmac over the documented canonical string.
  EXPECT_EQ(sha256_hex(kBody), "b48108c5ebff13b6ff249409b4d2356397417e29a15268d5bf9296aa19edf599");
  SigningKey key("k1", kSecret);
  auto h = signed_request_headers(key, kTs);
  EXPECT_EQ(h.get(kSignatureHeader), "sha256=7988d670660e59b739c7e07d63fab147ac9edccc34e815afa164670a1ca61996");
  // Signing again gives the same answer; so does another thread.
  EXPECT_EQ(signed_request_headers(key, kTs).get(kSignatureHeader), h.get(kSignatureHeader));
  std::string other;
  std::thread([&] { other = std::string(*signed_request_headers(key, kTs).get(kSignatureHeader)); }).join();
  EXPECT_EQ(other, *h.get(kSignatureHeader));
  // Another key with the same id but another secret signs differently.
  SigningKey other_key("k1", kSecret + "x");
  EXPECT_NE(signed_request_headers(other_key, kTs).get(kSignatureHeader), h.get(kSignatureHeader));
}

TEST(RequestSignature, HmacMatchesRfc2104ForEveryKeyLength) {
  // Python: hmac.new(key, text, hashlib.sha256).hexdigest(). A key of exactly one block is used as it is; a longer
  // one is hashed first (RFC 2104).
  std::string key100;
  for (int i = 0; i < 100; ++i) key100.push_back(static_cast<char>(i));
  EXPECT_EQ(SigningKey("a", std::string(32, 'k')).sign(""),
            "sha256=a4ad8e340e32bf1d916005cb1dc92795148897965e36ae56c0adc357474b5372");
  EXPECT_EQ(SigningKey("b", key100).sign("OBSGW-HMAC-SHA256\n1\nk\nGET\n/\n\n"),
            "sha256=32076b822d8609daff110d1a13f602253a7cafbb2dca172178544a1e4c82808b");
  EXPECT_EQ(SigningKey("c", std::string(64, 'z')).sign(std::string(1000, 'x')),
            "sha256=207e58ee2b0e68365027822371125f21cdea6ce42e74f5b3aa702b9f7b389ef5");
}

TEST(RequestSignature, KeysAreChecked) {
  EXPECT_THROW(SigningKey("k", "short"), std::invalid_argument);
  EXPECT_THROW(SigningKey("", kSecret), std::invalid_argument);
  EXPECT_THROW(SigningKey("a;b", kSecret), std::invalid_argument);
}

TEST(SignatureVerifier, AcceptsTheRightRequestAndNamesEveryProblem) {
  auto key = std::make_shared<const SigningKey>("k1", kSecret);
  auto old_key = std::make_shared<const SigningKey>("k0", std::string(40, 'z'));
  SignatureVerifier v({old_key, key}, std::chrono::seconds(300));
  using R = SignatureVerifier::Result;
  auto check = [&](const Headers& h, std::string_view body = kBody, std::string_view target = "/loki/api/v1/push?x=1",
                   std::int64_t now = kTs + 10, std::string_view method = "POST") {
    return v.verify(method, target, h, body, now);
  };
  Headers good = signed_request_headers(*key, kTs);
  std::string id;
  EXPECT_EQ(v.verify("POST", "/loki/api/v1/push?x=1", good, kBody, kTs - 299, &id), R::ok);
  EXPECT_EQ(id, "k1");
  EXPECT_EQ(check(signed_request_headers(*old_key, kTs)), R::ok);  // rotation: both keys verify

  EXPECT_EQ(check(Headers{}), R::missing);
  EXPECT_EQ(check(good, kBody, "/loki/api/v1/push?x=2"), R::bad_signature);
  EXPECT_EQ(check(good, kBody, "/loki/api/v1/push?x=1", kTs + 10, "PUT"), R::bad_signature);
  EXPECT_EQ(check(good, "{}"), R::body_mismatch);
  EXPECT_EQ(check(good, kBody, "/loki/api/v1/push?x=1", kTs + 301), R::stale);
  EXPECT_EQ(check(good, kBody, "/loki/api/v1/push?x=1", kTs - 301), R::stale);

  auto tweak = [&](std::string_view name, std::string_view value) {
    Headers h = good;
    h.set(name, value);
    return h;
  };
  EXPECT_EQ(check(tweak("X-Scope-OrgID", "globex")), R::bad_signature);  // a signed header changed
  EXPECT_EQ(check(tweak(kSignedHeadersHeader, "content-type")), R::bad_signature);  // dropping one from the list
  EXPECT_EQ(check(tweak(kSignatureKeyIdHeader, "k9")), R::unknown_key);
  EXPECT_EQ(check(tweak(kSignatureTimestampHeader, "17e8")), R::malformed);
  EXPECT_EQ(check(tweak(kSignedHeadersHeader, "a;;b")), R::malformed);
  EXPECT_EQ(check(tweak(kSignatureHeader, "sha256=00")), R::bad_signature);
  Headers twice = good;
  twice.add(kSignatureHeader, *good.get(kSignatureHeader));
  EXPECT_EQ(check(twice), R::malformed);
  Headers unsigned_extra = good;
  unsigned_extra.add("X-Other", "not signed, not checked");
  EXPECT_EQ(check(unsigned_extra), R::ok);

  // With the body's digest computed by the caller (hashed as it arrived): the same verdicts.
  EXPECT_EQ(v.verify_digest("POST", "/loki/api/v1/push?x=1", good, sha256_hex(kBody), kTs + 10), R::ok);
  EXPECT_EQ(v.verify_digest("POST", "/loki/api/v1/push?x=1", good, sha256_hex("{}"), kTs + 10), R::body_mismatch);
  EXPECT_EQ(v.verify_digest("POST", "/loki/api/v1/push?x=2", good, sha256_hex(kBody), kTs + 10), R::bad_signature);
}

TEST(Sha256Stream, PiecesHashLikeTheWhole) {
  signing::Sha256Stream s;
  EXPECT_EQ(s.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");  // FIPS 180-2 vectors
  s.update("a");
  s.update("");
  s.update("bc");
  EXPECT_EQ(s.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // After a digest the stream starts over; block boundaries (64 bytes) inside and between pieces.
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>('a' + i * 7 % 26));
  for (std::size_t cut : {0u, 1u, 63u, 64u, 65u, 500u, 999u, 1000u}) {
    s.update(std::string_view(data).substr(0, cut));
    s.update(std::string_view(data).substr(cut));
    EXPECT_EQ(s.hex_digest(), sha256_hex(data)) << cut;
  }
}

TEST(RequestSigner, UsesTheDigestOfABodyHashedAsItArrived) {
  auto key = std::make_shared<const SigningKey>("k1", kSecret);
  RequestSignerOptions o;
  o.key = key;
  auto signer = make_request_signer(o);
  RequestHead head;
  head.method = "POST";
  head.path = "/push";
  Exchange ex(std::move(head), ConnectionInfo{});
  EXPECT_TRUE(signer->needs_body_sha256(ex));
  // A digest that is not the body's shows which one the signer took.
  ex.set_buffered_body("body", std::string(64, 'f'));
  ASSERT_TRUE(signer->on_request(ex).proceeds());
  EXPECT_EQ(ex.request().headers.get(kContentSha256Header), std::string(64, 'f'));
}

std::unique_ptr<Exchange> post(std::string path, std::string body, Headers headers = {}) {
  RequestHead head;
  head.method = "POST";
  head.path = std::move(path);
  head.query = "x=1";
  head.headers = std::move(headers);
  auto ex = std::make_unique<Exchange>(std::move(head), ConnectionInfo{});
  ex->set_buffered_body(std::move(body));
  return ex;
}

TEST(RequestSigner, SignsWhatIsForwardedAndReplacesClientCopies) {
  auto key = std::make_shared<const SigningKey>("gw", kSecret);
  auto signer = make_request_signer({.key = key, .headers = {"X-Scope-OrgID", "content-type"}});
  EXPECT_EQ(signer->phase(), Phase::sign);
  EXPECT_EQ(signer->body_limit(), 10u << 20);
  Headers h;
  h.add("X-Scope-OrgID", "acme");
  h.add("X-Gateway-Signature", "sha256=forged");
  h.add("X-Gateway-Key-Id", "forged");
  auto ex = post("/loki/api/v1/push", kBody, h);
  ASSERT_TRUE(signer->on_request(*ex).proceeds());
  const auto& out = ex->request().headers;
  EXPECT_EQ(out.count("X-Gateway-Signature"), 1u);
  EXPECT_EQ(out.get(kSignatureKeyIdHeader), "gw");
  EXPECT_EQ(out.get(kSignedHeadersHeader), "x-scope-orgid;content-type");
  EXPECT_EQ(out.get(kContentSha256Header), sha256_hex(kBody));
  std::int64_t ts = std::stoll(std::string(*out.get(kSignatureTimestampHeader)));
  SignatureVerifier v({key}, std::chrono::seconds(5));
  EXPECT_EQ(v.verify("POST", "/loki/api/v1/push?x=1", out, kBody, ts), SignatureVerifier::Result::ok);

  EXPECT_THROW(make_request_signer({.key = key, .headers = {"Host"}}), std::invalid_argument);
  EXPECT_THROW(make_request_signer({.key = key, .headers = {"x-forwarded-for"}}), std::invalid_argument);
  EXPECT_THROW(make_request_signer({.key = nullptr}), std::invalid_argument);
}

TEST(HmacAuthenticator, VerifiesSetsTheIdentityAndRefusesReplays) {
  auto key = std::make_shared<const SigningKey>("agent-7", kSecret);
  auto auth = make_hmac_authenticator({.clients = {{.key = key, .subject = "edge-agent", .tenants = {"acme"}}}});
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto headers = signed_request_headers(*key, now);
  auto ex = post("/loki/api/v1/push", kBody, headers);
  // The body is hashed as it arrives only for a request naming a known key: anyone else is refused unhashed.
  EXPECT_TRUE(auth->needs_body_sha256(*ex));
  EXPECT_FALSE(auth->needs_body_sha256(*post("/loki/api/v1/push", kBody)));
  Headers stranger = headers;
  stranger.set(kSignatureKeyIdHeader, "agent-9");
  EXPECT_FALSE(auth->needs_body_sha256(*post("/loki/api/v1/push", kBody, stranger)));
  auto v = auth->on_request(*ex);
  ASSERT_TRUE(v.proceeds()) << (v.rejects() ? v.rejection().message : "");
  ASSERT_TRUE(ex->identity);
  EXPECT_EQ(ex->identity->method, "hmac");
  EXPECT_EQ(ex->identity->subject, "edge-agent");
  EXPECT_EQ(ex->identity->client_id, "agent-7");
  EXPECT_THAT(ex->identity->allowed_tenants, ::testing::ElementsAre("acme"));
  EXPECT_FALSE(ex->request().headers.contains(kSignatureHeader));  // consumed, not forwarded

  auto replay = post("/loki/api/v1/push", kBody, headers);
  auto r = auth->on_request(*replay);
  ASSERT_TRUE(r.rejects());
  EXPECT_EQ(r.rejection().status, 401);
  EXPECT_EQ(r.rejection().code, "invalid_signature");
  EXPECT_THAT(r.rejection().message, HasSubstr("(replayed)"));

  auto tampered = post("/loki/api/v1/push", R"({"streams":[1]})", signed_request_headers(*key, now));
  r = auth->on_request(*tampered);
  ASSERT_TRUE(r.rejects());
  EXPECT_THAT(r.rejection().message, HasSubstr("(body_mismatch)"));
  EXPECT_FALSE(tampered->identity);

  auto unsigned_request = post("/loki/api/v1/push", kBody);
  r = auth->on_request(*unsigned_request);
  ASSERT_TRUE(r.rejects());
  EXPECT_THAT(r.rejection().message, HasSubstr("(missing)"));
  ASSERT_FALSE(r.rejection().headers.empty());
  EXPECT_EQ(r.rejection().headers[0].name, "WWW-Authenticate");
}

}  // namespace
}  // namespace obsgw
