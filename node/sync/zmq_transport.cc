#include "node/sync/zmq_transport.h"

#include "protocol/wire.h"

namespace replog {

ZmqTransport::ZmqTransport(zmq::context_t& context) : context_(context) {}

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
}

Status ZmqTransport::listen(const std::string& endpoint) {
  try {
    router_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
    configure(*router_);
    router_->bind(endpoint);
    bound_ = router_->get(zmq::sockopt::last_endpoint);
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return Status::io_error("cannot listen on " + endpoint + ": " + e.what());
  }
}

Status ZmqTransport::connect(const std::string& endpoint) {
  if (dealers_.count(endpoint)) return Status::ok();
  try {
    zmq::socket_t s(context_, zmq::socket_type::dealer);
    configure(s);
    s.set(zmq::sockopt::reconnect_ivl, 200);
    s.set(zmq::sockopt::reconnect_ivl_max, 5000);
    s.connect(endpoint);
    dealers_.emplace(endpoint, std::move(s));
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
      sent = it != dealers_.end() && it->second.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
    } else {
      if (!router_) return;
      sent = router_->send(zmq::buffer(link.key), zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
             router_->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    // EHOSTUNREACH and the like: the protocol repairs losses
  }
  if (sent) return;
  ++dropped_;
  if (auto type = wire::type_of(bytes)) ++dropped_sends_[*type];
}

std::vector<Frame> ZmqTransport::poll(int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  std::vector<const std::string*> keys;  // null for the router
  if (router_) {
    items.push_back({router_->handle(), 0, ZMQ_POLLIN, 0});
    keys.push_back(nullptr);
  }
  for (auto& [endpoint, s] : dealers_) {
    items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    keys.push_back(&endpoint);
  }
  std::vector<Frame> out;
  if (items.empty()) return out;
  try {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t&) {
    return out;  // EINTR: a signal; the caller looks at its stop flag
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!(items[i].revents & ZMQ_POLLIN)) continue;
    // Drain a bounded number per socket so one busy peer cannot starve the rest.
    for (int n = 0; n < 64; ++n) {
      if (keys[i] == nullptr) {
        zmq::message_t id, payload;
        if (!router_->recv(id, zmq::recv_flags::dontwait)) break;
        if (!id.more() || !router_->recv(payload, zmq::recv_flags::dontwait)) continue;
        if (payload.more()) {  // our frames are single-part: drop the whole message
          zmq::message_t extra;
          while (router_->recv(extra, zmq::recv_flags::dontwait) && extra.more()) {
          }
          ++dropped_;
          continue;
        }
        out.push_back({Link{false, id.to_string()}, payload.to_string()});
      } else {
        zmq::socket_t& s = dealers_.at(*keys[i]);
        zmq::message_t payload;
        if (!s.recv(payload, zmq::recv_flags::dontwait)) break;
        if (payload.more()) {  // our frames are single-part: drop the whole message, as the ROUTER does
          zmq::message_t extra;
          while (s.recv(extra, zmq::recv_flags::dontwait) && extra.more()) {
          }
          ++dropped_;
          continue;
        }
        out.push_back({Link{true, *keys[i]}, payload.to_string()});
      }
    }
  }
  return out;
}

}  // namespace replog
