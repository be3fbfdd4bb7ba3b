#include "node/discovery/discovery.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "protocol/device_id.h"
#include "storage/env.h"

namespace replog {

bool DialLimiter::allow(const std::string& source, int64_t now_ms) {
  while (!recent_.empty() && now_ms - recent_.front() >= window_ms_) recent_.pop_front();
  auto it = last_.find(source);
  if (it != last_.end() && now_ms - it->second < per_source_ms_) return false;
  if (recent_.size() >= max_in_window_) return false;
  if (it == last_.end() && last_.size() >= kMaxSources) {
    // Forget the addresses whose wait is over; failing that, the stalest one.
    std::erase_if(last_, [&](const auto& e) { return now_ms - e.second >= per_source_ms_; });
    if (last_.size() >= kMaxSources)
      last_.erase(std::min_element(last_.begin(), last_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; }));
  }
  last_[source] = now_ms;
  recent_.push_back(now_ms);
  return true;
}

Discovery::Discovery(DiscoveryOptions options, BeaconKeys keys, std::string own_key, Hooks hooks, Log log)
    : options_(std::move(options)), keys_(keys), own_key_(std::move(own_key)), hooks_(std::move(hooks)),
      log_(std::move(log)) {
  uint64_t seed = 0;
  randombytes_buf(&seed, sizeof seed);
  rng_.seed(seed);
}

Discovery::~Discovery() {
  if (fd4_ >= 0) ::close(fd4_);
  if (fd6_ >= 0) ::close(fd6_);
  sodium_memzero(keys_.tag_key.data(), keys_.tag_key.size());
  sodium_memzero(keys_.mac_key.data(), keys_.mac_key.size());
}

namespace {

// A non-blocking UDP socket of `family` bound to the port on every address,
// shared with the host's other nodes.
Result<int> bind_udp(int family, uint16_t port) {
  const std::string what = std::string(family == AF_INET ? "IPv4" : "IPv6") + " discovery socket on UDP port " +
                           std::to_string(port);
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error(what + ": " + errno_text(errno));
  const int one = 1;
  bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
  if (ok && family == AF_INET) {
    ok = setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) == 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    ok = ok && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  } else if (ok) {
    const int hops = 1;
    ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) == 0;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_any;
    ok = ok && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  if (!ok) {
    Status s = Status::io_error(what + ": " + errno_text(errno));
    ::close(fd);
    return s;
  }
  return fd;
}

bool usable(const ifaddrs* ifa) {
  return ifa->ifa_addr != nullptr && (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK);
}

}  // namespace

Status Discovery::open() {
  auto fd4 = bind_udp(AF_INET, options_.udp_port);
  if (!fd4) return fd4.status();
  fd4_ = *fd4;
  if (options_.ipv6) {
    auto fd6 = bind_udp(AF_INET6, options_.udp_port);
    if (fd6) fd6_ = *fd6;
    else log_(2, "discovery: " + fd6.status().message() + ": IPv4 beacons only");
  }
  return Status::ok();
}

std::string Discovery::beacon() {
  BeaconNonce nonce;
  randombytes_buf(nonce.data(), nonce.size());
  return encode_beacon(keys_, own_key_, options_.listen_port, nonce);
}

void Discovery::run_once(int64_t now_ms) {
  if (fd4_ < 0) return;
  if (now_ms >= next_beacon_ms_) {
    send_beacons();
    const auto spread = static_cast<uint64_t>(options_.interval_ms / 2 + 1);
    next_beacon_ms_ = now_ms + options_.interval_ms * 3 / 4 + static_cast<int64_t>(rng_() % spread);
  }
  read(fd4_, false, now_ms);
  if (fd6_ >= 0) read(fd6_, true, now_ms);
}

void Discovery::send_to(int fd, const void* addr, unsigned len, const std::string& bytes) {
  if (::sendto(fd, bytes.data(), bytes.size(), 0, static_cast<const sockaddr*>(addr), len) ==
      static_cast<ssize_t>(bytes.size())) {
    ++counters_.beacons_sent;
    return;
  }
  ++counters_.send_errors;
  // One line per kind of trouble, not one per beacon: a host without a default route refuses 255.255.255.255 each time.
  if (counters_.send_errors > reported_send_errors_ * 2) {
    reported_send_errors_ = counters_.send_errors;
    log_(3, "discovery: a beacon was not sent: " + errno_text(errno));
  }
}

