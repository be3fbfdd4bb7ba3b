// libFuzzer target: signed origins (protocol/origin_proof.h), the input read
// as a head and as fork evidence. Invariants, each an abort when broken:
//  - a head that decodes re-encodes to bytes no longer than the input (the
//    encoding is the shortest) that decode to the same head, and encoding is
//    a fixpoint after one pass; read_head takes the same head off the front
//    and says it used the whole input;
//  - check_head never crashes; a head it accepts verifies under the key it
//    was checked with, and names that key's id unless it carries kLegacy;
//  - evidence that decodes re-encodes the same way: no longer, to the same
//    evidence, a fixpoint; its fork seq is at least 1;
//  - check_evidence never crashes; evidence it accepts has two heads, with
//    their keys, of one origin: for kChain of one key, with updates of that
//    origin from the fork seq up to each head (seq s, s+1, ...) that chain
//    from the base to the head, the first ones differing in hlc or body; for
//    kKeys of two keys.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "fuzz_proof.h"
#include "protocol/origin_proof.h"

namespace replog::fuzz {
namespace {

using namespace replog::proof;

bool same(const std::vector<Update>& x, const std::vector<Update>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].id() != y[i].id() || x[i].body() != y[i].body()) return false;
  return true;
}

bool same(const Evidence& x, const Evidence& y) {
  return x.kind == y.kind && x.a == y.a && x.b == y.b && x.seq == y.seq && x.base == y.base &&
         same(x.branch_a, y.branch_a) && same(x.branch_b, y.branch_b);
}

// Whether `branch` is `origin`'s seqs first.. and chains from `base` to `end` under `key`.
bool chains(const std::vector<Update>& branch, OriginId origin, uint64_t first, Chain c, const std::string& key,
            const Chain& end) {
  for (size_t i = 0; i < branch.size(); ++i) {
    if (branch[i].id().origin != origin || branch[i].seq() != first + i) return false;
    chain_step(c, key, branch[i].id().hlc, branch[i].body());
  }
  return c == end;
}

void check_as_head(std::string_view bytes) {
  size_t used = 0;
  auto front = read_head(bytes, used);
  FUZZ_CHECK(used <= bytes.size());
  auto h = decode_head(bytes);
  if (!h) return;
  FUZZ_CHECK(front && *front == *h && used == bytes.size());
  const std::string again = encode_head(*h);
  FUZZ_CHECK(again.size() <= bytes.size());
  auto back = decode_head(again);
  FUZZ_CHECK(back && *back == *h);
  FUZZ_CHECK(encode_head(*back) == again);

  for (const std::string& known : {std::string(), proof_keys(0).pub, proof_keys(1).pub}) {
    if (!check_head(*h, kProofCluster, known)) continue;
    const std::string& key = h->key.empty() ? known : h->key;
    FUZZ_CHECK(head_signed_by(*h, key));
    FUZZ_CHECK((h->flags & kLegacy) || origin_of_key(key) == h->origin);
  }
}

void check_as_evidence(std::string_view bytes) {
  auto e = decode_evidence(bytes);
  if (!e) return;
  const std::string again = encode_evidence(*e);
  FUZZ_CHECK(again.size() <= bytes.size());
  auto back = decode_evidence(again);
  FUZZ_CHECK(back && same(*back, *e));
  FUZZ_CHECK(encode_evidence(*back) == again);

  if (!check_evidence(*e, kProofCluster)) return;
  FUZZ_CHECK(e->fork_seq() >= 1);
  FUZZ_CHECK(!e->a.key.empty() && !e->b.key.empty() && e->a.origin == e->b.origin);
  if (e->kind == Evidence::Kind::kKeys) {
    FUZZ_CHECK(e->a.key != e->b.key);
    return;
  }
  FUZZ_CHECK(e->a.key == e->b.key);
  FUZZ_CHECK(e->branch_a.size() == e->a.seq - e->seq + 1 && e->branch_b.size() == e->b.seq - e->seq + 1);
  const Update& fa = e->branch_a.front();
  const Update& fb = e->branch_b.front();
  FUZZ_CHECK(fa.id().hlc != fb.id().hlc || fa.body() != fb.body());
  FUZZ_CHECK(chains(e->branch_a, e->a.origin, e->seq, e->base, e->a.key, e->a.chain));
  FUZZ_CHECK(chains(e->branch_b, e->b.origin, e->seq, e->base, e->b.key, e->b.chain));
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  replog::fuzz::check_as_head(bytes);
  replog::fuzz::check_as_evidence(bytes);
  return 0;
}
