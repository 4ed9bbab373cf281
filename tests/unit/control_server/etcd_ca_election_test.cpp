// control/etcd_ca_rotation.h's CaElection against a real etcd (the `etcd` binary, started by the
// test on kernel-chosen ports; skipped without it): one leader at a time; a leader whose lease
// expired (as when its process is paused past the TTL) cannot write once another replica took
// over — its write fails the fence compare and leaves the new leader's state alone; a rotation
// whose leader is gone is rolled back only while nobody leads.
#include "control/etcd_ca_rotation.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "control/etcd_client.h"
#include "control/shared_ca.h"

namespace mg::control {
namespace {

namespace pb = ::etcdserverpb;

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// True once something accepts on 127.0.0.1:port (polled: bounded by the caller).
bool accepting(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string etcd_binary() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    std::string path = std::string(dir) + "/etcd";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// One etcd member on 127.0.0.1, killed (and its data dir removed) at the end.
class EtcdCaElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = etcd_binary();
    if (bin.empty()) GTEST_SKIP() << "no etcd binary (Debian etcd-server)";
    char tmpl[] = "/tmp/mg-etcd-election.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const int client = free_port(), peer = free_port();
    const std::string client_url = "http://127.0.0.1:" + std::to_string(client);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    const std::string log = dir_ + "/etcd.log";
    std::vector<std::string> args = {bin,
                                     "--name",
                                     "e0",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--listen-client-urls",
                                     client_url,
                                     "--advertise-client-urls",
                                     client_url,
                                     "--listen-peer-urls",
                                     peer_url,
                                     "--initial-advertise-peer-urls",
                                     peer_url,
                                     "--initial-cluster",
                                     "e0=" + peer_url,
                                     "--heartbeat-interval",
                                     "50",
                                     "--election-timeout",
                                     "500"};
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      FILE* out = std::fopen(log.c_str(), "w");
      if (out) {
        ::dup2(fileno(out), 1);
        ::dup2(fileno(out), 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !accepting(client); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EtcdOptions options;
    options.endpoints = {"127.0.0.1:" + std::to_string(client)};
    options.prefix = "/election-test/";
    auto made = EtcdClient::create(options);
    ASSERT_TRUE(made) << made.error().to_string();
    client_ = std::move(*made);
    client_->budget = std::chrono::milliseconds(20'000);  // covers etcd's start
    // The CA's key exists before any rotation (as a replica's first start leaves it).
    pb::TxnRequest put;
    auto* p = put.add_success()->mutable_request_put();
    p->set_key(etcd_shared_key(options.prefix, kSharedCaName));
    p->set_value("v0");
    auto done = client_->txn(put);
    ASSERT_TRUE(done) << done.error().to_string();
    client_->budget = std::chrono::milliseconds(5'000);
  }

  void TearDown() override {
    client_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string shared_value() {
    auto state = CaElection(*client_, "/election-test/", "reader").read();
    EXPECT_TRUE(state);
    return state && state->value ? *state->value : "";
  }

  pid_t pid_ = -1;
  std::string dir_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdCaElectionTest, OneLeaderAtATime) {
  CaElection a(*client_, "/election-test/", "replica-a"), b(*client_, "/election-test/", "replica-b");
  auto lease_a = client_->lease_grant(30), lease_b = client_->lease_grant(30);
  ASSERT_TRUE(lease_a && lease_b);
  auto state = a.read();
  ASSERT_TRUE(state);
  EXPECT_EQ(state->leader, "");
  auto fence = a.begin(*lease_a, state->mod_revision, "a: pending");
  ASSERT_TRUE(fence) << fence.error().to_string();
  // B, from the same read: refused, the leader named.
  auto refused = b.begin(*lease_b, state->mod_revision, "b: pending");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "control.ca_rotation_busy");
  EXPECT_NE(refused.error().message.find("led by replica replica-a"), std::string::npos);
  // While A leads, nobody rolls its rotation back.
  auto now = a.read();
  ASSERT_TRUE(now);
  EXPECT_EQ(now->leader, "replica-a");
  auto recovered = b.recover(now->mod_revision, "b: rolled back");
  ASSERT_TRUE(recovered);
  EXPECT_FALSE(*recovered);
  EXPECT_EQ(shared_value(), "a: pending");
  // A finishes: its value stored, the election free again.
  ASSERT_TRUE(a.finish(*fence, "a: done"));
  auto after = b.read();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after->value, "a: done");
  EXPECT_EQ(after->leader, "");
  // Its fence is spent: a second write with it fails.
  EXPECT_FALSE(a.finish(*fence, "a: again"));
  EXPECT_EQ(shared_value(), "a: done");
}

TEST_F(EtcdCaElectionTest, ADeposedLeaderCannotWrite) {
  CaElection a(*client_, "/election-test/", "replica-a"), b(*client_, "/election-test/", "replica-b");
  // A leads under a short lease it never keeps alive: as if its process were paused (SIGSTOP)
  // past the TTL.
  auto lease_a = client_->lease_grant(2);
  ASSERT_TRUE(lease_a);
  auto state = a.read();
  ASSERT_TRUE(state);
  auto fence_a = a.begin(*lease_a, state->mod_revision, "a: pending");
  ASSERT_TRUE(fence_a) << fence_a.error().to_string();
  // The lease expires: the election key goes with it (bounded wait: 15 s).
  bool gone = false;
  for (int i = 0; i < 150 && !gone; ++i) {
    auto now = b.read();
    ASSERT_TRUE(now);
    gone = now->leader.empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(gone) << "A's election key outlived its lease";
  // B rolls A's rotation back, then leads its own.
  auto now = b.read();
  ASSERT_TRUE(now);
  auto recovered = b.recover(now->mod_revision, "b: a's rotation rolled back");
  ASSERT_TRUE(recovered);
  EXPECT_TRUE(*recovered);
  auto lease_b = client_->lease_grant(30);
  ASSERT_TRUE(lease_b);
  now = b.read();
  ASSERT_TRUE(now);
  auto fence_b = b.begin(*lease_b, now->mod_revision, "b: pending");
  ASSERT_TRUE(fence_b) << fence_b.error().to_string();
  // A wakes up and writes the end of its rotation: refused by the fence, B's state untouched.
  auto deposed = a.finish(*fence_a, "a: done (stale)");
  ASSERT_FALSE(deposed);
  EXPECT_EQ(deposed.error().code, "control.ca_rotation_deposed");
  EXPECT_NE(deposed.error().message.find("lease expired"), std::string::npos);
  EXPECT_EQ(shared_value(), "b: pending");
  auto held = b.read();
  ASSERT_TRUE(held);
  EXPECT_EQ(held->leader, "replica-b");
  // A's lease is gone for keep-alives too (what tells a real replica to take a new one).
  auto ttl = client_->lease_keep_alive(*lease_a);
  ASSERT_TRUE(ttl) << ttl.error().to_string();
  EXPECT_LE(*ttl, 0);
  ASSERT_TRUE(b.finish(*fence_b, "b: done"));
  EXPECT_EQ(shared_value(), "b: done");
}

TEST_F(EtcdCaElectionTest, AcknowledgementsLiveWithTheirLease) {
  CaElection a(*client_, "/election-test/", "replica-a"), b(*client_, "/election-test/", "replica-b");
  auto lease_a = client_->lease_grant(30), lease_b = client_->lease_grant(30);
  ASSERT_TRUE(lease_a && lease_b);
  ASSERT_TRUE(a.put_ack(*lease_a, "h1"));
  ASSERT_TRUE(b.put_ack(*lease_b, "h2"));
  auto acks = a.acks();
  ASSERT_TRUE(acks);
  EXPECT_EQ(*acks, (std::map<std::string, std::string>{{"replica-a", "h1"}, {"replica-b", "h2"}}));
  ASSERT_TRUE(client_->lease_revoke(*lease_b));  // replica b gone
  acks = a.acks();
  ASSERT_TRUE(acks);
  EXPECT_EQ(*acks, (std::map<std::string, std::string>{{"replica-a", "h1"}}));
}

// Another mesh's rotation (`ca rotate --mesh`) has keys of its own: it leads while the default
// mesh's is led, writes only shared/meshes/<mesh>/ca, and its acknowledgements are not among the
// default mesh's (nor the other way round).
TEST_F(EtcdCaElectionTest, EachMeshHasItsOwnElectionAndAcks) {
  pb::TxnRequest put;
  auto* p = put.add_success()->mutable_request_put();
  p->set_key("/election-test/shared/meshes/payments/ca");
  p->set_value("p0");
  ASSERT_TRUE(client_->txn(put));
  CaElection def(*client_, "/election-test/", "replica-a"), def_b(*client_, "/election-test/", "replica-b");
  CaElection pay(*client_, "/election-test/", "replica-b", "payments");
  EXPECT_EQ(pay.shared_key(), "/election-test/shared/meshes/payments/ca");
  EXPECT_EQ(pay.election_key(), "/election-test/election/meshes/payments/ca");
  EXPECT_EQ(CaElection(*client_, "/election-test/", "x", "default").shared_key(), def.shared_key())
      << "\"default\" is the default mesh";
  auto lease = client_->lease_grant(30);
  ASSERT_TRUE(lease);
  auto d = def.read();
  ASSERT_TRUE(d);
  auto def_fence = def.begin(*lease, d->mod_revision, "d: pending");
  ASSERT_TRUE(def_fence) << def_fence.error().to_string();
  auto m = pay.read();
  ASSERT_TRUE(m);
  EXPECT_EQ(*m->value, "p0");
  EXPECT_EQ(m->leader, "") << "the default mesh's leader does not lead payments' rotation";
  auto pay_fence = pay.begin(*lease, m->mod_revision, "p: pending");
  ASSERT_TRUE(pay_fence) << pay_fence.error().to_string();
  EXPECT_EQ(shared_value(), "d: pending");
  ASSERT_TRUE(pay.finish(*pay_fence, "p: done"));
  EXPECT_EQ(shared_value(), "d: pending") << "payments' end left the default CA alone";
  auto after = pay.read();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after->value, "p: done");
  EXPECT_EQ(def.read()->leader, "replica-a");

  ASSERT_TRUE(def.put_ack(*lease, "default-hash"));
  ASSERT_TRUE(pay.put_ack(*lease, "payments-hash"));
  auto def_acks = def_b.acks();
  ASSERT_TRUE(def_acks);
  EXPECT_EQ(*def_acks, (std::map<std::string, std::string>{{"replica-a", "default-hash"}}));
  auto pay_acks = pay.acks();
  ASSERT_TRUE(pay_acks);
  EXPECT_EQ(*pay_acks, (std::map<std::string, std::string>{{"replica-b", "payments-hash"}}));
  EXPECT_EQ(CaElection(*client_, "/election-test/", "c", "pay").acks()->size(), 0u)
      << "a mesh whose name is another's prefix sees none of its acknowledgements";
  ASSERT_TRUE(def.finish(*def_fence, "d: done"));
}

}  // namespace
}  // namespace mg::control
