#include "support/memory_transport.h"

namespace replog::testing {

MemoryTransport::MemoryTransport(MemoryNetwork& net, std::string endpoint) : net_(net), endpoint_(std::move(endpoint)) {
  net_.nodes_[endpoint_] = this;
}

MemoryTransport::~MemoryTransport() { net_.nodes_.erase(endpoint_); }

Status MemoryTransport::connect(const std::string& endpoint) {
  links_.insert(endpoint);
  return Status::ok();
}

void MemoryTransport::send(const Link& link, const std::string& bytes) {
  auto it = net_.nodes_.find(link.key);
  if (it == net_.nodes_.end() || net_.blocked(endpoint_, link.key)) return;
  if (link.outgoing) {
    // To the peer's ROUTER: it sees us as routing id "<our endpoint>".
    if (!links_.count(link.key)) return;
    it->second->inbox_.push_back({Link{false, endpoint_}, bytes});
  } else {
    // An answer on the connection from `link.key`: arrives on its DEALER to us.
    it->second->inbox_.push_back({Link{true, endpoint_}, bytes});
  }
}

std::vector<Frame> MemoryTransport::poll(int) {
  std::vector<Frame> out(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
  inbox_.clear();
  return out;
}

}  // namespace replog::testing
