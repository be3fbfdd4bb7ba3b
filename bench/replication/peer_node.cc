#include "replication/peer_node.h"

#include "protocol/wire.h"
#include "replication/replication.h"

namespace replog::bench {

int frame_type(const std::string& bytes) {
  auto type = wire::type_of(bytes);
  return type ? static_cast<int>(type.value()) : 0;
}

const char* const kTypeNames[wire::kTypeSlots] = {"other",   "hello",   "error", "vector",    "request",
                                                     "updates", "push",    "join",  "join reply", "members", "evidence", "tree"};

uint64_t WireCount::frames_out() const {
  uint64_t n = 0;
  for (const auto& c : out) n += c.frames;
  return n;
}

uint64_t WireCount::bytes_out() const {
  uint64_t n = 0;
  for (const auto& c : out) n += c.bytes;
  return n;
}

WireCount& WireCount::operator+=(const WireCount& o) {
  for (size_t i = 0; i < wire::kTypeSlots; ++i) {
    out[i].frames += o.out[i].frames, out[i].bytes += o.out[i].bytes;
    in[i].frames += o.in[i].frames, in[i].bytes += o.in[i].bytes;
    zmq_dropped[i] += o.zmq_dropped[i];
  }
  partition_dropped += o.partition_dropped;
  return *this;
}

std::string dropped_text(const WireCount& w) {
  std::string out;
  for (size_t t = 0; t < wire::kTypeSlots; ++t)
    if (w.zmq_dropped[t])
      out += std::string(out.empty() ? "" : ", ") + grouped(w.zmq_dropped[t]) + " " + kTypeNames[t];
  return out.empty() ? "none" : out;
}

// --- PeerNode ------------------------------------------------------------------------

namespace {

std::atomic<int> g_log_lines{0};

SyncEngine::Log engine_logger(const std::string& name) {
  return [name](int level, const std::string& line) {
    if (level > 1) return;
    if (++g_log_lines <= 20) progress("  [" + name + (level == 0 ? " error] " : " warn] ") + line);
  };
}

}  // namespace

void PeerNode::open(const std::string& d, const std::string& n) {
  dir = d;
  name = n;
  node = open_node(dir, "Node::open " + name, verify_origins);
  node->set_commit_listener([this](const std::vector<Update>& ups, const std::vector<proof::Head>& heads) {
    if (service) service->on_committed(ups, heads);
    if (on_commit) on_commit(ups);
  });
  if (relay_before_commit)
    node->set_verified_listener([this](const std::vector<Update>& ups, const std::vector<proof::Head>& heads) {
      if (service) service->on_verified(ups, heads);
    });
  context = std::make_unique<zmq::context_t>(1);
  zmq_transport = std::make_unique<ZmqTransport>(*context);
  check(zmq_transport->listen("tcp://127.0.0.1:0"), "listen " + name);
  endpoint = zmq_transport->bound_endpoint();
  // No fault is switched on but the partition's drop-all, so the seed and the
  // clock (used for delays) do not matter.
  transport = std::make_unique<testing::FaultyTransport>(*zmq_transport, system_clock, 0);
}

SyncOptions PeerNode::sync_options(const std::vector<std::string>& peers, uint64_t seed) const {
  SyncOptions so;
  so.endpoint = endpoint;
  so.peers = peers;
  so.seed = seed;
  so.features_off = features_off | (g_opt.compress_off ? wire::kFeatureCompress : 0);
  so.relay_ahead = relay_before_commit && !g_opt.relay_ahead_off;
  return so;
}

void PeerNode::start_threaded(const std::vector<std::string>& peers, uint64_t seed) {
  service =
      std::make_unique<PeerService>(*node, *transport, system_clock, sync_options(peers, seed), engine_logger(name));
  service->set_timing(&timing);
  loop = std::thread([this] {
    loop_started = Steady::now();
    service->start();
    service->run_until(stop, 5);
    final_counters = service->engine().counters();
    loop_ended = Steady::now();
  });
}

void PeerNode::start_stepped(const std::vector<std::string>& peers, uint64_t seed) {
  manual_clock = std::make_unique<ManualClock>(wall_ms());
  service =
      std::make_unique<PeerService>(*node, *transport, *manual_clock, sync_options(peers, seed), engine_logger(name));
  service->start();
}

void PeerNode::close() {
  stop = true;
  if (loop.joinable()) loop.join();
  else if (service) final_counters = service->engine().counters();
  if (transport) final_wire = wire();
  if (node) check(node->close(), "Node::close " + name);
  service.reset();
  transport.reset();
  zmq_transport.reset();
  context.reset();  // waits out ZMQ_LINGER for anything unsent
  node.reset();
}

WireCount PeerNode::wire() const {
  WireCount w;
  const testing::TrafficCounts& c = transport->counts();
  auto fill = [](TypeCount* into, const std::map<wire::Type, uint64_t>& frames,
                 const std::map<wire::Type, uint64_t>& bytes) {
    for (const auto& [type, n] : frames) into[static_cast<int>(type)].frames = n;
    for (const auto& [type, n] : bytes) into[static_cast<int>(type)].bytes = n;
  };
  fill(w.out, c.frames, c.bytes);
  fill(w.in, c.frames_in, c.bytes_in);
  w.out[0].frames = c.unreadable;
  for (const auto& [type, n] : zmq_transport->dropped_sends()) {
    auto base = zmq_dropped_base_.find(type);
    w.zmq_dropped[static_cast<int>(type)] = n - (base == zmq_dropped_base_.end() ? 0 : base->second);
  }
  w.partition_dropped = c.dropped;
  return w;
}

void PeerNode::reset_wire() {
  transport->reset_counts();
  zmq_dropped_base_ = zmq_transport->dropped_sends();
}

size_t PeerNode::flush() {
  const uint64_t dropped0 = zmq_transport->dropped_frames();
  const size_t passed = transport->release();
  return passed - static_cast<size_t>(zmq_transport->dropped_frames() - dropped0);
}

bool all_peers_ready(const PeerService& s, size_t expected) {
  auto ps = s.peers();
  size_t ready = 0;
  for (const auto& p : ps) ready += p.ready;
  return ready >= expected;
}

std::string loop_breakdown(const PeerNode& p) {
  const double run = seconds_between(p.loop_started, p.loop_ended);
  const TurnTiming& t = p.timing;
  double busy = t.tick_s;
  std::string parts;
  for (size_t k = 0; k < t.frames.size(); ++k) {
    busy += t.frames_s[k];
    if (t.frames[k] && t.frames_s[k] >= 0.01)
      parts += std::string(", ") + kTypeNames[k] + " " + time_text(t.frames_s[k]) + " (" + grouped(t.frames[k]) +
               " frames)";
  }
  return fmt("event loop busy %.0f%%", 100 * busy / run) + " of " + time_text(run) + ": on_tick " + time_text(t.tick_s) +
         parts;
}

}  // namespace replog::bench
