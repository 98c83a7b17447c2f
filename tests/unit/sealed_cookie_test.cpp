#include "auth/sealed_cookie.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>
#include <stdexcept>

#include "auth/base64url.hpp"

namespace obsgw::auth {
namespace {

const std::string kSecretA(40, 'a'), kSecretB(32, 'b');
constexpr std::int64_t kNow = 1'800'000'000;

TEST(CookieSealer, OpensWhatItSealedUntilItExpires) {
  CookieSealer sealer({kSecretA});
  auto sealed = sealer.seal(R"({"sub":"alice"})", "session", kNow + 60);
  std::int64_t expires = 0;
  EXPECT_EQ(sealer.open(sealed, "session", kNow, &expires), R"({"sub":"alice"})");
  EXPECT_EQ(expires, kNow + 60);
  EXPECT_EQ(sealer.open(sealed, "session", kNow + 59), R"({"sub":"alice"})");
  EXPECT_FALSE(sealer.open(sealed, "session", kNow + 60)) << "expired at expires_at";
  // The plaintext is not readable in the cookie, and every seal differs (random nonce).
  EXPECT_EQ(sealed.find("alice"), std::string::npos);
  EXPECT_EQ(base64url_decode(sealed)->find("alice"), std::string::npos);
  EXPECT_NE(sealer.seal("x", "session", kNow + 60), sealer.seal("x", "session", kNow + 60));
}

TEST(CookieSealer, RefusesAnotherPurposeAnotherKeyAndAnyEdit) {
  CookieSealer sealer({kSecretA});
  auto sealed = sealer.seal("payload", "login", kNow + 60);
  EXPECT_FALSE(sealer.open(sealed, "session", kNow)) << "a login cookie is not a session";
  EXPECT_FALSE(CookieSealer({kSecretB}).open(sealed, "login", kNow));
  auto raw = *base64url_decode(sealed);
  // Every single byte flipped, header (version, key hint, expiry), nonce, ciphertext and tag alike, is refused.
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto edited = raw;
    edited[i] = static_cast<char>(edited[i] ^ 0x01);
    EXPECT_FALSE(sealer.open(base64url_encode(edited), "login", kNow)) << "byte " << i;
  }
  // A later expiry written into the header does not revive it either.
  auto revived = raw;
  revived[12] = static_cast<char>(revived[12] + 100);
  EXPECT_FALSE(sealer.open(base64url_encode(revived), "login", kNow + 61));
  for (const std::string& junk : std::vector<std::string>{"", "x", "not base64!", std::string(9000, 'A'), base64url_encode(raw.substr(0, 20))})
    EXPECT_FALSE(sealer.open(junk, "login", kNow)) << junk.size();
}

TEST(CookieSealer, RotationSealsWithTheFirstSecretAndOpensWithAll) {
  CookieSealer old_only({kSecretA});
  CookieSealer rotated({kSecretB, kSecretA});
  auto old_cookie = old_only.seal("old", "session", kNow + 60);
  auto new_cookie = rotated.seal("new", "session", kNow + 60);
  EXPECT_EQ(rotated.open(old_cookie, "session", kNow), "old");
  EXPECT_EQ(rotated.open(new_cookie, "session", kNow), "new");
  EXPECT_FALSE(old_only.open(new_cookie, "session", kNow)) << "sealed with the new secret";
  EXPECT_FALSE(CookieSealer({kSecretB}).open(old_cookie, "session", kNow)) << "the old secret retired";
}

TEST(CookieSealer, NeedsLongSecrets) {
  EXPECT_THROW(CookieSealer({}), std::invalid_argument);
  EXPECT_THROW(CookieSealer({std::string(31, 'x')}), std::invalid_argument);
  EXPECT_THROW(CookieSealer({kSecretA, "short"}), std::invalid_argument);
}

TEST(RandomToken, IsUrlSafeAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto t = random_token(24);
    EXPECT_EQ(t.size(), 32u);
    EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), std::string::npos);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace obsgw::auth
