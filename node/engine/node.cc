#include "node/engine/node.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"

namespace replog {

namespace {

constexpr const char* kMetaFormat = "format_version";
constexpr const char* kMetaNodeId = "node_id";
constexpr const char* kMetaCluster = "cluster_id";
constexpr const char* kMetaHlc = "hlc";
constexpr const char* kMetaWritesBlocked = "writes_blocked";

UpdateId successor(const UpdateId& id) {
  return id.origin == UINT64_MAX ? UpdateId{id.hlc + 1, 0} : UpdateId{id.hlc, id.origin + 1};
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string out;
  for (unsigned char c : raw) out += hex16(c).substr(14);
  return out;
}

Result<int> take_lock(const std::string& dir) {
  std::string path = dir + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status::busy(dir + " is in use by another writer (pid " + pid + ")");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is informational only; the lock is what counts.
  }
  return fd;
}

}  // namespace

// --- checkpoints ---------------------------------------------------------------

std::string encode_checkpoint(const UpdateId& cut, const std::map<OriginId, uint64_t>& vector,
                              const std::string& methods_digest, const State& state) {
  std::string out;
  out.push_back(static_cast<char>(0x84));  // map of 4, keys in byte order
  auto key = [&](const char* k) { encode_msgpack_into(Value(k), out); };
  key("cut");
  auto k = cut.key();
  encode_msgpack_into(Value(Bytes{std::string(k.data(), k.size())}), out);
  key("methods");
  encode_msgpack_into(Value(methods_digest), out);
  key("state");
  encode_msgpack_into(Value(Bytes{state.encode()}), out);
  key("vector");
  Map v;
  for (const auto& [origin, seq] : vector) v[hex16(origin)] = Value(static_cast<int64_t>(seq));
  encode_msgpack_into(Value(std::move(v)), out);
  return out;
}

Result<Checkpoint> decode_checkpoint(std::string_view bytes) {
  auto v = decode_msgpack_local(bytes);
  if (!v) return v.status().with_context("checkpoint");
  const Value* cut = v->find("cut");
  const Value* methods = v->find("methods");
  const Value* state = v->find("state");
  const Value* vector = v->find("vector");
  if (!cut || cut->kind() != Value::Kind::kBytes || cut->as_bytes().data.size() != 16 || !methods ||
      !methods->is_string() || !state || state->kind() != Value::Kind::kBytes || !vector || !vector->is_map())
    return Status::corruption("checkpoint: missing or malformed fields");
  Checkpoint cp;
  cp.cut = UpdateId::from_key(cut->as_bytes().data);
  cp.methods_digest = methods->as_string();
  cp.state_bytes = state->as_bytes().data;
  for (const auto& [origin, seq] : vector->as_map()) {
    auto o = parse_hex16(origin);
    if (!o || !seq.is_int()) return Status::corruption("checkpoint: malformed vector");
    cp.vector[*o] = static_cast<uint64_t>(seq.as_int());
  }
  return cp;
}

// --- lifecycle -------------------------------------------------------------------

struct Node::Request {
  enum class Kind { kCall, kIngest, kPeers } kind;
  std::string method;
  std::string arg;  // MessagePack
  std::vector<EncodedUpdate> updates;
  std::map<std::string, std::string> peers;

  Status status;
  UpdateId id;
  IngestReport report;
  std::promise<void> done;
};

Node::Node(const NodeOptions& options)
    : options_(options),
      methods_(options.methods ? options.methods
                               : std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins())),
      clock_(options.clock ? options.clock : &system_clock_),
      replayer_(*methods_, options.undo_window) {}

