#include "storage/data_dir.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <utility>

#include "protocol/bytes.h"

namespace replog {

namespace {

// How often a waiting node or command tries LOCK again: short beside the
// bounds (seconds), long enough not to matter for the CPU.
constexpr int64_t kPollMs = 50;

// sun_path is 108 bytes on Linux; "ipc://" + DATA + "/events.sock" must fit
// with room to spare. The rule is documented (PROTOCOL.md §4), so it stays.
constexpr size_t kMaxIpcPath = 100;
constexpr size_t kSocketSuffixRoom = 20;

// A note or mark "PID REST": the pid, and the rest of the first line.
struct Note {
  int64_t pid = 0;
  std::string rest;
};

std::optional<Note> parse_note(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  Note note;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), note.pid);
  if (ec != std::errc() || note.pid <= 0) return std::nullopt;
  text.remove_prefix(static_cast<size_t>(end - text.data()));
  if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  note.rest = std::string(text);
  return note;
}

std::string duration_text(int64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

bool is_busy(const Status& s) { return s.code() == Status::Code::kBusy; }

Status in_use(const std::string& dir, const LockHolder& holder, int64_t waited_ms) {
  std::string msg = dir + " is in use by another writer (" + holder.describe() + ")";
  if (waited_ms > 0) msg += ": still locked after " + duration_text(waited_ms);
  return Status::busy(std::move(msg));
}

}  // namespace

std::string LockHolder::describe() const {
  if (pid == 0) return "pid ?";
  return "pid " + std::to_string(pid) + (what.empty() ? "" : ", " + what);
}

DataDir::DataDir(std::string path, Env& env) : path_(std::move(path)), env_(env) {}

bool DataDir::holds_log() const { return env_.file_exists(data_file()); }

Result<std::optional<int64_t>> DataDir::detached_at() const {
  if (!env_.file_exists(detached_file())) return std::optional<int64_t>();
  auto text = env_.read_file(detached_file());
  if (!text) return text.status();
  std::string t = *text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty() || t.size() > 18 || t.find_first_not_of("0123456789") != std::string::npos)
    return Status::corruption(detached_file() + ": not a time in milliseconds");
  return std::optional<int64_t>(std::stoll(t));
}

// --- the local API's endpoints -----------------------------------------------------

std::string DataDir::socket_dir_for(const std::string& absolute_dir) {
  if (absolute_dir.size() + kSocketSuffixRoom <= kMaxIpcPath) return absolute_dir;
  // sodium_init() only picks the fastest implementation (the digest is the same
  // without it); it is idempotent and thread-safe.
  [[maybe_unused]] int sodium_ready = sodium_init();
  unsigned char digest[8];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(absolute_dir.data()),
                     absolute_dir.size(), nullptr, 0);
  return "/tmp/replog-" + to_hex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

Result<std::string> DataDir::absolute_path() const {
  if (path_.empty() || path_[0] == '/') return path_;
  auto cwd = env_.current_dir();
  if (!cwd) return cwd.status();
  return *cwd + "/" + path_;
}

// The shared directory in /tmp must be this user's alone: anyone who could
// write there could replace the API's sockets, and the API changes trust.
Status DataDir::check_socket_dir(const std::string& dir) const {
  auto mode = env_.file_mode(dir);
  if (!mode) return mode.status().with_context("local API socket directory");
  const std::string fix = "; remove it (others could reach or replace the node's API sockets)";
  if (!mode->directory) return Status::invalid_argument(dir + ": not a directory" + fix);
  if (mode->owner != env_.user_id())
    return Status::invalid_argument(dir + ": owned by user " + std::to_string(mode->owner) + ", not by this user" + fix);
  if ((mode->permissions & 077) != 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", mode->permissions);
    return Status::invalid_argument(dir + ": mode " + octal + " lets others in" + fix);
  }
  return Status::ok();
}

Result<ApiEndpoints> DataDir::api_endpoints() const {
  auto abs = absolute_path();
  if (!abs) return abs.status();
  std::string dir = socket_dir_for(*abs);
  if (dir != *abs) {
    REPLOG_RETURN_IF_ERROR(env_.make_dir(dir, 0700).with_context("local API socket directory"));
    REPLOG_RETURN_IF_ERROR(check_socket_dir(dir));
  }
  return ApiEndpoints{"ipc://" + dir + "/api.sock", "ipc://" + dir + "/events.sock"};
}

Status DataDir::publish_api(const ApiEndpoints& endpoints) const {
  return env_.write_file(endpoint_file(), endpoints.api + "\n" + endpoints.events + "\n");
}

Status DataDir::withdraw_api() const {
  Status s = env_.remove_file(endpoint_file());
  return s.code() == Status::Code::kNotFound ? Status::ok() : s;
}

// --- the lock ------------------------------------------------------------------------

LockHolder DataDir::lock_holder() const {
  auto text = env_.read_file(lock_file());
  if (!text) return {};
  auto note = parse_note(*text);
  if (!note) return {};
  return {note->pid, note->rest};
}

void DataDir::after_locking() const { (void)withdraw_api(); }

Status DataDir::put_starting_mark(int64_t deadline_ms) const {
  return env_.write_file(node_starting_file(),
                         std::to_string(env_.process_id()) + " " + std::to_string(deadline_ms) + "\n");
}

