#include "sim/stranger.h"

#include <sodium.h>

#include <algorithm>
#include <optional>

#include "protocol/bytes.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/wire.h"
#include "storage/identity.h"

namespace replog::sim {

namespace {

// An Ed25519 secret key (libsodium form) from the run's generator.
std::string draw_signing_secret(std::mt19937_64& rng) {
  unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
  for (auto& b : seed) b = static_cast<unsigned char>(rng());
  std::string secret(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(pk, reinterpret_cast<unsigned char*>(secret.data()), seed);
  return secret;
}

}  // namespace

Stranger::Stranger(Cluster& cluster, std::mt19937_64& rng)
    : cluster_(cluster),
      rng_(rng),
      signing_secret_(draw_signing_secret(rng)),
      key_(signing_secret_.substr(32)),
      transport_(cluster.network(), kEndpoint, testing::MemoryIdentity{key_, [](const std::string&) { return true; }}),
      id_(proof::origin_of_key(key_)) {
  cluster_.trust_everywhere(key_);
  cluster_.hostile().marker_origin = id_;
}

// A genuine Hello of its own origin: the stranger is a trusted device, and
// what it does wrong comes after the handshake.
std::string Stranger::hello() const {
  wire::Hello h{cluster_.cluster_id(), id_, kEndpoint, limits::kMaxUpdateBytes, wire::kMaxFrameBytes, wire::kFeatures,
                std::nullopt};
  const std::string curve = curve_public_key(key_).value();
  h.proof = proof::HelloProof{key_, proof::sign_hello(h.cluster, curve, id_, signing_secret_), {}, {}};
  return wire::encode(h);
}

void Stranger::pump() {
  for (auto& f : transport_.poll(0)) {
    auto m = wire::decode(f.bytes);
    if (m && std::holds_alternative<wire::Hello>(*m) && !f.link.outgoing)
      transport_.send(f.link, hello());
    kept_.push_back(std::move(f.bytes));
    if (kept_.size() > kKeptFrames) kept_.pop_front();
  }
}

SimNode* Stranger::random_live_node() {
  auto& nodes = cluster_.nodes();
  SimNode& n = nodes[rng_() % nodes.size()];
  return n.up() ? &n : nullptr;
}

void Stranger::greet(const SimNode& target) {
  if (transport_.linked(target.endpoint)) return;
  (void)transport_.connect_to(target.endpoint, target.key);
  send(target, hello());
}

void Stranger::send(const SimNode& target, const std::string& bytes) { transport_.send(Link{true, target.endpoint}, bytes); }

std::string Stranger::send_garbage() {
  SimNode* target = random_live_node();
  if (!target) return "stranger garbage: target down";
  greet(*target);
  // Random bytes, or a kept frame cut short: never a frame that still decodes
  // with other content (that would be a forgery, judged only in forging runs).
  std::string bytes;
  if (!kept_.empty() && rng_() % 2) {
    bytes = kept_[rng_() % kept_.size()];
    bytes.resize(rng_() % bytes.size());
  } else {
    bytes.resize(rng_() % 64);
    for (char& c : bytes) c = static_cast<char>(rng_());
  }
  send(*target, bytes);
  return "stranger garbage to n" + std::to_string(target->index) + " " + std::to_string(bytes.size()) + " bytes";
}

std::string Stranger::replay_frame() {
  SimNode* target = random_live_node();
  if (!target || kept_.empty()) return "stranger replay: nothing";
  greet(*target);
  const std::string& frame = kept_[rng_() % kept_.size()];
  send(*target, frame);
  return "stranger replay to n" + std::to_string(target->index) + " " + std::to_string(frame.size()) + " bytes";
}

std::string Stranger::lie_in_vector() {
  SimNode* target = random_live_node();
  if (!target) return "stranger lie: target down";
  greet(*target);
  wire::Vector v;
  for (const auto& [origin, seq] : target->node->vector()) v.entries.push_back({origin, seq + 1 + rng_() % 50});
  v.entries.push_back({rng_() | 2, 1 + rng_() % 10});  // an origin nobody has
  send(*target, wire::encode(v));
  return "stranger lies to n" + std::to_string(target->index) + " about " + std::to_string(v.entries.size()) +
         " origins";
}

std::string Stranger::forge_origin() {
  SimNode* target = random_live_node();
  SimNode* victim = random_live_node();
  if (!target || !victim) return "stranger forge: nodes down";
  greet(*target);
  const OriginId origin = victim->node->node_id();
  const uint64_t seq = seq_of(target->node->vector(), origin) + 1;
  uint64_t hlc = static_cast<uint64_t>(target->clock->now_millis()) << 16;
  if (seq > 1)
    if (auto last = target->node->read_range(origin, seq - 1, 1, 1 << 20); last && !last->updates.empty())
      hlc = std::max(hlc, last->updates.front().id().hlc + 1);
  Value arg(Map{{"path", Value("forged")}, {"value", Value(static_cast<int64_t>(++forged_))}});
  Update u = Update::make(UpdateId{hlc, origin}, seq, "set", encode_msgpack(arg));
  cluster_.hostile().made_up.insert(u.id());
  cluster_.hostile().made_up_bytes.insert({u.id(), u.body()});
  // A head over a chain of its own, signed with its own key, which it carries.
  const std::string key = signing_secret_.substr(32);
  proof::Chain chain = proof::chain_start(cluster_.cluster_id(), key);
  proof::chain_step(chain, key, u.id().hlc, u.body());
  proof::Head head = proof::sign_head(origin, seq, chain, 0, signing_secret_);
  head.key = key;
  send(*target, wire::encode(wire::Push{{u}, {head}}));
  return "stranger forges n" + std::to_string(victim->index) + "'s origin seq " + std::to_string(seq) + " to n" +
         std::to_string(target->index);
}

}  // namespace replog::sim

namespace replog::sim {

namespace {

// One origin's run in a kept frame and the head it ends at: updates
// seq-ascending without a hole, the last at the head's seq.
struct KeptRun {
  std::vector<Update> updates;
  proof::Head head;
};

std::optional<KeptRun> run_of(const std::vector<Update>& updates, const proof::Head& head) {
  KeptRun r{{}, head};
  for (const Update& u : updates)
    if (u.id().origin == head.origin && u.seq() <= head.seq) r.updates.push_back(u);
  std::sort(r.updates.begin(), r.updates.end(), [](const Update& a, const Update& b) { return a.seq() < b.seq(); });
  if (r.updates.empty() || r.updates.back().seq() != head.seq) return std::nullopt;
  for (size_t i = 1; i < r.updates.size(); ++i)
    if (r.updates[i].seq() != r.updates[i - 1].seq() + 1) return std::nullopt;
  return r;
}

// The runs a kept frame relays with their heads (a Push's, or an Updates answer's).
std::vector<KeptRun> runs_in(const std::string& frame) {
  std::vector<KeptRun> out;
  auto m = wire::decode(frame);
  if (!m) return out;
  if (auto* p = std::get_if<wire::Push>(&*m)) {
    for (const proof::Head& h : p->heads)
      if (auto r = run_of(p->updates, h)) out.push_back(std::move(*r));
  } else if (auto* u = std::get_if<wire::Updates>(&*m); u && u->head) {
    if (auto r = run_of(u->updates, *u->head)) out.push_back(std::move(*r));
  }
  return out;
}

void flip_bit(unsigned char& byte, std::mt19937_64& rng) { byte ^= static_cast<unsigned char>(1u << (rng() % 8)); }

}  // namespace

std::string Stranger::relay_altered() {
  SimNode* target = random_live_node();
  if (!target) return "stranger alters: target down";
  greet(*target);
  // Pushes mostly carry runs of one: ask for a longer range to alter next time
  // (the answer, an Updates with its head, is kept like any frame).
  if (const VersionVector held = target->node->vector(); !held.empty()) {
    auto it = held.begin();
    std::advance(it, static_cast<ptrdiff_t>(rng_() % held.size()));
    const uint64_t from = it->second > 20 ? it->second - rng_() % 20 : 1;
    send(*target, wire::encode(wire::Request{it->first, from, it->second, wire::kMaxBatchBytes}));
  }
  if (kept_.empty()) return "stranger alters: nothing kept";
  // A genuine run among the kept frames: one of three updates or more when
  // there is one (so that a run can be cut or reordered), else any.
  std::vector<KeptRun> all, long_ones;
  for (const std::string& frame : kept_)
    for (KeptRun& r : runs_in(frame)) (r.updates.size() >= 3 ? long_ones : all).push_back(std::move(r));
  std::vector<KeptRun>& pool = !long_ones.empty() && rng_() % 4 ? long_ones : all.empty() ? long_ones : all;
  if (pool.empty()) return "stranger alters: no run kept";
  std::optional<KeptRun> run = std::move(pool[rng_() % pool.size()]);
  std::vector<Update>& ups = run->updates;
  proof::Head& head = run->head;
  HostileLedger& ledger = cluster_.hostile();
  std::string how;
  const auto alter_update = [&](size_t i, Update altered) {
    ledger.made_up_bytes.insert({altered.id(), altered.body()});
    ups[i] = std::move(altered);
  };
  switch (rng_() % 8) {
    case 0: case 1: case 2: {  // one bit of one body; retried until the body still frames as an update
      const size_t i = rng_() % ups.size();
      for (int attempt = 0; attempt < 32 && how.empty(); ++attempt) {
        std::string body = ups[i].body();
        flip_bit(reinterpret_cast<unsigned char&>(body[rng_() % body.size()]), rng_);
        if (auto u = Update::parse(ups[i].id(), body)) {
          alter_update(i, std::move(u).value());
          how = "a body byte of seq " + std::to_string(ups[i].seq());
        }
      }
      if (how.empty()) return "stranger alters: no body byte to alter";
      break;
    }
    case 3: {  // an hlc
      const size_t i = rng_() % ups.size();
      UpdateId id = ups[i].id();
      id.hlc ^= uint64_t{1} << (rng_() % 24);
      alter_update(i, std::move(Update::parse(id, ups[i].body())).value());
      how = "the hlc of seq " + std::to_string(ups[i].seq());
      break;
    }
    case 4:  // the head's chain
      flip_bit(head.chain[rng_() % head.chain.size()], rng_);
      how = "the head's chain";
      break;
    case 5:  // the head's signature
      flip_bit(reinterpret_cast<unsigned char&>(head.signature[rng_() % head.signature.size()]), rng_);
      how = "the head's signature";
      break;
    case 6: {  // two calls swapped, each seq keeping its place and hlc
      if (ups.size() < 2) return "stranger alters: a run of one";
      const size_t i = rng_() % (ups.size() - 1);
      if (ups[i].method() == ups[i + 1].method() && ups[i].arg() == ups[i + 1].arg())
        return "stranger alters: two equal calls";
      Update a = Update::make(ups[i].id(), ups[i].seq(), ups[i + 1].method(), ups[i + 1].arg());
      Update b = Update::make(ups[i + 1].id(), ups[i + 1].seq(), ups[i].method(), ups[i].arg());
      alter_update(i, std::move(a));
      alter_update(i + 1, std::move(b));
      how = "seqs " + std::to_string(ups[i].seq()) + " and " + std::to_string(ups[i + 1].seq()) + " swapped";
      break;
    }
    default: {  // one dropped from the middle
      if (ups.size() < 3) return "stranger alters: a run too short to cut";
      const size_t i = 1 + rng_() % (ups.size() - 2);
      how = "seq " + std::to_string(ups[i].seq()) + " dropped";
      ups.erase(ups.begin() + static_cast<ptrdiff_t>(i));
      break;
    }
  }
  // The marker: a head of an origin no update has, naming this frame.
  proof::Head marker{id_, ++altered_, {}, 0, std::string(64, '\0'), {}, {}, {}};
  std::vector<UpdateId>& ids = ledger.altered_frames[marker.seq];
  for (const Update& u : ups) ids.push_back(u.id());
  const std::string what = "stranger relays origin " + hex16(head.origin) + " #" + std::to_string(ups.front().seq()) +
                           ".." + std::to_string(head.seq) + " to n" + std::to_string(target->index) + " with " + how;
  send(*target, wire::encode(wire::Push{std::move(ups), {std::move(head), std::move(marker)}}));
  return what;
}

}  // namespace replog::sim
