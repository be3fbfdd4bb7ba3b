// Figure 4g: the raw reference of the mesh latency. The links and calls of
// figure 4, with nothing of replog: each raw node is one thread with an LMDB
// environment (RawEnv, durable commits), a ZeroMQ ROUTER it receives on and a
// DEALER to each neighbour, on its own context, over loopback TCP.
// - A call is one durable commit of a 120-byte body, then an Ed25519
//   signature over it (as a node signs its head after the commit).
// - A receiver verifies each message it gets, commits what one poll brought
//   in one transaction, and forwards it to its children in the origin's
//   shortest-path tree (worked out here from the whole graph, which no node
//   of a real mesh knows): each node gets each message once, from the
//   nearest hop.
// So it is what the machine's CPUs and disk give such a mesh at the least:
// no version vectors, no pulls, no trees to learn, no state to apply.
#include "replication/raw_mesh.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/bench_common.h"
#include "common/raw_lmdb.h"
#include "node/core/clock.h"

namespace replog::bench {

namespace {

constexpr size_t kBody = 120;
// origin (8) | seq (8) | the origin's commit time, steady ns (8) | body | signature over all before it
constexpr size_t kSigned = 24 + kBody;
constexpr size_t kMessage = kSigned + crypto_sign_BYTES;

int64_t now_ns() { return Steady::now().time_since_epoch().count(); }

uint64_t read_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// For each origin, each node's children in the origin's shortest-path tree
// (breadth first; the lower-numbered parent where there are several).
std::vector<std::vector<std::vector<int>>> shortest_path_trees(const std::vector<std::set<int>>& links) {
  const size_t nn = links.size();
  std::vector<std::vector<std::vector<int>>> children(nn, std::vector<std::vector<int>>(nn));
  for (size_t o = 0; o < nn; ++o) {
    std::vector<bool> seen(nn);
    std::vector<size_t> queue{o};
    seen[o] = true;
    for (size_t k = 0; k < queue.size(); ++k)
      for (int j : links[queue[k]])
        if (!seen[static_cast<size_t>(j)]) {
          seen[static_cast<size_t>(j)] = true;
          children[o][queue[k]].push_back(j);
          queue.push_back(static_cast<size_t>(j));
        }
  }
  return children;
}

struct RawNode {
  std::unique_ptr<RawEnv> env;
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<zmq::socket_t> in;
  std::map<int, zmq::socket_t> out;  // by neighbour
  std::string endpoint;
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sk{};
  // (origin, seq, ns from the origin's commit to this node's), per message received
  std::vector<std::array<int64_t, 3>> received;
  uint64_t calls = 0;
  double verify_cpu = 0;
};

struct Run {
  const std::vector<std::vector<std::vector<int>>>& children;
  std::vector<std::unique_ptr<RawNode>>& nodes;
  std::chrono::nanoseconds interval;
  uint64_t calls_each = 0;
  bool verify = true;
  Steady::time_point t0, deadline;
};

void forward(RawNode& self, const Run& run, size_t me, uint64_t origin, const std::string& msg) {
  for (int child : run.children[origin][me]) self.out.at(child).send(zmq::buffer(msg), zmq::send_flags::none);
}

void call(RawNode& self, const Run& run, size_t me) {
  ++self.calls;
  std::string msg(kMessage, '\0');
  const uint64_t origin = me, seq = self.calls;
  std::memcpy(msg.data(), &origin, 8);
  std::memcpy(msg.data() + 8, &seq, 8);
  std::memset(msg.data() + 24, static_cast<int>('a' + me % 26), kBody);
  const Update u = Update::make(UpdateId{seq, origin + 1}, seq, "set", msg.substr(24, kBody));
  self.env->write([&](MDB_txn* txn) { self.env->put_update(txn, u); });
  const int64_t committed = now_ns();
  std::memcpy(msg.data() + 16, &committed, 8);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(msg.data() + kSigned), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), kSigned, self.sk.data());
  forward(self, run, me, origin, msg);
}

