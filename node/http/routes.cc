#include "node/http/routes.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "node/http/assets.h"
#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "storage/data_dir.h"
#include "storage/identity.h"

namespace replog::http {

namespace {

using nlohmann::json;

constexpr size_t kDefaultLogPage = 100;
constexpr size_t kMaxLogPage = 1000;

// Text that came from a request may hold bytes that are not UTF-8: replaced, never thrown on.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_ok(const json& j) { return HttpResponse{200, "application/json", dump(j), {}}; }

// A Value as info JSON, parsed back so that it nests in a response.
json info(const Value& v) { return json::parse(to_info_json(v)); }
json typed(const Value& v) { return json::parse(to_typed_json(v)); }

int status_for(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kRefused:
      return 422;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kBusy:
      return 503;
    default:
      return 500;
  }
}

json peer_json(const PeerStatus& p) {
  json j{{"endpoint", p.endpoint},         {"node_id", hex16(p.node_id)},
         {"how", p.how},                   {"ready", p.ready},
         {"origin_bound", p.origin_bound}, {"last_seen_ms", p.last_seen_ms},
         {"they_lack", p.they_lack},       {"we_lack", p.we_lack},
         {"bytes_sent", p.bytes_sent},     {"bytes_received", p.bytes_received},
         {"updates_sent", p.updates_sent}, {"updates_received", p.updates_received}};
  if (!p.device_key.empty()) j["device_id"] = format_device_id(p.device_key);
  return j;
}

// The id just below `id` in key order: read_log(after it) starts at `id`.
std::optional<UpdateId> key_before(const UpdateId& id) {
  if (id.origin > 0) return UpdateId{id.hlc, id.origin - 1};
  if (id.hlc > 0) return UpdateId{id.hlc - 1, ~OriginId{0}};
  return std::nullopt;
}

uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

HttpResponse json_error(int status, const std::string& message) {
  return HttpResponse{status, "application/json", dump(json{{"error", message}}), {}};
}

// The body is read by the typed JSON reader as a whole, which bounds nesting
// (a body of a million '[' must not recurse a million deep).
Result<std::pair<std::string, Value>> parse_call_body(std::string_view body) {
  auto v = parse_typed_json(body);
  if (!v) return v.status().with_context("body");
  if (!v->is_map()) return Status::invalid_argument("body: expected a JSON object {method, arg}");
  const Value* m = v->find("method");
  const Value* a = v->find("arg");
  if (!m || !m->is_string() || m->as_string().empty())
    return Status::invalid_argument("body.method: expected the method's name");
  if (!a) return Status::invalid_argument("body.arg: missing (typed JSON)");
  return std::make_pair(m->as_string(), *a);
}

Result<UpdateId> parse_resolve_body(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("body: expected a JSON object {update}");
  auto u = j.find("update");
  if (u == j.end() || !u->is_string()) return Status::invalid_argument("body.update: expected the update's 32-hex id");
  auto id = UpdateId::parse(u->get<std::string>());
  if (!id) return id.status().with_context("body.update");
  return *id;
}

std::string update_json(const Update& u) {
  auto arg = decode_msgpack(u.arg());
  json j{{"id", u.id().to_string()},
         {"origin", hex16(u.id().origin)},
         {"seq", u.seq()},
         {"method", std::string(u.method())},
         {"time", format_iso8601(Time::from_millis(static_cast<int64_t>(u.id().hlc >> 16)))}};
  j["arg"] = arg ? typed(*arg) : json(nullptr);
  return dump(j);
}

HttpRoutes::HttpRoutes(engine::Node& node, RouteHooks hooks, std::string csrf)
    : node_(node), hooks_(std::move(hooks)), csrf_(std::move(csrf)) {}

void HttpRoutes::count_applied(const std::vector<Update>& updates) {
  const OriginId own = node_.node_id();
  for (const auto& u : updates) (u.id().origin == own ? applied_local_ : applied_received_)++;
}

HttpResponse HttpRoutes::handle(const HttpRequest& r) {
  const std::string_view path = target_path(r.head.target);
  try {
    if (r.head.method == "GET") return get(r, path);
    if (r.head.method == "POST") return post(r, path);
    return json_error(405, r.head.method + " is not served here (GET, POST)");
  } catch (const std::exception& e) {
    return json_error(500, std::string("internal error: ") + e.what());
  }
}

HttpResponse HttpRoutes::get(const HttpRequest& r, std::string_view path) {
  if (path == "/api/session") {
    auto identity = load_identity(DataDir(node_.dir()).identity_file(), Env::posix());
    return json_ok({{"version", 1},
                    {"csrf", csrf_},
                    {"node_id", hex16(node_.node_id())},
                    {"device_id", identity ? identity->device_id() : std::string()}});
  }
  if (path == "/api/status") return HttpResponse{200, "application/json", status_json(), {}};
  if (path == "/api/peers") return HttpResponse{200, "application/json", peers_json(), {}};
  if (path == "/api/state") return state(r);
  if (path == "/api/log") return log_page(r);
  if (path == "/api/update") return one_update(r);
  if (path == "/api/conflicts") return conflicts();
  if (path == "/api/hash") return json_ok({{"state_hash", node_.state_hash()}});
  if (path == "/metrics") return metrics();
  if (const Asset* a = find_asset(path == "/" ? "/index.html" : path))
    return HttpResponse{200, std::string(a->content_type), std::string(a->bytes), {}};
  return json_error(404, "no such endpoint: " + std::string(path));
}

HttpResponse HttpRoutes::post(const HttpRequest& r, std::string_view path) {
  if (path == "/api/call") {
    auto c = parse_call_body(r.body);
    if (!c) return json_error(400, c.status().message());
    return call(c->first, c->second);
  }
  if (path == "/api/resolve") {
    auto id = parse_resolve_body(r.body);
    if (!id) return json_error(400, id.status().message());
    return call("resolve", Value(Map{{"update", Value(id->to_string())}}));
  }
  return json_error(path.rfind("/api/", 0) == 0 ? 404 : 405, "no such endpoint for POST: " + std::string(path));
}

HttpResponse HttpRoutes::call(const std::string& method, const Value& arg) {
  auto id = node_.call(method, arg);
  if (!id) return json_error(status_for(id.status()), id.status().message());
  return json_ok({{"id", id->to_string()}});
}

HttpResponse HttpRoutes::state(const HttpRequest& r) {
  const auto path = query_value(r.head.target, "path");
  const auto form = query_value(r.head.target, "form").value_or("typed");
  if (form != "typed" && form != "info") return json_error(400, "form: expected typed or info");
  Value out;
  bool found = true;
  node_.read([&](const State& s) {
    const Value* v = path && !path->empty() ? s.get(parse_dotted_path(*path)) : &s.root();
    if (v) out = *v;
    else found = false;
  });
  if (!found) return json_error(404, "no value at " + *path);
  return json_ok({{"path", path.value_or("")}, {"form", form}, {"value", form == "info" ? info(out) : typed(out)}});
}

HttpResponse HttpRoutes::log_page(const HttpRequest& r) {
  std::optional<UpdateId> after;
  if (auto a = query_value(r.head.target, "after"); a && !a->empty()) {
    auto id = UpdateId::parse(*a);
    if (!id) return json_error(400, "after: " + id.status().message());
    after = *id;
  }
  size_t limit = kDefaultLogPage;
  if (auto l = query_value(r.head.target, "limit")) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(l->c_str(), &end, 10);
    if (l->empty() || *end || n == 0 || n > kMaxLogPage) return json_error(400, "limit: expected 1..1000");
    limit = static_cast<size_t>(n);
  }
  auto updates = node_.read_log(after, limit);
  if (!updates) return json_error(500, updates.status().message());
  json list = json::array();
  for (const auto& u : *updates) list.push_back(json::parse(update_json(u)));
  json next = updates->size() == limit ? json(updates->back().id().to_string()) : json(nullptr);
  return json_ok({{"updates", std::move(list)}, {"next", std::move(next)}});
}

