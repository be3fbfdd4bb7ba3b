#include "node/sync/endpoint.h"

#include <arpa/inet.h>

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

}  // namespace

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
