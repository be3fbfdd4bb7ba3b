// CountingStore: a SyncStore between a PeerService and its node that passes
// everything through and records the received updates the node refused. The
// checker reads the records: a gap or a temporarily too-far-ahead hlc is
// expected under faults; any other refusal of an honest update is not.
//
// What a hostile peer made up is not honest, and its refusals are not
// recorded (HostileLedger):
//   - forged updates: ids no origin wrote (`made_up`);
//   - altered relays: genuine runs the stranger relays with a byte altered, a
//     run reordered or cut, or their head altered. Their updates may be
//     byte for byte genuine (only the head or the run's shape was altered),
//     so an id alone cannot tell the stranger's copy from an honest one; each
//     altered frame carries a marker head instead (of an origin no update
//     has, which nodes ignore), and a refusal is excused only once per copy
//     of its update in the frames marked in that same ingest. An honest copy
//     refused beside the stranger's is still recorded.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "node/sync/sync_store.h"
#include "support/forwarding_store.h"

namespace replog::sim {

struct Refusal {
  std::string node;  // "n3"
  UpdateId id;
  uint64_t seq = 0;
  Verdict verdict = Verdict::kAccept;
  std::string detail;
  bool own_origin = false;  // of the origin the node wrote as then: another writer's branch of it (a copy)
};
using Refusals = std::vector<Refusal>;

struct HostileLedger {
  std::set<UpdateId> made_up;  // forged ids
  // Heads of this origin mark the stranger's altered frames, the head's seq
  // naming the frame. No update has this origin (it is the stranger's Hello
  // id), so a node's ingest passes such heads over.
  OriginId marker_origin = 0;
  std::map<uint64_t, std::vector<UpdateId>> altered_frames;    // marker seq -> ids of the updates it relayed
  // (id, body) the stranger forged or altered: never to be held. (A forged
  // id alone may be a genuine update's: the stranger picks the next seq's
  // hlc as its writer may.)
  std::set<std::pair<UpdateId, std::string>> made_up_bytes;
};

class CountingStore final : public testing::ForwardingStore {
 public:
  // `refusals` and `ledger` outlive this store (they survive the node's crashes).
  CountingStore(SyncStore& inner, std::string name, Refusals& refusals, const HostileLedger& ledger)
      : ForwardingStore(inner), name_(std::move(name)), refusals_(refusals), ledger_(ledger) {}

  Result<IngestReport> ingest(std::vector<Update> updates, std::vector<proof::Head> heads) override {
    // The stranger's copies among this ingest's updates: one excuse per copy
    // (a frame delivered twice is one copy: the node takes the second as a duplicate).
    std::set<uint64_t> frames;
    if (ledger_.marker_origin)
      for (const proof::Head& h : heads)
        if (h.origin == ledger_.marker_origin) frames.insert(h.seq);
    std::map<UpdateId, int> excused;
    for (uint64_t f : frames)
      if (auto it = ledger_.altered_frames.find(f); it != ledger_.altered_frames.end())
        for (const UpdateId& id : it->second) ++excused[id];
    const OriginId own = inner_.node_id();
    auto report = inner_.ingest(std::move(updates), std::move(heads));
    if (report)
      for (const Refused& r : report->refused) {
        if (r.verdict == Verdict::kGap || r.verdict == Verdict::kTooFarAhead || ledger_.made_up.count(r.id)) continue;
        if (auto it = excused.find(r.id); it != excused.end() && it->second > 0) {
          --it->second;
          continue;
        }
        if (refusals_.size() < kKept) refusals_.push_back({name_, r.id, r.seq, r.verdict, r.detail, r.id.origin == own});
      }
    return report;
  }

 private:
  static constexpr size_t kKept = 100'000;  // enough to judge; a run refusing more has failed anyway
  std::string name_;
  Refusals& refusals_;
  const HostileLedger& ledger_;
};

}  // namespace replog::sim
