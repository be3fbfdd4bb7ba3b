#include "node/archive/archiver.h"

#include <algorithm>

#include "node/archive/listing.h"
#include "node/archive/merge.h"
#include "protocol/bytes.h"

namespace replog {

using archive::SegmentName;
using archive::cover;
using archive::segment_names;


Archiver::Archiver(SyncStore& store, ObjectStore& bucket, archive::Keyring keys, const Clock& clock,
                   ArchiveOptions options)
    : store_(store), bucket_(bucket), keys_(std::move(keys)), clock_(clock), options_(options) {}

ArchiveStatus Archiver::status() const {
  std::lock_guard lock(status_mu_);
  ArchiveStatus s = status_;
  s.counters.requests = bucket_.requests();
  return s;
}

void Archiver::note_error(const Status& s) {
  std::lock_guard lock(status_mu_);
  status_.last_error = s.is_ok() ? "" : s.message();
}

// ---- what the archive holds --------------------------------------------------

// Lists the origin's segments past what is known and moves the known prefix on.
Status Archiver::refresh(OriginId origin) {
  const bool first = !archived_.count(origin);
  const uint64_t known = first ? 0 : archived_[origin];
  auto listed = bucket_.list(archive::origin_prefix(origin), archive::segments_after(origin, known), 0);
  if (!listed) return listed.status();
  auto chain = cover(segment_names(*listed, origin), known);
  archived_[origin] = chain.empty() ? known : chain.back().last;
  if (first && !chain.empty()) REPLOG_RETURN_IF_ERROR(recheck_newest(chain));
  std::lock_guard lock(status_mu_);
  status_.archived[origin] = archived_[origin];
  return Status::ok();
}

// The first time an origin is listed (a start, perhaps after a crash): its
// newest segment may be an upload cut off by the crash that a server kept in
// part, and its change feed entry may never have been written. The newest
// segment is read: one that does not open is deleted and the range uploaded
// again; one that opens gets a feed entry (a second one is harmless). When it
// is of this node's own origin, its updates go through ingest: another writer
// of the origin (a copied directory) that uploaded first becomes fork evidence.
Status Archiver::recheck_newest(const std::vector<archive::SegmentName>& chain) {
  const archive::SegmentName& newest = chain.back();
  const std::string key = archive::segment_key(newest);
  auto sealed = bucket_.get(key, archive::kMaxPlaintextBytes + archive::kChunkBytes);
  if (!sealed && sealed.status().code() == Status::Code::kNotFound) return Status::ok();  // merged away meanwhile
  if (!sealed) return sealed.status();
  auto opened = archive::open_segment(keys_, key, *sealed);
  if (!opened) {
    if (opened.status().code() != Status::Code::kCorruption) return Status::ok();  // another key: not ours to judge
    REPLOG_RETURN_IF_ERROR(bucket_.del(key));
    archived_[newest.origin] = chain.size() > 1 ? chain[chain.size() - 2].last : 0;
    return Status::ok();
  }
  if (newest.origin == store_.node_id()) {
    auto report = store_.ingest(std::move(opened->updates), {std::move(opened->head)});
    if (report && report->forks > 0) {
      std::lock_guard lock(status_mu_);
      status_.damaged[key] = "holds other bytes than this node's log (a fork of " + hex16(newest.origin) + ")";
    }
  }
  auto feed = bucket_.put_new(archive::feed_key({clock_.now_millis(), newest.origin, newest.last}), "");
  return feed ? Status::ok() : feed.status();
}

// ---- push ----------------------------------------------------------------------

Status Archiver::push() {
  const int64_t now = clock_.now_millis();
  if (options_.before_push)
    if (Status s = options_.before_push(bucket_, keys_); !s) {
      note_error(s);
      return s;  // nothing is sealed with a key a departed member holds
    }
  const OriginId own = store_.node_id();
  Status result = Status::ok();
  for (const auto& [origin, held] : store_.vector()) {
    if (archived_.count(origin) && held <= archived_[origin]) {
      lacking_since_.erase(origin);
      continue;
    }
    auto [since, fresh] = lacking_since_.try_emplace(origin, now);
    if (origin != own && now - since->second < options_.grace_ms) continue;
    Status s = refresh(origin);
    if (s.is_ok() && held > archived_[origin]) s = push_origin(origin, held);
    if (s.is_ok() && held <= archived_[origin]) lacking_since_.erase(origin);
    if (!s.is_ok() && result.is_ok()) result = s;
  }
  if (result.is_ok()) result = push_evidence();
  // The own origin's small segments are merged by its writer, four at a time.
  if (result.is_ok() && options_.merge.fan_in > 1 &&
      (unmerged_ >= options_.merge.fan_in || (unmerged_ > 0 && !merged_once_))) {
    MergeReport merged;
    result = merge_segments(bucket_, keys_, own, store_.own_origin_key().key, options_.merge, merged);
    if (result.is_ok()) unmerged_ = 0, merged_once_ = true;
    std::lock_guard lock(status_mu_);
    status_.counters.segments_merged += merged.merged;
    status_.counters.segments_deleted += merged.deleted;
  }
  {
    std::lock_guard lock(status_mu_);
    status_.last_push_ms = now;
    const uint64_t held = seq_of(store_.vector(), own);
    const uint64_t known = archived_.count(own) ? archived_[own] : 0;
    status_.lag_updates = held > known ? held - known : 0;
    status_.lag_since_ms = lacking_since_.count(own) ? lacking_since_[own] : 0;
  }
  note_error(result);
  return result;
}

// Uploads `origin` from the archived prefix up to the newest head held at or below `held`.
Status Archiver::push_origin(OriginId origin, uint64_t held) {
  while (archived_[origin] < held) {
    if (origin == store_.node_id()) {
      std::lock_guard lock(status_mu_);
      status_.lag_updates = held - archived_[origin];  // shown while a long upload runs
    }
    const uint64_t from = archived_[origin] + 1;
    auto range = store_.read_range(origin, from, options_.segment_updates, options_.segment_bytes);
    if (!range) return range.status();
    if (range->updates.empty() || !range->head) return Status::ok();  // nothing under a head yet
    archive::Segment seg;
    seg.name = {origin, from, range->head->seq};
    seg.head = std::move(*range->head);
    seg.updates = std::move(range->updates);
    if (seg.updates.size() != seg.name.last - from + 1 || seg.updates.front().seq() != from)
      return Status::corruption("archive: a range of " + hex16(origin) + " from #" + std::to_string(from) +
                                " does not end at its head");
    REPLOG_RETURN_IF_ERROR(put_segment(seg));
    if (origin == store_.node_id()) ++unmerged_;
    archived_[origin] = seg.name.last;
    std::lock_guard lock(status_mu_);
    status_.archived[origin] = seg.name.last;
  }
  return Status::ok();
}

Status Archiver::put_segment(const archive::Segment& seg) {
  const std::string key = archive::segment_key(seg.name);
  const std::string sealed = archive::seal_segment(keys_.back(), seg);
  auto put = bucket_.put_new(key, sealed);
  if (!put) return put.status();
  if (put->existed) {
    // Equal names hold equal bytes unless the origin forked: then the other
    // branch goes to ingest, which keeps it as fork evidence.
    auto theirs = bucket_.get(key, sealed.size() + archive::kChunkBytes);
    if (theirs && *theirs != sealed) {
      auto other = archive::open_segment(keys_, key, *theirs);
      if (!other && other.status().code() == Status::Code::kCorruption) {
        // A torn upload a server kept in part: ours to write again.
        REPLOG_RETURN_IF_ERROR(bucket_.del(key));
        auto again = bucket_.put_new(key, sealed);
        if (!again) return again.status();
      } else {
        if (other) (void)store_.ingest(std::move(other->updates), {std::move(other->head)});
        std::lock_guard lock(status_mu_);
        status_.damaged[key] = "holds other bytes than this node's log (a fork of " + hex16(seg.name.origin) + "?)";
      }
    }
  }
  const archive::FeedEntry entry{clock_.now_millis(), seg.name.origin, seg.name.last};
  auto feed = bucket_.put_new(archive::feed_key(entry), "");
  if (!feed) return feed.status();
  std::lock_guard lock(status_mu_);
  ++status_.counters.segments_put;
  status_.counters.updates_put += seg.updates.size();
  status_.counters.bytes_put += sealed.size();
  return Status::ok();
}

// Fork evidence this node holds that the archive lacks (as far as it knows).
Status Archiver::push_evidence() {
  for (const std::string& evidence : store_.evidence()) {
    auto name = archive::evidence_name(evidence);
    if (!name) continue;  // the node checked it when it took it; nothing to name
    const std::string key = archive::evidence_key(*name);
    if (evidence_seen_.count(key)) continue;
    auto put = bucket_.put_new(key, archive::seal_evidence(keys_.back(), evidence));
    if (!put) return put.status();
    evidence_seen_.insert(key);
    std::lock_guard lock(status_mu_);
    ++status_.counters.evidence_put;
  }
  return Status::ok();
}

// The evidence objects not seen yet, each handed to the node, which checks it.
Status Archiver::take_evidence() {
  auto listed = bucket_.list(std::string(archive::kEvidencePrefix), "", 0);
  if (!listed) return listed.status();
  for (const StoredObject& o : *listed) {
    if (evidence_seen_.count(o.key)) continue;
    auto sealed = bucket_.get(o.key, proof::kMaxEvidenceBytes + archive::kChunkBytes);
    if (!sealed && sealed.status().code() == Status::Code::kNotFound) continue;  // deleted since: nothing to take
    if (!sealed) return sealed.status();
    evidence_seen_.insert(o.key);
    auto evidence = archive::open_evidence(keys_, o.key, *sealed);
    Result<bool> kept = evidence ? store_.take_evidence(std::move(evidence).value()) : Result<bool>(evidence.status());
    std::lock_guard lock(status_mu_);
    if (!kept) status_.damaged[o.key] = kept.status().message();
    else if (*kept) ++status_.counters.evidence_taken;
  }
  return Status::ok();
}

// ---- pull ----------------------------------------------------------------------

Status Archiver::pull(bool sweep_all) {
  Status s = list_feed();
  if (s.is_ok() && sweep_all) s = look_around();
  if (s.is_ok() && sweep_all) {
    auto origins = archive::origins_in_bucket(bucket_);
    if (!origins) s = origins.status();
    for (OriginId origin : origins ? *origins : std::vector<OriginId>{}) wanted_.insert(origin);
  } else if (s.is_ok() && options_.sweep_every > 0 && ++pulls_ % options_.sweep_every == 0) {
    s = sweep_next();
  }
  std::set<OriginId> wanted;
  wanted.swap(wanted_);
  // Every origin listed first, so that progress knows the bytes to come.
  std::vector<Plan> plans;
  for (OriginId origin : wanted) {
    auto plan = plan_origin(origin);
    if (plan) plans.push_back(std::move(plan).value());
    else if (s.is_ok()) s = plan.status();
  }
  for (Plan& plan : plans) {
    Status o = pull_origin(std::move(plan));
    if (!o.is_ok() && s.is_ok()) s = o;
  }
  {
    std::lock_guard lock(status_mu_);
    status_.last_poll_ms = clock_.now_millis();
  }
  note_error(s);
  return s;
}

Status Archiver::list_feed() {
  // A short window usually, the whole skew window every 30th listing: an
  // uploader whose clock is behind is seen within a minute, without listing
  // minutes of entries at every poll.
  // While the whole window fits in one page, every listing takes it whole.
  const bool wide = wide_fits_ || feed_listings_++ % 30 == 0;
  const int64_t window = wide ? options_.skew_window_ms : options_.recent_window_ms;
  auto listed = bucket_.list(std::string(archive::kChangesPrefix), archive::feed_after(feed_ms_ - window), 0);
  if (!listed) return listed.status();
  if (wide) wide_fits_ = listed->size() <= 1000;
  const VersionVector held = store_.vector();
  for (const StoredObject& o : *listed) {
    auto e = archive::parse_feed_key(o.key);
    if (!e) continue;
    feed_ms_ = std::max(feed_ms_, e->uploader_ms);
    if (e->last > seq_of(held, e->origin)) wanted_.insert(e->origin);
  }
  std::lock_guard lock(status_mu_);
  ++status_.counters.feed_listings;
  return Status::ok();
}

// One origin's prefix in turn; each round begins with a listing of the origins.
// At a sweep round's start: keys granted to this node, and the newest snapshot.
Status Archiver::look_around() {
  if (options_.refresh_keys) REPLOG_RETURN_IF_ERROR(options_.refresh_keys(bucket_, keys_));
  REPLOG_RETURN_IF_ERROR(take_evidence());
  auto snaps = bucket_.list(std::string(archive::kSnapshotsPrefix), "", 0);
  if (!snaps) return snaps.status();
  std::lock_guard lock(status_mu_);
  if (!snaps->empty()) status_.last_snapshot = snaps->back().key;
  status_.writing_key = keys_.back().id();
  return Status::ok();
}

Status Archiver::sweep_next() {
  if (sweep_at_ >= sweep_order_.size()) {
    REPLOG_RETURN_IF_ERROR(look_around());
    auto origins = archive::origins_in_bucket(bucket_);
    if (!origins) return origins.status();
    sweep_order_ = std::move(origins).value();
    sweep_at_ = 0;
    if (sweep_order_.empty()) return Status::ok();
  }
  wanted_.insert(sweep_order_[sweep_at_++]);
  std::lock_guard lock(status_mu_);
  ++status_.counters.sweeps;
  return Status::ok();
}

// What a pull of `origin` will fetch: the chain of segments past what this
// node holds, and their bytes. A hole (segments past a missing one) is named.
Result<Archiver::Plan> Archiver::plan_origin(OriginId origin) {
  const uint64_t held = seq_of(store_.vector(), origin);
  auto listed = bucket_.list(archive::origin_prefix(origin), archive::segments_after(origin, held), 0);
  if (!listed) return listed.status();
  const auto names = segment_names(*listed, origin);
  Plan plan{origin, cover(names, held), 0};
  std::map<std::string, uint64_t> sizes;
  for (const auto& o : *listed) sizes[o.key] = o.size;
  for (const auto& n : plan.chain) plan.bytes += sizes[archive::segment_key(n)];
  const uint64_t reach = plan.chain.empty() ? held : plan.chain.back().last;
  auto beyond = std::max_element(names.begin(), names.end(), [](auto& x, auto& y) { return x.last < y.last; });
  std::lock_guard lock(status_mu_);
  // Segments past a hole: a deleted or lost object, never skipped over.
  if (beyond != names.end() && beyond->last > reach)
    status_.damaged[archive::origin_prefix(origin)] = "the archive lacks #" + std::to_string(reach + 1) +
                                                      " although it holds up to #" + std::to_string(beyond->last);
  else
    status_.damaged.erase(archive::origin_prefix(origin));
  status_.counters.bytes_planned += plan.bytes;
  return plan;
}

// Gets one segment and hands it to ingest; `gone` when it was merged away since the listing.
Status Archiver::take_segment(const SegmentName& name, bool& gone) {
  const std::string key = archive::segment_key(name);
  auto sealed = bucket_.get(key, archive::kMaxPlaintextBytes + archive::kChunkBytes);
  gone = !sealed && sealed.status().code() == Status::Code::kNotFound;
  if (!sealed) return gone ? Status::ok() : sealed.status();
  auto seg = archive::open_segment(keys_, key, *sealed);
  if (!seg) {
    std::lock_guard lock(status_mu_);
    status_.damaged[key] = seg.status().message();
    return Status::corruption(seg.status().message());
  }
  const size_t n = seg->updates.size();
  auto report = store_.ingest(std::move(seg->updates), {std::move(seg->head)});
  if (!report) return report.status();
  if (!report->refused.empty() && proven_fork(name.origin, name.last)) {
    // Another branch of a fork the node holds evidence of: what replay leaves out.
    std::lock_guard lock(status_mu_);
    ++status_.counters.branch_segments;
    return Status::ok();
  }
  if (!report->refused.empty() || report->accepted + report->duplicates < n) {
    std::lock_guard lock(status_mu_);
    status_.damaged[key] = report->refused.empty() ? "its updates were held back (their key is no member's?)"
                                                   : report->refused.front().detail;
    return Status::corruption(key + ": refused: " + status_.damaged[key]);
  }
  // What the archive holds is a prefix only when it joins the one known.
  if (auto k = archived_.find(name.origin); k != archived_.end() && k->second + 1 >= name.first)
    k->second = std::max(k->second, name.last);
  ArchiveCounters progress;
  {
    std::lock_guard lock(status_mu_);
    ++status_.counters.segments_got;
    status_.counters.updates_got += n;
    status_.counters.bytes_got += sealed->size();
    status_.counters.updates_stored += report->accepted;
    if (archived_.count(name.origin)) status_.archived[name.origin] = archived_[name.origin];
    status_.damaged.erase(key);
    progress = status_.counters;
  }
  if (options_.on_progress) options_.on_progress(progress);
  return Status::ok();
}

// Whether the node holds evidence that `origin` forked at or below `seq`.
bool Archiver::proven_fork(OriginId origin, uint64_t seq) const {
  for (const std::string& evidence : store_.evidence()) {
    auto name = archive::evidence_name(evidence);
    if (name && name->origin == origin && name->fork_seq <= seq) return true;
  }
  return false;
}

// Takes a plan's segments in order; a segment merged away since the listing
// makes it list again (at most three times).
Status Archiver::pull_origin(Plan plan) {
  for (int listing = 0; listing < 3; ++listing) {
    bool gone = false;
    for (const SegmentName& name : plan.chain) {
      REPLOG_RETURN_IF_ERROR(take_segment(name, gone));
      if (gone) break;
    }
    if (!gone) return Status::ok();
    auto again = plan_origin(plan.origin);
    if (!again) return again.status();
    plan = std::move(again).value();
  }
  return Status::io_error("archive: the segments of " + hex16(plan.origin) + " kept moving while being read");
}

}  // namespace replog