Status Node::init(const InitOptions& options) {
  if (::access((options.dir + "/data.mdb").c_str(), F_OK) == 0)
    return Status::invalid_argument(options.dir + " already holds a replog data directory");
  if (options.cluster && (options.cluster->empty() || options.cluster->size() > 64 ||
                          options.cluster->find_first_not_of("0123456789abcdefABCDEF-_") != std::string::npos))
    return Status::invalid_argument("cluster id must be 1..64 characters of [0-9a-f-_]");
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  {
    UpdateLog::Options lo;
    lo.create = true;
    auto log = UpdateLog::open(options.dir, lo);
    if (!log) return log.status();
    auto lock = take_lock(options.dir);
    if (!lock) return lock.status();
    auto txn = (*log)->begin_write();
    if (!txn) {
      ::close(*lock);
      return txn.status();
    }
    OriginId id = 0;
    while (id == 0) randombytes_buf(&id, sizeof id);
    Status s = txn->put_meta(kMetaFormat, std::to_string(kStorageFormatVersion));
    if (s) s = txn->put_meta(kMetaNodeId, u64_be(id));
    if (s) s = txn->put_meta(kMetaCluster, options.cluster ? *options.cluster : random_hex(16));
    if (s) s = txn->put_meta(kMetaHlc, u64_be(0));
    if (s) s = txn->commit();
    ::close(*lock);
    if (!s) return s;
  }
  if (options.schema) {
    NodeOptions no;
    no.dir = options.dir;
    no.clock = options.clock;
    auto node = open(no);
    if (!node) return node.status();
    auto id = (*node)->call("schema", Value(Map{{"document", *options.schema}}));
    if (!id) return id.status();
    return (*node)->close();
  }
  return Status::ok();
}

namespace {

Status read_identity(LogTxn& txn, const std::string& dir, OriginId& node_id, std::string& cluster) {
  auto format = txn.meta(kMetaFormat);
  if (!format) return Status::corruption(dir + ": no format version (not a replog data directory?)");
  if (*format != std::to_string(kStorageFormatVersion))
    return Status::invalid_argument(dir + ": storage format " + *format + ", this replog reads format " +
                                    std::to_string(kStorageFormatVersion));
  auto id = txn.meta(kMetaNodeId);
  if (!id || id->size() != 8) return Status::corruption(dir + ": node id missing");
  node_id = get_u64_be(id->data());
  cluster = txn.meta(kMetaCluster).value_or("");
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Node>> Node::open(const NodeOptions& options) {
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  std::unique_ptr<Node> node(new Node(options));
  UpdateLog::Options lo;
  lo.initial_map_bytes = options.initial_map_bytes;
  auto log = UpdateLog::open(options.dir, lo);
  if (!log) return log.status();
  node->log_ = std::move(log).value();
  auto lock = take_lock(options.dir);
  if (!lock) return lock.status();
  node->lock_fd_ = *lock;
  node->writable_ = true;
  {
    auto txn = node->log_->begin_read();
    if (!txn) return txn.status();
    REPLOG_RETURN_IF_ERROR(read_identity(*txn, options.dir, node->node_id_, node->cluster_id_));
    std::lock_guard<std::mutex> l(node->state_mu_);
    REPLOG_RETURN_IF_ERROR(node->load(*txn, std::nullopt));
    auto self = txn->vector_entry(node->node_id_);
    node->own_seq_ = self ? self->seq : 0;
    uint64_t mark = 0;
    if (auto m = txn->meta(kMetaHlc); m && m->size() == 8) mark = get_u64_be(m->data());
    if (auto last = txn->last_id()) mark = std::max(mark, last->hlc);
    node->hlc_ = std::make_unique<HybridClock>(*node->clock_, mark);
    node->writes_blocked_ = txn->meta(kMetaWritesBlocked).has_value();
    for (const auto& [origin, _] : txn->forks()) node->quarantined_.insert(origin);
  }
  node->writer_ = std::thread([n = node.get()] { n->writer_loop(); });
  return node;
}

Result<std::unique_ptr<Node>> Node::open_read_only(const NodeOptions& options, std::optional<int64_t> at_millis) {
  if (sodium_init() < 0) return Status::io_error("libsodium failed to initialise");
  std::unique_ptr<Node> node(new Node(options));
  auto log = UpdateLog::open(options.dir, {});
  if (!log) return log.status();
  node->log_ = std::move(log).value();
  auto txn = node->log_->begin_read();
  if (!txn) return txn.status();
  REPLOG_RETURN_IF_ERROR(read_identity(*txn, options.dir, node->node_id_, node->cluster_id_));
  std::lock_guard<std::mutex> l(node->state_mu_);
  REPLOG_RETURN_IF_ERROR(node->load(*txn, at_millis));
  node->closed_ = true;
  return node;
}

Node::~Node() {
  Status s = close();
  (void)s;
  if (lock_fd_ >= 0) ::close(lock_fd_);
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
  return load_state(txn, at_millis ? UpdateId{hlc::make(*at_millis + 1, 0), 0} : UpdateId{UINT64_MAX, UINT64_MAX},
                    at_millis);
}

// The same from the newest usable checkpoint whose cut sorts below `below`.
Status Node::load_state(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis) {
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
    auto u = parse_body(id, body);
    if (!u) {
      status = u.status();  // local corruption: replog verify reports it
      return false;
    }
    replayer_.apply(*u);
    return true;
  });
  return iter.is_ok() ? status : iter;
}

