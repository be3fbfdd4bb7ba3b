// libFuzzer target: peer frames (protocol/wire.h) on untrusted bytes, every
// message type. Invariants, each an abort when broken:
//  - a frame that decodes re-encodes to a frame that decodes to the same
//    message, and encoding is a fixpoint after one pass;
//  - what decodes is within the protocol's limits (vector pages and entries,
//    update bodies that parse again to the same fields);
//  - wire::type_of, which reads the header alone, names the type of every
//    frame that decodes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check.h"
#include "protocol/limits.h"
#include "protocol/wire.h"

namespace replog::fuzz {
namespace {

using namespace replog::wire;

bool same(const Update& a, const Update& b) {
  return a.id() == b.id() && a.body() == b.body() && a.seq() == b.seq() && a.method() == b.method() &&
         a.arg() == b.arg();
}
bool same(const std::vector<Update>& a, const std::vector<Update>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}

bool same(const Message& a, const Message& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<Hello>(&a)) {
    auto& y = std::get<Hello>(b);
    return x->cluster == y.cluster && x->node_id == y.node_id && x->endpoint == y.endpoint &&
           x->max_update == y.max_update && x->max_frame == y.max_frame;
  }
  if (auto* x = std::get_if<Error>(&a)) {
    auto& y = std::get<Error>(b);
    return x->code == y.code && x->message == y.message;
  }
  if (auto* x = std::get_if<Vector>(&a)) {
    auto& y = std::get<Vector>(b);
    return x->page == y.page && x->pages == y.pages && x->reply == y.reply && x->entries == y.entries;
  }
  if (auto* x = std::get_if<Request>(&a)) {
    auto& y = std::get<Request>(b);
    return x->origin == y.origin && x->from_seq == y.from_seq && x->to_seq == y.to_seq && x->max_bytes == y.max_bytes;
  }
  if (auto* x = std::get_if<Updates>(&a)) {
    auto& y = std::get<Updates>(b);
    return x->origin == y.origin && x->more == y.more && same(x->updates, y.updates);
  }
  if (auto* x = std::get_if<Join>(&a)) {
    auto& y = std::get<Join>(b);
    return x->device_key == y.device_key && x->proof == y.proof && x->name == y.name;
  }
  if (auto* x = std::get_if<JoinReply>(&a)) {
    auto& y = std::get<JoinReply>(b);
    return x->accepted == y.accepted && x->proof == y.proof && x->cluster == y.cluster &&
           x->cluster_secret == y.cluster_secret;
  }
  if (auto* x = std::get_if<Push>(&a)) return same(x->updates, std::get<Push>(b).updates);
  // Members, Evidence, Tree: their encodings (deterministic; the fixpoint is checked apart).
  return encode(a) == encode(b);
}

// Each update a frame carries has a body that parses again to the same fields.
void check_updates(const std::vector<Update>& updates) {
  for (const auto& u : updates) {
    FUZZ_CHECK(u.body().size() <= limits::kMaxUpdateBytes);
    FUZZ_CHECK(u.seq() > 0);
    FUZZ_CHECK(!u.method().empty() && u.method().size() <= 255);
    auto again = Update::parse(u.id(), u.body());
    FUZZ_CHECK(again.is_ok() && same(*again, u));
  }
}

void check_limits(const Message& m) {
  if (auto* v = std::get_if<Vector>(&m)) {
    FUZZ_CHECK(v->pages >= 1 && v->pages <= kMaxVectorPages && v->page < v->pages);
    FUZZ_CHECK(v->entries.size() <= kVectorPageEntries);
  }
  if (auto* u = std::get_if<Updates>(&m)) check_updates(u->updates);
  if (auto* p = std::get_if<Push>(&m)) check_updates(p->updates);
  if (auto* j = std::get_if<Join>(&m)) FUZZ_CHECK(j->device_key.size() == 32 && j->proof.size() == 32 && j->name.size() <= 64);
  if (auto* r = std::get_if<JoinReply>(&m))
    FUZZ_CHECK(r->accepted ? r->proof.size() == 32 && r->cluster_secret.size() == 32 && !r->cluster.empty()
                           : r->proof.empty() && r->cluster.empty() && r->cluster_secret.empty());
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  using namespace replog::fuzz;
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto type = wire::type_of(frame);
  // As on a link that agreed to compressed bodies: both forms are read.
  auto m = wire::decode(frame, /*compressed_ok=*/true);
  if (!m) return 0;

  FUZZ_CHECK(size <= wire::kMaxFrameBytes);
  FUZZ_CHECK(type.is_ok() && static_cast<size_t>(*type) == m->index() + 1);
  check_limits(*m);
  (void)wire::type_name(*m);

  std::string once = wire::encode(*m);
  auto again = wire::decode(once);
  FUZZ_CHECK(again.is_ok());
  FUZZ_CHECK(same(*again, *m));
  FUZZ_CHECK(wire::encode(*again) == once);
  auto type_again = wire::type_of(once);
  FUZZ_CHECK(type_again.is_ok() && *type_again == *type);
  if (auto z = wire::compress(once)) {
    FUZZ_CHECK(z->size() < once.size());
    auto unz = wire::decode(*z, true);
    FUZZ_CHECK(unz.is_ok() && same(*unz, *m));
    FUZZ_CHECK(!wire::decode(*z, false).is_ok());
  }
  return 0;
}
