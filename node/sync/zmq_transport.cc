#include "node/sync/zmq_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "protocol/bytes.h"
#include "protocol/wire.h"
#include "storage/identity.h"

namespace replog {

namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27
constexpr const char* kZapDomain = "replog";
// A joiner's ZAP user id: this prefix and the hex of its X25519 key. A device
// key's user id is 64 hex digits alone, so the two never meet.
constexpr std::string_view kJoinerPrefix = "joiner:";

std::string_view key_view(const std::array<unsigned char, 32>& key) {
  return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
}

// Drops the rest of a multipart message (our frames are single-part).
void drain(zmq::socket_t& s) {
  zmq::message_t extra;
  while (s.recv(extra, zmq::recv_flags::dontwait) && extra.more()) {
  }
}

}  // namespace

ZmqTransport::ZmqTransport(zmq::context_t& context) : context_(context), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ZmqTransport::ZmqTransport(zmq::context_t& context, TransportSecurity security)
    : context_(context), security_(std::move(security)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ZmqTransport::~ZmqTransport() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ZmqTransport::wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);  // a full counter wakes anyway
}

void ZmqTransport::configure(zmq::socket_t& s) {
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes + 4096));
  s.set(zmq::sockopt::immediate, 1);
  s.set(zmq::sockopt::linger, 500);
  s.set(zmq::sockopt::heartbeat_ivl, 1000);
  s.set(zmq::sockopt::heartbeat_timeout, 5000);
  s.set(zmq::sockopt::heartbeat_ttl, 5000);
  s.set(zmq::sockopt::sndhwm, 1000);
  s.set(zmq::sockopt::rcvhwm, 1000);
  s.set(zmq::sockopt::sndtimeo, 0);
  if (security_) {
    s.set(zmq::sockopt::curve_publickey, key_view(security_->keys.public_key));
    s.set(zmq::sockopt::curve_secretkey, key_view(security_->keys.secret_key));
  }
}

Status ZmqTransport::listen(const std::string& endpoint) {
  if (security_ && !zap_) {
    try {
      // Bound before any CURVE server exists: without a handler, libzmq
      // admits every client that knows the server's key.
      zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
      zap_->set(zmq::sockopt::linger, 0);
      zap_->bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      zap_.reset();
      return Status::io_error(std::string("cannot serve ZAP: ") + e.what());
    }
  }
  bound_ = endpoint;
  Status s = bind_router();
  if (s) bound_ = router_->get(zmq::sockopt::last_endpoint);
  return s;
}

Status ZmqTransport::bind_router() {
  try {
    router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
    configure(*router_);
    router_->set(zmq::sockopt::router_mandatory, 1);
    if (security_) {
      router_->set(zmq::sockopt::curve_server, 1);
      router_->set(zmq::sockopt::zap_domain, kZapDomain);
    }
    router_->bind(bound_);
    return Status::ok();
  } catch (const zmq::error_t& e) {
    router_.reset();
    return Status::io_error("cannot listen on " + bound_ + ": " + e.what());
  }
}

Status ZmqTransport::connect(const std::string& endpoint) { return connect_to(endpoint, ""); }

Status ZmqTransport::connect_to(const std::string& endpoint, const std::string& peer_key) {
  if (dealers_.count(endpoint)) return Status::ok();
  if (security_ && peer_key.empty())
    return Status::invalid_argument("peer " + endpoint + ": its device id is needed (ID@" + endpoint + ")");
  if (!security_ && !peer_key.empty())
    return Status::invalid_argument("peer " + endpoint + ": a device id needs encryption (run without --insecure)");
  try {
    zmq::socket_t s(context_, zmq::socket_type::dealer);
    configure(s);
    if (security_) {
      auto server_key = curve_public_key(peer_key);
      if (!server_key) return server_key.status();
      s.set(zmq::sockopt::curve_serverkey, *server_key);
    }
    s.set(zmq::sockopt::reconnect_ivl, 200);
    s.set(zmq::sockopt::reconnect_ivl_max, 5000);
    s.connect(endpoint);
    dealers_.emplace(endpoint, Dealer{std::move(s), peer_key});
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return Status::invalid_argument("cannot connect to " + endpoint + ": " + e.what());
  }
}

