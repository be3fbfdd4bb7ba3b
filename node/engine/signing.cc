// engine::Node's own origin as a key (docs/ARCHITECTURE.md "Signed origins"):
// the key it writes with, its chain, the heads it signs after each durable
// commit, and the in-place upgrade of a storage format 1 directory.
//
// The chain advances inside the write transaction that stores each local
// call, and the origin's record (its tip) is stored in that transaction too.
// Heads are signed only once that transaction has committed, so no head ever
// covers an update that is not durable; they are stored by the next write
// transaction (or at close). A crash in between loses the stored head, never
// the tip, and open() signs the tip again: Ed25519 is deterministic, so the
// head is byte for byte the one that may already have been sent.
#include <sodium.h>

#include "node/engine/batch.h"
#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/update_log.h"

namespace replog::engine {

namespace {

// A head is signed at least every this many body bytes of the origin.
constexpr uint64_t kSignEveryBytes = uint64_t{1} << 20;
// Stored heads are thinned so that two kept heads are at least this many body
// bytes apart (the newest is always kept).
constexpr uint64_t kHeadSpacingBytes = uint64_t{64} << 10;

std::string origin_key_file(const std::string& dir, OriginId origin) {
  return dir + "/origin-" + hex16(origin) + ".key";
}

StoredHead stored(const proof::Head& h, uint64_t bytes) { return StoredHead{h.seq, h.chain, h.flags, h.signature, bytes}; }

// The chain of `origin` under `key` over its stored bodies 1..seq.
Result<proof::Chain> chain_over_log(LogTxn& txn, const std::string& cluster, OriginId origin, std::string_view key,
                                    uint64_t seq, uint64_t& bytes) {
  proof::Chain c = proof::chain_start(cluster, key);
  bytes = 0;
  for (uint64_t s = 1; s <= seq; ++s) {
    auto id = txn.id_of(origin, s);
    auto body = id ? txn.body(*id) : std::nullopt;
    if (!body) return Status::corruption("origin " + hex16(origin) + " #" + std::to_string(s) + " is missing from the log");
    proof::chain_step(c, key, id->hlc, *body);
    bytes += body->size();
  }
  return c;
}

}  // namespace

std::optional<proof::Head> Node::own_head(bool with_key) const {
  std::lock_guard<std::mutex> l(own_head_mu_);
  if (!own_head_) return std::nullopt;
  proof::Head h = *own_head_;
  if (with_key) {
    h.key = signer_.key;
    h.device = signer_.device;
    h.cert = signer_.cert;
  }
  return h;
}

// The device key, the key of the origin this node writes as, and its chain's
// tip. A tip without a stored head (a crash after the commit) is signed again.
// REQUIRES: the writer is not running (open, or after an aborted batch).
Status Node::load_signer(LogTxn& txn) {
  auto device = load_identity(DataDir(options_.dir).identity_file(), Env::posix());
  if (!device) return device.status();
  device_secret_ = std::string(device->secret_key());
  const OriginId id = node_id_;
  if (proof::origin_of_key(device->public_key()) == id) {
    signer_ = OriginSigner{device_secret_, device->public_key(), {}, {}};
  } else {
    auto key = load_identity(origin_key_file(options_.dir, id), Env::posix());
    if (!key) return key.status().with_context("the key of origin " + hex16(id));
    if (proof::origin_of_key(key->public_key()) != id)
      return Status::corruption(origin_key_file(options_.dir, id) + " does not hold origin " + hex16(id) + "'s key");
    signer_ = OriginSigner{std::string(key->secret_key()), key->public_key(), device->public_key(),
                           proof::sign_cert(cluster_id_, key->public_key(), device_secret_)};
  }
  own_chain_ = OwnChain{};
  own_chain_.chain = proof::chain_start(cluster_id_, signer_.key);
  if (auto rec = txn.origin_record(id)) {
    if (rec->key != signer_.key) return Status::corruption("the record of origin " + hex16(id) + " names another key");
    own_chain_.seq = rec->seq;
    own_chain_.chain = rec->chain;
    own_chain_.bytes = own_chain_.signed_bytes = rec->bytes;
  }
  if (own_chain_.seq != own_seq_)
    return Status::corruption("origin " + hex16(id) + ": its chain stands at #" + std::to_string(own_chain_.seq) +
                              " but the log holds #" + std::to_string(own_seq_));
  own_chain_.signed_seq = own_chain_.seq;
  std::optional<proof::Head> head;
  if (own_chain_.seq > 0) {
    auto kept = txn.head_at_or_below(id, own_chain_.seq);
    if (kept && kept->seq == own_chain_.seq) {
      head = proof::Head{id, kept->seq, kept->chain, kept->flags, kept->signature, {}, {}, {}};
    } else {
      head = proof::sign_head(id, own_chain_.seq, own_chain_.chain, 0, signer_.secret);
      unstored_heads_.emplace_back(id, *head);
      unstored_head_bytes_.push_back(own_chain_.bytes);
    }
  }
  std::lock_guard<std::mutex> l(own_head_mu_);
  own_head_ = std::move(head);
  own_origin_ = OwnOriginKey{id, signer_.key, signer_.cert};
  return txn.status();
}

OwnOriginKey Node::own_origin_key() const {
  std::lock_guard<std::mutex> l(own_head_mu_);
  return own_origin_;
}

// A fresh key for this node's origin: drawn until its id is not reserved,
// stored 0600 before the transaction that moves to it commits (an orphan key
// file after an aborted batch is harmless).
Status Node::make_fresh_origin(LogTxn& txn) {
  for (;;) {
    auto key = Identity::generate(Env::posix());
    if (!key) return key.status();
    const OriginId id = proof::origin_of_key(key->public_key());
    if (is_reserved_origin(id)) continue;
    REPLOG_RETURN_IF_ERROR(store_identity(origin_key_file(options_.dir, id), *key, Env::posix()));
    signer_ = OriginSigner{std::string(key->secret_key()), key->public_key(), std::string(),
                           std::string()};
    auto device = Identity::from_secret_key(device_secret_, "device key");
    if (!device) return device.status();
    signer_.device = device->public_key();
    signer_.cert = proof::sign_cert(cluster_id_, signer_.key, device_secret_);
    REPLOG_RETURN_IF_ERROR(txn.put_meta(meta::kNodeId, u64_be(id)));
    node_id_ = id;
    own_seq_ = 0;
    own_chain_ = OwnChain{};
    own_chain_.chain = proof::chain_start(cluster_id_, signer_.key);
    {
      std::lock_guard<std::mutex> l(own_head_mu_);
      own_head_.reset();
      own_origin_ = OwnOriginKey{id, signer_.key, signer_.cert};
    }
    return put_own_record(txn);
  }
}

void Node::chain_own(Batch& b, const Update& u) {
  OwnChain& c = own_chain_;
  if (b.own_first == 0) b.own_first = u.seq();
  c.seq = u.seq();
  proof::chain_step(c.chain, signer_.key, u.id().hlc, u.body());
  c.bytes += u.body().size();
  b.chains.push_back({u.id().origin, {c.seq, c.chain}});
  if (c.bytes - c.signed_bytes >= kSignEveryBytes) owe_head(b, 0);
}

// The tip of the node's own chain is owed a head with `flags`.
void Node::owe_head(Batch& b, uint8_t flags) {
  OwnChain& c = own_chain_;
  b.to_sign.push_back(Batch::OwedHead{node_id_, signer_, StoredHead{c.seq, c.chain, flags, {}, c.bytes}, b.own_first == 1});
  c.signed_bytes = c.bytes;
  c.signed_seq = c.seq;
}

// After this batch stored own updates past seq `before`: the tip is owed a
// head (signed once the batch is durable, sign_committed) and the origin's
// record moves to it, in the batch's transaction. `flags` kFinal: the
// origin's last head (retire).
Status Node::finish_own_run(Batch& b, uint64_t before, uint8_t flags) {
  if (own_seq_ == before) return Status::ok();
  if (own_chain_.signed_seq != own_chain_.seq || flags != 0) owe_head(b, flags);
  ++b.puts;
  return put_own_record(b.txn, (flags & proof::kFinal) != 0);
}

Status Node::put_own_record(LogTxn& txn, bool final) {
  OriginRecord r;
  r.final = final;
  r.key = signer_.key;
  r.device = signer_.device;
  r.cert = signer_.cert;
  r.seq = own_chain_.seq;
  r.chain = own_chain_.chain;
  r.bytes = own_chain_.bytes;
  return txn.put_origin_record(node_id_, r);
}

// After the batch's commit: the heads it owes, signed now that what they cover
// is durable, and given to the commit listener (with the key where their run
// starts at seq 1).
void Node::sign_committed(Batch& b) {
  std::optional<proof::Head> newest;
  const bool signed_beside = b.signatures.size() == b.to_sign.size();  // Node::commit_and_sign
  for (size_t i = 0; i < b.to_sign.size(); ++i) {
    const Batch::OwedHead& owed = b.to_sign[i];
    const StoredHead& h = owed.head;
    proof::Head head = signed_beside ? proof::Head{owed.origin, h.seq, h.chain, h.flags, b.signatures[i], {}, {}, {}}
                                     : proof::sign_head(owed.origin, h.seq, h.chain, h.flags, owed.signer.secret);
    unstored_heads_.emplace_back(owed.origin, head);
    unstored_head_bytes_.push_back(h.bytes);
    if (owed.origin == node_id_) newest = head;
    if (!commit_listener_ || b.committed.empty()) continue;
    if (owed.carry_key) {
      head.key = owed.signer.key;
      head.device = owed.signer.device;
      head.cert = owed.signer.cert;
    }
    b.committed_heads.push_back(std::move(head));
  }
  if (!newest) return;
  std::lock_guard<std::mutex> l(own_head_mu_);
  own_head_ = std::move(newest);
}

Status Node::store_unstored_heads(LogTxn& txn, size_t& puts) {
  for (size_t i = 0; i < unstored_heads_.size(); ++i) {
    const auto& [origin, head] = unstored_heads_[i];
    REPLOG_RETURN_IF_ERROR(store_head(txn, origin, stored(head, unstored_head_bytes_[i])));
    ++puts;
  }
  return Status::ok();
}

// Stores `head`, thinning: the previous newest head is dropped when it lies
// less than kHeadSpacingBytes past the head kept before it.
Status Node::store_head(LogTxn& txn, OriginId origin, const StoredHead& head) {
  std::optional<uint64_t> thinned;
  if (head.seq > 1) {
    if (auto prev = txn.head_at_or_below(origin, head.seq - 1)) {
      auto before = prev->seq > 1 ? txn.head_at_or_below(origin, prev->seq - 1) : std::nullopt;
      const uint64_t floor = before ? before->bytes : 0;
      if (prev->bytes - floor < kHeadSpacingBytes) thinned = prev->seq;
    }
  }
  // The thinned head is usually the record's newest: the new one takes its place there.
  return txn.put_head(origin, head, thinned);
}

// Older storage formats to the current one, in one write transaction under
// the directory lock (docs/STORAGE.md "Format versions"). From format 5 the
// origin records move from `origins` into `seqs`. From format 4 no head
// moves: each origin's newest head stays in `heads` until a newer one goes
// into its record, and reads look in both. From format 3, the
// vector table goes (the seq index implies it); from format 2, the seq index
// moves to its appending layout first; from format 1, the origin is signed
// too (sign_legacy_origin).
// Even writing the new format version may need a page more than a full map
// holds: with_room grows it and runs the upgrade again.
Status Node::upgrade_storage() {
  return with_room([this] { return upgrade_storage_once(); });
}

Status Node::upgrade_storage_once() {
  auto txn = log_->begin_write();
  if (!txn) return txn.status();
  auto format = txn->meta(meta::kFormat);
  if (!format || !is_older_storage_format(*format)) return txn->status();
  REPLOG_RETURN_IF_ERROR(txn->upgrade_seq_index());
  REPLOG_RETURN_IF_ERROR(txn->drop_vector_table());
  REPLOG_RETURN_IF_ERROR(txn->move_origin_records());
  if (*format == "1") REPLOG_RETURN_IF_ERROR(sign_legacy_origin(*txn));
  REPLOG_RETURN_IF_ERROR(txn->put_meta(meta::kFormat, std::to_string(kStorageFormatVersion)));
  return txn->commit();
}

// Storage format 1 to 2: the origin this node wrote as before signed origins
// is attested with its device key (a final, legacy head over its chain), and
// the node moves to the origin its device key derives. Updates of other
// origins stay as they are until their own writers attest them.
Status Node::sign_legacy_origin(LogTxn& txn) {
  auto device = load_or_create_identity(DataDir(options_.dir).identity_file(), Env::posix());
  if (!device) return device.status();
  auto old_id = txn.meta(meta::kNodeId);
  if (!old_id || old_id->size() != 8) return Status::corruption(options_.dir + ": node id missing");
  const OriginId legacy = get_u64_be(old_id->data());
  const std::string cluster = txn.meta(meta::kCluster).value_or("");
  const uint64_t held = txn.vector_entry(legacy).value_or(VectorEntry{}).seq;
  if (held > 0) {
    uint64_t bytes = 0;
    auto chain = chain_over_log(txn, cluster, legacy, device->public_key(), held, bytes);
    if (!chain) return chain.status();
    OriginRecord r;
    r.key = device->public_key();
    r.legacy = r.final = true;
    r.seq = held;
    r.chain = *chain;
    r.bytes = bytes;
    REPLOG_RETURN_IF_ERROR(txn.put_origin_record(legacy, r));
    const proof::Head head =
        proof::sign_head(legacy, held, *chain, proof::kLegacy | proof::kFinal, device->secret_key());
    REPLOG_RETURN_IF_ERROR(txn.put_head(legacy, stored(head, bytes)));
  }
  Map former;
  if (auto prior = txn.meta(meta::kFormerOrigins)) {
    auto v = decode_msgpack_local(*prior);
    if (v && v->is_map()) former = v->as_map();
  }
  former[hex16(legacy)] = Value(std::string("upgraded to signed origins (storage format 2)"));
  REPLOG_RETURN_IF_ERROR(txn.put_meta(meta::kFormerOrigins, encode_msgpack(Value(std::move(former)))));
  const OriginId own = proof::origin_of_key(device->public_key());
  if (!is_reserved_origin(own)) return txn.put_meta(meta::kNodeId, u64_be(own));
  // One key in 2^63: it writes as a fresh key instead.
  node_id_ = legacy;
  cluster_id_ = cluster;
  device_secret_ = std::string(device->secret_key());
  return make_fresh_origin(txn);
}

}  // namespace replog::engine
