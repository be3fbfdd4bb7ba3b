// engine::Node's writer: one thread takes every queued request and runs them
// in one LMDB write transaction (group commit), in named steps:
//   store_received -> fold_received -> store_calls -> store_peers -> commit,
// and after a failed transaction, recover_after_abort.
#include <algorithm>
#include <ctime>
#include <future>
#include <set>
#include <utility>

#include "node/engine/batch.h"
#include "node/engine/ingest_check.h"
#include "node/engine/node.h"
#include "protocol/bytes.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "storage/update_log.h"

namespace replog::engine {

// --- callers --------------------------------------------------------------------------

Result<UpdateId> Node::call(const std::string& method, const Value& arg) {
  if (!writable_) return Status::invalid_argument("this node is read-only");
  if (method.empty() || method.size() > 255) return Status::invalid_argument("method name must be 1..255 bytes");
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kCall;
  req->method = method;
  req->arg = encode_msgpack(arg);
  // The body is larger than its method and argument: refuse early what can never fit.
  if (req->arg.size() + method.size() > limits::kMaxUpdateBytes)
    return Status::invalid_argument("update of more than " + std::to_string(req->arg.size()) +
                                    " bytes is larger than the " + std::to_string(limits::kMaxUpdateBytes) +
                                    "-byte limit");
  REPLOG_RETURN_IF_ERROR(submit(req));
  if (!req->status) return req->status;
  return req->id;
}

Result<IngestReport> Node::ingest(std::vector<Update> updates, std::vector<proof::Head> heads) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kIngest;
  req->updates = std::move(updates);
  req->heads = std::move(heads);
  REPLOG_RETURN_IF_ERROR(submit(req));
  if (!req->status) return req->status;
  return std::move(req->report);
}

void Node::ingest_async(std::vector<Update> updates, std::vector<proof::Head> heads, IngestDone done) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kIngest;
  req->updates = std::move(updates);
  req->heads = std::move(heads);
  req->on_done = std::move(done);
  if (Status s = enqueue(req); !s) req->on_done(s);
}

Result<bool> Node::take_evidence(std::string bytes) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kEvidence;
  req->evidence = std::move(bytes);
  REPLOG_RETURN_IF_ERROR(submit(req));
  if (!req->status) return req->status;
  return req->kept;
}

Status Node::save_peers(std::map<std::string, std::string> peers) {
  auto req = std::make_shared<Request>();
  req->kind = Request::Kind::kPeers;
  req->peers = std::move(peers);
  REPLOG_RETURN_IF_ERROR(submit(req));
  return req->status;
}

Status Node::submit(const std::shared_ptr<Request>& req) {
  if (lead(req)) return Status::ok();
  auto done = req->done.get_future();
  REPLOG_RETURN_IF_ERROR(enqueue(req));
  done.wait();
  return Status::ok();
}

Status Node::enqueue(const std::shared_ptr<Request>& req) {
  if (!writable_) return Status::invalid_argument("this node is read-only");
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (stopping_) return Status::invalid_argument("node is closing");
    queue_.push_back(req);
  }
  queue_cv_.notify_one();
  return Status::ok();
}

// A caller that finds the writer idle and nothing queued takes the writer's
// turn and runs its request as a batch of one on its own thread; false: it
// must queue. What the batch leaves due (a checkpoint, a re-fold) goes to the
// writer thread, which also takes whatever queued meanwhile.
bool Node::lead(const std::shared_ptr<Request>& req) {
  if (!options_.callers_lead || !writable_) return false;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (stopping_ || writer_busy_ || !queue_.empty() || checkpoint_owed_) return false;
    writer_busy_ = true;
  }
  std::vector<std::shared_ptr<Request>> batch{req};
  run_turn(batch, /*leading=*/true);
  bool wake = false;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    writer_busy_ = false;
    last_batch_size_ = 1;
    // The writer thread may be waiting for the turn: for callers that queued
    // meanwhile, for what this batch left due, or to stop (close()).
    wake = !queue_.empty() || checkpoint_owed_ || refold_pending_ || stopping_;
  }
  if (wake) queue_cv_.notify_one();
  return true;
}

