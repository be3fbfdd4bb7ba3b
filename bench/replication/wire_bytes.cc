// Figure 7: the bytes a proof adds to a Push. A Push of N updates of the
// workload (wire::encode), with the heads its runs end at and without them:
// one head per run whatever N, nothing per update. The heads are signed
// (SignedOrigins); the encoded head's size is given without and with the key
// it carries when its run starts at seq 1.
#include <string>
#include <vector>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/signed_log.h"
#include "common/workload.h"
#include "protocol/wire.h"
#include "replication/replication.h"

namespace replog::bench {

namespace {

constexpr uint64_t kWireSeed = 7;
constexpr size_t kRunOrigins = 10;    // the Push of several runs: one run of each
constexpr uint64_t kHistory = 1000;  // updates each origin wrote before the runs measured

size_t push_size(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  return wire::encode(wire::Message(wire::Push{updates, heads})).size();
}

size_t heads_size(const std::vector<proof::Head>& heads) {
  size_t n = 0;
  for (const auto& h : heads) n += proof::encode_head(h).size();
  return n;
}

struct PushBytes {
  size_t with = 0, without = 0, heads = 0, head_count = 0;
  size_t added() const { return with - without; }
  size_t framing() const { return added() - heads; }  // beyond the heads themselves
};

PushBytes measure(const SignedOrigins& origins, const std::vector<Update>& updates) {
  const std::vector<proof::Head> heads = origins.heads_for(updates);
  for (const auto& h : heads)
    check(proof::check_head(h, origins.cluster(), origins.key(origins.index_of(h.origin))), "check_head");
  return PushBytes{push_size(updates, heads), push_size(updates, {}), heads_size(heads), heads.size()};
}

// `runs`: the runs of the Push, each owed one head.
void add_push_row(const std::string& what, size_t n, size_t runs, const PushBytes& b) {
  const double per_update = static_cast<double>(b.added()) / static_cast<double>(n);
  RowBuilder("7", what)
      .measured(static_cast<double>(b.with), "bytes",
                grouped(static_cast<double>(b.with)) + " B with " + std::to_string(b.head_count) +
                    (b.head_count == 1 ? " head" : " heads") + ": +" + std::to_string(b.added()) + " B = " +
                    std::to_string(b.heads) + " B of heads + " + std::to_string(b.framing()) + " B framing (" +
                    fmt("%.2f B/update)", per_update))
      .raw(static_cast<double>(b.without), "bytes", grouped(static_cast<double>(b.without)) + " B without heads")
      .ratio(static_cast<double>(b.added()), "+%.0f B")
      .goal("+1 head per run, nothing per update", b.head_count == runs && b.framing() <= 3)
      .add();
}

}  // namespace

void fig_wire() {
  progress("figure 7: the bytes of a Push with and without its heads (wire::encode)");
  // Origin 0 writes the single runs; origins 1..kRunOrigins one run each.
  SignedOrigins origins(kCluster, kWireSeed, 1 + kRunOrigins);
  uint64_t i = 0;
  std::vector<std::vector<Update>> log(origins.size());
  for (uint64_t s = 0; s < kHistory + 1000; ++s)
    for (size_t k = 0; k < origins.size(); ++k, ++i) log[k].push_back(origins.append(k, base_hlc() + i, "set", set_arg(i)));
  auto run = [&](size_t k, uint64_t first_seq, size_t n) {
    return std::vector<Update>(log[k].begin() + static_cast<long>(first_seq - 1),
                               log[k].begin() + static_cast<long>(first_seq - 1 + n));
  };

  // The head alone.
  const proof::Head bare = origins.head(0, kHistory + 1, false), keyed = origins.head(0, kHistory + 1, true);
  const size_t bare_size = proof::encode_head(bare).size(), keyed_size = proof::encode_head(keyed).size();
  RowBuilder("7", "one signed head, encoded (proof::encode_head)")
      .measured(static_cast<double>(bare_size), "bytes",
                std::to_string(bare_size) + " B without the key; " + std::to_string(keyed_size) +
                    " B with it (a run from seq 1)")
      .goal("about 100-120 B", bare_size >= 100 && bare_size <= 120)
      .add();

  // One run of N updates after the history (its head carries no key).
  PushBytes one, thousand;
  for (size_t n : {1, 10, 100, 1000}) {
    const PushBytes b = measure(origins, run(0, kHistory + 1, n));
    if (n == 1) one = b;
    if (n == 1000) thousand = b;
    add_push_row("Push of " + grouped(static_cast<double>(n)) + (n == 1 ? " update" : " updates") + ", 1 run", n, 1, b);
  }
  // A run from seq 1: its head carries the key.
  add_push_row("Push of 100 updates, 1 run from seq 1 (key carried)", 100, 1, measure(origins, run(0, 1, 100)));
  // Runs of several origins in one Push: a head each.
  std::vector<Update> several;
  for (size_t k = 1; k <= kRunOrigins; ++k)
    for (auto& u : run(k, kHistory + 1, 100)) several.push_back(std::move(u));
  add_push_row("Push of 1,000 updates, " + std::to_string(kRunOrigins) + " runs of 100", several.size(), kRunOrigins,
               measure(origins, several));

  const double slope =
      (static_cast<double>(thousand.added()) - static_cast<double>(one.added())) / (1000.0 - 1.0);
  RowBuilder("7", "proof bytes per update, 1 run of 1 -> 1,000 updates")
      .measured(slope, "bytes/update",
                fmt("%.2f B/update", slope) + " (+" + std::to_string(one.added()) + " B for 1, +" +
                    std::to_string(thousand.added()) + " B for 1,000)")
      .goal("nothing per update", thousand.added() <= one.added())
      .add();
}

}  // namespace replog::bench
