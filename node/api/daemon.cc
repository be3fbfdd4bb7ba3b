#include "node/api/daemon.h"

#include <iostream>
#include <mutex>
#include <set>
#include <zmq.hpp>

#include "node/api/local_api.h"
#include "node/sync/peer_service.h"
#include "node/sync/zmq_transport.h"
#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "replog/value.h"
#include "storage/data_dir.h"
#include "storage/cluster_secret.h"
#include "storage/identity.h"
#include "storage/trust.h"

namespace replog {

namespace {

std::mutex log_mu;

void log_line(int level, const std::string& line) {
  static const char* names[] = {"error", "warn", "info", "debug"};
  SystemClock clock;
  std::lock_guard<std::mutex> l(log_mu);
  std::cerr << format_iso8601(Time::from_millis(clock.now_millis())) << " " << names[std::clamp(level, 0, 3)] << " "
            << line << std::endl;
}

struct StaticPeer {
  std::string endpoint;
  std::string key;  // empty with --insecure
};

// --peer values: ID@tcp://HOST:PORT, or (insecure only) tcp://HOST:PORT.
Result<std::vector<StaticPeer>> parse_peers(const DaemonOptions& options, const SyncEngine::Log& log) {
  std::vector<StaticPeer> out;
  for (const auto& p : options.peers) {
    auto at = p.find('@');
    StaticPeer sp{at == std::string::npos ? p : p.substr(at + 1), ""};
    if (options.insecure) {
      if (at != std::string::npos) log(1, "peer " + p + ": its device id is not checked with --insecure");
    } else if (at == std::string::npos) {
      return Status::invalid_argument("peer " + p + ": give it as DEVICE_ID@" + p +
                                      " (replog id on that device prints the id), or run with --insecure");
    } else {
      auto key = parse_device_id(p.substr(0, at));
      if (!key) return Status::invalid_argument("peer " + p + ": " + key.status().message());
      sp.key = std::move(key).value();
    }
    out.push_back(std::move(sp));
  }
  return out;
}

// The trusted device whose CURVE key is `curve_key`; the X25519 forms are
// worked out again only when the trust list changed.
class Admission {
 public:
  explicit Admission(const TrustStore& trust) : trust_(trust) {}
  std::optional<std::string> operator()(std::string_view curve_key) {
    if (generation_ != trust_.generation() || !loaded_) {
      loaded_ = true;
      generation_ = trust_.generation();
      by_curve_.clear();
      for (const auto& d : trust_.list())
        if (auto c = curve_public_key(d.public_key)) by_curve_[*c] = d.public_key;
    }
    auto it = by_curve_.find(std::string(curve_key));
    if (it == by_curve_.end()) return std::nullopt;
    return it->second;
  }

 private:
  const TrustStore& trust_;
  bool loaded_ = false;
  uint64_t generation_ = 0;
  std::map<std::string, std::string> by_curve_;
};

std::set<std::string> trusted_keys(const TrustStore& trust) {
  std::set<std::string> keys;
  for (const auto& d : trust.list()) keys.insert(d.public_key);
  return keys;
}

// Applies a change of the trust list to the links: a removed device loses
// every link at once; a static peer that became trusted is dialled.
class TrustFollower {
 public:
  TrustFollower(const TrustStore& trust, std::vector<StaticPeer> statics, const SyncEngine::Log& log)
      : trust_(trust), statics_(std::move(statics)), log_(log) {}

  // The static peers to dial now; the others wait for their key to be trusted.
  std::vector<StaticPeer> start(bool insecure) {
    generation_ = trust_.generation();
    known_ = trusted_keys(trust_);
    std::vector<StaticPeer> now;
    for (const auto& sp : statics_) {
      if (insecure || known_.count(sp.key)) now.push_back(sp);
      else log_(1, "peer " + format_device_id(sp.key) + "@" + sp.endpoint + " is not trusted: not dialled until `replog trust add " + format_device_id(sp.key) + "`");
    }
    return now;
  }

