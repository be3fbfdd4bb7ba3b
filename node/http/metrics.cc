#include "node/http/metrics.h"

#include <cmath>
#include <cstdio>

namespace replog::http {

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

Sample one(double v, std::vector<std::pair<std::string, std::string>> labels = {}) {
  return Sample{std::move(labels), v};
}

double d(uint64_t v) { return static_cast<double>(v); }

void add_peer_families(const MetricsInput& in, std::vector<Family>& out) {
  Family connected{"replog_peers_connected", "gauge", "Peers with a handshaken link", {}};
  Family known{"replog_peers", "gauge", "Peers this node knows of, connected or not", {}};
  Family lag{"replog_replication_lag_updates", "gauge",
             "Updates one side holds that the other lacks, by the peer's last vector (side=peer: it lacks them)", {}};
  Family seen{"replog_peer_last_seen_age_seconds", "gauge", "Seconds since a frame was last heard from the peer", {}};
  Family bytes_sent{"replog_peer_sent_bytes_total", "counter", "Frame bytes sent to the peer on the link this node opened", {}};
  Family bytes_recv{"replog_peer_received_bytes_total", "counter", "Frame bytes received from the peer, on either link", {}};
  Family ups_sent{"replog_peer_sent_updates_total", "counter", "Updates pushed or served to the peer", {}};
  Family ups_recv{"replog_peer_received_updates_total", "counter", "Updates received from the peer (pushes and pull replies)", {}};
  uint64_t n_connected = 0;
  for (const auto& p : in.peers) {
    if (p.connected) ++n_connected;
    lag.samples.push_back(one(d(p.they_lack), {{"peer", p.peer}, {"side", "peer"}}));
    lag.samples.push_back(one(d(p.we_lack), {{"peer", p.peer}, {"side", "self"}}));
    if (p.last_seen_age_s >= 0) seen.samples.push_back(one(p.last_seen_age_s, {{"peer", p.peer}}));
    bytes_sent.samples.push_back(one(d(p.bytes_sent), {{"peer", p.peer}}));
    bytes_recv.samples.push_back(one(d(p.bytes_received), {{"peer", p.peer}}));
    ups_sent.samples.push_back(one(d(p.updates_sent), {{"peer", p.peer}}));
    ups_recv.samples.push_back(one(d(p.updates_received), {{"peer", p.peer}}));
  }
  connected.samples.push_back(one(d(n_connected)));
  known.samples.push_back(one(d(in.peers.size())));
  for (auto* f : {&connected, &known, &lag, &seen, &bytes_sent, &bytes_recv, &ups_sent, &ups_recv})
    out.push_back(std::move(*f));
}

void add_archive_families(const ArchiveMetrics& a, std::vector<Family>& out) {
  out.push_back({"replog_archive_lag_updates", "gauge", "Own updates not yet in the archive", {one(d(a.lag_updates))}});
  out.push_back({"replog_archive_lag_seconds", "gauge", "How long the archive has lacked an update of this node",
                 {one(a.lag_age_s)}});
  if (a.last_push_s > 0)
    out.push_back({"replog_archive_last_upload_timestamp_seconds", "gauge", "Unix time of the last upload",
                   {one(a.last_push_s)}});
  if (a.last_poll_s > 0)
    out.push_back({"replog_archive_last_poll_timestamp_seconds", "gauge", "Unix time of the last poll of the archive",
                   {one(a.last_poll_s)}});
}

void add_http_families(const MetricsInput& in, std::vector<Family>& out) {
  Family responses{"replog_http_responses_total", "counter", "HTTP responses by status code", {}};
  for (const auto& [code, n] : in.http_responses) responses.samples.push_back(one(d(n), {{"code", std::to_string(code)}}));
  out.push_back(std::move(responses));
  out.push_back({"replog_http_connections", "gauge", "Open HTTP connections", {one(d(in.http_connections))}});
  out.push_back({"replog_websocket_clients", "gauge", "Open WebSocket event streams", {one(d(in.websocket_clients))}});
  out.push_back({"replog_websocket_dropped_total", "counter",
                 "WebSocket clients dropped for falling behind their bounded queue", {one(d(in.websocket_dropped))}});
}

}  // namespace

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string render_prometheus(const std::vector<Family>& families) {
  std::string out;
  for (const auto& f : families) {
    if (f.samples.empty()) continue;
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const auto& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out += "{";
        for (size_t i = 0; i < s.labels.size(); ++i)
          out += (i ? "," : "") + s.labels[i].first + "=\"" + escape_label(s.labels[i].second) + "\"";
        out += "}";
      }
      out += " " + format_value(s.value) + "\n";
    }
  }
  return out;
}

std::vector<Family> node_metrics(const MetricsInput& in) {
  std::vector<Family> out;
  Family held{"replog_updates_held", "gauge", "Updates held per origin (its entry in the version vector)", {}};
  for (const auto& [origin, n] : in.held) held.samples.push_back(one(d(n), {{"origin", origin}}));
  out.push_back(std::move(held));
  out.push_back({"replog_log_updates", "gauge", "Updates in the log", {one(d(in.log_updates))}});
  out.push_back({"replog_updates_applied_total", "counter", "Updates committed and applied by this process",
                 {one(d(in.applied_local), {{"source", "local"}}), one(d(in.applied_received), {{"source", "peer"}})}});
  Family refused{"replog_refused_total", "counter", "Refusals since start, by reason", {}};
  for (const auto& [why, n] : in.refused) refused.samples.push_back(one(d(n), {{"reason", why}}));
  out.push_back(std::move(refused));
  if (in.conflicts) out.push_back({"replog_conflicts", "gauge", "Open conflicts in state", {one(d(*in.conflicts))}});
  out.push_back({"replog_forked_origins", "gauge", "Origins quarantined for a fork", {one(d(in.forks))}});
  add_peer_families(in, out);
  if (in.archive) add_archive_families(*in.archive, out);
  if (in.checkpoint_age_s)
    out.push_back({"replog_checkpoint_age_seconds", "gauge",
                   "Wall time now less the time of the newest checkpoint's cut", {one(*in.checkpoint_age_s)}});
  out.push_back({"replog_lmdb_map_size_bytes", "gauge", "Size of the LMDB map (it grows when full)", {one(d(in.map_bytes))}});
  out.push_back({"replog_lmdb_used_bytes", "gauge", "Size of the LMDB data file: the pages in use", {one(d(in.data_file_bytes))}});
  add_http_families(in, out);
  return out;
}

}  // namespace replog::http
