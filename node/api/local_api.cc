#include "node/api/local_api.h"

#include "node/api/trust_ops.h"
#include "protocol/bytes.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "storage/data_dir.h"
#include "storage/identity.h"

namespace replog {

namespace {

Value reply_ok(Value result) { return Value(List{Value(int64_t{1}), Value("ok"), std::move(result)}); }
Value reply_error(const std::string& message) { return Value(List{Value(int64_t{1}), Value("error"), Value(message)}); }

}  // namespace

Value node_status(const engine::Node& node, Value peers) {
  engine::NodeInfo info = node.info();
  Map forks, former, verified, evidence, revoked, held;
  for (const auto& [origin, r] : info.forks) forks[hex16(origin)] = Value(r);
  for (const auto& [origin, seq] : info.verified) verified[hex16(origin)] = Value(static_cast<int64_t>(seq));
  for (const auto& [origin, seq] : info.fork_evidence) evidence[hex16(origin)] = Value(static_cast<int64_t>(seq));
  for (const auto& [origin, r] : info.former_origins) former[hex16(origin)] = Value(r);
  for (const auto& [origin, seq] : info.revoked) revoked[hex16(origin)] = Value(static_cast<int64_t>(seq));
  for (const auto& [origin, h] : info.held)
    held[hex16(origin)] = Value(Map{{"updates", Value(static_cast<int64_t>(h.updates))},
                                    {"bytes", Value(static_cast<int64_t>(h.bytes))}});
  int64_t conflicts = 0, unknown = 0;
  std::string hash;
  // Status is polled while catching up: it does not force the state to be folded.
  bool current = node.read_if_current([&](const State& s) {
    conflicts = static_cast<int64_t>(s.conflicts().size());
    unknown = static_cast<int64_t>(s.unknown_method_updates());
    hash = s.hash_hex();
  });
  Map status{{"node_id", Value(hex16(info.node_id))},
              {"cluster_id", Value(info.cluster_id)},
              {"updates", Value(static_cast<int64_t>(info.updates))},
              {"vector", vector_to_value(info.vector)},
              {"conflicts", Value(conflicts)},
              {"forks", Value(std::move(forks))},
              {"verified", Value(std::move(verified))},
              {"fork_evidence", Value(std::move(evidence))},
              {"revoked", Value(std::move(revoked))},
              {"held_not_member", Value(std::move(held))},
              {"unknown_method_updates", Value(unknown)},
              {"former_origins", Value(std::move(former))},
              {"state_hash", Value(hash)},
              {"state_pending", Value(!current)},
              {"peers", std::move(peers)}};
  // The device id, when the key file is there and sound (a directory made by
  // an earlier build has none until a node or `replog id` makes it).
  auto identity = load_identity(DataDir(node.dir()).identity_file(), Env::posix());
  if (identity) status["device_id"] = Value(identity->device_id());
  return Value(std::move(status));
}

LocalApi::LocalApi(engine::Node& node, zmq::context_t& context, std::function<Value()> peers_status)
    : node_(node), context_(context), peers_status_(std::move(peers_status)) {}

LocalApi::~LocalApi() { stop(); }

Status LocalApi::start() {
  DataDir dir(node_.dir());
  auto endpoints = dir.api_endpoints();
  if (!endpoints) return endpoints.status();
  endpoints_ = std::move(endpoints).value();
  try {
    router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
    router_->set(zmq::sockopt::linger, 0);
    router_->set(zmq::sockopt::maxmsgsize, int64_t{32} << 20);
    router_->bind(endpoints_.api);
    pub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pub);
    pub_->set(zmq::sockopt::linger, 0);
    pub_->bind(endpoints_.events);
  } catch (const zmq::error_t& e) {
    return Status::io_error("local API on " + endpoints_.api + ": " + e.what());
  }
  REPLOG_RETURN_IF_ERROR(dir.publish_api(endpoints_));
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

void LocalApi::stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  (void)DataDir(node_.dir()).withdraw_api();
}

