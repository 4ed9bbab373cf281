// io.jwt.*, crypto.* and the refused I/O built-ins. Tokens are built here (HMAC by hand, asymmetric
// ones with the jwt module's test signer), so every case has a matching negative.
#include <thread>

#include <gtest/gtest.h>

#include "../jwt/jwt_test_util.h"
#include "builtins_test_util.h"
#include "crypto/openssl.h"
#include "rego/go_encoding.h"

namespace mg::rego::test {
namespace {

namespace jt = mg::jwt::testing;

std::string b64(const std::string& s) { return go::base64_encode(s, go::Base64::RawUrl); }

std::string hs256_token(const std::string& header, const std::string& payload, const std::string& secret) {
  const std::string input = b64(header) + "." + b64(payload);
  return input + "." + b64(crypto::hmac(EVP_sha256(), secret, input));
}

Value s(const std::string& v) { return Value::string(v); }

TEST(RegoJwt, DecodeReturnsHeaderPayloadAndHexSignature) {
  const std::string tok =
      hs256_token(R"j({"alg":"HS256","typ":"JWT"})j", R"j({"iss":"opa","ext":{"a":[10,"10"]}})j", "k");
  const BuiltinResult r = call("io.jwt.decode", {s(tok)});
  ASSERT_TRUE(r.defined()) << show(r);
  const auto& parts = r.value().as_array();
  EXPECT_EQ(parts[0].to_json_text(), R"j({"alg":"HS256","typ":"JWT"})j");
  EXPECT_EQ(parts[1].to_json_text(), R"j({"ext":{"a":[10,"10"]},"iss":"opa"})j");
  const std::string sig = crypto::hmac(EVP_sha256(), "k", tok.substr(0, tok.rfind('.')));
  EXPECT_EQ(parts[2].as_string(), go::hex_encode(sig));
}

TEST(RegoJwt, DecodeErrorsUseOpaWording) {
  EXPECT_EQ(show(call("io.jwt.decode", {s("abc")})), "error(builtin): encoded JWT had no period separators");
  EXPECT_EQ(show(call("io.jwt.decode", {s("a.b")})),
            "error(builtin): encoded JWT must have 3 sections, found 2");
  const std::string jwe = b64(R"j({"alg":"HS256","enc":"x"})j") + "." + b64("{}") + ".c2ln";
  EXPECT_EQ(show(call("io.jwt.decode", {s(jwe)})),
            "error(builtin): JWT is a JWE object, which is not supported");
  const std::string bad_payload = b64(R"j({"alg":"HS256"})j") + ".eyJzdWIiOiIwIiwia/XNzIjoib3BhIn0.c2ln";
  EXPECT_EQ(show(call("io.jwt.decode", {s(bad_payload)})),
            "error(builtin): JWT payload had invalid encoding: illegal base64 data at input byte 17");
}

TEST(RegoJwt, DecodeFollowsNestedTokens) {
  const std::string inner = hs256_token(R"j({"alg":"HS256"})j", R"j({"sub":"0"})j", "k");
  const std::string outer = hs256_token(R"j({"alg":"HS256","cty":"JWT"})j", "\"" + inner + "\"", "k");
  const BuiltinResult r = call("io.jwt.decode", {s(outer)});
  ASSERT_TRUE(r.defined()) << show(r);
  EXPECT_EQ(r.value().as_array()[1].to_json_text(), R"j({"sub":"0"})j");
}

TEST(RegoJwt, VerifyHmac) {
  const std::string tok = hs256_token(R"j({"alg":"HS256"})j", R"j({"user":"alice"})j", "secret");
  EXPECT_EQ(show(call("io.jwt.verify_hs256", {s(tok), s("secret")})), "true");
  EXPECT_EQ(show(call("io.jwt.verify_hs256", {s(tok), s("wrong")})), "false");
  EXPECT_EQ(show(call("io.jwt.verify_hs512", {s(tok), s("secret")})), "false");
}

TEST(RegoJwt, VerifyAsymmetricWithJwkJwksAndPem) {
  const jt::TestKey rsa = jt::make_key(jwt::Alg::RS256, "r1");
  const jt::TestKey ec = jt::make_key(jwt::Alg::ES256, "e1");
  const jt::TestKey other = jt::make_key(jwt::Alg::RS256, "r2");
  const std::string rs_tok = jt::sign_token(rsa, {{"typ", "JWT"}}, {{"iss", "x"}});
  const std::string es_tok = jt::sign_token(ec, {}, {{"iss", "x"}});
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(rs_tok), s(rsa.jwk.dump())})), "true");
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(rs_tok), s(jt::jwks_of({&other, &rsa}))})), "true");
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(rs_tok), s(other.jwk.dump())})), "false");
  EXPECT_EQ(show(call("io.jwt.verify_ps256", {s(rs_tok), s(rsa.jwk.dump())})), "false");
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(rs_tok), s(crypto::public_key_to_pem(rsa.priv.get()))})),
            "true");
  EXPECT_EQ(show(call("io.jwt.verify_es256", {s(es_tok), s(crypto::public_key_to_pem(ec.priv.get()))})),
            "true");
  EXPECT_EQ(show(call("io.jwt.verify_es256", {s(rs_tok), s(ec.jwk.dump())})), "false");
  EXPECT_EQ(show(call("io.jwt.verify_rs256",
                      {s(rs_tok), s("-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n")}))
                .rfind("error(builtin): failed to parse a PEM certificate", 0),
            0u);
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(rs_tok), s("{")}))
                .rfind("error(builtin): failed to parse a JWK key (set)", 0),
            0u);
}

