#include "node/http/access.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <cctype>

#include "protocol/bytes.h"

namespace replog::http {

namespace {

bool is_ip_literal(const std::string& host) {
  // inet_pton reads up to a NUL: "127.0.0.1\0evil" would pass as its prefix.
  if (host.find('\0') != std::string::npos) return false;
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// "host:port" or "[v6]:port" -> (host, port text); the port may be absent.
std::pair<std::string, std::string> split_authority(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return {std::string(text), ""};
    std::string_view rest = text.substr(close + 1);
    return {std::string(text.substr(1, close - 1)),
            rest.size() > 1 && rest.front() == ':' ? std::string(rest.substr(1)) : std::string()};
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return {std::string(text), ""};
  return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool HttpBind::loopback() const { return host == "127.0.0.1" || host == "::1" || host == "localhost"; }

bool HttpBind::wildcard() const { return host == "0.0.0.0" || host == "::"; }

std::string HttpBind::authority(uint16_t p) const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(p);
}

Result<HttpBind> parse_http_bind(std::string_view spec) {
  const std::string where = "--http " + std::string(spec);
  auto [host, port_text] = split_authority(spec);
  if (host.empty() || port_text.empty())
    return Status::invalid_argument(where + ": expected HOST:PORT, e.g. 127.0.0.1:8380 (or off)");
  HttpBind bind;
  bind.host = lower(host);
  if (bind.host != "localhost" && !is_ip_literal(bind.host))
    return Status::invalid_argument(where + ": HOST must be an IP address or localhost");
  unsigned port = 0;
  for (char c : port_text) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
      port = 70000;
      break;
    }
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port > 65535) return Status::invalid_argument(where + ": PORT must be 0..65535");
  bind.port = static_cast<uint16_t>(port);
  return bind;
}

bool host_allowed(std::string_view host_header, const HttpBind& bind, uint16_t port) {
  auto [host, port_text] = split_authority(lower(host_header));
  const bool port_ok = port_text == std::to_string(port) || (port_text.empty() && port == 80);
  if (!port_ok || host.empty()) return false;
  if (bind.loopback()) return host == "localhost" || host == "127.0.0.1" || host == "::1";
  if (bind.wildcard()) return host == "localhost" || is_ip_literal(host);
  return host == bind.host;
}

bool origin_allowed(std::string_view origin, bool present, std::string_view host) {
  if (!present) return true;
  return lower(origin) == "http://" + lower(host);
}

bool secret_matches(std::string_view given, std::string_view expected) {
  if (expected.empty() || given.size() != expected.size()) return false;
  return sodium_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

std::optional<std::string> bearer_token(std::string_view authorization) {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() || lower(authorization.substr(0, kBearer.size())) != kBearer)
    return std::nullopt;
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return std::string(token);
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex_digit(text[i + 1]), lo = hex_digit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string_view target_path(std::string_view target) { return target.substr(0, target.find('?')); }

std::optional<std::string> query_value(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) return percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> request_token(const RequestHead& r) {
  if (auto t = bearer_token(r.authorization)) return t;
  if (auto t = cookie_value(r.cookie, "replog_token")) return t;
  return query_value(r.target, "token");
}

bool writes(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

std::optional<Refusal> check_access(const RequestHead& r, const AccessPolicy& p) {
  if (!host_allowed(r.host, p.bind, p.port))
    return Refusal{403, "Host \"" + r.host + "\" is not this server's (" + p.bind.authority(p.port) + ")"};
  if (!p.token.empty()) {
    auto token = request_token(r);
    if (!token || !secret_matches(*token, p.token))
      return Refusal{401, "an access token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)"};
  }
  if (!origin_allowed(r.origin, r.has_origin, r.host))
    return Refusal{403, "Origin \"" + r.origin + "\" is not this server's"};
  if (writes(r.method) && !secret_matches(r.csrf, p.csrf))
    return Refusal{403, "a write needs the CSRF token in X-Replog-CSRF (GET /api/session gives it)"};
  return std::nullopt;
}

std::string make_secret() {
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  return to_hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace replog::http
