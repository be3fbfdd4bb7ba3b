// ZmqTransport: the Transport over ZeroMQ (PROTOCOL.md "Transport"). One ROUTER bound to
// the listening endpoint for incoming links; one DEALER per outgoing link.
// Every socket has ZMQ_MAXMSGSIZE above the agreed frame size, ZMQ_IMMEDIATE
// on (nothing queues for a peer that is not connected), heartbeats (a dead peer
// is noticed), and a bounded LINGER.
//
// Thread safety: one thread.
#pragma once

#include <map>
#include <memory>
#include <zmq.hpp>

#include "node/sync/transport.h"
#include "protocol/wire.h"
#include "replog/status.h"

namespace replog {

class ZmqTransport final : public Transport {
 public:
  explicit ZmqTransport(zmq::context_t& context);
  // Binds the ROUTER. tcp://IP:0 picks a port; bound_endpoint() tells which.
  Status listen(const std::string& endpoint);
  std::string bound_endpoint() const { return bound_; }

  Status connect(const std::string& endpoint) override;
  void disconnect(const std::string& endpoint) override;
  void send(const Link& link, const std::string& bytes) override;
  std::vector<Frame> poll(int timeout_ms) override;

  // Frames dropped: sends that found no connected peer or a full queue, and
  // malformed incoming messages.
  uint64_t dropped_frames() const { return dropped_; }
  // The sends among them, by message type (unreadable frames are not listed).
  const std::map<wire::Type, uint64_t>& dropped_sends() const { return dropped_sends_; }

 private:
  void configure(zmq::socket_t& s);
  zmq::context_t& context_;
  std::unique_ptr<zmq::socket_t> router_;
  std::map<std::string, zmq::socket_t> dealers_;
  std::string bound_;
  uint64_t dropped_ = 0;
  std::map<wire::Type, uint64_t> dropped_sends_;
};

}  // namespace replog
