// replog::Node (include/replog/node.h) over the engine's Node.
#include "replog/node.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "node/api/daemon.h"
#include "node/engine/node.h"
#include "protocol/msgpack_codec.h"

namespace replog {

// The feeds of Node::subscribe, filled by the engine's change sink.
struct Subscribers {
  std::mutex mu;
  std::vector<std::weak_ptr<ChangeFeed>> feeds;  // guarded by mu

  void push(const std::vector<Change>& changes) {
    std::lock_guard<std::mutex> l(mu);
    std::erase_if(feeds, [](const std::weak_ptr<ChangeFeed>& f) { return f.expired(); });
    for (auto& weak : feeds)
      if (auto feed = weak.lock()) feed->push(changes);
  }
  void close() {
    std::lock_guard<std::mutex> l(mu);
    for (auto& weak : feeds)
      if (auto feed = weak.lock()) feed->close();
    feeds.clear();
  }
};

// How a networked node's daemon thread got on: serving (with its node), or ended.
struct DaemonStart {
  std::mutex mu;
  std::condition_variable cv;
  engine::Node* node = nullptr;  // guarded by mu; valid until the daemon ends
  bool ended = false;            // guarded by mu
  Status status;                 // guarded by mu: what run_daemon returned
};

struct Node::Impl {
  engine::Node* engine = nullptr;        // null once closed
  std::unique_ptr<engine::Node> owned;   // without networking: the node itself
  // With networking: the daemon's thread runs the node until `stop`.
  std::thread daemon;
  std::shared_ptr<std::atomic<bool>> stop;
  std::shared_ptr<DaemonStart> start;
  // Made by the first subscribe(): until then the engine builds no changes.
  std::once_flag subscribed;
  std::shared_ptr<Subscribers> subscribers = std::make_shared<Subscribers>();
};

namespace {

engine::NodeOptions engine_options(const NodeOptions& o) {
  engine::NodeOptions e;
  e.dir = o.dir;
  e.max_clock_skew_ms = o.max_clock_skew_ms;
  e.undo_window = o.undo_window;
  e.checkpoint_interval = o.checkpoint_interval;
  e.checkpoints_kept = o.checkpoints_kept;
  e.initial_map_bytes = o.initial_map_bytes;
  e.methods = o.methods;
  return e;
}

Status closed_error() { return Status::invalid_argument("the node is closed"); }

}  // namespace

Node::Impl* Node::live() const { return impl_ && impl_->engine ? impl_.get() : nullptr; }

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(Node&&) noexcept = default;
Node::~Node() { (void)close(); }

Status Node::init(const InitOptions& options) {
  engine::InitOptions e;
  e.dir = options.dir;
  e.cluster = options.cluster;
  e.schema = options.schema;
  return engine::Node::init(e);
}

Result<Node> Node::open(const NodeOptions& options) {
  if (!options.network.listen.empty()) return open_networked(options);
  auto engine = engine::Node::open(engine_options(options));
  if (!engine) return engine.status();
  auto impl = std::make_unique<Impl>();
  impl->owned = std::move(engine).value();
  impl->engine = impl->owned.get();
  return Node(std::move(impl));
}

Result<Node> Node::open_read_only(const NodeOptions& options) {
  auto engine = engine::Node::open_read_only(engine_options(options));
  if (!engine) return engine.status();
  auto impl = std::make_unique<Impl>();
  impl->owned = std::move(engine).value();
  impl->engine = impl->owned.get();
  return Node(std::move(impl));
}

// The daemon of `replog node` on a thread of its own, with the application's
// methods; the Node uses the engine it opens once it serves.
Result<Node> Node::open_networked(const NodeOptions& options) {
  DaemonOptions d;
  d.node = engine_options(options);
  d.listen = options.network.listen;
  d.advertise = options.network.advertise;
  d.peers = options.network.peers;
  d.insecure = options.network.insecure;
  d.discovery = options.network.discovery;
  d.anti_entropy_ms = options.network.anti_entropy_ms;
  d.log_level = options.network.log_level;
  d.archive = options.network.archive;
  d.s3_endpoint = options.network.s3_endpoint;
  d.archive_poll_ms = options.network.archive_poll_ms;
  d.archive_grace_ms = options.network.archive_grace_ms;
  auto impl = std::make_unique<Impl>();
  impl->stop = std::make_shared<std::atomic<bool>>(false);
  impl->start = std::make_shared<DaemonStart>();
  d.on_serving = [start = impl->start](engine::Node& node) {
    std::lock_guard<std::mutex> l(start->mu);
    start->node = &node;
    start->cv.notify_all();
  };
  impl->daemon = std::thread([d = std::move(d), start = impl->start, stop = impl->stop] {
    Status s = run_daemon(d, *stop);
    std::lock_guard<std::mutex> l(start->mu);
    start->ended = true;
    start->status = s;
    start->cv.notify_all();
  });
  std::unique_lock<std::mutex> l(impl->start->mu);
  impl->start->cv.wait(l, [&] { return impl->start->node || impl->start->ended; });
  if (!impl->start->node) {
    Status failed = impl->start->status;
    l.unlock();
    impl->daemon.join();
    return failed.is_ok() ? Status::io_error("the node stopped before it served") : failed;
  }
  impl->engine = impl->start->node;
  l.unlock();
  return Node(std::move(impl));
}

Result<UpdateId> Node::call(const std::string& method, const Value& arg) {
  Impl* i = live();
  if (!i) return closed_error();
  return i->engine->call(method, arg);
}

Result<Value> Node::read(std::string_view path) const {
  return read(path.empty() ? Path{} : parse_dotted_path(path));
}

Result<Value> Node::read(const Path& path) const {
  Impl* i = live();
  if (!i) return closed_error();
  std::optional<Value> found;
  i->engine->read([&](const State& state) {
    if (const Value* v = state.get(path)) found = *v;
  });
  if (!found) return Status::not_found("nothing at " + (path.empty() ? "the root" : path_to_string(path)));
  return std::move(*found);
}

Result<TypeRegistry> Node::schema() const {
  Impl* i = live();
  if (!i) return closed_error();
  TypeRegistry out;
  i->engine->read([&](const State& state) { out = state.schema(); });
  return out;
}

std::vector<Conflict> Node::conflicts() const {
  std::vector<Conflict> out;
  if (Impl* i = live()) i->engine->read([&](const State& state) {
      for (const auto& [id, conflict] : state.conflicts()) out.push_back(conflict);
    });
  return out;
}

std::string Node::state_hash() const { return live() ? live()->engine->state_hash() : std::string(); }
Status Node::fold_status() const { return live() ? live()->engine->fold_status() : closed_error(); }
VersionVector Node::vector() const { return live() ? live()->engine->vector() : VersionVector(); }
OriginId Node::node_id() const { return live() ? live()->engine->node_id() : 0; }
std::string Node::cluster_id() const { return live() ? live()->engine->cluster_id() : std::string(); }

namespace {

std::vector<LogEntry> log_entries(const std::vector<Update>& updates) {
  std::vector<LogEntry> out;
  out.reserve(updates.size());
  for (const Update& u : updates) {
    LogEntry e;
    e.id = u.id();
    e.seq = u.seq();
    e.method = std::string(u.view().method);
    auto arg = decode_msgpack(u.view().arg);
    if (arg) e.arg = std::move(arg).value();
    else e.arg_error = arg.status().message();
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Result<std::vector<LogEntry>> Node::read_log(std::optional<UpdateId> after, size_t max) const {
  Impl* i = live();
  if (!i) return closed_error();
  auto updates = i->engine->read_log(after, max);
  if (!updates) return updates.status();
  return log_entries(*updates);
}

Result<std::vector<LogEntry>> Node::read_log_since(VersionVector& seen, size_t max,
                                                   std::chrono::milliseconds wait) const {
  Impl* i = live();
  if (!i) return closed_error();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  uint64_t generation = i->engine->commit_generation();
  for (;;) {
    auto updates = i->engine->read_since(seen, max);
    if (!updates) return updates.status();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!updates->empty() || left.count() <= 0) return log_entries(*updates);
    // Woken by a commit of this process; another process's commits are seen when the wait ends.
    generation = i->engine->wait_for_commit(generation, left);
  }
}

std::shared_ptr<ChangeFeed> Node::subscribe(size_t capacity) {
  Impl* i = live();
  auto feed = std::make_shared<ChangeFeed>(capacity);
  if (!i) {
    feed->close();
    return feed;
  }
  std::shared_ptr<Subscribers> subs = i->subscribers;
  {
    std::lock_guard<std::mutex> l(subs->mu);
    subs->feeds.push_back(feed);
  }
  std::call_once(i->subscribed, [&] {
    i->engine->set_change_sink([subs](const std::vector<Change>& changes) { subs->push(changes); });
  });
  return feed;
}

Status Node::close() {
  if (!live()) return Status::ok();
  Status s;
  impl_->engine = nullptr;
  if (impl_->daemon.joinable()) {
    // The daemon checkpoints, closes the node and releases the directory.
    *impl_->stop = true;
    impl_->daemon.join();
    std::lock_guard<std::mutex> l(impl_->start->mu);
    s = impl_->start->status;
  } else {
    s = impl_->owned->close();
    impl_->owned.reset();  // releases the directory's lock
  }
  impl_->subscribers->close();
  return s;
}

}  // namespace replog
