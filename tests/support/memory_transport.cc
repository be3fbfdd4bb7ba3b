#include "support/memory_transport.h"

namespace replog::testing {

MemoryTransport::MemoryTransport(MemoryNetwork& net, std::string endpoint, MemoryIdentity identity)
    : net_(net), endpoint_(std::move(endpoint)), identity_(std::move(identity)) {
  net_.nodes_[endpoint_] = this;
}

MemoryTransport::~MemoryTransport() { net_.nodes_.erase(endpoint_); }

Status MemoryTransport::connect_to(const std::string& endpoint, const std::string& peer_key) {
  if (keyed() && peer_key.empty()) return Status::invalid_argument("peer " + endpoint + ": its device key is needed");
  if (!keyed() && !peer_key.empty())
    return Status::invalid_argument("peer " + endpoint + ": this transport cannot authenticate peers");
  links_.emplace(endpoint, peer_key);
  return Status::ok();
}

const std::string* MemoryTransport::expected_of(const std::string& endpoint) const {
  auto it = links_.find(endpoint);
  return it == links_.end() ? nullptr : &it->second;
}

bool MemoryTransport::serves(const MemoryTransport& client, const std::string* expected) const {
  if (!keyed() && !client.keyed()) return true;  // NULL on both ends: nothing is checked
  return keyed() && client.keyed() && expected && *expected == identity_.key && trusts(client.identity_.key);
}

void MemoryTransport::send(const Link& link, const std::string& bytes) {
  auto it = net_.nodes_.find(link.key);
  if (it == net_.nodes_.end() || net_.blocked(endpoint_, link.key)) return;
  MemoryTransport& peer = *it->second;
  if (link.outgoing) {
    // To the peer's ROUTER: it sees us as routing id "<our endpoint>".
    const std::string* expected = expected_of(link.key);
    if (!expected) return;
    if (!peer.serves(*this, expected)) {
      ++peer.handshakes_refused_;
      return;
    }
    peer.inbox_.push_back({Link{false, endpoint_}, bytes, identity_.key});
  } else {
    // An answer on the connection from `link.key`: arrives on its DEALER to us.
    if (!serves(peer, peer.expected_of(endpoint_))) {
      ++handshakes_refused_;
      return;
    }
    peer.inbox_.push_back({Link{true, endpoint_}, bytes, identity_.key});
  }
}

std::vector<Frame> MemoryTransport::poll(int) {
  std::vector<Frame> out;
  out.reserve(inbox_.size());
  for (auto& f : inbox_) {
    // Its sender was removed from the trust list since: the connection is closed.
    if (keyed() && !f.link.outgoing && !trusts(f.peer_key)) continue;
    out.push_back(std::move(f));
  }
  inbox_.clear();
  return out;
}

}  // namespace replog::testing