// --- reads -------------------------------------------------------------------------

// Re-folds state deferred by the writer (a catch-up landing far below the
// head), from a read transaction: everything applied so far is committed.
// REQUIRES: state_mu_ held.
Status Node::refold_locked() const {
  if (!refold_from_) return Status::ok();
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  Status s = const_cast<Node*>(this)->load_state(*txn, *refold_from_, std::nullopt);
  refold_from_.reset();
  return s;
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

std::string Node::state_hash() const {
  std::lock_guard<std::mutex> l(state_mu_);
  (void)refold_locked();
  return replayer_.state().hash_hex();
}

Result<std::vector<EncodedUpdate>> Node::read_range(OriginId origin, uint64_t from, uint64_t max_count,
                                                    size_t max_bytes) const {
  auto txn = log_->begin_read();
  if (!txn) return txn.status();
  std::vector<EncodedUpdate> out;
  size_t bytes = 0;
  for (uint64_t seq = from; out.size() < max_count && (out.empty() || bytes < max_bytes); ++seq) {
    auto id = txn->id_of(origin, seq);
    if (!id) break;
    auto body = txn->body(*id);
    if (!body) return Status::corruption("seq index of " + hex16(origin) + " #" + std::to_string(seq) + " points nowhere");
    if (!out.empty() && bytes + body->size() > max_bytes) break;
    bytes += body->size();
    out.push_back({*id, std::move(*body)});
  }
  return out;
}

VersionVector Node::vector() const {
  auto txn = log_->begin_read();
  return txn ? txn->vector() : VersionVector{};
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
  if (auto reason = txn->meta(kMetaWritesBlocked)) {
    info.writes_blocked = true;
    info.writes_blocked_reason = *reason;
  }
  return info;
}

// --- writes --------------------------------------------------------------------------

Result<UpdateId> Node::call(const std::string& method, const Value& arg) {
  if (!writable_) return Status::invalid_argument("this node is read-only");
  if (method.empty() || method.size() > 255) return Status::invalid_argument("method name must be 1..255 bytes");
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kCall;
  req->method = method;
  req->arg = encode_msgpack(arg);
  if (req->arg.size() + method.size() > limits::kMaxUpdateBytes)
    return Status::invalid_argument("update of " + std::to_string(req->arg.size()) + " bytes is larger than the " +
                                    std::to_string(limits::kMaxUpdateBytes) + "-byte limit");
  REPLOG_RETURN_IF_ERROR(submit(req));
  if (!req->status) return req->status;
  return req->id;
}

Status Node::submit(const std::shared_ptr<Request>& req) {
  if (!writable_) return Status::invalid_argument("this node is read-only");
  auto done = req->done.get_future();
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (stopping_) return Status::invalid_argument("node is closing");
    queue_.push_back(req);
  }
  queue_cv_.notify_one();
  done.wait();
  return Status::ok();
}

