// engine::Node's verifying ingest (docs/ARCHITECTURE.md "Signed origins";
// PROTOCOL.md §8): received updates are stored only in runs that end at a
// head, once the head verifies under the origin's key and the run's bytes
// chain to it from what the log holds. Whatever fails leaves the log, the
// vector and state as they were; only the report says what and why.
//
// A run that repeats held seqs with other bytes, and verifies from the chain
// this node holds at its start, is a second branch signed by the origin's
// key: that is fork evidence, built here from both branches and stored.
#include <algorithm>
#include <atomic>

#include "node/engine/batch.h"
#include "node/engine/ingest_check.h"
#include "protocol/bytes.h"

namespace replog::engine {

namespace {

StoredHead stored(const proof::Head& h, uint64_t bytes) { return StoredHead{h.seq, h.chain, h.flags, h.signature, bytes}; }

std::string what(OriginId origin, uint64_t seq) { return "origin " + hex16(origin) + " #" + std::to_string(seq); }

// The first of run[from, end) whose form check_received() refuses, with
// its verdict in `verdict`, `held` moved past each update before it;
// run.size() when it refuses none.
size_t first_malformed(const std::vector<const Update*>& run, size_t from, HeldOrigin& held, uint64_t hlc_ceiling,
                       Verdict& verdict) {
  for (size_t i = from; i < run.size(); ++i) {
    verdict = check_received(run[i]->view(), held, hlc_ceiling);
    if (verdict != Verdict::kAccept) return i;
    held.seq = run[i]->seq();
    held.last_hlc = run[i]->id().hlc;
  }
  return run.size();
}

// An origin with fewer new updates in a request than this is hashed in line.
constexpr size_t kChainAheadFrom = 64;

// The chain of `origin` under `key` at `seq` as this log holds it: from the
// nearest kept head at or below (or c_0) forward over the stored updates.
Result<proof::Chain> chain_at(LogTxn& txn, const std::string& cluster, OriginId origin, std::string_view key,
                              uint64_t seq, uint64_t* bytes) {
  proof::Chain c = proof::chain_start(cluster, key);
  uint64_t from = 1, total = 0;
  if (auto h = seq > 0 ? txn.head_at_or_below(origin, seq) : std::nullopt) {
    c = h->chain;
    from = h->seq + 1;
    total = h->bytes;
  }
  for (uint64_t s = from; s <= seq; ++s) {
    auto id = txn.id_of(origin, s);
    auto body = id ? txn.body(*id) : std::nullopt;
    if (!body) return Status::corruption(what(origin, s) + " is missing from the log");
    proof::chain_step(c, key, id->hlc, *body);
    total += body->size();
  }
  if (bytes) *bytes = total;
  return c;
}

// Whether the log holds `u` byte for byte at its seq (same id, same body).
bool holds(LogTxn& txn, OriginId origin, const Update& u) {
  auto id = txn.id_of(origin, u.seq());
  auto body = id ? txn.body(*id) : std::nullopt;
  return id && *id == u.id() && body && *body == u.body();
}

// Reports run[from..] refused with `v`; the updates before `from` are held
// byte for byte, and count as duplicates.
Status refuse_from(IngestReport& rep, const std::vector<const Update*>& run, Verdict v, const std::string& why,
                   size_t from = 0) {
  rep.duplicates += from;
  for (size_t i = from; i < run.size(); ++i) rep.refused.push_back({run[i]->id(), run[i]->seq(), v, why});
  return Status::ok();
}

// How the run ending at `seq` fared, from the refusals added since `before`:
// its last update's verdict, or null when it was stored. (A refusal of the
// updates before a break in the run, kGap, is not the run's.)
const Refused* run_verdict(const IngestReport& rep, size_t before, uint64_t seq) {
  const Refused* out = nullptr;
  for (size_t i = before; i < rep.refused.size(); ++i)
    if (rep.refused[i].seq == seq) out = &rep.refused[i];
  return out;
}

// The head verified (its key signed it) but the bytes from `seq` on do not
// chain from what this log holds: altered, or another branch forked below.
void note_unchained(IngestReport& rep, OriginId origin, uint64_t seq) {
  auto [it, fresh] = rep.unchained.emplace(origin, seq);
  if (!fresh) it->second = std::min(it->second, seq);
}

}  // namespace

// Sets `c` (the chain before run[fresh]) to the chain after the run's last
// update from b.chains_ahead, when it holds these very updates from this very
// chain under this key; false: the caller hashes them.
bool Node::chained_ahead(const Batch& b, OriginId origin, const std::string& key,
                         const std::vector<const Update*>& run, size_t fresh, proof::Chain& c) {
  auto it = b.chains_ahead.find(origin);
  if (it == b.chains_ahead.end() || fresh >= run.size()) return false;
  const Batch::ChainAhead& a = it->second;
  const uint64_t seq0 = run[fresh]->seq();
  const size_t n = run.size() - fresh;
  if (a.key != key || seq0 < a.from_seq || seq0 - a.from_seq + n > a.ups.size()) return false;
  const size_t at = seq0 - a.from_seq;
  if ((at == 0 ? a.start : a.after[at - 1]) != c) return false;
  for (size_t i = 0; i < n; ++i)
    if (run[fresh + i] != a.ups[at + i]) return false;
  c = a.after[at + n - 1];
  return true;
}

bool Node::verified_ahead(const Batch& b, OriginId origin, const proof::Head& head, const std::string& key) {
  auto it = b.chains_ahead.find(origin);
  return it != b.chains_ahead.end() && it->second.head == &head && it->second.key == key && it->second.head_verified;
}

// Works out the chains of the request's origins that continue a verified
// chain (the record's, at the seq held), splitting the origins between this
// thread and the side thread: hashing each update's body is the largest part
// of the checks, and origins are independent. Each origin's newest head is
// verified with its chain, the next largest part. store_run then compares the
// run's end against the head without hashing (chained_ahead), and skips the
// signature it saw verified (verified_ahead).
void Node::chain_ahead(Batch& b, const std::map<OriginId, std::vector<const Update*>>& by_origin,
                       const std::map<OriginId, std::vector<const proof::Head*>>& heads) {
  b.chains_ahead.clear();
  std::vector<Batch::ChainAhead*> jobs;
  for (const auto& [origin, ups] : by_origin) {
    if (ups.size() < kChainAheadFrom || quarantined_.count(origin)) continue;
    const uint64_t held = b.held_of(origin).seq;
    const std::optional<OriginRecord>& rec = b.record_of(origin);
    if (!rec || rec->seq != held || rec->final || rec->key.empty()) continue;
    Batch::ChainAhead a;
    a.key = rec->key;
    a.from_seq = held + 1;
    a.start = rec->chain;
    // The first copy of each seq, consecutive from the one after the held.
    for (const Update* u : ups) {
      const uint64_t want = a.from_seq + a.ups.size();
      if (u->seq() < want) continue;  // held already, or a second copy of a seq
      if (u->seq() > want) break;
      a.ups.push_back(u);
    }
    if (a.ups.size() < kChainAheadFrom) continue;
    // The newest head that may be the origin's (one carrying another key is refused in line).
    if (auto hs = heads.find(origin); hs != heads.end())
      for (const proof::Head* h : hs->second)
        if ((h->key.empty() || h->key == a.key) && (!a.head || h->seq > a.head->seq)) a.head = h;
    jobs.push_back(&b.chains_ahead.emplace(origin, std::move(a)).first->second);
  }
  if (jobs.empty()) return;
  const auto hash = [this](Batch::ChainAhead& a) {
    a.after.resize(a.ups.size());
    proof::Chain c = a.start;
    for (size_t i = 0; i < a.ups.size(); ++i) {
      proof::chain_step(c, a.key, a.ups[i]->id().hlc, a.ups[i]->body());
      a.after[i] = c;
    }
    a.head_verified = a.head && check_head_once(*a.head, a.key);
  };
  // The larger origins first, taken one at a time by whichever thread is free:
  // a side thread that is not scheduled (the machine's CPUs are busy) leaves
  // its share to this one, which then waits only for the origin it holds.
  std::sort(jobs.begin(), jobs.end(), [](auto* x, auto* y) { return x->ups.size() > y->ups.size(); });
  std::atomic<size_t> next{0};
  const auto take_jobs = [&jobs, &next, &hash] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < jobs.size();) hash(*jobs[i]);
  };
  const bool beside = jobs.size() > 1;
  if (beside)
    side_.start([this, &take_jobs] {
      const int64_t cpu0 = thread_cpu_ns();
      take_jobs();
      check_cpu_ns_ += static_cast<uint64_t>(std::max<int64_t>(0, thread_cpu_ns() - cpu0));
    });
  take_jobs();
  if (beside) side_.finish();
}