void LocalApi::on_committed(const std::vector<Update>& updates) {
  std::lock_guard<std::mutex> l(events_mu_);
  if (events_.size() < 100'000) events_.insert(events_.end(), updates.begin(), updates.end());
}

void LocalApi::run() {
  while (!stop_) {
    // A request, its reply or an event must never stop the API's thread.
    try {
      serve_request();
      publish_events();
    } catch (const std::exception&) {
      // That request or event is lost (its client times out); the API goes on.
    }
  }
}

void LocalApi::serve_request() {
  zmq::pollitem_t item{router_->handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(5));
  } catch (const zmq::error_t&) {
    return;  // EINTR: a signal; the loop looks at stop_
  }
  if (!(item.revents & ZMQ_POLLIN)) return;
  std::vector<zmq::message_t> parts;
  while (true) {
    zmq::message_t part;
    if (!router_->recv(part, zmq::recv_flags::dontwait)) break;
    bool more = part.more();
    parts.push_back(std::move(part));
    if (!more) break;
  }
  if (parts.size() < 2) return;
  Value reply;
  auto req = decode_msgpack(parts.back().to_string_view());
  if (!req || !req->is_list() || req->as_list().size() != 3 || !req->as_list()[1].is_string()) {
    reply = reply_error("malformed request: expected [1, op, arg]");
  } else if (!req->as_list()[0].is_int() || req->as_list()[0].as_int() != 1) {
    reply = reply_error("unsupported API version (this node speaks 1)");
  } else {
    try {
      reply = handle(req->as_list()[1].as_string(), req->as_list()[2]);
    } catch (const std::exception& e) {
      reply = reply_error(e.what());
    }
  }
  std::string bytes = encode_msgpack(reply);
  for (size_t i = 0; i + 1 < parts.size(); ++i) router_->send(parts[i], zmq::send_flags::sndmore);
  router_->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
}

void LocalApi::publish_events() {
  std::vector<Update> events;
  {
    std::lock_guard<std::mutex> l(events_mu_);
    events.swap(events_);
  }
  for (const auto& u : events) {
    auto arg = decode_msgpack(u.arg());
    Value event(List{Value(int64_t{1}), Value("update"),
                     Value(Map{{"id", Value(u.id().to_string())},
                               {"origin", Value(hex16(u.id().origin))},
                               {"seq", Value(static_cast<int64_t>(u.seq()))},
                               {"method", Value(std::string(u.method()))},
                               {"arg", arg ? *arg : Value()}})});
    std::string bytes = encode_msgpack(event);
    pub_->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }
}

