// The dashboard server's pure parts: access checks (Host, Origin, token,
// CSRF), the metrics' text format and names, and the bodies of writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include <sstream>

#include "node/http/access.h"
#include "node/http/assets.h"
#include "node/http/metrics.h"
#include "node/http/routes.h"

namespace replog::http {
namespace {

HttpBind bind_of(const std::string& spec) {
  auto b = parse_http_bind(spec);
  EXPECT_TRUE(b) << b.status().message();
  return b ? *b : HttpBind{};
}

AccessPolicy loopback_policy() { return AccessPolicy{bind_of("127.0.0.1:8380"), 8380, "", "c5rf"}; }

RequestHead get(const std::string& target, const std::string& host = "127.0.0.1:8380") {
  RequestHead r;
  r.method = "GET";
  r.target = target;
  r.host = host;
  return r;
}

TEST(HttpBindTest, ParsesIpv4Ipv6AndLocalhost) {
  EXPECT_EQ(bind_of("127.0.0.1:8380").host, "127.0.0.1");
  EXPECT_EQ(bind_of("[::1]:9000").host, "::1");
  EXPECT_EQ(bind_of("[::1]:9000").port, 9000);
  EXPECT_EQ(bind_of("LOCALHOST:1").host, "localhost");
  EXPECT_EQ(bind_of("0.0.0.0:0").port, 0);
  EXPECT_EQ(bind_of("[::1]:9000").authority(9000), "[::1]:9000");
}

TEST(HttpBindTest, RefusesNamesMissingPortsAndBadPorts) {
  for (const char* bad : {"example.com:80", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:8x",
                          "[::1:80", "", "off"})
    EXPECT_FALSE(parse_http_bind(bad)) << bad;
}

// Found by fuzz_http: inet_pton stopped at the NUL and took the prefix for the address.
TEST(HttpBindTest, AnAddressWithANulInsideIsRefused) {
  EXPECT_FALSE(parse_http_bind(std::string("254.0.0.2\0evil:80", 17)));
  EXPECT_FALSE(host_allowed(std::string("10.0.0.1\0evil:90", 16), bind_of("0.0.0.0:90"), 90));
}

TEST(HttpBindTest, OnlyOneTwoSevenZeroZeroOneAndIpv6LoopbackNeedNoToken) {
  EXPECT_TRUE(bind_of("127.0.0.1:1").loopback());
  EXPECT_TRUE(bind_of("[::1]:1").loopback());
  EXPECT_TRUE(bind_of("localhost:1").loopback());
  EXPECT_FALSE(bind_of("127.0.0.2:1").loopback());
  EXPECT_FALSE(bind_of("0.0.0.0:1").loopback());
  EXPECT_FALSE(bind_of("192.168.1.4:1").loopback());
}

TEST(HostCheckTest, LoopbackBindAcceptsItsLoopbackNamesAtItsPort) {
  const HttpBind b = bind_of("127.0.0.1:8380");
  EXPECT_TRUE(host_allowed("127.0.0.1:8380", b, 8380));
  EXPECT_TRUE(host_allowed("localhost:8380", b, 8380));
  EXPECT_TRUE(host_allowed("LocalHost:8380", b, 8380));
  EXPECT_TRUE(host_allowed("[::1]:8380", b, 8380));
}

TEST(HostCheckTest, ForeignNamesWrongPortsAndEmptyHostAreRefused) {
  const HttpBind b = bind_of("127.0.0.1:8380");
  EXPECT_FALSE(host_allowed("evil.example:8380", b, 8380));  // DNS rebinding: the attacker's name
  EXPECT_FALSE(host_allowed("127.0.0.1:8381", b, 8380));
  EXPECT_FALSE(host_allowed("127.0.0.1", b, 8380));
  EXPECT_FALSE(host_allowed("", b, 8380));
  EXPECT_FALSE(host_allowed("127.0.0.2:8380", b, 8380));
}

TEST(HostCheckTest, SpecificBindAcceptsOnlyItsAddressAndWildcardOnlyIpLiterals) {
  EXPECT_TRUE(host_allowed("127.0.0.2:90", bind_of("127.0.0.2:0"), 90));
  EXPECT_FALSE(host_allowed("localhost:90", bind_of("127.0.0.2:0"), 90));
  EXPECT_TRUE(host_allowed("10.1.2.3:90", bind_of("0.0.0.0:90"), 90));
  EXPECT_TRUE(host_allowed("localhost:90", bind_of("0.0.0.0:90"), 90));
  EXPECT_FALSE(host_allowed("rebind.example:90", bind_of("0.0.0.0:90"), 90));
}

TEST(OriginCheckTest, AbsentOrSameOriginPassesAnythingElseIsRefused) {
  EXPECT_TRUE(origin_allowed("", false, "127.0.0.1:8380"));
  EXPECT_TRUE(origin_allowed("http://127.0.0.1:8380", true, "127.0.0.1:8380"));
  EXPECT_FALSE(origin_allowed("http://evil.example", true, "127.0.0.1:8380"));
  EXPECT_FALSE(origin_allowed("null", true, "127.0.0.1:8380"));
  EXPECT_FALSE(origin_allowed("", true, "127.0.0.1:8380"));  // an empty Origin header is still a header
  EXPECT_FALSE(origin_allowed("https://127.0.0.1:8380", true, "127.0.0.1:8380"));
  EXPECT_FALSE(origin_allowed("http://127.0.0.1:8380.evil.example", true, "127.0.0.1:8380"));
}

TEST(SecretTest, MatchesOnlyTheSameNonEmptySecret) {
  EXPECT_TRUE(secret_matches("abc", "abc"));
  EXPECT_FALSE(secret_matches("abd", "abc"));
  EXPECT_FALSE(secret_matches("ab", "abc"));
  EXPECT_FALSE(secret_matches("", ""));
  const std::string s = make_secret();
  EXPECT_EQ(s.size(), 64u);
  EXPECT_NE(s, make_secret());
}

TEST(TokenPlacesTest, BearerCookieAndQueryAreRead) {
  EXPECT_EQ(bearer_token("Bearer t0k"), "t0k");
  EXPECT_EQ(bearer_token("bearer   t0k "), "t0k");
  EXPECT_FALSE(bearer_token("Basic dXNlcg=="));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_EQ(cookie_value("a=1; replog_token=xyz; b=2", "replog_token"), "xyz");
  EXPECT_FALSE(cookie_value("xreplog_token=1", "replog_token"));
  EXPECT_EQ(query_value("/?a=1&token=ab%2Fc", "token"), "ab/c");
  EXPECT_FALSE(query_value("/?token=%zz", "token"));
  EXPECT_FALSE(query_value("/?token=%4", "token"));
  EXPECT_FALSE(query_value("/path", "token"));
  EXPECT_EQ(target_path("/api/state?path=a"), "/api/state");
}

TEST(AccessTest, LoopbackReadWithoutTokenPasses) {
  EXPECT_FALSE(check_access(get("/api/status"), loopback_policy()));
}

TEST(AccessTest, ForeignHostIsRefusedFirst) {
  auto r = check_access(get("/api/status", "evil.example:8380"), loopback_policy());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST(AccessTest, ForeignOriginIsRefusedOnReadsAndWebSocket) {
  RequestHead r = get("/api/events");
  r.origin = "http://evil.example";
  r.has_origin = true;
  auto refused = check_access(r, loopback_policy());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  r.origin = "http://127.0.0.1:8380";
  EXPECT_FALSE(check_access(r, loopback_policy()));
}

TEST(AccessTest, WriteNeedsTheCsrfToken) {
  RequestHead r = get("/api/call");
  r.method = "POST";
  auto refused = check_access(r, loopback_policy());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  r.csrf = "wrong";
  EXPECT_TRUE(check_access(r, loopback_policy()));
  r.csrf = "c5rf";
  EXPECT_FALSE(check_access(r, loopback_policy()));
}

TEST(AccessTest, TokenBindRefusesWithout401AndTakesItFromEachPlace) {
  AccessPolicy p{bind_of("127.0.0.2:0"), 9000, "s3cret-token-value", "c5rf"};
  RequestHead r = get("/api/status", "127.0.0.2:9000");
  auto refused = check_access(r, p);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  r.authorization = "Bearer wrong";
  EXPECT_EQ(check_access(r, p)->status, 401);
  r.authorization = "Bearer s3cret-token-value";
  EXPECT_FALSE(check_access(r, p));
  r.authorization.clear();
  r.cookie = "replog_token=s3cret-token-value";
  EXPECT_FALSE(check_access(r, p));
  r.cookie.clear();
  r.target = "/?token=s3cret-token-value";
  EXPECT_FALSE(check_access(r, p));
}

TEST(MetricsTest, EveryNameIsValidStartsWithReplogAndCountersEndInTotal) {
  MetricsInput in;
  in.held = {{"00000000000000aa", 3}};
  in.refused = {{"update", 2}};
  in.peers.push_back(PeerMetrics{"00000000000000bb", "static", true, 1, 0, 0.5, 10, 20, 3, 4});
  in.archive = ArchiveMetrics{1, 2.5, 1000, 1001};
  in.checkpoint_age_s = 12;
  in.conflicts = 0;
  in.http_responses = {{200, 5}};
  std::set<std::string> names;
  for (const Family& f : node_metrics(in)) {
    EXPECT_TRUE(valid_metric_name(f.name)) << f.name;
    EXPECT_EQ(f.name.rfind("replog_", 0), 0u) << f.name;
    EXPECT_EQ(f.type == "counter", f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total") << f.name;
    EXPECT_TRUE(names.insert(f.name).second) << "twice: " << f.name;
  }
  for (const char* needed : {"replog_updates_held", "replog_updates_applied_total", "replog_refused_total",
                             "replog_conflicts", "replog_peers_connected", "replog_peer_sent_bytes_total",
                             "replog_peer_received_updates_total", "replog_replication_lag_updates",
                             "replog_archive_lag_updates", "replog_checkpoint_age_seconds", "replog_lmdb_used_bytes"})
    EXPECT_TRUE(names.count(needed)) << needed;
}

TEST(MetricsTest, RendersTheTextFormatWithEscapedLabels) {
  std::vector<Family> f{{"replog_x_total", "counter", "An x", {{{{"peer", "a\"b\\c\nd"}}, 3}}},
                        {"replog_empty", "gauge", "left out", {}},
                        {"replog_y_seconds", "gauge", "A y", {{{}, 0.25}}}};
  EXPECT_EQ(render_prometheus(f),
            "# HELP replog_x_total An x\n# TYPE replog_x_total counter\n"
            "replog_x_total{peer=\"a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP replog_y_seconds A y\n# TYPE replog_y_seconds gauge\nreplog_y_seconds 0.25\n");
}

TEST(MetricsTest, EveryRenderedLineIsACommentOrASample) {
  MetricsInput in;
  in.held = {{"00000000000000aa", 7}};
  in.peers.push_back(PeerMetrics{"tcp://127.0.0.1:1", "static", false, 0, 0, -1, 0, 0, 0, 0});
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? -?[0-9.e+]+$)");
  std::istringstream lines(render_prometheus(node_metrics(in)));
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 5);
}

TEST(CallBodyTest, TakesMethodAndTypedArgument) {
  auto c = parse_call_body(R"({"method": "set", "arg": {"path": "a", "value": {"$time": "2026-01-02T03:04:05Z"}}})");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->first, "set");
  EXPECT_EQ(c->second.find("value")->kind(), Value::Kind::kTime);
}

TEST(CallBodyTest, RefusesWhatIsNotACallWithTheFieldNamed) {
  EXPECT_NE(parse_call_body("not json").status().message().find("body"), std::string::npos);
  EXPECT_NE(parse_call_body("[1]").status().message().find("body"), std::string::npos);
  EXPECT_NE(parse_call_body(R"({"arg": 1})").status().message().find("body.method"), std::string::npos);
  EXPECT_NE(parse_call_body(R"({"method": "set"})").status().message().find("body.arg"), std::string::npos);
  EXPECT_NE(parse_call_body(R"({"method": "set", "arg": {"$time": 5}})").status().message().find("arg"),
            std::string::npos);
  EXPECT_FALSE(parse_resolve_body(R"({"update": "xyz"})"));
  EXPECT_TRUE(parse_resolve_body(R"({"update": "0123456789abcdef0123456789abcdef"})"));
}

TEST(CallBodyTest, ABodyNestedFarTooDeepIsRefusedNotRecursedInto) {
  // Under the body limit, a million levels: this crashed the node before (a
  // recursive dump of the argument on the server thread's stack).
  std::string body = R"({"method": "set", "arg": )";
  body += std::string(590'000, '[') + std::string(590'000, ']') + "}";
  auto c = parse_call_body(body);
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("body"), std::string::npos) << c.status().message();
}

TEST(CallBodyTest, AnErrorOfBytesThatAreNotUtf8IsStillJson) {
  const HttpResponse r = json_error(403, std::string("Host \xff\xfe is not this node's"));
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
}

TEST(AssetsTest, TheDashboardIsBuiltIn) {
  for (const char* path : {"/index.html", "/app.js", "/app.css"}) {
    const Asset* a = find_asset(path);
    ASSERT_TRUE(a) << path;
    EXPECT_GT(a->bytes.size(), 100u);
  }
  EXPECT_NE(find_asset("/index.html")->bytes.find("/app.js"), std::string_view::npos);
  EXPECT_FALSE(find_asset("/../etc/passwd"));
}

}  // namespace
}  // namespace replog::http
