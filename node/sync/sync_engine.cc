#include "node/sync/sync_engine.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "protocol/limits.h"
#include "node/sync/endpoint.h"
#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "protocol/msgpack_codec.h"
#include "storage/identity.h"

namespace replog {

SyncEngine::SyncEngine(SyncStore& node, Transport& transport, const Clock& clock, SyncOptions options, Log log)
    : node_(node),
      transport_(transport),
      clock_(clock),
      options_(std::move(options)),
      log_(std::move(log)),
      rng_(options_.seed ? options_.seed : std::random_device{}()) {
  hello_.cluster = node_.cluster_id();
  hello_.endpoint = options_.endpoint;
  hello_.max_update = limits::kMaxUpdateBytes;
  hello_.max_frame = wire::kMaxFrameBytes;
  // Membership spreads only between authenticated devices.
  hello_.features = spreads_members() ? wire::kFeatures : wire::kFeatures & ~wire::kFeatureMembers;
  hello_.features &= ~options_.features_off;
  if (options_.members) members_generation_ = options_.members->generation();
  if (!options_.own_key.empty() && !options_.device_secret.empty()) {
    auto curve = curve_public_key(options_.own_key);
    if (curve) own_curve_key_ = std::move(curve).value();
    else log_(0, "Hellos go unsigned: " + curve.status().message());
  }
  refresh_hello();
  finished_->wake = &transport_;
}

SyncEngine::~SyncEngine() {
  std::lock_guard<std::mutex> l(finished_->mu);
  finished_->wake = nullptr;  // ingests still out finish without us
}

// Signed once per node id: the node moves to a fresh origin at runtime (a
// fork of its own, or another node writing in its name), and its Hello must
// name the new one, with the key that proves it.
void SyncEngine::refresh_hello() {
  const OriginId id = node_.node_id();
  if (id == hello_.node_id && (hello_.proof || own_curve_key_.empty())) return;
  // The origin with its key, read together: the store may move between two reads.
  const OwnOriginKey own = node_.own_origin_key();
  hello_.node_id = own.key.empty() ? id : own.origin;
  hello_.proof.reset();
  if (own_curve_key_.empty()) return;
  proof::HelloProof p;
  p.device = options_.own_key;
  p.signature = proof::sign_hello(hello_.cluster, own_curve_key_, hello_.node_id, options_.device_secret);
  if (!own.key.empty() && own.key != options_.own_key) {
    p.key = own.key;
    p.cert = own.cert;
  }
  hello_.proof = std::move(p);
}

// PROTOCOL.md §2 "Handshake". Without keys a signature binds nothing to the
// link (anyone can repeat it), so it is checked but the peer is not bound.
Status SyncEngine::check_hello(const wire::Hello& h, const std::string& link_key, bool& bound) const {
  bound = false;
  if (!h.proof) {
    // A node that verifies origins signs every Hello on a link that
    // authenticates devices: one that does not is not what it claims to be.
    // Older nodes (no feature bit 1) never sign and are still heard.
    if (!link_key.empty() && (h.features & wire::kFeatureSigned))
      return Status::invalid_argument("a Hello with feature bit 1 on an authenticated link carries no signature");
    return Status::ok();
  }
  if (!link_key.empty() && h.proof->device != link_key)
    return Status::invalid_argument("the Hello is signed by device " + format_device_id(h.proof->device) +
                                    ", not by the link's");
  auto curve = curve_public_key(h.proof->device);
  if (!curve) return curve.status();
  REPLOG_RETURN_IF_ERROR(proof::check_hello(*h.proof, hello_.cluster, *curve, h.node_id));
  bound = !link_key.empty();
  return Status::ok();
}

bool SyncEngine::VectorAssembly::add(const wire::Vector& v) {
  if (v.page == 0) {
    entries.clear();
    tips.clear();
    pages = v.pages;
  } else if (v.page != next_page || v.pages != pages) {
    entries.clear();
    tips.clear();
    next_page = 0;
    pages = 0;
    return false;
  }
  for (const auto& [origin, seq] : v.entries) entries[origin] = seq;
  for (const auto& [origin, tip] : v.tips) tips[origin] = tip;
  next_page = v.page + 1;
  return next_page == pages;
}

void SyncEngine::start() {
  mine_ = node_.vector();
  for (const auto& ep : options_.peers) {
    auto key = options_.peer_keys.find(ep);
    auto how = options_.peer_how.find(ep);
    add_peer(ep, key == options_.peer_keys.end() ? std::string() : key->second,
             how == options_.peer_how.end() ? "static" : how->second);
  }
  next_round_ms_ = clock_.now_millis() + static_cast<int64_t>(rng_() % static_cast<uint64_t>(options_.anti_entropy_ms + 1));
  on_tick();
}

void SyncEngine::add_peer(const std::string& endpoint, const std::string& device_key, const std::string& how) {
  if (peers_.count(endpoint)) return;
  if (Status s = transport_.connect_to(endpoint, device_key); !s) {
    log_(0, "peer " + endpoint + ": " + s.message());
    return;
  }
  Peer& p = peers_[endpoint];
  p.endpoint = endpoint;
  p.key = device_key;
  p.how = how;
  p.dialled_ms = clock_.now_millis();
}

bool SyncEngine::linked_to(const std::string& device_key) const {
  return std::any_of(peers_.begin(), peers_.end(),
                     [&](const auto& e) { return e.second.key == device_key || e.second.id == device_key; });
}

void SyncEngine::dial_discovered(const std::string& endpoint, const std::string& device_key) {
  if (device_key.empty() || device_key == options_.own_key || linked_to(device_key)) return;
  open_learned(device_key, endpoint, device_key, "discovered");
}

// A configured link that never became ready is opened afresh after 5 s, then
// 10, 20 and every 30 s: a link refused in its handshake (a device that did
// not trust this one yet) is not retried by the transport by itself.
void SyncEngine::redial_unready_peers(int64_t now) {
  for (auto& [endpoint, p] : peers_) {
    // Not while a refusal's wait runs (another cluster, a self-link: hello_sent_ms is ahead).
    if (p.ready || p.learned || p.hello_sent_ms > now) continue;
    const int64_t wait = std::min<int64_t>(int64_t{5000} << std::min(p.redials, 3), 30'000);
    if (now - p.dialled_ms < wait) continue;
    transport_.disconnect(endpoint);
    if (Status s = transport_.connect_to(endpoint, p.key); !s) log_(0, "peer " + endpoint + ": " + s.message());
    release_pulls(p);
    p.dialled_ms = now;
    ++p.redials;
    p.hello_attempts = 0;
    p.hello_sent_ms = -1;
  }
}

void SyncEngine::forget_device(const std::string& device_key) {
  if (device_key.empty()) return;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (it->second.key != device_key && it->second.id != device_key) {
      ++it;
      continue;
    }
    release_pulls(it->second);
    transport_.disconnect(it->first);
    it = peers_.erase(it);
  }
  std::erase_if(incoming_, [&](const auto& e) { return e.second.id == device_key; });
  connect_backs_.erase(device_key);
  incoming_vectors_.erase(device_key);
}

SyncEngine::PeerId SyncEngine::peer_id(const std::string& key, OriginId node_id) {
  return key.empty() ? u64_be(node_id) : key;
}

SyncEngine::PeerId SyncEngine::self_id() const { return peer_id(options_.own_key, hello_.node_id); }

uint64_t SyncEngine::link_features(const Link& link) const {
  if (link.outgoing) {
    auto it = peers_.find(link.key);
    return it != peers_.end() ? it->second.features : 0;
  }
  auto it = incoming_.find(link.key);
  return it != incoming_.end() ? it->second.features : 0;
}

void SyncEngine::send(const Link& link, const wire::Message& m) {
  std::string bytes = wire::encode(m);
  if (link_features(link) & wire::kFeatureCompress)
    if (auto smaller = wire::compress(bytes)) bytes = std::move(*smaller);
  ++counters_.frames_out;
  counters_.bytes_out += bytes.size();
  if (link.outgoing)
    if (auto it = peers_.find(link.key); it != peers_.end()) it->second.bytes_sent += bytes.size();
  transport_.send(link, bytes);
}

void SyncEngine::send_hello(Peer& p) {
  p.hello_sent_ms = clock_.now_millis();
  ++p.hello_attempts;
  send(Link{true, p.endpoint}, hello_);
}

namespace {
// What a Vector entry carries of a chain: its first wire::kTipBytes.
std::string tip_of(const SyncStore::ChainTip& t) {
  return std::string(reinterpret_cast<const char*>(t.chain.data()), wire::kTipBytes);
}
}  // namespace

// `tips`: the link is signed, so the chain tips go along (PROTOCOL.md §8 "On the wire").
void SyncEngine::send_vector(const Link& link, bool reply, bool tips) {
  mine_ = node_.vector();
  const auto tip = tips ? node_.tips() : std::map<OriginId, SyncStore::ChainTip>{};
  std::vector<std::pair<uint64_t, uint64_t>> all;
  for (const auto& [origin, seq] : mine_) all.emplace_back(origin, seq);
  uint32_t pages = static_cast<uint32_t>(std::max<size_t>(1, (all.size() + wire::kVectorPageEntries - 1) / wire::kVectorPageEntries));
  for (uint32_t page = 0; page < pages; ++page) {
    wire::Vector v;
    v.page = page;
    v.pages = pages;
    v.reply = reply;
    size_t begin = page * wire::kVectorPageEntries;
    size_t end = std::min(all.size(), begin + wire::kVectorPageEntries);
    v.entries.assign(all.begin() + static_cast<long>(begin), all.begin() + static_cast<long>(end));
    for (size_t i = begin; i < end; ++i)
      if (auto t = tip.find(all[i].first); t != tip.end() && t->second.seq == all[i].second) v.tips[t->first] = tip_of(t->second);
    send(link, v);
  }
}

// A small diff (kFeatureDiff, PROTOCOL.md "A small diff in one round trip"):
// the runs that bring a peer from `from` (per origin, the first seq it lacks)
// up to this node's vector, each ending at a head on a signed link. All of
// them or none: when they do not fit kDiffBytes of bodies, the peer is
// catching up, and its pulls do that without the same bytes sent twice.
std::vector<Range> SyncEngine::small_diff(const VersionVector& mine, const std::map<OriginId, uint64_t>& from,
                                          bool signed_link) {
  std::vector<Range> out;
  if (from.empty()) return out;
  size_t budget = wire::kDiffBytes;
  for (const auto& [origin, first] : from) {
    const uint64_t last = seq_of(mine, origin);
    if (first > last) continue;
    if (budget == 0 || out.size() >= wire::kMaxPushHeads) return {};
    auto range = node_.read_range(origin, first, last - first + 1, budget);
    if (!range || range->updates.empty() || range->updates.back().seq() != last || (signed_link && !range->head))
      return {};
    for (const Update& u : range->updates) {
      if (u.body().size() > budget) return {};
      budget -= u.body().size();
    }
    out.push_back(std::move(range).value());
  }
  return out;
}

// A round with `p`: with kFeatureDiff, first a Push of the small diff it
// lacks by what this node knows, then the Vector. What it lacks: updates never
// pushed to it (above `their`), and, when the link has been quiet for
// kInFlightMs since a push, those pushed since the last frame heard from it,
// which the link may have lost. Origins that reach it otherwise (relay trees)
// are left to it.
void SyncEngine::start_round(Peer& p) {
  const bool signed_link = (p.features & wire::kFeatureSigned) != 0;
  if ((p.features & wire::kFeatureDiff) && !p.their.empty()) {
    const bool quiet = p.unheard_since_ms >= 0 && clock_.now_millis() - p.unheard_since_ms >= kInFlightMs;
    const VersionVector held = node_.vector();
    std::map<OriginId, uint64_t> from;
    for (const auto& [origin, mine] : held) {
      if (is_reserved_origin(origin) || forked_.count(origin) || reaches_otherwise(p, origin)) continue;
      uint64_t first = seq_of(p.their, origin) + 1;
      if (auto u = p.unheard.find(origin); u != p.unheard.end() && quiet) first = std::min(first, u->second);
      if (first <= mine) from[origin] = first;
    }
    wire::Push push;
    for (Range& r : small_diff(held, from, signed_link)) {
      uint64_t& theirs = p.their[r.updates.front().id().origin];
      theirs = std::max(theirs, r.updates.back().seq());
      std::move(r.updates.begin(), r.updates.end(), std::back_inserter(push.updates));
      if (signed_link) push.heads.push_back(std::move(*r.head));
    }
    if (!push.updates.empty()) {
      counters_.updates_sent += push.updates.size();
      p.updates_sent += push.updates.size();
      send(Link{true, p.endpoint}, push);
    }
  }
  send_vector(Link{true, p.endpoint}, false, signed_link);
}

// Answering a round's Vector with kFeatureDiff: the small diff it says the
// peer lacks, as Updates ahead of the answer's Vector; nothing when the peer
// lacks more (its pulls take that).
VersionVector SyncEngine::answer_diff(const Link& link, const VersionVector& theirs, bool signed_link) {
  VersionVector sent;
  const VersionVector held = node_.vector();
  std::map<OriginId, uint64_t> from;
  for (const auto& [origin, mine] : held)
    if (mine > seq_of(theirs, origin) && !is_reserved_origin(origin) && !forked_.count(origin))
      from[origin] = seq_of(theirs, origin) + 1;
  for (Range& r : small_diff(held, from, signed_link)) {
    wire::Updates u;
    u.origin = r.updates.front().id().origin;
    sent[u.origin] = r.updates.back().seq();
    counters_.updates_sent += r.updates.size();
    u.updates = std::move(r.updates);
    if (signed_link) u.head = std::move(r.head);
    send(link, u);
  }
  return sent;
}

void SyncEngine::on_frame(const Frame& frame) { on_frames({frame}); }

void SyncEngine::on_frames(const std::vector<Frame>& frames) {
  finish_ingests();
  const int64_t now = clock_.now_millis();
  for (const auto& f : frames) {
    if (blocked(f, now)) {
      ++counters_.blocked_frames;
      continue;
    }
    const uint64_t bad = counters_.bad_frames;
    // Nothing a peer sends may stop the node: an exception from any path a
    // frame takes is counted and logged like a bad frame.
    try {
      handle_frame(f);
    } catch (const std::exception& e) {
      ++counters_.bad_frames;
      log_(1, std::string("a frame failed: ") + e.what());
    }
    if (counters_.bad_frames != bad) note_bad(f, now);
  }
  serve_requests();
  flush_received();  // the pushes of one poll are stored in one commit
  poll_seen_.clear();
}

// Who sent a frame, for cutting off a bad source: its device when the
// transport authenticated it, else the link (a connection's routing id
// changes when it reconnects; only keys make the block stick).
std::string SyncEngine::source_of(const Frame& frame) {
  if (!frame.peer_key.empty()) return "k" + frame.peer_key;
  return (frame.link.outgoing ? "o" : "i") + frame.link.key;
}

bool SyncEngine::blocked(const Frame& frame, int64_t now) {
  if (offenders_.empty()) return false;
  auto it = offenders_.find(source_of(frame));
  return it != offenders_.end() && now < it->second.blocked_until_ms;
}

void SyncEngine::note_bad(const Frame& frame, int64_t now) {
  if (offenders_.size() >= 4096)  // forget sources that are neither blocked nor recent
    std::erase_if(offenders_, [&](const auto& e) {
      return now >= e.second.blocked_until_ms && now - e.second.window_start_ms > kBadWindowMs;
    });
  Offender& o = offenders_[source_of(frame)];
  if (now - o.window_start_ms > kBadWindowMs) {
    o.window_start_ms = now;
    o.bad = 0;
  }
  if (++o.bad <= kBadFramesAllowed) return;
  o.blocked_until_ms = now + (kBlockMs << std::min(o.strikes, 4));
  ++o.strikes;
  o.bad = 0;
  ++counters_.blocks;
  log_(1, std::string("a peer sent more than ") + std::to_string(kBadFramesAllowed) + " bad frames in " +
              std::to_string(kBadWindowMs / 1000) + " s: not heard for " +
              std::to_string((o.blocked_until_ms - now) / 1000) + " s" +
              (frame.peer_key.empty() ? "" : " (device " + format_device_id(frame.peer_key) + ")"));
}

void SyncEngine::handle_frame(const Frame& frame) {
  ++counters_.frames_in;
  counters_.bytes_in += frame.bytes.size();
  if (frame.link.outgoing)
    if (auto it = peers_.find(frame.link.key); it != peers_.end()) it->second.bytes_received += frame.bytes.size();
  auto m = wire::decode(frame.bytes, (link_features(frame.link) & wire::kFeatureCompress) != 0);
  if (!m) {
    serve_requests();  // what came before it is answered before its Error
    ++counters_.bad_frames;
    log_(3, "dropped a bad frame from " + std::string(frame.link.outgoing ? "peer " : "connection ") + (frame.link.outgoing ? frame.link.key : "(incoming)") + ": " + m.status().message());
    if (!frame.link.outgoing) {
      wire::ErrorCode code = m.status().code() == Status::Code::kRefused ? wire::ErrorCode::kVersion : wire::ErrorCode::kMalformed;
      send(frame.link, wire::Error{code, m.status().message()});
    }
    return;
  }
  // Requests waiting to be served go out before anything else on their link.
  if (!serving_.requests.empty() &&
      (frame.link.outgoing || frame.link.key != serving_.link.key || !std::holds_alternative<wire::Request>(*m)))
    serve_requests();
  if (frame.link.outgoing) {
    auto it = peers_.find(frame.link.key);
    if (it != peers_.end()) handle_outgoing(it->second, *m);
  } else {
    handle_incoming(frame, *m);
  }
}

// A link's Requests that came one after another in a poll, answered in their
// order from one read of the log (SyncStore::read_ranges): with many origins
// interleaved in the log, one walk in key order reads each body as the next
// entry where one range at a time looked each up from the root.
void SyncEngine::serve_requests() {
  Serving s = std::move(serving_);
  serving_ = Serving{};
  if (s.requests.empty()) return;
  // Whatever fails here fails these answers alone (their pulls time out and
  // go elsewhere): never the frame whose arrival sent them.
  try {
    serve(s);
  } catch (const std::exception& e) {
    log_(1, std::string("serving requests failed: ") + e.what());
  }
}

void SyncEngine::serve(Serving& s) {
  const auto servable = [](const wire::Request& r) {
    return r.to_seq >= r.from_seq && r.from_seq > 0 && !is_reserved_origin(r.origin);
  };
  std::vector<RangeAsk> asks;
  for (const wire::Request& r : s.requests)
    if (servable(r))
      // max_bytes 0 counts as 1: a held update is always returned, so a pull progresses.
      asks.push_back({r.origin, r.from_seq, r.to_seq - r.from_seq + 1, std::clamp<size_t>(r.max_bytes, 1, wire::kMaxBatchBytes)});
  std::vector<Result<Range>> ranges = node_.read_ranges(asks);
  Peer* sender = peer_by_id(s.peer);
  size_t k = 0;
  for (const wire::Request& r : s.requests) {
    wire::Updates reply;
    reply.origin = r.origin;
    if (servable(r) && k < ranges.size()) {
      const uint64_t asked = asks[k].max_count;
      Result<Range>& range = ranges[k++];
      if (range) {
        reply.updates = std::move(range->updates);
        if (s.signed_link) reply.head = std::move(range->head);
        counters_.updates_sent += reply.updates.size();
        if (sender) sender->updates_sent += reply.updates.size();
        // More: stopped for the byte limit while the next seq of the range is held.
        reply.more = !reply.updates.empty() && reply.updates.size() < asked && range->next_held;
      } else {
        log_(0, "serving a range: " + range.status().message());
      }
    }
    send(s.link, reply);
  }
}

// A Hello on an outgoing link: the peer's answer to ours. Makes the link
// ready, unless the peer is of another cluster, other limits, or ourselves.
void SyncEngine::handle_outgoing_hello(Peer& p, const wire::Hello& h, int64_t now) {
  if (h.cluster != hello_.cluster) {
    log_(0, "peer " + p.endpoint + " is in cluster " + h.cluster + ", not " + hello_.cluster + ": not syncing with it");
    p.ready = false;
    p.hello_sent_ms = now + 60'000;
    return;
  }
  if (h.max_update != hello_.max_update || h.max_frame != hello_.max_frame) {
    log_(0, "peer " + p.endpoint + " announces other size limits: not syncing with it");
    p.ready = false;
    p.hello_sent_ms = now + 60'000;
    return;
  }
  bool bound = false;
  if (Status s = check_hello(h, p.key, bound); !s) {
    log_(0, "peer " + p.endpoint + ": its Hello is refused, not syncing with it for 60 s: " + s.message());
    p.ready = false;
    p.origin_bound = false;
    p.hello_sent_ms = now + 60'000;
    return;
  }
  if (peer_id(p.key, h.node_id) == self_id()) {
    p.ready = false;
    p.hello_sent_ms = INT64_MAX / 2;  // a link to ourselves: never again
    return;
  }
  if (!p.ready) log_(2, "peer " + p.endpoint + " ready (node " + hex16(h.node_id) + ")");
  release_pulls(p);  // asked of a connection that is gone; ask again
  p.ready = true;
  p.hello_attempts = 0;
  p.redials = 0;
  p.node_id = h.node_id;
  p.origin_bound = bound;
  p.id = peer_id(p.key, h.node_id);
  p.features = h.features & hello_.features;
  p.reverify_asked = false;
  // A new connection: the tree starts afresh; what was pushed since the peer
  // was last heard (`unheard`) may have gone with the old one, and goes again.
  p.lazy.clear();
  note_lazy_changed();
  p.hears.clear();
  p.have_out.clear();
  if (tree_link(p)) {
    wire::Tree t;
    t.hears = hears_sent_;
    send(Link{true, p.endpoint}, t);
  }
  start_round(p);  // sync at once rather than at the next round
  if (p.features & wire::kFeatureMembers) send_members(p);
  if (p.features & wire::kFeatureSigned) send_evidence(&p);
}

void SyncEngine::handle_outgoing(Peer& p, wire::Message& m) {
  const int64_t now = clock_.now_millis();
  p.last_seen_ms = now;
  if (auto* h = std::get_if<wire::Hello>(&m)) {
    handle_outgoing_hello(p, *h, now);
    return;
  }
  heard_from(p);  // a Hello is not: it may follow a connection lost with pushes in it
  if (auto* e = std::get_if<wire::Error>(&m)) {
    log_(1, "peer " + p.endpoint + " says: " + e->message);
    if (e->code == wire::ErrorCode::kCluster || e->code == wire::ErrorCode::kVersion ||
        e->code == wire::ErrorCode::kUnbound) {
      p.ready = false;
      p.hello_sent_ms = now + 60'000;
    } else if (e->code == wire::ErrorCode::kHelloFirst) {
      p.ready = false;  // it restarted and forgot us: handshake again
      release_pulls(p);
      send_hello(p);
    }
  } else if (auto* v = std::get_if<wire::Vector>(&m)) {
    if (!p.ready) return;
    if (p.incoming_vector.add(*v)) {
      auto theirs = std::move(p.incoming_vector.entries);
      auto tips = std::move(p.incoming_vector.tips);
      p.incoming_vector = VectorAssembly{};
      learn_vector(p.id, theirs, tips);
    }
  } else if (auto* u = std::get_if<wire::Updates>(&m)) {
    auto pull = pulls_.find(u->origin);
    // Only the answer to the pull that is out closes it: a repeated or late
    // answer must not let a second request for the origin go out.
    const bool answers_pull = pull != pulls_.end() && pull->second.endpoint == p.endpoint &&
                              (u->updates.empty() || u->updates.front().seq() == pull->second.from_seq);
    if (answers_pull) {
      p.credit_used -= std::min(p.credit_used, pull->second.bytes);
      pulls_.erase(pull);
    }
    if (u->updates.empty()) {
      // It does not hold what it claimed: believe what we hold until its next
      // vector, rather than asking again at once.
      p.their[u->origin] = seq_of(node_.vector(), u->origin);
    } else if (u->more) {
      // Ask for the next range before storing this one, so that the peer reads
      // it while we write (one request per origin is still all that is out).
      const uint64_t last = u->updates.back().seq();
      auto their = p.their.find(u->origin);
      if (their != p.their.end() && their->second > last && !pulls_.count(u->origin) &&
          p.credit_used < options_.credit_bytes) {
        const size_t bytes = pull_bytes(p);
        send(Link{true, p.endpoint}, wire::Request{u->origin, last + 1, their->second, bytes});
        pulls_[u->origin] =
            Pull{p.endpoint, last + 1, their->second, bytes, clock_.now_millis() + options_.request_timeout_ms};
        p.credit_used += bytes;
      }
    }
    if (u->updates.empty()) {
      pull_missing(p);
      return;
    }
    keep_answer(p, *u, answers_pull);
  } else if (auto* members = std::get_if<wire::Members>(&m)) {
    if (p.ready) take_members(p.key, *members);
  } else if (auto* e = std::get_if<wire::Evidence>(&m)) {
    if (p.ready) take_evidence(e->evidence);
  } else if (auto* t = std::get_if<wire::Tree>(&m)) {
    if (p.ready && tree_link(p)) take_tree(p, *t);
  } else {
    ++counters_.bad_frames;
    log_(3, std::string("peer ") + p.endpoint + " sent a " + wire::type_name(m) + " on a link where it answers; dropped");
  }
}

// A Hello on an incoming link: answered with ours, or refused (another
// cluster, other limits, a signature that does not bind the link).
void SyncEngine::handle_incoming_hello(const Frame& frame, const wire::Hello& h) {
  const Link& link = frame.link;
  if (h.cluster != hello_.cluster) {
    send(link, wire::Error{wire::ErrorCode::kCluster, "this node is in cluster " + hello_.cluster});
    return;
  }
  if (h.max_update != hello_.max_update || h.max_frame != hello_.max_frame) {
    send(link, wire::Error{wire::ErrorCode::kVersion, "size limits differ from protocol version 1's"});
    return;
  }
  bool bound = false;
  if (Status s = check_hello(h, frame.peer_key, bound); !s) {
    ++counters_.bad_frames;  // a source that repeats it is cut off like any sender of bad frames
    log_(1, "refused the Hello of " +
                (frame.peer_key.empty() ? "node " + hex16(h.node_id) : "device " + format_device_id(frame.peer_key)) +
                ": " + s.message());
    if (auto it = incoming_.find(link.key); it != incoming_.end()) {
      incoming_vectors_.erase(it->second.id);
      incoming_.erase(it);
    }
    send(link, wire::Error{wire::ErrorCode::kUnbound, s.message()});
    return;
  }
  bool fresh = !incoming_.count(link.key);
  const PeerId id = peer_id(frame.peer_key, h.node_id);
  admit_incoming(link.key, id, h.features & hello_.features);
  send(link, hello_);
  if (fresh) connect_back(id, h.endpoint, frame.peer_key);
}

// A Push on an incoming link: kept for flush_received, which stores a poll's
// pushes in one commit.
void SyncEngine::take_push(const Link& link, Peer* from, bool tree, wire::Push& push) {
  if (from && tree) prune_duplicates(link, *from, push);
  if (from) note_their(*from, push.updates);  // it holds them, whether or not they are kept here
  // While the store is slow, what waits for it is bounded: the loop no longer
  // waits for the store, so a peer could otherwise fill memory. What is
  // dropped is pulled once the store has caught up (the sender's vector says
  // it holds it).
  size_t bytes = 0;
  for (const auto& u : push.updates) bytes += u.body().size();
  if (waiting_bytes_ + bytes > options_.max_waiting_push_bytes) {
    counters_.pushes_dropped += push.updates.size();
    return;
  }
  waiting_bytes_ += bytes;
  // What verifies here goes on now, not once the writer has finished what it
  // holds (a commit, often). Only what a peer lacks is verified here: the
  // writer verifies one head per origin of a batch, and this one per Push.
  if (options_.relay_ahead && relays_on(push.updates)) {
    SyncStore::VerifiedAhead ahead = node_.verify_ahead(push.updates, push.heads);
    if (!ahead.updates.empty()) {
      on_verified(ahead.updates, ahead.heads);
      relay_now_ = true;
    }
  }
  // Runs of one origin from two peers are not judged as one: they may push
  // overlapping runs (of two branches, after a fork), and a run mixed of
  // both chains to neither head. What this poll gathered is stored first.
  if (std::any_of(push.updates.begin(), push.updates.end(), [&](const Update& u) {
        auto it = gathering_.origins.find(u.id().origin);
        return it != gathering_.origins.end() && it->second != link.key;
      }))
    flush_received();
  for (const auto& u : push.updates) gathering_.origins.emplace(u.id().origin, link.key);
  if (from) {
    from->updates_received += push.updates.size();
    gathering_.sources.insert(from->endpoint);
    for (const auto& u : push.updates)  // bounded as note_their bounds a peer's vector
      if (pushed_by_.size() < kMaxKnownOrigins || pushed_by_.count(u.id().origin))
        pushed_by_[u.id().origin] = from->endpoint;
  }
  for (auto& u : push.updates) gathering_.updates.push_back(std::move(u));
  for (auto& h : push.heads) gathering_.heads.push_back(std::move(h));
}

void SyncEngine::handle_incoming(const Frame& frame, wire::Message& m) {
  const Link& link = frame.link;
  if (auto* h = std::get_if<wire::Hello>(&m)) {
    handle_incoming_hello(frame, *h);
    return;
  }
  auto who = incoming_.find(link.key);
  if (who == incoming_.end()) {
    send(link, wire::Error{wire::ErrorCode::kHelloFirst, "say hello first"});
    return;
  }
  const PeerId id = who->second.id;
  const bool signed_link = (who->second.features & wire::kFeatureSigned) != 0;
  Peer* sender = peer_by_id(id);  // its traffic counts for the peer it is (PeerStatus)
  const bool tree = (who->second.features & wire::kFeatureTree) != 0;
  if (sender) {
    sender->bytes_received += frame.bytes.size();
    heard_from(*sender);
  }
  if (auto* v = std::get_if<wire::Vector>(&m)) {
    if (incoming_vectors_[id].add(*v)) {
      auto theirs = std::move(incoming_vectors_[id].entries);
      auto tips = std::move(incoming_vectors_[id].tips);
      incoming_vectors_.erase(id);
      VersionVector sent;  // the diff sent with the answer: the peer holds it once it arrives
      if (!v->reply) {
        if (who->second.features & wire::kFeatureDiff) sent = answer_diff(link, theirs, signed_link);
        send_vector(link, true, signed_link);
      }
      learn_vector(id, theirs, tips);
      if (Peer* p = peer_by_id(id); p && !sent.empty())
        for (const auto& [origin, seq] : sent) p->their[origin] = std::max(p->their[origin], seq);
    }
  } else if (auto* r = std::get_if<wire::Request>(&m)) {
    // Answered with the link's next Requests of this poll (serve_requests).
    if (serving_.requests.empty()) serving_ = Serving{link, id, signed_link, {}, 0};
    serving_.requests.push_back(*r);
    serving_.bytes += std::clamp<size_t>(r->max_bytes, 1, wire::kMaxBatchBytes);
    if (serving_.bytes >= options_.credit_bytes) serve_requests();
  } else if (auto* p = std::get_if<wire::Push>(&m)) {
    take_push(link, sender, tree, *p);
  } else if (auto* members = std::get_if<wire::Members>(&m)) {
    take_members(frame.peer_key, *members);
  } else if (auto* e = std::get_if<wire::Evidence>(&m)) {
    take_evidence(e->evidence);
  } else if (auto* t = std::get_if<wire::Tree>(&m)) {
    if (sender && tree && tree_link(*sender)) take_tree(*sender, *t);
  } else {
    ++counters_.bad_frames;
    log_(3, std::string("a connection sent a ") + wire::type_name(m) + " where it asks; dropped");
  }
}

// At most kMaxIncoming incoming links are known (a reconnecting peer leaves
// its old routing id behind): the oldest is forgotten, and its next frame, if
// it still sends on it, gets Error 4. Two links of one id are not merged: two
// devices with one key (a copied directory) must not evict each other.
void SyncEngine::admit_incoming(const std::string& routing_id, const PeerId& id, uint64_t features) {
  if (!incoming_.count(routing_id) && incoming_.size() >= kMaxIncoming) {
    auto oldest = std::min_element(incoming_.begin(), incoming_.end(),
                                   [](const auto& a, const auto& b) { return a.second.since_ms < b.second.since_ms; });
    incoming_vectors_.erase(oldest->second.id);
    incoming_.erase(oldest);
  }
  incoming_[routing_id] = Incoming{id, clock_.now_millis(), features};
}

// Pulls from a node that connected to us, on a link of our own to the
// endpoint its Hello names: only a valid tcp://HOST:PORT, one link per peer,
// a bounded number of them, and a growing wait after each link that failed.
// With keys, the link accepts only the device that connected (its key came
// through the transport's trust check), whatever the endpoint.
void SyncEngine::connect_back(const PeerId& id, const std::string& endpoint, const std::string& key) {
  if (id == self_id() || endpoint.empty() || peer_by_id(id)) return;
  if (key.empty() && is_reserved_origin(get_u64_be(id.data()))) return;
  // With keys, a learned link to this device (or to this endpoint) that is
  // not ready gives way: the device has just said Hello, authenticated, so it
  // is up and admits this node now, while that link may be dead for good (a
  // beacon's source address it does not listen on, or a handshake it refused
  // before it trusted this node, which ZeroMQ never retries). Its back-off is
  // forgiven. Without keys a Hello proves nothing: one link per node id, and
  // the back-off holds.
  bool replaced = false;
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = it->second;
    const bool same = (p.learned && p.learned_for == id) || it->first == endpoint;
    if (!same) {
      ++it;
      continue;
    }
    if (p.ready || !p.learned || key.empty()) return;  // a working, configured or unproven link stays
    if (clock_.now_millis() - p.learned_ms < kGiveWayAfterMs) {
      p.hello_seen = std::make_pair(endpoint, key);  // just dialled: its handshake may still succeed
      return;
    }
    release_pulls(p);
    transport_.disconnect(it->first);
    it = peers_.erase(it);
    replaced = true;
  }
  if (replaced || !key.empty()) connect_backs_[id].not_before_ms = 0;  // an authenticated Hello: the device is up
  std::string how = options_.how_inbound && !key.empty() ? options_.how_inbound(key) : "";
  open_learned(id, endpoint, key, how.empty() ? "inbound" : how);
}

