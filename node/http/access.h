// Who may use the node's HTTP server (docs/HTTP.md "Access"): pure checks of
// one request's head against the bound address and the node's secrets.
//
// A server on loopback is still reachable from every web page the user's
// browser opens, so each request is checked, in this order:
//   1. Host names the bound address (or, on loopback, localhost): a page
//      served from another name that resolves to 127.0.0.1 (DNS rebinding)
//      sends its own name and is refused.
//   2. The access token, when the bind is not 127.0.0.1 or ::1: from
//      `Authorization: Bearer`, the `replog_token` cookie or `?token=`.
//   3. Origin, when sent, is http://<Host>: another site's page is refused,
//      on the WebSocket too.
//   4. A request that writes carries the CSRF token in `X-Replog-CSRF`.
// The secrets are compared in constant time.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "replog/status.h"

namespace replog::http {

// Where the server listens: --http HOST:PORT (IPv6 in brackets).
struct HttpBind {
  std::string host;   // an IP literal (IPv6 without brackets) or "localhost"
  uint16_t port = 0;  // 0: a free port chosen at bind (tests)

  // 127.0.0.1, ::1 or localhost: the only binds that need no token.
  bool loopback() const;
  // Any address (0.0.0.0 or ::): Host may name any IP literal.
  bool wildcard() const;
  // host:port as it appears in a URL, for `port` (IPv6 in brackets).
  std::string authority(uint16_t port) const;
};

// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080", "localhost:8080".
Result<HttpBind> parse_http_bind(std::string_view spec);

// What access needs of a request's head (empty: the header was absent).
struct RequestHead {
  std::string method;
  std::string target;  // path and query
  std::string host;
  std::string origin;
  std::string authorization;
  std::string cookie;
  std::string csrf;        // X-Replog-CSRF
  bool has_origin = false;  // an empty Origin header is still an Origin
};

struct AccessPolicy {
  HttpBind bind;
  uint16_t port = 0;  // the port actually bound
  std::string token;  // required when not empty
  std::string csrf;   // required on writes
};

struct Refusal {
  int status;  // 400, 401 or 403
  std::string message;
};

bool host_allowed(std::string_view host, const HttpBind& bind, uint16_t port);
// An absent Origin (curl, a same-origin GET) passes; one present must be http://<host>.
bool origin_allowed(std::string_view origin, bool present, std::string_view host);
bool secret_matches(std::string_view given, std::string_view expected);

// `Authorization: Bearer X` -> X.
std::optional<std::string> bearer_token(std::string_view authorization);
// The value of cookie `name` in a Cookie header.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);
// The value of query parameter `name` in a target, percent-decoded; null when
// absent or badly encoded.
std::optional<std::string> query_value(std::string_view target, std::string_view name);
// The target's path, without the query.
std::string_view target_path(std::string_view target);
// Percent-decoding (+ is not a space); null on a bad escape.
std::optional<std::string> percent_decode(std::string_view text);

// The token the request carries, from any of its three places.
std::optional<std::string> request_token(const RequestHead& r);
// POST, PUT, PATCH and DELETE write; everything else only reads.
bool writes(std::string_view method);

// Null when the request may go on; otherwise what to answer.
std::optional<Refusal> check_access(const RequestHead& r, const AccessPolicy& policy);

// 32 random bytes in hex: an access or CSRF token.
std::string make_secret();

}  // namespace replog::http