TEST(RegoJwt, DecodeVerifyChecksSignatureAndClaims) {
  const std::string ok = hs256_token(R"j({"alg":"HS256","typ":"JWT"})j",
                                     R"j({"iss":"xxx","exp":1589385771.1234,"nbf":1000})j", "secret");
  auto dv = [&](const std::string& tok, const std::string& constraints) {
    return show(call("io.jwt.decode_verify", {s(tok), json(constraints)}));
  };
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 1589385770123400000})j"),
            R"j([true,{"alg":"HS256","typ":"JWT"},{"exp":1589385771.1234,"iss":"xxx","nbf":1000}])j");
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 1589385771123400000})j"), "[false,{},{}]");  // at exp
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 999000000000})j"), "[false,{},{}]");         // before nbf
  EXPECT_EQ(dv(ok, R"j({"secret": "wrong", "time": 1000000000000})j"), "[false,{},{}]");
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 1000000000000, "iss": "yyy"})j"), "[false,{},{}]");
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 1000000000000, "alg": "RS256"})j"), "[false,{},{}]");
  EXPECT_EQ(dv(ok, R"j({"secret": "secret", "time": 1000000000000, "aud": "fred"})j"), "[false,{},{}]");
  const std::string with_aud = hs256_token(R"j({"alg":"HS256"})j", R"j({"aud":["a","fred"]})j", "secret");
  EXPECT_EQ(dv(with_aud, R"j({"secret": "secret"})j"), "[false,{},{}]");  // aud present, none asked
  EXPECT_EQ(dv(with_aud, R"j({"secret": "secret", "aud": "fred"})j").rfind("[true", 0), 0u);
  EXPECT_EQ(dv(ok, R"j({"time": 1})j"), "error(builtin): no key constraint");
  EXPECT_EQ(dv(ok, R"j({"secret": "s", "cert": "{}"})j").rfind("error(builtin): ", 0), 0u);
  EXPECT_EQ(dv(ok, R"j({"secret": "s", "bogus": 1})j"),
            "error(builtin): unknown token validation constraint: bogus");

  const jt::TestKey rsa = jt::make_key(jwt::Alg::PS256, "k1");
  const std::string ps = jt::sign_token(rsa, {{"typ", "JWT"}}, {{"iss", "xxx"}});
  EXPECT_EQ(show(call("io.jwt.decode_verify", {s(ps), Value::object({{s("cert"), s(jt::jwks_of({&rsa}))}})}))
                .rfind("[true", 0),
            0u);
  const jt::TestKey other = jt::make_key(jwt::Alg::PS256, "k2");
  EXPECT_EQ(show(call("io.jwt.decode_verify", {s(ps), Value::object({{s("cert"), s(other.jwk.dump())}})})),
            "[false,{},{}]");
}

