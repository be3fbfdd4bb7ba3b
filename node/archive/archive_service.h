// ArchiveService: the Archiver on a thread of its own inside `replog node
// --archive` (docs/ARCHIVE.md "The node"). S3 requests block for as long as
// the network takes, so they never run on the event loop or the writer.
//
// It pushes as soon as a commit wakes it (a call's update is uploaded at
// once, one segment per commit under light load, a batch under heavy load),
// and polls the archive every poll interval. Failures (the bucket down, a
// 500) are kept in status and retried with backoff capped at the poll
// interval; nothing a bucket does stops the node or its writes.
//
// Thread safety: wake() from any thread (the commit listener); status() from
// any thread; start() and stop() from the owner's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "node/archive/archiver.h"
#include "replog/value.h"

namespace replog {

struct ArchiveServiceOptions {
  ArchiveOptions archiver;
  int64_t poll_ms = 2000;
  int64_t push_delay_ms = 50;  // commits within this time go into one segment
};

class ArchiveService {
 public:
  ArchiveService(SyncStore& store, std::unique_ptr<ObjectStore> bucket, archive::Keyring keys, const Clock& clock,
                 ArchiveServiceOptions options, std::function<void(int, const std::string&)> log);
  ~ArchiveService();  // stop()

  void start();
  void stop();
  void wake();
  // For `replog status`: lag, last poll and push, errors, damage, counters,
  // and the origin that pins the stable cut (the one whose newest update is
  // oldest: an idle device; retire or revoke it).
  Map status() const;

 private:
  void run();

  SyncStore& store_;
  std::unique_ptr<ObjectStore> bucket_;
  Archiver archiver_;
  const Clock& clock_;
  ArchiveServiceOptions options_;
  std::function<void(int, const std::string&)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false, stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace replog