// Among heads[from, to) (one seq), the first whose key may hold the origin and
// whose signature verifies; the first when none does (its refusal says why).
const proof::Head* Node::chosen_head(Batch& b, OriginId origin, const std::vector<const proof::Head*>& heads,
                                     size_t from, size_t to, const std::string& batch_key) {
  if (to - from == 1) return heads[from];
  const std::optional<OriginRecord>& rec = b.record_of(origin);
  for (size_t i = from; i < to; ++i) {
    const proof::Head& h = *heads[i];
    if (rec && !h.key.empty() && h.key != rec->key) continue;
    if (proof::check_head(h, cluster_id_, rec ? rec->key : batch_key)) return heads[i];
  }
  return heads[from];
}

Status Node::store_verified(Batch& b, Request& req, OriginId origin, std::vector<const Update*>& ups,
                            std::vector<const proof::Head*>& heads) {
  IngestReport& rep = req.report;
  size_t next = 0;  // the first update of `ups` not yet judged
  auto refuse_rest = [&](size_t until, Verdict v, const std::string& why) {
    for (; next < until; ++next) rep.refused.push_back({ups[next]->id(), ups[next]->seq(), v, why});
  };
  if (is_reserved_origin(origin)) {
    refuse_rest(ups.size(), Verdict::kReservedOrigin, "origin " + hex16(origin) + ": reserved origin id");
    return Status::ok();
  }
  if (quarantined_.count(origin)) {
    refuse_rest(ups.size(), Verdict::kQuarantined, "origin " + hex16(origin) + ": quarantined after a fork");
    return Status::ok();
  }
  // A keyless head may come with another head of the origin that carries the
  // key (a run from seq 1 relayed beside a later one): that key serves both.
  std::string batch_key;
  for (const proof::Head* h : heads)
    if (!h->key.empty() && (h->flags & proof::kLegacy || proof::origin_of_key(h->key) == origin)) {
      batch_key = h->key;
      break;
    }
  if (!member_allows(b, origin, ups, batch_key)) {
    hold(origin, ups, heads);
    refuse_rest(ups.size(), Verdict::kNotMember,
                "origin " + hex16(origin) + ": its key is not a member's (held until it is)");
    return Status::ok();
  }
  size_t hi = 0;
  if (heads.size() > 1) {
    // One signature per origin per batch: when the chain reaches the newest
    // head, it covers every run before it, and the heads between are not
    // needed (nor stored, nor relayed). Only when that fails (a forged or
    // altered newest run beside genuine ones) is each head tried in turn.
    size_t last = heads.size() - 1;
    while (last > 0 && heads[last - 1]->seq == heads.back()->seq) --last;
    const proof::Head* head = chosen_head(b, origin, heads, last, heads.size(), batch_key);
    size_t end = 0;
    while (end < ups.size() && ups[end]->seq() <= head->seq) ++end;
    if (end > 0) {
      std::vector<const Update*> run(ups.begin(), ups.begin() + static_cast<ptrdiff_t>(end));
      const size_t before = rep.refused.size();
      REPLOG_RETURN_IF_ERROR(store_run(b, req, origin, run, *head, batch_key));
      const Refused* verdict = run_verdict(rep, before, run.back()->seq());
      const bool retry =
          verdict && (verdict->verdict == Verdict::kBadProof || verdict->verdict == Verdict::kUnverified);
      if (!retry) {
        next = end;
        hi = heads.size();
        if (verdict && verdict->verdict != Verdict::kDuplicate) {
          refuse_rest(ups.size(), Verdict::kGap, what(origin, head->seq) + ": after a refused run");
          return Status::ok();
        }
      } else {
        rep.refused.resize(before);
      }
    }
  }
  while (hi < heads.size()) {
    // The heads at one seq: relays may bring a forged one beside the genuine
    // one; the run is judged with the first that verifies.
    size_t hj = hi;
    while (hj < heads.size() && heads[hj]->seq == heads[hi]->seq) ++hj;
    const proof::Head* head = chosen_head(b, origin, heads, hi, hj, batch_key);
    hi = hj;
    size_t end = next;  // the run: ups[next, end) with seq <= head->seq
    while (end < ups.size() && ups[end]->seq() <= head->seq) ++end;
    if (end == next) continue;  // a head with nothing of its own in this batch
    std::vector<const Update*> run(ups.begin() + static_cast<ptrdiff_t>(next), ups.begin() + static_cast<ptrdiff_t>(end));
    const size_t before = rep.refused.size();
    REPLOG_RETURN_IF_ERROR(store_run(b, req, origin, run, *head, batch_key));
    next = end;
    // A run refused for good leaves later runs of the origin without a base.
    if (const Refused* verdict = run_verdict(rep, before, run.back()->seq());
        verdict && verdict->verdict != Verdict::kDuplicate) {
      refuse_rest(ups.size(), Verdict::kGap, what(origin, ups[next < ups.size() ? next : 0]->seq()) + ": after a refused run");
      return Status::ok();
    }
  }
  if (next < ups.size())
    refuse_rest(ups.size(), Verdict::kUnverified,
                what(origin, ups[next]->seq()) + ": no signed head in its batch covers it");
  return Status::ok();
}

