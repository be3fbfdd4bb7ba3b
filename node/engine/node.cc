// engine::Node: opening, loading state, reads and checkpoints. The writer
// (group commit, ingest, local calls) is in writer.cc.
#include "node/engine/node.h"

#include <sodium.h>

#include <algorithm>

#include "node/core/checkpoint.h"
#include "node/engine/revocation_index.h"
#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"
#include "storage/data_dir.h"
#include "storage/cluster_secret.h"
#include "storage/identity.h"
#include "storage/update_log.h"

namespace replog::engine {

namespace {

UpdateId successor(const UpdateId& id) {
  return id.origin == UINT64_MAX ? UpdateId{id.hlc + 1, 0} : UpdateId{id.hlc, id.origin + 1};
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return to_hex(raw);
}

// `writable`: a writer reads only the current format (open() upgrades older
// ones first); a reader also reads formats 1 to 3 (UpdateLog reads their
// seq index and vector as they lay them out).
Status read_identity(LogTxn& txn, const std::string& dir, OriginId& node_id, std::string& cluster,
                     bool writable) {
  auto format = txn.meta(meta::kFormat);
  if (!format) return Status::corruption(dir + ": no format version (not a replog data directory?)");
  const std::string current = std::to_string(kStorageFormatVersion);
  if (*format != current && (writable || !is_older_storage_format(*format))) {
    std::string known;  // "1, 2, 3 or 4"
    for (uint32_t v = 1; v < kStorageFormatVersion; ++v)
      known += std::to_string(v) + (v + 1 < kStorageFormatVersion ? ", " : " or ");
    return Status::invalid_argument(dir + ": storage format " + *format + " is not one this replog reads (format " +
                                    known + current + "); a newer replog wrote it");
  }
  auto id = txn.meta(meta::kNodeId);
  if (!id || id->size() != 8) return Status::corruption(dir + ": node id missing");
  node_id = get_u64_be(id->data());
  cluster = txn.meta(meta::kCluster).value_or("");
  return txn.status();
}

}  // namespace

// --- lifecycle -------------------------------------------------------------------

Node::Node(const NodeOptions& options)
    : options_(options),
      methods_(options.methods ? options.methods
                               : std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins())),
      clock_(options.clock ? options.clock : &system_clock_),
      replayer_(*methods_, options.undo_window) {
  replayer_.set_observer([this](const Replayer::Event& e) { observe(e); });
}

Status Node::init(const InitOptions& options) {
  DataDir dir(options.dir);
  if (dir.holds_log())
    return Status::invalid_argument(options.dir + " already holds a replog data directory");
  if (options.cluster && (options.cluster->empty() || options.cluster->size() > 64 ||
                          options.cluster->find_first_not_of("0123456789abcdefABCDEF-_") != std::string::npos))
    return Status::invalid_argument("cluster id must be 1..64 characters of [0-9a-fA-F-_]");
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  {
    UpdateLog::Options lo;
    lo.create = true;
    auto log = UpdateLog::open(options.dir, lo);
    if (!log) return log.status();
    auto lock = dir.lock_for_command("init", 0);
    if (!lock) return lock.status();
    if (lock->outcome == CommandLock::Outcome::kNodeStarting)
      return Status::busy(options.dir + ": a node is starting (pid " + std::to_string(lock->node_pid) + ")");
    // Still under the lock: the key files (a data directory's identity, never
    // in LMDB). The origin is the device key's.
    auto identity = load_or_create_identity(dir.identity_file(), Env::posix());
    if (!identity) return identity.status();
    auto secret = load_or_create_cluster_secret(dir.cluster_secret_file(), Env::posix());
    if (!secret) return secret.status();
    const OriginId origin = proof::origin_of_key(identity->public_key());
    if (is_reserved_origin(origin))
      return Status::invalid_argument("this device key derives a reserved origin id (one key in 2^63): remove " +
                                      dir.identity_file() + " and run init again");
    auto txn = (*log)->begin_write();
    if (!txn) return txn.status();
    Status s = txn->put_meta(meta::kFormat, std::to_string(kStorageFormatVersion));
    if (s) s = txn->put_meta(meta::kNodeId, u64_be(origin));
    if (s) s = txn->put_meta(meta::kCluster, options.cluster ? *options.cluster : random_hex(16));
    if (s) s = txn->put_meta(meta::kHlc, u64_be(0));
    if (s) s = txn->commit();
    if (!s) return s;
  }
  if (!options.schema) return Status::ok();
  NodeOptions no;
  no.dir = options.dir;
  no.clock = options.clock;
  auto node = open(no);
  if (!node) return node.status();
  auto id = (*node)->call("schema", Value(Map{{"document", *options.schema}}));
  if (!id) return id.status();
  return (*node)->close();
}

