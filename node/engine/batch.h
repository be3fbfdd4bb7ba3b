// engine::Node's writer requests and the group commit in progress: private
// to node/engine (writer.cc, signing.cc, ingest_verify.cc).
#pragma once

#include <exception>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "node/engine/node.h"
#include "storage/update_log.h"

namespace replog::engine {

struct Node::Request {
  enum class Kind { kCall, kIngest, kPeers, kEvidence } kind;
  std::string method;
  std::string arg;  // MessagePack
  std::vector<Update> updates;
  std::vector<proof::Head> heads;  // kIngest: the heads that cover `updates`
  std::map<std::string, std::string> peers;
  std::string evidence;  // kEvidence: its encoding
  bool kept = false;     // kEvidence: stored

  Status status;
  UpdateId id;
  IngestReport report;
  std::promise<void> done;
  SyncStore::IngestDone on_done;  // kIngest by ingest_async: called instead of anyone waiting on `done`
};

// One group commit's work in progress.
struct Node::Batch {
  Batch(std::vector<std::shared_ptr<Request>>& r, LogTxn& t) : requests(r), txn(t) {}
  std::vector<std::shared_ptr<Request>>& requests;
  LogTxn& txn;
  uint64_t hlc_ceiling = 0;
  size_t puts = 0;                        // records written in this transaction
  std::vector<UpdateView> accepted;       // received and stored, to fold (views into requests)
  // Folding them at the head on the side thread, while the batch's puts run
  // (Node::start_fold_beside); fold_received takes the result.
  bool folding_beside = false;
  std::exception_ptr fold_error;  // what the fold threw there, thrown again here
  // Received updates whose checks passed, put by store_staged() in key order
  // (bodies are views into requests). Reads of the log that may need them put
  // them first.
  std::vector<LogTxn::NewUpdate> staged;
  std::vector<Update> committed;          // for the commit listener, in commit order
  std::map<OriginId, VectorEntry> held;   // vector entries, read once per batch and kept current
  VectorEntry& held_of(OriginId origin) {
    auto it = held.find(origin);
    if (it == held.end()) it = held.emplace(origin, txn.vector_entry(origin).value_or(VectorEntry{})).first;
    return it->second;
  }
  // Own heads to sign once the batch has committed, each with the origin and
  // key it is for (a batch that retires the node's origin owes heads of two).
  struct OwedHead {
    OriginId origin = 0;
    OriginSigner signer;
    StoredHead head;
    bool carry_key = false;  // its run in this batch starts at seq 1: whoever it is pushed to may not know the key
  };
  std::vector<OwedHead> to_sign;
  // Their signatures, made on the side thread while the commit syncs
  // (Node::commit_and_sign); empty when they were not.
  std::vector<std::string> signatures;
  size_t heads_stored = 0;                // unstored_heads_ written by this batch
  uint64_t own_first = 0;                 // seq of the first update of the node's current origin in this batch (0: none)
  std::vector<proof::Head> committed_heads;  // heads of the received runs stored, for the commit listener
  std::map<OriginId, std::optional<OriginRecord>> records;  // origin records, read once per batch and kept current
  std::optional<OriginRecord>& record_of(OriginId origin) {
    auto it = records.find(origin);
    if (it == records.end()) it = records.emplace(origin, txn.origin_record(origin)).first;
    return it->second;
  }
  std::vector<std::pair<OriginId, std::pair<uint64_t, proof::Chain>>> chains;  // chains at seqs stored, kept once committed
  // Chains worked out ahead, per origin, half of them on the side thread
  // (Node::chain_ahead): from `start` (the origin's chain at from_seq - 1),
  // after each of `ups` (seqs from_seq, from_seq + 1, ...); and whether the
  // origin's newest head in the request verified under `key`. A cache:
  // store_run uses it only for the same updates from the same chain, and the
  // same head, under the same key.
  struct ChainAhead {
    std::string key;
    uint64_t from_seq = 0;
    proof::Chain start{};
    std::vector<const Update*> ups;
    std::vector<proof::Chain> after;
    const proof::Head* head = nullptr;
    bool head_verified = false;
  };
  std::map<OriginId, ChainAhead> chains_ahead;
  bool left_out_changed = false;  // a revocation or fork evidence was stored: refresh_left_out() before commit
};

}  // namespace replog::engine