// One run of `origin`, seqs ascending, ending at or below `head`.
Status Node::store_run(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& run,
                       const proof::Head& head, const std::string& batch_key) {
  IngestReport& rep = req.report;
  auto refuse = [&](Verdict v, const std::string& why, size_t from = 0) { return refuse_from(rep, run, v, why, from); };
  VectorEntry& held = b.held_of(origin);
  std::optional<OriginRecord>& rec = b.record_of(origin);

  // Seqs must run on without a hole up to the head. One ingest can carry the
  // runs of several frames (a peer's and a stranger's altered one): where
  // they break, only the part that runs on to the head is judged with it, and
  // what comes before the break is refused as a gap (it comes again with a
  // head of its own), so that an altered update cannot take genuine ones down
  // with it.
  for (size_t i = run.size() - 1; i > 0; --i)
    if (run[i]->seq() != run[i - 1]->seq() + 1) {
      const std::vector<const Update*> before(run.begin(), run.begin() + static_cast<ptrdiff_t>(i));
      const std::vector<const Update*> tail(run.begin() + static_cast<ptrdiff_t>(i), run.end());
      REPLOG_RETURN_IF_ERROR(refuse_from(rep, before, Verdict::kGap,
                                         what(origin, run[i - 1]->seq()) + ": a hole or a repeat after it, before its head"));
      return store_run(b, req, origin, tail, head, batch_key);
    }
  // What this batch has checked is put before the log is read for it.
  const bool reads_log = run.front()->seq() <= held.seq || (held.seq > 0 && (!rec || rec->seq != held.seq));
  if (reads_log) REPLOG_RETURN_IF_ERROR(store_staged(b));
  if (run.back()->seq() != head.seq) {
    // Held byte for byte (another copy of a seq in the batch, judged on its own): duplicates.
    const bool held_already = std::all_of(run.begin(), run.end(), [&](const Update* u) {
      return u->seq() <= held.seq && holds(b.txn, origin, *u);
    });
    if (held_already) return refuse(Verdict::kDuplicate, "", run.size());
    return refuse(Verdict::kUnverified, what(origin, run.back()->seq()) + ": the run does not reach its head #" +
                                            std::to_string(head.seq));
  }
  if (run.front()->seq() > held.seq + 1)
    return refuse(Verdict::kGap, what(origin, run.front()->seq()) + ": gap, " + std::to_string(held.seq) + " held");
  if (head.seq <= held.seq) {
    // Nothing new: duplicates, unless the bytes differ.
    for (const Update* u : run) {
      if (!holds(b.txn, origin, *u)) {
        const std::string key = rec ? rec->key : !head.key.empty() ? head.key : batch_key;
        return fork_by_proof(b, req, origin, run, head, key);
      }
    }
    // The same bytes under a head whose chain is not ours: another branch
    // that forked below the run and came to the same bytes since (two
    // writers of one origin making one call in one millisecond). Said as
    // unchained, so that the engine asks from below and proves the fork.
    // Ours is found without hashing where it can be: the verified tip, a
    // recent commit, a kept head; the head's signature only when they differ.
    const std::string key = rec ? rec->key : !head.key.empty() ? head.key : batch_key;
    std::optional<proof::Chain> ours;
    if (rec && rec->seq == head.seq) ours = rec->chain;
    if (!ours && rec) ours = recent_chain(origin, head.seq);
    if (auto kept = ours ? std::nullopt : b.txn.head_at_or_below(origin, head.seq); kept && kept->seq == head.seq)
      ours = kept->chain;
    if (!ours && !key.empty()) {
      auto at = chain_at(b.txn, cluster_id_, origin, key, head.seq, nullptr);
      if (!at) return at.status();
      ours = *at;
    }
    if (ours && *ours != head.chain && !key.empty() && proof::check_head(head, cluster_id_, key))
      note_unchained(rep, origin, run.front()->seq());
    rep.duplicates += run.size();
    if (rec && rec->seq >= head.seq) return Status::ok();
    // Held before its writer signed it (kept from before an upgrade): the head attests it now.
    return attest_held(b, origin, run, head, rec ? rec->key : !head.key.empty() ? head.key : batch_key, rec);
  }

  // The key: the one recorded for the origin; a head carrying another is a second key under one id.
  std::string key = rec ? rec->key : !head.key.empty() ? head.key : batch_key;
  if (rec && !head.key.empty() && head.key != rec->key)
    return refuse(Verdict::kBadProof, "origin " + hex16(origin) + ": a head carries another key than the one held");
  if (key.empty())
    return refuse(Verdict::kUnverified, "origin " + hex16(origin) + ": its key is not known here (pulled from seq 1)");
  if (!verified_ahead(b, origin, head, key))
    if (Status s = check_head_once(head, key); !s) return refuse(Verdict::kBadProof, s.message());
  if (rec && rec->final)
    return refuse(Verdict::kBadProof, "origin " + hex16(origin) + " wrote its final head at #" +
                                          std::to_string(rec->seq) + ": nothing after it is taken");

  // Held seqs at the run's start must be the held bytes.
  size_t fresh = 0;
  while (fresh < run.size() && run[fresh]->seq() <= held.seq) {
    if (!holds(b.txn, origin, *run[fresh])) return fork_by_proof(b, req, origin, run, head, key);
    ++fresh;
  }
  uint64_t bytes = 0;
  proof::Chain c{};
  if (rec && rec->seq == held.seq) {
    c = rec->chain;
    bytes = rec->bytes;
  } else {
    // No record yet (a legacy origin held unverified since an upgrade), or seq 0.
    auto at = chain_at(b.txn, cluster_id_, origin, key, held.seq, &bytes);
    if (!at) return at.status();
    c = *at;
  }
  if (!chained_ahead(b, origin, key, run, fresh, c))
    for (size_t i = fresh; i < run.size(); ++i) proof::chain_step(c, key, run[i]->id().hlc, run[i]->body());
  if (c != head.chain) {
    note_unchained(rep, origin, run[fresh]->seq());
    return refuse(Verdict::kBadProof,
                  what(origin, run[fresh]->seq()) + ".." + std::to_string(head.seq) +
                      ": the bytes do not chain to the origin's signed head (altered or forged)",
                  fresh);
  }

  // Form, as for every received update; a run is taken whole or not at all.
  HeldOrigin h{held.seq, held.last_hlc, false, std::nullopt, std::nullopt};
  Verdict v = Verdict::kAccept;
  if (const size_t bad = first_malformed(run, fresh, h, b.hlc_ceiling, v); bad < run.size())
    return refuse(v, describe_refusal(run[bad]->view(), h, v));

  rep.duplicates += fresh;
  for (size_t i = fresh; i < run.size(); ++i) {
    const Update& u = *run[i];
    b.staged.push_back({u.id(), u.seq(), u.body()});
    ++b.puts;
    hlc_->advance_to(u.id().hlc);
    held = VectorEntry{u.seq(), u.id().hlc};
    bytes += u.body().size();
    ++rep.accepted;
    if (commit_listener_) b.committed.push_back(u);
    b.accepted.push_back(u.view());
    note_revocation(b, u.view());
  }
  OriginRecord r = rec.value_or(OriginRecord{});
  r.key = key;
  if (!head.cert.empty()) {
    r.device = head.device;
    r.cert = head.cert;
  }
  if (r.cert.empty() && !rec) {
    // A keyless head whose key came with another head of the batch: its certificate too.
    for (const proof::Head& h : req.heads)
      if (h.origin == origin && h.key == key && !h.cert.empty()) {
        r.device = h.device;
        r.cert = h.cert;
        break;
      }
  }
  r.legacy = (head.flags & proof::kLegacy) != 0;
  r.final = (head.flags & proof::kFinal) != 0;
  r.seq = head.seq;
  r.chain = c;
  r.bytes = bytes;
  REPLOG_RETURN_IF_ERROR(b.txn.put_origin_record(origin, r));
  REPLOG_RETURN_IF_ERROR(store_head(b.txn, origin, stored(head, bytes)));
  b.puts += 2;
  rec = r;
  leave_ahead_tip(origin, r, held.last_hlc);
  b.chains.push_back({origin, {r.seq, r.chain}});
  if (commit_listener_) {
    // Whoever the run is relayed to may not know the key yet when it starts at seq 1.
    proof::Head relayed{head.origin, head.seq, head.chain, head.flags, head.signature, {}, {}, {}};
    if (run[fresh]->seq() == 1 || r.legacy) {
      relayed.key = r.key;
      relayed.device = r.device;
      relayed.cert = r.cert;
    }
    b.committed_heads.push_back(std::move(relayed));
  }
  if (origin != node_id_) return Status::ok();
  // Its own key signed updates it never wrote here: a copy of this directory runs elsewhere.
  rep.origin_changed = true;
  return leave_origin(b, "received " + what(origin, head.seq) + " of this node's origin, which it never wrote");
}