size_t Node::queued() const {
  std::lock_guard<std::mutex> l(queue_mu_);
  return queue_.size();
}

// --- the loop -------------------------------------------------------------------------

// Waits for the writer's turn and work, and takes the turn; false when the
// node is stopping with nothing left. Runs a checkpoint a leading caller left
// due, and a deferred re-fold when it falls due before any work arrives.
bool Node::take_batch(std::vector<std::shared_ptr<Request>>& batch) {
  std::unique_lock<std::mutex> l(queue_mu_);
  // `step` runs with the turn held and the queue unlocked.
  const auto with_turn = [&](auto&& step) {
    writer_busy_ = true;
    l.unlock();
    step();
    l.lock();
    writer_busy_ = false;
  };
  for (;;) {
    queue_cv_.wait(l, [&] { return !writer_busy_; });  // a leading caller holds it
    if (checkpoint_owed_) {
      checkpoint_owed_ = false;
      with_turn([&] {
        std::lock_guard<std::mutex> state_lock(state_mu_);
        (void)write_checkpoint();
      });
      continue;
    }
    if (!queue_.empty()) break;
    if (stopping_) return false;  // stopping, nothing left
    const auto woken = [&] { return stopping_ || !queue_.empty() || writer_busy_ || checkpoint_owed_; };
    if (!refold_pending_) {
      queue_cv_.wait(l, [&] { return woken() || refold_pending_; });  // a leader's batch may leave one
      continue;
    }
    // Due once this much real time passes with nothing else to do.
    const int64_t wait_ms = std::max<int64_t>(0, refold_due_ms_ - clock_->now_millis());
    if (queue_cv_.wait_for(l, std::chrono::milliseconds(wait_ms), woken)) continue;
    with_turn([&] {
      bool stopped = false;
      {
        std::lock_guard<std::mutex> state_lock(state_mu_);
        (void)refold_locked();
        stopped = refold_from_.has_value();  // the fold stopped again: retry, later each time
      }
      refold_pending_ = stopped;
      refold_retry_ms_ = stopped ? std::min(refold_retry_ms_ * 2, kMaxRefoldRetryMs) : kRefoldDelayMs;
      refold_due_ms_ = clock_->now_millis() + refold_retry_ms_;
    });
  }
  writer_busy_ = true;
  // Callers woken by the last commit are still queueing: give them a moment
  // (at most 200 µs) to join this batch, as many as joined the last one.
  if (queue_.size() < last_batch_size_)
    queue_cv_.wait_for(l, std::chrono::microseconds(200),
                       [&] { return stopping_ || queue_.size() >= last_batch_size_; });
  batch.swap(queue_);
  last_batch_size_ = batch.size();
  return true;
}

void Node::writer_loop() {
  std::vector<std::shared_ptr<Request>> batch;
  while (take_batch(batch)) {
    run_turn(batch, /*leading=*/false);
    std::lock_guard<std::mutex> l(queue_mu_);
    writer_busy_ = false;
  }
}

// One batch under the writer's turn: processed, what it leaves due done, its
// callers answered.
void Node::run_turn(std::vector<std::shared_ptr<Request>>& batch, bool leading) {
  process(batch);
  const bool before = options_.finish_before_answering;
  {
    std::lock_guard<std::mutex> state_lock(state_mu_);
    refold_pending_ = refold_from_.has_value() && !options_.defer_fold;
    // Folded now, once; one that stops again is tried with the next batch.
    if (refold_pending_ && before) {
      (void)refold_locked();
      refold_pending_ = false;
    }
  }
  // The deferred re-fold waits until the writer has been idle for a while,
  // so that a whole catch-up is folded once.
  if (refold_pending_) refold_due_ms_ = clock_->now_millis() + refold_retry_ms_;
  const bool checkpoint_due =
      since_checkpoint_ >= options_.checkpoint_interval && !refold_pending_ && !options_.defer_fold;
  auto checkpoint = [&] {
    std::lock_guard<std::mutex> l(state_mu_);
    (void)write_checkpoint();
  };
  if (checkpoint_due && before) checkpoint();
  // A leading caller waits on no promise: it is answered by returning.
  for (auto& r : batch) {
    if (r->on_done)
      r->on_done(r->status ? Result<IngestReport>(std::move(r->report)) : Result<IngestReport>(r->status));
    if (!leading) r->done.set_value();
  }
  batch.clear();
  if (checkpoint_due && !before) {
    if (!leading) {
      checkpoint();
    } else {
      std::lock_guard<std::mutex> l(queue_mu_);
      checkpoint_owed_ = true;
    }
  }
}

