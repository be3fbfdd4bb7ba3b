#include "sim/archive.h"

#include <filesystem>

#include "node/api/verify.h"
#include "node/archive/archive_check.h"
#include "node/archive/compact.h"
#include "node/archive/snapshots.h"
#include "protocol/bytes.h"

namespace replog::sim {

namespace {
constexpr int kPushEvery = 4;   // steps between a node's pushes
constexpr int kPollEvery = 10;  // steps between a node's polls
}  // namespace

SimArchive::SimArchive(Cluster& cluster, std::mt19937_64& rng, Trace& trace)
    : cluster_(cluster),
      rng_(rng),
      trace_(trace),
      keys_{archive::ArchiveKey::from_bytes(std::string(32, '\x33')).value()} {
  bucket_.set_fault([this](std::string_view op, const std::string& key) { return fault(op, key); });
  bucket_.set_fault_after_put([this](std::string_view, const std::string& key) { return cut_off(key); });
}

Status SimArchive::fault(std::string_view op, const std::string& key) {
  if (down_) return Status::io_error("S3 " + std::string(op) + ": connection refused (outage)");
  if (!faulty_) return Status::ok();
  if (chance(0.02)) {
    ++counts_["archive: 500"];
    return Status::io_error("S3 " + std::string(op) + " \"" + key + "\": HTTP 500 InternalError");
  }
  if (op == "get" && chance(0.02)) {
    ++counts_["archive: 404 after a listing"];
    return Status::not_found("S3 GET \"" + key + "\": HTTP 404 NoSuchKey");
  }
  return Status::ok();
}

// Cut off after the bucket stored it: the object is there, the client saw an error.
Status SimArchive::cut_off(const std::string& key) {
  if (!faulty_ || !chance(0.02)) return Status::ok();
  ++counts_["archive: cut-off upload"];
  return Status::io_error("S3 PUT \"" + key + "\": connection reset");
}

// A status for the trace, without the run's temporary directory: one seed, one trace.
std::string SimArchive::without_dirs(const Status& s) const {
  std::string m = s.message();
  const std::string root = std::filesystem::path(cluster_.nodes().front().dir).parent_path().string();
  for (size_t at; !root.empty() && (at = m.find(root)) != std::string::npos;) m.replace(at, root.size(), "DIR");
  return m;
}

Archiver* SimArchive::archiver_of(SimNode& n, int64_t grace_ms) {
  Slot& s = slots_[n.index];
  if (s.opened != n.opened || !s.archiver) {
    ArchiveOptions o;
    o.grace_ms = grace_ms;
    s.archiver = std::make_unique<Archiver>(*n.node, bucket_, keys_, *n.clock, o);
    s.opened = n.opened;
  }
  return s.archiver.get();
}

void SimArchive::compact(SimNode& n) {
  CompactReport r;
  Status s = compact_archive(*n.node, bucket_, keys_, n.secret, *n.clock, {}, r);
  ++counts_["archive: compact"];
  trace_.line("archive: n" + std::to_string(n.index) + " compacts: " + (s ? "ok" : without_dirs(s)) + ", merged " +
              std::to_string(r.merged.merged) + ", deleted " + std::to_string(r.merged.deleted));
}

// A fresh node restores from the bucket mid-run, faults and all; what it made is verified.
void SimArchive::restore_now(int index) {
  ++counts_["archive: restore"];
  const std::string dir = std::filesystem::path(cluster_.nodes().front().dir).parent_path().string() +
                          "/restore-" + std::to_string(index);
  if (Status s = engine::Node::init({dir, cluster_.cluster_id(), std::nullopt, nullptr}); !s) {
    problems_.push_back("archive: restore at step " + std::to_string(index) + ": " + without_dirs(s));
    return;
  }
  std::string line = "archive: restore at step " + std::to_string(index) + ": ";
  {
    engine::NodeOptions o;
    o.dir = dir;
    o.defer_fold = true;
    auto node = engine::Node::open(o);
    if (!node) {
      problems_.push_back(line + without_dirs(node.status()));
      return;
    }
    SystemClock clock;
    Archiver reader(**node, bucket_, keys_, clock, {});
    Status pulled = reader.pull(true);
    auto adopted = adopt_snapshot(bucket_, keys_, **node, nullptr, std::nullopt);
    line += (pulled ? "pulled " : "pull stopped (" + without_dirs(pulled) + "), ") +
            std::to_string(reader.status().counters.updates_stored) + " updates; " +
            (!adopted ? "no snapshot (" + without_dirs(adopted.status()) + ")"
                      : adopted->key.empty() ? "no snapshot fits" : "from a snapshot");
    (void)(*node)->state_hash();
    if (Status s = (*node)->close(); !s) problems_.push_back(line + ": close: " + without_dirs(s));
  }
  auto report = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  if (!report) problems_.push_back(line + ": verify: " + without_dirs(report.status()));
  else
    for (const auto& p : report->problems) problems_.push_back(line + ": verify: " + p);
  trace_.line(line);
  std::filesystem::remove_all(dir);
}

void SimArchive::step(int index) {
  if (!down_ && chance(0.004)) {
    down_ = true;
    outage_until_ = index + 20 + static_cast<int>(rng_() % 100);
    ++counts_["archive: outage"];
    trace_.line("archive: outage until step " + std::to_string(outage_until_));
  } else if (down_ && index >= outage_until_) {
    down_ = false;
    trace_.line("archive: back");
  }
  for (SimNode& n : cluster_.nodes()) {
    if (!n.up()) {
      slots_.erase(n.index);  // a crash loses what the archiver knew
      continue;
    }
    Archiver* a = archiver_of(n, 200);
    // A slow bucket: one request of this node's archiver hangs for a while, so
    // it neither pushes nor polls meanwhile (its thread waits; the node goes on).
    Slot& slot = slots_[n.index];
    if (faulty_ && slot.busy_until < index && chance(0.004)) {
      slot.busy_until = index + 5 + static_cast<int>(rng_() % 60);
      ++counts_["archive: slow request"];
      trace_.line("archive: n" + std::to_string(n.index) + " waits on a slow request until step " +
                  std::to_string(slot.busy_until));
    }
    if (slot.busy_until >= index) continue;
    if ((index + n.index) % kPushEvery == 0) {
      Status s = a->push();
      if (!s) trace_.line("archive: n" + std::to_string(n.index) + " push: " + without_dirs(s));
    }
    if ((index + 3 * n.index) % kPollEvery == 0) {
      Status s = a->pull();
      if (!s) trace_.line("archive: n" + std::to_string(n.index) + " pull: " + without_dirs(s));
    }
  }
  if (chance(0.01)) {
    SimNode& n = cluster_.nodes()[rng_() % cluster_.nodes().size()];
    if (n.up()) compact(n);
  }
  if (chance(0.004)) restore_now(index);
}

void SimArchive::heal() {
  down_ = false;
  faulty_ = false;
}

std::vector<std::string> SimArchive::check_restore(const std::string& tmp_dir) {
  std::vector<std::string> problems = problems_;
  slots_.clear();  // fresh archivers: every origin is uploaded now (no grace)
  for (SimNode& n : cluster_.nodes()) {
    Status s = archiver_of(n, 0)->push();
    if (!s) problems.push_back("archive: n" + std::to_string(n.index) + " cannot push after healing: " + s.message());
  }
  CheckOptions co;
  co.cluster = cluster_.cluster_id();
  auto check = check_archive(bucket_, keys_, co);
  if (!check) problems.push_back("archive: check failed: " + check.status().message());
  else
    for (const auto& p : check->problems) problems.push_back("archive: " + p);
  const std::string dir = tmp_dir + "/restore";
  if (Status s = engine::Node::init({dir, cluster_.cluster_id(), std::nullopt, nullptr}); !s)
    return {"archive: restore dir: " + s.message()};
  engine::NodeOptions o;
  o.dir = dir;
  o.defer_fold = true;  // as `replog restore`: folded once, from a snapshot when one is exact
  auto restored = engine::Node::open(o);
  if (!restored) return {"archive: restore open: " + restored.status().message()};
  SystemClock clock;
  Archiver reader(**restored, bucket_, keys_, clock, {});
  if (Status s = reader.pull(true); !s) problems.push_back("archive: restore: " + s.message());
  for (const auto& [key, why] : reader.status().damaged) problems.push_back("archive: restore: " + key + ": " + why);
  auto adopted = adopt_snapshot(bucket_, keys_, **restored, nullptr, std::nullopt);
  if (!adopted) problems.push_back("archive: restore from a snapshot: " + adopted.status().message());
  else
    trace_.line(adopted->key.empty() ? "archive: restore folds every update (" +
                                           std::to_string(adopted->passed.size()) + " snapshots passed over)"
                                     : "archive: restore starts from a snapshot; " +
                                           std::to_string(adopted->updates_after) + " updates after it");
  // Updates that reached only the bucket (a node's, uploaded before its
  // directory was copied over) are the archive's to give: every node takes
  // the bucket in too before the states are compared.
  for (SimNode& n : cluster_.nodes())
    if (Status s = archiver_of(n, 0)->pull(true); !s)
      trace_.line("archive: n" + std::to_string(n.index) + " pulls after healing: " + s.message());
  const std::string want = cluster_.nodes().front().node->state_hash();
  for (const SimNode& n : cluster_.nodes())
    if (n.node->state_hash() != want)
      problems.push_back("archive: after taking the bucket in, n" + std::to_string(n.index) + " is not n0's state");
  if ((*restored)->state_hash() != want) {
    problems.push_back("archive: the restored state " + (*restored)->state_hash().substr(0, 16) +
                       " is not the cluster's " + want.substr(0, 16));
    std::string held = "archive: the restored node holds";
    for (const auto& [origin, seq] : (*restored)->vector()) held += " " + hex16(origin) + ":" + std::to_string(seq);
    held += "; fork evidence";
    for (const auto& [origin, seq] : (*restored)->info().fork_evidence) held += " " + hex16(origin) + ":" + std::to_string(seq);
    trace_.line(held);
  }
  trace_.line("archive: restored " + std::to_string(reader.status().counters.updates_stored) + " updates, state " +
              (*restored)->state_hash().substr(0, 16) + "; " + std::to_string(bucket_.objects().size()) + " objects");
  (void)(*restored)->close();
  return problems;
}

}  // namespace replog::sim