// `run` is held already, byte for byte, beyond the origin's verified tip: when
// `head` verifies and the held bytes chain to it, the origin's record moves to
// the head. Otherwise nothing changes (the run was counted as duplicates).
Status Node::attest_held(Batch& b, OriginId origin, const std::vector<const Update*>& run, const proof::Head& head,
                         std::string key, std::optional<OriginRecord>& rec) {
  if (key.empty() || run.front()->seq() > (rec ? rec->seq : 0) + 1) return Status::ok();
  if (!proof::check_head(head, cluster_id_, key)) return Status::ok();
  uint64_t bytes = 0;
  auto c = chain_at(b.txn, cluster_id_, origin, key, head.seq, &bytes);
  if (!c) return c.status();
  if (*c != head.chain) return Status::ok();
  OriginRecord r = rec.value_or(OriginRecord{});
  r.key = key;
  if (!head.cert.empty()) {
    r.device = head.device;
    r.cert = head.cert;
  }
  r.legacy = (head.flags & proof::kLegacy) != 0;
  r.final = (head.flags & proof::kFinal) != 0;
  r.seq = head.seq;
  r.chain = *c;
  r.bytes = bytes;
  REPLOG_RETURN_IF_ERROR(b.txn.put_origin_record(origin, r));
  REPLOG_RETURN_IF_ERROR(store_head(b.txn, origin, stored(head, bytes)));
  b.puts += 2;
  rec = r;
  b.chains.push_back({origin, {r.seq, r.chain}});
  return Status::ok();
}