void Node::process(std::vector<std::shared_ptr<Request>>& batch) {
  std::lock_guard<std::mutex> state_lock(state_mu_);
  process_locked(batch);
  publish_changes_locked();
}

void Node::process_locked(std::vector<std::shared_ptr<Request>>& batch) {
  Status s = with_room([&] {
    Status r;
    {
      auto txn = log_->begin_write();
      if (!txn) {
        r = txn.status();
      } else {
        Batch b{batch, *txn};
        r = run_batch(b);
        if (r) {
          unstored_heads_.erase(unstored_heads_.begin(), unstored_heads_.begin() + static_cast<ptrdiff_t>(b.heads_stored));
          unstored_head_bytes_.erase(unstored_head_bytes_.begin(),
                                     unstored_head_bytes_.begin() + static_cast<ptrdiff_t>(b.heads_stored));
          // Signed before callers are answered: once a call returns, a head covers it.
          sign_committed(b);
          remember_chains(b);
          if (commit_listener_ && !b.committed.empty()) commit_listener_(b.committed, b.committed_heads);
          if (b.puts > 0) {
            std::lock_guard<std::mutex> l(commit_mu_);
            ++commit_generation_;
            commit_cv_.notify_all();
          }
          return r;
        }
      }
    }
    recover_after_abort();  // the transaction is gone: state goes back to what the log holds
    return r;
  });
  if (!s)
    for (auto& r : batch) r->status = s;
}

Status Node::run_batch(Batch& b) {
  b.hlc_ceiling = hlc_->ceiling(options_.max_clock_skew_ms);
  // Heads signed after the last commit: stored with this one.
  REPLOG_RETURN_IF_ERROR(store_unstored_heads(b.txn, b.puts));
  b.heads_stored = unstored_heads_.size();
  // Received updates first: local calls get later timestamps anyway.
  for (auto& req : b.requests)
    if (req->kind == Request::Kind::kIngest) REPLOG_RETURN_IF_ERROR(store_received(b, *req));
  // What was received and stored, in key order: the order it is folded in.
  std::sort(b.accepted.begin(), b.accepted.end(), [](const UpdateView& x, const UpdateView& y) { return x.id < y.id; });
  // A large fold at the head runs beside the puts; on every way out of this
  // batch it is finished first, since recovery reloads the state it writes.
  start_fold_beside(b);
  struct FinishFold {
    Node& node;
    Batch& b;
    ~FinishFold() {
      if (b.folding_beside) node.side_.finish();
      b.folding_beside = false;
    }
  } finish_fold{*this, b};
  REPLOG_RETURN_IF_ERROR(store_staged(b));
  // What the checks passed may go on to peers now (relay before commit).
  if (verified_listener_ && !b.committed.empty()) verified_listener_(b.committed, b.committed_heads);
  REPLOG_RETURN_IF_ERROR(store_evidence_requests(b));
  REPLOG_RETURN_IF_ERROR(refresh_left_out(b));
  REPLOG_RETURN_IF_ERROR(fold_received(b));
  REPLOG_RETURN_IF_ERROR(store_calls(b));
  if (b.left_out_changed) finish_fold_beside(b);  // refresh_left_out may roll the state back
  REPLOG_RETURN_IF_ERROR(refresh_left_out(b));
  REPLOG_RETURN_IF_ERROR(store_peers(b));
  // A batch that stored nothing (say, pushes that were all refused) costs no sync to disk.
  if (b.puts == 0) {
    b.txn.abort();
    return Status::ok();
  }
  // An open restores the clock's mark as the larger of meta.hlc and the
  // log's last key: the mark is written only when the log does not imply it
  // (one database less in a commit of local calls, whose newest key is the mark).
  const uint64_t mark = hlc_->high_water();
  const auto last = b.txn.last_id();
  if (!last || last->hlc < mark) REPLOG_RETURN_IF_ERROR(b.txn.put_meta(meta::kHlc, u64_be(mark)));
  REPLOG_RETURN_IF_ERROR(commit_and_sign(b));
  // A fold that went on through the commit (fold_received) is done before
  // anything reads the state: the changes it made are published next.
  finish_fold_beside(b);
  return Status::ok();
}

