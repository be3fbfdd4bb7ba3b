// PeerService: a node's side of replication, wired once: the sync engine over
// a SyncStore and a Transport, and the event loop that feeds it. The daemon,
// the benchmarks and the tests all run this one wiring; only the transport
// (ZeroMQ, in memory, with faults) and the clock differ.
//
// Thread safety: run_once()/run_until() on one thread (the event loop);
// on_committed() from the store's writer thread; peers() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "node/core/clock.h"
#include "node/sync/sync_engine.h"
#include "node/sync/sync_store.h"
#include "node/sync/transport.h"

namespace replog {

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
  void on_committed(const std::vector<Update>& updates) { engine_.on_committed(updates); }
  std::vector<PeerStatus> peers() const { return engine_.peers(); }
  // REQUIRES: the event-loop thread.
  const SyncEngine& engine() const { return engine_; }

 private:
  Transport& transport_;
  const Clock& clock_;
  SyncEngine::Log log_;
  SyncEngine engine_;
  uint64_t reported_bad_ = 0;
  int64_t reported_ms_ = 0;
};

}  // namespace replog