// `run` repeats held seqs with other bytes. When it verifies from the chain
// held where it starts, the origin's key signed two branches: the evidence is
// stored and the origin quarantined. Otherwise the bytes were altered.
Status Node::fork_by_proof(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& run,
                           const proof::Head& head, const std::string& key) {
  IngestReport& rep = req.report;
  auto refuse = [&](Verdict v, const std::string& why, size_t from = 0) { return refuse_from(rep, run, v, why, from); };
  if (key.empty()) return refuse(Verdict::kUnverified, "origin " + hex16(origin) + ": its key is not known here");
  if (Status s = proof::check_head(head, cluster_id_, key); !s) return refuse(Verdict::kBadProof, s.message());
  const uint64_t first = run.front()->seq();
  auto base = chain_at(b.txn, cluster_id_, origin, key, first - 1, nullptr);
  if (!base) return base.status();
  // The first seq where the run parts from the held bytes, and the chain just before it.
  size_t d = 0;
  proof::Chain at = *base;
  for (; d < run.size(); ++d) {
    auto id = b.txn.id_of(origin, run[d]->seq());
    auto body = id ? b.txn.body(*id) : std::nullopt;
    if (!id || !body) return Status::corruption(what(origin, run[d]->seq()) + " is missing from the log");
    if (*id != run[d]->id() || *body != run[d]->body()) break;
    proof::chain_step(at, key, id->hlc, *body);
  }
  if (d == run.size()) return refuse(Verdict::kDuplicate, "", run.size());  // nothing differs: all held
  proof::Chain c = at;
  for (size_t i = d; i < run.size(); ++i) proof::chain_step(c, key, run[i]->id().hlc, run[i]->body());
  if (c != head.chain) {
    note_unchained(rep, origin, first);
    return refuse(Verdict::kBadProof,
                  what(origin, run[d]->seq()) + ": other bytes than the held ones, and they do not chain "
                                                "to the origin's signed head (altered or forged)",
                  d);
  }
  const uint64_t fork_seq = run[d]->seq();
  std::vector<Update> ours;
  // Our branch from the fork seq to the first head we hold at or after it.
  std::optional<proof::Head> ours_head;
  if (auto kept = b.txn.head_at_or_above(origin, fork_seq))
    ours_head = proof::Head{origin, kept->seq, kept->chain, kept->flags, kept->signature, {}, {}, {}};
  else if (origin == node_id_)
    ours_head = own_head(false);
  if (!ours_head) return refuse(Verdict::kFork, what(origin, fork_seq) + ": fork, but no head of ours covers it", d);
  for (uint64_t s = fork_seq; s <= ours_head->seq; ++s) {
    auto id = b.txn.id_of(origin, s);
    auto body = id ? b.txn.body(*id) : std::nullopt;
    if (!id || !body) return Status::corruption(what(origin, s) + " is missing from the log");
    auto u = Update::parse(*id, std::move(*body));
    if (!u) return u.status().with_context("stored update");
    ours.push_back(std::move(u).value());
  }
  std::vector<Update> theirs;
  for (size_t i = d; i < run.size(); ++i) theirs.push_back(*run[i]);
  proof::Head a = head, mine = *ours_head;
  a.key = mine.key = key;
  // A key its device certified travels with the certificate (PROTOCOL.md §8 "A head's encoding").
  if (auto rec = b.records.find(origin); rec != b.records.end() && rec->second && rec->second->key == key &&
                                         !rec->second->cert.empty()) {
    a.device = mine.device = rec->second->device;
    a.cert = mine.cert = rec->second->cert;
  }
  const proof::Evidence e = proof::chain_evidence(std::move(a), std::move(mine), fork_seq, at, std::move(theirs),
                                                  std::move(ours));
  const std::string report = what(origin, fork_seq) + ": two branches signed by the origin's key (fork)";
  if (Status s = proof::check_evidence(e, cluster_id_); !s) return refuse(Verdict::kFork, report + "; " + s.message(), d);
  ++rep.forks;
  refuse(Verdict::kFork, report, d);
  const OriginId own = node_id_;
  bool kept = false;
  REPLOG_RETURN_IF_ERROR(store_evidence(b, e, kept));
  rep.new_evidence = rep.new_evidence || kept;
  if (origin == own && node_id_ != own) rep.origin_changed = true;
  return Status::ok();
}