// Commits, while the side thread signs the heads the batch owes: a signature
// takes about a tenth as long as the sync to disk, and done one after the
// other the caller waits for both. Signatures the side thread has not begun
// when the commit returns are made here. They are used only once the commit
// succeeds (sign_committed); a batch whose commit fails drops them, so none
// leaves the process for updates that are not stored.
Status Node::commit_and_sign(Batch& b) {
  b.signatures.clear();
  if (b.to_sign.empty()) return b.txn.commit();
  finish_fold_beside(b);  // the side thread signs: a fold still on it ends first
  side_.start([&b] {
    std::vector<std::string> out;
    out.reserve(b.to_sign.size());
    for (const Batch::OwedHead& owed : b.to_sign) {
      const StoredHead& h = owed.head;
      out.push_back(proof::sign_head(owed.origin, h.seq, h.chain, h.flags, owed.signer.secret).signature);
    }
    b.signatures = std::move(out);
  });
  Status s = b.txn.commit();
  side_.finish();
  if (!s) b.signatures.clear();
  return s;
}

// Nothing of the batch is stored: put state and the writer's memory back to
// what the log holds.
void Node::recover_after_abort() {
  pending_changes_.clear();  // none of it was committed; the reload is heard instead
  auto read = log_->begin_read();
  if (!read) return;
  refold_from_.reset();
  const uint64_t mark = hlc_->high_water();  // timestamps handed out stay handed out
  (void)read_writer_state(*read, /*at_open=*/false);
  hlc_->advance_to(mark);
}

// --- steps ------------------------------------------------------------------------------

Status Node::store_received(Batch& b, Request& req) {
  req.report = IngestReport{};
  REPLOG_RETURN_IF_ERROR(store_staged(b));  // an earlier request's, which this one's checks may read
  if (!options_.verify_origins) {
    for (const Update& u : req.updates) REPLOG_RETURN_IF_ERROR(store_one_received(b, req, u));
    return Status::ok();
  }
  const int64_t cpu0 = thread_cpu_ns();
  Status s = verify_received(b, req);
  check_cpu_ns_ += static_cast<uint64_t>(std::max<int64_t>(0, thread_cpu_ns() - cpu0));
  return s;
}