void DataDir::remove_own_starting_mark() const {
  // Another node may have replaced the mark with its own since; that one stays.
  auto text = env_.read_file(node_starting_file());
  if (!text) return;
  auto note = parse_note(*text);
  if (note && note->pid == env_.process_id()) (void)env_.remove_file(node_starting_file());
}

std::optional<int64_t> DataDir::starting_node() const {
  auto text = env_.read_file(node_starting_file());
  if (!text) return std::nullopt;
  auto note = parse_note(*text);
  int64_t deadline = 0;
  if (note) std::from_chars(note->rest.data(), note->rest.data() + note->rest.size(), deadline);
  if (note && env_.process_alive(note->pid) && env_.now_millis() < deadline) return note->pid;
  // Stale: its node died or gave up. (A node that puts a fresh mark just now may
  // lose it here; it then waits for this command like for any other.)
  (void)env_.remove_file(node_starting_file());
  return std::nullopt;
}

Result<std::unique_ptr<FileLock>> DataDir::lock_for_node(
    int64_t timeout_ms, const std::function<void(const std::string&)>& waiting) const {
  std::string note = std::to_string(env_.process_id()) + " node";
  auto lock = env_.lock_file(lock_file(), note);
  if (lock) after_locking();
  if (lock || !is_busy(lock.status())) return lock;
  if (timeout_ms <= 0) return in_use(path_, lock_holder(), 0);
  if (waiting)
    waiting("waiting up to " + duration_text(timeout_ms) + " for " + path_ + ", locked by another writer (" +
            lock_holder().describe() + ")");
  int64_t deadline = env_.now_millis() + timeout_ms;
  // Without the mark (a full disk, say) the node still starts; commands then
  // do not give way, and the node waits for them like for any other holder.
  bool marked = put_starting_mark(deadline).is_ok();
  do {
    env_.sleep_millis(std::clamp<int64_t>(deadline - env_.now_millis(), 1, kPollMs));
    lock = env_.lock_file(lock_file(), note);
  } while (!lock && is_busy(lock.status()) && env_.now_millis() < deadline);
  if (lock) after_locking();
  if (marked) remove_own_starting_mark();
  if (lock || !is_busy(lock.status())) return lock;
  return in_use(path_, lock_holder(), timeout_ms);
}

Result<CommandLock> DataDir::lock_for_command(const std::string& name, int64_t timeout_ms) const {
  int64_t deadline = env_.now_millis() + timeout_ms;
  std::string note = std::to_string(env_.process_id()) + " command " + name;
  for (;;) {
    if (auto pid = starting_node()) {
      CommandLock gave_way;
      gave_way.outcome = CommandLock::Outcome::kNodeStarting;
      gave_way.node_pid = *pid;
      return gave_way;
    }
    auto lock = env_.lock_file(lock_file(), note);
    if (lock) {
      after_locking();
      CommandLock locked;
      locked.lock = std::move(lock).value();
      return locked;
    }
    if (!is_busy(lock.status())) return lock.status();
    // A live node holds it: one that took the free lock after the caller looked
    // (a restart), so it put up no mark. Give way to it as to a starting one.
    LockHolder holder = lock_holder();
    if (holder.is_node() && holder.pid > 0 && env_.process_alive(holder.pid)) {
      CommandLock gave_way;
      gave_way.outcome = CommandLock::Outcome::kNodeStarting;
      gave_way.node_pid = holder.pid;
      return gave_way;
    }
    if (env_.now_millis() >= deadline) return in_use(path_, holder, timeout_ms);
    env_.sleep_millis(std::clamp<int64_t>(deadline - env_.now_millis(), 1, kPollMs));
  }
}

Result<NodeProbe> DataDir::node_running() const {
  auto held = env_.lock_is_held(lock_file());
  if (!held) return held.status();
  NodeProbe probe;
  probe.running = *held && lock_holder().is_node();
  if (!probe.running) return probe;
  auto text = env_.read_file(endpoint_file());
  if (!text) return text.status().code() == Status::Code::kNotFound ? Result<NodeProbe>(probe) : text.status();
  size_t end = text->find('\n');
  size_t end2 = end == std::string::npos ? end : text->find('\n', end + 1);
  if (end2 == std::string::npos || end == 0 || end2 == end + 1) return probe;  // not both lines: not up
  probe.api = ApiEndpoints{text->substr(0, end), text->substr(end + 1, end2 - end - 1)};
  return probe;
}

Result<ApiEndpoints> DataDir::wait_for_node_api(int64_t timeout_ms) const {
  int64_t deadline = env_.now_millis() + timeout_ms;
  for (;;) {
    // The mark first, then LOCK: a node takes LOCK before it removes its mark,
    // so looking in this order never misses one passing from starting to running.
    const std::optional<int64_t> starting = starting_node();
    auto probe = node_running();
    if (!probe) return probe.status();
    if (probe->api) return *probe->api;
    std::optional<int64_t> node_pid = probe->running ? lock_holder().pid : starting;
    if (!node_pid)
      return Status::not_found(path_ + ": the node that was starting is gone (it gave up or stopped)");
    if (env_.now_millis() >= deadline)
      return Status::busy(path_ + ": a node is starting (pid " + std::to_string(*node_pid) +
                          ") but its local API is not up after " + duration_text(timeout_ms));
    env_.sleep_millis(std::clamp<int64_t>(deadline - env_.now_millis(), 1, kPollMs));
  }
}

}  // namespace replog