bool SyncEngine::open_learned(const PeerId& id, const std::string& endpoint, const std::string& key,
                              const std::string& how) {
  const int64_t now = clock_.now_millis();
  ConnectBack& cb = connect_backs_[id];
  size_t learned = std::count_if(peers_.begin(), peers_.end(), [](const auto& e) { return e.second.learned; });
  Status s = check_peer_endpoint(endpoint);
  if (s && peers_.count(endpoint)) s = Status::busy("a link to the endpoint exists");
  if (s && now < cb.not_before_ms) s = Status::busy("backing off after a failed link");
  if (s && learned >= kMaxLearnedPeers) s = Status::busy("too many learned peers");
  if (s) s = transport_.connect_to(endpoint, key);
  if (!s) {
    ++counters_.refused_endpoints;
    log_(3, "not connecting to " + endpoint + " (" + how + "): " + s.message());
    return false;
  }
  Peer& p = peers_[endpoint];
  p.endpoint = endpoint;
  p.key = key;
  p.how = how;
  p.learned = true;
  p.learned_for = id;
  p.learned_ms = now;
  send_hello(p);
  return true;
}

// A learned link whose peer never answered is closed, and that node waits
// longer (1 s, 2 s, 4 s ... 64 s) before the next one.
void SyncEngine::drop_silent_learned_peers(int64_t now) {
  // Learned links whose device has dialled in meanwhile give way (connect_back).
  std::vector<std::tuple<PeerId, std::string, std::string>> give_way;
  for (const auto& [_, p] : peers_)
    if (p.learned && !p.ready && p.hello_seen && now - p.learned_ms >= kGiveWayAfterMs)
      give_way.emplace_back(p.learned_for, p.hello_seen->first, p.hello_seen->second);
  for (const auto& [id, endpoint, key] : give_way) connect_back(id, endpoint, key);
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& p = it->second;
    if (!p.learned || p.ready || now - p.learned_ms < kLearnedPeerGraceMs) {
      ++it;
      continue;
    }
    release_pulls(p);
    transport_.disconnect(p.endpoint);
    ConnectBack& cb = connect_backs_[p.learned_for];
    cb.not_before_ms = now + (int64_t{1000} << std::min(cb.failures, 6));
    ++cb.failures;
    log_(2, "learned peer " + p.endpoint + " never answered: link closed");
    it = peers_.erase(it);
  }
}

