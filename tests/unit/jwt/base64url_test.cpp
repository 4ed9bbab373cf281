#include "jwt/base64url.h"

#include <gtest/gtest.h>

namespace mg::jwt {
namespace {

TEST(JwtBase64Url, RoundTripsAllLengths) {
  std::string data;
  for (int i = 0; i < 64; ++i) {
    auto enc = base64url_encode(data);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(*dec, data);
    data.push_back(static_cast<char>(i * 37 + 250));
  }
}

TEST(JwtBase64Url, KnownVectors) {
  EXPECT_EQ(base64url_encode("{\"alg\":\"RS256\"}"), "eyJhbGciOiJSUzI1NiJ9");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(*base64url_decode("-_8"), "\xfb\xff");
}

TEST(JwtBase64Url, RejectsPaddingAndForeignCharacters) {
  EXPECT_FALSE(base64url_decode("YQ=="));     // padding is not part of JWS base64url
  EXPECT_FALSE(base64url_decode("YWI="));
  EXPECT_FALSE(base64url_decode("+/8"));      // standard alphabet
  EXPECT_FALSE(base64url_decode("YW Jj"));    // whitespace
  EXPECT_FALSE(base64url_decode("YWJj\n"));
  EXPECT_FALSE(base64url_decode(std::string("YW\0j", 4)));
}

TEST(JwtBase64Url, RejectsImpossibleLengthAndNonCanonicalBits) {
  EXPECT_FALSE(base64url_decode("A"));
  EXPECT_FALSE(base64url_decode("AAAAA"));
  EXPECT_TRUE(base64url_decode("YQ"));   // "a"
  EXPECT_FALSE(base64url_decode("YR"));  // same byte, non-zero trailing bits
  EXPECT_FALSE(base64url_decode("YWJ"));  // 'J' leaves 2 bits set: non-canonical
  EXPECT_TRUE(base64url_decode("YWI"));
  EXPECT_TRUE(base64url_decode(""));
}

}  // namespace
}  // namespace mg::jwt
