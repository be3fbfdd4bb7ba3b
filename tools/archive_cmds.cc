// replog archive push|pull|status|verify|key export, and replog restore
// (docs/ARCHIVE.md). Each opens what it needs, says what it did in one line
// (or --json), and ends non-zero when the archive has a problem.
#include "tools/archive_cmds.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "node/archive/archive_check.h"
#include "node/archive/archive_keys.h"
#include "node/archive/archiver.h"
#include "node/archive/compact.h"
#include "node/archive/listing.h"
#include "node/archive/snapshots.h"
#include "node/core/clock.h"
#include "protocol/bytes.h"
#include "protocol/json_codec.h"
#include "storage/cluster_secret.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/object_store.h"
#include "storage/trust.h"

namespace replog::cli {
namespace {

using nlohmann::json;

void add_archive_options(Options& o, bool required = true) {
  auto uri = po::value<std::string>();
  if (required) uri->required();
  o.add()("archive", uri, "the archive: s3://BUCKET/PREFIX")(
      "s3-endpoint", po::value<std::string>()->default_value(""),
      "the S3 endpoint URL (else AWS_ENDPOINT_URL, else AWS's regional endpoint)");
}

std::unique_ptr<S3ObjectStore> open_bucket(const Options& o, const char* uri_option = "archive") {
  return std::make_unique<S3ObjectStore>(
      unwrap(s3_config_for(o.get<std::string>(uri_option), o.get<std::string>("s3-endpoint"))));
}

archive::Keyring member_keys(const Options& o) {
  return unwrap(load_archive_keys(DataDir(o.node_options().dir), Env::posix()));
}

// The member's keys with any granted to its device since (a rotation), kept.
archive::Keyring current_keys(const Options& o, ObjectStore& bucket) {
  archive::Keyring keys = member_keys(o);
  const std::string dir = o.node_options().dir;
  auto identity = unwrap(load_identity(DataDir(dir).identity_file(), Env::posix()));
  check(key_hooks(dir, std::string(identity.secret_key())).take_grants(bucket, keys));
  return keys;
}

// Membership as the node judges it: this device and the trust list.
std::function<bool(std::string_view)> members_of(const std::string& dir) {
  DataDir d(dir);
  auto trust = TrustStore::open(d.trust_file(), Env::posix());
  auto identity = load_identity(d.identity_file(), Env::posix());
  if (!trust || !identity) return nullptr;
  std::shared_ptr<TrustStore> list(std::move(trust).value());
  std::string own = identity->public_key();
  if (list->list().empty()) return nullptr;  // no trust list: every origin counts, as for import
  return [list, own](std::string_view key) { return key == own || list->contains(key); };
}

// The directory's node for a command that takes updates: membership judged as the node judges it.
std::unique_ptr<engine::Node> open_member_writer(const Options& o, const std::string& command) {
  engine::NodeOptions no = o.node_options();
  no.is_member = members_of(no.dir);
  return open_writer_offline(o, command, no);
}

std::string passphrase(bool twice) {
  if (const char* p = std::getenv("REPLOG_PASSPHRASE"); p && *p) return p;
  if (!isatty(0)) throw CommandError("no passphrase: set REPLOG_PASSPHRASE or run on a terminal");
  auto ask = [](const char* prompt) {
    std::fprintf(stderr, "%s", prompt);
    termios old{};
    tcgetattr(0, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(0, TCSANOW, &quiet);
    std::string line;
    std::getline(std::cin, line);
    tcsetattr(0, TCSANOW, &old);
    std::fprintf(stderr, "\n");
    return line;
  };
  std::string first = ask("passphrase: ");
  if (twice && ask("again: ") != first) throw CommandError("the passphrases differ");
  return first;
}

// A line of progress on a terminal (rewritten in place), plain lines otherwise.
class Progress {
 public:
  explicit Progress(bool quiet) : tty_(isatty(2) != 0), quiet_(quiet) {}
  void show(const ArchiveCounters& c) {
    if (quiet_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = s > 0 ? static_cast<double>(c.updates_got) / s : 0;
    if (!tty_ && s - last_ < 2.0) return;
    last_ = s;
    const double done = c.bytes_planned ? static_cast<double>(c.bytes_got) / static_cast<double>(c.bytes_planned) : 0;
    const double eta = done > 0 ? s * (1 - done) / done : 0;
    std::string bar;
    if (tty_) {
      const int filled = static_cast<int>(std::min(1.0, done) * 24);
      bar = "[" + std::string(filled, '#') + std::string(24 - filled, '.') + "] ";
    }
    std::fprintf(stderr, "%s%s%llu objects, %.1f of %.1f MiB, %llu updates, %.0f updates/s, ETA %.0f s%s",
                 tty_ ? "\r\033[K" : "", bar.c_str(), static_cast<unsigned long long>(c.segments_got),
                 static_cast<double>(c.bytes_got) / (1 << 20), static_cast<double>(c.bytes_planned) / (1 << 20),
                 static_cast<unsigned long long>(c.updates_got), rate, eta, tty_ ? "" : "\n");
  }
  void done() {
    if (tty_ && !quiet_) std::fprintf(stderr, "\n");
  }

 private:
  bool tty_, quiet_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double last_ = -10;
};

json counters_json(const ArchiveStatus& s) {
  const auto& c = s.counters;
  json damaged = json::object();
  for (const auto& [k, why] : s.damaged) damaged[k] = why;
  return {{"segments_put", c.segments_put}, {"updates_put", c.updates_put}, {"bytes_put", c.bytes_put},
          {"segments_got", c.segments_got}, {"updates_got", c.updates_got}, {"updates_stored", c.updates_stored},
          {"requests", c.requests},         {"lag_updates", s.lag_updates}, {"damaged", damaged}};
}

// "KEY: why", the key once (messages from below often start with it).
std::string named(const std::string& key, const std::string& why) {
  return why.starts_with(key) ? why : key + ": " + why;
}

int report_damage(const ArchiveStatus& s) {
  for (const auto& [key, why] : s.damaged) std::fprintf(stderr, "not applied: %s\n", named(key, why).c_str());
  return s.damaged.empty() ? 0 : 1;
}

// ---- push / pull ---------------------------------------------------------------

int archive_push(const std::vector<std::string>& args) {
  Options o("archive push", "--data DIR --archive s3://BUCKET/PREFIX   (uploads what the archive lacks)");
  add_archive_options(o);
  o.add()("grace-ms", po::value<int64_t>()->default_value(600'000),
          "upload another origin's updates only after the archive lacked them this long");
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  auto node = open_writer_offline(o, "archive push");
  SystemClock clock;
  ArchiveOptions ao;
  ao.grace_ms = o.get<int64_t>("grace-ms");
  Archiver archiver(*node, *bucket, current_keys(o, *bucket), clock, ao);
  Status s = archiver.push();
  const ArchiveStatus st = archiver.status();
  if (o.json())
    std::cout << counters_json(st).dump() << "\n";
  else
    std::cout << "uploaded " << st.counters.segments_put << " segments (" << st.counters.updates_put << " updates, "
              << st.counters.bytes_put << " bytes) in " << st.counters.requests << " requests; "
              << st.lag_updates << " of this node's updates not archived\n";
  check(s);
  return report_damage(st);
}

int archive_pull(const std::vector<std::string>& args) {
  Options o("archive pull", "--data DIR --archive s3://BUCKET/PREFIX   (takes every segment this node lacks)");
  add_archive_options(o);
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  auto node = open_member_writer(o, "archive pull");
  SystemClock clock;
  Progress progress(o.json());
  ArchiveOptions ao;
  ao.on_progress = [&](const ArchiveCounters& c) { progress.show(c); };
  Archiver archiver(*node, *bucket, current_keys(o, *bucket), clock, ao);
  Status s = archiver.pull(/*sweep_all=*/true);
  progress.done();
  const ArchiveStatus st = archiver.status();
  if (o.json())
    std::cout << counters_json(st).dump() << "\n";
  else
    std::cout << "stored " << st.counters.updates_stored << " updates from " << st.counters.segments_got
              << " segments; state " << node->state_hash() << "\n";
  int damaged = report_damage(st);
  check(s);
  return damaged;
}

// ---- status / verify -------------------------------------------------------------

int print_check(const Options& o, const ArchiveCheck& c, const VersionVector* held) {
  if (o.json()) {
    json origins = json::object();
    for (const auto& [origin, a] : c.origins) {
      json e = {{"verified", a.verified}, {"listed", a.listed}, {"segments", a.segments}, {"bytes", a.bytes}};
      if (held) e["held"] = seq_of(*held, origin);
      if (a.fork_seq) e["fork_seq"] = a.fork_seq, e["branch_segments"] = a.branch_segments;
      origins[hex16(origin)] = e;
    }
    std::cout << json{{"origins", origins}, {"feed_entries", c.feed_entries}, {"evidence", c.evidence},
                      {"problems", c.problems}, {"ok", c.ok()}}
                     .dump()
              << "\n";
  } else {
    for (const auto& [origin, a] : c.origins) {
      std::cout << hex16(origin) << "  archived 1.." << a.verified << "  (" << a.segments << " segments, " << a.bytes
                << " bytes)";
      if (held) std::cout << "  this node holds 1.." << seq_of(*held, origin);
      if (a.fork_seq)
        std::cout << "  forked at #" << a.fork_seq << " (evidence archived; " << a.branch_segments
                  << " segments of another branch)";
      std::cout << "\n";
    }
    std::cout << c.origins.size() << " origins, " << c.feed_entries << " change feed entries";
    if (c.evidence) std::cout << ", " << c.evidence << " pieces of fork evidence";
    std::cout << "\n";
    for (const auto& p : c.problems) std::cerr << "problem: " << p << "\n";
  }
  return c.ok() ? 0 : 1;
}

int archive_status(const std::vector<std::string>& args) {
  Options o("archive status", "--data DIR --archive s3://BUCKET/PREFIX   (what the archive holds, by origin)");
  add_archive_options(o);
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  auto node = open_reader(o);
  CheckOptions co;
  co.cluster = node->cluster_id();
  co.list_only = true;
  auto c = unwrap(check_archive(*bucket, {}, co));
  const VersionVector held = node->vector();
  return print_check(o, c, &held);
}

// The keys and cluster a command reads the archive with: a member directory's
// or a key file's.
struct ReadKeys {
  archive::Keyring keys;
  std::string cluster;
  std::function<bool(std::string_view)> is_member;
};

// Membership as a key file records it: its trust list and the device that exported it.
std::function<bool(std::string_view)> members_of(const ArchiveKeyFile& file) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "replog-keyfile-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw CommandError("cannot make a temporary directory");
  const std::string path = tmpl + "/trust.json";
  std::shared_ptr<TrustStore> list;
  Status wrote = file.trust_json.empty() ? Status::ok() : Env::posix().write_file(path, file.trust_json, 0600);
  if (wrote) list = std::shared_ptr<TrustStore>(unwrap(TrustStore::open(path, Env::posix())));
  std::filesystem::remove_all(tmpl);
  check(wrote);
  const std::string device = file.device;
  return [list, device](std::string_view key) { return key == device || list->contains(key); };
}

ReadKeys read_keys(const Options& o) {
  if (o.has("archive-key")) {
    auto file = unwrap(open_key_file(read_file(o.get<std::string>("archive-key")), passphrase(false)));
    return {file.keys, file.cluster, members_of(file)};
  }
  auto node = open_reader(o);
  return {member_keys(o), node->cluster_id(), members_of(o.node_options().dir)};
}

int archive_verify(const std::vector<std::string>& args) {
  Options o("archive verify",
            "--archive s3://BUCKET/PREFIX (--data DIR | --archive-key FILE)   (opens and proves every segment)");
  add_archive_options(o);
  o.add()("archive-key", po::value<std::string>(), "a key file from `archive key export` instead of --data");
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  ReadKeys k = read_keys(o);
  CheckOptions co;
  co.cluster = k.cluster;
  co.is_member = k.is_member;
  auto c = unwrap(check_archive(*bucket, k.keys, co));
  if (c.origins.empty()) c.problems.push_back(o.get<std::string>("archive") + " holds no segments (a wrong bucket or prefix?)");
  return print_check(o, c, nullptr);
}

// ---- keys ------------------------------------------------------------------------

int archive_key_rotate(const std::vector<std::string>& args) {
  Options o("archive key rotate",
            "--data DIR --archive s3://BUCKET/PREFIX   (a new archive key for this device and every trusted one)");
  add_archive_options(o);
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  const std::string dir = o.node_options().dir;
  archive::Keyring keys = current_keys(o, *bucket);
  auto identity = unwrap(load_identity(DataDir(dir).identity_file(), Env::posix()));
  std::vector<std::string> members{identity.public_key()};
  for (const auto& d : unwrap(TrustStore::open(DataDir(dir).trust_file(), Env::posix()))->list())
    members.push_back(d.public_key);
  auto key = unwrap(rotate_archive_key(*bucket, keys, members, Env::posix()));
  check(keep_archive_key(DataDir(dir), Env::posix(), key));
  std::cout << "archive key " << hex16(key.id()).substr(8) << " (generation " << key.generation() << ") granted to "
            << members.size() << " devices; new objects are sealed with it\n";
  return 0;
}

int archive_key(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "rotate") return archive_key_rotate({args.begin() + 1, args.end()});
  if (args.empty() || args[0] != "export")
    throw CommandError("usage: replog archive key export FILE --data DIR | key rotate --data DIR --archive URI");
  Options o("archive key export", "FILE --data DIR   (the archive key, sealed under a passphrase)");
  o.add()("file", po::value<std::string>()->required(), "where to write the key file (mode 0600)");
  o.positional("file", 1);
  if (!o.parse({args.begin() + 1, args.end()})) return 0;
  DataDir dir(o.node_options().dir);
  auto node = open_reader(o);
  ArchiveKeyFile file;
  file.cluster = node->cluster_id();
  file.cluster_secret = std::string(unwrap(load_cluster_secret(dir.cluster_secret_file(), Env::posix())).bytes());
  file.keys = member_keys(o);
  if (auto t = Env::posix().read_file(dir.trust_file())) file.trust_json = *t;
  file.device = unwrap(load_identity(dir.identity_file(), Env::posix())).public_key();
  const std::string sealed = unwrap(seal_key_file(file, passphrase(true), Env::posix()));
  check(Env::posix().write_file(o.get<std::string>("file"), sealed, 0600));
  std::cout << "wrote the archive key of cluster " << file.cluster << " to " << o.get<std::string>("file")
            << "; keep it and its passphrase apart\n";
  return 0;
}



// ---- compact ---------------------------------------------------------------------

int archive_compact(const std::vector<std::string>& args) {
  Options o("archive compact",
            "--data DIR --archive s3://BUCKET/PREFIX   (merge segments, write a snapshot, apply retention; safe from cron)");
  add_archive_options(o);
  o.add()("keep", po::value<size_t>()->default_value(3), "snapshots kept per methods digest (at least 1)")(
      "feed-retention-days", po::value<int64_t>()->default_value(7), "change feed entries older than this are deleted");
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  auto bucket = open_bucket(o);
  engine::NodeOptions no = o.node_options();
  no.is_member = members_of(no.dir);
  no.defer_fold = true;  // folded once, when the snapshot is written
  auto node = open_writer_offline(o, "archive compact", no);
  auto identity = unwrap(load_identity(DataDir(o.node_options().dir).identity_file(), Env::posix()));
  SystemClock clock;
  Progress progress(o.json());
  CompactOptions co;
  co.snapshots_kept = o.get<size_t>("keep");
  co.feed_retention_ms = o.get<int64_t>("feed-retention-days") * 24 * 3600 * 1000;
  co.on_progress = [&](const ArchiveCounters& c) { progress.show(c); };
  co.is_member = no.is_member;
  CompactReport r;
  Status s = compact_archive(*node, *bucket, current_keys(o, *bucket), identity.secret_key(), clock, co, r);
  progress.done();
  if (o.json())
    std::cout << json{{"updates_stored", r.pulled.updates_stored}, {"merged", r.merged.merged},
                      {"deleted", r.merged.deleted}, {"snapshot", r.snapshot},
                      {"started_from", r.started_from},
                      {"snapshots_deleted", r.retention.snapshots_deleted}, {"feed_deleted", r.retention.feed_deleted}}
                     .dump()
              << "\n";
  else
    std::cout << (r.started_from.empty() ? "" : "started from " + r.started_from + "; ") << "took "
              << r.pulled.updates_stored << " updates; merged " << r.merged.merged << " segments (deleted "
              << r.merged.deleted << "); snapshot " << r.snapshot << "; retention deleted "
              << r.retention.snapshots_deleted << " snapshots and " << r.retention.feed_deleted << " feed entries\n";
  for (const auto& [key, why] : r.damaged) std::fprintf(stderr, "not applied: %s\n", named(key, why).c_str());
  check(s);
  return 0;
}

// Every snapshot against the restored log: its seal, its signer, its state
// beside the replay of the same vector, and whether the archive is behind it.
std::vector<std::string> check_snapshots(ObjectStore& bucket, const archive::Keyring& keys, engine::Node& node,
                                         const std::function<bool(std::string_view)>& is_member) {
  std::vector<std::string> problems;
  auto names = list_snapshots(bucket);
  if (!names) return {names.status().message()};
  const VersionVector held = node.vector();
  for (const auto& name : *names) {
    auto snap = read_snapshot(bucket, keys, name, node.cluster_id(), is_member);
    if (!snap) {
      problems.push_back(snap.status().message());
      continue;
    }
    const std::string key = archive::snapshot_key(name);
    for (const auto& [origin, seq] : snap->vector)
      if (seq_of(held, origin) < seq)
        problems.push_back(key + ": records " + hex16(origin) + " up to #" + std::to_string(seq) +
                           " but the archive holds only #" + std::to_string(seq_of(held, origin)) +
                           " (a truncated bucket?)");
    if (held == snap->vector && to_hex(snap->state_hash) != node.state_hash())
      problems.push_back(key + ": its state differs from the replay of the same updates");
  }
  return problems;
}

// ---- restore ---------------------------------------------------------------------

// A new member directory for a key file: its cluster, its secret and trust list,
// and a fresh device key of its own.
engine::NodeOptions reader_options(const std::string& dir) {
  engine::NodeOptions no;
  no.dir = dir;
  return no;
}

// Marks a directory restore --archive-key made until that restore completes.
std::string restoring_file(const std::string& dir) { return dir + "/RESTORING"; }

// A member directory for a key file: its cluster, its secret and trust list,
// and a fresh device key of its own. A directory a failed restore from the
// same cluster left behind is taken up again.
void make_restore_dir(const std::string& dir, const ArchiveKeyFile& file) {
  if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir)) {
    std::string cluster;
    if (Env::posix().file_exists(restoring_file(dir)))
      if (auto n = engine::Node::open_read_only(reader_options(dir))) cluster = (*n)->cluster_id();
    if (cluster != file.cluster)
      throw CommandError(dir + " is not empty (and not an unfinished restore of cluster " + file.cluster +
                         "); restore --archive-key makes a new directory");
    std::cerr << "taking up the unfinished restore in " << dir << "\n";
    return;
  }
  check(engine::Node::init({dir, file.cluster, std::nullopt, nullptr}));
  check(Env::posix().write_file(restoring_file(dir), "", 0600));
  DataDir d(dir);
  auto secret = unwrap(ClusterSecret::from_bytes(file.cluster_secret, "the key file's cluster secret"));
  check(store_cluster_secret(d.cluster_secret_file(), secret, Env::posix()));
  if (!file.trust_json.empty()) check(Env::posix().write_file(d.trust_file(), file.trust_json, 0600));
  // The device that exported the key wrote into the archive too; it is not on its own list.
  auto trust = unwrap(TrustStore::open(d.trust_file(), Env::posix()));
  if (!file.device.empty() && !trust->contains(file.device))
    check(trust->add({file.device, "exported the archive key", Env::posix().now_millis(), "manual", 0, {}}));
}

int restore_attach(const Options& o) {
  DataDir dir(o.node_options().dir);
  if (!unwrap(dir.detached_at())) throw CommandError(o.node_options().dir + " is not a detached restore");
  check(Env::posix().remove_file(dir.detached_file()));
  std::cout << o.node_options().dir << " is a member that writes again\n";
  return 0;
}

struct Restored {
  ArchiveStatus status;
  AdoptedSnapshot snapshot;
  std::vector<std::string> snapshot_problems;
  std::string hash, at_hash;
  Status pulled;
};

void print_restored(const Options& o, const Restored& r, const std::optional<int64_t>& at) {
  const bool whole = r.pulled && r.status.damaged.empty();
  if (o.json()) {
    json j = counters_json(r.status);
    j["complete"] = whole;
    j["state_hash"] = r.hash;
    j["snapshot"] = r.snapshot.key;
    j["replayed"] = r.snapshot.key.empty() ? r.status.counters.updates_stored : r.snapshot.updates_after;
    if (at) j["state_hash_at"] = r.at_hash;
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << (whole ? "restored " : "restore incomplete: stored ") << r.status.counters.updates_stored
            << " updates from " << r.status.counters.segments_got << " segments; state " << r.hash << "\n";
  if (!r.snapshot.key.empty())
    std::cout << "state from snapshot " << r.snapshot.key << " and the " << r.snapshot.updates_after
              << " updates after it\n";
  if (at)
    std::cout << "state as of " << o.get<std::string>("at") << ": " << r.at_hash
              << " (detached: `replog state` and `replog log` show that time; --attach to write)\n";
}

}  // namespace

int cmd_restore(const std::vector<std::string>& args) {
  Options o("restore",
            "--from s3://BUCKET/PREFIX --data DIR [--archive-key FILE] [--at TIME] [--replay-all]   (a node's log from the "
            "archive; state from its newest exact snapshot)");
  o.add()("from", po::value<std::string>(), "the archive: s3://BUCKET/PREFIX")(
      "s3-endpoint", po::value<std::string>()->default_value(""),
      "the S3 endpoint URL (else AWS_ENDPOINT_URL, else AWS's regional endpoint)")(
      "archive-key", po::value<std::string>(), "a key file from `archive key export`: DIR is made new from it")(
      "at", po::value<std::string>(),
      "a detached restore as of this ISO-8601 time: state and log show that time, and it does not write")(
      "attach", "make a detached restore (--at) a member that writes again, and do nothing else")(
      "replay-all", "fold every update instead of starting from the newest exact snapshot (slower; the snapshots "
                    "are then checked against the replay)");
  o.add_lock_wait(DataDir::kCommandLockTimeoutMs);
  if (!o.parse(args)) return 0;
  if (o.has("attach")) return restore_attach(o);
  if (!o.has("from")) throw CommandError("restore needs --from s3://BUCKET/PREFIX");
  std::optional<int64_t> at;
  if (o.has("at")) at = unwrap(parse_iso8601(o.get<std::string>("at"))).to_millis();
  auto bucket = open_bucket(o, "from");
  // Before anything is made: the archive must be reachable and hold something.
  if (unwrap(archive::origins_in_bucket(*bucket)).empty())
    throw CommandError(o.get<std::string>("from") + " holds no segments (a wrong bucket or prefix?)");
  engine::NodeOptions no = o.node_options();
  archive::Keyring keys;
  if (o.has("archive-key")) {
    auto file = unwrap(open_key_file(read_file(o.get<std::string>("archive-key")), passphrase(false)));
    make_restore_dir(no.dir, file);
    keys = file.keys;
  } else {
    keys = current_keys(o, *bucket);
  }
  no.is_member = members_of(no.dir);
  no.attach = true;
  no.defer_fold = true;  // folded once, at the end: from a snapshot when one fits
  auto node = open_writer_offline(o, "restore", no);
  SystemClock clock;
  Progress progress(o.json());
  ArchiveOptions ao;
  ao.on_progress = [&](const ArchiveCounters& c) { progress.show(c); };
  Archiver archiver(*node, *bucket, keys, clock, ao);
  Restored r;
  r.pulled = archiver.pull(/*sweep_all=*/true);
  progress.done();
  r.status = archiver.status();
  if (r.pulled && r.status.damaged.empty() && !o.has("replay-all"))
    r.snapshot = unwrap(adopt_snapshot(*bucket, keys, *node, no.is_member, at));
  r.snapshot_problems = check_snapshots(*bucket, keys, *node, no.is_member);
  r.hash = node->state_hash();
  check(node->close());
  node.reset();
  if (at) {
    check(Env::posix().write_file(DataDir(no.dir).detached_file(), std::to_string(*at) + "\n", 0600));
    r.at_hash = open_reader(o, at)->state_hash();
  }
  print_restored(o, r, at);
  if (r.pulled && r.status.damaged.empty() && Env::posix().file_exists(restoring_file(no.dir)))
    check(Env::posix().remove_file(restoring_file(no.dir)));
  int damaged = report_damage(r.status);
  for (const auto& p : r.snapshot.passed) std::fprintf(stderr, "not started from: %s\n", p.c_str());
  for (const auto& p : r.snapshot_problems) std::fprintf(stderr, "not used: %s\n", p.c_str());
  check(r.pulled);
  return damaged || !r.snapshot_problems.empty() ? 1 : 0;
}

int cmd_archive(const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "--help" : args[0];
  const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (sub == "push") return archive_push(rest);
  if (sub == "pull") return archive_pull(rest);
  if (sub == "status") return archive_status(rest);
  if (sub == "verify") return archive_verify(rest);
  if (sub == "key") return archive_key(rest);
  if (sub == "compact") return archive_compact(rest);
  if (sub == "--help" || sub == "-h") {
    std::cout << "usage: replog archive push|pull|status|verify|key export ...   (each has --help)\n"
                 "  push     upload what the archive lacks of this node's log\n"
                 "  pull     take every segment this node lacks\n"
                 "  status   what the archive holds, by origin, beside what this node holds\n"
                 "  verify   open every segment and prove its chain and head (non-zero on a problem)\n"
                 "  compact  merge segments, write a signed snapshot, apply retention (safe from cron)\n"
                 "  key export FILE   the archive key sealed under a passphrase, for disaster recovery\n"
                 "  key rotate        a new archive key for the devices trusted now (after a revocation)\n";
    return 0;
  }
  throw CommandError("unknown archive command " + sub + " (push, pull, status, verify, compact, key export)");
}

}  // namespace replog::cli