Result<IngestReport> Node::ingest(std::vector<EncodedUpdate> updates) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kIngest;
  req->updates = std::move(updates);
  REPLOG_RETURN_IF_ERROR(submit(req));
  if (!req->status) return req->status;
  return std::move(req->report);
}

Status Node::save_peers(std::map<std::string, std::string> peers) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kPeers;
  req->peers = std::move(peers);
  REPLOG_RETURN_IF_ERROR(submit(req));
  return req->status;
}

void Node::writer_loop() {
  while (true) {
    std::vector<std::shared_ptr<Request>> batch;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      if (refold_pending_) {
        // A deferred re-fold is due at refold_due_ms_ unless work comes first.
        int64_t wait_ms = std::max<int64_t>(0, refold_due_ms_ - clock_->now_millis());
        if (!queue_cv_.wait_for(l, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || !queue_.empty(); })) {
          l.unlock();
          std::lock_guard<std::mutex> state_lock(state_mu_);
          (void)refold_locked();
          refold_pending_ = false;
          continue;
        }
      }
      queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // Callers woken by the last commit are still queueing: give them a moment
      // (at most 200 µs) to join this batch, as many as joined the last one.
      if (queue_.size() < last_batch_size_)
        queue_cv_.wait_for(l, std::chrono::microseconds(200),
                           [&] { return stopping_ || queue_.size() >= last_batch_size_; });
      batch.swap(queue_);
      last_batch_size_ = batch.size();
    }
    process(batch);
    {
      std::lock_guard<std::mutex> state_lock(state_mu_);
      refold_pending_ = refold_from_.has_value();
    }
    // The deferred re-fold waits until the writer has been idle for a while,
    // so that a whole catch-up is folded once.
    if (refold_pending_) refold_due_ms_ = clock_->now_millis() + kRefoldDelayMs;
    for (auto& r : batch) r->done.set_value();
    if (since_checkpoint_ >= options_.checkpoint_interval && !refold_pending_) {
      std::lock_guard<std::mutex> l(state_mu_);
      (void)write_checkpoint();
    }
  }
}

