// LocalApi: the node's local API (PROTOCOL.md "Local API").
//
// A ROUTER on ipc://DATA/api.sock answers requests from the CLI and from
// applications in any language; a PUB on ipc://DATA/events.sock publishes every
// committed update. Where the sockets live when DATA is too deep for a Unix
// socket path, and the file that names them while the node runs, are the data
// directory's (storage/data_dir.h). Requests are MessagePack [1, op, arg];
// replies [1, "ok", result] or [1, "error", message]. Values use the
// MessagePack value encoding, so enums, times and records keep their types.
// The trust ops (node/api/trust_ops.h) need the node's TrustStore; without
// one they answer "this node has no trust list".
//
// Thread safety: runs its own thread; on_committed() may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "node/engine/node.h"
#include "replog/value.h"
#include "storage/data_dir.h"
#include "storage/trust.h"

namespace replog {

// The status of a node as the API reports it (and `replog status` prints):
// node_id, cluster_id, updates, vector, conflicts, forks,
// unknown_method_updates, former_origins, state_hash, state_pending, peers.
Value node_status(const engine::Node& node, Value peers);

class LocalApi {
 public:
  // `status` adds what only the daemon knows (peers) to a status reply.
  LocalApi(engine::Node& node, zmq::context_t& context, std::function<Value()> peers_status);
  ~LocalApi();

  // Adds what else the daemon knows to a status reply (refusals, say).
  // REQUIRES: before start().
  void set_extra_status(std::function<Map()> extra) { extra_status_ = std::move(extra); }
  // The trust list the trust ops read and change. REQUIRES: called before
  // start(); `trust` outlives the LocalApi.
  void set_trust(TrustStore* trust) { trust_ = trust; }
  // What answers invite.create (node/api/invite_ops.h); unset, the op
  // answers that this node makes no invites. Called on the API's thread.
  // REQUIRES: before start().
  void set_invites(std::function<Result<Value>(const Value& arg)> create) { create_invite_ = std::move(create); }

  Status start();
  void stop();
  void on_committed(const std::vector<Update>& updates);

 private:
  void run();
  void serve_request();
  void publish_events();
  Value handle(const std::string& op, const Value& arg);
  Value handle_trust(const std::string& op, const Value& arg);

  engine::Node& node_;
  zmq::context_t& context_;
  std::function<Value()> peers_status_;
  std::function<Map()> extra_status_;
  TrustStore* trust_ = nullptr;  // not owned; set before start()
  std::function<Result<Value>(const Value&)> create_invite_;
  ApiEndpoints endpoints_;
  std::unique_ptr<zmq::socket_t> router_, pub_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex events_mu_;
  std::vector<Update> events_;  // guarded by events_mu_
};

// A client of a running node's API (used by the CLI). Throws nothing; errors
// come back as Status.
class ApiClient {
 public:
  // Connects when a node runs on `dir` and serves its API; null otherwise.
  static std::unique_ptr<ApiClient> connect_if_running(const std::string& dir, zmq::context_t& context);
  static Result<std::unique_ptr<ApiClient>> connect(const ApiEndpoints& endpoints, zmq::context_t& context);
  Result<Value> request(const std::string& op, const Value& arg, int timeout_ms = 30'000);

 private:
  explicit ApiClient(zmq::socket_t socket) : socket_(std::move(socket)) {}
  zmq::socket_t socket_;
};

}  // namespace replog