void Discovery::join_groups() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  in6_addr group{};
  inet_pton(AF_INET6, kDiscoveryGroupV6, &group);
  for (const ifaddrs* ifa = list; ifa; ifa = ifa->ifa_next) {
    if (!usable(ifa) || !(ifa->ifa_flags & IFF_MULTICAST) || ifa->ifa_addr->sa_family != AF_INET6) continue;
    const unsigned index = if_nametoindex(ifa->ifa_name);
    if (index == 0 || joined_.count(index)) continue;
    ipv6_mreq m{};
    m.ipv6mr_multiaddr = group;
    m.ipv6mr_interface = index;
    if (setsockopt(fd6_, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) == 0 || errno == EADDRINUSE)
      joined_.insert(index);
  }
  freeifaddrs(list);
}

// Interfaces are listed again for every beacon: one that came up since is
// used at once, and one that went is no longer tried.
void Discovery::send_beacons() {
  const std::string bytes = beacon();
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) list = nullptr;
  std::set<uint32_t> broadcast{htonl(INADDR_BROADCAST)};
  for (const ifaddrs* ifa = list; ifa; ifa = ifa->ifa_next)
    if (usable(ifa) && ifa->ifa_addr->sa_family == AF_INET && (ifa->ifa_flags & IFF_BROADCAST) &&
        ifa->ifa_broadaddr != nullptr)
      broadcast.insert(reinterpret_cast<const sockaddr_in*>(ifa->ifa_broadaddr)->sin_addr.s_addr);
  for (uint32_t address : broadcast) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(options_.udp_port);
    a.sin_addr.s_addr = address;
    send_to(fd4_, &a, sizeof a, bytes);
  }
  for (const auto& target : options_.also_to) {
    const auto colon = target.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
    inet_pton(AF_INET, target.substr(0, colon).c_str(), &a.sin_addr);
    send_to(fd4_, &a, sizeof a, bytes);
  }
  if (fd6_ >= 0) {
    join_groups();
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(options_.udp_port);
    inet_pton(AF_INET6, kDiscoveryGroupV6, &a.sin6_addr);
    std::set<unsigned> sent;
    for (const ifaddrs* ifa = list; ifa; ifa = ifa->ifa_next) {
      if (!usable(ifa) || !(ifa->ifa_flags & IFF_MULTICAST) || ifa->ifa_addr->sa_family != AF_INET6) continue;
      unsigned index = if_nametoindex(ifa->ifa_name);
      if (index == 0 || !sent.insert(index).second) continue;
      if (setsockopt(fd6_, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) != 0) continue;
      send_to(fd6_, &a, sizeof a, bytes);
    }
  }
  if (list) freeifaddrs(list);
}

void Discovery::read(int fd, bool ipv6, int64_t now_ms) {
  // One byte more than a beacon: with MSG_TRUNC, a longer datagram still reads as too long.
  char buf[kBeaconBytes + 1];
  for (int i = 0; i < kMaxPacketsPerTurn; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;  // EAGAIN: nothing more; anything else: tried again next turn
    char ip[INET6_ADDRSTRLEN] = {};
    if (from.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&from)->sin_addr, ip, sizeof ip);
    else if (from.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, ip, sizeof ip);
    on_packet(std::string_view(buf, std::min(static_cast<size_t>(n), sizeof buf)), ip, ipv6, now_ms);
  }
}

void Discovery::on_packet(std::string_view packet, const std::string& source_ip, bool ipv6, int64_t now_ms) {
  ++counters_.beacons_received;
  OpenedBeacon b;
  switch (open_beacon(keys_, packet, &b)) {
    case BeaconVerdict::kMalformed: ++counters_.beacons_malformed; return;
    case BeaconVerdict::kBadMac: ++counters_.beacons_bad_mac; return;
    case BeaconVerdict::kOk: break;
  }
  if (b.port == 0) {
    ++counters_.beacons_malformed;
    return;
  }
  if (beacon_is_from(keys_, b, own_key_)) {
    ++counters_.beacons_self;
    return;
  }
  auto sender = beacon_sender(keys_, b, hooks_.trusted());
  if (!sender) {
    ++counters_.beacons_unknown_device;
    return;
  }
  ++counters_.beacons_known;
  if (hooks_.linked(*sender)) {
    ++counters_.dials_skipped_linked;
    return;
  }
  if (ipv6) {
    ++counters_.dials_skipped_ipv6;
    return;
  }
  if (!limiter_.allow(source_ip, now_ms)) {
    ++counters_.dials_rate_limited;
    return;
  }
  ++counters_.dials;
  const std::string endpoint = "tcp://" + source_ip + ":" + std::to_string(b.port);
  log_(2, "discovery: device " + format_device_id(*sender) + " found at " + endpoint);
  hooks_.dial(endpoint, *sender);
}

}  // namespace replog
