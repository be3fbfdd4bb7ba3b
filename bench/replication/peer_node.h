// One node of the replication figures, run in this process: a Node, a
// ZmqTransport wrapped in the tests' FaultyTransport, and a PeerService.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/bench_common.h"
#include "node/core/clock.h"
#include "node/sync/peer_service.h"
#include "node/sync/sync_engine.h"
#include "node/sync/zmq_transport.h"
#include "protocol/wire.h"
#include "support/faulty_transport.h"

namespace replog::bench {

// The message type of a frame (wire::Type, 1 to 6); 0 if unreadable.
int frame_type(const std::string& bytes);
extern const char* const kTypeNames[wire::kTypeSlots];  // by frame_type: "other", "hello", ...

struct TypeCount {
  uint64_t frames = 0, bytes = 0;
};

struct WireCount {
  TypeCount out[wire::kTypeSlots], in[wire::kTypeSlots];
  uint64_t zmq_dropped[wire::kTypeSlots] = {};  // sent, but ZmqTransport dropped them
  uint64_t partition_dropped = 0;                    // lost while partitioned
  uint64_t frames_out() const;
  uint64_t bytes_out() const;
  WireCount& operator+=(const WireCount& o);
};

// "1 hello" / "none": the frames ZmqTransport dropped, by type.
std::string dropped_text(const WireCount& w);

// Threaded (the daemon's loop: PeerService::run_until on its own thread,
// polling every 5 ms, with a TurnTiming) or stepped (the main thread drives
// the engine's on_frame/on_tick; the transport holds frames, which are
// delivered hop by hop; the engine's clock is a ManualClock).
//
// The wiring is the daemon's (PeerService over the Node and a transport); the
// transport is the tests' FaultyTransport around a ZmqTransport, which counts
// the frames by type, holds them (stepped) and drops them (a partition).
struct PeerNode {
  std::string name, dir, endpoint;
  std::unique_ptr<Node> node;
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<ZmqTransport> zmq_transport;
  std::unique_ptr<testing::FaultyTransport> transport;
  SystemClock system_clock;
  std::unique_ptr<ManualClock> manual_clock;  // stepped mode
  std::unique_ptr<PeerService> service;
  std::function<void(const std::vector<Update>&)> on_commit;  // set before open()
  bool verify_origins = true;  // NodeOptions::verify_origins; set before open() (off: a baseline)
  std::thread loop;
  std::atomic<bool> stop{false};
  SyncCounters final_counters;  // read when the loop (or the node) stops
  WireCount final_wire;
  // Threaded mode: time the loop spent in on_frame, by message type, and in on_tick.
  TurnTiming timing;
  Steady::time_point loop_started, loop_ended;

  void open(const std::string& d, const std::string& n);
  uint64_t features_off = 0;  // SyncOptions::features_off of the node's engine
  bool relay_before_commit = true;  // Node::set_verified_listener; set before open()
  void start_threaded(const std::vector<std::string>& peers, uint64_t seed);
  void start_stepped(const std::vector<std::string>& peers, uint64_t seed);
  // Stops the loop, the engine, the sockets and the node (which checkpoints).
  void close();
  ~PeerNode() { close(); }

  // REQUIRES: stepped mode, or the threaded loop stopped.
  SyncEngine& engine() { return service->engine(); }
  // What the transport counted since reset_wire().
  WireCount wire() const;
  void reset_wire();
  // Stepped mode: frames wait until flush(), which returns how many of them
  // ZeroMQ took (the rest it dropped).
  void set_hold(bool hold) { transport->hold(hold); }
  size_t held() const { return transport->held(); }
  size_t flush();
  // While partitioned, every frame sent is lost (WireCount::partition_dropped).
  void set_partitioned(bool p) { transport->faults().drop = p ? 1.0 : 0.0; }

 private:
  SyncOptions sync_options(const std::vector<std::string>& peers, uint64_t seed) const;
  std::map<wire::Type, uint64_t> zmq_dropped_base_;  // ZmqTransport::dropped_sends() at reset_wire()
};

bool all_peers_ready(const PeerService& s, size_t expected);

// "event loop busy 69% of 96.1 ms: on_tick ..., updates 46.0 ms (3 frames)".
std::string loop_breakdown(const PeerNode& p);

}  // namespace replog::bench