// store_received with verification on: each origin's runs judged against its
// heads, and what passes staged for the puts.
Status Node::verify_received(Batch& b, Request& req) {
  // Each origin's updates in seq order, with that origin's heads in seq order.
  std::map<OriginId, std::vector<const Update*>> by_origin;
  for (const Update& u : req.updates) by_origin[u.id().origin].push_back(&u);
  std::map<OriginId, std::vector<const proof::Head*>> heads;
  for (const proof::Head& h : req.heads) heads[h.origin].push_back(&h);
  for (auto& [origin, ups] : by_origin)
    std::stable_sort(ups.begin(), ups.end(), [](const Update* x, const Update* y) { return x->seq() < y->seq(); });
  chain_ahead(b, by_origin, heads);
  for (auto& [origin, ups] : by_origin) {
    // Frames from several peers repeat updates: each seq once, and one that
    // differs from the first of its seq is judged after (a fork, or altered).
    std::vector<const Update*> first, others;
    const auto same = [](const Update* x, const Update* y) { return x->id() == y->id() && x->body() == y->body(); };
    for (const Update* u : ups) {
      if (first.empty() || first.back()->seq() != u->seq()) first.push_back(u);
      else if (same(u, first.back())) ++req.report.duplicates;
      // A copy repeated among the others too (a frame delivered twice): once is enough.
      else if (std::any_of(others.begin(), others.end(), [&](const Update* o) { return same(u, o); }))
        ++req.report.duplicates;
      else others.push_back(u);
    }
    auto& hs = heads[origin];
    // One head per signature: relays send the same head with and without the
    // key it carries; the one with the key is kept.
    std::stable_sort(hs.begin(), hs.end(), [](const proof::Head* x, const proof::Head* y) {
      return x->seq != y->seq ? x->seq < y->seq : x->key.size() > y->key.size();
    });
    hs.erase(std::unique(hs.begin(), hs.end(),
                         [](const proof::Head* x, const proof::Head* y) {
                           return x->seq == y->seq && x->chain == y->chain && x->flags == y->flags &&
                                  x->signature == y->signature && (y->key.empty() || y->key == x->key);
                         }),
             hs.end());
    const size_t refused_before = req.report.refused.size();
    REPLOG_RETURN_IF_ERROR(store_verified(b, req, origin, first, hs));
    if (!others.empty()) REPLOG_RETURN_IF_ERROR(store_other_copies(b, req, origin, first, others, hs, refused_before));
    drop_ahead_tip_if_refused(origin, req.report, refused_before);
  }
  return Status::ok();
}

// verify_received's second pass over an origin: `others`, the copies that
// differ from the first of their seq (`first`, judged already; what it
// refused lies in req.report.refused from `refused_before` on).
Status Node::store_other_copies(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& first,
                                std::vector<const Update*>& others, std::vector<const proof::Head*>& hs,
                                size_t refused_before) {
  // The other copies are judged in their seqs' place, with the first
  // copies of the seqs the first pass left unstored: a genuine run is taken
  // whole even when a forged or altered copy of one of its seqs came
  // first (which the first pass refused, and every seq after it as a gap).
  auto stored = b.held.find(origin);
  const uint64_t held = stored != b.held.end() ? stored->second.seq : 0;
  std::set<uint64_t> other_seqs;
  for (const Update* u : others) other_seqs.insert(u->seq());
  for (const Update* u : first)
    if (u->seq() > held && !other_seqs.count(u->seq())) others.push_back(u);
  std::stable_sort(others.begin(), others.end(), [](const Update* x, const Update* y) { return x->seq() < y->seq(); });
  const size_t refused_first = req.report.refused.size();
  REPLOG_RETURN_IF_ERROR(store_staged(b));
  REPLOG_RETURN_IF_ERROR(store_verified(b, req, origin, others, hs));
  REPLOG_RETURN_IF_ERROR(store_staged(b));
  // What the second pass stored is not refused: drop the first pass's word on it.
  const uint64_t now_held = b.held.count(origin) ? b.held.at(origin).seq : 0;
  if (now_held > held) {
    auto& refused = req.report.refused;
    auto taken = [&](const Refused& r) {
      if (r.seq <= held || r.seq > now_held) return false;
      auto id = b.txn.id_of(origin, r.seq);
      return id && *id == r.id;
    };
    auto end = std::remove_if(refused.begin() + static_cast<ptrdiff_t>(refused_before),
                              refused.begin() + static_cast<ptrdiff_t>(refused_first), taken);
    refused.erase(end, refused.begin() + static_cast<ptrdiff_t>(refused_first));
  }
  return Status::ok();
}