  void poll(SyncEngine& engine, ZmqTransport& transport) {
    if (trust_.generation() == generation_) return;
    generation_ = trust_.generation();
    std::set<std::string> now = trusted_keys(trust_);
    for (const auto& key : known_) {
      if (now.count(key)) continue;
      engine.forget_device(key);
      log_(2, "device " + format_device_id(key) + " is no longer trusted: its links are closed");
    }
    if (Status s = transport.close_untrusted(); !s) log_(0, "closing an untrusted device's links: " + s.message());
    for (const auto& sp : statics_)
      if (now.count(sp.key) && !known_.count(sp.key)) engine.add_peer(sp.endpoint, sp.key);
    known_ = std::move(now);
  }

 private:
  const TrustStore& trust_;
  std::vector<StaticPeer> statics_;
  SyncEngine::Log log_;
  uint64_t generation_ = 0;
  std::set<std::string> known_;
};

}  // namespace

namespace {

// CURVE with admission by the trust list, or (--insecure) the NULL mechanism.
Result<std::unique_ptr<ZmqTransport>> make_transport(const DaemonOptions& options, const Identity& identity,
                                                     const TrustStore& trust, zmq::context_t& context) {
  if (options.insecure) return std::make_unique<ZmqTransport>(context);
  auto keys = identity.curve_keys();
  if (!keys) return keys.status();
  return std::make_unique<ZmqTransport>(context, TransportSecurity{*keys, Admission(trust)});
}

SyncOptions sync_options(const DaemonOptions& options, const ZmqTransport& transport, const Identity& identity,
                         TrustStore* trust, const std::vector<StaticPeer>& dial_now) {
  SyncOptions sync;
  sync.endpoint = options.advertise.empty() ? transport.bound_endpoint() : options.advertise;
  for (const auto& sp : dial_now) {
    sync.peers.push_back(sp.endpoint);
    if (!sp.key.empty()) sync.peer_keys[sp.endpoint] = sp.key;
  }
  if (!options.insecure) sync.own_key = identity.public_key();
  // Membership spreads between authenticated devices only (never with --insecure).
  if (!options.insecure) sync.members = trust;
  sync.anti_entropy_ms = options.anti_entropy_ms;
  return sync;
}

// Every kind of refusal, and what membership took: counted on the event
// loop, read by the API's thread.
class Refusals {
 public:
  void count(const SyncCounters& e, const TransportCounters& t) {
    auto n = [](uint64_t v) { return Value(static_cast<int64_t>(v)); };
    Map now{{"handshakes_refused", n(t.handshakes_refused)}, {"bad_frames", n(e.bad_frames)},
            {"updates_refused", n(e.refused_updates)}, {"endpoints_refused", n(e.refused_endpoints)},
            {"sends_dropped", n(t.dropped)}, {"sends_unroutable", n(t.unroutable)}, {"rebinds", n(t.rebinds)},
            {"frames_blocked", n(e.blocked_frames)}, {"sources_blocked", n(e.blocks)},
            {"silent_peers", n(e.silent_peers)}};
    Map refused;
    for (const auto& [why, count] : e.members_refused) refused[why] = n(count);
    Map members{{"received", n(e.members_received)}, {"accepted", n(e.members_accepted)},
                {"refused", Value(std::move(refused))}};
    std::lock_guard<std::mutex> l(mu_);
    counts_ = std::move(now);
    members_ = std::move(members);
  }
  Value snapshot() const {
    std::lock_guard<std::mutex> l(mu_);
    return Value(counts_);
  }
  Value members() const {
    std::lock_guard<std::mutex> l(mu_);
    return Value(members_);
  }

