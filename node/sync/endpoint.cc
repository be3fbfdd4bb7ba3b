#include "node/sync/endpoint.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cctype>

namespace replog {

namespace {

bool valid_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c == '.') {
      if (label == 0 || host[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0);
    if (!ok || ++label > 63) return false;
  }
  return label > 0 && host.back() != '-';
}

bool valid_host(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    std::string inner(host.substr(1, host.size() - 2));
    unsigned char buf[16];
    return inet_pton(AF_INET6, inner.c_str(), buf) == 1;
  }
  std::string h(host);
  unsigned char buf[4];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1) return true;
  // All digits and dots but not an address (999.1.1.1): refused, not looked up.
  if (h.find_first_not_of("0123456789.") == std::string::npos) return false;
  return valid_dns_name(host);
}

// The addresses of interfaces that are up, neither loopback nor link-local.
std::vector<std::string> interface_addresses(bool with_ipv6) {
  std::vector<std::string> v4, v6;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || !(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      if ((ntohl(in->sin_addr.s_addr) >> 16) == 0xa9fe) continue;  // 169.254/16
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) v4.emplace_back(text);
    } else if (with_ipv6 && a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) continue;
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) v6.push_back("[" + std::string(text) + "]");
    }
  }
  freeifaddrs(list);
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

}  // namespace

Result<std::vector<std::string>> reachable_endpoints(const std::string& bound, size_t max) {
  constexpr std::string_view kScheme = "tcp://";
  const size_t colon = bound.rfind(':');
  if (bound.compare(0, kScheme.size(), kScheme) != 0 || colon == std::string::npos || colon < kScheme.size())
    return Status::invalid_argument("endpoint " + bound + " is not tcp://HOST:PORT");
  const std::string host = bound.substr(kScheme.size(), colon - kScheme.size()), port = bound.substr(colon);
  if (host != "0.0.0.0" && host != "*" && host != "[::]") return std::vector<std::string>{bound};
  std::vector<std::string> out;
  for (const auto& address : interface_addresses(host == "[::]")) {
    if (out.size() >= max) break;
    out.push_back(std::string(kScheme) + address + port);
  }
  if (out.empty()) out.push_back(std::string(kScheme) + "127.0.0.1" + port);
  return out;
}

Status check_peer_endpoint(std::string_view endpoint) {
  auto refuse = [&](const char* why) {
    std::string shown(endpoint.substr(0, 80));
    if (endpoint.size() > 80) shown += "...";
    return Status::invalid_argument("endpoint \"" + shown + "\": " + why);
  };
  if (endpoint.size() > kMaxEndpointBytes) return refuse("too long");
  constexpr std::string_view kScheme = "tcp://";
  if (endpoint.substr(0, kScheme.size()) != kScheme) return refuse("not tcp://HOST:PORT");
  std::string_view rest = endpoint.substr(kScheme.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return refuse("no port");
  std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
    return refuse("port is not a number");
  int p = std::stoi(std::string(port));
  if (p < 1 || p > 65535) return refuse("port out of 1..65535");
  if (!valid_host(host)) return refuse("host is not an IP address or a DNS name");
  return Status::ok();
}

}  // namespace replog