Result<std::unique_ptr<Node>> Node::open(const NodeOptions& options, std::unique_ptr<FileLock> lock) {
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  auto detached = DataDir(options.dir).detached_at();
  if (!detached) return detached.status();
  if (*detached && !options.attach)
    return Status::refused(options.dir + " is a restore detached at " + format_iso8601(Time::from_millis(**detached)) +
                           ": read it with state and log; `replog restore --attach --data " + options.dir +
                           "` makes it a member that writes");
  std::unique_ptr<Node> node(new Node(options));
  UpdateLog::Options lo;
  lo.initial_map_bytes = options.initial_map_bytes;
  auto log = UpdateLog::open(options.dir, lo);
  if (!log) return log.status();
  node->log_ = std::move(log).value();
  if (!lock) {
    auto taken = DataDir(options.dir).lock_for_node(options.lock_wait_ms, options.on_lock_wait);
    if (!taken) return taken.status();
    lock = std::move(taken).value();
  }
  node->lock_ = std::move(lock);
  node->writable_ = true;
  bool blocked = false;  // marked by an earlier build: move to a fresh origin now
  REPLOG_RETURN_IF_ERROR(node->upgrade_storage());
  REPLOG_RETURN_IF_ERROR(node->index_revocations());
  {
    auto txn = node->log_->begin_read();
    if (!txn) return txn.status();
    std::lock_guard<std::mutex> l(node->state_mu_);
    REPLOG_RETURN_IF_ERROR(node->read_writer_state(*txn, /*at_open=*/true));
    blocked = txn->meta(meta::kWritesBlocked).has_value();
  }
  if (blocked) REPLOG_RETURN_IF_ERROR(node->leave_blocked_origin());
  node->writer_ = std::thread([n = node.get()] { n->writer_loop(); });
  return node;
}

// What the writer needs before its first batch: identity, state, own seq, the
// clock's mark, quarantined origins. The cluster id only `at_open`: it never
// changes after, and other threads read it without a lock (cluster_id()), so
// the writer putting its memory back after an aborted batch must not rewrite
// it. REQUIRES: state_mu_ held.
Status Node::read_writer_state(LogTxn& txn, bool at_open) {
  OriginId id = 0;
  std::string cluster;
  REPLOG_RETURN_IF_ERROR(read_identity(txn, options_.dir, id, cluster, /*writable=*/true));
  if (at_open) cluster_id_ = std::move(cluster);
  node_id_ = id;
  REPLOG_RETURN_IF_ERROR(load(txn, std::nullopt));
  own_seq_ = txn.vector_entry(id).value_or(VectorEntry{}).seq;
  uint64_t mark = 0;
  if (auto m = txn.meta(meta::kHlc); m && m->size() == 8) mark = get_u64_be(m->data());
  if (auto last = txn.last_id()) mark = std::max(mark, last->hlc);
  hlc_ = std::make_unique<HybridClock>(*clock_, mark);
  quarantined_.clear();
  for (const auto& [origin, _] : txn.forks()) quarantined_.insert(origin);
  REPLOG_RETURN_IF_ERROR(txn.status());
  return load_signer(txn);
}