void SyncEngine::release_pulls(Peer& p) {
  for (auto it = pulls_.begin(); it != pulls_.end();) {
    if (it->second.endpoint == p.endpoint) it = pulls_.erase(it);
    else ++it;
  }
  p.credit_used = 0;
}

SyncEngine::Peer* SyncEngine::peer_by_id(const PeerId& id) {
  for (auto& [_, p] : peers_)
    if (p.ready && p.id == id) return &p;
  return nullptr;
}

void SyncEngine::learn_vector(const PeerId& id, const VersionVector& theirs,
                              const std::map<OriginId, std::string>& tips) {
  Peer* p = peer_by_id(id);
  if (!p) return;
  p->their = theirs;  // their own word replaces our guesses
  pull_missing(*p);
  reverify_from(*p);
  if (!tips.empty()) compare_tips(*p, tips);
}

// Equal seqs say nothing of which branch each side holds: two writers of one
// origin (a copied directory) may have come to one seq apart, and neither
// would ever pull from the other. Another tip at the seq both hold means
// another branch: the peer's last update of it, with its head, is asked for;
// it will not chain here (ingest says unchained), and pull_below() walks down
// to where the branches part, which proves the fork.
void SyncEngine::compare_tips(Peer& p, const std::map<OriginId, std::string>& theirs) {
  const auto mine = node_.tips();
  const int64_t now = clock_.now_millis();
  for (const auto& [origin, tip] : theirs) {
    auto own = mine.find(origin);
    if (own == mine.end() || tip_of(own->second) == tip || seq_of(p.their, origin) != own->second.seq) continue;
    const uint64_t seq = own->second.seq;
    if (forked_.count(origin) || pulls_.count(origin) || is_reserved_origin(origin)) continue;
    if (p.credit_used >= options_.credit_bytes) break;
    const size_t bytes = std::min(wire::kMaxBatchBytes, options_.credit_bytes - p.credit_used);
    send(Link{true, p.endpoint}, wire::Request{origin, seq, seq, bytes});
    pulls_[origin] = Pull{p.endpoint, seq, seq, bytes, now + options_.request_timeout_ms};
    p.credit_used += bytes;
    ++counters_.tip_mismatches;
  }
}

