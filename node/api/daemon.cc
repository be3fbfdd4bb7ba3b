#include "node/api/daemon.h"

#include <arpa/inet.h>

#include <algorithm>

#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <zmq.hpp>

#include "node/api/invite_ops.h"
#include "node/api/local_api.h"
#include "node/archive/archive_keys.h"
#include "node/archive/archive_service.h"
#include "node/discovery/discovery.h"
#include "node/http/http_server.h"
#include "node/http/routes.h"
#include "node/sync/endpoint.h"
#include "node/sync/invites.h"
#include "node/sync/peer_service.h"
#include "node/sync/zmq_transport.h"
#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "protocol/invite.h"
#include "protocol/origin_proof.h"
#include "replog/value.h"
#include "storage/data_dir.h"
#include "storage/cluster_secret.h"
#include "storage/identity.h"
#include "storage/peers.h"
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
  std::string how = "static";  // PeerStatus::how: "static" (--peer), or as peers.json says ("invite")
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

// The peers `replog join` stored (peers.json), after the --peer ones: every
// endpoint of each, dialled as a --peer is. Not with --insecure, which dials no
// device by its key.
Status add_stored_peers(const DaemonOptions& options, const DataDir& dir, std::vector<StaticPeer>& statics,
                        const SyncEngine::Log& log) {
  auto stored = load_peers(dir.peers_file(), Env::posix());
  if (!stored) return stored.status();
  if (options.insecure && !stored->empty()) {
    log(1, dir.peers_file() + ": its peers are not dialled with --insecure");
    return Status::ok();
  }
  for (const auto& p : *stored)
    for (const auto& e : p.endpoints) {
      if (Status s = check_peer_endpoint(e); !s) return s.with_context(dir.peers_file());
      bool listed = std::any_of(statics.begin(), statics.end(),
                                [&](const StaticPeer& sp) { return sp.endpoint == e && sp.key == p.public_key; });
      if (!listed) statics.push_back(StaticPeer{e, p.public_key, p.how});
    }
  return Status::ok();
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

  // True when the trust list changed.
  bool poll(SyncEngine& engine, ZmqTransport& transport) {
    if (trust_.generation() == generation_) return false;
    generation_ = trust_.generation();
    std::set<std::string> now = trusted_keys(trust_);
    for (const auto& key : known_) {
      if (now.count(key)) continue;
      engine.forget_device(key);
      log_(2, "device " + format_device_id(key) + " is no longer trusted: its links are closed");
    }
    if (Status s = transport.close_untrusted(); !s) log_(0, "closing an untrusted device's links: " + s.message());
    for (const auto& sp : statics_)
      if (now.count(sp.key) && !known_.count(sp.key)) engine.add_peer(sp.endpoint, sp.key, sp.how);
    known_ = std::move(now);
    return true;
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
// While an invite is open, keys nobody trusts are admitted as joiners.
Result<std::unique_ptr<ZmqTransport>> make_transport(const DaemonOptions& options, const Identity& identity,
                                                     const TrustStore& trust, const InviteBook& invites,
                                                     zmq::context_t& context) {
  if (options.insecure) return std::make_unique<ZmqTransport>(context);
  auto keys = identity.curve_keys();
  if (!keys) return keys.status();
  return std::make_unique<ZmqTransport>(
      context, TransportSecurity{*keys, Admission(trust), [&invites] { return invites.any_open(); }});
}

SyncOptions sync_options(const DaemonOptions& options, const ZmqTransport& transport, const Identity& identity,
                         TrustStore* trust, const std::vector<StaticPeer>& dial_now) {
  SyncOptions sync;
  sync.endpoint = options.advertise.empty() ? transport.bound_endpoint() : options.advertise;
  for (const auto& sp : dial_now) {
    sync.peers.push_back(sp.endpoint);
    if (!sp.key.empty()) sync.peer_keys[sp.endpoint] = sp.key;
    if (sp.how != "static") sync.peer_how[sp.endpoint] = sp.how;
  }
  if (!options.insecure) {
    sync.own_key = identity.public_key();
    sync.device_secret = std::string(identity.secret_key());
  }
  // A device that dialled in: how it came onto the trust list, when that says more than "by hand".
  sync.how_inbound = [trust](const std::string& key) {
    auto d = trust->find(key);
    return d && d->how != "manual" ? d->how : std::string();
  };
  // Membership spreads between authenticated devices only (never with --insecure).
  if (!options.insecure) sync.members = trust;
  sync.anti_entropy_ms = options.anti_entropy_ms;
  return sync;
}

// Every kind of refusal, and what membership took: counted on the event
// loop, read by the API's thread.
class Refusals {
 public:
  void count(const SyncCounters& e, const TransportCounters& t, const DiscoveryCounters& d, const JoinCounters& j) {
    auto n = [](uint64_t v) { return Value(static_cast<int64_t>(v)); };
    Map now{{"handshakes_refused", n(t.handshakes_refused)}, {"bad_frames", n(e.bad_frames)},
            {"pending_joiners", n(t.joiners_admitted)}, {"join_refused", n(j.refused)},
            {"joiner_frames_dropped", n(j.bad_frames + t.joiner_frames_dropped)}, {"joined", n(j.joined)},
            {"updates_refused", n(e.refused_updates)}, {"endpoints_refused", n(e.refused_endpoints)},
            {"sends_dropped", n(t.dropped)}, {"sends_unroutable", n(t.unroutable)}, {"rebinds", n(t.rebinds)},
            {"frames_blocked", n(e.blocked_frames)}, {"sources_blocked", n(e.blocks)},
            {"pushes_dropped", n(e.pushes_dropped)},
            {"silent_peers", n(e.silent_peers)}, {"tip_mismatches", n(e.tip_mismatches)},
            {"beacons_refused", n(d.beacons_malformed + d.beacons_bad_mac)},
            {"discovery_dials_limited", n(d.dials_rate_limited)}};
    Map refused;
    for (const auto& [why, count] : e.members_refused) refused[why] = n(count);
    Map members{{"received", n(e.members_received)}, {"accepted", n(e.members_accepted)},
                {"refused", Value(std::move(refused))}};
    Map beacons{{"beacons_sent", n(d.beacons_sent)}, {"send_errors", n(d.send_errors)},
                {"beacons_received", n(d.beacons_received)}, {"beacons_malformed", n(d.beacons_malformed)},
                {"beacons_bad_mac", n(d.beacons_bad_mac)}, {"beacons_self", n(d.beacons_self)},
                {"beacons_unknown_device", n(d.beacons_unknown_device)}, {"beacons_known", n(d.beacons_known)},
                {"dials", n(d.dials)}, {"dials_skipped_linked", n(d.dials_skipped_linked)},
                {"dials_rate_limited", n(d.dials_rate_limited)}, {"dials_skipped_ipv6", n(d.dials_skipped_ipv6)}};
    std::lock_guard<std::mutex> l(mu_);
    counts_ = std::move(now);
    discovery_counts_ = std::move(beacons);
    members_ = std::move(members);
  }
  Value snapshot() const {
    std::lock_guard<std::mutex> l(mu_);
    return Value(counts_);
  }
  Map discovery_snapshot() const {
    std::lock_guard<std::mutex> l(mu_);
    return discovery_counts_;
  }
  Value members() const {
    std::lock_guard<std::mutex> l(mu_);
    return Value(members_);
  }

 private:
  mutable std::mutex mu_;
  Map counts_;             // guarded by mu_
  Map discovery_counts_;   // guarded by mu_
  Map members_;            // guarded by mu_
};

// The port of tcp://HOST:PORT (0 when there is none).
uint16_t port_of(const std::string& endpoint) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    int port = std::stoi(endpoint.substr(colon + 1));
    return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

// --discovery-to values: IPv4 HOST:PORT.
Status check_discovery_targets(const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    auto colon = t.rfind(':');
    in_addr a{};
    if (colon == std::string::npos || inet_pton(AF_INET, t.substr(0, colon).c_str(), &a) != 1 ||
        port_of(t) == 0)
      return Status::invalid_argument("--discovery-to " + t + ": expected IPV4:PORT, e.g. 127.0.0.1:21029");
  }
  return Status::ok();
}

// Discovery as the options ask, or nothing (off, or its socket did not open:
// the node runs on with its static peers and says why in the log and status).
std::unique_ptr<Discovery> start_discovery(const DaemonOptions& options, const ClusterSecret& secret,
                                           const Identity& identity, const TrustStore& trust, SyncEngine& engine,
                                           const ZmqTransport& transport, const SyncEngine::Log& log,
                                           std::string* state) {
  if (!options.discovery.value_or(!options.insecure)) {
    *state = "off";
    return nullptr;
  }
  // A node bound to a loopback address cannot be dialled from another host:
  // a beacon would only send the others to an address it does not listen on.
  const std::string bound = transport.bound_endpoint();
  if (options.discovery_to.empty() && (bound.rfind("tcp://127.", 0) == 0 || bound.rfind("tcp://[::1]", 0) == 0 ||
                                       bound.rfind("tcp://localhost:", 0) == 0)) {
    *state = "off: listening on loopback only";
    log(2, "discovery is off: " + bound + " is a loopback address, which no other device can dial");
    return nullptr;
  }
  DiscoveryOptions d;
  d.udp_port = options.discovery_port;
  d.listen_port = port_of(transport.bound_endpoint());
  d.interval_ms = options.discovery_interval_ms;
  d.also_to = options.discovery_to;
  Discovery::Hooks hooks;
  hooks.trusted = [&trust] {
    std::vector<std::string> keys;
    for (auto& dev : trust.list()) keys.push_back(std::move(dev.public_key));
    return keys;
  };
  hooks.linked = [&engine](const std::string& key) { return engine.linked_to(key); };
  hooks.dial = [&engine](const std::string& endpoint, const std::string& key) { engine.dial_discovered(endpoint, key); };
  auto discovery = std::make_unique<Discovery>(d, BeaconKeys::from(secret), identity.public_key(), hooks, log);
  if (Status s = discovery->open(); !s) {
    log(1, "discovery is off: " + s.message());
    *state = "failed: " + s.message();
    return nullptr;
  }
  *state = "on";
  log(2, "discovery: beacons on UDP port " + std::to_string(d.udp_port) + " every ~" +
             std::to_string(d.interval_ms) + " ms, announcing TCP port " + std::to_string(d.listen_port));
  return discovery;
}

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

// Revocations in effect reach the trust list: a revoked origin's device key is
// removed (a tombstone authored by this node, which spreads), so its links
// close and its later runs are held back as a stranger's. Checked every
// second, since a revocation may arrive before the key of the origin it names.
class RevocationFollower {
 public:
  RevocationFollower(const engine::Node& node, TrustStore& trust, std::string own_key, const SyncEngine::Log& log)
      : node_(node), trust_(trust), own_key_(std::move(own_key)), log_(log) {}

  void poll(int64_t now_ms) {
    if (now_ms - checked_ms_ < 1000) return;
    checked_ms_ = now_ms;
    for (const std::string& key : node_.revoked_member_keys()) {
      if (key == own_key_ || !trust_.contains(key)) continue;
      auto removed = trust_.remove(key, own_key_, now_ms);
      if (!removed) log_(0, "removing revoked device " + format_device_id(key) + " from trust: " + removed.status().message());
      else log_(1, "device " + format_device_id(key) + " is revoked: no longer trusted");
    }
  }

 private:
  const engine::Node& node_;
  TrustStore& trust_;
  std::string own_key_;
  const SyncEngine::Log& log_;
  int64_t checked_ms_ = 0;
};

// Membership (PROTOCOL.md §8): an origin counts when its key, or the device key
// certifying it, is this node's own or on the trust list. The node opens before
// the list loads; bind() comes before any peer is heard.
class Membership {
 public:
  engine::NodeOptions node_options(const DaemonOptions& options) {
    engine::NodeOptions o = options.node;
    if (!options.insecure)
      o.is_member = [this](std::string_view key) { return key == own_device_ || (trust_ && trust_->contains(key)); };
    return o;
  }
  void bind(const TrustStore* trust, std::string own_device) {
    trust_ = trust;
    own_device_ = std::move(own_device);
  }

 private:
  const TrustStore* trust_ = nullptr;
  std::string own_device_;
};

// The event loop, until `stop`: peers, joiners, trust changes, and the refusal
// counts. Discovery's sockets are read without waiting once per turn (at most
// every 5 ms when idle), so beacons never hold up the peers.
void serve(engine::Node& node, PeerService& service, ZmqTransport& transport, JoinService& joins,
           TrustFollower& follower, RevocationFollower* revocations, Discovery* discovery, Refusals& refusals,
           const std::atomic<bool>& stop, const SyncEngine::Log& log) {
  SystemClock clock;
  service.start();
  int64_t counted_ms = 0;
  const DiscoveryCounters no_discovery;
  while (!stop.load()) {
    service.run_once(5);
    joins.run_once();
    const bool trust_changed = follower.poll(service.engine(), transport);
    const int64_t now = clock.now_millis();
    if (revocations) {
      // Runs held back for their origin's key may belong to a member now.
      if (trust_changed) {
        auto r = node.membership_changed();
        if (!r) log(0, "storing runs held back for membership: " + r.status().message());
        else if (r->accepted > 0) log(2, std::to_string(r->accepted) + " updates held back are a member's now: stored");
      }
      revocations->poll(now);
    }
    if (discovery) {
      // A device trusted just now may be waiting for this node's beacon.
      if (trust_changed) discovery->announce_soon();
      discovery->run_once(now);
    }
    if (now - counted_ms >= 100) {
      refusals.count(service.engine().counters(), transport.counters(),
                     discovery ? discovery->counters() : no_discovery, joins.counters());
      counted_ms = now;
    }
  }
}

// What invite.create puts in a line: this node's cluster, key and endpoints
// (the advertised one, or where it listens, a wildcard host replaced by this
// host's addresses).
Result<InviterInfo> inviter_info(const DaemonOptions& options, const engine::Node& node, const Identity& identity,
                                 const ZmqTransport& transport) {
  const std::string& where = options.advertise.empty() ? transport.bound_endpoint() : options.advertise;
  auto endpoints = reachable_endpoints(where, invite::kMaxEndpoints);
  if (!endpoints) return endpoints.status();
  return InviterInfo{node.cluster_id(), identity.public_key(), std::move(endpoints).value()};
}

// What `status` adds for a running node: refusals, membership, discovery.
Map extra_status(const DaemonOptions& options, Refusals& refusals, const std::string& discovery_state,
                 const ArchiveService* archive) {
  Map found = refusals.discovery_snapshot();
  found["state"] = Value(discovery_state);
  found["udp_port"] = Value(static_cast<int64_t>(options.discovery_port));
  Map extra{{"refusals", refusals.snapshot()}, {"members", refusals.members()},
            {"secure", Value(!options.insecure)}, {"discovery", Value(std::move(found))}};
  if (archive) extra["archive"] = Value(archive->status());
  return extra;
}

// The archiver's thread when --archive is given (null otherwise).
Result<std::unique_ptr<ArchiveService>> start_archive(const DaemonOptions& options, engine::Node& node,
                                                      const DataDir& dir, const Identity& identity,
                                                      const TrustStore& trust, const Clock& clock,
                                                      const SyncEngine::Log& logger) {
  if (options.archive.empty()) return std::unique_ptr<ArchiveService>();
  auto config = s3_config_for(options.archive, options.s3_endpoint);
  if (!config) return config.status().with_context("--archive");
  auto keys = load_archive_keys(dir, Env::posix());
  if (!keys) return keys.status();
  ArchiveServiceOptions o;
  o.poll_ms = options.archive_poll_ms;
  o.archiver.grace_ms = options.archive_grace_ms;
  // Keys granted by a rotation, and a rotation of our own when a member leaves.
  // Members are the trust list less the revoked, at once: the trust follower
  // removes a revoked device only at its next check.
  // A device whose own origin is revoked counts as gone even before it wrote
  // (its key may be unknown to the log) and before the trust follower's check.
  KeyHooks hooks = key_hooks(dir.path(), std::string(identity.secret_key()), [&trust, &node, identity] {
    const auto revoked = node.revoked_origins();
    const auto revoked_keys = node.revoked_member_keys();
    std::vector<std::string> members{identity.public_key()};
    for (const auto& d : trust.list())
      if (!revoked.count(proof::origin_of_key(d.public_key)) &&
          std::find(revoked_keys.begin(), revoked_keys.end(), d.public_key) == revoked_keys.end())
        members.push_back(d.public_key);
    return members;
  });
  o.archiver.refresh_keys = std::move(hooks.take_grants);
  o.archiver.before_push = std::move(hooks.rotate_if_left);
  auto service = std::make_unique<ArchiveService>(node, std::make_unique<S3ObjectStore>(std::move(config).value()),
                                                  std::move(keys).value(), clock, o, logger);
  service->start();
  logger(2, "archiving to " + options.archive + " (polling every " + std::to_string(options.archive_poll_ms) + " ms)");
  return service;
}

// The dashboard (--http): its routes and server, made before the commit
// listener is set and started once the node serves.
struct Dashboard {
  std::unique_ptr<http::HttpRoutes> routes;
  std::unique_ptr<http::HttpServer> server;
};

// Refusals by reason, as /metrics counts them (the keys of Refusals).
void fill_refusals(const Map& counts, http::MetricsInput& in) {
  static const std::pair<const char*, const char*> kReasons[] = {
      {"updates_refused", "update"},       {"handshakes_refused", "handshake"}, {"bad_frames", "bad_frame"},
      {"endpoints_refused", "endpoint"},   {"frames_blocked", "blocked_frame"}, {"beacons_refused", "beacon"},
      {"join_refused", "join"}};
  for (const auto& [key, reason] : kReasons)
    if (auto it = counts.find(key); it != counts.end() && it->second.is_int())
      in.refused[reason] = static_cast<uint64_t>(it->second.as_int());
}

void fill_archive(const Map& status, http::MetricsInput& in) {
  auto ms = [&](const char* key) {
    auto it = status.find(key);
    return it != status.end() && it->second.is_int() ? it->second.as_int() : int64_t{0};
  };
  in.archive = http::ArchiveMetrics{static_cast<uint64_t>(ms("lag_updates")), static_cast<double>(ms("lag_age_ms")) / 1000.0,
                                    static_cast<double>(ms("last_push_ms")) / 1000.0,
                                    static_cast<double>(ms("last_poll_ms")) / 1000.0};
}

Result<std::unique_ptr<Dashboard>> make_dashboard(const DaemonOptions& options, engine::Node& node,
                                                  PeerService& service, Refusals& refusals,
                                                  const std::string& discovery_state, const ArchiveService* archive,
                                                  const SyncEngine::Log& logger) {
  if (options.http.empty() || options.http == "off") return std::unique_ptr<Dashboard>();
  auto bind = http::parse_http_bind(options.http);
  if (!bind) return bind.status();
  auto d = std::make_unique<Dashboard>();
  http::HttpServerOptions o;
  o.bind = *bind;
  o.csrf = http::make_secret();
  o.token = !options.http_token.empty() ? options.http_token : bind->loopback() ? "" : http::make_secret();
  http::RouteHooks hooks;
  hooks.peers = [&service] { return service.peers(); };
  hooks.status = [&options, &node, &refusals, &discovery_state, archive] {
    Value status = node_status(node, Value(List{}));
    for (auto& [key, value] : extra_status(options, refusals, discovery_state, archive))
      status.as_map()[key] = std::move(value);
    return status;
  };
  hooks.fill_metrics = [&refusals, archive, server = &d->server](http::MetricsInput& in) {
    fill_refusals(refusals.snapshot().as_map(), in);
    if (archive) fill_archive(archive->status(), in);
    if (*server) (*server)->fill_metrics(in);
  };
  d->routes = std::make_unique<http::HttpRoutes>(node, std::move(hooks), o.csrf);
  d->server = std::make_unique<http::HttpServer>(*d->routes, std::move(o), logger);
  return d;
}

// Starts the dashboard's server; its default address taken, the node goes on without it.
Status start_dashboard(const DaemonOptions& options, std::unique_ptr<Dashboard>& d, const SyncEngine::Log& logger) {
  if (!d) return Status::ok();
  if (Status s = d->server->start(); !s) {
    if (options.http_required) return s;
    // Kept, not started: the commit listener may be using it.
    logger(1, "no dashboard: " + s.message() + " (give --http 127.0.0.1:PORT, or --http off)");
    return Status::ok();
  }
  auto bind = http::parse_http_bind(options.http);
  if (bind && !bind->loopback())
    logger(1, "the dashboard listens on " + options.http + " without TLS: its token and data cross the network in "
              "the clear; put a TLS proxy in front of it, or bind 127.0.0.1");
  logger(2, "dashboard on http://" + bind->authority(d->server->port()) + "/" +
                (bind->loopback() && options.http_token.empty() ? "" : " (an access token is required)"));
  if (options.on_dashboard) options.on_dashboard(d->server->url());
  return Status::ok();
}

// What each commit is handed to: peers, the local API's events, the archiver, the dashboard.
void listen_to_commits(engine::Node& node, PeerService& service, LocalApi& api, ArchiveService* archive,
                       Dashboard* dashboard) {
  node.set_commit_listener([&service, &api, archive, dashboard](const std::vector<Update>& updates,
                                                                const std::vector<proof::Head>& heads) {
    service.on_committed(updates, heads);
    api.on_committed(updates);
    if (archive) archive->wake();
    if (dashboard) dashboard->server->on_committed(updates);
  });
  // Received updates go on to peers once checked, before their commit.
  node.set_verified_listener([&service](const std::vector<Update>& updates, const std::vector<proof::Head>& heads) {
    service.on_verified(updates, heads);
  });
}

}  // namespace