Result<std::unique_ptr<Node>> Node::open_read_only(const NodeOptions& options, std::optional<int64_t> at_millis) {
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  if (!at_millis) {  // a detached restore shows its time unless another is asked for
    auto detached = DataDir(options.dir).detached_at();
    if (!detached) return detached.status();
    at_millis = *detached;
  }
  std::unique_ptr<Node> node(new Node(options));
  auto log = UpdateLog::open(options.dir, {});
  if (!log) return log.status();
  node->log_ = std::move(log).value();
  auto txn = node->log_->begin_read();
  if (!txn) return txn.status();
  OriginId id = 0;
  REPLOG_RETURN_IF_ERROR(read_identity(*txn, options.dir, id, node->cluster_id_, /*writable=*/false));
  node->node_id_ = id;
  std::lock_guard<std::mutex> l(node->state_mu_);
  REPLOG_RETURN_IF_ERROR(node->load(*txn, at_millis));
  node->closed_ = true;
  return node;
}

Node::~Node() {
  Status s = close();
  (void)s;
  lock_.reset();
}

Status Node::close() {
  if (closed_) return Status::ok();
  closed_ = true;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard<std::mutex> l(state_mu_);
  return write_checkpoint();
}

// --- state loading and replay ---------------------------------------------------

// Rebuilds state from the newest usable checkpoint (not after at_millis, when
// given), then replays the tail up to the head (or up to at_millis).
Status Node::load(LogTxn& txn, std::optional<int64_t> at_millis) {
  // Forks proved by evidence, and revocations in effect: what they shut out is left out.
  auto revocations = load_revocations(txn, nullptr);
  if (!revocations) return revocations.status();
  revocations_ = std::move(revocations).value();
  if (at_millis)
    std::erase_if(revocations_, [&](const Revocation& r) { return hlc::millis(r.id.hlc) > *at_millis; });
  std::map<OriginId, uint64_t> revoked;
  replayer_.set_left_out(log_left_out(txn, revocations_, &revoked));
  {
    std::lock_guard<std::mutex> l(revoked_mu_);
    if (revoked != revoked_) ++revocation_generation_;
    revoked_ = std::move(revoked);
  }
  return load_state(txn, at_millis ? UpdateId{hlc::make(*at_millis + 1, 0), 0} : UpdateId{UINT64_MAX, UINT64_MAX},
                    at_millis);
}

// The same from the newest usable checkpoint whose cut sorts below `below`.
// Subscribers hear one kReloaded, not each step.
Status Node::load_state(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis) {
  Status s;
  {
    QuietChanges quiet(*this);
    s = load_state_quietly(txn, below, at_millis);
  }
  note_reloaded();
  return s;
}

Status Node::load_state_quietly(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis) {
  const std::string digest = methods_->digest();
  for (auto& [cut, bytes] : txn.checkpoints()) {
    if (!(cut < below)) continue;
    auto cp = decode_checkpoint(bytes);
    if (!cp || cp->methods_digest != digest) continue;
    auto state = State::decode(cp->state_bytes);
    if (!state) continue;
    replayer_.reset(std::move(state).value(), cut, cp->vector);
    return replay_from(txn, cut, at_millis);
  }
  replayer_.reset(State(), std::nullopt, {});
  return replay_from(txn, std::nullopt, at_millis);
}

Status Node::replay_from(LogTxn& txn, std::optional<UpdateId> after, std::optional<int64_t> at_millis) {
  Status status;
  Status iter = txn.for_each_from(after ? successor(*after) : UpdateId{}, [&](const UpdateId& id, std::string_view body) {
    if (at_millis && hlc::millis(id.hlc) > *at_millis) return false;
    auto u = parse_update(id, body);
    if (!u) {
      status = u.status();  // local corruption: replog verify reports it
      return false;
    }
    auto applied = replayer_.apply(*u);
    if (applied.outcome == Replayer::Outcome::kHalted) {
      note_halt(id, applied.halt);
      return false;
    }
    return true;
  });
  return iter.is_ok() ? status : iter;
}