// The scan of `their` goes round from after the origin last asked for, and
// stops when the link's credit is used: a peer that names many origins it
// does not hold (each answered empty, then asked for the next) costs a step
// per answer, not a walk over all of them.
void SyncEngine::pull_missing(Peer& p) {
  if (!p.ready) return;
  mine_ = node_.vector();
  const int64_t now = clock_.now_millis();
  size_t bytes = 0;  // each request's share, worked out at the first one
  auto it = p.their.upper_bound(p.pulled_last);
  for (size_t left = p.their.size(); left > 0 && p.credit_used < options_.credit_bytes; --left, ++it) {
    if (it == p.their.end()) it = p.their.begin();
    const auto& [origin, their_seq] = *it;
    uint64_t have = held_or_coming(mine_, origin);  // what is on its way is not asked for again
    uint64_t want = their_seq;
    // A forked origin's updates from the fork seq on are left out of replay,
    // whichever branch is held: its prefix is all there is to pull. (Past it
    // the peer may hold the other branch, which would only be refused.)
    if (auto fork = forked_.find(origin); fork != forked_.end()) want = std::min(want, fork->second - 1);
    if (want <= have || pulls_.count(origin) || is_reserved_origin(origin)) continue;
    if (bytes == 0) bytes = pull_bytes(p);
    bytes = std::min(bytes, options_.credit_bytes - p.credit_used);
    send(Link{true, p.endpoint}, wire::Request{origin, have + 1, want, bytes});
    pulls_[origin] = Pull{p.endpoint, have + 1, want, bytes, now + options_.request_timeout_ms};
    p.credit_used += bytes;
    p.pulled_last = origin;
  }
}

