// ForwardingStore: a SyncStore that passes every call to another one. Test
// doubles that change one part of a store (what ingest records or when it
// stores) derive from it and override that part only. ingest_async is
// passed on only when asked for: by default it runs this store's ingest()
// before it returns, so that a double that overrides ingest() sees every
// ingest, and an engine stepped by a test's loop (a ManualClock) never runs
// ahead of a writer thread it does not wait for.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "node/sync/sync_store.h"

namespace replog::testing {

class ForwardingStore : public SyncStore {
 public:
  explicit ForwardingStore(SyncStore& inner, bool pass_async = false) : inner_(inner), pass_async_(pass_async) {}

  OriginId node_id() const override { return inner_.node_id(); }
  std::string cluster_id() const override { return inner_.cluster_id(); }
  OwnOriginKey own_origin_key() const override { return inner_.own_origin_key(); }
  VersionVector vector() const override { return inner_.vector(); }
  Result<Range> read_range(OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes) const override {
    return inner_.read_range(origin, from, max_count, max_bytes);
  }
  Result<IngestReport> ingest(std::vector<Update> updates, std::vector<proof::Head> heads) override {
    return inner_.ingest(std::move(updates), std::move(heads));
  }
  void ingest_async(std::vector<Update> updates, std::vector<proof::Head> heads, IngestDone done) override {
    if (pass_async_) inner_.ingest_async(std::move(updates), std::move(heads), std::move(done));
    else done(ingest(std::move(updates), std::move(heads)));
  }
  Status save_peers(std::map<std::string, std::string> peers) override { return inner_.save_peers(std::move(peers)); }
  std::vector<std::string> evidence() const override { return inner_.evidence(); }
  Result<bool> take_evidence(std::string bytes) override { return inner_.take_evidence(std::move(bytes)); }
  std::map<OriginId, uint64_t> unverified() const override { return inner_.unverified(); }
  std::map<OriginId, ChainTip> tips() const override { return inner_.tips(); }
  VerifiedAhead verify_ahead(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) override {
    return inner_.verify_ahead(updates, heads);
  }

 protected:
  SyncStore& inner_;

 private:
  bool pass_async_;
};

}  // namespace replog::testing