void Node::process(std::vector<std::shared_ptr<Request>>& batch) {
  std::lock_guard<std::mutex> state_lock(state_mu_);
  // A full map is grown (doubled) and the batch run again, a bounded number of times.
  constexpr int kAttempts = 12;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (Status g = log_->grow_if_needed(attempt > 0); !g) {
      for (auto& r : batch) r->status = g;
      return;
    }
    auto txn_or = log_->begin_write();
    if (!txn_or) {
      for (auto& r : batch) r->status = txn_or.status();
      return;
    }
    LogTxn& txn = *txn_or;
    Status fatal;  // an LMDB error: the transaction is unusable
    std::vector<Update> accepted;
    std::vector<EncodedUpdate> committed;  // for the commit listener, in commit order
    size_t puts = 0;  // records written in this transaction
    std::map<OriginId, VectorEntry> held_in_batch;

    // Received updates first: local calls get later timestamps anyway.
    for (auto& req : batch) {
      if (req->kind != Request::Kind::kIngest || !fatal.is_ok()) continue;
      req->report = IngestReport{};
      for (const auto& eu : req->updates) {
        IngestReport& rep = req->report;
        auto refuse = [&](const std::string& why) { rep.refused.push_back(eu.id.to_string() + ": " + why); };
        if (eu.body.size() > limits::kMaxUpdateBytes + 64) { refuse("larger than the protocol limit"); continue; }
        auto u = parse_body(eu.id, eu.body);
        if (!u) { refuse(u.status().message()); continue; }
        const OriginId origin = eu.id.origin;
        if (quarantined_.count(origin)) { refuse("origin " + hex16(origin) + " is quarantined (fork)"); continue; }
        // Vector entries are read once per batch and kept current here.
        auto cached = held_in_batch.find(origin);
        if (cached == held_in_batch.end())
          cached = held_in_batch.emplace(origin, txn.vector_entry(origin).value_or(VectorEntry{})).first;
        VectorEntry& held = cached->second;
        if (u->seq <= held.seq) {
          auto existing = txn.id_of(origin, u->seq);
          auto existing_body = existing ? txn.body(*existing) : std::nullopt;
          if (existing && *existing == eu.id && existing_body && *existing_body == eu.body) {
            ++rep.duplicates;
            continue;
          }
          std::string report = "origin " + hex16(origin) + " seq " + std::to_string(u->seq) + ": held as " +
                               (existing ? existing->to_string() : "?") + ", received " + eu.id.to_string() +
                               " with other bytes";
          if (Status s = txn.put_fork(origin, report); !s) { fatal = s; break; }
          ++puts;
          quarantined_.insert(origin);
          ++rep.forks;
          refuse("fork: " + report);
          continue;
        }
        if (u->seq > held.seq + 1) {
          refuse("gap: origin " + hex16(origin) + " seq " + std::to_string(u->seq) + " but " +
                 std::to_string(held.seq) + " held");
          continue;
        }
        if (eu.id.hlc <= held.last_hlc) { refuse("hlc does not rise with seq"); continue; }
        if (Status s = hlc_->observe(eu.id.hlc, options_.max_clock_skew_ms); !s) { refuse(s.message()); continue; }
        if (Status s = txn.put_update(eu.id, u->seq, eu.body); !s) { fatal = s; break; }
        ++puts;
        held = VectorEntry{u->seq, eu.id.hlc};
        if (origin == node_id_) {
          own_seq_ = u->seq;
          writes_blocked_ = true;
          std::string why = "received seq " + std::to_string(u->seq) + " of this node's own origin from elsewhere";
          if (Status s = txn.put_meta(kMetaWritesBlocked, why); !s) { fatal = s; break; }
        }
        ++rep.accepted;
        if (commit_listener_) committed.push_back({eu.id, eu.body});
        accepted.push_back(std::move(u).value());
      }
    }

    if (fatal.is_ok() && !accepted.empty()) {
      std::sort(accepted.begin(), accepted.end(), [](const Update& a, const Update& b) { return a.id < b.id; });
      auto last = replayer_.last_applied();
      if (refold_from_) {
        // State is already waiting for a re-fold: widen it.
        refold_from_ = std::min(*refold_from_, accepted.front().id);
      } else if (!last || accepted.front().id > *last) {
        for (const auto& u : accepted) replayer_.apply(u);
      } else if (replayer_.can_rollback_to(accepted.front().id)) {
        // The common path with several writers: a few positions late.
        replayer_.rollback_to(accepted.front().id);
        fatal = replay_from(txn, replayer_.last_applied(), std::nullopt);
      } else {
        // Far below the head, beyond the undo window: a node catching up from
        // several origins lands every batch here. Re-folding from a checkpoint
        // for each batch would cost the square of the catch-up, so it is done
        // once, when something needs the state (a local call, a read, the
        // shutdown checkpoint) or after the writer has been idle kRefoldDelayMs.
        refold_from_ = accepted.front().id;
      }
      since_checkpoint_ += accepted.size();
    }

    // Local calls are validated against the head: it must be folded.
    if (fatal.is_ok() && refold_from_ &&
        std::any_of(batch.begin(), batch.end(), [](const auto& r) { return r->kind == Request::Kind::kCall; })) {
      fatal = load_state(txn, *refold_from_, std::nullopt);
      refold_from_.reset();
    }

    for (auto& req : batch) {
      if (req->kind != Request::Kind::kCall || !fatal.is_ok()) continue;
      if (writes_blocked_) {
        req->status = Status::refused("refusing to write: other nodes hold more of this node's own updates "
                                      "(was the data directory copied?); see replog status");
        continue;
      }
      if (req->method == "resolve") {  // at the keyboard, resolving a closed conflict is a mistake
        auto arg = decode_msgpack(req->arg);
        const Value* target = arg && arg->is_map() ? arg->find("update") : nullptr;
        auto id = target && target->is_string() ? UpdateId::parse(target->as_string()) : Result<UpdateId>(Status::invalid_argument(""));
        if (id && !replayer_.state().conflicts().count(*id)) {
          req->status = Status::invalid_argument("no open conflict for update " + id->to_string());
          continue;
        }
      }
      if (!methods_->find(req->method)) {
        req->status = Status::invalid_argument("unknown method " + req->method);
        continue;
      }
      UpdateId id{hlc_->tick(), node_id_};
      Update u{id, own_seq_ + 1, req->method, req->arg};
      auto r = replayer_.apply(u);
      if (r.outcome != Replayer::Outcome::kApplied) {
        replayer_.rollback_to(id);
        req->status = Status::invalid_argument(r.failure ? r.failure->message : "refused");
        continue;
      }
      std::string body = encode_body(u.seq, req->method, req->arg);
      if (Status s = txn.put_update(id, u.seq, body); !s) { fatal = s; break; }
      ++puts;
      own_seq_ = u.seq;
      if (commit_listener_) committed.push_back({id, std::move(body)});
      req->id = id;
      req->status = Status::ok();
      ++since_checkpoint_;
    }

    for (auto& req : batch) {
      if (req->kind != Request::Kind::kPeers || !fatal.is_ok()) continue;
      for (const auto& [endpoint, state] : req->peers) {
        if (!fatal.is_ok()) break;
        fatal = txn.put_peer(endpoint, state);
        ++puts;
      }
      req->status = Status::ok();
    }

    // A batch that stored nothing (say, pushes that were all refused) costs no sync to disk.
    if (fatal.is_ok() && puts == 0) {
      txn.abort();
      return;
    }
    if (fatal.is_ok()) fatal = txn.put_meta(kMetaHlc, u64_be(hlc_->high_water()));
    if (fatal.is_ok()) fatal = txn.commit();
    if (fatal.is_ok()) {
      if (commit_listener_ && !committed.empty()) commit_listener_(committed);
      return;
    }

    // Nothing of this batch is stored: put state back to what the log holds.
    txn.abort();
    auto read = log_->begin_read();
    if (read) {
      refold_from_.reset();
      (void)load(*read, std::nullopt);
      auto self = read->vector_entry(node_id_);
      own_seq_ = self ? self->seq : 0;
      quarantined_.clear();  // a fork found in this batch was not stored either
      for (const auto& [origin, _] : read->forks()) quarantined_.insert(origin);
    }
    bool map_full = fatal.message().find("MDB_MAP_FULL") != std::string::npos;
    if (!map_full || attempt + 1 == kAttempts) {
      for (auto& r : batch) r->status = fatal;
      return;
    }
  }
}

