// libFuzzer target: the archive's objects (protocol/archive_format.h), bytes a
// bucket hands back. The first byte picks the decoder; the rest is its input.
// Invariants, each an abort when broken:
//  0 sealed objects: whatever opens under the fixed key is authentic, so
//    sealing its plaintext again under the same name gives the very same
//    bytes (deterministic sealing), and it is never over the size limit;
//  1 segment plaintexts: a decoded segment has exactly last - first + 1
//    updates of its origin at consecutive seqs and its head at `last`, and
//    encoding it again decodes to the same segment;
//  2 snapshot plaintexts: one that decodes has a signature that verifies and
//    at most one head per origin of its vector;
//  3 object names: a segment, feed, snapshot or evidence name that parses is spelled
//    back exactly (one spelling per name).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "fuzz_archive.h"
#include "protocol/archive_format.h"

using namespace replog;

namespace {

void sealed(std::string_view in) {
  const archive::Keyring keys{fuzz::archive_key()};
  const std::string context = fuzz::archive_context();
  auto plain = archive::open(keys, archive::Kind::kSegment, context, in);
  if (!plain) return;
  FUZZ_CHECK(plain->size() <= archive::kMaxPlaintextBytes);
  FUZZ_CHECK(archive::seal(keys.front(), archive::Kind::kSegment, context, *plain) == in);
}

void segment(std::string_view in) {
  auto s = archive::decode_segment(in);
  if (!s) return;
  FUZZ_CHECK(s->updates.size() == s->name.last - s->name.first + 1);
  FUZZ_CHECK(s->head.seq == s->name.last && s->head.origin == s->name.origin);
  for (size_t i = 0; i < s->updates.size(); ++i) {
    FUZZ_CHECK(s->updates[i].seq() == s->name.first + i);
    FUZZ_CHECK(s->updates[i].id().origin == s->name.origin);
  }
  auto again = archive::decode_segment(archive::encode_segment(*s));
  FUZZ_CHECK(again && again->name == s->name && again->head == s->head && again->updates.size() == s->updates.size());
}

void snapshot(std::string_view in) {
  auto s = archive::decode_snapshot(in, fuzz::kArchiveCluster);
  if (!s) return;
  FUZZ_CHECK(s->signer.size() == 32 && s->signature.size() == 64);
  FUZZ_CHECK(s->heads.size() <= s->vector.size());
}

// Fork evidence (fuzz_proof fuzzes its decoder): what names itself, names
// its own origin and fork seq.
void evidence(std::string_view in) {
  auto name = archive::evidence_name(in);
  if (!name) return;
  auto e = proof::decode_evidence(in);
  FUZZ_CHECK(e && name->origin == e->origin() && name->fork_seq == e->fork_seq() && name->digest.size() == 8);
}

void names(std::string_view in) {
  if (auto n = archive::parse_segment_key(in)) FUZZ_CHECK(archive::segment_key(*n) == in);
  if (auto f = archive::parse_feed_key(in)) FUZZ_CHECK(archive::feed_key(*f) == in);
  if (auto s = archive::parse_snapshot_key(in)) FUZZ_CHECK(archive::snapshot_key(*s) == in);
  if (auto e = archive::parse_evidence_key(in)) FUZZ_CHECK(archive::evidence_key(*e) == in);
  if (auto o = archive::parse_origin_prefix(in)) FUZZ_CHECK(archive::origin_prefix(*o) == in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: sealed(in); break;
    case 1: segment(in); break;
    case 2: snapshot(in); evidence(in); break;
    default: names(in); break;
  }
  return 0;
}
