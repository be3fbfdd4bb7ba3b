// Signed origins for the benchmarks (PROTOCOL.md §8): Ed25519 key pairs made
// from a deterministic seed, the origin ids they derive, each origin's hash
// chain over the updates made here, and heads signed at the ends of runs, so
// that every benchmark feeds Node::ingest real signed runs and the node
// verifies them (NodeOptions::verify_origins, on by default).
//
// The same cluster, seed and count give the same keys, ids, chains and heads,
// so two nodes built apart (a source and its twin) hold the same bytes.
//
// Thread safety: one object per thread; const members may be shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/origin_proof.h"
#include "protocol/update.h"

namespace replog::bench {

// The cluster of every node a benchmark builds: heads are bound to it.
inline const std::string kBenchCluster = "b0b0b0b0-be7c-0001";

// A head at least every this many body bytes of an origin's run, as a node
// signs its own (node/engine/signing.cc).
constexpr uint64_t kHeadEveryBytes = uint64_t{1} << 20;

class SignedOrigins {
 public:
  // `count` origins of `cluster`, origin k's key made from (seed, k) alone.
  SignedOrigins(std::string cluster, uint64_t seed, size_t count);

  size_t size() const { return origins_.size(); }
  const std::string& cluster() const { return cluster_; }
  OriginId origin(size_t k) const { return origins_[k].id; }
  std::vector<OriginId> ids() const;
  const std::string& key(size_t k) const { return origins_[k].key; }
  const std::string& secret(size_t k) const { return origins_[k].secret; }
  // The index of `origin`; dies when it is not one of these.
  size_t index_of(OriginId origin) const;
  // Updates made so far for origin k.
  uint64_t seq(size_t k) const { return origins_[k].chains.size() - 1; }
  // c_s of origin k, s in 0..seq(k).
  const proof::Chain& chain_at(size_t k, uint64_t s) const { return origins_[k].chains[s]; }

  // The next update of origin k (seq(k) + 1) at `hlc`, chained. REQUIRES:
  // `hlc` above the origin's previous one (dies otherwise).
  Update append(size_t k, uint64_t hlc, std::string_view method, std::string_view arg);

  // Origin k's head at seq s (1..seq(k)), signed now; with its key when `with_key`.
  proof::Head head(size_t k, uint64_t s, bool with_key) const;

  // The heads that cover `updates`, in which each origin's updates are one
  // run of consecutive seqs (in any order): per origin one head at the run's
  // last seq, and before it one wherever kHeadEveryBytes of the run's bodies
  // have gathered since the run's start or its previous head. The first head
  // of a run that starts at seq 1 carries the key. Dies on a run with a hole.
  std::vector<proof::Head> heads_for(const std::vector<Update>& updates) const;

 private:
  struct Origin {
    OriginId id = 0;
    std::string key, secret;
    std::vector<proof::Chain> chains;  // chains[s] = c_s
    uint64_t last_hlc = 0;
  };
  std::string cluster_;
  std::vector<Origin> origins_;
};

// Updates and the heads that cover them: one Node::ingest.
struct SignedBatch {
  std::vector<Update> updates;
  std::vector<proof::Head> heads;
};

// A batch with the heads SignedOrigins::heads_for gives it.
SignedBatch signed_batch(const SignedOrigins& origins, std::vector<Update> updates);

}  // namespace replog::bench