HttpResponse HttpRoutes::one_update(const HttpRequest& r) {
  auto text = query_value(r.head.target, "id");
  if (!text) return json_error(400, "id: expected the update's 32-hex id");
  auto id = UpdateId::parse(*text);
  if (!id) return json_error(400, "id: " + id.status().message());
  auto updates = node_.read_log(key_before(*id), 1);
  if (!updates) return json_error(500, updates.status().message());
  if (updates->empty() || updates->front().id() != *id) return json_error(404, "no update " + id->to_string());
  return HttpResponse{200, "application/json", update_json(updates->front()), {}};
}

HttpResponse HttpRoutes::conflicts() {
  json list = json::array();
  node_.read([&](const State& s) {
    for (const auto& [_, c] : s.conflicts()) {
      json involved = json::array();
      for (const auto& i : c.involved) involved.push_back(i.to_string());
      list.push_back({{"update", c.skipped.to_string()},
                      {"kind", conflict_kind_name(c.kind)},
                      {"code", static_cast<int>(c.kind)},
                      {"path", c.path},
                      {"involved", std::move(involved)}});
    }
  });
  json forks = json::object();
  for (const auto& [origin, report] : node_.info().forks) forks[hex16(origin)] = report;
  return json_ok({{"conflicts", std::move(list)}, {"forks", std::move(forks)}});
}

std::string HttpRoutes::status_json() {
  Value status = hooks_.status ? hooks_.status() : Value(Map{});
  if (status.is_map()) status.as_map().erase("peers");  // GET /api/peers has them, with their traffic
  return dump(info(status));
}

std::string HttpRoutes::peers_json() {
  json list = json::array();
  if (hooks_.peers)
    for (const auto& p : hooks_.peers()) list.push_back(peer_json(p));
  return dump(list);
}

HttpResponse HttpRoutes::metrics() {
  MetricsInput in;
  const engine::NodeInfo ni = node_.info();
  for (const auto& [origin, seq] : ni.vector) in.held[hex16(origin)] = seq;
  in.log_updates = ni.updates;
  in.forks = ni.forks.size();
  in.applied_local = applied_local_.load();
  in.applied_received = applied_received_.load();
  // A scrape never waits for a fold: while one is pending, the conflict count is left out.
  node_.read_if_current([&](const State& s) { in.conflicts = s.conflicts().size(); });
  SystemClock clock;
  const int64_t now = clock.now_millis();
  if (hooks_.peers)
    for (const auto& p : hooks_.peers())
      in.peers.push_back({p.node_id ? hex16(p.node_id) : p.endpoint, p.how, p.ready, p.they_lack, p.we_lack,
                          p.last_seen_ms > 0 ? static_cast<double>(now - p.last_seen_ms) / 1000.0 : -1.0,
                          p.bytes_sent, p.bytes_received, p.updates_sent, p.updates_received});
  if (auto cut = node_.newest_checkpoint_cut())
    in.checkpoint_age_s = static_cast<double>(now - static_cast<int64_t>(cut->hlc >> 16)) / 1000.0;
  in.map_bytes = node_.map_bytes();
  in.data_file_bytes = file_bytes(DataDir(node_.dir()).data_file());
  if (hooks_.fill_metrics) hooks_.fill_metrics(in);
  return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(node_metrics(in)), {}};
}

}  // namespace replog::http
