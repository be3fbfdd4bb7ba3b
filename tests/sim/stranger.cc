#include "sim/stranger.h"

#include <sodium.h>

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
  cluster_.note_made_up(u.id());
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
