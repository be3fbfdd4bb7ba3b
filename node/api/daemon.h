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
  // The dashboard and /metrics (node/http, docs/HTTP.md): HOST:PORT; empty: off.
  std::string http;
  // False for `replog node`'s default address: when it is taken (another node
  // on this host), the node runs without a dashboard and says so.
  bool http_required = true;
  // Required on every request when set; generated when empty and the bind is
  // not 127.0.0.1 or ::1.
  std::string http_token;
  // Told the dashboard's URL (with ?token= when a token is required) once it serves.
  std::function<void(const std::string& url)> on_dashboard;
  // An embedding program's hook (replog::Node with networking): called on the
  // daemon's thread once the node serves, just before the event loop. The
  // node stays valid until run_daemon returns.
  std::function<void(engine::Node&)> on_serving;
};

// Runs until `stop` becomes true; then checkpoints and returns.
Status run_daemon(const DaemonOptions& options, const std::atomic<bool>& stop);

}  // namespace replog
