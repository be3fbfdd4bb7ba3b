// replog: one program, one subcommand per job (README.md "The replog program").
//
// Options come from the command line, then REPLOG_* environment variables,
// then a --config file (Boost.Program_options). Errors are one line on stderr
// and a non-zero exit. Commands that write send their work to a running (or
// starting) node's local API, or else take the data directory's lock
// (storage/data_dir.h); read-only ones read LMDB concurrently and never take it.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include "node/api/daemon.h"
#include "node/api/join.h"
#include "node/core/hlc.h"
#include "node/api/local_api.h"
#include "node/api/trust_ops.h"
#include "node/api/verify.h"
#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "protocol/invite.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "protocol/origin_proof.h"
#include "replog/schema.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/trust.h"
#include "storage/update_log.h"
#include "tools/archive_cmds.h"
#include "tools/cli_common.h"

using namespace replog;
using namespace replog::cli;
using namespace replog::engine;
using nlohmann::json;

namespace {

json to_json_value(const Value& v) { return json::parse(to_typed_json(v)); }

// The running node's local API, when a daemon holds the data directory.
zmq::context_t& api_context() {
  static zmq::context_t context(1);
  return context;
}
std::unique_ptr<ApiClient> running_node(const Options& o) {
  return ApiClient::connect_if_running(o.node_options().dir, api_context());
}

// Where a writing command's work goes (storage/data_dir.h has the rules): to
// the local API of a node that runs or is starting, once it serves (a command
// gives way rather than hold a starting node up); else into the data
// directory itself, under its lock.
struct Route {
  std::unique_ptr<ApiClient> api;  // set: send the work here
  std::unique_ptr<FileLock> lock;  // set: work on the directory directly
};
struct Writer {
  std::unique_ptr<ApiClient> api;  // set: send the work here
  std::unique_ptr<Node> node;      // set: write directly
};

// A starting node waits for the lock (30 s unless told otherwise), then opens
// its log; a command that gave way waits for both.
constexpr int64_t kStartingNodeWaitMs = 60'000;

Route route_writer(const NodeOptions& no, const std::string& command) {
  DataDir dir(no.dir);
  for (int attempt = 0;; ++attempt) {
    if (!unwrap(dir.node_running()).running) {
      CommandLock lock = unwrap(dir.lock_for_command(command, no.lock_wait_ms));
      if (lock.outcome == CommandLock::Outcome::kLocked) return {nullptr, std::move(lock.lock)};
    }
    auto endpoints = dir.wait_for_node_api(kStartingNodeWaitMs);
    if (endpoints) return {unwrap(ApiClient::connect(*endpoints, api_context())), nullptr};
    // kNotFound: the node gave up or stopped, so the directory may be free: look again, once.
    if (endpoints.status().code() != Status::Code::kNotFound || attempt > 0) check(endpoints.status());
  }
}

Writer open_writer(const Options& o, const std::string& command) {
  NodeOptions no = o.node_options();
  Route route = route_writer(no, command);
  if (route.api) return {std::move(route.api), nullptr};
  return {nullptr, unwrap(Node::open(no, std::move(route.lock)))};
}

// For a command the local API does not carry (import): the directory itself,
// under its lock, or a one-line error naming the node that runs or starts.
std::string conflict_text(const Conflict& c) {
  std::string s = "update " + c.skipped.to_string() + " skipped (" + conflict_kind_name(c.kind) + ")";
  if (!c.path.empty()) s += " at " + path_to_string(c.path);
  for (const auto& i : c.involved) s += ", involves " + i.to_string();
  return s;
}

json conflict_json(const Conflict& c) {
  json involved = json::array();
  for (const auto& i : c.involved) involved.push_back(i.to_string());
  return {{"update", c.skipped.to_string()},
          {"kind", conflict_kind_name(c.kind)},
          {"code", static_cast<int>(c.kind)},
          {"path", c.path},
          {"involved", involved},
          {"text", conflict_text(c)}};
}

// --- init ------------------------------------------------------------------------

int cmd_init(const std::vector<std::string>& args) {
  Options o("init", "--data DIR [--schema FILE] [--cluster ID]");
  o.add()("schema", po::value<std::string>(), "record this schema document (JSON) as the log's first update")(
      "cluster", po::value<std::string>(), "join this cluster id (default: make a new one)");
  if (!o.parse(args)) return 0;
  InitOptions init;
  init.dir = o.node_options().dir;
  if (o.has("cluster")) init.cluster = o.get<std::string>("cluster");
  if (o.has("schema")) {
    const std::string& file = o.get<std::string>("schema");
    Value doc = unwrap(parse_typed_json(read_file(file)));
    check(TypeRegistry::from_document(doc).status().with_context(file));
    init.schema = std::move(doc);
  }
  check(Node::init(init));
  auto node = open_reader(o);
  NodeInfo info = node->info();
  std::string device = unwrap(load_identity(DataDir(init.dir).identity_file(), Env::posix())).device_id();
  if (o.json()) {
    std::cout << json{{"node_id", hex16(info.node_id)}, {"cluster_id", info.cluster_id}, {"dir", init.dir},
                      {"device_id", device}}.dump() << "\n";
  } else {
    std::cout << "initialised " << init.dir << ": node " << hex16(info.node_id) << ", device " << device
              << ", cluster " << info.cluster_id
              << (init.schema ? ", schema recorded" : "") << "\n";
  }
  return 0;
}

// --- id ---------------------------------------------------------------------------

// The data directory's identity. A directory made by an earlier build has no
// key file: it is made once, under the lock; when a node is starting, the
// node makes it (before its local API is up), so wait for the API and read.
Identity identity_of(const Options& o) {
  NodeOptions no = o.node_options();
  DataDir dir(no.dir);
  auto loaded = load_identity(dir.identity_file(), Env::posix());
  if (loaded || loaded.status().code() != Status::Code::kNotFound) return unwrap(std::move(loaded));
  if (!dir.holds_log()) throw CommandError(no.dir + " is not a replog data directory (make one with replog init)");
  CommandLock lock = unwrap(dir.lock_for_command("id", no.lock_wait_ms));
  if (lock.outcome == CommandLock::Outcome::kNodeStarting) {
    unwrap(dir.wait_for_node_api(kStartingNodeWaitMs));
    return unwrap(load_identity(dir.identity_file(), Env::posix()));
  }
  return unwrap(load_or_create_identity(dir.identity_file(), Env::posix()));
}

int cmd_id(const std::vector<std::string>& args) {
  Options o("id", "--data DIR [--json]   (this device's id: its public key, to read aloud or copy)");
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  Identity id = identity_of(o);
  if (o.json())
    std::cout << json{{"device_id", id.device_id()}, {"public_key_hex", to_hex(id.public_key())}}.dump() << "\n";
  else
    std::cout << id.device_id() << "\n";
  return 0;
}

// --- trust ---------------------------------------------------------------------------

// A trust op (node/api/trust_ops.h) where it belongs: a running (or starting)
// node's trust list through its API, else the trust file itself; changes
// under LOCK, listing without it (the file is replaced at once).
Value run_trust(const Options& o, const std::string& op, const Value& arg) {
  NodeOptions no = o.node_options();
  DataDir dir(no.dir);
  if (!dir.holds_log()) throw CommandError(no.dir + " is not a replog data directory (make one with replog init)");
  std::unique_ptr<FileLock> lock;
  if (op == "trust.list") {
    if (auto api = running_node(o)) return unwrap(api->request(op, arg));
  } else {
    Route route = route_writer(no, "trust");
    if (route.api) return unwrap(route.api->request(op, arg));
    lock = std::move(route.lock);
  }
  auto trust = unwrap(TrustStore::open(dir.trust_file(), Env::posix()));
  return unwrap(run_trust_op(*trust, no.dir, op, arg));
}

std::string text_of(const Value& map, const char* key) {
  const Value* v = map.find(key);
  return v && v->is_string() ? v->as_string() : "";
}

// The device id a person typed, as replog id prints it; one line when it does not parse.
std::string device_id_arg(const Options& o) {
  return format_device_id(unwrap(parse_device_id(o.get<std::string>("id"))));
}

int cmd_trust_add(const std::vector<std::string>& args) {
  Options o("trust add", "ID [--name NAME] --data DIR [--json]   (trust the device with this id)");
  o.add()("id", po::value<std::string>()->required(), "the device's id, as replog id prints it on that device")(
      "name", po::value<std::string>(), "a name for people (at most 64 bytes); renames a trusted device");
  o.positional("id", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  Map arg{{"id", Value(device_id_arg(o))}};
  if (o.has("name")) arg["name"] = Value(o.get<std::string>("name"));
  Value device = run_trust(o, "trust.add", Value(std::move(arg)));
  std::string name = text_of(device, "name");
  if (o.json()) std::cout << json::parse(to_info_json(device)).dump() << "\n";
  else std::cout << "trusted " << text_of(device, "id") << (name.empty() ? "" : " (" + name + ")") << "\n";
  return 0;
}

int cmd_trust_list(const std::vector<std::string>& args) {
  Options o("trust list", "--data DIR [--all] [--json]   (the trusted devices: id, when added, how, name)");
  o.add()("all", "also the removed devices (kept so that their removal spreads)");
  if (!o.parse(args)) return 0;
  const bool all = o.has("all");
  Value listed = run_trust(o, "trust.list", all ? Value(Map{{"removed", Value(true)}}) : Value());
  if (o.json()) {
    std::cout << json::parse(to_info_json(listed)).dump(2) << "\n";
    return 0;
  }
  const Value* devices = all ? listed.find("devices") : &listed;
  auto when = [](const Value& d, const char* key) {
    const Value* v = d.find(key);
    int64_t ms = v && v->is_int() ? v->as_int() : 0;
    return format_iso8601(Time::from_millis(ms - ms % 1000));
  };
  if (!devices || devices->as_list().empty()) std::cout << "no trusted devices\n";
  else
    for (const auto& d : devices->as_list())
      std::cout << text_of(d, "id") << "  " << when(d, "added_ms") << "  " << text_of(d, "how") << "  "
                << text_of(d, "name") << "\n";
  if (const Value* removed = all ? listed.find("removed") : nullptr; removed && removed->is_list())
    for (const auto& d : removed->as_list())
      std::cout << text_of(d, "id") << "  " << when(d, "removed_ms") << "  removed  " << text_of(d, "name") << "\n";
  return 0;
}

int cmd_trust_remove(const std::vector<std::string>& args) {
  Options o("trust remove", "ID --data DIR [--json]   (stop trusting the device with this id)");
  o.add()("id", po::value<std::string>()->required(), "the device's id");
  o.positional("id", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  std::string id = device_id_arg(o);
  Value result = run_trust(o, "trust.remove", Value(Map{{"id", Value(id)}}));
  bool removed = result.find("removed") && result.find("removed")->as_bool();
  if (o.json()) std::cout << json{{"removed", removed}}.dump() << "\n";
  else std::cout << (removed ? "removed " + id : id + " was not trusted; nothing removed") << "\n";
  return 0;
}

int cmd_trust(const std::vector<std::string>& args) {
  const char* usage = "usage: replog trust add|list|remove ...   (replog trust SUBCOMMAND --help for its options)\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage;
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "add") return cmd_trust_add(rest);
  if (args[0] == "list") return cmd_trust_list(rest);
  if (args[0] == "remove") return cmd_trust_remove(rest);
  throw CommandError("unknown subcommand \"" + args[0] + "\" (add, list or remove)");
}

// --- invite / join ---------------------------------------------------------------------

// "10m", "30s", "1h", "500ms"; a bare number is seconds.
int64_t parse_duration_ms(const std::string& option, const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  const int64_t scale = unit == "ms" ? 1 : unit == "s" || unit.empty() ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
  if (digits == 0 || digits > 9 || scale == 0)
    throw CommandError("--" + option + " " + text + ": want a duration such as 30s, 10m or 1h");
  return std::stoll(text.substr(0, digits)) * scale;
}

int cmd_invite(const std::vector<std::string>& args) {
  Options o("invite", "--data DIR [--expires 10m] [--endpoint tcp://HOST:PORT ...] [--json]   (one line for replog join)");
  o.add()("expires", po::value<std::string>()->default_value("10m"), "how long the invite is good (at most 24h); it works once")(
      "endpoint", po::value<std::vector<std::string>>()->composing(),
      "where the new device reaches this node (repeatable, at most 8; default: where it listens)");
  if (!o.parse(args)) return 0;
  const int64_t expires_ms = parse_duration_ms("expires", o.get<std::string>("expires"));
  Map arg{{"expires_ms", Value(expires_ms)}};
  if (o.has("endpoint")) {
    List endpoints;
    for (const auto& e : o.get<std::vector<std::string>>("endpoint")) endpoints.push_back(Value(e));
    arg["endpoints"] = Value(std::move(endpoints));
  }
  auto api = running_node(o);
  if (!api)
    throw CommandError("no node runs on " + o.node_options().dir + ": invites live in a running node's memory; start it "
                       "(replog node --data " + o.node_options().dir + " --listen tcp://0.0.0.0:7701), then invite");
  Value r = unwrap(api->request("invite.create", Value(std::move(arg))));
  if (o.json()) {
    std::cout << json::parse(to_info_json(r)).dump() << "\n";
    return 0;
  }
  const Value* until = r.find("expires_ms");
  std::cout << text_of(r, "line") << "\n";
  std::cerr << "good once, until " << format_iso8601(Time::from_millis(until && until->is_int() ? until->as_int() : 0))
            << ", while this node runs. On the new device:\n  replog join LINE --data DIR\n";
  return 0;
}

int cmd_join(const std::vector<std::string>& args) {
  Options o("join", "LINE --data DIR [--name NAME] [--timeout 30s] [--json]   (join the cluster of a replog invite line)");
  o.add()("line", po::value<std::string>()->required(), "the line replog invite printed on a device of the cluster")(
      "name", po::value<std::string>(), "what the inviting device calls this one (at most 64 bytes)")(
      "timeout", po::value<std::string>()->default_value("30s"), "how long to wait for the inviter");
  o.positional("line", 1);
  if (!o.parse(args)) return 0;
  JoinOptions join;
  join.dir = o.node_options().dir;
  join.line = unwrap(invite::parse_line(o.get<std::string>("line")));
  if (o.has("name")) join.name = o.get<std::string>("name");
  join.timeout_ms = parse_duration_ms("timeout", o.get<std::string>("timeout"));
  JoinOutcome out = unwrap(join_cluster(join));
  if (o.json()) {
    std::cout << json{{"cluster_id", out.cluster}, {"device_id", out.device_id}, {"inviter", out.inviter_device_id},
                      {"endpoints", out.endpoints}, {"made_dir", out.made_dir}, {"dir", join.dir}}.dump() << "\n";
    return 0;
  }
  std::cout << "joined cluster " << out.cluster << (out.made_dir ? " in a new data directory " : " in ") << join.dir
            << " as device " << out.device_id << "\ntrusted the inviter " << out.inviter_device_id
            << "; it is dialled at " << out.endpoints.front() << (out.endpoints.size() > 1 ? " and more" : "")
            << " (peers.json)\nnext: replog node --data " << join.dir << " --listen tcp://0.0.0.0:7701\n";
  return 0;
}

// --- call / resolve ------------------------------------------------------------------

// The update is stored once call() returns: a failure to write the shutdown
// checkpoint afterwards is worth a warning, not a failed command.
int print_call(const Options& o, const UpdateId& id, const Status& closed = Status::ok()) {
  if (o.json()) std::cout << json{{"id", id.to_string()}}.dump() << "\n";
  else std::cout << id.to_string() << "\n";
  if (!closed) std::cerr << "replog: warning: update stored, but no checkpoint written: " << closed.message() << "\n";
  return 0;
}

// Makes one call as `command` (call, resolve), through a node or directly.
int call_and_print(const Options& o, const std::string& command, const std::string& method, const Value& arg) {
  Writer w = open_writer(o, command);
  if (w.api) {
    Value r = unwrap(w.api->request("call", Value(Map{{"method", Value(method)}, {"arg", arg}})));
    return print_call(o, unwrap(UpdateId::parse(r.find("id") ? r.find("id")->as_string() : "")));
  }
  UpdateId id = unwrap(w.node->call(method, arg));
  return print_call(o, id, w.node->close());
}

int cmd_call(const std::vector<std::string>& args) {
  Options o("call", "--data DIR METHOD ARG_JSON   (ARG_JSON is typed JSON; '-' reads it from stdin)");
  o.add()("method", po::value<std::string>()->required(), "the method")(
      "arg", po::value<std::string>()->required(), "its argument, as typed JSON");
  o.positional("method", 1);
  o.positional("arg", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  std::string text = o.get<std::string>("arg");
  if (text == "-") text = read_stdin();
  Value arg = unwrap(parse_typed_json(text));
  return call_and_print(o, "call", o.get<std::string>("method"), arg);
}

int cmd_resolve(const std::vector<std::string>& args) {
  Options o("resolve", "--data DIR UPDATE_ID   (closes the conflict of that update)");
  o.add()("update", po::value<std::string>()->required(), "the skipped update's id (32 hex digits)");
  o.positional("update", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  UpdateId target = unwrap(UpdateId::parse(o.get<std::string>("update")));
  return call_and_print(o, "resolve", "resolve", Value(Map{{"update", Value(target.to_string())}}));
}

// --- state -------------------------------------------------------------------------

int cmd_state(const std::vector<std::string>& args) {
  Options o("state", "--data DIR [--path P] [--info] [--hash] [--at TIME]");
  o.add()("path", po::value<std::string>(), "print only the value at this dotted path")(
      "info", "print info JSON (for display: enum names, ISO times)")("hash", "print the state hash alone")(
      "at", po::value<std::string>(), "the state as of this ISO-8601 time (updates with later timestamps left out)");
  if (!o.parse(args)) return 0;
  std::optional<int64_t> at;
  if (o.has("at")) at = unwrap(parse_iso8601(o.get<std::string>("at"))).to_millis();
  if (!at) {
    if (auto api = running_node(o)) {
      if (o.has("hash")) {
        std::string hash = unwrap(api->request("hash", Value())).as_string();
        std::cout << (o.json() ? json{{"hash", hash}}.dump() : hash) << "\n";
        return 0;
      }
      Map arg;
      if (o.has("path")) arg["path"] = Value(o.get<std::string>("path"));
      if (o.has("info")) arg["info"] = Value(true);
      Value v = unwrap(api->request("state", Value(std::move(arg))));
      std::cout << (o.has("info") ? json::parse(v.as_string()).dump(2) : to_typed_json(v, 2)) << "\n";
      return 0;
    }
  }
  auto node = open_reader(o, at);
  node->read([&](const State& state) {
    if (o.has("hash")) {
      std::cout << (o.json() ? json{{"hash", state.hash_hex()}}.dump() : state.hash_hex()) << "\n";
      return;
    }
    const Value* v = &state.root();
    if (o.has("path")) {
      v = state.get(parse_dotted_path(o.get<std::string>("path")));
      if (!v) throw CommandError("no value at " + o.get<std::string>("path"));
    }
    Value resolved = *v;
    (void)state.schema().resolve(resolved);  // bind enums to the registry for display; errors are shown as stored
    std::cout << (o.has("info") ? to_info_json(resolved, 2) : to_typed_json(resolved, 2)) << "\n";
  });
  return 0;
}

// --- log ---------------------------------------------------------------------------------

uint64_t parse_since(const std::string& text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) return std::stoull(text);
  return hlc::make(unwrap(parse_iso8601(text)).to_millis(), 0);
}

// One line of `replog log`: the update, or why its body does not parse.
void print_log_line(const Options& o, const UpdateId& id, std::string_view body,
                    std::map<OriginId, uint64_t>& verified_to) {
  auto u = parse_update(id, body);
  auto arg = u ? decode_msgpack(u->arg) : Result<Value>(u.status());
  if (o.json()) {
    json line{{"id", id.to_string()}, {"hlc", id.hlc}, {"time", hlc::to_string(id.hlc)}, {"origin", hex16(id.origin)}};
    if (u) {
      line["seq"] = u->seq;
      line["verified"] = u->seq <= verified_to[id.origin];
      line["method"] = std::string(u->method);
      line["arg"] = arg ? to_json_value(*arg) : json(nullptr);
    } else {
      line["error"] = u.status().message();
    }
    std::cout << line.dump() << "\n";
  } else if (u) {
    std::cout << id.to_string() << "  " << hlc::to_string(id.hlc) << "  " << hex16(id.origin) << " #" << u->seq
              << (u->seq <= verified_to[id.origin] ? "  signed" : "  UNVERIFIED") << "  " << u->method << " " << (arg ? to_typed_json(*arg) : "<" + arg.status().message() + ">") << "\n";
  } else {
    std::cout << id.to_string() << "  <" << u.status().message() << ">\n";
  }
}

// `replog log --follow`: after the log, what is stored later, as it arrives
// (polled; readers never block the writer). Each origin is read on from the
// seq it was printed to, so an update that sorts before printed ones (from a
// device that was offline) is printed too, when it arrives.
void follow_log(const Options& o, UpdateLog& log, VersionVector seen, std::optional<OriginId> origin) {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto txn = unwrap(log.begin_read());
    std::map<OriginId, uint64_t> verified_to;
    for (const auto& [o_id, rec] : txn.origin_records()) verified_to[o_id] = rec.seq;
    for (const auto& [id, body] : unwrap(txn.bodies_since(seen, SIZE_MAX)))
      if (!origin || id.origin == *origin) print_log_line(o, id, body, verified_to);
    std::cout.flush();
  }
}

int cmd_log(const std::vector<std::string>& args) {
  Options o("log", "--data DIR [--origin ID] [--since HLC|TIME] [--limit N] [--follow]\n"
                   "  each line: id, time, origin #seq, then 'signed' when a verified head covers it\n"
                   "  (its origin's key signed it) or 'UNVERIFIED', then the method and argument");
  o.add()("origin", po::value<std::string>(), "only this origin (16 hex digits)")(
      "since", po::value<std::string>(), "start at this HLC (integer) or ISO-8601 time")(
      "limit", po::value<uint64_t>()->default_value(UINT64_MAX, "all"), "print at most N updates")(
      "follow", "then print updates as they are stored, until interrupted (not with --limit)");
  if (!o.parse(args)) return 0;
  if (o.has("follow") && o.get<uint64_t>("limit") != UINT64_MAX) throw CommandError("--follow and --limit do not go together");
  auto log = unwrap(UpdateLog::open(o.node_options().dir, {}));
  std::optional<OriginId> origin;
  if (o.has("origin")) origin = unwrap(parse_hex16(o.get<std::string>("origin")));
  UpdateId start{o.has("since") ? parse_since(o.get<std::string>("since")) : 0, 0};
  uint64_t limit = o.get<uint64_t>("limit"), printed = 0;
  VersionVector seen;
  {
    auto txn = unwrap(log->begin_read());
    std::map<OriginId, uint64_t> verified_to;  // per origin, the seq its verified chain reaches
    for (const auto& [o_id, rec] : txn.origin_records()) verified_to[o_id] = rec.seq;
    seen = txn.vector();
    check(txn.for_each_from(start, [&](const UpdateId& id, std::string_view body) {
      if (printed >= limit) return false;
      if (origin && id.origin != *origin) return true;
      ++printed;
      print_log_line(o, id, body, verified_to);
      return true;
    }));
  }
  std::cout.flush();
  if (o.has("follow")) follow_log(o, *log, std::move(seen), origin);
  return 0;
}

// --- conflicts / status --------------------------------------------------------------------

int cmd_conflicts(const std::vector<std::string>& args) {
  Options o("conflicts", "--data DIR   (open conflicts, and forks this node has seen)");
  if (!o.parse(args)) return 0;
  auto node = open_reader(o);
  NodeInfo info = node->info();
  node->read([&](const State& state) {
    if (o.json()) {
      json conflicts = json::array(), forks = json::object();
      for (const auto& [_, c] : state.conflicts()) conflicts.push_back(conflict_json(c));
      for (const auto& [origin, report] : info.forks) forks[hex16(origin)] = report;
      json fork_evidence = json::object(), revoked = json::object();
      for (const auto& [origin, seq] : info.fork_evidence) fork_evidence[hex16(origin)] = seq;
      for (const auto& [origin, seq] : info.revoked) revoked[hex16(origin)] = seq;
      std::cout << json{{"conflicts", conflicts}, {"forks", forks}, {"fork_evidence", fork_evidence},
                        {"revoked", revoked}}.dump(2)
                << "\n";
      return;
    }
    if (state.conflicts().empty() && info.forks.empty() && info.fork_evidence.empty() && info.revoked.empty())
      std::cout << "no open conflicts\n";
    for (const auto& [_, c] : state.conflicts()) std::cout << conflict_text(c) << "\n";
    for (const auto& [origin, report] : info.forks) std::cout << "fork (origin quarantined): " << report << "\n";
    // Whole origins left out of replay: not in the state, since which of their
    // updates a node holds differs from node to node.
    for (const auto& [origin, seq] : info.fork_evidence)
      std::cout << "fork: origin " << hex16(origin) << " from #" << seq
                << " is left out (two branches signed by its key; its owner writes on under a fresh origin)\n";
    for (const auto& [origin, seq] : info.revoked)
      std::cout << "revoked: origin " << hex16(origin) << " after #" << seq << " is left out\n";
  });
  return 0;
}

Value status_of(const Options& o) {
  if (auto api = running_node(o)) return unwrap(api->request("status", Value()));
  return node_status(*open_reader(o), Value(List{}));
}

int cmd_status(const std::vector<std::string>& args) {
  Options o("status", "--data DIR");
  if (!o.parse(args)) return 0;
  Value st = status_of(o);
  if (o.json()) {
    std::cout << json::parse(to_info_json(st)).dump(2) << "\n";
    return 0;
  }
  auto str = [&](const char* k) { return st.find(k) && st.find(k)->is_string() ? st.find(k)->as_string() : ""; };
  auto num = [&](const char* k) { return st.find(k) && st.find(k)->is_int() ? st.find(k)->as_int() : 0; };
  std::cout << "node       " << str("node_id") << "\n";
  if (!str("device_id").empty()) std::cout << "device     " << str("device_id") << "\n";
  std::cout << "cluster    " << str("cluster_id") << "\nupdates    "
            << num("updates") << "\nconflicts  " << num("conflicts") << "\nstate hash "
            << (st.find("state_pending") && st.find("state_pending")->as_bool() ? "(folding in received updates)"
                                                                                 : str("state_hash"))
            << "\nvector\n";
  // Per origin: the seq held, and how far a verified signed head covers it.
  const Value* verified = st.find("verified");
  for (const auto& [origin, seq] : st.find("vector")->as_map()) {
    const Value* v = verified && verified->is_map() ? verified->find(origin) : nullptr;
    const int64_t signed_to = v && v->is_int() ? v->as_int() : 0;
    std::cout << "  " << origin << "  " << seq.as_int()
              << (signed_to >= seq.as_int() ? "  signed"
                                              : "  " + std::to_string(seq.as_int() - signed_to) + " UNVERIFIED")
              << (origin == str("node_id") ? "  (this node)" : "") << "\n";
  }
  for (const auto& [origin, r] : st.find("forks")->as_map()) std::cout << "fork: " << r.as_string() << "\n";
  if (const Value* ev = st.find("fork_evidence"); ev && ev->is_map())
    for (const auto& [origin, seq] : ev->as_map())
      std::cout << "fork evidence: origin " << origin << " forked at #" << seq.as_int()
                << " (two branches signed by its key)\n";
  if (const Value* rv = st.find("revoked"); rv && rv->is_map())
    for (const auto& [origin, seq] : rv->as_map())
      std::cout << "revoked: origin " << origin << " after #" << seq.as_int() << " (its later updates are left out)\n";
  if (const Value* held = st.find("held_not_member"); held && held->is_map())
    for (const auto& [origin, h] : held->as_map())
      std::cout << "held back: origin " << origin << ", " << h.find("updates")->as_int()
                << " updates: its key is not a member's (trust its device to take them)\n";
  if (num("unknown_method_updates"))
    std::cout << "state incomplete: " << num("unknown_method_updates") << " updates need a newer replog\n";
  if (const Value* former = st.find("former_origins"); former && former->is_map())
    for (const auto& [origin, why] : former->as_map())
      std::cout << "left origin " << origin << ": " << (why.is_string() ? why.as_string() : "") << "\n";
  for (const auto& p : st.find("peers")->as_list()) {
    int64_t lack = p.find("we_lack")->as_int(), they = p.find("they_lack")->as_int();
    const Value* device = p.find("device_id");
    const Value* how = p.find("how");
    std::cout << "peer " << p.find("endpoint")->as_string() << (device ? " (device " + device->as_string() + ")" : "")
              << (how && how->is_string() ? " " + how->as_string() : "")
              << "  " << (!p.find("ready")->as_bool() ? "not connected"
                  : lack == 0 && they == 0 ? "in sync"
                  : "we lack " + std::to_string(lack) + ", they lack " + std::to_string(they))
              << "\n";
  }
  return 0;
}

int cmd_peers(const std::vector<std::string>& args) {
  Options o("peers", "--data DIR   (the running node's peers: in sync or behind by N, last seen)");
  if (!o.parse(args)) return 0;
  // From the running node, or what the last one stored in LMDB.
  List peers;
  bool live = false;
  if (auto api = running_node(o)) {
    peers = unwrap(api->request("status", Value())).find("peers")->as_list();
    live = true;
  } else {
    auto log = unwrap(UpdateLog::open(o.node_options().dir, {}));
    auto txn = unwrap(log->begin_read());
    for (const auto& [endpoint, bytes] : txn.peers()) {
      auto v = decode_msgpack(bytes);
      if (v && v->find("ready") && v->find("we_lack") && v->find("they_lack") && v->find("last_seen_ms")) peers.push_back(*v);
    }
  }
  if (o.json()) {
    std::cout << json::parse(to_info_json(Value(peers))).dump(2) << "\n";
    return 0;
  }
  SystemClock clock;
  if (!live) std::cout << "no node running; as last stored:\n";
  std::cout << "endpoint                      node              how         state                        last seen\n";
  for (const auto& p : peers) {
    int64_t lack = p.find("we_lack")->as_int(), they = p.find("they_lack")->as_int();
    int64_t seen = p.find("last_seen_ms")->as_int();
    std::string state = !p.find("ready")->as_bool() ? "not connected"
                        : lack == 0 && they == 0    ? "in sync"
                                                    : "we lack " + std::to_string(lack) + ", they " + std::to_string(they);
    std::string ep = p.find("endpoint")->as_string();
    const Value* how_value = p.find("how");
    std::string how = how_value && how_value->is_string() ? how_value->as_string() : "-";
    std::cout << ep << std::string(ep.size() < 30 ? 30 - ep.size() : 1, ' ') << p.find("node_id")->as_string() << "  "
              << how << std::string(how.size() < 12 ? 12 - how.size() : 1, ' ') << state << std::string(state.size() < 29 ? 29 - state.size() : 1, ' ')
              << (seen ? std::to_string((clock.now_millis() - seen) / 1000) + " s ago" : "never") << "\n";
    const Value* bound = p.find("origin_bound");
    if (const Value* device = p.find("device_id"))
      std::cout << "  device " << device->as_string()
                << (bound && bound->kind() == Value::Kind::kBool && bound->as_bool() ? ", origin bound (its Hello's signature)" : "") << "\n";
  }
  return 0;
}

// --- node (the daemon) ---------------------------------------------------------------------

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

// Where `replog node` serves its dashboard unless told otherwise.
constexpr const char* kDefaultHttp = "127.0.0.1:8380";

int cmd_node(const std::vector<std::string>& args) {
  Options o("node", "--data DIR --listen tcp://IP:PORT [--peer DEVICE_ID@tcp://HOST:PORT ...] [--discovery on|off] [--insecure]");
  o.add()("listen", po::value<std::string>(), "where peers connect (tcp://IP:PORT)")(
      "advertise", po::value<std::string>(), "the endpoint peers should connect back to (default: the bound one)")(
      "peer", po::value<std::vector<std::string>>()->composing(), "a peer: DEVICE_ID@tcp://HOST:PORT, dialled once its id is trusted (replog trust add); with --insecure, tcp://HOST:PORT (repeatable)")(
      "insecure", "plain TCP: no encryption, no authentication, anyone who reaches the port can write (tests and tools only)")(
      "log-level", po::value<std::string>()->default_value("info"), "error, warn, info or debug")(
      "anti-entropy-ms", po::value<int64_t>()->default_value(1000), "interval of anti-entropy rounds (jittered)")(
      "discovery", po::value<std::string>(), "on or off: find trusted devices on the LAN by UDP beacons (default: on, off with --insecure)")(
      "discovery-port", po::value<int>()->default_value(21029), "the UDP port beacons are sent to and read on (the same on every device)")(
      "discovery-interval-ms", po::value<int64_t>()->default_value(5000), "time between beacons (jittered by +-25%)")(
      "discovery-to", po::value<std::vector<std::string>>()->composing(), "tests only: also send each beacon to this IPV4:PORT by unicast (repeatable)")(
      "archive", po::value<std::string>(), "archive to and sync through S3: s3://BUCKET/PREFIX (docs/ARCHIVE.md)")(
      "s3-endpoint", po::value<std::string>()->default_value(""), "the S3 endpoint URL (else AWS_ENDPOINT_URL, else AWS's)")(
      "archive-poll-ms", po::value<int64_t>()->default_value(2000), "how often the archive is polled for others' updates")(
      "archive-grace-ms", po::value<int64_t>()->default_value(600'000), "upload another origin's updates after the archive lacked them this long")(
      "http", po::value<std::string>(), "the dashboard and /metrics on HOST:PORT, or off (default: 127.0.0.1:8380, skipped when taken; docs/HTTP.md)")(
      "http-token", po::value<std::string>(), "token every dashboard request must carry (default: none on 127.0.0.1 or ::1, else one is generated and printed)");
  o.add_lock_wait(DataDir::kNodeLockTimeoutMs);
  if (!o.parse(args)) return 0;
  DaemonOptions d;
  d.node = o.node_options();
  d.node.on_lock_wait = [](const std::string& line) { std::cerr << "replog node: " << line << std::endl; };
  if (o.has("listen")) d.listen = o.get<std::string>("listen");
  if (o.has("advertise")) d.advertise = o.get<std::string>("advertise");
  if (o.has("peer")) d.peers = o.get<std::vector<std::string>>("peer");
  d.insecure = o.has("insecure");
  d.anti_entropy_ms = o.get<int64_t>("anti-entropy-ms");
  if (o.has("discovery")) {
    const std::string on = o.get<std::string>("discovery");
    if (on != "on" && on != "off") throw CommandError("--discovery must be on or off");
    d.discovery = on == "on";
  }
  const int udp_port = o.get<int>("discovery-port");
  if (udp_port < 1 || udp_port > 65535) throw CommandError("--discovery-port must be 1..65535");
  d.discovery_port = static_cast<uint16_t>(udp_port);
  d.discovery_interval_ms = o.get<int64_t>("discovery-interval-ms");
  if (d.discovery_interval_ms < 100 || d.discovery_interval_ms > 3'600'000)
    throw CommandError("--discovery-interval-ms must be 100..3600000");
  if (o.has("discovery-to")) d.discovery_to = o.get<std::vector<std::string>>("discovery-to");
  if (o.has("archive")) d.archive = o.get<std::string>("archive");
  d.s3_endpoint = o.get<std::string>("s3-endpoint");
  d.archive_poll_ms = o.get<int64_t>("archive-poll-ms");
  d.archive_grace_ms = o.get<int64_t>("archive-grace-ms");
  if (d.archive_poll_ms < 100 || d.archive_poll_ms > 3'600'000) throw CommandError("--archive-poll-ms must be 100..3600000");
  if (d.archive_grace_ms < 0) throw CommandError("--archive-grace-ms must not be negative");
  d.http = o.has("http") ? o.get<std::string>("http") : std::string(kDefaultHttp);
  d.http_required = o.has("http");
  if (d.http == "off") d.http.clear();
  if (o.has("http-token")) d.http_token = o.get<std::string>("http-token");
  if (o.has("http-token") && d.http_token.size() < 16) throw CommandError("--http-token must be at least 16 characters");
  d.on_dashboard = [](const std::string& url) { std::cout << "dashboard: " << url << std::endl; };
  const std::string level = o.get<std::string>("log-level");
  if (level == "error") d.log_level = 0;
  else if (level == "warn") d.log_level = 1;
  else if (level == "info") d.log_level = 2;
  else if (level == "debug") d.log_level = 3;
  else throw CommandError("--log-level must be error, warn, info or debug");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  check(run_daemon(d, g_stop));
  return 0;
}

// --- verify ----------------------------------------------------------------------------------------

int cmd_verify(const std::vector<std::string>& args) {
  Options o("verify", "--data DIR   (replays from scratch; exits 1 on any mismatch)");
  if (!o.parse(args)) return 0;
  auto report = unwrap(verify_data_dir(o.node_options().dir,
                                       std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins())));
  if (o.json()) {
    std::cout << json{{"ok", report.ok()}, {"updates", report.updates}, {"origins", report.origins},
                      {"checkpoints_checked", report.checkpoints_checked},
                      {"undecodable_args", report.undecodable_args}, {"origins_verified", report.origins_verified},
                      {"heads_checked", report.heads_checked}, {"unverified_updates", report.unverified_updates},
                      {"evidence_checked", report.evidence_checked}, {"state_hash", report.scratch_hash},
                      {"problems", report.problems}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << (report.ok() ? "ok" : "PROBLEMS") << ": " << report.updates << " updates from " << report.origins
              << " origins, " << report.checkpoints_checked << " checkpoints checked, " << report.origins_verified
              << " origins' chains and " << report.heads_checked << " signed heads checked";
    if (report.unverified_updates) std::cout << ", " << report.unverified_updates << " updates not yet under a head";
    if (report.evidence_checked) std::cout << ", " << report.evidence_checked << " fork evidence checked";
    std::cout << ", state hash " << report.scratch_hash << "\n";
    for (const auto& p : report.problems) std::cout << "  " << p << "\n";
  }
  return report.ok() ? 0 : 1;
}

// --- export / import ---------------------------------------------------------------------------------

int cmd_export(const std::vector<std::string>& args) {
  Options o("export", "--data DIR [FILE] [--format mpk|jsonl] [--origin ID]   (to stdout unless FILE)");
  o.add()("file", po::value<std::string>(), "write here instead of stdout")(
      "format", po::value<std::string>()->default_value("mpk"), "mpk (MessagePack envelopes) or jsonl (JSON lines)")(
      "origin", po::value<std::string>(), "only this origin");
  o.positional("file", 1);
  if (!o.parse(args)) return 0;
  const std::string format = o.get<std::string>("format");
  if (format != "mpk" && format != "jsonl") throw CommandError("--format must be mpk or jsonl");
  std::FILE* out = stdout;
  if (o.has("file")) {
    out = std::fopen(o.get<std::string>("file").c_str(), "wb");
    if (!out) throw CommandError("cannot write " + o.get<std::string>("file"));
  }
  std::optional<OriginId> origin;
  if (o.has("origin")) origin = unwrap(parse_hex16(o.get<std::string>("origin")));
  auto log = unwrap(UpdateLog::open(o.node_options().dir, {}));
  auto txn = unwrap(log->begin_read());
  uint64_t n = 0;
  bool progress = o.has("file") && isatty(2);
  check(txn.for_each_from(UpdateId{}, [&](const UpdateId& id, std::string_view body) {
    if (origin && id.origin != *origin) return true;
    std::string line;
    auto u = Update::parse(id, std::string(body));
    if (!u) throw CommandError("stored " + u.status().message() + " (replog verify)");
    if (format == "mpk") {
      append_envelope(*u, line);
    } else {
      json j{{"id", id.to_string()}, {"body", base64_encode(body)}};
      {
        j["seq"] = u->seq();
        j["method"] = std::string(u->method());
        auto arg = decode_msgpack(u->arg());
        j["arg"] = arg ? to_json_value(*arg) : json(nullptr);
      }
      line = j.dump() + "\n";
    }
    std::fwrite(line.data(), 1, line.size(), out);
    if (progress && ++n % 100000 == 0) std::fprintf(stderr, "\rexported %llu updates", static_cast<unsigned long long>(n));
    return true;
  }));
  // Then the heads that prove them (signed origins): every kept head of each
  // origin, the first carrying the origin's key.
  for (const auto& [o_id, rec] : txn.origin_records()) {
    if (origin && o_id != *origin) continue;
    bool first = true;
    for (const StoredHead& h : txn.heads(o_id)) {
      proof::Head head{o_id, h.seq, h.chain, h.flags, h.signature, {}, {}, {}};
      if (first || rec.legacy) {
        head.key = rec.key;
        head.device = rec.device;
        head.cert = rec.cert;
      }
      first = false;
      std::string line;
      if (format == "mpk") {
        proof::append_head(head, line);
      } else {
        line = json{{"head", base64_encode(proof::encode_head(head))}}.dump() + "\n";
      }
      std::fwrite(line.data(), 1, line.size(), out);
    }
  }
  check(txn.status());
  if (progress) std::fprintf(stderr, "\n");
  if (out != stdout && std::fclose(out) != 0) throw CommandError("write failed");
  return 0;
}

// What an import file holds: the updates whose bodies parse, and a line for
// each one that does not (refused, as ingest would).
struct ImportFile {
  std::vector<Update> updates;
  std::vector<proof::Head> heads;
  std::vector<std::string> refused;
  void add(Result<Update> u) {
    if (u) updates.push_back(std::move(u).value());
    else refused.push_back(u.status().message());
  }
};

// Reads updates in either export form; the form is told by the first byte.
ImportFile parse_updates(const std::string& data) {
  ImportFile out;
  size_t pos = 0;
  if (!data.empty() && (data[0] == '{' || isspace(static_cast<unsigned char>(data[0])))) {
    size_t line_no = 0;
    while (pos < data.size()) {
      size_t nl = data.find('\n', pos);
      std::string line = data.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? data.size() : nl + 1;
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("head") && j["head"].is_string()) {
        auto bytes = base64_decode(j["head"].get<std::string>());
        auto head = bytes ? proof::decode_head(*bytes) : Result<proof::Head>(bytes.status());
        if (!head) throw CommandError("line " + std::to_string(line_no) + ": bad head: " + head.status().message());
        out.heads.push_back(std::move(head).value());
        continue;
      }
      if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j.contains("body") || !j["id"].is_string() ||
          !j["body"].is_string())
        throw CommandError("line " + std::to_string(line_no) + ": expected {\"id\": ..., \"body\": ...} or {\"head\": ...}");
      auto id = UpdateId::parse(j["id"].get<std::string>());
      auto body = base64_decode(j["body"].get<std::string>());
      if (!id || !body) throw CommandError("line " + std::to_string(line_no) + ": bad id or body");
      out.add(Update::parse(*id, std::move(body).value()));
    }
    return out;
  }
  for (size_t n = 1; pos < data.size(); ++n) {
    size_t used = 0;
    // An envelope is an array of 3; a head, of 5, 6 or 8.
    const auto tag = static_cast<unsigned char>(data[pos]);
    if (tag == 0x95 || tag == 0x96 || tag == 0x98) {
      auto head = proof::read_head(std::string_view(data).substr(pos), used);
      if (!head) throw CommandError("item " + std::to_string(n) + ": " + head.status().message());
      pos += used;
      out.heads.push_back(std::move(head).value());
      continue;
    }
    auto u = read_envelope(std::string_view(data).substr(pos), used);
    if (used == 0) throw CommandError("update " + std::to_string(n) + ": " + u.status().message());
    pos += used;
    out.add(std::move(u));
  }
  return out;
}

int cmd_import(const std::vector<std::string>& args) {
  Options o("import", "--data DIR [FILE]   (MessagePack or JSON lines, as export writes; stdin unless FILE)");
  o.add()("file", po::value<std::string>(), "read from here instead of stdin");
  o.positional("file", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  std::string data = o.has("file") ? read_file(o.get<std::string>("file")) : read_stdin();
  ImportFile file = parse_updates(data);
  std::vector<Update>& updates = file.updates;
  auto node = open_writer_offline(o, "import");
  IngestReport total;
  // Each origin's updates in seq order, cut into runs at its heads; runs are
  // stored in batches of about `batch` updates, each run with its head.
  std::map<OriginId, std::vector<Update>> by_origin;
  for (auto& u : updates) by_origin[u.id().origin].push_back(std::move(u));
  std::map<OriginId, std::vector<proof::Head>> heads;
  for (auto& h : file.heads) heads[h.origin].push_back(std::move(h));
  const size_t batch = 1000;
  bool progress = isatty(2);
  size_t done = 0;
  std::vector<Update> part;
  std::vector<proof::Head> part_heads;
  auto store = [&] {
    if (part.empty() && part_heads.empty()) return;
    done += part.size();
    IngestReport r = unwrap(node->ingest(std::move(part), std::move(part_heads)));
    part.clear();
    part_heads.clear();
    total.accepted += r.accepted;
    total.duplicates += r.duplicates;
    total.forks += r.forks;
    for (const auto& refused : r.refused) file.refused.push_back(refused.detail);
    if (progress) std::fprintf(stderr, "\rimported %zu of %zu", done, updates.size());
  };
  for (auto& [origin, ups] : by_origin) {
    std::stable_sort(ups.begin(), ups.end(), [](const Update& x, const Update& y) { return x.seq() < y.seq(); });
    auto& hs = heads[origin];
    std::sort(hs.begin(), hs.end(), [](const proof::Head& x, const proof::Head& y) { return x.seq < y.seq; });
    size_t h = 0;
    for (auto& u : ups) {
      part.push_back(std::move(u));
      while (h < hs.size() && hs[h].seq < part.back().seq()) part_heads.push_back(hs[h++]);
      if (h < hs.size() && hs[h].seq == part.back().seq()) {
        part_heads.push_back(hs[h++]);
        if (part.size() >= batch) store();  // a cut at a head
      }
    }
    while (h < hs.size()) part_heads.push_back(hs[h++]);
    store();
  }
  if (progress) std::fprintf(stderr, "\n");
  check(node->close());
  if (o.json()) {
    std::cout << json{{"accepted", total.accepted}, {"duplicates", total.duplicates}, {"forks", total.forks},
                      {"refused", file.refused}}
                     .dump()
              << "\n";
  } else {
    std::cout << "imported " << total.accepted << " updates (" << total.duplicates << " already held, "
              << file.refused.size() << " refused)\n";
    // A refused run gives every update of it one line, the same: said once, with how many.
    size_t lines = 0;
    for (size_t i = 0; i < file.refused.size() && lines < 20; ++lines) {
      size_t same = 1;
      while (i + same < file.refused.size() && file.refused[i + same] == file.refused[i]) ++same;
      std::cerr << "refused " << file.refused[i] << (same > 1 ? " (" + std::to_string(same) + " updates)" : "") << "\n";
      i += same;
    }
  }
  return file.refused.empty() ? 0 : 1;
}

// --- value --------------------------------------------------------------------------------------------

int cmd_value(const std::vector<std::string>& args) {
  Options o("value", "[--from F] [--to F] [--schema FILE] [VALUE]", /*with_data=*/false);
  o.add()("schema", po::value<std::string>(), "resolve enums and records against this schema (JSON document)")(
      "from", po::value<std::string>()->default_value("json"), "input form: json (typed JSON), msgpack, hex")(
      "to", po::value<std::string>()->default_value("typed"), "output form: typed, info, msgpack, hex")(
      "input", po::value<std::string>(), "the value; read from stdin when absent");
  o.positional("input", 1);
  if (!o.parse(args)) return 0;
  std::string input = o.has("input") ? o.get<std::string>("input") : read_stdin();
  const std::string from = o.get<std::string>("from");
  Value value;
  if (from == "json") value = unwrap(parse_typed_json(input));
  else if (from == "msgpack") value = unwrap(decode_msgpack(input));
  else if (from == "hex") value = unwrap(decode_msgpack(unwrap(from_hex(input))));
  else throw CommandError("--from must be json, msgpack or hex, not " + from);
  if (o.has("schema")) {
    auto registry = unwrap(TypeRegistry::from_json_text(read_file(o.get<std::string>("schema"))));
    check(registry.resolve(value));
  }
  const std::string to = o.get<std::string>("to");
  if (to == "typed") std::cout << to_typed_json(value) << "\n";
  else if (to == "info") std::cout << to_info_json(value) << "\n";
  else if (to == "msgpack") std::cout << encode_msgpack(value);
  else if (to == "hex") std::cout << to_hex(encode_msgpack(value)) << "\n";
  else throw CommandError("--to must be typed, info, msgpack or hex, not " + to);
  return 0;
}

// --- retire / revoke ------------------------------------------------------------------

// ORIGIN as 16 hex digits, or a device id standing for the origin of its key.
OriginId origin_arg(const std::string& text) {
  if (auto o = parse_hex16(text); o && text.size() == 16) return *o;
  if (auto key = parse_device_id(text)) return proof::origin_of_key(*key);
  throw CommandError("\"" + text + "\" is neither an origin (16 hex digits) nor a device id");
}

// The seq of `origin` this node holds (0: none).
int64_t held_seq(const Value& status, OriginId origin) {
  const Value* v = status.find("vector");
  const Value* seq = v && v->is_map() ? v->find(hex16(origin)) : nullptr;
  return seq && seq->is_int() ? seq->as_int() : 0;
}

int cmd_retire(const std::vector<std::string>& args) {
  Options o("retire", "--data DIR [ORIGIN]   (without ORIGIN: this node's own origin, which then writes no more)");
  o.add()("origin", po::value<std::string>(), "an origin (16 hex digits) or device id that will write no more");
  o.positional("origin", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  // Its own origin: the node records its own last seq and signs a final head,
  // then writes on as a fresh origin. Another's (a lost device): what this node holds.
  Value st = status_of(o);
  const Value* own = st.find("node_id");
  const OriginId origin = o.has("origin") ? origin_arg(o.get<std::string>("origin"))
                                          : unwrap(parse_hex16(own && own->is_string() ? own->as_string() : ""));
  return call_and_print(o, "retire", "retire",
                        Value(Map{{"origin", Value(hex16(origin))}, {"last_seq", Value(held_seq(st, origin))}}));
}

int cmd_revoke(const std::vector<std::string>& args) {
  Options o("revoke", "--data DIR ID   (shuts a device's origin out after the last update this node holds of it)");
  o.add()("id", po::value<std::string>()->required(), "the origin (16 hex digits) or device id to revoke")(
      "last-seq", po::value<int64_t>(), "the last seq that still counts (default: the last one held here)");
  o.positional("id", 1);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  const OriginId origin = origin_arg(o.get<std::string>("id"));
  Value st = status_of(o);
  const Value* own = st.find("node_id");
  if (own && own->is_string() && own->as_string() == hex16(origin))
    throw CommandError("origin " + hex16(origin) + " is this node's own: use replog retire");
  const int64_t last = o.has("last-seq") ? o.get<int64_t>("last-seq") : held_seq(st, origin);
  if (last < 0) throw CommandError("--last-seq must be 0 or more");
  return call_and_print(o, "revoke", "revoke",
                        Value(Map{{"origin", Value(hex16(origin))}, {"last_seq", Value(last)}}));
}

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

const Command kCommands[] = {
    {"init", "make a data directory: node id, cluster id, optional schema", cmd_init},
    {"call", "make an update: call METHOD with a typed-JSON argument", cmd_call},
    {"state", "print the state (typed or info JSON), a path of it, or its hash", cmd_state},
    {"log", "list updates in replay order", cmd_log},
    {"conflicts", "list open conflicts and forks", cmd_conflicts},
    {"resolve", "close a conflict after fixing the data", cmd_resolve},
    {"retire", "record that an origin (by default this node's own) will write no more", cmd_retire},
    {"revoke", "shut a device's origin out: its later updates are left out everywhere", cmd_revoke},
    {"id", "this device's id (its public key), to read aloud or copy", cmd_id},
    {"trust", "the devices this node trusts: trust add ID, trust list, trust remove ID", cmd_trust},
    {"invite", "print a one-time line that lets a new device join (needs a running node)", cmd_invite},
    {"join", "join a cluster with a line from replog invite (makes the data directory)", cmd_join},
    {"status", "node id, vector, counts, forks, unknown methods, peers", cmd_status},
    {"peers", "the running node's peers: in sync or behind by N", cmd_peers},
    {"node", "run the node: sync with peers over ZeroMQ, serve the local API", cmd_node},
    {"verify", "replay from scratch and check the log; non-zero exit on any mismatch", cmd_verify},
    {"archive", "the S3 archive: push, pull, status, verify, key export", cmd_archive},
    {"restore", "make or fill a data directory from the S3 archive, verifying every byte", cmd_restore},
    {"export", "write updates as MessagePack or JSON lines", cmd_export},
    {"import", "read updates written by export (another node's too)", cmd_import},
    {"value", "convert a value between typed JSON, MessagePack and info JSON", cmd_value},
};

void print_usage(std::ostream& out) {
  out << "usage: replog COMMAND [OPTIONS]   (replog COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& c : kCommands)
    out << "  " << c.name << std::string(12 - std::string(c.name).size(), ' ') << c.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  std::string name = args[0];
  args.erase(args.begin());
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const CommandError& e) {
      std::cerr << "replog " << name << ": " << e.what() << "\n";
      return 1;
    } catch (const po::error& e) {
      std::cerr << "replog " << name << ": " << e.what() << " (see replog " << name << " --help)\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "replog " << name << ": " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "replog: unknown command \"" << name << "\" (see replog --help)\n";
  return 2;
}