Status Node::store_one_received(Batch& b, Request& req, const Update& u) {
  const OriginId origin = u.id().origin;
  VectorEntry& held = b.held_of(origin);
  HeldOrigin h{held.seq, held.last_hlc, quarantined_.count(origin) > 0, std::nullopt, std::nullopt};
  std::optional<std::string> body_at_seq;
  if (u.seq() <= held.seq && !h.quarantined && !is_reserved_origin(origin)) {
    REPLOG_RETURN_IF_ERROR(store_staged(b));  // the held update may be one of this batch's
    h.id_at_seq = b.txn.id_of(origin, u.seq());
    if (h.id_at_seq) body_at_seq = b.txn.body(*h.id_at_seq);
    if (body_at_seq) h.body_at_seq = *body_at_seq;
  }
  IngestReport& rep = req.report;
  const Verdict v = check_received(u.view(), h, b.hlc_ceiling);
  if (v == Verdict::kDuplicate) {
    ++rep.duplicates;
    return Status::ok();
  }
  if (v != Verdict::kAccept) {
    rep.refused.push_back({u.id(), u.seq(), v, describe_refusal(u.view(), h, v)});
    if (v != Verdict::kFork) return Status::ok();
    REPLOG_RETURN_IF_ERROR(b.txn.put_fork(origin, rep.refused.back().detail));
    ++b.puts;
    quarantined_.insert(origin);
    ++rep.forks;
    if (origin != node_id_) return Status::ok();
    rep.origin_changed = true;
    return leave_origin(b, "this node's origin forked: " + rep.refused.back().detail);
  }
  b.staged.push_back({u.id(), u.seq(), u.body()});
  ++b.puts;
  hlc_->advance_to(u.id().hlc);
  held = VectorEntry{u.seq(), u.id().hlc};
  ++rep.accepted;
  if (commit_listener_) b.committed.push_back(u);
  b.accepted.push_back(u.view());
  note_revocation(b, u.view());
  if (origin != node_id_) return Status::ok();
  // Someone else wrote as this node: keep it (others hold it) and write on as a fresh origin.
  rep.origin_changed = true;
  return leave_origin(b, "received seq " + std::to_string(u.seq()) + " of this node's origin, which it never wrote");
}

// Puts what the batch's checks passed (Batch::staged), in key order.
Status Node::store_staged(Batch& b) {
  Status s = b.txn.put_updates(b.staged);
  b.staged.clear();
  return s;
}

// A batch of at least this many received updates that all sort above the
// head is folded on the side thread while its puts run: the fold is the
// larger part of a catch-up's work on the writer, and the puts the next.
// Below it, handing the fold over costs more than it saves.
constexpr size_t kFoldBesideFrom = 256;

// Starts folding b.accepted (in key order) on the side thread when nothing between here and
// fold_received touches the state: the fold is at the head (not deferred, not
// late), and the batch changes nothing of what replay leaves out (no
// revocation stored, no fork evidence to take).
void Node::start_fold_beside(Batch& b) {
  if (b.accepted.size() < kFoldBesideFrom || refold_from_ || options_.defer_fold || b.left_out_changed) return;
  for (const auto& r : b.requests)
    if (r->kind == Request::Kind::kEvidence) return;
  const auto last = replayer_.last_applied();
  if (last && !(b.accepted.front().id > *last)) return;
  b.folding_beside = true;
  b.fold_error = nullptr;
  side_.start([this, &b] {
    try {
      fold_at_head(b);
    } catch (...) {
      b.fold_error = std::current_exception();
    }
  });
}

// Applies b.accepted (sorted, all above the head) in order; a method that
// fails in a way replay cannot record stops the fold there (note_halt).
void Node::fold_at_head(const Batch& b) {
  for (const auto& u : b.accepted) {
    auto applied = replayer_.apply(u);
    if (applied.outcome != Replayer::Outcome::kHalted) continue;
    note_halt(u.id, applied.halt);  // stored; folded when the retry goes through
    break;
  }
}

void Node::finish_fold_beside(Batch& b) {
  if (!b.folding_beside) return;
  side_.finish();
  b.folding_beside = false;
  if (b.fold_error) std::rethrow_exception(std::exchange(b.fold_error, nullptr));
}

