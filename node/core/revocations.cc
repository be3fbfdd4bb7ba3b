#include "node/core/revocations.h"

#include "protocol/bytes.h"

namespace replog {

std::optional<Revocation> parse_revoke_arg(const Value& arg, std::string* why) {
  auto fail = [&](const char* message) -> std::optional<Revocation> {
    if (why) *why = message;
    return std::nullopt;
  };
  if (!arg.is_map()) return fail("revoke takes a map argument");
  const Value* o = arg.find("origin");
  const Value* last = arg.find("last_seq");
  if (!o || !o->is_string()) return fail("revoke needs origin: 16 hex digits");
  auto origin = parse_hex16(o->as_string());
  if (!origin) return fail("revoke needs origin: 16 hex digits");
  if (is_reserved_origin(*origin)) return fail("revoke names a reserved origin id");
  if (!last || !last->is_int() || last->as_int() < 0) return fail("revoke needs last_seq: a non-negative int");
  Revocation r;
  r.target = *origin;
  r.last_seq = static_cast<uint64_t>(last->as_int());
  return r;
}

std::map<OriginId, uint64_t> effective_revocations(const std::vector<Revocation>& all,
                                                   const std::map<OriginId, uint64_t>& fork_seqs) {
  enum class Fate { kUndecided, kInEffect, kVoid };
  const size_t n = all.size();
  std::vector<Fate> fate(n, Fate::kUndecided);
  for (size_t i = 0; i < n; ++i) {
    auto f = fork_seqs.find(all[i].id.origin);
    if (f != fork_seqs.end() && all[i].seq >= f->second) fate[i] = Fate::kVoid;
  }
  // blockers[i]: the revocations that shut out i's writer below i's seq.
  std::vector<std::vector<size_t>> blockers(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (j != i && all[j].target == all[i].id.origin && all[j].last_seq < all[i].seq) blockers[i].push_back(j);
  // Decide what follows from what is decided, until nothing more does. When
  // only cycles are left undecided, their members take effect, and what
  // depends on them is decided in turn.
  auto on_cycle = [&](size_t start) {
    std::vector<char> seen(n, 0);
    std::vector<size_t> stack = blockers[start];
    while (!stack.empty()) {
      const size_t j = stack.back();
      stack.pop_back();
      if (fate[j] != Fate::kUndecided || seen[j]) continue;
      if (j == start) return true;
      seen[j] = 1;
      stack.insert(stack.end(), blockers[j].begin(), blockers[j].end());
    }
    return false;
  };
  for (;;) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < n; ++i) {
        if (fate[i] != Fate::kUndecided) continue;
        bool blocked = false, free = true;
        for (size_t j : blockers[i]) {
          if (fate[j] == Fate::kInEffect) blocked = true;
          if (fate[j] != Fate::kVoid) free = false;
        }
        if (blocked || free) {
          fate[i] = blocked ? Fate::kVoid : Fate::kInEffect;
          changed = true;
        }
      }
    }
    std::vector<size_t> cycles;
    for (size_t i = 0; i < n; ++i)
      if (fate[i] == Fate::kUndecided && on_cycle(i)) cycles.push_back(i);
    if (cycles.empty()) break;
    for (size_t i : cycles) fate[i] = Fate::kInEffect;
  }
  std::map<OriginId, uint64_t> out;
  for (size_t i = 0; i < n; ++i) {
    if (fate[i] != Fate::kInEffect) continue;
    auto [it, fresh] = out.emplace(all[i].target, all[i].last_seq);
    if (!fresh) it->second = std::min(it->second, all[i].last_seq);
  }
  return out;
}

std::map<OriginId, uint64_t> left_out_seqs(const std::map<OriginId, uint64_t>& fork_seqs,
                                           const std::map<OriginId, uint64_t>& revoked) {
  std::map<OriginId, uint64_t> out = fork_seqs;
  for (const auto& [origin, last_seq] : revoked) {
    auto [it, fresh] = out.emplace(origin, last_seq + 1);
    if (!fresh) it->second = std::min(it->second, last_seq + 1);
  }
  return out;
}

}  // namespace replog
