// FaultyTransport: a Transport wrapped with switches for the faults of a real
// network (STYLE: faults come from wrappers, never from `if (testing)` in the
// code under test): loss, duplication, delay, reordering, partitions, and
// counters of what was sent and received, by message type. Every random
// choice comes from one seed, so a run repeats exactly.
//
// Faults apply to frames this transport sends; a partition also drops frames
// it receives from the cut peers.
//
// Stepped delivery: while hold(true), frames that would go to the inner
// transport (after the faults) are kept, in order, until release() or
// release_one(); so a caller can deliver one hop, or one frame, at a time.
//
// Thread safety: none; the owner's event loop uses it.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/core/clock.h"
#include "node/sync/transport.h"
#include "protocol/wire.h"

namespace replog::testing {

struct Faults {
  double drop = 0;        // chance a frame is lost
  double duplicate = 0;   // chance a frame is sent twice
  double reorder = 0;     // chance a frame is held back behind later ones
  int64_t max_delay_ms = 0;  // each frame waits 0..max_delay_ms before it is sent
};

struct TrafficCounts {
  std::map<wire::Type, uint64_t> frames, bytes;  // sent, by type (what the peer was meant to get)
  std::map<wire::Type, uint64_t> frames_in, bytes_in;  // received (not cut), by type
  uint64_t dropped = 0, duplicated = 0, delayed = 0, reordered = 0, cut = 0, unreadable = 0;
};

class FaultyTransport final : public Transport {
 public:
  FaultyTransport(Transport& inner, const Clock& clock, uint64_t seed) : inner_(inner), clock_(clock), rng_(seed) {}

  Faults& faults() { return faults_; }
  // Cuts every link to and from `key` (an endpoint or a routing id), both ways.
  void partition(const std::string& key) { cut_.insert(key); }
  void heal(const std::string& key) { cut_.erase(key); }
  void heal_all() { cut_.clear(); }
  const TrafficCounts& counts() const { return counts_; }
  void reset_counts() { counts_ = TrafficCounts{}; }

  // Stepped delivery (see above). Turning hold off releases nothing by itself.
  void hold(bool on) { hold_ = on; }
  size_t held() const { return kept_.size(); }
  const std::vector<Frame>& held_frames() const { return kept_; }
  // Passes every kept frame on; returns how many reached the inner transport
  // (the rest were cut by a partition made since).
  size_t release();
  // Passes the oldest kept frame on; false if none was kept or it was cut.
  bool release_one();

  Status connect(const std::string& endpoint) override { return inner_.connect(endpoint); }
  Status connect_to(const std::string& endpoint, const std::string& peer_key) override {
    return inner_.connect_to(endpoint, peer_key);
  }
  void disconnect(const std::string& endpoint) override { inner_.disconnect(endpoint); }
  void send(const Link& link, const std::string& bytes) override;
  void wake() override { inner_.wake(); }
  // Sends what is due, then returns what arrived from peers that are not cut.
  std::vector<Frame> poll(int timeout_ms) override;

 private:
  struct Delayed {
    int64_t due_ms;
    bool behind;        // reordered: waits until a later frame has gone, or the next poll
    uint64_t sent_at;   // sent_ when it was held
    Frame frame;
  };
  bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  void pass_on(const Frame& f);
  bool deliver(const Frame& f);  // to the inner transport unless cut
  void send_due(bool polling);

  Transport& inner_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  Faults faults_;
  std::set<std::string> cut_;
  std::vector<Delayed> delayed_;
  bool hold_ = false;
  std::vector<Frame> kept_;  // while hold_: in the order sent
  uint64_t sent_ = 0;  // frames passed to the inner transport
  TrafficCounts counts_;
};

}  // namespace replog::testing