// A method threw something that is not a MethodFailure at `id`: state stays
// the fold of the updates below it, and the rest is folded again later.
// REQUIRES: state_mu_ held (or the node not yet shared).
void Node::note_halt(const UpdateId& id, const std::string& why) const {
  refold_from_ = refold_from_ ? std::min(*refold_from_, id) : id;
  fold_status_ = Status::io_error(why + "; the fold stops before it and is retried");
}

// --- reads -------------------------------------------------------------------------

// Re-folds state deferred by the writer (a catch-up landing far below the
// head), from a read transaction: everything applied so far is committed.
// REQUIRES: state_mu_ held.
Status Node::refold_locked() const {
  if (!refold_from_) return Status::ok();
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  const UpdateId from = *refold_from_;
  refold_from_.reset();
  Status s = const_cast<Node*>(this)->load_state(*txn, from, std::nullopt);
  publish_changes_locked();
  if (!s) return s;
  // A fold that stopped again (note_halt) left refold_from_ set.
  if (!refold_from_) fold_status_ = Status::ok();
  return fold_status_;
}

bool Node::read_if_current(const std::function<void(const State&)>& fn) const {
  std::lock_guard<std::mutex> l(state_mu_);
  if (refold_from_) return false;
  fn(replayer_.state());
  return true;
}

void Node::read(const std::function<void(const State&)>& fn) const {
  std::lock_guard<std::mutex> l(state_mu_);
  (void)refold_locked();
  fn(replayer_.state());
}

Result<std::vector<Update>> Node::read_log(std::optional<UpdateId> after, size_t max) const {
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  std::vector<Update> out;
  Status bad;
  Status iter = txn->for_each_from(after ? successor(*after) : UpdateId{}, [&](const UpdateId& id, std::string_view body) {
    if (out.size() >= max) return false;
    auto u = Update::parse(id, std::string(body));
    if (!u) bad = u.status().with_context("stored update " + id.to_string());
    else out.push_back(std::move(u).value());
    return u.is_ok();
  });
  REPLOG_RETURN_IF_ERROR(iter);
  REPLOG_RETURN_IF_ERROR(bad);
  return out;
}

Result<std::vector<Update>> Node::read_since(VersionVector& seen, size_t max) const {
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  auto bodies = txn->bodies_since(seen, max);
  if (!bodies) return bodies.status();
  std::vector<Update> out;
  for (auto& [id, body] : *bodies) {
    auto u = Update::parse(id, std::move(body));
    if (!u) return u.status().with_context("stored update");
    out.push_back(std::move(u).value());
  }
  return out;
}

uint64_t Node::wait_for_commit(uint64_t seen, std::chrono::milliseconds wait) const {
  std::unique_lock<std::mutex> l(commit_mu_);
  commit_cv_.wait_for(l, wait, [&] { return commit_generation_ > seen; });
  return commit_generation_;
}

Status Node::fold_status() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return fold_status_;
}

std::string Node::state_hash() const {
  std::lock_guard<std::mutex> l(state_mu_);
  (void)refold_locked();
  return replayer_.state().hash_hex();
}

Node::HeadCheckpoint Node::head_checkpoint() const {
  std::lock_guard<std::mutex> l(state_mu_);
  (void)refold_locked();
  HeadCheckpoint out;
  const auto hash = replayer_.state().hash();
  out.state_hash.assign(reinterpret_cast<const char*>(hash.data()), hash.size());
  auto cut = replayer_.last_applied();
  if (!cut) return out;
  out.cut = *cut;
  out.vector = replayer_.applied_vector();
  out.bytes = encode_checkpoint(*cut, out.vector, methods_->digest(), replayer_.state());
  return out;
}

