// Figure 2: the in-sync check. One anti-entropy exchange between two nodes
// that share the dataset (1 origin: the pair of figure 1; more: the source and
// its twin), on a stepped pair: its round trips, frames and bytes, and how the
// bytes grow with the number of origins.
#include <algorithm>

#include "common/bench_common.h"
#include "common/report.h"
#include "replication/replication.h"
#include "replication/step_pair.h"

namespace replog::bench {

namespace {

struct InsyncResult {
  uint64_t origins = 0;
  int hops = 0;
  uint64_t frames = 0, bytes = 0, engine_bytes = 0, engine_frames = 0;
};
std::vector<InsyncResult> g_insync;

// One anti-entropy round of a, on a pair already in sync.
InsyncResult measure_insync(StepPair& sp, uint64_t origins) {
  sp.a.reset_wire();
  sp.b.reset_wire();
  SyncCounters ca = sp.a.engine().counters(), cb = sp.b.engine().counters();
  sp.round_of_a();  // a's round: its vector to b
  InsyncResult r;
  r.origins = origins;
  r.hops = sp.run_hops([](int) {});
  WireCount w = sp.a.wire();
  w += sp.b.wire();
  r.frames = w.frames_out();
  r.bytes = w.bytes_out();
  SyncCounters ca2 = sp.a.engine().counters(), cb2 = sp.b.engine().counters();
  r.engine_bytes = (ca2.bytes_out - ca.bytes_out) + (cb2.bytes_out - cb.bytes_out);
  r.engine_frames = (ca2.frames_out - ca.frames_out) + (cb2.frames_out - cb.frames_out);
  if (r.engine_bytes != r.bytes) die("SyncEngine counted " + grouped(r.engine_bytes) + " bytes out, the wire " + grouped(r.bytes));
  for (size_t t = 1; t < wire::kTypeSlots; ++t)
    if (t != 3 && w.out[t].frames) die(std::string("in-sync check sent a ") + kTypeNames[t] + " frame");
  return r;
}

void add_insync_row(const InsyncResult& r) {
  const std::string origins = std::to_string(r.origins) + " origin" + (r.origins > 1 ? "s" : "");
  RowBuilder("2", "in-sync check, " + grouped(g_opt.updates) + " shared, " + origins + ": one anti-entropy exchange")
      .measured(static_cast<double>(r.bytes), "bytes",
                fmt("%.0f round trip", r.hops / 2.0) + (r.hops > 2 ? "s" : "") + ", " + grouped(r.frames) +
                    " frames, " + grouped(r.bytes) + " bytes")
      .raw(static_cast<double>(r.origins), "origins", origins + " in each vector")
      .ratio(static_cast<double>(r.bytes) / static_cast<double>(r.origins), "%.1f bytes/origin")
      .goal("1 round trip, bytes ~ origins", r.hops <= 2)
      .note("SyncEngine::counters() agree: " + grouped(r.engine_frames) + " frames, " + grouped(r.engine_bytes) +
            " bytes")
      .add();
}

// Proportional to the number of origins: a Vector frame is 8-10 bytes of
// framing plus one [origin, seq] entry per origin, at most 19 bytes
// (MessagePack picks the integer widths), so one exchange (two vectors) is at
// most 2 x (10 + 19 x origins) bytes.
void add_insync_linearity() {
  if (g_insync.size() < 2) return;
  std::sort(g_insync.begin(), g_insync.end(), [](auto& x, auto& y) { return x.origins < y.origins; });
  const auto &s = g_insync.front(), &l = g_insync.back();
  std::string per;
  bool within = true;
  for (const auto& r : g_insync) {
    per += std::string(per.empty() ? "" : ", ") + std::to_string(r.origins) + ": " + grouped(r.bytes) + " B";
    within = within && r.bytes <= 2 * (10 + 19 * r.origins);
  }
  const double slope = static_cast<double>(l.bytes - s.bytes) / static_cast<double>(l.origins - s.origins);
  RowBuilder("2", "in-sync check: bytes against origins")
      .measured(slope, "bytes/origin",
                per + fmt(" (%.1f bytes per added origin, ", slope) + std::to_string(s.origins) + "->" +
                    std::to_string(l.origins) + ")")
      .raw(2 * 19, "bytes/origin", "bound 2 x (10 + 19 x origins): two vectors of [origin, seq] entries")
      .ratio(slope / (2 * 19), "%.2fx of the bound's slope")
      .goal("proportional to origins", within)
      .add();
}

}  // namespace

void fig_insync_and_diff(const std::vector<uint64_t>& origin_cases, bool insync, bool diff) {
  for (uint64_t origins : origin_cases) {
    Pair& pair = g_pairs.at(origins);
    progress(std::string("figure ") + (insync ? "2" : "3") + ": stepped pair sharing " + grouped(g_opt.updates) +
             " updates of " + std::to_string(origins) + " origin(s)");
    StepPair sp;
    sp.open(pair, 100 + origins);
    if (insync) {
      auto r = measure_insync(sp, origins);
      g_insync.push_back(r);
      add_insync_row(r);
    }
    if (diff && origins == 1) {
      measure_diff(sp);
      pair.hash = sp.a.node->state_hash();
    }
    sp.close();
  }
  if (insync) add_insync_linearity();
}

}  // namespace replog::bench
