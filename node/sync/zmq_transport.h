// ZmqTransport: the Transport over ZeroMQ (PROTOCOL.md "Transport"). One ROUTER bound to
// the listening endpoint for incoming links; one DEALER per outgoing link.
// Every socket has ZMQ_MAXMSGSIZE above the agreed frame size, ZMQ_IMMEDIATE
// on (nothing queues for a peer that is not connected), heartbeats (a dead peer
// is noticed), and a bounded LINGER.
//
// Secure (PROTOCOL.md "Security"): every socket uses CURVE with the node's key
// pair. The ROUTER is a CURVE server whose handshakes a ZAP handler decides
// (RFC 27), served on this transport's own context from poll(): a client is
// admitted only when `admit` names a trusted device for its key, and every
// frame from it carries that device's key. A DEALER is a CURVE client that
// accepts only the server key of the device it dials. Without security (the
// NULL mechanism, --insecure) frames carry no key.
//
// Joiners (PROTOCOL.md §7, invites): while `joining` says yes, a key no trusted
// device has is admitted too, as a joiner. Its frames never come out of
// poll(): they are kept apart for take_join_frames(), so nothing a joiner
// sends reaches the sync engine, whatever it sends and whenever it is trusted.
// close_joiners() cuts every joiner's connection.
//
// Thread safety: one thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "node/sync/transport.h"
#include "protocol/wire.h"
#include "replog/status.h"
#include "storage/identity.h"

namespace replog {

struct TransportSecurity {
  CurveKeyPair keys;  // this node's X25519 pair (Identity::curve_keys)
  // The trusted device key (Ed25519) whose X25519 form is `curve_key`, or
  // nothing when no trusted device has it. Asked at every handshake.
  std::function<std::optional<std::string>(std::string_view curve_key)> admit;
  // Whether a key that `admit` refuses is admitted as a joiner now (an invite
  // is open). Unset: never. Asked at every handshake `admit` refuses.
  std::function<bool()> joining = {};
};

// A frame from a joiner's connection: never a sync frame.
struct JoinFrame {
  Link link;              // incoming, by routing id: answers go back on it
  std::string bytes;
  std::string curve_key;  // the X25519 key CURVE authenticated (32 bytes)
};

struct TransportCounters {
  uint64_t dropped = 0;               // sends that found no peer or a full queue, malformed messages
  uint64_t handshakes_refused = 0;    // ZAP said no: a key that is not trusted
  uint64_t unroutable = 0;            // sends to an incoming link that is gone (ZMQ_ROUTER_MANDATORY)
  uint64_t rebinds = 0;               // the ROUTER re-bound to close a removed device's connections
  uint64_t joiners_admitted = 0;      // handshakes admitted as joiners (an invite was open)
  uint64_t joiner_frames_dropped = 0; // joiners' frames beyond what take_join_frames() had taken
};

class ZmqTransport final : public Transport {
 public:
  // Insecure: the NULL mechanism on every socket.
  explicit ZmqTransport(zmq::context_t& context);
  // Secure: CURVE on every socket, handshakes decided by `security.admit`.
  // `context` must serve no other CURVE server (the ZAP handler is per context).
  ZmqTransport(zmq::context_t& context, TransportSecurity security);
  ~ZmqTransport() override;

  // Binds the ROUTER. tcp://IP:0 picks a port; bound_endpoint() tells which.
  Status listen(const std::string& endpoint);
  std::string bound_endpoint() const { return bound_; }
  bool secure() const { return security_.has_value(); }

  Status connect(const std::string& endpoint) override;
  Status connect_to(const std::string& endpoint, const std::string& peer_key) override;
  void disconnect(const std::string& endpoint) override;
  void send(const Link& link, const std::string& bytes) override;
  void wake() override;
  std::vector<Frame> poll(int timeout_ms) override;

  // Closes every link of devices no longer trusted: their DEALERs, and (a
  // ROUTER cannot close one inbound connection) the ROUTER when one of its
  // connections is theirs, re-bound at once on the same endpoint; the other
  // peers reconnect by themselves. Call after a device is removed.
  Status close_untrusted();
  // Closes every joiner's connection, by re-binding the ROUTER when there is
  // one (the other peers reconnect by themselves). Call once no invite is open.
  Status close_joiners();
  // Whether a joiner's connection may be open (since the ROUTER was bound).
  bool has_joiners() const { return joiners_connected_; }
  // The joiners' frames since the last call, oldest first; at most
  // kMaxJoinFrames are kept between calls (the rest are dropped and counted).
  std::vector<JoinFrame> take_join_frames();
  static constexpr size_t kMaxJoinFrames = 256;

  // Frames dropped: sends that found no connected peer or a full queue, and
  // malformed incoming messages.
  uint64_t dropped_frames() const { return counters_.dropped; }
  const TransportCounters& counters() const { return counters_; }
  // The sends among them, by message type (unreadable frames are not listed).
  const std::map<wire::Type, uint64_t>& dropped_sends() const { return dropped_sends_; }

 private:
  struct Dealer {
    zmq::socket_t socket;
    std::string peer_key;  // empty when insecure
  };
  void configure(zmq::socket_t& s);
  Status bind_router();
  Status rebind_router();
  void serve_zap();
  bool still_trusted(const std::string& device_key) const;
  void receive_router(std::vector<Frame>& out);
  void keep_join_frame(Frame f, std::string_view curve_hex);
  void receive_dealer(const std::string& endpoint, Dealer& d, std::vector<Frame>& out);

  zmq::context_t& context_;
  std::optional<TransportSecurity> security_;
  std::unique_ptr<zmq::socket_t> zap_;     // REP on inproc://zeromq.zap.01 (secure only)
  std::unique_ptr<zmq::socket_t> router_;
  std::map<std::string, Dealer> dealers_;  // by endpoint
  std::set<std::string> incoming_devices_;  // device keys connected since the ROUTER was bound (secure only)
  bool joiners_connected_ = false;          // a joiner was admitted since the ROUTER was bound
  std::vector<JoinFrame> join_frames_;      // joiners' frames not yet taken
  std::string bound_;
  int wake_fd_ = -1;  // an eventfd poll() waits on beside the sockets (wake())
  TransportCounters counters_;
  std::map<wire::Type, uint64_t> dropped_sends_;
};

}  // namespace replog
