// HS256 JWT: round trip, tampering, expiry, token types, algorithm confusion, external vectors.
#include "api/auth/jwt.h"

#include <gtest/gtest.h>

#include <string>

namespace attune::auth {
namespace {

constexpr int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

Claims access_claims() {
  Claims c;
  c.sub = "123";
  c.login = "alice";
  c.token_type = "access";
  c.iat = kNow;
  c.exp = kNow + 3600;
  return c;
}

std::string replace_part(const std::string& token, int index, const std::string& part) {
  const size_t d1 = token.find('.');
  const size_t d2 = token.find('.', d1 + 1);
  std::string parts[3] = {token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1),
                          token.substr(d2 + 1)};
  parts[index] = part;
  return parts[0] + "." + parts[1] + "." + parts[2];
}

TEST(JwtTest, RoundTripKeepsEveryClaim) {
  const JwtCodec codec("a-shared-secret-of-reasonable-length");
  Claims c = access_claims();
  c.token_type = "sensor";
  c.scope = "sensor";
  c.metadata = Json{{"execution_id", 9}, {"action_ref", "core.echo"}};
  c.extra = Json{{"trigger_types", Json::array({"core.timer", "core.webhook"})}};
  const std::string token = codec.sign(c);

  auto r = codec.verify(token, {kSensorToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sub, "123");
  EXPECT_EQ(r->login, "alice");
  EXPECT_EQ(r->token_type, "sensor");
  EXPECT_EQ(r->iat, kNow);
  EXPECT_EQ(r->exp, kNow + 3600);
  EXPECT_EQ(r->scope, "sensor");
  EXPECT_EQ(r->metadata, c.metadata);
  EXPECT_EQ(r->extra, c.extra);
}

TEST(JwtTest, AbsentOptionalClaimsStayAbsent) {
  const JwtCodec codec("secret");
  auto r = codec.verify(codec.sign(access_claims()), {kAccessToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->scope.has_value());
  EXPECT_TRUE(r->metadata.is_null());
  EXPECT_TRUE(r->extra.empty());
}

TEST(JwtTest, NamedClaimsWinOverExtra) {
  const JwtCodec codec("secret");
  Claims c = access_claims();
  c.extra = Json{{"sub", "999"}, {"token_type", "refresh"}};
  auto r = codec.verify(codec.sign(c), {kAccessToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sub, "123");
}

TEST(JwtTest, SignMatchesIndependentImplementation) {
  // Computed with Python's hmac/hashlib over the sorted compact payload, secret "k" * 40.
  const JwtCodec codec(std::string(40, 'k'));
  Claims c;
  c.sub = "7";
  c.login = "bob";
  c.token_type = "access";
  c.iat = 1000;
  c.exp = 2000;
  EXPECT_EQ(codec.sign(c),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJleHAiOjIwMDAsImlhdCI6MTAwMCwibG9naW4iOiJib2IiLCJzdWIiOiI3IiwidG9rZW5fdHlwZSI6ImFj"
            "Y2VzcyJ9.qNYKcTMd45Pae-1Fp2Bwn3Vo5oc6r_jgbXg4cBwcNOw");
}

TEST(JwtTest, AcceptsExternallyMintedToken) {
  // Minted with Python hmac: header {"typ":"JWT","alg":"HS256"} (other key order than ours).
  const std::string token =
      "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
      "eyJzdWIiOiI0MiIsImxvZ2luIjoiYWxpY2UiLCJ0b2tlbl90eXBlIjoic2Vuc29yIiwiaWF0IjoxNzY3MjI1NjAw"
      "LCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoiYXBpIiwibWV0YWRhdGEiOnsiZXhlY3V0aW9uX2lkIjo3fSwidHJp"
      "Z2dlcl90eXBlcyI6WyJjb3JlLndlYmhvb2siXX0.LmsBF-SrUFoM4wd3otw9x6IJ89nDrYdu0VcDBqpcyJo";
  const JwtCodec codec("external-shared-secret-for-tests");
  auto r = codec.verify(token, {kAccessToken, kSensorToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sub, "42");
  EXPECT_EQ(r->login, "alice");
  EXPECT_EQ(r->token_type, "sensor");
  EXPECT_EQ(r->iat, 1767225600);
  EXPECT_EQ(r->exp, 4102444800);
  EXPECT_EQ(r->scope, "api");
  EXPECT_EQ(r->metadata, (Json{{"execution_id", 7}}));
  EXPECT_EQ(r->extra, (Json{{"trigger_types", Json::array({"core.webhook"})}}));

  const JwtCodec other("another-secret");
  auto bad = other.verify(token, {kSensorToken}, kNow);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "Invalid token: bad signature");
}

TEST(JwtTest, LongSecretsAreHashedPerRfc2104) {
  // Python hmac with a 100-byte key (longer than the SHA-256 block size).
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiIxIiwidG9rZW5fdHlwZSI6ImFjY2VzcyIsImV4cCI6NDEwMjQ0NDgwMH0."
      "FR543XSpUt4Br9RI-x5rrRwE8AUTHMm3oPWOMMhO5gA";
  const JwtCodec codec(std::string(100, 'L'));
  auto r = codec.verify(token, {kAccessToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sub, "1");
  EXPECT_EQ(r->login, "");
}

TEST(JwtTest, JwtIoExampleHasValidSignatureButNoExp) {
  // The jwt.io default token, secret "your-256-bit-secret": the signature check passes, then the
  // missing exp is reported.
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  auto r = JwtCodec("your-256-bit-secret").verify(token, {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: missing 'exp'");
}

TEST(JwtTest, TamperedPayloadIsRejected) {
  const JwtCodec codec("secret");
  const std::string token = codec.sign(access_claims());
  Claims admin = access_claims();
  admin.sub = "1";
  const std::string forged_payload = codec.sign(admin);
  const size_t d1 = forged_payload.find('.');
  const std::string payload =
      forged_payload.substr(d1 + 1, forged_payload.find('.', d1 + 1) - d1 - 1);
  auto r = codec.verify(replace_part(token, 1, payload), {kAccessToken}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnauthorized);
  EXPECT_EQ(r.error().message, "Invalid token: bad signature");
}

TEST(JwtTest, TamperedSignatureIsRejected) {
  const JwtCodec codec("secret");
  std::string token = codec.sign(access_claims());
  token[token.size() - 2] = token[token.size() - 2] == 'A' ? 'B' : 'A';
  auto r = codec.verify(token, {kAccessToken}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: bad signature");
}

TEST(JwtTest, ExpiryBoundary) {
  const JwtCodec codec("secret");
  const std::string token = codec.sign(access_claims());
  EXPECT_TRUE(codec.verify(token, {kAccessToken}, kNow + 3599).ok());
  auto r = codec.verify(token, {kAccessToken}, kNow + 3600);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnauthorized);
  EXPECT_EQ(r.error().message, "Token expired");
}

TEST(JwtTest, WrongTokenTypeIsRejected) {
  const JwtCodec codec("secret");
  Claims c = access_claims();
  c.token_type = "refresh";
  const std::string token = codec.sign(c);
  auto r = codec.verify(token, {kAccessToken, kExecutionToken, kSensorToken}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnauthorized);
  EXPECT_EQ(r.error().message, "Invalid token type 'refresh' for this endpoint");
  EXPECT_TRUE(codec.verify(token, {kRefreshToken}, kNow).ok());
  EXPECT_TRUE(codec.verify(token, {}, kNow).ok());
}

TEST(JwtTest, AlgNoneAndOtherAlgorithmsAreRejected) {
  const JwtCodec codec("external-shared-secret-for-tests");
  // {"alg": "none", "typ": "JWT"} with an empty signature.
  const std::string none =
      "eyJhbGciOiAibm9uZSIsICJ0eXAiOiAiSldUIn0."
      "eyJzdWIiOiI0MiIsImxvZ2luIjoiYWxpY2UiLCJ0b2tlbl90eXBlIjoic2Vuc29yIiwiaWF0IjoxNzY3MjI1NjAw"
      "LCJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoiYXBpIiwibWV0YWRhdGEiOnsiZXhlY3V0aW9uX2lkIjo3fSwidHJp"
      "Z2dlcl90eXBlcyI6WyJjb3JlLndlYmhvb2siXX0.";
  auto r = codec.verify(none, {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: unsupported algorithm (only HS256 is accepted)");

  // A valid HS256 signature under a header claiming HS512 is still refused.
  const std::string token = codec.sign(access_claims());
  const std::string hs512 = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9";  // {"alg":"HS512",...}
  r = codec.verify(replace_part(token, 0, hs512), {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: unsupported algorithm (only HS256 is accepted)");
}

TEST(JwtTest, MalformedTokensAreUnauthorized) {
  const JwtCodec codec("secret");
  const std::string good = codec.sign(access_claims());
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string("a.b"), good + ".x",
        std::string("!!!.e30.sig"), replace_part(good, 0, "e30"),  // {} header: no alg
        replace_part(good, 0, "bm90anNvbg"),                     // "notjson"
        replace_part(good, 2, "AAAA"),                           // short signature
        replace_part(good, 2, good.substr(good.rfind('.') + 1) + "=")}) {
    auto r = codec.verify(bad, {}, kNow);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kUnauthorized) << bad;
    EXPECT_FALSE(r.error().message.empty());
  }
}

TEST(JwtTest, SubMustBeANonEmptyString) {
  const JwtCodec codec("secret");
  // Python-minted, secret "secret": {"sub":42,"token_type":"access","exp":4102444800}.
  const std::string numeric_sub =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOjQyLCJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjo0MTAyNDQ0ODAwfQ."
      "yvnC5YtdKPrF8kkmpJO1TyyzLhjzyhkjtcLtroauOa0";
  auto r = codec.verify(numeric_sub, {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: 'sub' must be a non-empty string");

  Claims empty_sub = access_claims();
  empty_sub.sub = "";
  r = codec.verify(codec.sign(empty_sub), {}, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Invalid token: 'sub' must be a non-empty string");
}

TEST(JwtTest, FractionalExpIsAccepted) {
  // Python-minted, secret "secret": {"sub":"42","token_type":"access","exp":4102444800.5}.
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiI0MiIsInRva2VuX3R5cGUiOiJhY2Nlc3MiLCJleHAiOjQxMDI0NDQ4MDAuNX0."
      "35_JAUVMtIn8ZgFC_E8tr6ysiDX2KNK6uVAgLR8b8lY";
  auto r = JwtCodec("secret").verify(token, {kAccessToken}, kNow);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exp, 4102444800);
}

}  // namespace
}  // namespace attune::auth
