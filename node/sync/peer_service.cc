#include "node/sync/peer_service.h"

namespace replog {

PeerService::PeerService(SyncStore& store, Transport& transport, const Clock& clock, SyncOptions options,
                         SyncEngine::Log log)
    : transport_(transport), clock_(clock), log_(log), engine_(store, transport, clock, std::move(options), log) {}

void PeerService::start() { engine_.start(); }

void PeerService::run_once(int timeout_ms) {
  try {
    engine_.on_frames(transport_.poll(timeout_ms));
    engine_.on_tick();
  } catch (const std::exception& e) {
    log_(0, std::string("event loop: ") + e.what());
  }
  // One line per burst of bad frames, never a line per message.
  const uint64_t bad = engine_.counters().bad_frames;
  const int64_t now = clock_.now_millis();
  if (bad > reported_bad_ && now - reported_ms_ > 5000) {
    log_(1, "dropped " + std::to_string(bad - reported_bad_) + " malformed or unexpected frames");
    reported_bad_ = bad;
    reported_ms_ = now;
  }
}

void PeerService::run_until(const std::atomic<bool>& stop, int poll_ms) {
  while (!stop.load()) run_once(poll_ms);
}

}  // namespace replog
