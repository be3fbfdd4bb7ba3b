// Cluster: K real nodes in one thread — engine::Node (its writer, its replay,
// LMDB) behind a CountingStore, PeerService with the real SyncEngine, over a
// MemoryTransport wrapped in a FaultyTransport — each with its own
// ManualClock, so skew and jumps are per node.
//
// The world the nodes touch is a directory per node, in /dev/shm when it
// exists (else the temp dir): real LMDB, in memory. Disk faults come from the
// store's fault points (sim/buggify.h); under them maps start small, so they
// grow as they would on a long-lived node.
//
// Keys and trust: every node's device key is the identity key of its data
// directory (drawn from the run's seeded randomness), its Hellos are signed
// with it, and its MemoryTransport models the secure transport with it
// (support/memory_transport.h): a node trusts every other node of the
// cluster, and dials the static peers it trusts, as the daemon does. Each
// node's trust list is a real TrustStore (trust.json in its directory) that
// its engine spreads (membership, PROTOCOL.md §7), and the cluster follows
// its changes as the daemon's trust follower does: a removed device is
// forgotten, a newly trusted node dialled. A trust change is made on one
// node (distrust, trust) and reaches the others by spreading; an outsider, a
// node of the same cluster that no node trusts, can be added: it trusts and
// dials them all, and spreads nothing.
//
// A crash drops a node without close(): its committed log (data.mdb) is copied
// as it stands, the node is destroyed with its transport (frames in flight and
// pushes not yet sent are lost), and the copy is what it reopens from, so the
// checkpoint close() writes never reaches the restarted node.
//
// Thread safety: none; one thread drives everything.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/engine/node.h"
#include "node/sync/peer_service.h"
#include "sim/buggify.h"
#include "sim/counting_store.h"
#include "sim/trace.h"
#include "support/faulty_transport.h"
#include "support/memory_transport.h"

namespace replog::sim {

inline constexpr int64_t kStartMs = 1'790'000'000'000;
inline constexpr int64_t kMaxSkewMs = 2'000;  // the nodes' --max-clock-skew in simulation

struct SimNode {
  int index = 0;
  OriginId origin = 0;  // the origin it writes as, as last seen (0: not seen since its directory was replaced)
  std::string endpoint, dir;
  std::string key;                  // its device key (Ed25519, the directory's identity)
  std::string secret;               // its secret half, which signs the node's Hellos
  std::unique_ptr<TrustStore> trust;  // whom it trusts (its transport asks at every frame); outlives crashes
  uint64_t followed_generation = 0;  // of `trust`, as last followed by the engine
  std::set<std::string> followed;    // the keys trusted then
  std::unique_ptr<ManualClock> clock;
  std::unique_ptr<engine::Node> node;  // null while crashed
  uint64_t opened = 0;                  // counts its openings (Cluster::open)
  std::unique_ptr<CountingStore> store;
  std::unique_ptr<testing::MemoryTransport> memory;
  std::unique_ptr<testing::FaultyTransport> transport;
  std::unique_ptr<PeerService> service;
  bool up() const { return node != nullptr; }
};

// A node that moved to a fresh origin of its own (its origin forked, or
// another node wrote as it). A directory copied over a node is no move.
struct OriginMove {
  int node = 0;
  OriginId from = 0, to = 0;
};

class Cluster {
 public:
  // Makes `count` nodes of one cluster (the first records the schema) and starts them.
  // `buggify` (may be null) learns each node's directory.
  Cluster(int count, std::mt19937_64& rng, Trace& trace, Buggify* buggify = nullptr);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Advances every clock by `ms`, then runs each live node's event loop `rounds` times.
  void tick(int64_t ms, int rounds = 3);
  void crash(int i);    // REQUIRES: up
  void restart(int i);  // REQUIRES: down
  // Rewrites node i's log as storage format 4 left it (every head in
  // `heads`), so that its restart reads and upgrades that layout. Returns the
  // heads moved. REQUIRES: down
  size_t rewrite_as_format_4(int i);
  // Waits until node i's writer is idle (no checkpoint being written). REQUIRES: up
  void settle(int i);
  // Replaces node `to`'s directory with a copy of node `from`'s committed log:
  // `to` comes back with `from`'s node id and origin (no OriginMove). REQUIRES: from up, to down
  void copy_directory(int from, int to);
  // Node `a` removes `b` from its trust list (`trust remove` there): its
  // transport refuses b's frames and, when a is up, its engine forgets b
  // (links and state), as the daemon does on a removal; the removal spreads
  // to the nodes a reaches. `b` may be the outsider.
  void distrust(int a, const SimNode& b);
  // Node `a` trusts `b` again (`trust add` there) and, when up, dials it; that spreads too.
  void trust(int a, const SimNode& b);
  // Whether node i trusts `key` now.
  bool trusts(int i, const std::string& key) const;
  // Every node trusts `key` (a rogue device among the trusted ones).
  void trust_everywhere(const std::string& key);
  // Every node trusts every other again; those up dial whom they had forgotten.
  void restore_trust();
  // Adds the outsider: a node of the cluster (in its own directory, with its
  // own key) that trusts and dials every node, which none trusts. It ticks
  // with the others but is not among nodes(). REQUIRES: no outsider yet
  SimNode& add_outsider();
  SimNode* outsider() { return outsider_.get(); }
  // Sets every clock to the furthest one (time service restored).
  void align_clocks();
  // True when every node is up with one state hash, the same fork evidence,
  // and one vector below the fork seqs.
  bool converged() const;
  // Frames sent so far by every node, by any path (for the trace).
  uint64_t frames_sent() const;
  // Runs the nodes verified on their loops ahead of their writers
  // (Node::ahead_counts), crashed ones' included.
  uint64_t runs_verified_ahead() const;
  std::map<wire::Type, uint64_t> frames() const;
  // The same by message type, named: "hello 12 error 0 vector 40 ...".
  std::string frames_by_type() const;

  testing::MemoryNetwork& network() { return net_; }
  std::vector<SimNode>& nodes() { return nodes_; }
  const std::string& cluster_id() const { return cluster_id_; }
  const Refusals& refusals() const { return refusals_; }
  // Every move of a node to a fresh origin so far, in order (seen after each
  // round of the event loops, and at each open).
  const std::vector<OriginMove>& moves() const { return moves_; }
  // What a hostile peer made up or altered: nodes refuse it, and that is no fault.
  HostileLedger& hostile() { return hostile_; }
  const HostileLedger& hostile() const { return hostile_; }

 private:
  void init_directory(SimNode& n, bool first);
  SyncOptions sync_options(const SimNode& n);
  void open(SimNode& n);
  // The daemon's trust follower: forgets devices no longer trusted, dials cluster nodes newly trusted.
  void follow_trust(SimNode& n);
  // Notes a move when node n writes as another origin than last seen.
  void follow_origin(SimNode& n);

  std::string root_;
  std::string cluster_id_;
  std::mt19937_64& rng_;
  Trace& trace_;
  Buggify* buggify_;
  testing::MemoryNetwork net_;
  Refusals refusals_;
  HostileLedger hostile_;
  std::vector<OriginMove> moves_;
  std::vector<SimNode> nodes_;  // never grows once made: transports read their `trust` lists
  std::unique_ptr<SimNode> outsider_;
  std::map<wire::Type, uint64_t> frames_of_crashed_;
  uint64_t ahead_of_crashed_ = 0;
};

Value schema_document();

}  // namespace replog::sim