Value LocalApi::handle(const std::string& op, const Value& arg) {
  auto field = [&](const char* name) { return arg.is_map() ? arg.find(name) : nullptr; };
  if (op == "call") {
    const Value* method = field("method");
    const Value* a = field("arg");
    if (!method || !method->is_string() || !a) return reply_error("call needs {method, arg}");
    auto id = node_.call(method->as_string(), *a);
    if (!id) return reply_error(id.status().message());
    return reply_ok(Value(Map{{"id", Value(id->to_string())}}));
  }
  if (op == "state") {
    const Value* path = field("path");
    const Value* info = field("info");
    Value out;
    std::string missing;
    node_.read([&](const State& s) {
      const Value* v = &s.root();
      if (path && path->is_string()) {
        v = s.get(parse_dotted_path(path->as_string()));
        if (!v) missing = path->as_string();
      }
      if (v) out = *v;
    });
    if (!missing.empty()) return reply_error("no value at " + missing);
    if (info && info->kind() == Value::Kind::kBool && info->as_bool()) return reply_ok(Value(to_info_json(out)));
    return reply_ok(std::move(out));
  }
  if (op == "hash") return reply_ok(Value(node_.state_hash()));
  if (op == "schema") {
    Value document;
    node_.read([&](const State& s) { document = s.schema().to_document(); });
    return reply_ok(std::move(document));
  }
  if (op == "conflicts") {
    List conflicts;
    node_.read([&](const State& s) {
      for (const auto& [_, c] : s.conflicts()) {
        List involved, path;
        for (const auto& i : c.involved) involved.push_back(Value(i.to_string()));
        for (const auto& segment : c.path) path.push_back(Value(segment));
        conflicts.push_back(Value(Map{{"update", Value(c.skipped.to_string())},
                                      {"kind", Value(conflict_kind_name(c.kind))},
                                      {"code", Value(static_cast<int64_t>(c.kind))},
                                      {"path", Value(std::move(path))},
                                      {"involved", Value(std::move(involved))}}));
      }
    });
    Map forks;
    for (const auto& [origin, report] : node_.info().forks) forks[hex16(origin)] = Value(report);
    return reply_ok(Value(Map{{"conflicts", Value(std::move(conflicts))}, {"forks", Value(std::move(forks))}}));
  }
  if (op == "status") {
    Value status = node_status(node_, peers_status_ ? peers_status_() : Value(List{}));
    if (extra_status_)
      for (auto& [key, value] : extra_status_()) status.as_map()[key] = std::move(value);
    return reply_ok(std::move(status));
  }
  if (op == "subscribe") return reply_ok(Value(Map{{"events", Value(endpoints_.events)}}));
  if (is_trust_op(op)) return handle_trust(op, arg);
  if (op == "invite.create") {
    if (!create_invite_) return reply_error("this node makes no invites (it runs with --insecure)");
    auto result = create_invite_(arg);
    return result ? reply_ok(std::move(result).value()) : reply_error(result.status().message());
  }
  return reply_error("unknown op \"" + op +
                     "\" (call, state, hash, conflicts, status, subscribe, trust.list, trust.add, trust.remove, invite.create)");
}

Value LocalApi::handle_trust(const std::string& op, const Value& arg) {
  if (!trust_) return reply_error("this node has no trust list");
  auto result = run_trust_op(*trust_, node_.dir(), op, arg);
  return result ? reply_ok(std::move(result).value()) : reply_error(result.status().message());
}

std::unique_ptr<ApiClient> ApiClient::connect_if_running(const std::string& dir, zmq::context_t& context) {
  auto probe = DataDir(dir).node_running();
  if (!probe || !probe->api) return nullptr;
  auto client = connect(*probe->api, context);
  return client ? std::move(client).value() : nullptr;
}

Result<std::unique_ptr<ApiClient>> ApiClient::connect(const ApiEndpoints& endpoints, zmq::context_t& context) {
  try {
    zmq::socket_t s(context, zmq::socket_type::req);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::immediate, 1);
    s.connect(endpoints.api);
    return std::unique_ptr<ApiClient>(new ApiClient(std::move(s)));
  } catch (const zmq::error_t& e) {
    return Status::io_error("local API " + endpoints.api + ": " + e.what());
  }
}

Result<Value> ApiClient::request(const std::string& op, const Value& arg, int timeout_ms) {
  std::string bytes = encode_msgpack(Value(List{Value(int64_t{1}), Value(op), arg}));
  socket_.set(zmq::sockopt::sndtimeo, timeout_ms);
  socket_.set(zmq::sockopt::rcvtimeo, timeout_ms);
  try {
    if (!socket_.send(zmq::buffer(bytes))) return Status::io_error("the running node does not answer (send timed out)");
    zmq::message_t reply;
    if (!socket_.recv(reply)) return Status::io_error("the running node does not answer (no reply)");
    auto v = decode_msgpack(reply.to_string_view());
    if (!v || !v->is_list() || v->as_list().size() != 3 || !v->as_list()[1].is_string())
      return Status::corruption("malformed reply from the node");
    if (v->as_list()[1].as_string() == "error")
      return Status::invalid_argument(v->as_list()[2].is_string() ? v->as_list()[2].as_string() : "error");
    return std::move(v->as_list()[2]);
  } catch (const zmq::error_t& e) {
    return Status::io_error(std::string("local API: ") + e.what());
  }
}

}  // namespace replog
