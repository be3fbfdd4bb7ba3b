// HttpRoutes: what each HTTP endpoint of the dashboard server answers
// (docs/HTTP.md "Endpoints"): the JSON API mirroring the local API, the
// metrics and the dashboard's files. The transport (node/http/http_server.h)
// hands it requests that passed the access checks (node/http/access.h).
//
// Every answer is JSON (or the metrics text, or a static file); a bad request
// gets a 4xx with one line {"error": "..."}. Nothing a request holds throws
// out of handle().
//
// Thread safety: handle() may be called from any thread; it reaches the node
// through its thread-safe calls (a call waits for its commit) and the hooks.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "node/engine/node.h"
#include "node/http/access.h"
#include "node/http/metrics.h"
#include "node/sync/sync_engine.h"
#include "replog/value.h"

namespace replog::http {

struct HttpRequest {
  RequestHead head;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

HttpResponse json_error(int status, const std::string& message);

// A call's body, {"method": M, "arg": TYPED_JSON}: the method and the argument.
Result<std::pair<std::string, Value>> parse_call_body(std::string_view body);
// A resolve's body, {"update": ID}.
Result<UpdateId> parse_resolve_body(std::string_view body);
// An update as the API shows it: id, origin, seq, method, time, arg (typed JSON).
std::string update_json(const Update& u);

// What only the daemon knows, asked for on the server's threads.
struct RouteHooks {
  std::function<Value()> status;  // the local API's status (a map; its peers are left out here)
  std::function<std::vector<PeerStatus>()> peers;
  std::function<void(MetricsInput&)> fill_metrics;    // refusals, archive, http counters (may be null)
};

class HttpRoutes {
 public:
  HttpRoutes(engine::Node& node, RouteHooks hooks, std::string csrf);

  HttpResponse handle(const HttpRequest& r);
  // The status and peers as the event stream sends them.
  std::string status_json();
  std::string peers_json();
  // Counted by the commit listener: updates applied since start.
  void count_applied(const std::vector<Update>& updates);

 private:
  HttpResponse get(const HttpRequest& r, std::string_view path);
  HttpResponse post(const HttpRequest& r, std::string_view path);
  HttpResponse state(const HttpRequest& r);
  HttpResponse log_page(const HttpRequest& r);
  HttpResponse one_update(const HttpRequest& r);
  HttpResponse conflicts();
  HttpResponse metrics();
  HttpResponse call(const std::string& method, const Value& arg);

  engine::Node& node_;
  RouteHooks hooks_;
  std::string csrf_;
  std::atomic<uint64_t> applied_local_{0}, applied_received_{0};
};

}  // namespace replog::http