// Keeps `e` (checked) when this node has no evidence of its origin's fork or
// only at a higher seq. From then on replay leaves the origin's updates from
// the fork seq out, on every node that holds the evidence alike: held ones
// are refolded. The origin is not quarantined: its common prefix below the
// fork seq must still reach nodes that lag. When the origin is this node's
// own, it moves to a fresh origin and writes its updates from the fork seq on
// again there, so that no call it acknowledged is lost.
Status Node::store_evidence(Batch& b, const proof::Evidence& e, bool& kept) {
  kept = false;
  const OriginId origin = e.origin();
  const uint64_t fork_seq = e.fork_seq();
  const auto kept_seqs = b.txn.fork_seqs();
  if (auto prior = kept_seqs.find(origin); prior != kept_seqs.end() && prior->second <= fork_seq) return Status::ok();
  REPLOG_RETURN_IF_ERROR(b.txn.put_evidence(origin, proof::encode_evidence(e)));
  ++b.puts;
  kept = true;
  drop_ahead_tip(origin);
  // Replay leaves the origin out from the fork seq: refolded from the first held update left out.
  b.left_out_changed = true;
  REPLOG_RETURN_IF_ERROR(refresh_left_out(b));
  if (origin != node_id_) return Status::ok();
  const uint64_t own_tip = own_seq_;
  REPLOG_RETURN_IF_ERROR(leave_origin(b, what(origin, fork_seq) + ": this node's origin forked (fork evidence)"));
  return reissue(b, origin, fork_seq, own_tip);
}

