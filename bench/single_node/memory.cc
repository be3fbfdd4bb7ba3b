// Figure 7: memory after loading the dataset's state. The bench re-executes
// itself (--internal-rss), so that its own memory is not counted, and reads
// /proc/self/status there; the replog program's peak RSS comes from wait4 in
// a small intermediate process (--internal-spawn).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/bench_common.h"
#include "common/process.h"
#include "common/report.h"
#include "node/core/state.h"
#include "single_node/single_node.h"

namespace replog::bench {

namespace {

// A child's stdout, exit status and run time.
struct ChildResult {
  std::string out;
  int status = -1;
  double seconds = 0;
};

ChildResult run_child(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) die("pipe failed");
  auto t0 = Steady::now();
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    exec_or_exit(argv);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  if (::waitpid(pid, &st, 0) < 0) die("waitpid failed");
  r.seconds = seconds_since(t0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// "key=value" lines.
std::map<std::string, std::string> parse_kv(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// The row of `replog state --data DIR --hash`: its peak RSS, its hash checked.
void add_cli_row(const std::string& dir, const std::string& expect, double state_bytes) {
  auto cli = run_child({"/proc/self/exe", "--internal-spawn", g_opt.cli, "state", "--data", dir, "--hash"});
  if (cli.status != 0) die("replog state --hash failed with status " + std::to_string(cli.status));
  std::string out = cli.out.substr(0, cli.out.find('\n'));
  if (out != expect) die("replog state --hash printed " + out + ", expected " + expect);
  auto ckv = parse_kv(cli.out);
  const double peak = std::stod(ckv["maxrss_kib"]) * 1024;
  RowBuilder("7", "peak RSS of `replog state --data DIR --hash` (anon + file)")
      .measured(peak, "bytes",
                mib_text(peak) + " (ran " + time_text(cli.seconds) + "; spawner " +
                    mib_text(std::stod(ckv["spawner_rss_kib"]) * 1024) + ")")
      .raw(state_bytes, "bytes", mib_text(state_bytes) + " State::encode()")
      .ratio(peak / state_bytes, "%.1fx state size")
      .goal("(peak incl. file pages; goal is on RssAnon)")
      .add();
}

}  // namespace

// Child mode: load the state read-only and report memory.
int internal_rss(const std::string& dir) {
  long before = status_kib("/proc/self/status", "RssAnon");
  auto t0 = Steady::now();
  auto node = open_read_only(dir);
  double load_s = seconds_since(t0);
  long anon = status_kib("/proc/self/status", "RssAnon");
  long file = status_kib("/proc/self/status", "RssFile");
  long hwm = status_kib("/proc/self/status", "VmHWM");
  size_t state_bytes = 0;
  std::string hash;
  node->read([&](const State& s) {
    state_bytes = s.encode().size();
    hash = s.hash_hex();
  });
  std::printf("rss_anon_before_kib=%ld\nrss_anon_kib=%ld\nrss_file_kib=%ld\nvm_hwm_kib=%ld\nstate_bytes=%zu\n"
              "hash=%s\nload_s=%f\n",
              before, anon, file, hwm, state_bytes, hash.c_str(), load_s);
  return 0;
}

// Child mode: runs a program and prints, after its output, its peak RSS.
// wait4's ru_maxrss is the larger of the forked child's RSS before exec (the
// pages it shares with its parent) and the program's own peak; forking from
// this small process keeps the first one small (reported as spawner_rss_kib).
int internal_spawn(const std::vector<std::string>& argv) {
  std::fflush(stdout);
  long spawner = status_kib("/proc/self/status", "VmRSS");
  pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) exec_or_exit(argv);
  struct rusage ru;
  int st = 0;
  if (::wait4(pid, &st, 0, &ru) < 0) die("wait4 failed");
  std::printf("\nmaxrss_kib=%ld\nspawner_rss_kib=%ld\n", ru.ru_maxrss, spawner);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void fig_memory() {
  const std::string& dir = dataset_dir();
  const std::string& expect = scratch_hash();
  progress("figure 7: memory after loading the state of " + grouped(static_cast<double>(g_opt.updates)) + " updates");
  auto child = run_child({"/proc/self/exe", "--internal-rss", dir});
  if (child.status != 0) die("memory child failed with status " + std::to_string(child.status));
  auto kv = parse_kv(child.out);
  if (kv["hash"] != expect) die("memory child loaded hash " + kv["hash"] + ", expected " + expect);
  const double anon = std::stod(kv["rss_anon_kib"]) * 1024, before = std::stod(kv["rss_anon_before_kib"]) * 1024;
  const double state_bytes = std::stod(kv["state_bytes"]);
  const double limit = 64.0 * 1024 * 1024 + state_bytes;
  RowBuilder("7", "RssAnon after Node::open_read_only (child process)")
      .measured(anon, "bytes",
                mib_text(anon) + " (" + mib_text(before) + " before load; VmHWM " +
                    mib_text(std::stod(kv["vm_hwm_kib"]) * 1024) + ", RssFile " +
                    mib_text(std::stod(kv["rss_file_kib"]) * 1024) + ")")
      .raw(state_bytes, "bytes", mib_text(state_bytes) + " State::encode()")
      .ratio(anon / state_bytes, "%.1fx state size")
      .goal("< 64 MiB + state = " + mib_text(limit), anon < limit)
      .add();

  if (!g_opt.cli.empty() && ::access(g_opt.cli.c_str(), X_OK) == 0) {
    add_cli_row(dir, expect, state_bytes);
  } else {
    progress("  (replog CLI not found at '" + g_opt.cli + "'; skipping its row; use --cli PATH)");
  }
}

}  // namespace replog::bench