// A range ends at a head this node holds (signed origins): the kept head at
// or below the budget's end, or when there is none, the first one after it,
// so that a pull always progresses. Without a record of the origin (a node
// that does not verify, or a legacy origin not yet attested) the range is
// plain, as before signed origins.
namespace {

// One range as read_range() answers it, built from the updates the log walk
// hands it: from `from` on, within the budget, and on a signed origin up to
// the last head reached.
class RangeBuilder {
 public:
  RangeBuilder(LogTxn& txn, OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes,
               std::optional<proof::Head> own)
      : txn_(txn), origin_(origin), from_(from), max_count_(max_count), max_bytes_(max_bytes), own_(std::move(own)) {
    rec_ = txn_.origin_record(origin);
    signed_ = rec_.has_value() && rec_->seq >= from;
    if (signed_) next_ = head_from(from);
    // Held but not yet under a head: nothing to send.
    walks_ = !(signed_ && (!next_ || next_->seq > rec_->seq));
  }

  bool walks() const { return walks_; }  // false: the answer is empty, the log need not be read

  // One update of the walk; false when the range is complete.
  bool take(uint64_t seq, const UpdateId& id, std::string_view body) {
    out_.next_held = true;  // until this update is taken
    const bool budget_left = out_.updates.size() < max_count_ && (out_.updates.empty() || bytes_ < max_bytes_);
    // Past the budget, a signed range goes on only to reach its first head.
    if (!budget_left && (!signed_ || out_.head)) return false;
    if (signed_ && seq > rec_->seq) return false;
    if (!signed_ && !out_.updates.empty() && bytes_ + body.size() > max_bytes_) return false;
    out_.next_held = false;
    bytes_ += body.size();
    auto u = Update::parse(id, std::string(body));
    if (!u) {
      parsed_ = u.status().with_context("stored update");
      return false;
    }
    out_.updates.push_back(std::move(u).value());
    if (next_ && next_->seq == seq) {
      out_.head = next_;
      at_head_ = out_.updates.size();
      next_ = head_from(seq + 1);
    }
    return true;
  }

  Result<Range> finish() {
    REPLOG_RETURN_IF_ERROR(parsed_);
    if (signed_) {
      if (at_head_ < out_.updates.size()) out_.next_held = true;
      out_.updates.resize(at_head_);  // what lies past the last head is not sent
      if (out_.head && from_ == 1) {
        out_.head->key = rec_->key;
        out_.head->device = rec_->device;
        out_.head->cert = rec_->cert;
      }
      if (out_.head && rec_->legacy) out_.head->key = rec_->key;
    }
    return std::move(out_);
  }

 private:
  // The next head at or after `seq`: a kept one, or this node's newest own head not stored yet.
  std::optional<proof::Head> head_from(uint64_t seq) {
    if (auto kept = txn_.head_at_or_above(origin_, seq))
      return proof::Head{origin_, kept->seq, kept->chain, kept->flags, kept->signature, {}, {}, {}};
    if (own_ && own_->seq >= seq) return own_;
    return std::nullopt;
  }

  LogTxn& txn_;
  OriginId origin_;
  uint64_t from_, max_count_;
  size_t max_bytes_;
  std::optional<proof::Head> own_;
  std::optional<OriginRecord> rec_;
  bool signed_ = false, walks_ = true;
  std::optional<proof::Head> next_;
  size_t bytes_ = 0, at_head_ = 0;
  Status parsed_;
  Range out_;
};

}  // namespace

Result<Range> Node::read_range(OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes) const {
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  RangeBuilder range(*txn, origin, from, max_count, max_bytes,
                     origin == node_id_ ? own_head(false) : std::nullopt);
  if (range.walks()) {
    REPLOG_RETURN_IF_ERROR(txn->for_each_of_origin(
        origin, from, [&](uint64_t seq, const UpdateId& id, std::string_view body) { return range.take(seq, id, body); }));
    REPLOG_RETURN_IF_ERROR(txn->status());
  }
  return range.finish();
}

