#include "node/sync/peer_service.h"

#include <chrono>

#include "protocol/wire.h"

namespace replog {

PeerService::PeerService(SyncStore& store, Transport& transport, const Clock& clock, SyncOptions options,
                         SyncEngine::Log log)
    : transport_(transport), clock_(clock), log_(log), engine_(store, transport, clock, std::move(options), std::move(log)) {}

void PeerService::start() { engine_.start(); }

namespace {

using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

}  // namespace

void PeerService::timed_turn(const std::vector<Frame>& frames) {
  if (!frames.empty()) {
    const auto t0 = Steady::now();
    engine_.on_frames(frames);
    const double each = seconds_since(t0) / static_cast<double>(frames.size());
    for (const auto& f : frames) {
      auto type = wire::type_of(f.bytes);
      const size_t t = type ? static_cast<size_t>(*type) : 0;
      timing_->frames_s[t] += each;
      ++timing_->frames[t];
    }
  }
  const auto t0 = Steady::now();
  engine_.on_tick();
  timing_->tick_s += seconds_since(t0);
}

void PeerService::run_once(int timeout_ms) {
  timeout_ms = engine_.poll_timeout_ms(timeout_ms);
  try {
    if (timing_) {
      timed_turn(transport_.poll(timeout_ms));
    } else {
      engine_.on_frames(transport_.poll(timeout_ms));
      engine_.on_tick();
    }
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