// What one Request asks for. A catch-up from many origins asks each for an
// equal share of the link's credit (at least kMinPullBytes), so that the
// answers of one turn cover about the same stretch of time and are stored
// together near the log's end, rather than one origin's whole range at a time
// spread across the log.
// Counting stops where the share can only be kMinPullBytes, and starts
// where pull_missing's scan does, so that it finds the origins still lacking
// first.
size_t SyncEngine::pull_bytes(const Peer& p) const {
  const size_t enough = options_.credit_bytes / kMinPullBytes + 1;
  size_t lacking = 0;
  auto it = p.their.upper_bound(p.pulled_last);
  for (size_t left = p.their.size(); left > 0 && lacking < enough; --left, ++it) {
    if (it == p.their.end()) it = p.their.begin();
    if (it->second > seq_of(mine_, it->first) && !is_reserved_origin(it->first)) ++lacking;
  }
  const size_t share = std::clamp(options_.credit_bytes / std::max<size_t>(lacking, 1), kMinPullBytes,
                                  wire::kMaxBatchBytes);
  return std::min(share, options_.credit_bytes - std::min(p.credit_used, options_.credit_bytes));
}

// Updates held from before signed origins: once per link, asked for again
// from the verified seq, so that the head their range ends at attests them.
// Only after a whole vector of the peer: updates it sent first (a diff)
// raise `their` for some origins only.
void SyncEngine::reverify_from(Peer& p) {
  if (!p.ready || p.reverify_asked || !(p.features & wire::kFeatureSigned) || p.their.empty()) return;
  const int64_t now = clock_.now_millis();
  p.reverify_asked = true;
  for (const auto& [origin, verified] : node_.unverified()) {
    const uint64_t have = seq_of(mine_, origin);
    if (seq_of(p.their, origin) < have || pulls_.count(origin) || is_reserved_origin(origin)) continue;
    size_t bytes = wire::kMaxBatchBytes;
    send(Link{true, p.endpoint}, wire::Request{origin, verified + 1, have, bytes});
    pulls_[origin] = Pull{p.endpoint, verified + 1, have, bytes, now + options_.request_timeout_ms};
  }
}

// An origin new to `p.their` is noted only while it holds fewer origins than
// one whole Vector can carry: a peer that sends updates of ever new origins
// (refused here, but noted first) cannot grow it without end. Its next
// Vector replaces it.
void SyncEngine::note_their(Peer& p, const std::vector<Update>& updates) {
  for (const auto& u : updates) {
    const OriginId origin = u.id().origin;
    if (auto it = p.their.find(origin); it != p.their.end()) it->second = std::max(it->second, u.seq());
    else if (p.their.size() < kMaxKnownOrigins) p.their.emplace(origin, u.seq());
  }
}

bool SyncEngine::ingest(std::vector<Update> updates, std::vector<proof::Head> heads, Peer* from) {
  if (updates.empty()) return true;
  if (from) {
    note_their(*from, updates);
    from->updates_received += updates.size();
  }
  counters_.updates_received += updates.size();
  std::set<OriginId> origins;
  if (from)
    for (const auto& u : updates) origins.insert(u.id().origin);
  // The mark holds while this ingest runs, and goes when it returns or throws
  // (the loop goes on after an exception, and a stale mark would keep copies
  // from a peer that joins later).
  struct HeldMark {
    SyncEngine& engine;
    ~HeldMark() {
      std::lock_guard<std::mutex> l(engine.committed_mu_);
      engine.held_by_all_.clear();
    }
  };
  {
    std::lock_guard<std::mutex> l(committed_mu_);
    held_by_all_ = held_by_all(updates);
  }
  Result<IngestReport> report = [&] {
    HeldMark mark{*this};
    return node_.ingest(std::move(updates), std::move(heads));
  }();
  return after_ingest(report, origins, from);
}

std::map<OriginId, uint64_t> SyncEngine::held_by_all(const std::vector<Update>& updates) const {
  VersionVector top;
  raise_to(top, updates);
  std::erase_if(top, [&](const auto& e) { return lacked_by_a_peer(e.first, e.second); });
  return top;
}

bool SyncEngine::relays_on(const std::vector<Update>& updates) const {
  VersionVector top;
  raise_to(top, updates);
  return std::any_of(top.begin(), top.end(), [&](const auto& e) { return lacked_by_a_peer(e.first, e.second); });
}

bool SyncEngine::lacked_by_a_peer(OriginId origin, uint64_t seq) const {
  return std::any_of(peers_.begin(), peers_.end(), [&](const auto& entry) {
    const Peer& p = entry.second;
    return p.ready && relays_to(p, origin) && seq_of(p.their, origin) < seq;
  });
}