void ZmqTransport::disconnect(const std::string& endpoint) { dealers_.erase(endpoint); }

void ZmqTransport::send(const Link& link, const std::string& bytes) {
  bool sent = false;
  try {
    if (link.outgoing) {
      auto it = dealers_.find(link.key);
      sent = it != dealers_.end() &&
             it->second.socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
    } else {
      if (!router_) return;
      sent = router_->send(zmq::buffer(link.key), zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
             router_->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the connection is gone (ZMQ_ROUTER_MANDATORY); the protocol repairs losses.
    if (e.num() == EHOSTUNREACH) ++counters_.unroutable;
  }
  if (sent) return;
  ++counters_.dropped;
  if (auto type = wire::type_of(bytes)) ++dropped_sends_[*type];
}

// One ZAP request (RFC 27): version, request id, domain, address, routing id,
// mechanism, credentials. Only CURVE clients whose key a trusted device has
// get "200"; the user id is the device key in hex, which every frame of the
// connection then carries as its "User-Id" property.
void ZmqTransport::serve_zap() {
  for (int n = 0; n < 64; ++n) {
    std::vector<zmq::message_t> parts;
    zmq::message_t part;
    if (!zap_->recv(part, zmq::recv_flags::dontwait)) return;
    parts.push_back(std::move(part));
    while (parts.back().more() && parts.size() < 16) {
      zmq::message_t next;
      if (!zap_->recv(next, zmq::recv_flags::dontwait)) break;
      parts.push_back(std::move(next));
    }
    if (parts.back().more()) drain(*zap_);
    std::string request_id = parts.size() > 1 ? parts[1].to_string() : "";
    std::optional<std::string> device;
    const bool curve = parts.size() >= 7 && parts[0].to_string_view() == "1.0" &&
                       parts[5].to_string_view() == "CURVE" && parts[6].size() == 32;
    if (curve) device = security_->admit(parts[6].to_string_view());
    std::string user = device ? to_hex(*device) : "";
    if (curve && !device && security_->joining && security_->joining()) {
      user = std::string(kJoinerPrefix) + to_hex(parts[6].to_string_view());
      joiners_connected_ = true;
      ++counters_.joiners_admitted;
    } else if (!device) {
      ++counters_.handshakes_refused;
    }
    const std::string status = user.empty() ? "400" : "200";
    const std::string text = user.empty() ? "not a trusted device" : "OK";
    zap_->send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(status), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(text), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(user), zmq::send_flags::sndmore);
    zap_->send(zmq::buffer(std::string()), zmq::send_flags::none);
  }
}

bool ZmqTransport::still_trusted(const std::string& device_key) const {
  auto curve = curve_public_key(device_key);
  if (!curve) return false;
  auto device = security_->admit(*curve);
  return device && *device == device_key;
}

Status ZmqTransport::close_untrusted() {
  if (!security_) return Status::ok();
  for (auto it = dealers_.begin(); it != dealers_.end();) {
    if (still_trusted(it->second.peer_key)) ++it;
    else it = dealers_.erase(it);
  }
  bool rebind = false;
  for (const auto& key : incoming_devices_) rebind = rebind || !still_trusted(key);
  if (!rebind || !router_) return Status::ok();
  return rebind_router();
}

Status ZmqTransport::close_joiners() {
  if (!security_ || !joiners_connected_ || !router_) return Status::ok();
  return rebind_router();
}

std::vector<JoinFrame> ZmqTransport::take_join_frames() {
  std::vector<JoinFrame> out;
  out.swap(join_frames_);
  return out;
}

Status ZmqTransport::rebind_router() {
  // Closing the ROUTER closes all of its connections; binding again takes a
  // moment while libzmq releases the port.
  router_->set(zmq::sockopt::linger, 0);
  router_.reset();
  incoming_devices_.clear();
  joiners_connected_ = false;
  ++counters_.rebinds;
  Status s;
  for (int attempt = 0; attempt < 200; ++attempt) {
    s = bind_router();
    if (s) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return s;
}

void ZmqTransport::receive_router(std::vector<Frame>& out) {
  // Drain a bounded number so one busy peer cannot starve the rest.
  for (int n = 0; n < 64; ++n) {
    zmq::message_t id, payload;
    if (!router_->recv(id, zmq::recv_flags::dontwait)) return;
    if (!id.more() || !router_->recv(payload, zmq::recv_flags::dontwait)) continue;
    if (payload.more()) {
      drain(*router_);
      ++counters_.dropped;
      continue;
    }
    Frame f{Link{false, id.to_string()}, payload.to_string()};
    if (security_) {
      const char* user = zmq_msg_gets(payload.handle(), "User-Id");
      const std::string_view user_id = user ? user : "";
      if (user_id.substr(0, kJoinerPrefix.size()) == kJoinerPrefix) {
        keep_join_frame(std::move(f), user_id.substr(kJoinerPrefix.size()));
        continue;
      }
      auto key = from_hex(user_id);
      if (!key || key->size() != 32) {  // cannot happen past ZAP; never trusted
        ++counters_.dropped;
        continue;
      }
      f.peer_key = std::move(key).value();
      incoming_devices_.insert(f.peer_key);
      // A device that joined asks again when the answer to its Join was lost
      // (the joiners' connections may have been cut before it arrived); it is
      // trusted by then, and the join service answers it the same way.
      if (auto type = wire::type_of(f.bytes); type && *type == wire::Type::kJoin) {
        auto curve_key = curve_public_key(f.peer_key);
        if (curve_key) keep_join_frame(std::move(f), to_hex(*curve_key));
        continue;
      }
    }
    out.push_back(std::move(f));
  }
}

void ZmqTransport::keep_join_frame(Frame f, std::string_view curve_hex) {
  auto key = from_hex(curve_hex);
  if (!key || key->size() != 32 || join_frames_.size() >= kMaxJoinFrames) {
    ++counters_.joiner_frames_dropped;
    return;
  }
  join_frames_.push_back(JoinFrame{std::move(f.link), std::move(f.bytes), std::move(key).value()});
}

void ZmqTransport::receive_dealer(const std::string& endpoint, Dealer& d, std::vector<Frame>& out) {
  for (int n = 0; n < 64; ++n) {
    zmq::message_t payload;
    if (!d.socket.recv(payload, zmq::recv_flags::dontwait)) return;
    if (payload.more()) {  // drop the whole message, as the ROUTER does
      drain(d.socket);
      ++counters_.dropped;
      continue;
    }
    out.push_back({Link{true, endpoint}, payload.to_string(), d.peer_key});
  }
}

std::vector<Frame> ZmqTransport::poll(int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  std::vector<std::map<std::string, Dealer>::iterator> dealers;
  if (zap_) items.push_back({zap_->handle(), 0, ZMQ_POLLIN, 0});
  if (router_) items.push_back({router_->handle(), 0, ZMQ_POLLIN, 0});
  const size_t first_dealer = items.size();
  for (auto it = dealers_.begin(); it != dealers_.end(); ++it) {
    items.push_back({it->second.socket.handle(), 0, ZMQ_POLLIN, 0});
    dealers.push_back(it);
  }
  std::vector<Frame> out;
  if (items.empty()) return out;
  const size_t wake_item = items.size();
  if (wake_fd_ >= 0) items.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t&) {
    return out;  // EINTR: a signal; the caller looks at its stop flag
  }
  if (wake_fd_ >= 0 && (items[wake_item].revents & ZMQ_POLLIN)) {
    uint64_t count = 0;
    (void)!::read(wake_fd_, &count, sizeof count);
  }
  size_t i = 0;
  if (zap_ && (items[i++].revents & ZMQ_POLLIN)) serve_zap();
  if (router_ && (items[i++].revents & ZMQ_POLLIN)) receive_router(out);
  for (size_t d = 0; d < dealers.size(); ++d)
    if (items[first_dealer + d].revents & ZMQ_POLLIN) receive_dealer(dealers[d]->first, dealers[d]->second, out);
  return out;
}

}  // namespace replog
