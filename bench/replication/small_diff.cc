// Figure 3: a small diff. On the stepped 1-origin pair, 10 calls on each side
// while they cannot talk (frames dropped), then one anti-entropy round of A:
// the round trips until both hold all 20 updates, and the wire bytes beyond
// the 20 update bodies.
#include <algorithm>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/workload.h"
#include "replication/replication.h"
#include "replication/step_pair.h"

namespace replog::bench {

namespace {

constexpr int kNew = 10;  // new calls on each side

// kNew calls on each side while frames are dropped; returns the frames lost.
uint64_t call_while_partitioned(StepPair& sp) {
  sp.a.set_partitioned(true);
  sp.b.set_partitioned(true);
  for (int i = 0; i < kNew; ++i) {
    must(sp.a.node->call("set", set_value(50'000'000 + i)), "Node::call on A");
    must(sp.b.node->call("set", set_value(60'000'000 + i)), "Node::call on B");
  }
  // Let the coalesced pushes go out (into the partition).
  sp.a.manual_clock->advance(10);
  sp.b.manual_clock->advance(10);
  sp.tick_both();
  const uint64_t lost = sp.a.wire().partition_dropped + sp.b.wire().partition_dropped;
  sp.a.set_partitioned(false);
  sp.b.set_partitioned(false);
  return lost;
}

// The bytes of the new updates' bodies, on both sides.
uint64_t new_body_bytes(StepPair& sp) {
  auto bodies = must(sp.a.node->read_range(sp.a.node->node_id(), 1, kNew, size_t{1} << 20), "read_range A").updates;
  auto bodies_b = must(sp.b.node->read_range(sp.b.node->node_id(), 1, kNew, size_t{1} << 20), "read_range B").updates;
  uint64_t body_bytes = 0;
  for (const auto& u : bodies) body_bytes += u.body().size();
  for (const auto& u : bodies_b) body_bytes += u.body().size();
  if (bodies.size() != static_cast<size_t>(kNew) || bodies_b.size() != static_cast<size_t>(kNew))
    die("the new calls are not in the logs");
  return body_bytes;
}

bool holds(const Node& node, OriginId origin, uint64_t seq) { return seq_of(node.vector(), origin) >= seq; }

// One round of A: the hops after which each side held the other's new updates,
// and the hops until the exchange ended.
struct Exchange {
  int done_a = -1, done_b = -1, hops = 0;
};

Exchange run_exchange(StepPair& sp) {
  const OriginId ida = sp.a.node->node_id(), idb = sp.b.node->node_id();
  sp.a.reset_wire();
  sp.b.reset_wire();
  Exchange x;
  sp.round_of_a();
  x.hops = sp.run_hops([&](int h) {
    if (x.done_a < 0 && holds(*sp.a.node, idb, kNew)) x.done_a = h;
    if (x.done_b < 0 && holds(*sp.b.node, ida, kNew)) x.done_b = h;
  });
  if (x.done_a < 0 || x.done_b < 0) die("small diff: the exchange ended before both sides held all 20 updates");
  if (sp.a.node->state_hash() != sp.b.node->state_hash()) die("small diff: hashes differ after the exchange");
  return x;
}

}  // namespace

void measure_diff(StepPair& sp) {
  progress("figure 3: " + std::to_string(kNew) + " new calls on each side while they cannot talk, then one round");
  const uint64_t lost = call_while_partitioned(sp);
  const uint64_t body_bytes = new_body_bytes(sp);
  const auto t0 = Steady::now();
  const Exchange x = run_exchange(sp);
  const double exchange_s = seconds_since(t0);
  WireCount w = sp.a.wire();
  w += sp.b.wire();
  const uint64_t bytes = w.bytes_out(), frames = w.frames_out();
  std::string by_type;
  for (size_t t = 1; t < wire::kTypeSlots; ++t)
    if (w.out[t].frames)
      by_type += std::string(by_type.empty() ? "" : ", ") + grouped(w.out[t].frames) + " " + kTypeNames[t] + " (" +
                 grouped(w.out[t].bytes) + " B)";
  const int rt = (std::max(x.done_a, x.done_b) + 1) / 2;

  RowBuilder("3a", "small diff (" + grouped(g_opt.updates) + " shared, " + std::to_string(kNew) +
                       " new on each side): round trips")
      .measured(rt, "round trips",
                std::to_string(rt) + " round trips (A complete after " + std::to_string(x.done_a) + " hops, B after " +
                    std::to_string(x.done_b) + "; exchange ended after " + std::to_string(x.hops) + " hops)")
      .goal("1 round trip", rt <= 1)
      .note(std::to_string(lost) + " frames (the pushes) dropped while they could not talk; hashes equal after")
      .count("hops", std::max(x.done_a, x.done_b))
      .count("seconds", exchange_s)  // stepped in one process: frame handling, no network wait
      .add();
  // With compressed bodies (feature bit 4) the frames may hold fewer bytes
  // than the bodies they carry: nothing is beyond them then.
  const uint64_t beyond = bytes > body_bytes ? bytes - body_bytes : 0;
  const std::string compressed = bytes < body_bytes ? ", compressed: " + grouped(body_bytes - bytes) + " bytes fewer than the bodies" : "";
  RowBuilder("3b", "small diff: wire bytes beyond the 20 update bodies")
      .measured(static_cast<double>(beyond), "bytes",
                grouped(beyond) + " bytes (" + grouped(bytes) + " in " + grouped(frames) + " frames: " + by_type +
                    compressed + ")")
      .raw(static_cast<double>(body_bytes), "bytes", grouped(body_bytes) + " bytes of update bodies")
      .ratio(static_cast<double>(bytes) / static_cast<double>(body_bytes), "%.2fx bodies")
      .goal("<= 1 KiB (1,024 bytes), heads included", beyond <= 1024)
      .count("wire_bytes", static_cast<double>(bytes))
      .count("body_bytes", static_cast<double>(body_bytes))
      .add();
}

}  // namespace replog::bench
