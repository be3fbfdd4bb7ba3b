// MemoryTransport: the Transport in memory, for whole clusters in one thread
// (tests, the simulator, the benchmarks' logic checks). Endpoints are any
// strings; peers connect to each other's by name through a MemoryNetwork,
// which can also cut a direction of a link.
//
// A frame sent on an outgoing link arrives at the peer as an incoming frame
// whose routing id is the sender's endpoint; an answer on that incoming link
// arrives back on the sender's outgoing link. Delivery is in order and
// immediate (put in the receiver's inbox); FaultyTransport adds the faults.
//
// Thread safety: none; one thread drives the whole network.
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "node/sync/transport.h"

namespace replog::testing {

class MemoryTransport;

class MemoryNetwork {
 public:
  // Frames from `from` to `to` are lost while the cut holds.
  void cut(const std::string& from, const std::string& to) { cut_.insert({from, to}); }
  void cut_both(const std::string& a, const std::string& b) {
    cut(a, b);
    cut(b, a);
  }
  void heal() { cut_.clear(); }
  bool blocked(const std::string& from, const std::string& to) const { return cut_.count({from, to}) > 0; }

 private:
  friend class MemoryTransport;
  std::map<std::string, MemoryTransport*> nodes_;
  std::set<std::pair<std::string, std::string>> cut_;
};

class MemoryTransport final : public Transport {
 public:
  // Joins `net` as `endpoint`. REQUIRES: the endpoint is not taken.
  MemoryTransport(MemoryNetwork& net, std::string endpoint);
  ~MemoryTransport() override;

  Status connect(const std::string& endpoint) override;
  void disconnect(const std::string& endpoint) override { links_.erase(endpoint); }
  void send(const Link& link, const std::string& bytes) override;
  std::vector<Frame> poll(int timeout_ms) override;

  const std::string& endpoint() const { return endpoint_; }
  // Whether an outgoing link to `endpoint` was opened.
  bool linked(const std::string& endpoint) const { return links_.count(endpoint) > 0; }
  size_t links() const { return links_.size(); }
  // Puts a frame in this transport's inbox as if `link` had sent it (a hostile peer).
  void inject(const Link& link, std::string bytes) { inbox_.push_back({link, std::move(bytes)}); }
  size_t pending() const { return inbox_.size(); }

 private:
  MemoryNetwork& net_;
  std::string endpoint_;
  std::set<std::string> links_;
  std::deque<Frame> inbox_;
};

}  // namespace replog::testing
