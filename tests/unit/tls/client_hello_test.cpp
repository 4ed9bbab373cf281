#include "tls/client_hello.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace mg::tls {
namespace {

// A real ClientHello: what OpenSSL's client writes first, with `sni` (none when empty).
std::string openssl_client_hello(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  SSL_connect(ssl);  // wants to read: the ClientHello is written
  std::string bytes;
  char buf[4096];
  int n;
  while ((n = BIO_read(out, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return bytes;
}

// A hand-made ClientHello record around `extensions` (the extensions block's contents).
std::string client_hello(const std::string& extensions, bool with_extensions = true) {
  std::string body;
  body += "\x03\x03";
  body += std::string(32, 'r');
  body += '\0';                                // session id
  body += std::string("\x00\x02\x13\x01", 4);  // one cipher suite
  body += std::string("\x01\x00", 2);          // null compression
  if (with_extensions) {
    body += static_cast<char>(extensions.size() >> 8);
    body += static_cast<char>(extensions.size() & 0xff);
    body += extensions;
  }
  std::string message = "\x01";
  message += '\0';
  message += static_cast<char>(body.size() >> 8);
  message += static_cast<char>(body.size() & 0xff);
  message += body;
  std::string record = "\x16\x03\x01";
  record += static_cast<char>(message.size() >> 8);
  record += static_cast<char>(message.size() & 0xff);
  return record + message;
}

std::string u16(size_t n) { return std::string{static_cast<char>(n >> 8), static_cast<char>(n & 0xff)}; }

std::string server_name_ext(const std::string& names_list) {
  const std::string body = u16(names_list.size()) + names_list;
  return std::string("\x00\x00", 2) + u16(body.size()) + body;
}

std::string host_entry(const std::string& name) { return std::string(1, '\0') + u16(name.size()) + name; }

TEST(ClientHello, ReadsTheSniOfARealClientHello) {
  const std::string hello = openssl_client_hello("Edition.CNN.com");
  auto p = parse_client_hello(hello);
  ASSERT_EQ(p.state, ClientHelloParse::State::Complete) << p.error.to_string();
  EXPECT_EQ(p.sni, "edition.cnn.com");
  EXPECT_EQ(p.length, hello.size());
  // Bytes after it (early data, say) are not part of it.
  EXPECT_EQ(parse_client_hello(hello + "\x17\x03\x03").length, hello.size());
}

TEST(ClientHello, EveryShorterPrefixIsIncomplete) {
  const std::string hello = openssl_client_hello("api.example.com");
  for (size_t n = 0; n < hello.size(); ++n) {
    ASSERT_EQ(parse_client_hello(hello.substr(0, n)).state, ClientHelloParse::State::Incomplete) << n;
  }
}

TEST(ClientHello, NoSniIsCompleteWithAnEmptyName) {
  auto p = parse_client_hello(openssl_client_hello(""));
  ASSERT_EQ(p.state, ClientHelloParse::State::Complete);
  EXPECT_EQ(p.sni, "");
  auto bare = parse_client_hello(client_hello("", false));
  ASSERT_EQ(bare.state, ClientHelloParse::State::Complete) << bare.error.to_string();
  EXPECT_EQ(bare.sni, "");
}

TEST(ClientHello, ReassemblesAClientHelloSplitOverTwoRecords) {
  const std::string one = client_hello(server_name_ext(host_entry("a.example.com")));
  const std::string message = one.substr(5);
  const std::string first = message.substr(0, 10), second = message.substr(10);
  const std::string two = std::string("\x16\x03\x01", 3) + u16(first.size()) + first +
                          std::string("\x16\x03\x01", 3) + u16(second.size()) + second;
  auto p = parse_client_hello(two);
  ASSERT_EQ(p.state, ClientHelloParse::State::Complete) << p.error.to_string();
  EXPECT_EQ(p.sni, "a.example.com");
  EXPECT_EQ(p.length, two.size());
}

TEST(ClientHello, RefusesWhatIsNotAClientHello) {
  EXPECT_EQ(parse_client_hello("GET / HTTP/1.1\r\n").error.code, "tls.client_hello.not_handshake");
  EXPECT_EQ(parse_client_hello("G").state, ClientHelloParse::State::Invalid);
  EXPECT_EQ(parse_client_hello(std::string("\x16\x02", 2)).error.code, "tls.client_hello.bad_record_version");
  EXPECT_EQ(parse_client_hello(std::string("\x16\x03\x01\x00\x00", 5)).error.code,
            "tls.client_hello.bad_record_length");
  EXPECT_EQ(parse_client_hello(std::string("\x16\x03\x01\x40\x01", 5)).error.code,
            "tls.client_hello.bad_record_length");
  // A ServerHello (type 2) is not what a client sends first.
  std::string server = client_hello("");
  server[5] = '\x02';
  EXPECT_EQ(parse_client_hello(server).error.code, "tls.client_hello.not_client_hello");
}

TEST(ClientHello, RefusesBadLengthsAndNames) {
  // An extension longer than the block.
  std::string ext = server_name_ext(host_entry("a.example.com"));
  ext[3] = '\x7f';
  EXPECT_EQ(parse_client_hello(client_hello(ext)).error.code, "tls.client_hello.bad_extensions");
  // Two server_name extensions; two host names in one.
  const std::string sn = server_name_ext(host_entry("a.example.com"));
  EXPECT_EQ(parse_client_hello(client_hello(sn + sn)).error.code, "tls.client_hello.duplicate_server_name");
  EXPECT_EQ(
      parse_client_hello(client_hello(server_name_ext(host_entry("a.com") + host_entry("b.com")))).error.code,
      "tls.client_hello.duplicate_server_name");
  // Names that are not DNS host names.
  const std::vector<std::string> bads = {
      "a.example.com.", "", "a..b", "a b.com", std::string("a\0b", 3), "a/b", std::string(64, 'a') + ".com"};
  for (const std::string& bad : bads) {
    EXPECT_EQ(parse_client_hello(client_hello(server_name_ext(host_entry(bad)))).error.code,
              "tls.client_hello.bad_host_name")
        << bad;
  }
  // A name entry overrunning its list.
  std::string overrun = server_name_ext(host_entry("a.example.com"));
  overrun[8] = '\x7f';
  EXPECT_EQ(parse_client_hello(client_hello(overrun)).state, ClientHelloParse::State::Invalid);
}

TEST(ClientHello, IsBounded) {
  // A ClientHello declaring more than the bound is refused as soon as its header says so.
  std::string huge = std::string("\x16\x03\x01\x40\x00", 5) + std::string("\x01\x01\x00\x00", 4);
  EXPECT_EQ(parse_client_hello(huge).error.code, "tls.client_hello.too_large");
  // Tiny records that never complete a message stop at the bound.
  std::string tiny;
  tiny += std::string("\x16\x03\x01\x00\x04\x01\x00\x40\x00", 9);  // a 16 KiB message announced
  while (tiny.size() < kClientHelloMaxBytes + 16) tiny += std::string("\x16\x03\x01\x00\x01", 5) + "x";
  EXPECT_EQ(parse_client_hello(tiny).state, ClientHelloParse::State::Invalid);
}

}  // namespace
}  // namespace mg::tls
