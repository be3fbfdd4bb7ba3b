#include "sim/cluster.h"

#include "protocol/bytes.h"
#include "protocol/origin_proof.h"
#include "lmdb_files.h"
#include "sim/model.h"
#include "storage/data_dir.h"
#include "storage/identity.h"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

namespace replog::sim {

namespace fs = std::filesystem;

namespace {

std::string make_root() {
  fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  std::string tmpl = (base / "replog-sim-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + base.string());
  return tmpl;
}

void require(const Status& s, const std::string& what) {
  if (!s) throw std::runtime_error(what + ": " + s.message());
}

void add_frames(const testing::FaultyTransport& t, std::map<wire::Type, uint64_t>& into) {
  for (const auto& [type, count] : t.counts().frames) into[type] += count;
}

}  // namespace

Value schema_document() {
  Map fields{{"n", Value("int")}, {"tag", Value("string")}};
  return Value(Map{{"records", Value(Map{{kRecordType, Value(Map{{"fields", Value(std::move(fields))}})}})}});
}

// The device key of a directory init made: its identity key, as the daemon takes it.
static void take_device_key(SimNode& n) {
  auto identity = load_identity(DataDir(n.dir).identity_file(), Env::posix());
  require(identity.status(), "identity of " + n.dir);
  n.key = identity->public_key();
  n.secret = std::string(identity->secret_key());
}

Cluster::Cluster(int count, std::mt19937_64& rng, Trace& trace, Buggify* buggify)
    : root_(make_root()), rng_(rng), trace_(trace), buggify_(buggify) {
  for (int i = 0; i < count; ++i) {
    SimNode n;
    n.index = i;
    n.endpoint = "tcp://node" + std::to_string(i) + ":7000";
    n.dir = root_ + "/n" + std::to_string(i);
    n.clock = std::make_unique<ManualClock>(kStartMs);
    init_directory(n, i == 0);
    take_device_key(n);
    if (buggify_) buggify_->add_node(n.dir, i);
    nodes_.push_back(std::move(n));
  }
  for (auto& n : nodes_) {
    n.trust = std::move(TrustStore::open(n.dir + "/trust.json", Env::posix())).value();
    for (const auto& other : nodes_)
      if (other.index != n.index)
        require(n.trust->add(TrustedDevice{other.key, "n" + std::to_string(other.index), kStartMs, "manual", 0, n.key}),
                "trust in " + n.dir);
  }
  for (auto& n : nodes_) open(n);
}

Cluster::~Cluster() {
  outsider_.reset();
  nodes_.clear();  // services before the nodes they use (member order within SimNode)
  std::error_code ec;
  fs::remove_all(root_, ec);
}

void Cluster::init_directory(SimNode& n, bool first) {
  engine::InitOptions init;
  init.dir = n.dir;
  init.clock = n.clock.get();
  if (first) {
    init.schema = schema_document();
  } else {
    init.cluster = cluster_id_;
  }
  require(engine::Node::init(init), "init " + n.dir);
  if (first) {
    engine::NodeOptions o;
    o.dir = n.dir;
    o.clock = n.clock.get();
    auto node = engine::Node::open(o);
    require(node.status(), "open " + n.dir);
    cluster_id_ = (*node)->cluster_id();
  }
}

SyncOptions Cluster::sync_options(const SimNode& n) {
  SyncOptions so;
  so.endpoint = n.endpoint;
  so.anti_entropy_ms = 200;
  so.request_timeout_ms = 1000;
  so.seed = rng_();
  so.own_key = n.key;
  so.device_secret = n.secret;
  for (const auto& other : nodes_) {
    if (other.index == n.index) continue;
    so.peer_keys[other.endpoint] = other.key;
    // Static peers are dialled once trusted, as the daemon does.
    if (n.trust->contains(other.key)) so.peers.push_back(other.endpoint);
  }
  // The outsider spreads nothing (no node would take it anyway).
  if (n.index < static_cast<int>(nodes_.size())) so.members = n.trust.get();
  return so;
}

void Cluster::open(SimNode& n) {
  engine::NodeOptions o;
  o.dir = n.dir;
  o.clock = n.clock.get();
  o.max_clock_skew_ms = kMaxSkewMs;
  o.undo_window = 8 + rng_() % 32;  // small: late updates often replay from a checkpoint
  o.checkpoint_interval = 20 + rng_() % 60;
  o.finish_before_answering = true;  // nothing of the writer runs beside this thread
  if (buggify_ && buggify_->on()) o.initial_map_bytes = size_t{64} << (10 + rng_() % 4);  // 64 KiB..512 KiB
  if (buggify_) buggify_->suspend(n.index, true);
  auto node = engine::Node::open(o);
  if (buggify_) buggify_->suspend(n.index, false);
  require(node.status(), "open " + n.dir);
  n.node = std::move(node).value();
  ++n.opened;
  n.store = std::make_unique<CountingStore>(
      *n.node, n.index < static_cast<int>(nodes_.size()) ? "n" + std::to_string(n.index) : "outsider", refusals_, hostile_);
  const TrustStore* trust = n.trust.get();
  n.memory = std::make_unique<testing::MemoryTransport>(
      net_, n.endpoint, testing::MemoryIdentity{n.key, [trust](const std::string& key) { return trust->contains(key); }});
  n.transport = std::make_unique<testing::FaultyTransport>(*n.memory, *n.clock, rng_());
  n.service = std::make_unique<PeerService>(*n.store, *n.transport, *n.clock, sync_options(n), [](int, const std::string&) {});
  PeerService* service = n.service.get();
  n.node->set_commit_listener([service](const std::vector<Update>& u, const std::vector<proof::Head>& h) { service->on_committed(u, h); });
  n.node->set_verified_listener([service](const std::vector<Update>& u, const std::vector<proof::Head>& h) { service->on_verified(u, h); });
  n.service->start();
  follow_origin(n);
  n.followed_generation = n.trust->generation();
  n.followed.clear();
  for (const auto& d : n.trust->list()) n.followed.insert(d.public_key);
}

void Cluster::follow_origin(SimNode& n) {
  if (n.index >= static_cast<int>(nodes_.size())) return;  // the outsider
  const OriginId now = n.node->node_id();
  if (n.origin != 0 && n.origin != now) {
    moves_.push_back({n.index, n.origin, now});
    trace_.line("n" + std::to_string(n.index) + " moves from origin " + hex16(n.origin) + " to " + hex16(now));
  }
  n.origin = now;
}

void Cluster::follow_trust(SimNode& n) {
  if (!n.up() || n.trust->generation() == n.followed_generation) return;
  n.followed_generation = n.trust->generation();
  std::set<std::string> now;
  for (const auto& d : n.trust->list()) now.insert(d.public_key);
  for (const auto& key : n.followed)
    if (!now.count(key)) n.service->engine().forget_device(key);
  for (const auto& other : nodes_)
    if (other.index != n.index && now.count(other.key) && !n.followed.count(other.key))
      n.service->engine().add_peer(other.endpoint, other.key);
  n.followed = std::move(now);
}

void Cluster::distrust(int a, const SimNode& b) {
  SimNode& n = nodes_[static_cast<size_t>(a)];
  require(n.trust->remove(b.key, n.key, n.clock->now_millis()).status(), "trust remove in " + n.dir);
  follow_trust(n);
}

void Cluster::trust(int a, const SimNode& b) {
  SimNode& n = nodes_[static_cast<size_t>(a)];
  require(n.trust->add(TrustedDevice{b.key, "", n.clock->now_millis(), "manual", 0, n.key}), "trust add in " + n.dir);
  follow_trust(n);
}

bool Cluster::trusts(int i, const std::string& key) const {
  return nodes_[static_cast<size_t>(i)].trust->contains(key);
}

void Cluster::trust_everywhere(const std::string& key) {
  for (auto& n : nodes_)
    require(n.trust->add(TrustedDevice{key, "stranger", n.clock->now_millis(), "manual", 0, n.key}),
            "trust add in " + n.dir);
}

void Cluster::restore_trust() {
  for (auto& n : nodes_)
    for (const auto& other : nodes_)
      if (other.index != n.index && !n.trust->contains(other.key)) trust(n.index, other);
}

SimNode& Cluster::add_outsider() {
  outsider_ = std::make_unique<SimNode>();
  SimNode& o = *outsider_;
  o.index = static_cast<int>(nodes_.size());  // no node of the cluster's, nor the disk faults'
  o.endpoint = "tcp://outsider:7000";
  o.dir = root_ + "/outsider";
  o.clock = std::make_unique<ManualClock>(nodes_.front().clock->now_millis());
  init_directory(o, false);
  take_device_key(o);
  o.trust = std::move(TrustStore::open(o.dir + "/trust.json", Env::posix())).value();
  for (const auto& n : nodes_)
    require(o.trust->add(TrustedDevice{n.key, "", o.clock->now_millis(), "manual", 0, o.key}), "trust in outsider");
  open(o);
  return o;
}

void Cluster::tick(int64_t ms, int rounds) {
  for (auto& n : nodes_) n.clock->advance(ms);
  if (outsider_) outsider_->clock->advance(ms);
  for (int r = 0; r < rounds; ++r) {
    for (auto& n : nodes_)
      if (n.up()) {
        n.service->run_once(0);
        follow_trust(n);
        follow_origin(n);
      }
    if (outsider_) outsider_->service->run_once(0);
  }
}

// What a data directory holds beside its lock files: the log and the key
// files (the device key, and any origin key it moved to).
static void copy_data_files(const std::string& from, const std::string& to) {
  fs::copy_file(from + "/data.mdb", to + "/data.mdb");
  for (const auto& f : fs::directory_iterator(from))
    if (f.path().extension() == ".key") fs::copy_file(f.path(), to + "/" + f.path().filename().string());
}

void Cluster::settle(int i) {
  // A request through the writer returns once it is idle.
  (void)nodes_[static_cast<size_t>(i)].node->ingest({});
}

void Cluster::crash(int i) {
  SimNode& n = nodes_[static_cast<size_t>(i)];
  settle(i);  // so that the copy below is the log as committed
  const std::string copy = n.dir + ".crashed";
  fs::create_directories(copy);
  copy_data_files(n.dir, copy);
  add_frames(*n.transport, frames_of_crashed_);
  ahead_of_crashed_ += n.node->ahead_counts().runs;
  n.service.reset();
  n.transport.reset();
  n.memory.reset();
  n.store.reset();
  n.node.reset();
  fs::remove_all(n.dir);
  fs::rename(copy, n.dir);
}

void Cluster::restart(int i) { open(nodes_[static_cast<size_t>(i)]); }

size_t Cluster::rewrite_as_format_4(int i) {
  size_t moved = 0;
  const std::string error = testing::rewrite_as_format_4(nodes_[static_cast<size_t>(i)].dir, moved);
  if (!error.empty()) throw std::runtime_error("rewrite n" + std::to_string(i) + " as format 4: " + error);
  return moved;
}

void Cluster::copy_directory(int from, int to) {
  SimNode& source = nodes_[static_cast<size_t>(from)];
  SimNode& target = nodes_[static_cast<size_t>(to)];
  settle(from);
  target.origin = 0;  // it comes back as `from`'s origin: no move of its own
  // The copy is `from`'s log and origin keys on a device of its own: its own
  // device key stays (its links and Hellos are its own), and `from`'s device
  // key comes as the key of the origin it writes, which its device key
  // certifies when it opens. So two devices write one origin: a fork.
  const std::string own_identity = target.dir + ".identity";
  fs::copy_file(DataDir(target.dir).identity_file(), own_identity, fs::copy_options::overwrite_existing);
  fs::remove_all(target.dir);
  fs::create_directories(target.dir);
  copy_data_files(source.dir, target.dir);
  auto device = load_identity(DataDir(source.dir).identity_file(), Env::posix());
  require(device.status(), "identity of " + source.dir);
  const std::string origin_file =
      target.dir + "/origin-" + hex16(proof::origin_of_key(device->public_key())) + ".key";
  if (!fs::exists(origin_file)) require(store_identity(origin_file, *device, Env::posix()), origin_file);
  fs::rename(own_identity, DataDir(target.dir).identity_file());
}

void Cluster::align_clocks() {
  int64_t latest = 0;
  for (const auto& n : nodes_) latest = std::max(latest, n.clock->now_millis());
  for (auto& n : nodes_) n.clock->set(latest);
}

bool Cluster::converged() const {
  for (const auto& n : nodes_)
    if (!n.up()) return false;
  // A forked origin's branches past its fork seq are left out of replay
  // alike, whichever one (and however much of it) a node holds.
  // So are a revoked origin's updates past its last seq, which nodes that
  // learned of the revocation first no longer take.
  const engine::NodeInfo front = nodes_.front().node->info();
  // A node that holds nothing below a fork at seq 1 has no entry for it.
  const auto below_forks = [&](VersionVector v) {
    for (auto& [origin, seq] : v) {
      if (auto f = front.fork_evidence.find(origin); f != front.fork_evidence.end()) seq = std::min(seq, f->second - 1);
      if (auto r = front.revoked.find(origin); r != front.revoked.end()) seq = std::min(seq, r->second);
    }
    std::erase_if(v, [](const auto& e) { return e.second == 0; });
    return v;
  };
  const VersionVector v = below_forks(nodes_.front().node->vector());
  for (const auto& n : nodes_) {
    const engine::NodeInfo info = n.node->info();
    if (info.fork_evidence != front.fork_evidence || info.revoked != front.revoked || below_forks(n.node->vector()) != v)
      return false;
  }
  const std::string h = nodes_.front().node->state_hash();
  for (const auto& n : nodes_)
    if (n.node->state_hash() != h) return false;
  return true;
}

std::map<wire::Type, uint64_t> Cluster::frames() const {
  std::map<wire::Type, uint64_t> all = frames_of_crashed_;
  for (const auto& n : nodes_)
    if (n.transport) add_frames(*n.transport, all);
  return all;
}

uint64_t Cluster::frames_sent() const {
  uint64_t total = 0;
  for (const auto& [type, count] : frames()) total += count;
  return total;
}

uint64_t Cluster::runs_verified_ahead() const {
  uint64_t total = ahead_of_crashed_;
  for (const auto& n : nodes_)
    if (n.node) total += n.node->ahead_counts().runs;
  return total;
}

std::string Cluster::frames_by_type() const {
  static const char* names[] = {"?", "hello", "error", "vector", "request", "updates", "push", "invite", "join", "members"};
  std::string out;
  for (const auto& [type, count] : frames())
    out += std::string(out.empty() ? "" : " ") + names[static_cast<size_t>(type) % 10] + " " + std::to_string(count);
  return out;
}

}  // namespace replog::sim