bool SyncEngine::after_ingest(const Result<IngestReport>& r, const std::set<OriginId>& origins, Peer* from) {
  if (!r) {
    log_(0, "storing received updates failed: " + r.status().message());
    // Pulling the same range again at once would fail alike, and every
    // duplicated answer would open one more pull: believe what we hold until
    // the sender's next vector.
    if (from) {
      const VersionVector held = node_.vector();
      for (OriginId origin : origins) from->their[origin] = seq_of(held, origin);
    }
    return false;
  }
  std::optional<VersionVector> held;  // read once, only when a refusal needs it
  for (const auto& refused : r->refused) {
    // A gap is routine (a push overtook a pull, and is pulled at once); anything
    // else is summed up by on_tick, at most one line per 5 s.
    // So is an update whose head was not in its frame: pulled as a gap is.
    if (refused.verdict == Verdict::kGap || refused.verdict == Verdict::kUnverified) continue;
    ++counters_.refused_updates;
    last_refusal_ = refused.detail;
    // Too far ahead of this clock, a fork, a quarantined origin: asking again
    // at once would get the same answer (and every duplicated answer would
    // open one more pull). Believe what we hold until the sender's next vector.
    if (from) {
      if (!held) held = node_.vector();
      from->their[refused.id.origin] = seq_of(*held, refused.id.origin);
    }
  }
  for (const auto& [origin, seq] : r->unchained) pull_below(origin, seq, from);
  if (r->forks) log_(0, "fork detected: two branches of one origin (replog status)");
  if (r->new_evidence) {
    below_.clear();
    send_evidence(nullptr);
  }
  if (r->origin_changed) {
    log_(1, "this node's origin was forked or written by another node: writing on as origin " +
                hex16(node_.node_id()) + " (replog status)");
    refresh_hello();
  }
  if (from) pull_missing(*from);
  return true;
}

// A head the origin's key signed, over bytes that do not chain from what this
// node holds: a relay altered them, or the origin forked below `seq` and its
// other branch's runs from the fork seq never came here (say, a copied
// directory's first pushes were lost with its crash). Pulls from `seq` on
// only ever meet the same refusal; a run from at or below the fork seq
// proves the fork (fork evidence). So the origin is asked for from further
// down each time, 8, 16, 32 ... seqs below, reaching the fork seq in a few
// round trips; an altered relay costs one pull.
void SyncEngine::pull_below(OriginId origin, uint64_t seq, Peer* from) {
  Peer* to = from;
  if (!to)
    if (auto by = pushed_by_.find(origin); by != pushed_by_.end())
      if (auto p = peers_.find(by->second); p != peers_.end()) to = &p->second;
  if (!to || !to->ready || pulls_.count(origin) || to->credit_used >= options_.credit_bytes) return;
  if (forked_.count(origin)) return;  // proved already: its other branch is expected
  uint64_t& below = below_[origin];
  below = below == 0 ? 8 : std::min<uint64_t>(below * 2, uint64_t{1} << 40);
  const uint64_t first = seq > below ? seq - below : 1;
  const uint64_t last = std::max(seq_of(to->their, origin), seq);
  const size_t bytes = std::min(wire::kMaxBatchBytes, options_.credit_bytes - to->credit_used);
  send(Link{true, to->endpoint}, wire::Request{origin, first, last, bytes});
  pulls_[origin] = Pull{to->endpoint, first, last, bytes, clock_.now_millis() + options_.request_timeout_ms};
  to->credit_used += bytes;
}

// Keeps a non-empty answer with the peer's others until flush_answers stores
// it. Only an answer to this node's own pull sets the origin's pace: unasked
// ones cannot grow the table past the origins pulled.
void SyncEngine::keep_answer(const Peer& p, wire::Updates& u, bool answers_pull) {
  Answer a{u.origin, std::move(u.updates), std::move(u.head), 0, 0};
  const uint64_t low = a.updates.front().id().hlc;
  for (const Update& update : a.updates) {
    a.top_seq = std::max(a.top_seq, update.seq());
    a.top_hlc = std::max(a.top_hlc, update.id().hlc);
  }
  const uint64_t steps = a.updates.size() - 1;
  if (answers_pull)
    answer_pace_[a.origin] = AnswerPace{a.top_hlc, steps > 0 && a.top_hlc > low ? (a.top_hlc - low) / steps : 0};
  answers_[p.endpoint].push_back(std::move(a));
}

// A catch-up from many origins asks each for a share (pull_bytes) and asks
// an origin for its next share as soon as its answer comes, so the answers of
// one turn arrive over several polls, and the next turn's begin before the
// last of this one's. Stored as they came, each commit would land among the
// keys of the one before (the origins' updates interleave in time): puts in
// the middle of the log instead of appends, and a fold deferred. So an answer
// is held back while another origin with a pull out to the same peer is
// expected to answer below it: its next update expected one mean step above
// its newest answer's top. An origin that has not answered yet holds nothing
// back (waiting for a whole first turn cost more than its stray puts saved).
// A wrong guess costs only speed, since anything may be stored below the
// head. What is held counts as coming (held_or_coming); a pull that times
// out stops holding anything back (on_tick flushes), and more than twice the
// link's credit held is stored whole.
void SyncEngine::flush_answers() {
  std::map<std::string, std::vector<Answer>> answers;
  answers.swap(answers_);
  for (auto& [endpoint, list] : answers) {
    std::optional<uint64_t> below;  // no answer to come from this peer is expected below this hlc
    for (const auto& [origin, pull] : pulls_) {
      if (pull.endpoint != endpoint) continue;
      auto pace = answer_pace_.find(origin);
      if (pace == answer_pace_.end()) continue;
      const uint64_t top = pace->second.top_hlc, step = pace->second.step;
      const uint64_t next = top > UINT64_MAX - step ? UINT64_MAX : top + step;
      below = below ? std::min(*below, next) : next;
    }
    size_t held_bytes = 0;
    for (const Answer& a : list)
      for (const Update& u : a.updates) held_bytes += u.body().size();
    const bool store_all = !below || held_bytes > 2 * options_.credit_bytes;
    std::vector<Update> updates;
    std::vector<proof::Head> heads;
    std::vector<Answer> kept;
    for (Answer& a : list) {
      if (!store_all && a.top_hlc >= *below) {
        kept.push_back(std::move(a));
        continue;
      }
      for (Update& u : a.updates) updates.push_back(std::move(u));
      if (a.head) heads.push_back(std::move(*a.head));
    }
    if (!kept.empty()) answers_[endpoint] = std::move(kept);
    if (updates.empty()) continue;
    auto it = peers_.find(endpoint);
    Peer* from = it != peers_.end() ? &it->second : nullptr;
    if (ingest(std::move(updates), std::move(heads), from) && from) pull_missing(*from);
  }
}

void SyncEngine::flush_received() {
  flush_answers();  // answers came first: a push may continue one
  if (!gathering_.updates.empty()) {
    raise_to(waiting_seqs_, gathering_.updates);
    // Into the batch waiting before it, unless an origin came there by another link.
    PushBatch* last = waiting_.empty() ? nullptr : &waiting_.back();
    if (last && std::none_of(gathering_.origins.begin(), gathering_.origins.end(), [&](const auto& e) {
          auto it = last->origins.find(e.first);
          return it != last->origins.end() && it->second != e.second;
        })) {
      for (auto& u : gathering_.updates) last->updates.push_back(std::move(u));
      for (auto& h : gathering_.heads) last->heads.push_back(std::move(h));
      last->sources.insert(gathering_.sources.begin(), gathering_.sources.end());
      last->origins.insert(gathering_.origins.begin(), gathering_.origins.end());
    } else {
      waiting_.push_back(std::move(gathering_));
    }
  }
  gathering_ = PushBatch{};
  if (out_.empty()) start_waiting();
}

void SyncEngine::start_waiting() {
  waiting_seqs_.clear();
  waiting_bytes_ = 0;  // all of it goes now (gathering_ is empty between polls)
  while (!waiting_.empty()) {
    PushBatch b = std::move(waiting_.front());
    waiting_.pop_front();
    const uint64_t ticket = ++next_ticket_;
    OutIngest& o = out_[ticket];
    o.sources = std::move(b.sources);
    raise_to(o.seqs, b.updates);
    counters_.updates_received += b.updates.size();
    node_.ingest_async(std::move(b.updates), std::move(b.heads),
                       [finished = finished_, ticket](Result<IngestReport> r) {
                         std::lock_guard<std::mutex> l(finished->mu);
                         finished->done.emplace_back(ticket, std::move(r));
                         if (finished->wake) finished->wake->wake();  // the loop takes it now, not at its next poll
                       });
  }
  finish_ingests();  // a store without a writer of its own has finished them already
}

void SyncEngine::finish_ingests() {
  std::vector<std::pair<uint64_t, Result<IngestReport>>> done;
  {
    std::lock_guard<std::mutex> l(finished_->mu);
    done.swap(finished_->done);
  }
  for (auto& [ticket, report] : done) {
    auto it = out_.find(ticket);
    if (it == out_.end()) continue;
    const std::set<std::string> sources = std::move(it->second.sources);
    out_.erase(it);
    after_ingest(report, {}, nullptr);
    // A gap among them is pulled at once from whoever pushed.
    for (const auto& endpoint : sources) {
      auto p = peers_.find(endpoint);
      if (p != peers_.end()) pull_missing(p->second);
    }
  }
  if (out_.empty() && !waiting_.empty()) start_waiting();
}

uint64_t SyncEngine::held_or_coming(const VersionVector& held, OriginId origin) const {
  uint64_t seq = std::max(seq_of(held, origin), seq_of(waiting_seqs_, origin));
  for (const auto& [_, list] : answers_)
    for (const Answer& a : list)
      if (a.origin == origin) seq = std::max(seq, a.top_seq);
  for (const auto& [_, o] : out_) seq = std::max(seq, seq_of(o.seqs, origin));
  return seq;
}

