#include "node/api/daemon.h"

#include <iostream>
#include <mutex>
#include <zmq.hpp>

#include "node/api/local_api.h"
#include "node/sync/peer_service.h"
#include "node/sync/zmq_transport.h"
#include "protocol/bytes.h"
#include "replog/value.h"
#include "storage/data_dir.h"
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

}  // namespace

Status run_daemon(const DaemonOptions& options, const std::atomic<bool>& stop) {
  auto logger = [&](int level, const std::string& line) {
    if (level <= options.log_level) log_line(level, line);
  };
  if (!options.insecure)
    return Status::invalid_argument("encrypted transport (CURVE) is not built yet: run with --insecure to use plain TCP");
  if (options.listen.empty()) return Status::invalid_argument("give --listen tcp://IP:PORT");

  auto node_or = engine::Node::open(options.node);
  if (!node_or) return node_or.status();
  std::unique_ptr<engine::Node> node = std::move(node_or).value();
  // Made here, under the node's lock, for a directory an earlier build made.
  auto identity = load_or_create_identity(DataDir(options.node.dir).identity_file(), Env::posix());
  if (!identity) return identity.status();
  // A trust file that does not load stops the node: nothing about whom to trust is guessed.
  auto trust = TrustStore::open(DataDir(options.node.dir).trust_file(), Env::posix());
  if (!trust) return trust.status();

  zmq::context_t context(1);
  ZmqTransport transport(context);
  REPLOG_RETURN_IF_ERROR(transport.listen(options.listen));

  SyncOptions sync;
  sync.endpoint = options.advertise.empty() ? transport.bound_endpoint() : options.advertise;
  for (const auto& p : options.peers) {
    auto at = p.find('@');
    if (at != std::string::npos) logger(1, "peer " + p + ": its key is ignored without encryption");
    sync.peers.push_back(at == std::string::npos ? p : p.substr(at + 1));
  }
  sync.anti_entropy_ms = options.anti_entropy_ms;
  SystemClock clock;
  PeerService service(*node, transport, clock, sync, logger);

  LocalApi api(*node, context, [&service] {
    List peers;
    for (const auto& p : service.peers()) peers.push_back(peer_status_value(p));
    return Value(std::move(peers));
  });
  node->set_commit_listener([&](const std::vector<Update>& updates) {
    service.on_committed(updates);
    api.on_committed(updates);
  });
  api.set_trust(trust->get());
  REPLOG_RETURN_IF_ERROR(api.start());

  logger(2, "node " + hex16(node->node_id()) + " (device " + identity->device_id() + ") of cluster " + node->cluster_id() + " listening on " +
                transport.bound_endpoint() + " (insecure: traffic is not encrypted), " +
                std::to_string(sync.peers.size()) + " peers configured");
  service.start();
  service.run_until(stop);
  logger(2, "stopping: writing a checkpoint");
  api.stop();
  Status s = node->close();
  logger(2, s ? "stopped" : "stopped with an error: " + s.message());
  return s;
}

}  // namespace replog
