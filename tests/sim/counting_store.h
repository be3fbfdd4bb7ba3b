// CountingStore: a SyncStore between a PeerService and its node that passes
// everything through and counts, by verdict, the received updates the node
// refused. The checker reads the counts: a gap or a temporarily too-far-ahead
// hlc is expected under faults; any other refusal of an honest update is not.
// Updates a hostile peer made up (`made_up`) are not honest: their refusals
// are not counted.
#pragma once

#include <map>
#include <set>

#include "node/sync/sync_store.h"

namespace replog::sim {

using RefusalCounts = std::map<Verdict, uint64_t>;

class CountingStore final : public SyncStore {
 public:
  // `counts` outlives this store (it survives the node's crashes).
  CountingStore(SyncStore& inner, RefusalCounts& counts, const std::set<UpdateId>& made_up)
      : inner_(inner), counts_(counts), made_up_(made_up) {}

  OriginId node_id() const override { return inner_.node_id(); }
  std::string cluster_id() const override { return inner_.cluster_id(); }
  OwnOriginKey own_origin_key() const override { return inner_.own_origin_key(); }
  VersionVector vector() const override { return inner_.vector(); }
  Result<Range> read_range(OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes) const override {
    return inner_.read_range(origin, from, max_count, max_bytes);
  }
  Result<IngestReport> ingest(std::vector<Update> updates, std::vector<proof::Head> heads) override {
    auto report = inner_.ingest(std::move(updates), std::move(heads));
    if (report)
      for (const Refused& r : report->refused)
        if (!made_up_.count(r.id)) ++counts_[r.verdict];
    return report;
  }
  Status save_peers(std::map<std::string, std::string> peers) override { return inner_.save_peers(std::move(peers)); }
  std::vector<std::string> evidence() const override { return inner_.evidence(); }
  Result<bool> take_evidence(std::string bytes) override { return inner_.take_evidence(std::move(bytes)); }
  std::map<OriginId, uint64_t> unverified() const override { return inner_.unverified(); }

 private:
  SyncStore& inner_;
  RefusalCounts& counts_;
  const std::set<UpdateId>& made_up_;
};

// Refusals that an honest cluster must never see (all but kGap and kTooFarAhead).
inline uint64_t unexpected_refusals(const RefusalCounts& counts) {
  uint64_t n = 0;
  for (const auto& [verdict, count] : counts)
    if (verdict != Verdict::kGap && verdict != Verdict::kTooFarAhead) n += count;
  return n;
}

}  // namespace replog::sim
