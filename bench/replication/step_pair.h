// Two nodes driven step by step, for figures 2 and 3.
//
// Both engines run on this thread with a ManualClock each. Frames an engine
// sends are held by its transport (FaultyTransport::hold); a hop sends every held frame over
// the real ZeroMQ sockets (loopback TCP), waits until each has arrived, and
// hands them to the receiving engine. A round trip is two hops.
#pragma once

#include <cstdint>
#include <functional>

#include "replication/peer_node.h"
#include "replication/replication.h"

namespace replog::bench {

struct StepPair {
  PeerNode a, b;  // a connects to b; b connects back (on a's Hello)

  // Opens the pair's nodes, lets them handshake and exchange their first
  // vectors in real time, then holds their frames and fires both anti-entropy
  // timers once, so that b's does not fire during a measurement.
  void open(const Pair& pair, uint64_t seed);

  // Starts an anti-entropy round of a: its clock past the timer, one tick.
  void round_of_a();

  void tick_both();

  // One hop; returns the frames delivered.
  size_t hop();

  // Hops until nothing is held; calls after(hop number) after each; returns hops.
  int run_hops(const std::function<void(int)>& after);

  void close();

 private:
  // Real time: clocks follow the wall clock, frames go out at once.
  void pump_realtime(double seconds);
};

}  // namespace replog::bench
