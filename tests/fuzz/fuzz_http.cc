// libFuzzer target: what the dashboard's server reads from a browser or
// anyone on the machine (node/http/access.h, node/http/routes.h): the access
// checks over a request head, the query and cookie parsers, the --http
// address, and the JSON bodies of writes. The input is lines:
//   METHOD TARGET / Host / Origin (a line "-" is an absent header) /
//   Authorization / Cookie / X-Replog-CSRF / then the body.
// Invariants, each an abort when broken:
//  - a request let through names an allowed Host, carries the token when one
//    is required, an Origin that is absent or its own, and the CSRF token when
//    it writes; one refused gets 401 or 403 and a message;
//  - a percent-decoded value is never longer than its text;
//  - an accepted --http address prints to an address that parses the same;
//  - a call body that parses gives a method name and an argument whose typed
//    JSON parses back to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "node/http/access.h"
#include "node/http/routes.h"
#include "protocol/json_codec.h"

namespace replog::fuzz {
namespace {

constexpr std::string_view kToken = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kCsrf = "fedcba9876543210fedcba9876543210";

std::vector<std::string_view> split_lines(std::string_view in, size_t n, std::string_view& rest) {
  std::vector<std::string_view> lines;
  while (lines.size() < n) {
    auto nl = in.find('\n');
    lines.push_back(in.substr(0, nl));
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  }
  rest = in;
  return lines;
}

http::RequestHead head_of(const std::vector<std::string_view>& l) {
  http::RequestHead r;
  auto space = l[0].find(' ');
  r.method = std::string(l[0].substr(0, space));
  r.target = space == std::string_view::npos ? "" : std::string(l[0].substr(space + 1));
  r.host = std::string(l[1]);
  r.has_origin = l[2] != "-";
  if (r.has_origin) r.origin = std::string(l[2]);
  r.authorization = std::string(l[3]);
  r.cookie = std::string(l[4]);
  r.csrf = std::string(l[5]);
  return r;
}

void check_access_invariants(const http::RequestHead& r, bool with_token) {
  http::AccessPolicy p{http::HttpBind{with_token ? "127.0.0.2" : "127.0.0.1", 8380}, 8380,
                       with_token ? std::string(kToken) : "", std::string(kCsrf)};
  auto refused = http::check_access(r, p);
  if (refused) {
    if ((refused->status != 401 && refused->status != 403) || refused->message.empty())
      violated("a refusal is 401 or 403 with a message", __FILE__, __LINE__);
    return;
  }
  if (!http::host_allowed(r.host, p.bind, p.port)) violated("a foreign Host went through", __FILE__, __LINE__);
  if (!http::origin_allowed(r.origin, r.has_origin, r.host)) violated("a foreign Origin went through", __FILE__, __LINE__);
  if (with_token && http::request_token(r) != std::string(kToken)) violated("no token went through", __FILE__, __LINE__);
  if (http::writes(r.method) && r.csrf != kCsrf) violated("a write without CSRF went through", __FILE__, __LINE__);
}

void check_parsers(const http::RequestHead& r) {
  if (auto v = http::query_value(r.target, "token"); v && v->size() > r.target.size())
    violated("a decoded value is longer than its text", __FILE__, __LINE__);
  if (auto bind = http::parse_http_bind(r.host)) {
    auto again = http::parse_http_bind(bind->authority(bind->port));
    if (!again || again->host != bind->host || again->port != bind->port)
      violated("an --http address does not print to itself", __FILE__, __LINE__);
  }
}

void check_call_body(std::string_view body) {
  auto call = http::parse_call_body(body);
  if (!call) return;
  if (call->first.empty()) violated("a call without a method parsed", __FILE__, __LINE__);
  const std::string text = to_typed_json(call->second);
  auto again = parse_typed_json(text);
  if (!again || to_typed_json(*again) != text) violated("a call's argument does not round-trip", __FILE__, __LINE__);
  (void)http::parse_resolve_body(body);
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog::fuzz;
  std::string_view body;
  auto lines = split_lines(std::string_view(reinterpret_cast<const char*>(data), size), 6, body);
  const replog::http::RequestHead r = head_of(lines);
  check_access_invariants(r, false);
  check_access_invariants(r, true);
  check_parsers(r);
  check_call_body(body);
  return 0;
}
