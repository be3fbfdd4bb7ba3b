#include "node/engine/revocation_index.h"

#include <algorithm>

#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"

namespace replog::engine {

namespace {
constexpr size_t kRecordBytes = 40;
}

std::optional<Revocation> revocation_of(const UpdateView& u) {
  if (u.method != kRevokeMethod) return std::nullopt;
  auto arg = decode_msgpack(u.arg);
  if (!arg) return std::nullopt;
  auto r = parse_revoke_arg(*arg, nullptr);
  if (!r) return std::nullopt;
  r->id = u.id;
  r->seq = u.seq;
  return r;
}

std::string encode_revocations(const std::vector<Revocation>& all) {
  std::string out;
  out.reserve(all.size() * kRecordBytes);
  for (const Revocation& r : all) {
    out += u64_be(r.id.hlc);
    out += u64_be(r.id.origin);
    out += u64_be(r.seq);
    out += u64_be(r.target);
    out += u64_be(r.last_seq);
  }
  return out;
}

Result<std::vector<Revocation>> decode_revocations(std::string_view bytes) {
  if (bytes.size() % kRecordBytes != 0) return Status::corruption("meta revocations: not a multiple of 40 bytes");
  std::vector<Revocation> out;
  for (size_t at = 0; at < bytes.size(); at += kRecordBytes) {
    Revocation r;
    r.id.hlc = get_u64_be(bytes.data() + at);
    r.id.origin = get_u64_be(bytes.data() + at + 8);
    r.seq = get_u64_be(bytes.data() + at + 16);
    r.target = get_u64_be(bytes.data() + at + 24);
    r.last_seq = get_u64_be(bytes.data() + at + 32);
    if (!out.empty() && !(out.back().id < r.id)) return Status::corruption("meta revocations: not in update order");
    out.push_back(r);
  }
  return out;
}

Result<std::vector<Revocation>> load_revocations(LogTxn& txn, bool* scanned) {
  if (scanned) *scanned = false;
  if (auto bytes = txn.meta(meta::kRevocations)) return decode_revocations(*bytes);
  std::vector<Revocation> out;
  Status status;
  Status iter = txn.for_each_from(UpdateId{}, [&](const UpdateId& id, std::string_view body) {
    auto u = parse_update(id, body);
    if (!u) {
      status = u.status();
      return false;
    }
    if (auto r = revocation_of(*u)) out.push_back(*r);
    return true;
  });
  if (!iter) return iter;
  if (!status) return status;
  if (scanned) *scanned = true;
  return out;
}

std::map<OriginId, uint64_t> log_left_out(LogTxn& txn, const std::vector<Revocation>& revocations,
                                          std::map<OriginId, uint64_t>* revoked) {
  const auto forks = txn.fork_seqs();
  auto in_effect = effective_revocations(revocations, forks);
  auto out = left_out_seqs(forks, in_effect);
  if (revoked) *revoked = std::move(in_effect);
  return out;
}

}  // namespace replog::engine