// REQUIRES: state_mu_ held, writer not running concurrently with another writer txn.
Status Node::write_checkpoint() {
  since_checkpoint_ = 0;
  if (!writable_) return Status::ok();
  REPLOG_RETURN_IF_ERROR(refold_locked());
  if (!replayer_.last_applied()) return Status::ok();
  // Cut behind the head by the undo window, so that updates a few positions
  // late do not invalidate the checkpoint.
  replayer_.rollback_newest(std::min(options_.undo_window, replayer_.undo_depth()));
  auto cut = replayer_.last_applied();
  auto txn = log_->begin_write();
  if (!txn) {
    auto read = log_->begin_read();
    return read ? replay_from(*read, cut, std::nullopt) : read.status();
  }
  Status s;
  if (cut) {
    s = txn->put_checkpoint(*cut, encode_checkpoint(*cut, replayer_.applied_vector(), methods_->digest(),
                                                    replayer_.state()));
    if (s) s = prune_checkpoints(*txn);
  }
  Status replay = replay_from(*txn, cut, std::nullopt);
  if (s) s = replay;
  if (s) return txn->commit();
  return s;
}

Status Node::prune_checkpoints(LogTxn& txn) {
  // The stable cut: below the newest update of every origin that has not retired.
  std::optional<UpdateId> stable;
  const auto& retired = replayer_.state().retired();
  for (const auto& [origin, e] : txn.vector()) {
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
  return Status::ok();
}

}  // namespace replog
