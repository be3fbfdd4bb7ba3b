// Metrics in the Prometheus text exposition format (version 0.0.4), served
// at /metrics (docs/HTTP.md "Metrics" lists every name and label).
//
// MetricsInput is what the node knows at one moment; node_metrics() turns it
// into families with Prometheus names (every one starting with replog_,
// counters ending in _total, base units: seconds and bytes), and
// render_prometheus() writes them. Both are pure, so the format is tested
// without a node.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace replog::http {

struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct Family {
  std::string name;
  std::string type;  // counter or gauge
  std::string help;
  std::vector<Sample> samples;
};

// HELP and TYPE for each family, then its samples; label values escaped
// (backslash, double quote, newline). A family without samples is left out.
std::string render_prometheus(const std::vector<Family>& families);
// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(const std::string& name);

struct PeerMetrics {
  std::string peer;  // its node id (hex), or its endpoint before its Hello
  std::string how;
  bool connected = false;
  uint64_t they_lack = 0, we_lack = 0;
  double last_seen_age_s = -1;  // < 0: never seen
  uint64_t bytes_sent = 0, bytes_received = 0, updates_sent = 0, updates_received = 0;
};

struct ArchiveMetrics {
  uint64_t lag_updates = 0;
  double lag_age_s = 0;
  double last_push_s = 0;  // Unix time; 0: never
  double last_poll_s = 0;
};

struct MetricsInput {
  std::map<std::string, uint64_t> held;  // origin (hex) -> updates held (its vector entry)
  uint64_t log_updates = 0;
  uint64_t applied_local = 0, applied_received = 0;  // committed by this process
  std::map<std::string, uint64_t> refused;  // reason -> count since start
  std::optional<uint64_t> conflicts;  // null while state is being folded (not read then)
  uint64_t forks = 0;
  std::vector<PeerMetrics> peers;
  std::optional<ArchiveMetrics> archive;
  std::optional<double> checkpoint_age_s;  // null: no checkpoint yet
  uint64_t map_bytes = 0, data_file_bytes = 0;
  uint64_t http_connections = 0, websocket_clients = 0, websocket_dropped = 0;
  std::map<int, uint64_t> http_responses;  // status code -> count
};

std::vector<Family> node_metrics(const MetricsInput& in);

}  // namespace replog::http
