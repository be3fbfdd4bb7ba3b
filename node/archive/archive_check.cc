#include "node/archive/archive_check.h"

#include "node/archive/listing.h"
#include "protocol/bytes.h"
#include "protocol/origin_proof.h"

namespace replog {
namespace {

using archive::SegmentName;

// The proof carried so far along one origin's segments.
struct Walk {
  std::string key;  // the origin's key, from its segment from seq 1
  proof::Chain chain{};
  uint64_t at = 0;  // the chain covers 1..at
};

// Checks one opened segment against the walk and moves it on; a problem otherwise.
std::string step(Walk& w, const archive::Segment& seg, const CheckOptions& options) {
  if (seg.name.first == 1) {
    const proof::Head& h = seg.head;
    if (h.key.size() != proof::kKeyBytes) return "the segment from seq 1 carries no key";
    if (!h.device.empty() && !proof::cert_valid(options.cluster, h.key, h.device, h.cert))
      return "the key's certificate does not verify";
    if (options.is_member && !options.is_member(h.device.empty() ? h.key : h.device))
      return "written by a key that is no member's";
    w.key = h.key;
    w.chain = proof::chain_start(options.cluster, w.key);
  }
  if (w.key.empty()) return "no key to check with (the segment from seq 1 is missing)";
  for (const Update& u : seg.updates) {
    if (u.seq() <= w.at) continue;  // overlaps what an earlier segment proved
    proof::chain_step(w.chain, w.key, u.id().hlc, u.body());
  }
  if (Status s = proof::check_head(seg.head, options.cluster, w.key); !s)
    return "its head does not verify: " + s.message();
  if (seg.head.chain != w.chain) return "its updates do not chain to its head (altered, or another branch)";
  w.at = seg.name.last;
  return {};
}

void check_origin(ObjectStore& bucket, const archive::Keyring& keys, const CheckOptions& options, OriginId origin,
                  ArchiveCheck& out) {
  OriginArchive& o = out.origins[origin];
  auto listed = bucket.list(archive::origin_prefix(origin), "", 0);
  if (!listed) {
    out.problems.push_back(archive::origin_prefix(origin) + ": " + listed.status().message());
    return;
  }
  auto names = archive::segment_names(*listed, origin);
  o.segments = names.size();
  for (const auto& obj : *listed) o.bytes += obj.size;
  for (const auto& n : names) o.listed = std::max(o.listed, n.last);
  Walk w;
  for (const SegmentName& name : archive::cover(names, 0)) {
    const std::string key = archive::segment_key(name);
    if (options.list_only) {
      o.verified = name.last;
      continue;
    }
    auto sealed = bucket.get(key, archive::kMaxPlaintextBytes + archive::kChunkBytes);
    auto seg = sealed ? archive::open_segment(keys, key, *sealed) : Result<archive::Segment>(sealed.status());
    std::string problem = seg ? step(w, *seg, options) : seg.status().message();
    if (!problem.empty() && seg && o.fork_seq && name.last >= o.fork_seq) {
      ++o.branch_segments;  // the other branch of the proven fork: the walk cannot go on
      break;
    }
    if (!problem.empty()) {
      out.problems.push_back(problem.starts_with(key) ? problem : key + ": " + problem);
      break;
    }
    o.verified = name.last;
  }
  o.key_hex = to_hex(w.key);
  // A hole is named too when a damaged object stopped the proof before it.
  const auto chain = archive::cover(names, 0);
  const uint64_t reach = chain.empty() ? 0 : chain.back().last;
  if (o.listed > reach)
    out.problems.push_back(archive::origin_prefix(origin) + ": the archive lacks #" + std::to_string(reach + 1) +
                           " although it holds up to #" + std::to_string(o.listed));
  if (options.on_origin) options.on_origin(o, origin);
}

// The archive's fork evidence: each object opens, decodes and proves a fork.
void check_evidence_objects(ObjectStore& bucket, const archive::Keyring& keys, const CheckOptions& options,
                            ArchiveCheck& out) {
  auto listed = bucket.list(std::string(archive::kEvidencePrefix), "", 0);
  if (!listed) {
    out.problems.push_back(std::string(archive::kEvidencePrefix) + ": " + listed.status().message());
    return;
  }
  for (const auto& obj : *listed) {
    auto sealed = bucket.get(obj.key, proof::kMaxEvidenceBytes + archive::kChunkBytes);
    auto bytes = sealed ? archive::open_evidence(keys, obj.key, *sealed) : Result<std::string>(sealed.status());
    auto e = bytes ? proof::decode_evidence(*bytes) : Result<proof::Evidence>(bytes.status());
    Status s = e ? proof::check_evidence(*e, options.cluster) : e.status();
    if (!s) {
      out.problems.push_back(s.message().starts_with(obj.key) ? s.message() : obj.key + ": " + s.message());
      continue;
    }
    ++out.evidence;
    uint64_t& f = out.origins[e->origin()].fork_seq;
    f = f ? std::min(f, e->fork_seq()) : e->fork_seq();
  }
}

}  // namespace

Result<ArchiveCheck> check_archive(ObjectStore& bucket, const archive::Keyring& keys, const CheckOptions& options) {
  ArchiveCheck out;
  auto origins = archive::origins_in_bucket(bucket);
  if (!origins) return origins.status();
  if (!options.list_only) check_evidence_objects(bucket, keys, options, out);
  for (OriginId origin : *origins) check_origin(bucket, keys, options, origin, out);
  auto feed = bucket.list(std::string(archive::kChangesPrefix), "", 0);
  if (!feed) return feed.status();
  out.feed_entries = feed->size();
  return out;
}

}  // namespace replog
