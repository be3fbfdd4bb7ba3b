// Transport: how frames reach peers (docs/ARCHITECTURE.md "Replication"), behind an interface so
// that the sync logic holds no socket and a whole cluster can later run in one
// process over a simulated network.
//
// A link is either outgoing (this node connected to a peer's endpoint: its own
// requests and pushes go there, answers come back on it) or incoming (a peer
// connected to this node's listening socket: its requests arrive there and are
// answered on the same link).
//
// Thread safety: one thread (the node's event loop) uses a Transport.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "replog/status.h"

namespace replog {

struct Link {
  bool outgoing = true;
  std::string key;  // outgoing: the peer's endpoint; incoming: the connection's routing id
  bool operator<(const Link& o) const { return outgoing != o.outgoing ? outgoing < o.outgoing : key < o.key; }
  bool operator==(const Link& o) const = default;
};

struct Frame {
  Link link;
  std::string bytes;
  // Who sent it, as the transport authenticated it: the sender's device key
  // (Ed25519, 32 bytes). Empty on a transport that authenticates no one
  // (--insecure, the simulator); the engine then goes by the Hello's node id.
  std::string peer_key = {};
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Opens an outgoing link; it connects (and reconnects) by itself. Fails
  // (and opens nothing) when the endpoint cannot be used.
  virtual Status connect(const std::string& endpoint) = 0;
  // Opens an outgoing link to the device whose key is `peer_key` (Ed25519,
  // 32 bytes): only that device can answer on it, and its frames carry the
  // key. A transport that authenticates no one refuses a key.
  virtual Status connect_to(const std::string& endpoint, const std::string& peer_key) {
    if (!peer_key.empty()) return Status::invalid_argument("this transport cannot authenticate peers");
    return connect(endpoint);
  }
  // Closes an outgoing link (nothing when there is none).
  virtual void disconnect(const std::string& endpoint) = 0;
  // Sends one frame; dropped silently when the link is not connected or its
  // queue is full (the sync protocol repairs losses).
  virtual void send(const Link& link, const std::string& bytes) = 0;
  // Waits up to timeout_ms for frames and returns what arrived (maybe nothing).
  virtual std::vector<Frame> poll(int timeout_ms) = 0;
  // Makes a poll() that is waiting return at once, or the next one if none
  // is. Any thread may call it. The default wakes nothing (a transport whose
  // owner polls without waiting).
  virtual void wake() {}
};

}  // namespace replog
