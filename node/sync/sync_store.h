// SyncStore: what the sync engine needs of a node (docs/ARCHITECTURE.md
// "Replication"), and nothing more. The engine's Node implements it over
// LMDB; the simulator can implement it over memory, so that a whole cluster
// runs in one thread without LMDB or sockets.
//
// Thread safety: an implementation may be called from the sync engine's
// thread while its own writer runs; ingest() and save_peers() may block until
// their write is durable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/origin_proof.h"
#include "protocol/update.h"
#include "protocol/version_vector.h"
#include "replog/status.h"

namespace replog {

// What ingest decided for one received update (PROTOCOL.md "Receiving updates").
// Only form is judged here, never content: content is decided in replay.
enum class Verdict : uint8_t {
  kAccept = 0,      // the next seq of its origin, in order: stored
  kDuplicate,       // held already with the same bytes: ignored quietly
  kFork,            // its (origin, seq) is held with other bytes: evidence stored, origin quarantined
  kGap,             // beyond the next seq of its origin: not stored; the range is pulled
  kHlcNotRising,    // its hlc is not above the hlc of the origin's previous update
  kTooFarAhead,     // its hlc is further ahead of this clock than the skew limit (temporary)
  kReservedOrigin,  // origin 0 or all ones
  kQuarantined,     // its origin forked earlier: nothing more of it is taken
  kUnverified,      // no signed head in its batch covers it, or its origin's key is unknown (pulled again)
  kBadProof,        // its head does not verify, or its bytes do not chain to the head (altered or forged)
  kNotMember,       // its origin's key is not a member's: held in memory until it is, not stored
};
const char* verdict_name(Verdict v);

struct Refused {
  UpdateId id;
  uint64_t seq = 0;
  Verdict verdict = Verdict::kGap;
  std::string detail;  // one line for logs
};

struct IngestReport {
  size_t accepted = 0;
  size_t duplicates = 0;
  size_t forks = 0;
  bool new_evidence = false;  // fork evidence was stored (worth giving to peers)
  std::vector<Refused> refused;  // every update neither accepted nor a duplicate
  bool origin_changed = false;   // this node moved to a fresh origin (its own origin was forked or outrun)
  // Origins whose head verified under the origin's key while the run's bytes
  // did not chain from what this node holds, with the first seq of the part
  // that did not: altered by a relay, or another branch of the origin that
  // forked below that seq (its runs from the fork seq never reached this
  // node). Only a run from at or below the fork seq proves a fork, so the
  // engine asks for the origin from further down.
  std::map<OriginId, uint64_t> unchained;
};

// A range of one origin's updates and the signed head it ends at (none for a
// store that does not sign, or when nothing is held from `from` on).
struct Range {
  std::vector<Update> updates;
  std::optional<proof::Head> head;
  bool next_held = false;  // the store holds the seq after the last update returned
};

// One range asked of read_ranges(): read_range()'s arguments.
struct RangeAsk {
  OriginId origin = 0;
  uint64_t from = 0, max_count = 0;
  size_t max_bytes = 0;
};

// The key a store writes its own origin with, as a Hello carries it
// (PROTOCOL.md §2 "Handshake"): the origin, its key, and when the key is not
// the device key, the device's certificate for it.
struct OwnOriginKey {
  OriginId origin = 0;
  std::string key;   // 32 bytes; empty: a store that does not sign
  std::string cert;  // 64 bytes when `key` is not the device key; empty otherwise
};

class SyncStore {
 public:
  virtual ~SyncStore() = default;

  // This node's origin id; it changes when the node moves to a fresh origin.
  virtual OriginId node_id() const = 0;
  virtual std::string cluster_id() const = 0;
  // node_id() with the key that writes it, read together (both change when
  // the node moves to a fresh origin). The default: a store that does not sign.
  virtual OwnOriginKey own_origin_key() const { return OwnOriginKey{node_id(), {}, {}}; }
  virtual VersionVector vector() const = 0;
  // Updates of `origin` from seq `from` on, at most `max_count`, stopping once
  // `max_bytes` of bodies are gathered (always at least one when held). With
  // signed origins the range ends at a head the store holds, which it
  // returns, carrying the origin's key when the range starts at seq 1; it may
  // then run past max_count or max_bytes to reach that head.
  virtual Result<Range> read_range(OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes) const = 0;
  // read_range() of each ask, in order, each answer what read_range() gives.
  // A store may read them together (the node walks its log once for all).
  virtual std::vector<Result<Range>> read_ranges(const std::vector<RangeAsk>& asks) const {
    std::vector<Result<Range>> out;
    for (const RangeAsk& a : asks) out.push_back(read_range(a.origin, a.from, a.max_count, a.max_bytes));
    return out;
  }
  // Received updates with the heads that cover them, judged for form (and
  // proof) and stored durably before it returns.
  virtual Result<IngestReport> ingest(std::vector<Update> updates, std::vector<proof::Head> heads) = 0;
  // ingest() without waiting: `done` gets what ingest() would return once the
  // updates are stored, on whatever thread stores them; the caller goes on
  // meanwhile. The default, for a store without a writer of its own, calls
  // ingest() and `done` before it returns.
  using IngestDone = std::function<void(Result<IngestReport>)>;
  virtual void ingest_async(std::vector<Update> updates, std::vector<proof::Head> heads, IngestDone done) {
    done(ingest(std::move(updates), std::move(heads)));
  }
  // Of a push's updates, those that may go on to peers before they are
  // stored: each origin's run that continues what the store verified last of
  // that origin and ends at a head among `heads`, checked now on the
  // caller's thread for proof and form as ingest() would check it, with that
  // head (its key and device fields left out: the run never starts at seq
  // 1). Whatever is not returned is judged by ingest() alone; what is, is
  // still stored only through it. The default: none (a store that does not
  // verify, or cannot ahead of its writer).
  struct VerifiedAhead {
    std::vector<Update> updates;
    std::vector<proof::Head> heads;
  };
  virtual VerifiedAhead verify_ahead(const std::vector<Update>& /*updates*/,
                                     const std::vector<proof::Head>& /*heads*/) {
    return {};
  }
  // What the engine knows of its peers (endpoint -> MessagePack state), kept across restarts.
  virtual Status save_peers(std::map<std::string, std::string> peers) = 0;
  // Fork evidence held (protocol/origin_proof.h encodings), to give to peers.
  virtual std::vector<std::string> evidence() const { return {}; }
  // Fork evidence from a peer; true when it was kept (new, or a lower fork seq).
  virtual Result<bool> take_evidence(std::string /*bytes*/) { return false; }
  // Origins held beyond what a verified head covers (updates kept from before
  // an upgrade to signed origins), origin -> the seq verified: the engine asks
  // peers for those ranges again, so that their heads attest them.
  virtual std::map<OriginId, uint64_t> unverified() const { return {}; }
  // Origins verified up to the seq held, with the chain there: peers at one
  // seq with another chain hold another branch (the engine sends and
  // compares its first wire::kTipBytes).
  struct ChainTip {
    uint64_t seq = 0;
    proof::Chain chain{};
  };
  virtual std::map<OriginId, ChainTip> tips() const { return {}; }
};

}  // namespace replog