std::vector<Result<Range>> Node::read_ranges(const std::vector<RangeAsk>& asks) const {
  if (asks.size() < 2) return SyncStore::read_ranges(asks);  // one at a time
  std::vector<Result<Range>> out;
  auto txn = log_->begin_read();
  if (!txn) {
    out.assign(asks.size(), txn.status());
    return out;
  }
  std::vector<RangeBuilder> ranges;
  ranges.reserve(asks.size());
  std::vector<std::pair<OriginId, uint64_t>> starts;
  std::vector<size_t> walked;  // starts[j] is asks[walked[j]]
  for (size_t i = 0; i < asks.size(); ++i) {
    const RangeAsk& a = asks[i];
    ranges.emplace_back(*txn, a.origin, a.from, a.max_count, a.max_bytes,
                        a.origin == node_id_ ? own_head(false) : std::nullopt);
    if (!ranges.back().walks()) continue;
    starts.emplace_back(a.origin, a.from);
    walked.push_back(i);
  }
  Status walk = txn->for_each_of_origins(starts, [&](size_t j, uint64_t seq, const UpdateId& id, std::string_view body) {
    return ranges[walked[j]].take(seq, id, body);
  });
  if (walk.is_ok()) walk = txn->status();
  // Each on its own, so that the one that fails (a damaged entry) takes no other answer with it.
  if (!walk.is_ok()) return SyncStore::read_ranges(asks);
  for (RangeBuilder& r : ranges) out.push_back(r.finish());
  return out;
}

std::vector<std::string> Node::evidence() const {
  std::vector<std::string> out;
  auto txn = log_->begin_read();
  if (!txn) return out;
  for (auto& [_, bytes] : txn->evidence()) out.push_back(std::move(bytes));
  return out;
}

VersionVector Node::vector() const {
  auto txn = log_->begin_read();
  if (!txn) return VersionVector{};
  const uint64_t id = txn->id();
  {
    std::lock_guard<std::mutex> l(vector_mu_);
    if (vector_txn_ != 0 && vector_txn_ == id) return vector_read_;
  }
  VersionVector v = txn->vector();
  std::lock_guard<std::mutex> l(vector_mu_);
  vector_txn_ = id;
  vector_read_ = v;
  return v;
}

NodeInfo Node::info() const {
  NodeInfo info;
  info.node_id = node_id_;
  info.cluster_id = cluster_id_;
  auto txn = log_->begin_read();
  if (!txn) return info;
  info.vector = txn->vector();
  info.updates = txn->update_count();
  info.forks = txn->forks();
  for (const auto& [origin, rec] : txn->origin_records()) info.verified[origin] = rec.seq;
  info.fork_evidence = txn->fork_seqs();
  {
    std::lock_guard<std::mutex> l(revoked_mu_);
    info.revoked = revoked_;
  }
  {
    std::lock_guard<std::mutex> l(held_mu_);
    for (const auto& [origin, h] : held_) info.held[origin] = NodeInfo::Held{h.updates.size(), h.bytes};
  }
  if (auto former = txn->meta(meta::kFormerOrigins)) {
    auto v = decode_msgpack_local(*former);
    if (v && v->is_map())
      for (const auto& [origin, why] : v->as_map())
        if (auto o = parse_hex16(origin); o && why.is_string()) info.former_origins[*o] = why.as_string();
  }
  return info;
}

std::map<OriginId, uint64_t> Node::unverified() const {
  std::map<OriginId, uint64_t> out;
  auto txn = log_->begin_read();
  if (!txn) return out;
  auto records = txn->origin_records();
  for (const auto& [origin, e] : txn->vector_entries()) {
    auto r = records.find(origin);
    const uint64_t verified = r == records.end() ? 0 : r->second.seq;
    if (verified < e.seq) out[origin] = verified;
  }
  return out;
}