void SyncEngine::on_verified(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  // Only what a received head covers: anything else (a node's own updates
  // issued again under a fresh origin) is signed after the commit and goes
  // out with that head.
  std::map<OriginId, uint64_t> covered;
  for (const auto& h : heads) covered[h.origin] = std::max(covered[h.origin], h.seq);
  std::lock_guard<std::mutex> l(committed_mu_);
  // Updates of a batch that did not commit (a full disk, a map grown and the
  // batch run again) come here again with the next try: what went out
  // already does not go twice (it would, in one run of one Push).
  std::vector<Update> early;
  for (const auto& u : updates) {
    const OriginId origin = u.id().origin;
    if (u.seq() <= seq_of(covered, origin) && u.seq() > seq_of(relayed_early_, origin) && owed_locked(origin, u.seq()))
      early.push_back(u);
  }
  if (early.empty()) return;
  raise_to(relayed_early_, early);
  take_committed_locked(early, heads);
}

void SyncEngine::on_committed(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  std::lock_guard<std::mutex> l(committed_mu_);
  if (!updates.empty() && any_lazy_.load(std::memory_order_relaxed)) {
    raise_to(committed_seqs_, updates);
    push_due_locked();
  }
  if (relayed_early_.empty()) {
    take_committed_locked(updates, heads);
    return;
  }
  // What on_verified took already goes out once.
  const auto later = [&](OriginId origin, uint64_t seq) { return seq > seq_of(relayed_early_, origin); };
  std::vector<Update> rest;
  for (const auto& u : updates)
    if (later(u.id().origin, u.seq()) && owed_locked(u.id().origin, u.seq())) rest.push_back(u);
  std::vector<proof::Head> rest_heads;
  for (const auto& h : heads)
    if (later(h.origin, h.seq)) rest_heads.push_back(h);
  if (!rest.empty()) take_committed_locked(rest, rest_heads);
}

void SyncEngine::take_committed_locked(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  if (committed_bytes_ >= options_.max_pending_push_bytes) return;  // anti-entropy delivers the rest
  for (const auto& u : updates) {
    if (!owed_locked(u.id().origin, u.seq())) continue;
    committed_bytes_ += u.body().size();
    committed_.push_back(u);
    ++taken_for_push_;
  }
  for (const auto& h : heads)
    if (owed_locked(h.origin, h.seq)) committed_heads_.push_back(h);
  push_due_locked();
}

void SyncEngine::push_due_locked() {
  if (first_committed_ms_ >= 0) return;
  first_committed_ms_ = clock_.now_millis();
  transport_.wake();
}

uint64_t SyncEngine::updates_taken_for_push() {
  std::lock_guard<std::mutex> l(committed_mu_);
  return taken_for_push_;
}

int SyncEngine::poll_timeout_ms(int longest) {
  std::lock_guard<std::mutex> l(committed_mu_);
  if (first_committed_ms_ < 0) return longest;
  const int64_t due = first_committed_ms_ + options_.push_delay_ms - clock_.now_millis();
  return static_cast<int>(std::clamp<int64_t>(due, 0, longest));
}

namespace {

// A run of one origin's committed updates and the head it ends at (none from
// a node that does not sign: then each update is its own run).
struct PushRun {
  std::vector<const Update*> updates;
  std::optional<proof::Head> head;
  size_t bytes = 0;
};

// The committed updates cut into runs at their heads, in the order the heads
// came; updates no head covers are left to anti-entropy.
std::vector<PushRun> push_runs(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
  std::vector<PushRun> runs;
  if (heads.empty()) {
    for (const auto& u : updates) runs.push_back(PushRun{{&u}, std::nullopt, u.body().size()});
    return runs;
  }
  std::map<OriginId, std::vector<const Update*>> by_origin;
  for (const auto& u : updates) by_origin[u.id().origin].push_back(&u);
  for (auto& [_, ups] : by_origin)
    std::sort(ups.begin(), ups.end(), [](const Update* a, const Update* b) { return a->seq() < b->seq(); });
  std::map<OriginId, size_t> next;  // per origin, the first update not in a run yet
  for (const auto& h : heads) {
    auto it = by_origin.find(h.origin);
    if (it == by_origin.end()) continue;
    size_t& i = next[h.origin];
    PushRun run;
    for (; i < it->second.size() && it->second[i]->seq() <= h.seq; ++i) {
      run.updates.push_back(it->second[i]);
      run.bytes += it->second[i]->body().size();
    }
    if (run.updates.empty()) continue;
    run.head = h;
    runs.push_back(std::move(run));
  }
  return runs;
}

}  // namespace

void SyncEngine::flush_pushes() {
  std::vector<Update> batch;
  std::vector<proof::Head> heads;
  std::map<OriginId, uint64_t> committed_seqs;
  {
    // Runs verified ahead go at the end of the poll that brought them: the
    // frames of one poll are their coalescing, and a relay waits no longer.
    const bool relay_now = std::exchange(relay_now_, false);
    std::lock_guard<std::mutex> l(committed_mu_);
    if (first_committed_ms_ < 0 || (!relay_now && clock_.now_millis() - first_committed_ms_ < options_.push_delay_ms))
      return;
    batch.swap(committed_);
    heads.swap(committed_heads_);
    committed_seqs.swap(committed_seqs_);
    committed_bytes_ = 0;
    first_committed_ms_ = -1;
  }
  const std::vector<PushRun> runs = push_runs(batch, heads);
  for (auto& entry : peers_) {
    Peer& p = entry.second;  // not a structured binding: clang 14 cannot capture those in a lambda
    if (!p.ready) continue;
    const bool signed_link = (p.features & wire::kFeatureSigned) != 0;
    wire::Push push;
    size_t bytes = 0;
    auto flush = [&] {
      if (push.updates.empty()) return;
      p.updates_sent += push.updates.size();
      send(Link{true, p.endpoint}, push);
      push.updates.clear();
      push.heads.clear();
      bytes = 0;
    };
    // Whole runs only, so that every run in a frame ends at its head.
    for (const PushRun& run : runs) {
      const OriginId origin = run.updates.front()->id().origin;
      uint64_t& theirs = p.their[origin];
      if (run.updates.back()->seq() <= theirs) continue;  // they have it (they may have sent it)
      if (!relays_to(p, origin)) continue;
      if (bytes + run.bytes > wire::kMaxBatchBytes) flush();
      for (const Update* u : run.updates) {
        if (u->seq() <= theirs) continue;
        push.updates.push_back(*u);
        bytes += u->body().size();
        p.unheard.emplace(origin, u->seq());  // the first pushed since it was last heard
        if (p.unheard_since_ms < 0) p.unheard_since_ms = clock_.now_millis();
      }
      if (signed_link && run.head) push.heads.push_back(*run.head);
      theirs = run.updates.back()->seq();  // optimistic; their next vector corrects it
    }
    flush();
    for (const auto& [origin, seq] : committed_seqs)
      if (seq > seq_of(p.their, origin) && announces_to(p, origin)) {
        uint64_t& have = p.have_out[origin];
        have = std::max(have, seq);
      }
    if (!p.have_out.empty()) {
      wire::Tree t;
      t.have.assign(p.have_out.begin(), p.have_out.end());
      p.have_out.clear();
      send(Link{true, p.endpoint}, t);
    }
  }
}