// Folds what store_received stored (b.accepted, in key order since
// run_batch sorted it): at the head, a few positions late (undo and redo), or
// far below (deferred, see refold_from_).
Status Node::fold_received(Batch& b) {
  if (b.accepted.empty()) return Status::ok();
  since_checkpoint_ += b.accepted.size();
  if (b.folding_beside) {
    // Nothing after this step reads the state unless the batch has calls;
    // without them a fold beside goes on through the puts and the commit's
    // sync to disk, and run_batch finishes it once the commit is done. The
    // fold writes nothing to the transaction, and a commit that fails is
    // recovered from after the fold ends (FinishFold), as before.
    const bool calls = std::any_of(b.requests.begin(), b.requests.end(),
                                   [](const auto& r) { return r->kind == Request::Kind::kCall; });
    if (calls) finish_fold_beside(b);
    return Status::ok();
  }
  const UpdateId& first = b.accepted.front().id;
  auto last = replayer_.last_applied();
  if (refold_from_ || options_.defer_fold) {
    // State is already waiting for a re-fold (or a restore folds once, at the
    // end): widen it.
    refold_from_ = refold_from_ ? std::min(*refold_from_, first) : first;
  } else if (!last || first > *last) {
    fold_at_head(b);
  } else if (replayer_.can_rollback_to(first)) {
    // The common path with several writers: a few positions late.
    replayer_.rollback_to(first);
    return replay_from(b.txn, replayer_.last_applied(), std::nullopt);
  } else {
    // Far below the head, beyond the undo window: a node catching up from
    // several origins lands every batch here. Re-folding from a checkpoint
    // for each batch would cost the square of the catch-up, so it is done
    // once, when something needs the state (a local call, a read, the
    // shutdown checkpoint) or after the writer has been idle kRefoldDelayMs.
    refold_from_ = first;
  }
  return Status::ok();
}

Status Node::store_calls(Batch& b) {
  bool any = std::any_of(b.requests.begin(), b.requests.end(),
                         [](const auto& r) { return r->kind == Request::Kind::kCall; });
  if (!any) return Status::ok();
  // Local calls are validated against the head: it must be folded.
  if (refold_from_) {
    const UpdateId from = *refold_from_;
    refold_from_.reset();
    REPLOG_RETURN_IF_ERROR(load_state(b.txn, from, std::nullopt));
    if (!refold_from_) fold_status_ = Status::ok();
  }
  if (refold_from_) {
    // The fold stopped (note_halt): a call cannot be checked against a head
    // state that lags the log.
    for (auto& req : b.requests)
      if (req->kind == Request::Kind::kCall) req->status = fold_status_;
    return Status::ok();
  }
  uint64_t before = own_seq_;
  for (auto& req : b.requests) {
    if (req->kind != Request::Kind::kCall) continue;
    const bool retiring = retires_own_origin(*req);
    REPLOG_RETURN_IF_ERROR(store_one_call(b, *req));
    if (!retiring || !req->status) continue;
    // The origin's last update: its head is final, and the node writes on as a fresh origin.
    const uint64_t last = own_seq_;
    REPLOG_RETURN_IF_ERROR(finish_own_run(b, before, proof::kFinal));
    REPLOG_RETURN_IF_ERROR(leave_origin(b, "retired: its final head is #" + std::to_string(last)));
    before = own_seq_;
  }
  return finish_own_run(b, before);
}

// A `retire` naming this node's own origin: its last seq is the retire's own
// seq, whatever the caller wrote, since nothing of the origin follows it.
bool Node::retires_own_origin(Request& req) {
  if (req.method != "retire") return false;
  auto arg = decode_msgpack(req.arg);
  if (!arg || !arg->is_map()) return false;
  const Value* o = arg->find("origin");
  if (!o || !o->is_string()) return false;
  auto origin = parse_hex16(o->as_string());
  if (!origin || *origin != node_id_) return false;
  Map m = arg->as_map();
  m["last_seq"] = Value(static_cast<int64_t>(own_seq_ + 1));
  req.arg = encode_msgpack(Value(std::move(m)));
  return true;
}