// decode_verify remembers a token's signature check per thread: a repeated token must still be
// judged by this call's key, alg, iss and time, and more tokens than the cache holds stay right.
TEST(RegoJwt, DecodeVerifyRepeatedTokensFollowEachCallsConstraints) {
  const std::string tok =
      hs256_token(R"j({"alg":"HS256"})j", R"j({"iss":"opa","exp":1700000100,"role":"guest"})j", "secret");
  auto verify = [&](const std::string& token, const std::string& secret, int64_t now_s,
                    const char* iss = nullptr, const char* alg = nullptr) {
    ObjectItems items{{s("secret"), s(secret)}};
    if (iss) items.emplace_back(s("iss"), s(iss));
    if (alg) items.emplace_back(s("alg"), s(alg));
    BuiltinContext ctx;
    ctx.now_ns = now_s * 1'000'000'000;
    return show(call("io.jwt.decode_verify", {s(token), Value::object(std::move(items))}, &ctx));
  };
  const std::string ok = R"j([true,{"alg":"HS256"},{"exp":1700000100,"iss":"opa","role":"guest"}])j";
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(verify(tok, "secret", 1700000000), ok);
    EXPECT_EQ(verify(tok, "other", 1700000000), "[false,{},{}]");
    EXPECT_EQ(verify(tok, "secret", 1700000000), ok);
    EXPECT_EQ(verify(tok, "secret", 1700000100), "[false,{},{}]");  // expired now
    EXPECT_EQ(verify(tok, "secret", 1700000000, "someone"), "[false,{},{}]");
    EXPECT_EQ(verify(tok, "secret", 1700000000, "opa", "HS512"), "[false,{},{}]");
    EXPECT_EQ(verify(tok, "secret", 1700000000, "opa", "HS256"), ok);
    EXPECT_EQ(verify(tok + "x", "secret", 1700000000), "[false,{},{}]");
    // Same length as the cached token, one signature character different: compared whole.
    std::string tampered = tok;
    char& c = tampered[tampered.size() - 5];
    c = c == 'A' ? 'B' : 'A';
    EXPECT_EQ(verify(tampered, "secret", 1700000000), "[false,{},{}]");
    EXPECT_EQ(verify(tok, "secret", 1700000000), ok);
    EXPECT_EQ(verify("a.b", "secret", 1700000000),
              "error(builtin): encoded JWT must have 3 sections, found 2");
  }
  // More distinct tokens than a thread keeps, twice over: each is still its own.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 40; ++i) {
      const std::string payload = R"j({"n":)j" + std::to_string(i) + "}";
      const std::string t = hs256_token(R"j({"alg":"HS256"})j", payload, "k" + std::to_string(i % 3));
      EXPECT_EQ(verify(t, "k" + std::to_string(i % 3), 1700000000),
                R"j([true,{"alg":"HS256"},)j" + payload + "]");
      EXPECT_EQ(verify(t, "k" + std::to_string((i + 1) % 3), 1700000000), "[false,{},{}]");
    }
  }
}

// Key texts (JWK, JWKS, PEM) are parsed once per thread and kept: every call must still verify with
// its own key text, a bad text keeps its error, and more texts than a thread keeps stay right.
TEST(RegoJwt, RepeatedKeyTextsFollowEachCallsKeys) {
  std::vector<jt::TestKey> keys;
  for (int i = 0; i < 12; ++i) keys.push_back(jt::make_key(jwt::Alg::RS256, "k" + std::to_string(i)));
  std::vector<std::string> tokens;
  for (const auto& k : keys) tokens.push_back(jt::sign_token(k, {{"typ", "JWT"}}, {{"iss", "x"}}));
  const std::string broken = "-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n";
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string own = keys[i].jwk.dump();
      const std::string next = keys[(i + 1) % keys.size()].jwk.dump();
      EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(tokens[i]), s(own)})), "true") << i;
      EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(tokens[i]), s(next)})), "false") << i;
      EXPECT_EQ(show(call("io.jwt.decode_verify", {s(tokens[i]), Value::object({{s("cert"), s(own)}})}))
                    .rfind("[true", 0),
                0u)
          << i;
      EXPECT_EQ(show(call("io.jwt.decode_verify", {s(tokens[i]), Value::object({{s("cert"), s(next)}})})),
                "[false,{},{}]")
          << i;
      EXPECT_EQ(show(call("io.jwt.verify_rs256", {s(tokens[i]), s(broken)}))
                    .rfind("error(builtin): failed to parse a PEM certificate", 0),
                0u);
    }
  }
}

