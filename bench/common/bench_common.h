// Helpers shared by the benchmark programs (replog_bench, replog_replication_bench):
// failing loudly, timing and progress, formatting figures, reading the machine's
// state, the run's temp dirs and nodes.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/core/clock.h"
#include "common/signed_log.h"
#include "node/engine/node.h"
#include "replog/status.h"

namespace replog::bench {

using engine::InitOptions;
using engine::Node;
using engine::NodeOptions;

// Prints "PROGRAM: what" and exits 1; each program defines it.
[[noreturn]] void die(const std::string& what);

inline void check(const Status& s, const std::string& what) {
  if (!s) die(what + ": " + s.message());
}

template <typename T>
inline T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.status().message());
  return std::move(r).value();
}

inline void mdb_check(int rc, const std::string& what) {
  if (rc != 0) die(what + ": " + mdb_strerror(rc));
}

using Steady = std::chrono::steady_clock;

inline double seconds_since(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

inline double seconds_between(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline const Steady::time_point g_start = Steady::now();  // the program's start

// A line on stderr, stamped with the seconds since the start.
inline void progress(const std::string& msg) {
  std::fprintf(stderr, "[%7.1fs] %s\n", seconds_since(g_start), msg.c_str());
}

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// 1234567 -> "1,234,567"
inline std::string grouped(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  std::string s = buf, out;
  size_t neg = (!s.empty() && s[0] == '-') ? 1 : 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > neg && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

inline std::string grouped(uint64_t v) { return grouped(static_cast<double>(v)); }

inline std::string rate_text(double per_s) {
  if (per_s >= 100) return grouped(per_s) + "/s";
  return fmt("%.1f/s", per_s);
}

inline std::string time_text(double s) {
  if (s < 1e-3) return fmt("%.2f us", s * 1e6);
  if (s < 1) return fmt("%.1f ms", s * 1e3);
  return fmt("%.2f s", s);
}

inline std::string mib_text(double bytes) { return fmt("%.1f MiB", bytes / (1024.0 * 1024.0)); }

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt("\\u%04x", static_cast<unsigned char>(c));
        else out += c;
    }
  }
  return out;
}

inline int64_t wall_ms() { return SystemClock().now_millis(); }

// The 1-minute load average: other processes on the machine skew every figure.
inline std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

// A field of /proc/<pid>/status in KiB ("RssAnon", "VmHWM", ...); -1 if absent.
inline long status_kib(const std::string& status_path, const std::string& field) {
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return -1;
}

inline std::string g_root;  // the run's temp dir, set by main
inline std::atomic<int> g_dir_counter{0};

// A new directory under the run's temp dir.
inline std::string fresh_dir(const std::string& name) {
  std::string d = g_root + "/" + std::to_string(++g_dir_counter) + "-" + name;
  std::filesystem::create_directories(d);
  return d;
}

// A new node directory under the run's temp dir (Node::init makes it), in the
// benchmarks' cluster unless told (the heads of SignedOrigins are bound to it).
inline std::string new_node_dir(const std::string& name, const std::string& cluster = kBenchCluster) {
  std::string d = g_root + "/" + std::to_string(++g_dir_counter) + "-" + name;
  InitOptions io;
  io.dir = d;
  io.cluster = cluster;
  check(Node::init(io), "Node::init " + name);
  return d;
}

// `verify_origins` off only for a baseline (received updates judged for form alone).
inline std::unique_ptr<Node> open_node(const std::string& dir, const std::string& what = "Node::open",
                                       bool verify_origins = true) {
  NodeOptions no;
  no.dir = dir;
  no.verify_origins = verify_origins;
  return must(Node::open(no), what);
}

inline std::unique_ptr<Node> open_read_only(const std::string& dir,
                                            const std::string& what = "Node::open_read_only") {
  NodeOptions no;
  no.dir = dir;
  return must(Node::open_read_only(no), what);
}

// Node::ingest of a signed batch that must be accepted whole; returns how many
// were accepted (duplicates are not).
inline size_t ingest_or_die(Node& node, SignedBatch batch, const std::string& what) {
  auto rep = must(node.ingest(std::move(batch.updates), std::move(batch.heads)), "Node::ingest");
  if (!rep.refused.empty()) {
    const Refused& r = rep.refused.front();
    die(what + " refused " + r.id.to_string() + ": " + verdict_name(r.verdict) + ": " + r.detail);
  }
  return rep.accepted;
}

// The number of write transactions committed so far in a node's environment,
// as mdb_env_info tells it (from the newest meta page). The node holds that
// environment; a second one opened here must not touch the lock file (LMDB
// would reset it), so it opens read-only without one (MDB_NOLOCK), which is
// enough to read the meta pages.
inline uint64_t last_txnid(const Node& node) {
  MDB_env* env = nullptr;
  mdb_check(mdb_env_create(&env), "mdb_env_create");
  int rc = mdb_env_open(env, node.dir().c_str(), MDB_RDONLY | MDB_NOLOCK, 0600);
  MDB_envinfo info{};
  if (rc == 0) rc = mdb_env_info(env, &info);
  mdb_env_close(env);
  mdb_check(rc, "mdb_env_info " + node.dir());
  return static_cast<uint64_t>(info.me_last_txnid);
}

inline uint64_t parse_count(const std::string& s, const char* opt) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v == 0) die(std::string(opt) + " needs a positive number, got \"" + s + "\"");
  return v;
}

// "a,b" -> {"a", "b"}; dies on a name not in `known`.
inline std::set<std::string> parse_only(const std::string& list, const std::set<std::string>& known) {
  std::set<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!known.count(name)) die("--only: unknown figure \"" + name + "\"");
    out.insert(name);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace replog::bench
