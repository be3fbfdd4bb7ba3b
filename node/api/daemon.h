// The node daemon (`replog node`): a writable Node, its peers over ZeroMQ
// (SyncEngine + ZmqTransport) and its local API, until told to stop.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "node/engine/node.h"

namespace replog {

struct DaemonOptions {
  engine::NodeOptions node;
  std::string listen;               // tcp://IP:PORT for peers
  std::string advertise;            // what peers should connect back to (default: the bound endpoint)
  std::vector<std::string> peers;   // DEVICE_ID@tcp://HOST:PORT (insecure: tcp://HOST:PORT)
  bool insecure = false;            // plain TCP, NULL mechanism: for tests and tools
  int log_level = 2;                // 0 error, 1 warn, 2 info, 3 debug
  int64_t anti_entropy_ms = 1000;
  // LAN discovery (node/discovery): on unless --insecure (which has no keys to
  // name devices by); beacons on UDP discovery_port every discovery_interval_ms.
  std::optional<bool> discovery;    // unset: on when secure
  uint16_t discovery_port = 21029;  // kDefaultDiscoveryPort
  int64_t discovery_interval_ms = 5000;
  std::vector<std::string> discovery_to;  // test only: IPv4 HOST:PORT unicast targets
  // The S3 archive (node/archive): off when empty.
  std::string archive;              // s3://BUCKET/PREFIX
  std::string s3_endpoint;          // over AWS_ENDPOINT_URL when set
  int64_t archive_poll_ms = 2000;
  int64_t archive_grace_ms = 600'000;
  // An embedding program's hook (replog::Node with networking): called on the
  // daemon's thread once the node serves, just before the event loop. The
  // node stays valid until run_daemon returns.
  std::function<void(engine::Node&)> on_serving;
};

// Runs until `stop` becomes true; then checkpoints and returns.
Status run_daemon(const DaemonOptions& options, const std::atomic<bool>& stop);

}  // namespace replog
