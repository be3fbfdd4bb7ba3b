// ChangeFeed (include/replog/changes.h): a bounded queue of changes.
#include "replog/changes.h"

namespace replog {

const char* change_kind_name(Change::Kind kind) {
  switch (kind) {
    case Change::Kind::kApplied: return "applied";
    case Change::Kind::kConflict: return "conflict";
    case Change::Kind::kRolledBack: return "rolled-back";
    case Change::Kind::kReloaded: return "reloaded";
  }
  return "?";
}

std::optional<Change> ChangeFeed::next(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> l(mu_);
  if (!cv_.wait_for(l, wait, [&] { return !queue_.empty() || closed_; }) || queue_.empty()) return std::nullopt;
  Change c = std::move(queue_.front());
  queue_.pop_front();
  return c;
}

std::vector<Change> ChangeFeed::take_all() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Change> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

bool ChangeFeed::closed() const {
  std::lock_guard<std::mutex> l(mu_);
  return closed_;
}

void ChangeFeed::push(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return;
    if (queue_.size() + changes.size() > capacity_) {
      // The consumer fell behind: what it missed is summed up as "read everything again".
      queue_.clear();
      queue_.push_back(Change{Change::Kind::kReloaded, {}, {}, {}, {}});
    } else {
      queue_.insert(queue_.end(), changes.begin(), changes.end());
    }
  }
  cv_.notify_all();
}

void ChangeFeed::close() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace replog
