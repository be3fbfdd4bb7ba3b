#include "node/archive/merge.h"

#include <map>
#include <optional>
#include <set>

#include "node/archive/listing.h"
#include "protocol/bytes.h"

namespace replog {
namespace {

using archive::SegmentName;

int level_of(const SegmentName& n) {
  int level = 0;
  for (uint64_t count = n.last - n.first + 1; count >= 4; count /= 4) ++level;
  return level;
}

// `writing_only`: refuse (kRefused) a segment sealed under another key than the
// writing one: objects sealed before a rotation are left as they are, so that
// the holders of the old key keep reading them (docs/ARCHIVE.md §7).
Result<archive::Segment> fetch(ObjectStore& bucket, const archive::Keyring& keys, const SegmentName& name,
                               bool writing_only = false) {
  const std::string key = archive::segment_key(name);
  auto sealed = bucket.get(key, archive::kMaxPlaintextBytes + archive::kChunkBytes);
  if (!sealed) return sealed.status();
  if (writing_only && archive::sealed_key_id(*sealed) != keys.back().id())
    return Status::refused(key + " is sealed under an older key: kept as it is");
  return archive::open_segment(keys, key, *sealed);
}

// One segment holding `parts` (consecutive, from the chain) end to end.
Result<archive::Segment> join(ObjectStore& bucket, const archive::Keyring& keys, const std::vector<SegmentName>& parts,
                              std::string_view origin_key) {
  archive::Segment out;
  out.name = {parts.front().origin, parts.front().first, parts.back().last};
  std::string key, device, cert;
  std::optional<proof::Chain> chain;  // at the previous part's head
  for (const SegmentName& part : parts) {
    auto seg = fetch(bucket, keys, part, /*writing_only=*/true);
    if (!seg) return seg.status();
    if (part.first == 1) {
      key = seg->head.key;
      device = seg->head.device;
      cert = seg->head.cert;
    }
    // Each part must chain on from the one before: parts of two branches of a
    // forked origin are never joined into one object.
    if (chain) {
      for (const Update& u : seg->updates)
        if (u.seq() > out.updates.back().seq()) proof::chain_step(*chain, origin_key, u.id().hlc, u.body());
      if (*chain != seg->head.chain)
        return Status::corruption(archive::segment_key(part) + " does not chain on from the segment before it (a fork?); not merged");
    }
    chain = seg->head.chain;
    for (Update& u : seg->updates)
      if (u.seq() > (out.updates.empty() ? out.name.first - 1 : out.updates.back().seq())) out.updates.push_back(std::move(u));
    out.head = std::move(seg->head);
  }
  // The head carries the key only from seq 1, as every writer's segment does.
  out.head.key = key;
  out.head.device = device;
  out.head.cert = cert;
  return out;
}

// Writes `merged`, reads it back whole, then deletes `parts`.
Status replace(ObjectStore& bucket, const archive::Keyring& keys, const archive::Segment& merged,
               const std::vector<SegmentName>& parts, MergeReport& report) {
  const std::string key = archive::segment_key(merged.name);
  const std::string sealed = archive::seal_segment(keys.back(), merged);
  auto put = bucket.put_new(key, sealed);
  if (!put) return put.status();
  auto back = bucket.get(key, sealed.size() + archive::kChunkBytes);
  if (!back) return back.status().with_context("reading back " + key);
  if (*back != sealed)
    return Status::corruption(key + ": holds other bytes than the segments it merges (a fork?); nothing deleted");
  ++report.merged;
  for (const SegmentName& part : parts) {
    if (part == merged.name) continue;
    REPLOG_RETURN_IF_ERROR(bucket.del(archive::segment_key(part)));
    ++report.deleted;
  }
  return Status::ok();
}

// Segments that one chain segment covers entirely: deleted once that one opens.
Status drop_covered(ObjectStore& bucket, const archive::Keyring& keys, const std::vector<SegmentName>& names,
                    const std::vector<SegmentName>& chain, MergeReport& report) {
  std::map<std::string, bool> opens;  // chain segment key -> it opened
  for (const SegmentName& n : names) {
    for (const SegmentName& c : chain) {
      if (c == n || c.first > n.first || c.last < n.last) continue;
      const std::string ckey = archive::segment_key(c);
      if (!opens.count(ckey)) opens[ckey] = static_cast<bool>(fetch(bucket, keys, c));
      if (!opens[ckey]) break;
      REPLOG_RETURN_IF_ERROR(bucket.del(archive::segment_key(n)));
      ++report.deleted;
      break;
    }
  }
  return Status::ok();
}

// The first `fan_in` consecutive chain segments of one level whose bytes stay
// under the cap; empty when there are none.
std::vector<SegmentName> next_run(const std::vector<SegmentName>& chain, const std::map<std::string, uint64_t>& sizes,
                                  const std::set<std::string>& frozen, const MergeOptions& options) {
  size_t run = 0;
  for (size_t i = 0; i < chain.size(); ++i) {
    if (frozen.count(archive::segment_key(chain[i]))) {
      run = 0;  // sealed under an older key: never joined
      continue;
    }
    run = (run > 0 && level_of(chain[i]) == level_of(chain[i - 1])) ? run + 1 : 1;
    if (run < options.fan_in) continue;
    std::vector<SegmentName> parts(chain.begin() + static_cast<std::ptrdiff_t>(i + 1 - run),
                                   chain.begin() + static_cast<std::ptrdiff_t>(i + 1));
    uint64_t bytes = 0;
    for (const auto& p : parts) bytes += sizes.count(archive::segment_key(p)) ? sizes.at(archive::segment_key(p)) : 0;
    if (bytes <= options.max_plaintext) return parts;
    run = 0;
  }
  return {};
}

}  // namespace

Status merge_segments(ObjectStore& bucket, const archive::Keyring& keys, OriginId origin, std::string_view origin_key,
                      const MergeOptions& options, MergeReport& report) {
  if (origin_key.size() != proof::kKeyBytes) return Status::ok();  // nothing to check the joins with: no merge
  std::set<std::string> frozen;  // segments sealed under an older key
  for (int round = 0; round < 64; ++round) {  // each round merges one run; the listing then changed
    auto listed = bucket.list(archive::origin_prefix(origin), "", 0);
    if (!listed) return listed.status();
    std::map<std::string, uint64_t> sizes;
    for (const auto& o : *listed) sizes[o.key] = o.size;
    const auto names = archive::segment_names(*listed, origin);
    const auto chain = archive::cover(names, 0);
    const auto parts = next_run(chain, sizes, frozen, options);
    if (parts.empty()) return drop_covered(bucket, keys, names, chain, report);
    auto merged = join(bucket, keys, parts, origin_key);
    if (!merged && merged.status().code() == Status::Code::kRefused) {
      for (const auto& p : parts)  // find which part is old; the next round goes around it
        if (auto one = fetch(bucket, keys, p, true); !one && one.status().code() == Status::Code::kRefused)
          frozen.insert(archive::segment_key(p));
      continue;
    }
    if (!merged) return merged.status();
    REPLOG_RETURN_IF_ERROR(replace(bucket, keys, *merged, parts, report));
  }
  return Status::ok();
}

}  // namespace replog