Status Node::store_one_call(Batch& b, Request& req) {
  if (!methods_->find(req.method)) {
    req.status = Status::invalid_argument("unknown method " + req.method);
    return Status::ok();
  }
  if (const LocalCheck* check = methods_->local_check(req.method)) {
    auto arg = decode_msgpack(req.arg);
    if (arg) {
      if (auto why = (*check)(replayer_.state(), *arg)) {
        req.status = Status::invalid_argument(*why);
        return Status::ok();
      }
    }
  }
  const UpdateId id{hlc_->tick(), node_id_};
  Update u = Update::make(id, own_seq_ + 1, req.method, req.arg);
  if (u.body().size() > limits::kMaxUpdateBytes) {
    req.status = Status::invalid_argument("update of " + std::to_string(u.body().size()) + " bytes is larger than the " +
                                          std::to_string(limits::kMaxUpdateBytes) + "-byte limit");
    return Status::ok();
  }
  const size_t changes_before = pending_changes_.size();
  auto r = replayer_.apply(u.view());
  if (r.outcome != Replayer::Outcome::kApplied) {
    replayer_.rollback_to(id);
    pending_changes_.resize(changes_before);  // a refused call changed nothing
    if (r.outcome == Replayer::Outcome::kHalted) {
      // Not a function of the log: nothing is stored, and the caller may try again.
      req.status = Status::io_error(r.halt + "; nothing is stored");
    } else if (r.outcome == Replayer::Outcome::kLeftOut) {
      // A member revoked this node's origin: whatever it writes is left out everywhere.
      req.status = Status::invalid_argument("this node's origin " + hex16(node_id_) + " is revoked from #" +
                                            std::to_string(replayer_.left_out().at(node_id_)) +
                                            " on: its calls would be left out on every node (replog status)");
    } else {
      req.status = Status::invalid_argument(r.failure ? r.failure->message : "refused");
    }
    return Status::ok();
  }
  REPLOG_RETURN_IF_ERROR(b.txn.put_update(id, u.seq(), u.body()));
  ++b.puts;
  own_seq_ = u.seq();
  chain_own(b, u);
  note_revocation(b, u.view());
  req.id = id;
  req.status = Status::ok();
  ++since_checkpoint_;
  if (commit_listener_) b.committed.push_back(std::move(u));
  return Status::ok();
}

Status Node::store_peers(Batch& b) {
  for (auto& req : b.requests) {
    if (req->kind != Request::Kind::kPeers) continue;
    for (const auto& [endpoint, state] : req->peers) {
      REPLOG_RETURN_IF_ERROR(b.txn.put_peer(endpoint, state));
      ++b.puts;
    }
    req->status = Status::ok();
  }
  return Status::ok();
}

// Earlier builds stopped writing when this node's origin came from elsewhere
// and marked the directory; such a node now moves to a fresh origin instead.
Status Node::leave_blocked_origin() {
  auto txn = log_->begin_write();
  if (!txn) return txn.status();
  auto why = txn->meta(meta::kWritesBlocked);
  if (!why) return txn->status();
  std::vector<std::shared_ptr<Request>> none;
  Batch b{none, *txn};
  REPLOG_RETURN_IF_ERROR(leave_origin(b, *why));
  return txn->commit();
}

// Moves this node to a fresh origin in the batch's transaction, remembering
// the one it leaves and why. Its data stays; its next call is seq 1 of the new origin.
Status Node::leave_origin(Batch& b, const std::string& why) {
  Map former;
  if (auto bytes = b.txn.meta(meta::kFormerOrigins)) {
    auto v = decode_msgpack_local(*bytes);
    if (v && v->is_map()) former = v->as_map();
  }
  former[hex16(node_id_)] = Value(why);
  REPLOG_RETURN_IF_ERROR(b.txn.put_meta(meta::kFormerOrigins, encode_msgpack(Value(std::move(former)))));
  REPLOG_RETURN_IF_ERROR(b.txn.delete_meta(meta::kWritesBlocked));
  REPLOG_RETURN_IF_ERROR(make_fresh_origin(b.txn));
  b.own_first = 0;
  b.puts += 3;
  return Status::ok();
}

}  // namespace replog::engine
