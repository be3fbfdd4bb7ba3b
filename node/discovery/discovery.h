// Discovery: LAN beacons out and in (PROTOCOL.md "Discovery"). Every
// interval (jittered by +-25%) it sends this node's beacon (beacon.h) to the
// IPv4 broadcast address of every interface that has one and to
// 255.255.255.255, and to the IPv6 group ff02::7265 on every interface that
// does multicast; it reads the beacons others send to the same UDP port.
//
// A beacon whose MAC holds and whose tag names a trusted device makes the
// node dial that device at the beacon's source address and port, with the
// device's key (so only that device can answer), unless a link to it exists.
// Everything else is dropped and counted: packets that are not beacons,
// beacons of other clusters (bad MAC), the node's own, those of devices it
// does not trust. Dials are limited per source address (one per 30 s) and in
// all (16 a minute), so spoofed or replayed beacons cannot make a node hammer
// an address. IPv6 beacons are read and identified but not dialled: the peer
// transport speaks IPv4 only (counted as dials_skipped_ipv6).
//
// The sockets are non-blocking and read at most kMaxPacketsPerTurn per turn:
// run_once() never waits, so the daemon calls it from its event loop.
//
// Thread safety: one thread (the daemon's event loop) uses a Discovery; the
// hooks are called on it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/discovery/beacon.h"
#include "replog/status.h"

namespace replog {

// The UDP port beacons go to unless --discovery-port says otherwise.
inline constexpr uint16_t kDefaultDiscoveryPort = 21029;
// The IPv6 link-local group beacons go to ("re" in ASCII).
inline constexpr char kDiscoveryGroupV6[] = "ff02::7265";

struct DiscoveryOptions {
  uint16_t udp_port = kDefaultDiscoveryPort;  // beacons are sent to and read on it
  uint16_t listen_port = 0;                   // the TCP port a beacon announces
  int64_t interval_ms = 5000;                 // between beacons, jittered by +-25%
  // Test only (--discovery-to): IPv4 HOST:PORT targets each beacon also goes
  // to by unicast, for nodes on one host that broadcasts do not reach.
  std::vector<std::string> also_to;
  bool ipv6 = true;                           // also the IPv6 group where possible
};

struct DiscoveryCounters {
  uint64_t beacons_sent = 0;            // datagrams sent
  uint64_t send_errors = 0;             // datagrams the kernel refused (no route, ...)
  uint64_t beacons_received = 0;        // datagrams read
  uint64_t beacons_malformed = 0;       // not a beacon of this version (size, magic, version, port 0)
  uint64_t beacons_bad_mac = 0;         // a beacon, not of this cluster (or forged)
  uint64_t beacons_self = 0;            // this node's own, heard back
  uint64_t beacons_unknown_device = 0;  // a member this node does not trust
  uint64_t beacons_known = 0;           // from a trusted device
  uint64_t dials = 0;                   // trusted devices dialled because of a beacon
  uint64_t dials_skipped_linked = 0;    // a link to the device existed already
  uint64_t dials_rate_limited = 0;      // the per-address or the global limit said no
  uint64_t dials_skipped_ipv6 = 0;      // identified over IPv6 only: not dialled
};

// At most one dial per source address every per_source_ms, and at most
// max_in_window dials within any window_ms. Remembers at most kMaxSources
// addresses (the stalest are forgotten first).
class DialLimiter {
 public:
  static constexpr size_t kMaxSources = 4096;
  DialLimiter(int64_t per_source_ms = 30'000, size_t max_in_window = 16, int64_t window_ms = 60'000)
      : per_source_ms_(per_source_ms), max_in_window_(max_in_window), window_ms_(window_ms) {}
  // True (and the dial is counted) when a dial to `source` is allowed at `now_ms`.
  bool allow(const std::string& source, int64_t now_ms);

 private:
  int64_t per_source_ms_;
  size_t max_in_window_;
  int64_t window_ms_;
  std::map<std::string, int64_t> last_;  // source -> last dial
  std::deque<int64_t> recent_;           // times of the dials within window_ms_
};

class Discovery {
 public:
  static constexpr int kMaxPacketsPerTurn = 64;
  struct Hooks {
    std::function<std::vector<std::string>()> trusted;           // trusted device keys (32 bytes)
    std::function<bool(const std::string& device_key)> linked;   // a link to it exists
    std::function<void(const std::string& endpoint, const std::string& device_key)> dial;
  };
  using Log = std::function<void(int level, const std::string& line)>;

  // No sockets yet: on_packet() and beacon() work, run_once() sends nothing.
  Discovery(DiscoveryOptions options, BeaconKeys keys, std::string own_key, Hooks hooks, Log log);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Binds the UDP sockets (SO_REUSEADDR and SO_REUSEPORT: several nodes of a
  // host share the port). IPv6 failing is not an error (IPv4 goes on alone).
  Status open();
  // Sends the beacon when due and reads what arrived; never blocks.
  void run_once(int64_t now_ms);
  // The next run_once() sends a beacon (e.g. the trust list changed).
  void announce_soon() { next_beacon_ms_ = 0; }
  // One received datagram from `source_ip` (textual IPv4 or IPv6 address).
  void on_packet(std::string_view packet, const std::string& source_ip, bool ipv6, int64_t now_ms);
  // A fresh beacon of this node.
  std::string beacon();

  const DiscoveryCounters& counters() const { return counters_; }

 private:
  void send_beacons();
  void send_to(int fd, const void* addr, unsigned len, const std::string& bytes);
  void join_groups();
  void read(int fd, bool ipv6, int64_t now_ms);

  DiscoveryOptions options_;
  BeaconKeys keys_;
  std::string own_key_;
  Hooks hooks_;
  Log log_;
  DialLimiter limiter_;
  std::mt19937_64 rng_;
  int fd4_ = -1;
  int fd6_ = -1;
  std::set<unsigned> joined_;  // interfaces whose IPv6 group membership is made
  int64_t next_beacon_ms_ = 0;
  uint64_t reported_send_errors_ = 0;
  DiscoveryCounters counters_;
};

}  // namespace replog
