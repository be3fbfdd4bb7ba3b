// Stranger: a hostile peer on the simulated network, speaking the wire
// protocol by hand: a trusted but rogue device (every node trusts its key, so
// what it sends reaches the nodes through the secure transport's checks; it
// trusts everyone). It says Hello, signed as its own origin's (so nodes
// connect back and push to it),
// keeps the frames nodes send it, and on the nemesis's word:
//   - sends garbage (random bytes, or a kept frame with bytes changed);
//   - replays a kept frame to another node;
//   - lies in its vector (seqs nobody holds), and never answers a Request;
//   - forges: pushes an update under a real node's origin at its next seq,
//     with a head it signs with its own key (nodes refuse it: the key does
//     not hold the origin);
//   - relays a genuine run it was sent, with its genuine head, altered: one
//     bit of a body, of an hlc, of the head's chain or signature; two calls
//     of the run swapped (each keeps its seq and hlc); or an update dropped
//     from the middle (nodes refuse it: the bytes do not chain to the head,
//     or the head does not verify, or the run has a hole). Each such frame
//     carries a marker head (HostileLedger) so that the checks know its copies.
// Every choice comes from the run's generator.
#pragma once

#include <deque>
#include <random>
#include <string>

#include "sim/cluster.h"
#include "support/memory_transport.h"

namespace replog::sim {

class Stranger {
 public:
  Stranger(Cluster& cluster, std::mt19937_64& rng);

  // Answers Hellos and keeps what arrived; call once per step.
  void pump();
  // Each returns one line for the trace.
  std::string send_garbage();
  std::string replay_frame();
  std::string lie_in_vector();
  std::string forge_origin();
  std::string relay_altered();

 private:
  SimNode* random_live_node();
  void greet(const SimNode& target);
  void send(const SimNode& target, const std::string& bytes);
  std::string hello() const;

  static constexpr const char* kEndpoint = "tcp://stranger:7000";
  static constexpr size_t kKeptFrames = 64;
  Cluster& cluster_;
  std::mt19937_64& rng_;
  std::string signing_secret_;  // its own Ed25519 key: its Hellos and forged heads are signed with it
  std::string key_;             // its public half: the device key its transport presents
  testing::MemoryTransport transport_;
  OriginId id_;                 // the origin of key_
  std::deque<std::string> kept_;
  uint64_t forged_ = 0;
  uint64_t altered_ = 0;  // altered frames sent: the marker heads' seqs
};

}  // namespace replog::sim