// Writes this node's updates `from_seq`..`to_seq` of `old_origin` again as new
// updates of its current origin (same method and argument, new ids).
Status Node::reissue(Batch& b, OriginId old_origin, uint64_t from_seq, uint64_t to_seq) {
  const uint64_t before = own_seq_;
  for (uint64_t s = from_seq; s <= to_seq; ++s) {
    auto id = b.txn.id_of(old_origin, s);
    auto body = id ? b.txn.body(*id) : std::nullopt;
    if (!body) return Status::corruption(what(old_origin, s) + " is missing from the log");
    auto old = parse_update(*id, *body);
    if (!old) return old.status().with_context("stored update");
    Update u = Update::make(UpdateId{hlc_->tick(), node_id_}, own_seq_ + 1, old->method, old->arg);
    REPLOG_RETURN_IF_ERROR(b.txn.put_update(u.id(), u.seq(), u.body()));
    ++b.puts;
    own_seq_ = u.seq();
    chain_own(b, u);
    note_revocation(b, u.view());
    if (!refold_from_ || u.id() < *refold_from_) refold_from_ = refold_from_ ? std::min(*refold_from_, u.id()) : u.id();
    if (commit_listener_) b.committed.push_back(std::move(u));
  }
  return finish_own_run(b, before);
}

// Evidence from peers (Request::Kind::kEvidence): checked, and kept as above.
Status Node::store_evidence_requests(Batch& b) {
  for (auto& req : b.requests) {
    if (req->kind != Request::Kind::kEvidence) continue;
    auto e = proof::decode_evidence(req->evidence);
    Status s = e ? proof::check_evidence(*e, cluster_id_) : e.status();
    if (!s) {
      req->status = s;
      continue;
    }
    const OriginId own = node_id_;
    REPLOG_RETURN_IF_ERROR(store_evidence(b, *e, req->kept));
    req->report.new_evidence = req->kept;
    req->report.origin_changed = node_id_ != own;
    req->status = Status::ok();
  }
  return Status::ok();
}

// This log's committed chain of `origin` at `seq`, when a recent commit left it.
std::optional<proof::Chain> Node::recent_chain(OriginId origin, uint64_t seq) const {
  auto it = recent_chains_.find(origin);
  if (it == recent_chains_.end()) return std::nullopt;
  for (const auto& [s, c] : it->second)
    if (s == seq) return c;
  return std::nullopt;
}

// After a commit: the chains its runs and calls ended at, for recent_chain().
void Node::remember_chains(const Batch& b) {
  constexpr size_t kMaxOrigins = 4096;  // origins are few; past this the memory starts over
  if (recent_chains_.size() > kMaxOrigins) recent_chains_.clear();
  for (const auto& [origin, at] : b.chains) {
    auto& ring = recent_chains_[origin];
    ring.push_back(at);
    if (ring.size() > kRecentChains) ring.pop_front();
  }
}

// --- verifying ahead of the writer ------------------------------------------------

namespace {

// What proof::check_head reads of a head, with the key it was checked under:
// a signature verified ahead is taken by the writer only for these bytes.
std::string ahead_fingerprint(const proof::Head& h, std::string_view key) {
  std::string f = u64_be(h.origin) + u64_be(h.seq);
  f += proof::chain_bytes(h.chain);
  f += static_cast<char>(h.flags);
  for (std::string_view part : {std::string_view(h.signature), key, std::string_view(h.device), std::string_view(h.cert)}) {
    f += u64_be(part.size());  // whole lengths: a peer's head of any field sizes cannot read as another's
    f += part;
  }
  return f;
}

}  // namespace

void Node::leave_ahead_tip(OriginId origin, const OriginRecord& rec, uint64_t last_hlc) {
  std::lock_guard<std::mutex> l(ahead_mu_);
  auto it = ahead_tips_.find(origin);
  // Nothing is taken after a final head, and a legacy origin's heads are its former writer's.
  if (rec.final || rec.legacy || origin == node_id_) {
    if (it != ahead_tips_.end()) ahead_tips_.erase(it);
    return;
  }
  if (it != ahead_tips_.end() && it->second.seq > rec.seq) return;  // verified further ahead already
  if (it != ahead_tips_.end() && it->second.seq == rec.seq && it->second.chain != rec.chain) {
    ahead_tips_.erase(it);  // two chains at one seq: the writer judges what comes next
    return;
  }
  ahead_tips_[origin] = AheadTip{rec.seq, last_hlc, rec.chain, rec.key, rec.member_key()};
}

