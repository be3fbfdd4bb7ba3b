#include "node/api/join.h"

#include <chrono>
#include <cstring>
#include <zmq.hpp>

#include "node/engine/node.h"
#include "node/sync/endpoint.h"
#include "protocol/device_id.h"
#include "protocol/wire.h"
#include "storage/cluster_secret.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/peers.h"
#include "storage/trust.h"

namespace replog {

namespace {

using Steady = std::chrono::steady_clock;

std::string_view key_view(const std::array<unsigned char, 32>& key) {
  return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
}

// The data directory, ready for the exchange: made when missing (true),
// refused when it holds another cluster's data.
Result<bool> prepare_dir(const JoinOptions& o) {
  DataDir dir(o.dir);
  if (!dir.holds_log()) {
    engine::InitOptions init;
    init.dir = o.dir;
    init.cluster = o.line.cluster;
    REPLOG_RETURN_IF_ERROR(engine::Node::init(init));
    return true;
  }
  engine::NodeOptions no;
  no.dir = o.dir;
  auto node = engine::Node::open_read_only(no);
  if (!node) return node.status();
  if ((*node)->cluster_id() != o.line.cluster)
    return Status::invalid_argument(o.dir + " holds the data of cluster " + (*node)->cluster_id() +
                                    ", not the invite's cluster " + o.line.cluster + ": join with a new data directory");
  return false;
}

// LOCK, for the rest of the join; refused while a node runs there (its trust
// list is in its memory, and the files would change under it).
Result<std::unique_ptr<FileLock>> lock_dir(const std::string& path) {
  DataDir dir(path);
  auto probe = dir.node_running();
  if (!probe) return probe.status();
  if (probe->running) return Status::busy(path + " is in use by a running node: stop it, then join");
  auto lock = dir.lock_for_command("join");
  if (!lock) return lock.status();
  if (lock->outcome == CommandLock::Outcome::kNodeStarting)
    return Status::busy(path + ": a node is starting (pid " + std::to_string(lock->node_pid) + "): stop it, then join");
  return std::move(lock->lock);
}

// One DEALER per endpoint of the line, each watched for a refused handshake.
class Dialer {
 public:
  Status open(const Identity& me, const invite::InviteLine& line) {
    auto keys = me.curve_keys();
    if (!keys) return keys.status();
    auto server = curve_public_key(line.inviter_key);
    if (!server) return server.status();
    try {
      for (size_t i = 0; i < line.endpoints.size(); ++i) {
        zmq::socket_t d(context_, zmq::socket_type::dealer);
        d.set(zmq::sockopt::linger, 0);
        d.set(zmq::sockopt::immediate, 1);
        d.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes + 4096));
        d.set(zmq::sockopt::reconnect_ivl, 200);
        d.set(zmq::sockopt::curve_publickey, key_view(keys->public_key));
        d.set(zmq::sockopt::curve_secretkey, key_view(keys->secret_key));
        d.set(zmq::sockopt::curve_serverkey, *server);
        const std::string watch = "inproc://join-monitor-" + std::to_string(i);
        if (zmq_socket_monitor(d.handle(), watch.c_str(), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
          return Status::io_error("cannot watch the connection to " + line.endpoints[i]);
        zmq::socket_t m(context_, zmq::socket_type::pair);
        m.set(zmq::sockopt::linger, 0);
        m.connect(watch);
        d.connect(line.endpoints[i]);
        dealers_.push_back(std::move(d));
        monitors_.push_back(std::move(m));
      }
    } catch (const zmq::error_t& e) {
      return Status::invalid_argument(std::string("cannot dial the inviter: ") + e.what());
    }
    return Status::ok();
  }

  void send_all(const std::string& frame) {
    for (auto& d : dealers_) (void)d.send(zmq::buffer(frame), zmq::send_flags::dontwait);
  }