 private:
  mutable std::mutex mu_;
  Map counts_;   // guarded by mu_
  Map members_;  // guarded by mu_
};

void log_start(const SyncEngine::Log& logger, const DaemonOptions& options, const engine::Node& node,
               const Identity& identity, const TrustStore& trust, const ZmqTransport& transport, size_t peers) {
  if (options.insecure)
    logger(1, "--insecure: peer traffic is neither encrypted nor authenticated; anyone who reaches " +
                  transport.bound_endpoint() + " can read and write this node");
  logger(2, "node " + hex16(node.node_id()) + " (device " + identity.device_id() + ") of cluster " +
                node.cluster_id() + " listening on " + transport.bound_endpoint() +
                (options.insecure ? " (insecure)" : " (CURVE, " + std::to_string(trust.list().size()) + " trusted devices)") +
                ", " + std::to_string(peers) + " peers configured");
}

// The event loop, until `stop`: peers, trust changes, and the refusal counts.
void serve(PeerService& service, ZmqTransport& transport, TrustFollower& follower, Refusals& refusals,
           const std::atomic<bool>& stop) {
  SystemClock clock;
  service.start();
  int64_t counted_ms = 0;
  while (!stop.load()) {
    service.run_once(5);
    follower.poll(service.engine(), transport);
    if (const int64_t now = clock.now_millis(); now - counted_ms >= 100) {
      refusals.count(service.engine().counters(), transport.counters());
      counted_ms = now;
    }
  }
}

}  // namespace

Status run_daemon(const DaemonOptions& options, const std::atomic<bool>& stop) {
  SyncEngine::Log logger = [&](int level, const std::string& line) {
    if (level <= options.log_level) log_line(level, line);
  };
  if (options.listen.empty()) return Status::invalid_argument("give --listen tcp://IP:PORT");
  auto statics = parse_peers(options, logger);
  if (!statics) return statics.status();

  auto node_or = engine::Node::open(options.node);
  if (!node_or) return node_or.status();
  std::unique_ptr<engine::Node> node = std::move(node_or).value();
  DataDir dir(options.node.dir);
  // Made here, under the node's lock, for a directory an earlier build made.
  auto identity = load_or_create_identity(dir.identity_file(), Env::posix());
  if (!identity) return identity.status();
  auto cluster_secret = load_or_create_cluster_secret(dir.cluster_secret_file(), Env::posix());
  if (!cluster_secret) return cluster_secret.status();
  // A trust file that does not load stops the node: nothing about whom to trust is guessed.
  auto trust = TrustStore::open(dir.trust_file(), Env::posix());
  if (!trust) return trust.status();

  // The peers' sockets have a context of their own: its ZAP handler must
  // answer for them alone, not for the local API's.
  zmq::context_t peer_context(1);
  auto transport = make_transport(options, *identity, **trust, peer_context);
  if (!transport) return transport.status();
  REPLOG_RETURN_IF_ERROR((*transport)->listen(options.listen));
  TrustFollower follower(**trust, std::move(statics).value(), logger);
  SyncOptions sync = sync_options(options, **transport, *identity, trust->get(), follower.start(options.insecure));
  SystemClock clock;
  PeerService service(*node, **transport, clock, sync, logger);

  zmq::context_t api_context(1);
  LocalApi api(*node, api_context, [&service] {
    List peers;
    for (const auto& p : service.peers()) peers.push_back(peer_status_value(p));
    return Value(std::move(peers));
  });
  node->set_commit_listener([&](const std::vector<Update>& updates) {
    service.on_committed(updates);
    api.on_committed(updates);
  });
  Refusals refusals;
  refusals.count(service.engine().counters(), (*transport)->counters());
  api.set_extra_status([&] {
    return Map{{"refusals", refusals.snapshot()}, {"members", refusals.members()}, {"secure", Value(!options.insecure)}};
  });
  api.set_trust(trust->get());
  REPLOG_RETURN_IF_ERROR(api.start());

  log_start(logger, options, *node, *identity, **trust, **transport, sync.peers.size());
  serve(service, **transport, follower, refusals, stop);
  logger(2, "stopping: writing a checkpoint");
  api.stop();
  Status s = node->close();
  logger(2, s ? "stopped" : "stopped with an error: " + s.message());
  return s;
}

}  // namespace replog
