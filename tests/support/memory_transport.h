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
// Secure links, a model of CURVE with a ZAP handler (PROTOCOL.md §7): a
// transport may have an identity, a device key and whom it trusts. Then
// connect_to() names the key expected of the link's server, and
//   - a frame on an outgoing link reaches the server only when both ends are
//     keyed alike (a keyed and an unkeyed end never talk, as CURVE and NULL
//     never do), the server has the expected key, and it trusts the sender;
//   - an answer on an incoming link reaches the dialler only while the server
//     still trusts it and the dialler's link expects the server's key;
//   - every frame carries its sender's key (Frame::peer_key);
//   - a frame from a device the receiver has stopped trusting since it
//     arrived is dropped at poll() (its connection is closed, with it).
// The server counts what it refused (handshakes_refused(), per frame: there
// are no connections here). Without identities nothing of this applies.
//
// Thread safety: none; one thread drives the whole network.
#pragma once

#include <deque>
#include <functional>
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

// Who a transport is on a secure network. An empty key: it authenticates no one.
struct MemoryIdentity {
  std::string key;  // the device key (32 bytes)
  std::function<bool(const std::string& key)> trusts;  // asked at every delivery; unset: nobody
};

class MemoryTransport final : public Transport {
 public:
  // Joins `net` as `endpoint`. REQUIRES: the endpoint is not taken.
  MemoryTransport(MemoryNetwork& net, std::string endpoint, MemoryIdentity identity = {});
  ~MemoryTransport() override;

  // REQUIRES: no link is open yet.
  void set_identity(MemoryIdentity identity) { identity_ = std::move(identity); }

  Status connect(const std::string& endpoint) override { return connect_to(endpoint, ""); }
  // As ZmqTransport: a keyed transport needs the server's key, an unkeyed one
  // refuses one. A link that exists is kept as it is.
  Status connect_to(const std::string& endpoint, const std::string& peer_key) override;
  void disconnect(const std::string& endpoint) override { links_.erase(endpoint); }
  void send(const Link& link, const std::string& bytes) override;
  std::vector<Frame> poll(int timeout_ms) override;

  const std::string& endpoint() const { return endpoint_; }
  const std::string& key() const { return identity_.key; }
  // Whether an outgoing link to `endpoint` was opened.
  bool linked(const std::string& endpoint) const { return links_.count(endpoint) > 0; }
  size_t links() const { return links_.size(); }
  // Puts a frame in this transport's inbox as if `link` had sent it (a hostile peer).
  void inject(const Link& link, std::string bytes, std::string peer_key = {}) {
    inbox_.push_back({link, std::move(bytes), std::move(peer_key)});
  }
  size_t pending() const { return inbox_.size(); }
  // Frames this end, as a link's server, did not let through (see above).
  uint64_t handshakes_refused() const { return handshakes_refused_; }

 private:
  bool keyed() const { return !identity_.key.empty(); }
  bool trusts(const std::string& key) const { return identity_.trusts && identity_.trusts(key); }
  // Whether this end, as the server of a link from `client` whose expected
  // key is `*expected` (null: the client has no such link), lets it talk.
  bool serves(const MemoryTransport& client, const std::string* expected) const;
  const std::string* expected_of(const std::string& endpoint) const;

  MemoryNetwork& net_;
  std::string endpoint_;
  MemoryIdentity identity_;
  std::map<std::string, std::string> links_;  // outgoing: endpoint -> the server key expected
  std::deque<Frame> inbox_;
  uint64_t handshakes_refused_ = 0;
};

}  // namespace replog::testing