// What one poll brought: verified, committed in one transaction, forwarded.
void take_messages(RawNode& self, const Run& run, size_t me) {
  std::vector<std::string> batch;
  zmq::message_t identity, body;
  while (self.in->recv(identity, zmq::recv_flags::dontwait)) {
    if (!self.in->recv(body, zmq::recv_flags::none) || body.size() != kMessage) die("figure 4g: a malformed message");
    std::string msg(static_cast<const char*>(body.data()), body.size());
    const uint64_t origin = read_u64(msg.data());
    if (origin >= run.nodes.size()) die("figure 4g: a message of no node");
    if (run.verify) {
      const int64_t c0 = thread_cpu_ns();
      const int bad = crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(msg.data() + kSigned),
                                                  reinterpret_cast<const unsigned char*>(msg.data()), kSigned,
                                                  run.nodes[origin]->pk.data());
      self.verify_cpu += static_cast<double>(thread_cpu_ns() - c0) * 1e-9;
      if (bad) die("figure 4g: a signature did not verify");
    }
    batch.push_back(std::move(msg));
  }
  if (batch.empty()) return;
  self.env->write([&](MDB_txn* txn) {
    for (const auto& m : batch) {
      const uint64_t origin = read_u64(m.data()), seq = read_u64(m.data() + 8);
      self.env->put_update(txn, Update::make(UpdateId{seq, origin + 1}, seq, "set", m.substr(24, kBody)));
    }
  });
  const int64_t now = now_ns();
  for (const auto& m : batch) {
    const uint64_t origin = read_u64(m.data());
    self.received.push_back({static_cast<int64_t>(origin), static_cast<int64_t>(read_u64(m.data() + 8)),
                             now - static_cast<int64_t>(read_u64(m.data() + 16))});
    forward(self, run, me, origin, m);
  }
}

// One raw node's thread: calls on time, and between calls takes what arrives,
// until it has made its calls and received every other node's.
void run_node(const Run& run, size_t me) {
  RawNode& self = *run.nodes[me];
  const uint64_t expected = run.calls_each * (run.nodes.size() - 1);
  zmq::pollitem_t item{self.in->handle(), 0, ZMQ_POLLIN, 0};
  while (self.calls < run.calls_each || self.received.size() < expected) {
    const auto now = Steady::now();
    if (now > run.deadline) return;
    const auto next = run.t0 + static_cast<int64_t>(self.calls) * run.interval;
    if (self.calls < run.calls_each && now >= next) {
      call(self, run, me);
      continue;
    }
    const auto wait = self.calls < run.calls_each ? next - now : std::chrono::nanoseconds(5'000'000);
    const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait);
    zmq::poll(&item, 1, wait_ms);
    take_messages(self, run, me);
  }
}

void open_nodes(std::vector<std::unique_ptr<RawNode>>& nodes, const std::vector<std::set<int>>& links) {
  for (size_t i = 0; i < links.size(); ++i) {
    auto n = std::make_unique<RawNode>();
    n->env = std::make_unique<RawEnv>(fresh_dir("raw-mesh-" + std::to_string(i)));
    n->context = std::make_unique<zmq::context_t>(1);
    n->in = std::make_unique<zmq::socket_t>(*n->context, zmq::socket_type::router);
    n->in->set(zmq::sockopt::linger, 0);
    n->in->bind("tcp://127.0.0.1:*");
    n->endpoint = n->in->get(zmq::sockopt::last_endpoint);
    crypto_sign_keypair(n->pk.data(), n->sk.data());
    nodes.push_back(std::move(n));
  }
  for (size_t i = 0; i < links.size(); ++i)
    for (int j : links[i]) {
      zmq::socket_t s(*nodes[i]->context, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.connect(nodes[static_cast<size_t>(j)]->endpoint);
      nodes[i]->out.emplace(j, std::move(s));
    }
}

}  // namespace

RawMeshResult raw_mesh(const std::vector<std::set<int>>& links, double rate, double seconds, bool verify) {
  if (sodium_init() < 0) die("figure 4g: libsodium did not start");
  const auto children = shortest_path_trees(links);
  std::vector<std::unique_ptr<RawNode>> nodes;
  open_nodes(nodes, links);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the DEALERs connect
  Run run{children, nodes, std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate)),
          static_cast<uint64_t>(std::ceil(seconds * rate)), verify, Steady::now() + std::chrono::milliseconds(50), {}};
  run.deadline = run.t0 + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000) + 30'000);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < nodes.size(); ++i) threads.emplace_back([&run, i] { run_node(run, i); });
  for (auto& t : threads) t.join();
  RawMeshResult r;
  std::map<std::pair<int64_t, int64_t>, int64_t> slowest;
  for (const auto& n : nodes) {
    r.calls += n->calls;
    r.verify_cpu += n->verify_cpu;
    for (const auto& [origin, seq, ns] : n->received) {
      r.each.push_back(static_cast<double>(ns) * 1e-9);
      auto& s = slowest[{origin, seq}];
      s = std::max(s, ns);
    }
  }
  r.expected = r.calls * (nodes.size() - 1);
  for (const auto& [_, ns] : slowest) r.all.push_back(static_cast<double>(ns) * 1e-9);
  std::sort(r.each.begin(), r.each.end());
  std::sort(r.all.begin(), r.all.end());
  return r;
}

}  // namespace replog::bench
