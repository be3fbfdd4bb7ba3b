#include "replication/peer_node.h"

#include "protocol/wire.h"

namespace replog::bench {

int frame_type(const std::string& bytes) {
  auto type = wire::type_of(bytes);
  return type ? static_cast<int>(type.value()) : 0;
}

const char* const kTypeNames[7] = {"other", "hello", "error", "vector", "request", "updates", "push"};

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
  for (int i = 0; i < 7; ++i) {
    out[i].frames += o.out[i].frames, out[i].bytes += o.out[i].bytes;
    in[i].frames += o.in[i].frames, in[i].bytes += o.in[i].bytes;
    zmq_dropped[i] += o.zmq_dropped[i];
  }
  partition_dropped += o.partition_dropped;
  return *this;
}

std::string dropped_text(const WireCount& w) {
  std::string out;
  for (int t = 0; t < 7; ++t)
    if (w.zmq_dropped[t])
      out += std::string(out.empty() ? "" : ", ") + grouped(w.zmq_dropped[t]) + " " + kTypeNames[t];
  return out.empty() ? "none" : out;
}

// --- CountingTransport -------------------------------------------------------------

uint64_t CountingTransport::send_inner(const Link& link, const std::string& bytes) {
  const uint64_t dropped0 = inner_.dropped_frames();
  inner_.send(link, bytes);
  const uint64_t dropped = inner_.dropped_frames() - dropped0;
  count_.zmq_dropped[frame_type(bytes)] += dropped;
  return dropped;
}

void CountingTransport::send(const Link& link, const std::string& bytes) {
  if (partitioned_) {
    ++count_.partition_dropped;
    return;
  }
  auto& c = count_.out[frame_type(bytes)];
  ++c.frames;
  c.bytes += bytes.size();
  if (hold_) {
    outbox_.push_back({link, bytes});
    return;
  }
  send_inner(link, bytes);
}

std::vector<Frame> CountingTransport::poll(int timeout_ms) {
  auto frames = inner_.poll(timeout_ms);
  for (const auto& f : frames) {
    auto& c = count_.in[frame_type(f.bytes)];
    ++c.frames;
    c.bytes += f.bytes.size();
  }
  return frames;
}

size_t CountingTransport::flush() {
  size_t sent = 0;
  for (const auto& f : outbox_) sent += send_inner(f.link, f.bytes) ? 0 : 1;
  outbox_.clear();
  return sent;
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
  node = open_node(dir, "Node::open " + name);
  node->set_commit_listener([this](const std::vector<Update>& ups) {
    if (engine) engine->on_committed(ups);
    if (on_commit) on_commit(ups);
  });
  context = std::make_unique<zmq::context_t>(1);
  zmq_transport = std::make_unique<ZmqTransport>(*context);
  check(zmq_transport->listen("tcp://127.0.0.1:0"), "listen " + name);
  endpoint = zmq_transport->bound_endpoint();
  transport = std::make_unique<CountingTransport>(*zmq_transport);
}

SyncOptions PeerNode::sync_options(const std::vector<std::string>& peers, uint64_t seed) const {
  SyncOptions so;
  so.endpoint = endpoint;
  so.peers = peers;
  so.seed = seed;
  return so;
}

void PeerNode::run_loop() {
  loop_started = Steady::now();
  engine->start();
  while (!stop.load()) {
    // As the daemon does: one poll's frames at once (their pushes are
    // stored together); the time is shared out evenly among the frames.
    auto frames = transport->poll(5);
    if (!frames.empty()) {
      auto t0 = Steady::now();
      engine->on_frames(frames);
      const double each = seconds_since(t0) / static_cast<double>(frames.size());
      for (const auto& f : frames) {
        const int t = frame_type(f.bytes);
        busy_s[t] += each;
        ++busy_frames[t];
      }
    }
    auto t0 = Steady::now();
    engine->on_tick();
    tick_s += seconds_since(t0);
  }
  final_counters = engine->counters();
  loop_ended = Steady::now();
}

void PeerNode::start_threaded(const std::vector<std::string>& peers, uint64_t seed) {
  engine = std::make_unique<SyncEngine>(*node, *transport, system_clock, sync_options(peers, seed),
                                        engine_logger(name));
  loop = std::thread([this] { run_loop(); });
}

void PeerNode::start_stepped(const std::vector<std::string>& peers, uint64_t seed) {
  manual_clock = std::make_unique<ManualClock>(wall_ms());
  engine = std::make_unique<SyncEngine>(*node, *transport, *manual_clock, sync_options(peers, seed),
                                        engine_logger(name));
  engine->start();
}

void PeerNode::close() {
  stop = true;
  if (loop.joinable()) loop.join();
  else if (engine) final_counters = engine->counters();
  if (transport) final_wire = transport->count();
  if (node) check(node->close(), "Node::close " + name);
  engine.reset();
  transport.reset();
  zmq_transport.reset();
  context.reset();  // waits out ZMQ_LINGER for anything unsent
  node.reset();
}

bool all_peers_ready(const SyncEngine& e, size_t expected) {
  auto ps = e.peers();
  size_t ready = 0;
  for (const auto& p : ps) ready += p.ready;
  return ready >= expected;
}

std::string loop_breakdown(const PeerNode& p) {
  const double run = seconds_between(p.loop_started, p.loop_ended);
  double busy = p.tick_s;
  std::string parts;
  for (int t = 0; t < 7; ++t) {
    busy += p.busy_s[t];
    if (p.busy_frames[t] && p.busy_s[t] >= 0.01)
      parts += std::string(", ") + kTypeNames[t] + " " + time_text(p.busy_s[t]) + " (" + grouped(p.busy_frames[t]) +
               " frames)";
  }
  return fmt("event loop busy %.0f%%", 100 * busy / run) + " of " + time_text(run) + ": on_tick " + time_text(p.tick_s) +
         parts;
}

}  // namespace replog::bench
