#include "node/archive/archive_service.h"

#include <algorithm>
#include <chrono>
#include <tuple>

#include "protocol/bytes.h"

namespace replog {

ArchiveService::ArchiveService(SyncStore& store, std::unique_ptr<ObjectStore> bucket, archive::Keyring keys,
                               const Clock& clock, ArchiveServiceOptions options,
                               std::function<void(int, const std::string&)> log)
    : store_(store),
      bucket_(std::move(bucket)),
      archiver_(store, *bucket_, std::move(keys), clock, options.archiver),
      clock_(clock),
      options_(std::move(options)),
      log_(std::move(log)) {}

ArchiveService::~ArchiveService() { stop(); }

void ArchiveService::start() { thread_ = std::thread([this] { run(); }); }

void ArchiveService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ArchiveService::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ArchiveService::run() {
  using std::chrono::milliseconds;
  int64_t next_poll = 0;
  int failures = 0;
  std::string last_error;
  for (;;) {
    const int64_t now = clock_.now_millis();
    Status pushed = archiver_.push();
    Status pulled = Status::ok();
    if (now >= next_poll) {
      pulled = archiver_.pull();
      next_poll = now + options_.poll_ms;
    }
    const Status& outcome = !pushed ? pushed : pulled;  // the first failure, else ok
    failures = outcome ? 0 : failures + 1;
    if (!outcome && outcome.message() != last_error) log_(1, "archive: " + outcome.message());
    if (outcome && !last_error.empty()) log_(2, "archive: working again");
    last_error = outcome ? "" : outcome.message();
    // After a failure, wait 0.25 s, 0.5 s, 1 s ... up to the poll interval before the next try.
    const int64_t wait = failures == 0 ? options_.poll_ms
                                       : std::min<int64_t>(options_.poll_ms, int64_t{250} << std::min(failures - 1, 8));
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, milliseconds(std::max<int64_t>(0, std::min(wait, next_poll - clock_.now_millis()))),
                 [&] { return stopping_ || (woken_ && failures == 0); });
    if (stopping_) return;
    if (woken_) {
      woken_ = false;
      lock.unlock();
      // Let the commits of one burst land, so they go up as one segment.
      std::this_thread::sleep_for(milliseconds(options_.push_delay_ms));
    }
  }
}

Map ArchiveService::status() const {
  const ArchiveStatus s = archiver_.status();
  const int64_t now = clock_.now_millis();
  Map damaged;
  for (const auto& [key, why] : s.damaged) damaged[key] = Value(why);
  Map archived;
  for (const auto& [origin, seq] : s.archived) archived[hex16(origin)] = Value(static_cast<int64_t>(seq));
  const auto& c = s.counters;
  auto i = [](uint64_t v) { return Value(static_cast<int64_t>(v)); };
  // The stable cut: no origin has written since its newest update's time, so
  // nothing at or below it can still arrive from an origin that keeps its clock.
  OriginId pinned_by = 0;
  int64_t stable_cut_ms = 0;
  for (const auto& [origin, seq] : store_.vector()) {
    auto newest = store_.read_range(origin, seq, 1, 1);
    if (!newest || newest->updates.empty()) continue;
    const int64_t ms = static_cast<int64_t>(newest->updates.front().id().hlc >> 16);
    if (!pinned_by || ms < stable_cut_ms) std::tie(pinned_by, stable_cut_ms) = std::tie(origin, ms);
  }
  return Map{{"pinned_by", Value(pinned_by ? hex16(pinned_by) : std::string())},
             {"stable_cut_ms", Value(stable_cut_ms)},{"lag_updates", i(s.lag_updates)},
             {"lag_age_ms", Value(s.lag_since_ms ? now - s.lag_since_ms : int64_t{0})},
             {"last_push_ms", Value(s.last_push_ms)},
             {"last_poll_ms", Value(s.last_poll_ms)},
             {"last_error", Value(s.last_error)},
             {"damaged", Value(std::move(damaged))},
             {"archived", Value(std::move(archived))},
             {"segments_put", i(c.segments_put)},
             {"updates_put", i(c.updates_put)},
             {"segments_got", i(c.segments_got)},
             {"updates_stored", i(c.updates_stored)},
             {"requests", i(c.requests)}};
}

}  // namespace replog
