#include "replication/step_pair.h"

#include <algorithm>
#include <thread>

namespace replog::bench {

namespace {

// Past the anti-entropy timer, wherever it was set (the next round is
// >= anti_entropy_ms / 2 away).
int64_t anti_entropy_jump() { return SyncOptions{}.anti_entropy_ms * 3 / 2 + 1; }

}  // namespace

void StepPair::tick_both() {
  a.engine().on_tick();
  b.engine().on_tick();
}

void StepPair::pump_realtime(double seconds) {
  auto t0 = Steady::now();
  while (seconds_since(t0) < seconds) {
    for (PeerNode* p : {&a, &b}) {
      p->manual_clock->set(std::max(p->manual_clock->now_millis(), wall_ms()));
      for (const auto& f : p->transport->poll(1)) p->engine().on_frame(f);
      p->engine().on_tick();
    }
  }
}

void StepPair::open(const Pair& pair, uint64_t seed) {
  a.open(pair.source_dir, "A");
  b.open(pair.receiver_dir, "B");
  b.start_stepped({}, seed + 1);
  a.start_stepped({b.endpoint}, seed);
  auto t0 = Steady::now();
  while (!(all_peers_ready(*a.service, 1) && all_peers_ready(*b.service, 1))) {
    if (seconds_since(t0) > 15) die("stepped pair: no handshake within 15 s");
    pump_realtime(0.05);
  }
  pump_realtime(0.3);  // the vectors each side sends after its handshake
  a.set_hold(true);
  b.set_hold(true);
  a.manual_clock->advance(anti_entropy_jump());
  b.manual_clock->advance(anti_entropy_jump());
  tick_both();
  run_hops([](int) {});
}

void StepPair::round_of_a() {
  a.manual_clock->advance(anti_entropy_jump());
  a.engine().on_tick();
}

size_t StepPair::hop() {
  const size_t to_b = a.flush(), to_a = b.flush();
  std::vector<Frame> at_a, at_b;
  auto t0 = Steady::now();
  while (at_a.size() < to_a || at_b.size() < to_b) {
    if (seconds_since(t0) > 10) die("stepped pair: frames sent but not received within 10 s");
    for (auto& f : a.transport->poll(at_a.size() < to_a ? 1 : 0)) at_a.push_back(std::move(f));
    for (auto& f : b.transport->poll(at_b.size() < to_b ? 1 : 0)) at_b.push_back(std::move(f));
  }
  for (const auto& f : at_a) a.engine().on_frame(f);
  for (const auto& f : at_b) b.engine().on_frame(f);
  // Pushes go to the writers without the engines waiting (ingest_async):
  // what this hop delivered is stored, and its results taken, before the hop
  // ends; else, on a busy machine, the exchange could end with updates still
  // on their way to the store.
  tick_both();  // clocks do not move: no timer fires
  for (t0 = Steady::now(); a.engine().storing() || b.engine().storing(); tick_both()) {
    if (seconds_since(t0) > 10) die("stepped pair: the stores did not take a hop's pushes within 10 s");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return at_a.size() + at_b.size();
}

int StepPair::run_hops(const std::function<void(int)>& after) {
  int hops = 0;
  while (a.held() + b.held() > 0) {
    if (hops > 64) die("stepped pair: the exchange did not end after 64 hops");
    if (hop() > 0) ++hops;
    after(hops);
  }
  return hops;
}

void StepPair::close() {
  a.close();
  b.close();
}

}  // namespace replog::bench