Status run_daemon(const DaemonOptions& options, const std::atomic<bool>& stop) {
  SyncEngine::Log logger = [&](int level, const std::string& line) {
    if (level <= options.log_level) log_line(level, line);
  };
  if (options.listen.empty()) return Status::invalid_argument("give --listen tcp://IP:PORT");
  if (options.insecure && options.discovery.value_or(false))
    return Status::invalid_argument("--discovery on needs device keys: not with --insecure");
  REPLOG_RETURN_IF_ERROR(check_discovery_targets(options.discovery_to));
  auto statics = parse_peers(options, logger);
  if (!statics) return statics.status();
  DataDir dir(options.node.dir);
  REPLOG_RETURN_IF_ERROR(add_stored_peers(options, dir, *statics, logger));

  Membership members;
  auto node_or = engine::Node::open(members.node_options(options));
  if (!node_or) return node_or.status();
  std::unique_ptr<engine::Node> node = std::move(node_or).value();
  // Made here, under the node's lock, for a directory an earlier build made.
  auto identity = load_or_create_identity(dir.identity_file(), Env::posix());
  if (!identity) return identity.status();
  auto cluster_secret = load_or_create_cluster_secret(dir.cluster_secret_file(), Env::posix());
  if (!cluster_secret) return cluster_secret.status();
  // A trust file that does not load stops the node: nothing about whom to trust is guessed.
  auto trust = TrustStore::open(dir.trust_file(), Env::posix());
  if (!trust) return trust.status();
  members.bind(trust->get(), identity->public_key());

  // The peers' sockets have a context of their own: its ZAP handler must
  // answer for them alone, not for the local API's.
  SystemClock clock;
  auto archive = start_archive(options, *node, dir, *identity, **trust, clock, logger);
  if (!archive) return archive.status();
  InviteBook invites(clock, Env::posix());  // in memory: good while this node runs
  zmq::context_t peer_context(1);
  auto transport = make_transport(options, *identity, **trust, invites, peer_context);
  if (!transport) return transport.status();
  REPLOG_RETURN_IF_ERROR((*transport)->listen(options.listen));
  TrustFollower follower(**trust, std::move(statics).value(), logger);
  SyncOptions sync = sync_options(options, **transport, *identity, trust->get(), follower.start(options.insecure));
  PeerService service(*node, **transport, clock, sync, logger);
  JoinService joins(invites, **trust, **transport, {identity->public_key(), node->cluster_id(), *cluster_secret},
                    clock, logger);

  zmq::context_t api_context(1);
  LocalApi api(*node, api_context, [&service] {
    List peers;
    for (const auto& p : service.peers()) peers.push_back(peer_status_value(p));
    return Value(std::move(peers));
  });
  Refusals refusals;
  std::string discovery_state;
  auto dashboard = make_dashboard(options, *node, service, refusals, discovery_state, archive->get(), logger);
  if (!dashboard) return dashboard.status();
  listen_to_commits(*node, service, api, archive->get(), dashboard->get());
  std::unique_ptr<Discovery> discovery = start_discovery(options, *cluster_secret, *identity, **trust,
                                                         service.engine(), **transport, logger, &discovery_state);
  refusals.count(service.engine().counters(), (*transport)->counters(), DiscoveryCounters{}, joins.counters());
  api.set_extra_status([&] { return extra_status(options, refusals, discovery_state, archive->get()); });
  api.set_trust(trust->get());
  if (auto inviter = inviter_info(options, *node, *identity, **transport); !options.insecure && inviter)
    api.set_invites([&invites, info = *inviter](const Value& arg) { return run_invite_create(invites, info, arg); });
  else if (!options.insecure)
    logger(1, "no invites: " + inviter.status().message());
  REPLOG_RETURN_IF_ERROR(api.start());
  REPLOG_RETURN_IF_ERROR(start_dashboard(options, *dashboard, logger));

  log_start(logger, options, *node, *identity, **trust, **transport, sync.peers.size());
  if (options.on_serving) options.on_serving(*node);
  std::optional<RevocationFollower> revocations;
  if (!options.insecure) revocations.emplace(*node, **trust, identity->public_key(), logger);
  serve(*node, service, **transport, joins, follower, revocations ? &*revocations : nullptr, discovery.get(), refusals,
        stop, logger);
  logger(2, "stopping: writing a checkpoint");
  if (*archive) (*archive)->stop();
  if (*dashboard) (*dashboard)->server->stop();
  api.stop();
  Status s = node->close();
  logger(2, s ? "stopped" : "stopped with an error: " + s.message());
  return s;
}

}  // namespace replog