std::map<OriginId, SyncStore::ChainTip> Node::tips() const {
  std::map<OriginId, ChainTip> out;
  auto txn = log_->begin_read();
  if (!txn) return out;
  auto records = txn->origin_records();
  for (const auto& [origin, e] : txn->vector_entries())
    if (auto r = records.find(origin); r != records.end() && r->second.seq == e.seq && e.seq > 0)
      out[origin] = ChainTip{e.seq, r->second.chain};
  return out;
}

std::map<std::string, std::string> Node::saved_peers() const {
  auto txn = log_->begin_read();
  return txn ? txn->peers() : std::map<std::string, std::string>{};
}

size_t Node::map_bytes() const { return log_->map_bytes(); }

std::optional<UpdateId> Node::newest_checkpoint_cut() const {
  auto txn = log_->begin_read();
  if (!txn) return std::nullopt;
  return txn->newest_checkpoint_cut();
}

// --- checkpoints -----------------------------------------------------------------------

// A full map is grown (doubled) and `once` run again, a bounded number of
// times: the writer's batches, the storage upgrade and the checkpoints alike.
// `once` opens and ends its own write transaction.
Status Node::with_room(const std::function<Status()>& once) {
  constexpr int kAttempts = 12;
  Status s;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    s = log_->grow_if_needed(attempt > 0);
    if (s) s = once();
    if (s.code() != Status::Code::kStoreFull) return s;
  }
  return s;
}

// REQUIRES: state_mu_ held, writer not running concurrently with another writer txn.
Status Node::write_checkpoint() {
  since_checkpoint_ = 0;
  if (!writable_) return Status::ok();  // a reader, or a node whose open failed (no log)
  return with_room([this] { return write_checkpoint_once(); });
}

Status Node::write_checkpoint_once() {
  REPLOG_RETURN_IF_ERROR(refold_locked());  // a stopped fold: no checkpoint until it goes through
  if (!replayer_.last_applied()) return Status::ok();
  // Cut behind the head by the undo window, so that updates a few positions
  // late do not invalidate the checkpoint.
  QuietChanges quiet(*this);  // a checkpoint changes no state: its undo and redo are not heard
  replayer_.rollback_newest(std::min(options_.undo_window, replayer_.undo_depth()));
  auto cut = replayer_.last_applied();
  auto txn = log_->begin_write();
  if (!txn) {
    auto read = log_->begin_read();
    return read ? replay_from(*read, cut, std::nullopt) : read.status();
  }
  size_t head_puts = 0;
  Status s = store_unstored_heads(*txn, head_puts);
  if (s && cut) {
    s = txn->put_checkpoint(*cut, encode_checkpoint(*cut, replayer_.applied_vector(), methods_->digest(),
                                                    replayer_.state()));
    if (s) s = prune_checkpoints(*txn);
  }
  Status replay = replay_from(*txn, cut, std::nullopt);
  if (s) s = replay;
  if (s) s = txn->commit();
  if (s) {
    unstored_heads_.clear();
    unstored_head_bytes_.clear();
  }
  return s;
}

Status Node::prune_checkpoints(LogTxn& txn) {
  // The stable cut: below the newest update of every origin that has not retired.
  std::optional<UpdateId> stable;
  const auto& retired = replayer_.state().retired();
  for (const auto& [origin, e] : txn.vector_entries()) {
    auto r = retired.find(origin);
    if (r != retired.end() && r->second <= e.seq) continue;
    UpdateId newest{e.last_hlc, origin};
    if (!stable || newest < *stable) stable = newest;
  }
  auto all = txn.checkpoints();  // newest first
  bool kept_stable = false;
  size_t kept = 0;
  for (const auto& [cut, _] : all) {
    bool below_stable = stable && cut < *stable;
    if (kept + 1 < options_.checkpoints_kept || (below_stable && !kept_stable)) {
      ++kept;
      if (below_stable) kept_stable = true;
      continue;
    }
    REPLOG_RETURN_IF_ERROR(txn.delete_checkpoint(cut));
  }
  return txn.status();
}

}  // namespace replog::engine