// A ready peer heard from neither in a round nor in an answer is probed with
// a vector after two rounds; after five rounds (5 s to 60 s) it is no longer
// ready and is handshaken again: a stopped peer (SIGSTOP) stops being
// counted on, and when it resumes it answers the Hello and syncs at once.
void SyncEngine::check_silent_peers(int64_t now) {
  const int64_t probe = 2 * options_.anti_entropy_ms;
  const int64_t drop = std::clamp<int64_t>(5 * options_.anti_entropy_ms, 5000, 60'000);
  for (auto& [_, p] : peers_) {
    if (!p.ready) continue;
    const int64_t silent = now - p.last_seen_ms;
    if (silent >= drop) {
      p.ready = false;
      p.hello_attempts = 0;
      p.hello_sent_ms = -1;
      p.learned_ms = now;  // a learned link gets its grace afresh, counted from now
      release_pulls(p);
      ++counters_.silent_peers;
      log_(2, "peer " + p.endpoint + " silent for " + std::to_string(silent / 1000) + " s: handshaking again");
    } else if (silent >= probe && now - p.probed_ms >= probe) {
      p.probed_ms = now;
      start_round(p);
    }
  }
}

void SyncEngine::on_tick() {
  finish_ingests();
  const int64_t now = clock_.now_millis();
  refresh_hello();
  check_silent_peers(now);
  redial_unready_peers(now);
  retry_evidence(now);
  for (auto& [_, p] : peers_) {
    // A Hello sent before the connection is up is dropped (ZMQ_IMMEDIATE):
    // retry soon at first (10, 20, 40 ... ms), then every hello_retry_ms.
    int64_t interval = std::min<int64_t>(options_.hello_retry_ms, int64_t{10} << std::min(p.hello_attempts, 5));
    if (!p.ready && (p.hello_sent_ms < 0 || now - p.hello_sent_ms >= interval)) send_hello(p);
  }

  drop_silent_learned_peers(now);
  bool expired = false;
  for (auto it = pulls_.begin(); it != pulls_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    auto p = peers_.find(it->second.endpoint);
    if (p != peers_.end()) p->second.credit_used -= std::min(p->second.credit_used, it->second.bytes);
    it = pulls_.erase(it);
    expired = true;
  }
  if (expired)
    for (auto& [_, p] : peers_) pull_missing(p);
  if (!answers_.empty()) flush_answers();  // held back for a pull that has since timed out

  flush_pushes();
  run_grafts(now);
  spread_members(now);

  if (now >= next_round_ms_) {
    std::vector<Peer*> ready;
    for (auto& [_, p] : peers_)
      if (p.ready) ready.push_back(&p);
    std::shuffle(ready.begin(), ready.end(), rng_);
    if (ready.size() > options_.fanout) ready.resize(options_.fanout);
    for (Peer* p : ready) start_round(*p);
    std::uniform_int_distribution<int64_t> jitter(options_.anti_entropy_ms / 2, options_.anti_entropy_ms * 3 / 2);
    next_round_ms_ = now + jitter(rng_);
  }
  if (counters_.refused_updates > reported_refusals_ && now - refusals_reported_ms_ >= 5000) {
    log_(1, "refused " + std::to_string(counters_.refused_updates - reported_refusals_) +
                " received updates since the last report, the latest: " + last_refusal_);
    reported_refusals_ = counters_.refused_updates;
    refusals_reported_ms_ = now;
  }
  if (now - status_refreshed_ms_ >= 100) {
    spread_hears();
    refresh_status();
    status_refreshed_ms_ = now;
  }
  if (now - peers_saved_ms_ >= options_.save_peers_ms && !peers_.empty()) {
    peers_saved_ms_ = now;
    std::map<std::string, std::string> saved;
    for (const auto& p : peers()) saved[p.endpoint] = encode_msgpack(peer_status_value(p));
    if (Status s = node_.save_peers(std::move(saved)); !s) log_(1, "saving peer state: " + s.message());
  }
}

// The whole list, on the outgoing link: members with the endpoint this node
// reaches them at (a ready link of its own), tombstones, and this node's own
// unkeyed entries (made before it had a key) under its key.
// Every piece of fork evidence held, to one peer or (null) to every ready
// peer whose link carries signed origins: a fork is left out of replay alike
// everywhere only once its evidence has spread.
void SyncEngine::send_evidence(Peer* to) {
  std::vector<wire::Evidence> all;
  for (const auto& bytes : node_.evidence())
    if (auto e = proof::decode_evidence(bytes)) all.push_back(wire::Evidence{std::move(e).value()});
  for (const auto& e : all) {
    auto [it, fresh] = forked_.emplace(e.evidence.origin(), e.evidence.fork_seq());
    if (!fresh) it->second = std::min(it->second, e.evidence.fork_seq());
  }
  if (all.empty()) return;
  for (auto& [endpoint, p] : peers_) {
    if (to && to != &p) continue;
    if (!p.ready || !(p.features & wire::kFeatureSigned)) continue;
    for (const auto& e : all) send(Link{true, p.endpoint}, e);
  }
}

void SyncEngine::take_evidence(const proof::Evidence& e) {
  auto kept = node_.take_evidence(proof::encode_evidence(e));
  if (!kept) {
    const Status::Code code = kept.status().code();
    if (code == Status::Code::kIOError || code == Status::Code::kNoSpace || code == Status::Code::kStoreFull) {
      log_(1, "fork evidence not stored, kept to try again: " + kept.status().message());
      if (evidence_retry_.size() < kMaxEvidenceRetries) evidence_retry_.push_back(e);
      return;
    }
    ++counters_.bad_frames;
    log_(2, "fork evidence refused: " + kept.status().message());
    return;
  }
  if (!*kept) return;
  log_(0, "fork evidence of origin " + hex16(e.origin()) + " from seq " + std::to_string(e.fork_seq()) +
              ": its updates from there on are left out (replog status)");
  refresh_hello();
  send_evidence(nullptr);
}

void SyncEngine::retry_evidence(int64_t now) {
  if (evidence_retry_.empty() || now < evidence_retry_ms_) return;
  evidence_retry_ms_ = now + 1000;
  std::vector<proof::Evidence> again;
  again.swap(evidence_retry_);
  for (const auto& e : again) take_evidence(e);
}

void SyncEngine::send_members(Peer& p) {
  p.members_sent_ms = clock_.now_millis();
  wire::Members m;
  for (auto& e : options_.members->entries()) {
    if (m.entries.size() == wire::kMaxMemberEntries) break;  // the store holds no more (kMaxTrustEntries)
    wire::MemberEntry w{std::move(e.public_key), e.removed, static_cast<uint64_t>(e.ms),
                        e.author.empty() ? options_.own_key : std::move(e.author), std::move(e.name), ""};
    if (!w.removed)
      for (const auto& [endpoint, q] : peers_)
        if (q.ready && q.key == w.key && check_peer_endpoint(endpoint)) w.endpoint = endpoint;
    m.entries.push_back(std::move(w));
  }
  send(Link{true, p.endpoint}, m);
}

// To every ready peer that takes Members: at once when the list changed
// (a local trust op, or a merge), else every members_resend_ms (a frame can
// be lost; merging what is held already changes nothing and sends nothing).
void SyncEngine::spread_members(int64_t now) {
  if (!spreads_members()) return;
  const uint64_t generation = options_.members->generation();
  const bool changed = generation != members_generation_;
  members_generation_ = generation;
  for (auto& [_, p] : peers_) {
    if (!p.ready || !(p.features & wire::kFeatureMembers)) continue;
    if (changed || now - p.members_sent_ms >= options_.members_resend_ms) send_members(p);
  }
}

// A peer's list, from the device the transport authenticated. Without keys
// or a trust list there is no sender to believe: dropped as a bad frame.
void SyncEngine::take_members(const std::string& sender, const wire::Members& m) {
  if (!spreads_members() || sender.empty()) {
    ++counters_.bad_frames;
    log_(3, "members from a link without keys (or with membership off): dropped");
    return;
  }
  ++counters_.members_received;
  std::vector<MemberEntry> entries;
  entries.reserve(m.entries.size());
  for (const auto& e : m.entries)
    entries.push_back(MemberEntry{e.key, e.removed, static_cast<int64_t>(e.ms), e.author, e.name});
  const int64_t now = clock_.now_millis();
  auto merged = options_.members->merge(entries, MergeRules{sender, options_.own_key, now, options_.max_member_ahead_ms});
  if (!merged) {
    log_(0, "taking the members of " + format_device_id(sender) + ": " + merged.status().message());
    return;
  }
  counters_.members_accepted += merged->accepted;
  for (const auto& [why, key] : merged->refused) {
    ++counters_.members_refused[member_refusal_name(why)];
    log_(3, "refused the entry about " + format_device_id(key) + " from " + format_device_id(sender) + ": " +
                member_refusal_name(why));
  }
  for (const auto& key : merged->removed)
    log_(2, "device " + format_device_id(key) + " removed, as " + format_device_id(sender) + " told");
  for (const auto& key : merged->added) {
    log_(2, "device " + format_device_id(key) + " trusted (introduced by " + format_device_id(sender) + ")");
    // Dialled where the sender reaches it: a tcp:// endpoint, and only this key can answer there.
    for (const auto& e : m.entries) {
      if (e.key != key || e.endpoint.empty() || !check_peer_endpoint(e.endpoint)) continue;
      if (!peers_.count(e.endpoint) && !linked_to(key)) add_peer(e.endpoint, key, "introducer");
    }
  }
}

Value peer_status_value(const PeerStatus& p) {
  Value v(Map{{"endpoint", Value(p.endpoint)},
                   {"node_id", Value(hex16(p.node_id))},
                   {"ready", Value(p.ready)},
                   {"origin_bound", Value(p.origin_bound)},
                   {"last_seen_ms", Value(p.last_seen_ms)},
                   {"they_lack", Value(static_cast<int64_t>(p.they_lack))},
                   {"we_lack", Value(static_cast<int64_t>(p.we_lack))},
                   {"vector", vector_to_value(p.their_vector)}});
  if (!p.device_key.empty()) v.as_map()["device_id"] = Value(format_device_id(p.device_key));
  if (!p.how.empty()) v.as_map()["how"] = Value(p.how);
  return v;
}

std::vector<PeerStatus> SyncEngine::peers() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return status_;
}

void SyncEngine::refresh_status() {
  mine_ = node_.vector();
  std::vector<PeerStatus> out;
  for (const auto& [endpoint, p] : peers_) {
    PeerStatus s;
    s.endpoint = endpoint;
    s.device_key = p.key;
    s.how = p.how;
    s.node_id = p.node_id;
    s.ready = p.ready;
    s.origin_bound = p.origin_bound;
    s.last_seen_ms = p.last_seen_ms;
    s.their_vector = p.their;
    s.they_lack = count_missing_from(mine_, p.their);
    s.we_lack = count_missing_from(p.their, mine_);
    s.bytes_sent = p.bytes_sent;
    s.bytes_received = p.bytes_received;
    s.updates_sent = p.updates_sent;
    s.updates_received = p.updates_received;
    out.push_back(std::move(s));
  }
  std::lock_guard<std::mutex> l(status_mu_);
  status_ = std::move(out);
}

}  // namespace replog