  // Waits up to `ms` for a JoinReply; kRefused when a handshake was refused.
  Result<std::optional<wire::JoinReply>> poll(int ms) {
    std::vector<zmq::pollitem_t> items;
    for (auto& d : dealers_) items.push_back({d.handle(), 0, ZMQ_POLLIN, 0});
    for (auto& m : monitors_) items.push_back({m.handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(ms));
    for (size_t i = 0; i < dealers_.size(); ++i) {
      zmq::message_t msg;
      while ((items[i].revents & ZMQ_POLLIN) && dealers_[i].recv(msg, zmq::recv_flags::dontwait)) {
        auto m = wire::decode(msg.to_string_view());
        if (m && std::holds_alternative<wire::JoinReply>(*m)) return std::optional(std::get<wire::JoinReply>(*m));
      }
      if (items[dealers_.size() + i].revents & ZMQ_POLLIN)
        return Status::refused("the inviter refused the connection: no invite is open there (the line was used "
                               "or has expired, or its node restarted); ask for a new line");
    }
    return std::optional<wire::JoinReply>();
  }

 private:
  zmq::context_t context_{1};
  std::vector<zmq::socket_t> dealers_, monitors_;  // closed before the context
};

Result<wire::JoinReply> exchange(const Identity& me, const JoinOptions& o) {
  Dialer dialer;
  REPLOG_RETURN_IF_ERROR(dialer.open(me, o.line));
  const std::string join = wire::encode(
      wire::Join{me.public_key(), invite::join_proof(o.line.secret, me.public_key(), o.line.inviter_key), o.name});
  const auto deadline = Steady::now() + std::chrono::milliseconds(o.timeout_ms);
  auto next_send = Steady::now();
  while (Steady::now() < deadline) {
    if (Steady::now() >= next_send) {
      dialer.send_all(join);
      next_send = Steady::now() + std::chrono::milliseconds(500);
    }
    auto reply = dialer.poll(50);
    if (!reply) return reply.status();
    if (*reply) return std::move(**reply);
  }
  std::string where;
  for (const auto& e : o.line.endpoints) where += (where.empty() ? "" : ", ") + e;
  return Status::busy("no answer from the inviter at " + where + " within " + std::to_string(o.timeout_ms / 1000) +
                      " s: is its node running, and is it reachable from here?");
}

// The inviter's answer, checked before anything is stored.
Result<ClusterSecret> check_reply(const wire::JoinReply& reply, const Identity& me, const invite::InviteLine& line) {
  if (!reply.accepted)
    return Status::refused("the inviter refused the join: no open invite there matches this line (a wrong "
                           "line, or one used or expired); ask for a new line");
  if (!invite::same_proof(invite::accept_proof(line.secret, line.inviter_key, me.public_key()), reply.proof))
    return Status::refused("the inviter's proof is wrong: whoever answered does not know this invite's secret; "
                           "nothing was stored");
  if (reply.cluster != line.cluster)
    return Status::refused("the inviter names cluster " + reply.cluster + ", the line " + line.cluster);
  return ClusterSecret::from_bytes(reply.cluster_secret, "the cluster secret the inviter sent");
}

}  // namespace

Result<JoinOutcome> join_cluster(const JoinOptions& options) {
  REPLOG_RETURN_IF_ERROR(invite::check_line(options.line));
  for (const auto& e : options.line.endpoints) REPLOG_RETURN_IF_ERROR(check_peer_endpoint(e));
  if (!options.name.empty()) REPLOG_RETURN_IF_ERROR(check_device_name(options.name));
  auto made = prepare_dir(options);
  if (!made) return made.status();
  auto lock = lock_dir(options.dir);
  if (!lock) return lock.status();
  DataDir dir(options.dir);
  Env& env = Env::posix();
  auto me = load_or_create_identity(dir.identity_file(), env);
  if (!me) return me.status();
  if (me->public_key() == options.line.inviter_key)
    return Status::invalid_argument("this invite was made by this device itself");
  auto trust = TrustStore::open(dir.trust_file(), env);
  if (!trust) return trust.status();
  if (auto peers = load_peers(dir.peers_file(), env); !peers) return peers.status();  // before, not after, the exchange

  auto reply = exchange(*me, options);
  if (!reply) return reply.status();
  auto secret = check_reply(*reply, *me, options.line);
  if (!secret) return secret.status();
  REPLOG_RETURN_IF_ERROR(store_cluster_secret(dir.cluster_secret_file(), *secret, env));
  REPLOG_RETURN_IF_ERROR(
      (*trust)->add(TrustedDevice{options.line.inviter_key, "", env.now_millis(), "invite", 0, me->public_key()}));
  REPLOG_RETURN_IF_ERROR(store_peer(dir.peers_file(), StoredPeer{options.line.inviter_key, options.line.endpoints}, env));
  return JoinOutcome{*made, me->device_id(), format_device_id(options.line.inviter_key), options.line.cluster,
                     options.line.endpoints};
}

}  // namespace replog
