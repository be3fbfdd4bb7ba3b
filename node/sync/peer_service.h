// PeerService: a node's side of replication, wired once: the sync engine over
// a SyncStore and a Transport, and the event loop that feeds it. The daemon,
// the benchmarks and the tests all run this one wiring; only the transport
// (ZeroMQ, in memory, with faults) and the clock differ.
//
// Two ways to drive it: run_once()/run_until() (the daemon, the threaded
// benchmarks, the tests), or by hand through engine() (the stepped benchmarks,
// which deliver one frame at a time under a ManualClock). An optional
// TurnTiming records where run_once() spends its time; unset, it costs one
// branch per turn.
//
// Thread safety: run_once()/run_until()/engine()/set_timing() on one thread
// (the event loop); on_committed() from the store's writer thread; peers()
// from any thread.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "node/core/clock.h"
#include "node/sync/sync_engine.h"
#include "node/sync/sync_store.h"
#include "node/sync/transport.h"
#include "protocol/wire.h"

namespace replog {

// Time spent by run_once() in the engine. A poll's frames are handed over in
// one on_frames() call (their pushes are stored together), so its time is
// shared out evenly among them, by message type (index: the wire::Type
// value; 0: unreadable).
struct TurnTiming {
  std::array<double, wire::kTypeSlots> frames_s{};
  std::array<uint64_t, wire::kTypeSlots> frames{};
  double tick_s = 0;  // in on_tick()
};

class PeerService {
 public:
  PeerService(SyncStore& store, Transport& transport, const Clock& clock, SyncOptions options, SyncEngine::Log log);

  // Connects to the configured peers and says Hello.
  void start();
  // One turn: waits up to timeout_ms for frames, hands them to the engine,
  // runs its timers, and says in one line (at most every 5 s) how many bad
  // frames were dropped. Never throws: a failure is logged.
  void run_once(int timeout_ms);
  // Turns until `stop` becomes true.
  void run_until(const std::atomic<bool>& stop, int poll_ms = 5);

  // From the store's writer: updates just committed (pushed to peers).
  void on_committed(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
    engine_.on_committed(updates, heads);
  }
  // From the store's writer: received updates that passed their checks, not
  // yet committed (relayed at once).
  void on_verified(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
    engine_.on_verified(updates, heads);
  }
  std::vector<PeerStatus> peers() const { return engine_.peers(); }
  // REQUIRES: the event-loop thread (or, stepped, the thread that drives it).
  SyncEngine& engine() { return engine_; }
  const SyncEngine& engine() const { return engine_; }
  // Starts (or, with nullptr, stops) recording run_once()'s time into
  // `timing`, which must outlive the recording. REQUIRES: the event-loop thread.
  void set_timing(TurnTiming* timing) { timing_ = timing; }

 private:
  void timed_turn(const std::vector<Frame>& frames);  // run_once() with timing_ set

  Transport& transport_;
  const Clock& clock_;
  SyncEngine::Log log_;
  SyncEngine engine_;
  TurnTiming* timing_ = nullptr;
  uint64_t reported_bad_ = 0;
  int64_t reported_ms_ = 0;
};

}  // namespace replog
