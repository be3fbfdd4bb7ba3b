#include "node/engine/side_thread.h"

#include <chrono>

namespace replog::engine {

SideThread::~SideThread() {
  if (!thread_.joinable()) return;
  finish();
  stopping_.store(true, std::memory_order_release);
  posted_.fetch_add(1, std::memory_order_release);
  posted_.notify_one();
  thread_.join();
}

void SideThread::start(std::function<void()> job) {
  std::call_once(started_, [this] { thread_ = std::thread([this] { loop(); }); });
  job_ = std::move(job);
  state_.store(kPosted, std::memory_order_release);
  posted_.fetch_add(1, std::memory_order_release);
  posted_.notify_one();
}

void SideThread::finish() {
  int s = kPosted;
  if (state_.compare_exchange_strong(s, kTaken, std::memory_order_acq_rel)) {
    job_();  // not begun yet: run it here
    job_ = nullptr;
    state_.store(kIdle, std::memory_order_relaxed);
    return;
  }
  if (s == kIdle) return;
  // Begun on the side thread. Most jobs are short (a signature is about
  // 20 µs), so look a few times before sleeping: a sleep and wake-up cost
  // about as much. A long one (a fold) is waited for asleep.
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(30);
  while (s != kDone && std::chrono::steady_clock::now() < spin_until) s = state_.load(std::memory_order_acquire);
  while (s != kDone) {
    state_.wait(s, std::memory_order_acquire);
    s = state_.load(std::memory_order_acquire);
  }
  state_.store(kIdle, std::memory_order_relaxed);
}

void SideThread::loop() {
  uint64_t seen = 0;
  for (;;) {
    posted_.wait(seen, std::memory_order_acquire);
    seen = posted_.load(std::memory_order_acquire);
    if (stopping_.load(std::memory_order_acquire)) return;
    int s = kPosted;
    if (!state_.compare_exchange_strong(s, kTaken, std::memory_order_acq_rel)) continue;  // the caller took it
    job_();
    job_ = nullptr;
    state_.store(kDone, std::memory_order_release);
    state_.notify_one();
  }
}

}  // namespace replog::engine
