// Figure 5: memory of `replog node` processes. The 1-origin pair of figure 1
// runs as two `replog node` processes until they are in sync and idle; then
// RssAnon of each, against the state's size.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "common/bench_common.h"
#include "common/process.h"
#include "common/report.h"
#include "node/api/local_api.h"
#include "node/core/state.h"
#include "replication/replication.h"

namespace replog::bench {

namespace {

std::vector<pid_t> g_children;  // `replog node` processes still running

void stop_child(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {  // up to 10 s for its checkpoint
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

// Starts argv with its stderr in err_file (stdout to /dev/null).
pid_t spawn(const std::vector<std::string>& argv, const std::string& err_file) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    int fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = ::open("/dev/null", O_WRONLY);
    if (fd >= 0) ::dup2(fd, 2);
    if (null >= 0) ::dup2(null, 1);
    exec_or_exit(argv);
  }
  g_children.push_back(pid);
  return pid;
}

void forget(pid_t pid) { g_children.erase(std::remove(g_children.begin(), g_children.end(), pid), g_children.end()); }

void reap(pid_t pid) {
  stop_child(pid);
  forget(pid);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The endpoint a `replog node` logged ("... listening on tcp://127.0.0.1:PORT (...").
std::string wait_listening(pid_t pid, const std::string& err_file) {
  auto t0 = Steady::now();
  while (seconds_since(t0) < 30) {
    std::string text = read_text(err_file);
    auto at = text.find("listening on ");
    if (at != std::string::npos) {
      auto start = at + 13, end = text.find_first_of(" \n", start);
      if (end != std::string::npos) return text.substr(start, end - start);
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      forget(pid);
      die("replog node exited early:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  die("replog node did not start listening within 30 s");
}

std::unique_ptr<ApiClient> wait_api(const std::string& dir, zmq::context_t& ctx) {
  auto t0 = Steady::now();
  while (seconds_since(t0) < 30) {
    if (auto c = ApiClient::connect_if_running(dir, ctx)) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  die("no local API for " + dir + " within 30 s");
}

struct ApiStatus {
  uint64_t updates = 0;
  std::string hash;
  bool in_sync = false;  // every peer ready, nothing lacking either way
};

ApiStatus api_status(ApiClient& api) {
  Value st = must(api.request("status", Value(), 10'000), "local API status");
  ApiStatus s;
  s.updates = static_cast<uint64_t>(st.find("updates")->as_int());
  s.hash = st.find("state_hash")->as_string();
  const auto& peers = st.find("peers")->as_list();
  s.in_sync = !peers.empty();
  for (const auto& p : peers)
    if (!p.find("ready")->as_bool() || p.find("we_lack")->as_int() != 0 || p.find("they_lack")->as_int() != 0)
      s.in_sync = false;
  return s;
}

struct Mem {
  double anon, file, hwm;
};

Mem mem_of(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  return Mem{static_cast<double>(status_kib(path, "RssAnon")) * 1024.0,
             static_cast<double>(status_kib(path, "RssFile")) * 1024.0,
             static_cast<double>(status_kib(path, "VmHWM")) * 1024.0};
}

// The two processes' memory once they are in sync and have been idle --idle s.
struct Idle {
  Mem source, receiver;
  double sync_s = 0;  // from both APIs answering to in sync
};

Idle run_pair_idle(const Pair& pair, uint64_t held) {
  const std::string err_a = g_root + "/node-source.log", err_b = g_root + "/node-receiver.log";
  pid_t pa = spawn({g_opt.cli, "node", "--data", pair.source_dir, "--listen", "tcp://127.0.0.1:0", "--insecure"}, err_a);
  std::string ep = wait_listening(pa, err_a);
  pid_t pb = spawn({g_opt.cli, "node", "--data", pair.receiver_dir, "--listen", "tcp://127.0.0.1:0", "--peer", ep,
                    "--insecure"},
                   err_b);
  wait_listening(pb, err_b);
  zmq::context_t ctx(1);
  auto api_a = wait_api(pair.source_dir, ctx), api_b = wait_api(pair.receiver_dir, ctx);
  auto t0 = Steady::now();
  ApiStatus sa, sb;
  while (true) {
    sa = api_status(*api_a);
    sb = api_status(*api_b);
    if (sa.in_sync && sb.in_sync && sa.hash == sb.hash && sa.updates == held && sb.updates == held) break;
    if (seconds_since(t0) > 30) die("figure 5: the two processes are not in sync after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Idle out;
  out.sync_s = seconds_since(t0);
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(g_opt.idle_s * 1000)));
  sa = api_status(*api_a);
  sb = api_status(*api_b);
  if (!(sa.in_sync && sb.in_sync && sa.hash == sb.hash && sa.hash == pair.hash))
    die("figure 5: the processes are no longer in sync while idle");
  out.source = mem_of(pa);
  out.receiver = mem_of(pb);
  api_a.reset();
  api_b.reset();
  reap(pb);
  reap(pa);
  return out;
}

}  // namespace

void stop_children() {
  for (pid_t pid : g_children) stop_child(pid);
}

void fig_memory() {
  if (g_opt.cli.empty() || ::access(g_opt.cli.c_str(), X_OK) != 0) {
    progress("figure 5 skipped: the replog program is not at '" + g_opt.cli + "' (use --cli PATH)");
    return;
  }
  Pair& pair = g_pairs.at(1);
  size_t state_bytes = 0;
  uint64_t held = 0;
  {
    auto node = open_read_only(pair.receiver_dir);
    node->read([&](const State& s) { state_bytes = s.encode().size(); });
    held = vector_total(node->vector());
    if (node->state_hash() != pair.hash) die("figure 5: the receiver's stored state is not the one measured");
  }
  progress("figure 5: two `replog node` processes holding " + grouped(held) + " updates, until in sync and idle");
  const Idle idle = run_pair_idle(pair, held);
  const double state = static_cast<double>(state_bytes);
  const double limit = 64.0 * 1024 * 1024 + state;
  for (auto [who, m] : {std::pair{"receiver", idle.receiver}, std::pair{"source", idle.source}}) {
    RowBuilder("5", std::string("RssAnon of `replog node` (") + who + "), " + grouped(held) + " updates, idle, in sync")
        .measured(m.anon, "bytes",
                  mib_text(m.anon) + " (VmHWM " + mib_text(m.hwm) + ", RssFile " + mib_text(m.file) + "; idle " +
                      fmt("%.0f s", g_opt.idle_s) + ")")
        .raw(state, "bytes", mib_text(state) + " State::encode()")
        .ratio(m.anon / state, "%.1fx state size")
        .goal("< 64 MiB + state = " + mib_text(limit), m.anon < limit)
        .note("in sync " + time_text(idle.sync_s) + " after the API answered; hashes equal")
        .add();
  }
}

}  // namespace replog::bench