void Node::drop_ahead_tip(OriginId origin) {
  std::lock_guard<std::mutex> l(ahead_mu_);
  ahead_tips_.erase(origin);
}

void Node::drop_ahead_tip_if_refused(OriginId origin, const IngestReport& rep, size_t from) {
  if (std::any_of(rep.refused.begin() + static_cast<ptrdiff_t>(from), rep.refused.end(), [](const Refused& r) {
        return r.verdict != Verdict::kGap && r.verdict != Verdict::kDuplicate && r.verdict != Verdict::kUnverified;
      }))
    drop_ahead_tip(origin);
}

bool Node::take_ahead_signature(const proof::Head& head, std::string_view key) {
  std::lock_guard<std::mutex> l(ahead_mu_);
  if (ahead_signatures_.empty() || ahead_signatures_.erase(ahead_fingerprint(head, key)) == 0) return false;
  ++ahead_counts_.signatures_reused;
  return true;
}

Status Node::check_head_once(const proof::Head& head, std::string_view key) {
  if (take_ahead_signature(head, key)) return Status::ok();
  return proof::check_head(head, cluster_id_, key);
}

Node::AheadCounts Node::ahead_counts() const {
  std::lock_guard<std::mutex> l(ahead_mu_);
  return ahead_counts_;
}

SyncStore::VerifiedAhead Node::verify_ahead(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  VerifiedAhead out;
  if (!options_.verify_origins || heads.empty() || updates.empty()) return out;
  const int64_t cpu0 = thread_cpu_ns();
  std::map<OriginId, std::vector<const Update*>> by_origin;
  for (const Update& u : updates) by_origin[u.id().origin].push_back(&u);
  const uint64_t ceiling = hlc_->ceiling(options_.max_clock_skew_ms);
  for (auto& [origin, ups] : by_origin) {
    if (is_reserved_origin(origin)) continue;
    std::stable_sort(ups.begin(), ups.end(), [](const Update* x, const Update* y) { return x->seq() < y->seq(); });
    const proof::Head* head = nullptr;  // the newest of the origin's heads
    for (const proof::Head& h : heads)
      if (h.origin == origin && (!head || h.seq > head->seq)) head = &h;
    if (!head || head->seq != ups.back()->seq() || (head->flags & proof::kLegacy)) continue;
    AheadTip tip;
    {
      std::lock_guard<std::mutex> l(ahead_mu_);
      auto it = ahead_tips_.find(origin);
      if (it == ahead_tips_.end()) continue;
      tip = it->second;
    }
    // The run from the seq after the tip to the head, each seq once and no hole.
    std::vector<const Update*> run;
    bool whole = true;
    for (const Update* u : ups) {
      if (u->seq() <= tip.seq) continue;  // held, or verified ahead already
      if (u->seq() != tip.seq + 1 + run.size()) {
        whole = false;
        break;
      }
      run.push_back(u);
    }
    if (!whole || run.empty() || (!head->key.empty() && head->key != tip.key)) continue;
    if (options_.is_member) {
      {
        std::lock_guard<std::mutex> l(revoked_mu_);
        if (revoked_.count(origin)) continue;  // the writer judges where a revoked origin stops
      }
      if (!options_.is_member(tip.member_key)) continue;
    }
    HeldOrigin held{tip.seq, tip.last_hlc, false, std::nullopt, std::nullopt};
    Verdict verdict = Verdict::kAccept;
    if (first_malformed(run, 0, held, ceiling, verdict) < run.size()) continue;
    proof::Chain c = tip.chain;
    for (const Update* u : run) proof::chain_step(c, tip.key, u->id().hlc, u->body());
    if (c != head->chain || !proof::check_head(*head, cluster_id_, tip.key)) continue;
    {
      std::lock_guard<std::mutex> l(ahead_mu_);
      auto it = ahead_tips_.find(origin);
      // The writer may have moved or dropped the tip meanwhile: only one still where it was moves on.
      if (it == ahead_tips_.end() || it->second.seq != tip.seq || it->second.chain != tip.chain) continue;
      if (head->flags & proof::kFinal) {
        ahead_tips_.erase(it);
      } else {
        it->second.seq = head->seq;
        it->second.last_hlc = held.last_hlc;
        it->second.chain = c;
      }
      std::string f = ahead_fingerprint(*head, tip.key);
      if (ahead_signatures_.insert(f).second) ahead_order_.push_back(std::move(f));
      while (ahead_order_.size() > kAheadSignatures) {
        ahead_signatures_.erase(ahead_order_.front());
        ahead_order_.pop_front();
      }
      ++ahead_counts_.runs;
    }
    for (const Update* u : run) out.updates.push_back(*u);
    out.heads.push_back(proof::Head{head->origin, head->seq, head->chain, head->flags, head->signature, {}, {}, {}});
  }
  check_cpu_ns_ += static_cast<uint64_t>(std::max<int64_t>(0, thread_cpu_ns() - cpu0));
  return out;
}

}  // namespace replog::engine
