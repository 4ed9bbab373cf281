// The etcd store's pure pieces: --store etcd:// URLs, --etcd-prefix and TLS flag checks, the key
// layout and the stored values (control/etcd_keys.h).
#include "control/etcd_keys.h"

#include <gtest/gtest.h>

namespace mg::control {
namespace {

TEST(EtcdUrl, ParsesOneOrSeveralEndpoints) {
  auto one = parse_etcd_url("etcd://127.0.0.1:2379");
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(*one, std::vector<std::string>{"127.0.0.1:2379"});
  auto three = parse_etcd_url("etcd://etcd-0.local:2379,10.0.0.2:32379,[::1]:2379");
  ASSERT_TRUE(three) << three.error().to_string();
  EXPECT_EQ(*three, (std::vector<std::string>{"etcd-0.local:2379", "10.0.0.2:32379", "[::1]:2379"}));
}

TEST(EtcdUrl, RefusesWhatIsNotHostPortList) {
  for (const char* bad : {"etcd://", "etcd://127.0.0.1", "etcd://127.0.0.1:0", "etcd://127.0.0.1:65536",
                          "etcd://127.0.0.1:2379,", "etcd://,127.0.0.1:2379", "etcd://127.0.0.1:2379/prefix",
                          "etcd://user@127.0.0.1:2379", "etcd://h:2379?ca=x", "etcd://::1:2379", "etcd://[::1]2379",
                          "etcd://:2379", "etcd://h:12ab", "http://127.0.0.1:2379", "sqlite"}) {
    auto r = parse_etcd_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(is(r.error(), StoreError::Url)) << bad << ": " << r.error().to_string();
  }
}

TEST(EtcdUrl, PrefixAndTlsFlags) {
  EXPECT_TRUE(check_etcd_prefix("/meshguard/"));
  EXPECT_TRUE(check_etcd_prefix("/prod/meshguard/"));
  for (const char* bad : {"", "/", "meshguard/", "/meshguard", "/a//b/"}) EXPECT_FALSE(check_etcd_prefix(bad)) << bad;
  EtcdOptions o;
  EXPECT_TRUE(check_etcd_tls(o));  // plaintext
  o.ca_file = "ca.pem";
  EXPECT_TRUE(check_etcd_tls(o));  // server-authenticated TLS
  o.cert_file = "c.pem";
  EXPECT_FALSE(check_etcd_tls(o));  // a certificate without its key
  o.key_file = "k.pem";
  EXPECT_TRUE(check_etcd_tls(o));
  o.ca_file.clear();
  EXPECT_FALSE(check_etcd_tls(o));  // a client certificate without roots to check etcd with
}

TEST(EtcdKeys, PrefixEndCoversExactlyThePrefix) {
  EXPECT_EQ(etcd_prefix_end("/meshguard/"), "/meshguard0");  // '/' + 1 == '0'
  EXPECT_EQ(etcd_prefix_end("a\xff"), "b");
  EXPECT_EQ(etcd_prefix_end(std::string("\xff\xff")), std::string(1, '\0'));
  const std::string end = etcd_prefix_end("/meshguard/resources/");
  EXPECT_LT(std::string("/meshguard/resources/zzz"), end);
  EXPECT_GE(std::string("/meshguard/resources0"), end);
  EXPECT_GE(std::string("/meshguard/shared/x"), end);
}

TEST(EtcdKeys, ResourceKeysRoundTrip) {
  const ResourceKey policy{"AuthorizationPolicy", "default", "deny-admin"};
  EXPECT_EQ(etcd_resource_key("/meshguard/", policy), "/meshguard/resources/AuthorizationPolicy/default/deny-admin");
  EXPECT_EQ(parse_etcd_resource_key("/meshguard/", etcd_resource_key("/meshguard/", policy)), policy);
  const ResourceKey mesh{"Mesh", "", "default"};  // cluster-scoped: empty namespace
  EXPECT_EQ(etcd_resource_key("/m/", mesh), "/m/resources/Mesh//default");
  EXPECT_EQ(parse_etcd_resource_key("/m/", "/m/resources/Mesh//default"), mesh);
  for (const char* bad : {"/m/resources/Mesh/default", "/m/resources/A/b/c/d", "/m/resources//ns/n", "/m/resources/A/ns/",
                          "/other/resources/A/b/c", "/m/registrations/default/x", "/m/shared/token-key.pem"}) {
    EXPECT_FALSE(parse_etcd_resource_key("/m/", bad)) << bad;
  }
  EXPECT_TRUE(check_etcd_key_parts(policy));
  EXPECT_TRUE(check_etcd_key_parts(mesh));
  EXPECT_FALSE(check_etcd_key_parts({"AuthorizationPolicy", "a/b", "x"}));
  EXPECT_FALSE(check_etcd_key_parts({"AuthorizationPolicy", "default", ""}));
  EXPECT_EQ(etcd_registrations_prefix("/m/"), "/m/registrations/");
  EXPECT_EQ(etcd_shared_key("/m/", "token-key.pem"), "/m/shared/token-key.pem");
}

TEST(EtcdKeys, LiveKeysRoundTrip) {
  EXPECT_EQ(etcd_live_key("/m/", "host:1#ab", "shop", "details-1"), "/m/live/host:1#ab/shop/details-1");
  const LiveKey want{"host:1#ab", "shop", "details-1"};
  EXPECT_EQ(parse_etcd_live_key("/m/", "/m/live/host:1#ab/shop/details-1"), want);
  for (const char* bad : {"/m/live/host/shop", "/m/live/host/shop/a/b", "/m/live//shop/a", "/m/live/host//a",
                          "/m/live/host/shop/", "/other/live/h/ns/n", "/m/resources/A/b/c", "/m/live/"}) {
    EXPECT_FALSE(parse_etcd_live_key("/m/", bad)) << bad;
  }
}

TEST(EtcdValues, ResourceRoundTripAndRefusals) {
  const ResourceKey key{"AuthorizationPolicy", "default", "p"};
  const std::string yaml = "kind: AuthorizationPolicy\nmetadata: {name: p}\n# \"quoted\" \\ text\n";
  auto r = decode_etcd_resource(key, encode_etcd_resource(yaml, 1700000000), 42);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->yaml, yaml);
  EXPECT_EQ(r->revision, 42);
  EXPECT_EQ(r->updated_unix, 1700000000);
  EXPECT_EQ(r->key, key);
  for (const char* bad : {"", "kind: AuthorizationPolicy", "[]", "{\"yaml\": 3}", "{\"yaml\": \"x\", \"updatedUnix\": \"y\"}"}) {
    auto d = decode_etcd_resource(key, bad, 1);
    ASSERT_FALSE(d) << bad;
    EXPECT_TRUE(is(d.error(), StoreError::BadStored)) << bad;
  }
}

TEST(EtcdValues, RegistrationRoundTrip) {
  StoredRegistration reg{"default/details", "{\"opaque\": true}", true, false, 1700000123};
  auto back = decode_etcd_registration("default/details", encode_etcd_registration(reg));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, reg);
  EXPECT_FALSE(decode_etcd_registration("default/x", "{\"connected\": true}"));
  EXPECT_FALSE(decode_etcd_registration("default/x", "not json"));
}

}  // namespace
}  // namespace mg::control