TEST(RegoCrypto, DigestsAndHmacs) {
  EXPECT_EQ(eval("crypto.sha256", {R"j("abc")j"}),
            R"j("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")j");
  EXPECT_EQ(eval("crypto.md5", {R"j("")j"}), R"j("d41d8cd98f00b204e9800998ecf8427e")j");
  EXPECT_EQ(eval("crypto.sha1", {R"j("abc")j"}), R"j("a9993e364706816aba3e25717850c26c9cd0d89d")j");
  // RFC 4231 test case 2.
  EXPECT_EQ(eval("crypto.hmac.sha256", {R"j("what do ya want for nothing?")j", R"j("Jefe")j"}),
            R"j("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")j");
  EXPECT_EQ(eval("crypto.hmac.equal", {R"j("abc")j", R"j("abc")j"}), "true");
  EXPECT_EQ(eval("crypto.hmac.equal", {R"j("abc")j", R"j("abd")j"}), "false");
}

// crypto::hmac keeps a keyed context per digest and thread: alternating keys (and the empty
// key), repeated keys and other digests must each give the MAC of a fresh computation.
TEST(CryptoHmac, ReusedContextsGiveFreshMacs) {
  const std::string fox = "The quick brown fox jumps over the lazy dog";
  const auto hex = [](const std::string& mac) { return go::hex_encode(mac); };
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(hex(crypto::hmac(EVP_sha256(), "key", fox)),
              "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    EXPECT_EQ(hex(crypto::hmac(EVP_sha256(), "key", fox)),
              "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    EXPECT_EQ(hex(crypto::hmac(EVP_sha256(), "", "")),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    EXPECT_EQ(hex(crypto::hmac(EVP_sha256(), "Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    EXPECT_EQ(hex(crypto::hmac(EVP_sha512(), "Jefe", "what do ya want for nothing?")),
              "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
    EXPECT_EQ(hex(crypto::hmac(EVP_md5(), "key", fox)), "80070713463e7749b90c2dc24911e275");
    // A key that is a prefix of the previous one is another key.
    EXPECT_EQ(hex(crypto::hmac(EVP_sha256(), "ke", fox)),
              hex(crypto::hmac(EVP_sha256(), std::string("ke"), fox)));
    EXPECT_NE(hex(crypto::hmac(EVP_sha256(), "ke", fox)),
              "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  }
  std::string other_thread;
  std::thread([&] { other_thread = hex(crypto::hmac(EVP_sha256(), "key", fox)); }).join();
  EXPECT_EQ(other_thread, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

TEST(RegoIo, IoBuiltinsAreDeclaredButNotOffered) {
  for (const char* name : {"http.send", "net.lookup_ip_addr", "opa.runtime"}) {
    const BuiltinDecl* d = Registry::standard().find(name);
    ASSERT_NE(d, nullptr) << name;
    EXPECT_TRUE(d->io) << name;
    EXPECT_EQ(d->fn, nullptr) << name;
  }
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

TEST(RegoPrint, WritesOneLineToTheSink) {
  struct Sink : PrintSink {
    std::vector<std::string> lines;
    void print(std::string_view l) override { lines.emplace_back(l); }
  } sink;
  BuiltinContext ctx;
  ctx.print = &sink;
  EXPECT_EQ(show(call("print", {Value::string("x ="), json(R"j({"a": [1, "s"]})j"), set_of({})}, &ctx)),
            "true");
  ASSERT_EQ(sink.lines.size(), 1u);
  EXPECT_EQ(sink.lines[0], R"j(x = {"a": [1, "s"]} set())j");
}

TEST(RegoJwt, PrivateJwkMembersAreIgnoredForVerification) {
  const jt::TestKey rsa = jt::make_key(jwt::Alg::RS256, "r1");
  nlohmann::json with_private = rsa.jwk;
  with_private["d"] = "AQAB";  // not a real private exponent: it must simply be ignored
  const std::string tok = jt::sign_token(rsa, {}, {{"iss", "x"}});
  EXPECT_EQ(show(call("io.jwt.verify_rs256", {Value::string(tok), Value::string(with_private.dump())})),
            "true");
}

}  // namespace
}  // namespace mg::rego::test
