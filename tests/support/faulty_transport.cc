#include "support/faulty_transport.h"

#include <algorithm>

namespace replog::testing {

bool FaultyTransport::deliver(const Frame& f) {
  if (cut_.count(f.link.key)) {
    ++counts_.cut;
    return false;
  }
  inner_.send(f.link, f.bytes);
  ++sent_;
  return true;
}

void FaultyTransport::pass_on(const Frame& f) {
  if (hold_) kept_.push_back(f);
  else deliver(f);
}

size_t FaultyTransport::release() {
  std::vector<Frame> out;
  out.swap(kept_);
  size_t delivered = 0;
  for (const auto& f : out) delivered += deliver(f) ? 1 : 0;
  return delivered;
}

bool FaultyTransport::release_one() {
  if (kept_.empty()) return false;
  Frame f = std::move(kept_.front());
  kept_.erase(kept_.begin());
  return deliver(f);
}

void FaultyTransport::send(const Link& link, const std::string& bytes) {
  if (auto type = wire::type_of(bytes)) {
    ++counts_.frames[*type];
    counts_.bytes[*type] += bytes.size();
  } else {
    ++counts_.unreadable;
  }
  if (chance(faults_.drop)) {
    ++counts_.dropped;
    return;
  }
  const int copies = chance(faults_.duplicate) ? 2 : 1;
  if (copies == 2) ++counts_.duplicated;
  for (int i = 0; i < copies; ++i) {
    const int64_t delay =
        faults_.max_delay_ms > 0 ? std::uniform_int_distribution<int64_t>(0, faults_.max_delay_ms)(rng_) : 0;
    const bool behind = chance(faults_.reorder);
    if (delay == 0 && !behind) {
      pass_on(Frame{link, bytes});
      continue;
    }
    if (delay > 0) ++counts_.delayed;
    if (behind) ++counts_.reordered;
    delayed_.push_back({clock_.now_millis() + delay, behind, sent_, Frame{link, bytes}});
  }
  send_due(false);
}

void FaultyTransport::send_due(bool polling) {
  const int64_t now = clock_.now_millis();
  std::stable_sort(delayed_.begin(), delayed_.end(),
                   [](const Delayed& a, const Delayed& b) { return a.due_ms < b.due_ms; });
  std::vector<Delayed> keep;
  for (auto& h : delayed_) {
    bool go = h.due_ms <= now && (!h.behind || polling || sent_ > h.sent_at);
    if (go) pass_on(h.frame);
    else keep.push_back(std::move(h));
  }
  delayed_.swap(keep);
}

std::vector<Frame> FaultyTransport::poll(int timeout_ms) {
  send_due(true);
  std::vector<Frame> in = inner_.poll(timeout_ms);
  std::erase_if(in, [&](const Frame& f) {
    if (!cut_.count(f.link.key)) return false;
    ++counts_.cut;
    return true;
  });
  for (const auto& f : in) {
    if (auto type = wire::type_of(f.bytes)) {
      ++counts_.frames_in[*type];
      counts_.bytes_in[*type] += f.bytes.size();
    }
  }
  return in;
}

}  // namespace replog::testing
