// One node of the replication figures, run in this process: a Node, a
// ZmqTransport wrapped in a CountingTransport, and a SyncEngine.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/bench_common.h"
#include "node/core/clock.h"
#include "node/sync/sync_engine.h"
#include "node/sync/transport.h"
#include "node/sync/zmq_transport.h"

namespace replog::bench {

// The message type of a frame (wire::Type, 1 to 6); 0 if unreadable.
int frame_type(const std::string& bytes);
extern const char* const kTypeNames[7];  // by frame_type: "other", "hello", ...

struct TypeCount {
  uint64_t frames = 0, bytes = 0;
};

struct WireCount {
  TypeCount out[7], in[7];
  uint64_t zmq_dropped[7] = {0, 0, 0, 0, 0, 0, 0};  // sent, but ZmqTransport dropped them
  uint64_t partition_dropped = 0;
  uint64_t frames_out() const;
  uint64_t bytes_out() const;
  WireCount& operator+=(const WireCount& o);
};

// "1 hello" / "none": the frames ZmqTransport dropped, by type.
std::string dropped_text(const WireCount& w);

// A Transport that counts frames by type, and for the stepped figures holds
// them until flush() or drops them (a partition).
class CountingTransport final : public Transport {
 public:
  explicit CountingTransport(ZmqTransport& inner) : inner_(inner) {}
  Status connect(const std::string& endpoint) override { return inner_.connect(endpoint); }
  void disconnect(const std::string& endpoint) override { inner_.disconnect(endpoint); }
  void send(const Link& link, const std::string& bytes) override;
  std::vector<Frame> poll(int timeout_ms) override;
  // Stepped mode: frames wait in the outbox until flush(); returns how many of
  // them ZeroMQ took (the rest it dropped).
  void set_hold(bool hold) { hold_ = hold; }
  void set_partitioned(bool p) { partitioned_ = p; }
  size_t flush();
  size_t held() const { return outbox_.size(); }
  const WireCount& count() const { return count_; }
  void reset_count() { count_ = WireCount{}; }

 private:
  // Sends through ZeroMQ; returns how many frames it dropped (0 or 1).
  uint64_t send_inner(const Link& link, const std::string& bytes);

  ZmqTransport& inner_;
  bool hold_ = false, partitioned_ = false;
  std::vector<Frame> outbox_;
  WireCount count_;
};

// Threaded (as daemon.cc does: its own event-loop thread polling every 5 ms)
// or stepped (the main thread drives on_frame/on_tick; frames are held and
// delivered hop by hop; the engine's clock is a ManualClock).
struct PeerNode {
  std::string name, dir, endpoint;
  std::unique_ptr<Node> node;
  std::unique_ptr<zmq::context_t> context;
  std::unique_ptr<ZmqTransport> zmq_transport;
  std::unique_ptr<CountingTransport> transport;
  SystemClock system_clock;
  std::unique_ptr<ManualClock> manual_clock;  // stepped mode
  std::unique_ptr<SyncEngine> engine;
  std::function<void(const std::vector<Update>&)> on_commit;  // set before open()
  std::thread loop;
  std::atomic<bool> stop{false};
  SyncCounters final_counters;  // read when the loop (or the node) stops
  WireCount final_wire;
  // Threaded mode: time the loop spent in on_frame, by message type, and in on_tick.
  double busy_s[7] = {0, 0, 0, 0, 0, 0, 0};
  uint64_t busy_frames[7] = {0, 0, 0, 0, 0, 0, 0};
  double tick_s = 0;
  Steady::time_point loop_started, loop_ended;

  void open(const std::string& d, const std::string& n);
  void start_threaded(const std::vector<std::string>& peers, uint64_t seed);
  void start_stepped(const std::vector<std::string>& peers, uint64_t seed);
  // Stops the loop, the engine, the sockets and the node (which checkpoints).
  void close();
  ~PeerNode() { close(); }

 private:
  SyncOptions sync_options(const std::vector<std::string>& peers, uint64_t seed) const;
  void run_loop();  // the threaded mode's event loop
};

bool all_peers_ready(const SyncEngine& e, size_t expected);

// "event loop busy 69% of 96.1 ms: on_tick ..., updates 46.0 ms (3 frames)".
std::string loop_breakdown(const PeerNode& p);

}  // namespace replog::bench
