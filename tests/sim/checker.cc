#include "sim/checker.h"

#include <set>

#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"

namespace replog::sim {

namespace {

std::string short_hex(const std::string& s) { return s.substr(0, 12); }
std::string hex_origin(OriginId origin) { return hex16(origin); }

void check_one_hash(const std::vector<NodeSnapshot>& nodes, std::vector<std::string>& out) {
  for (const auto& n : nodes)
    if (n.state_hash != nodes.front().state_hash)
      out.push_back("state hash differs: " + nodes.front().name + " " + short_hex(nodes.front().state_hash) + ", " +
                    n.name + " " + short_hex(n.state_hash));
}

// How many times `n` holds each update id.
std::map<UpdateId, int> held_ids(const NodeSnapshot& n) {
  std::map<UpdateId, int> held;
  for (const auto& [origin, updates] : n.log)
    for (const auto& u : updates) ++held[u.id()];
  return held;
}

// Where the model's calls are held. A call of a forked origin at or past
// the fork seq is left out of replay everywhere; the node that made it
// re-issued it (same method and argument) when it moved to a fresh origin:
// seq s of the forked origin became seq s - fork seq + 1 of the new one
// (which may have forked in turn).
// Calls are named by address: two branches of a forked origin may each hold
// an update of one id (two writers, one clock reading).
struct Resolved {
  std::map<OriginId, uint64_t> forks;                 // fork seqs, as the first node holds evidence of them
  std::map<const AckedCall*, UpdateId> ids;           // call -> the id it is held under, when re-issued
  std::map<const AckedCall*, std::string> lost;       // call -> why it is held nowhere (left out, not re-issued)
  std::set<UpdateId> taken;                           // re-issues some call resolved to
  std::map<OriginId, uint64_t> revoked;               // revocations in effect, as the first node holds them
  std::set<const AckedCall*> revoked_out;             // calls past their origin's revoked last seq: left out
  UpdateId held_as(const AckedCall& c) const {
    auto it = ids.find(&c);
    return it == ids.end() ? c.id : it->second;
  }
};

// `copies`: a re-issue by another node (a copy of the call's directory) may
// stand for the call, when no other call took it.
void resolve(const AckedCall& c, const NodeSnapshot& front, const std::vector<OriginMove>& moves, bool copies,
             Resolved& r) {
  UpdateId id = c.id;
  uint64_t seq = c.seq;
  size_t mark = c.moves;
  for (int hop = 0; hop < 16; ++hop) {
    if (auto rv = r.revoked.find(id.origin); rv != r.revoked.end() && seq > rv->second) {
      r.revoked_out.insert(&c);  // written past its revoked last seq: left out of replay everywhere
      return;
    }
    auto fork = r.forks.find(id.origin);
    if (fork == r.forks.end() || seq == 0 || seq < fork->second) break;
    const std::string left_out = "left out from origin " + hex_origin(id.origin) + "'s fork at seq " +
                                 std::to_string(fork->second) + " (it was seq " + std::to_string(seq) + ")";
    // The call's own node re-issues it when it moves; but a directory copied
    // over another carries its calls along, and the copy may be the one that
    // learns of the fork while it still writes the origin: any node that
    // moved from the origin after the call may hold its re-issue.
    const uint64_t again = seq - fork->second + 1;
    const auto reissued = [&](const OriginMove& mv) -> const Update* {
      auto log = front.log.find(mv.to);
      const Update* u = log != front.log.end() && again <= log->second.size() ? &log->second[again - 1] : nullptr;
      return u && u->method() == c.method && u->arg() == encode_msgpack(c.arg) ? u : nullptr;
    };
    size_t m = mark, own = moves.size();
    const Update* u = nullptr;
    for (int pass = 0; pass < (copies ? 2 : 1) && !u; ++pass)  // its own node's move first, then a copy's
      for (size_t i = mark; i < moves.size() && !u; ++i) {
        if (moves[i].from != id.origin || (moves[i].node == c.node) != (pass == 0)) continue;
        if (pass == 0 && own == moves.size()) own = i;
        if ((u = reissued(moves[i])) && pass == 1 && r.taken.count(u->id())) u = nullptr;
        if (u) m = i;
      }
    if (!u) {
      r.lost[&c] = left_out + (own == moves.size() ? ", and n" + std::to_string(c.node) + " never moved to a fresh origin after"
                                                   : ", and not re-issued as seq " + std::to_string(again) + " of origin " +
                                                         hex_origin(moves[own].to) + " (n" + std::to_string(c.node) +
                                                         " moved there) nor by a copy of its directory");
      return;
    }
    id = u->id();
    r.taken.insert(id);
    seq = again;
    mark = m + 1;
  }
  if (id != c.id) r.ids[&c] = id;
}

Resolved resolve_all(const std::vector<NodeSnapshot>& nodes, const Model& model, const std::vector<OriginMove>& moves) {
  Resolved r;
  if (nodes.empty()) return r;
  r.forks = nodes.front().fork_seqs;
  r.revoked = nodes.front().revoked;
  for (const auto& c : model.calls()) resolve(c, nodes.front(), moves, false, r);
  for (const auto& c : model.in_flight_calls()) resolve(c, nodes.front(), moves, false, r);
  // Then what its own node did not re-issue, from the re-issues no call took.
  std::vector<const AckedCall*> again;
  for (const auto& [c, _] : r.lost) again.push_back(c);
  for (const AckedCall* c : again) {
    r.lost.erase(c);
    resolve(*c, nodes.front(), moves, true, r);
  }
  return r;
}

// Every node holds evidence of the same forks (else replay differs).
void check_forks(const std::vector<NodeSnapshot>& nodes, std::vector<std::string>& out) {
  for (const auto& n : nodes)
    if (n.fork_seqs != nodes.front().fork_seqs)
      out.push_back(n.name + " holds fork evidence of " + std::to_string(n.fork_seqs.size()) + " origins, " +
                    nodes.front().name + " of " + std::to_string(nodes.front().fork_seqs.size()) +
                    " (or at other seqs)");
}

// The in-flight calls the first node holds (under the id they are held as,
// and not left out): the others must hold the same.
std::set<const AckedCall*> in_flight_held(const std::vector<NodeSnapshot>& nodes, const Model& model,
                                          const Resolved& r) {
  std::set<const AckedCall*> out;
  if (nodes.empty()) return out;
  const auto held = held_ids(nodes.front());
  for (const auto& call : model.in_flight_calls())
    if (!r.lost.count(&call) && !r.revoked_out.count(&call) && held.count(r.held_as(call))) out.insert(&call);
  return out;
}

void check_in_flight(const std::vector<NodeSnapshot>& nodes, const Model& model, const Resolved& r,
                     std::vector<std::string>& out) {
  const std::set<const AckedCall*> expected = in_flight_held(nodes, model, r);
  for (const auto& n : nodes) {
    const auto held = held_ids(n);
    for (const auto& call : model.in_flight_calls()) {
      if (r.lost.count(&call) || r.revoked_out.count(&call)) continue;  // left out, held by none (or not alike)
      auto it = held.find(r.held_as(call));
      const int times = it == held.end() ? 0 : it->second;
      if (times > 1 || (times == 1) != (expected.count(&call) == 1))
        out.push_back(n.name + ": call in flight at a crash (or on a directory copied over) " + call.id.to_string() +
                      " (" + call.method + ") held " + std::to_string(times) + " times, " + nodes.front().name +
                      " holds it " + std::to_string(expected.count(&call)) + " times");
    }
  }
}

void check_data(const std::vector<NodeSnapshot>& nodes, const Model& model, const Resolved& r,
                std::vector<std::string>& out) {
  const Value folded =
      model.fold(in_flight_held(nodes, model, r), [&](const AckedCall& c) { return r.held_as(c); }, r.revoked_out);
  const std::string expected = encode_msgpack(folded);
  for (const auto& n : nodes) {
    if (encode_msgpack(n.data) == expected) continue;
    // The first top-level key that differs, to start from.
    std::string where;
    if (n.data.is_map() && folded.is_map()) {
      std::set<std::string> keys;
      for (const auto& [k, _] : n.data.as_map()) keys.insert(k);
      for (const auto& [k, _] : folded.as_map()) keys.insert(k);
      for (const auto& k : keys) {
        auto a = n.data.as_map().find(k), b = folded.as_map().find(k);
        const bool same = a != n.data.as_map().end() && b != folded.as_map().end() &&
                          encode_msgpack(a->second) == encode_msgpack(b->second);
        if (!same) {
          where = " (first at key \"" + k + "\")";
          break;
        }
      }
    }
    out.push_back(n.name + ": data differs from the model's fold of " + std::to_string(model.calls().size()) +
                  " acknowledged calls" + where);
  }
}

void check_prefixes(const NodeSnapshot& n, std::vector<std::string>& out) {
  for (const auto& [origin, seq] : n.vector) {
    auto it = n.log.find(origin);
    const size_t held = it == n.log.end() ? 0 : it->second.size();
    if (held != seq) {
      out.push_back(n.name + ": origin " + hex_origin(origin) + " vector says " + std::to_string(seq) + ", holds " +
                    std::to_string(held));
      continue;
    }
    for (size_t i = 0; i < held; ++i)
      if (it->second[i].seq() != i + 1 || it->second[i].id().origin != origin) {
        out.push_back(n.name + ": origin " + hex_origin(origin) + " seq " + std::to_string(i + 1) + " out of place");
        break;
      }
  }
}

void check_acknowledged_once(const NodeSnapshot& n, const Model& model, const Resolved& r,
                             std::vector<std::string>& out) {
  const std::map<UpdateId, int> held = held_ids(n);
  for (const auto& call : model.calls()) {
    if (r.revoked_out.count(&call)) continue;  // held or not: left out of replay alike
    if (auto lost = r.lost.find(&call); lost != r.lost.end()) {
      out.push_back(n.name + ": acknowledged call " + call.id.to_string() + " (" + call.method + ") lost: " +
                    lost->second);
      continue;
    }
    const UpdateId as = r.held_as(call);
    auto it = held.find(as);
    const int times = it == held.end() ? 0 : it->second;
    if (times != 1)
      out.push_back(n.name + ": acknowledged call " + call.id.to_string() + " (" + call.method + ") held " +
                    (as == call.id ? "" : "as re-issued " + as.to_string() + " ") + std::to_string(times) + " times");
  }
}

// Refusals other than gaps and too-far-ahead, by verdict, with the first of
// each. A forked origin's branches are refused where the other is held: its
// runs refused as a fork, and any refused at or past the fork seq, are not
// counted (replay leaves them out alike, whichever branch is held); nor are
// another writer's runs of a node's own origin refused by that node.
void check_refusals(const Refusals& refusals, const std::map<OriginId, uint64_t>& forks,
                    const std::map<OriginId, uint64_t>& revoked, const Model& model, std::vector<std::string>& out) {
  // Calls of a node whose directory was copied over: their branch may have
  // vanished with it before its fork could be proved, and its runs that were
  // still travelling are then refused as unchained (held at most once, alike
  // everywhere, is what check_in_flight asks of them).
  std::set<UpdateId> vanished;
  for (const auto& c : model.in_flight_calls())
    if (c.copied_over) vanished.insert(c.id);
  std::map<Verdict, std::pair<uint64_t, const Refusal*>> by_verdict;
  for (const Refusal& r : refusals) {
    if (r.verdict == Verdict::kGap || r.verdict == Verdict::kTooFarAhead) continue;
    if (auto f = forks.find(r.id.origin); f != forks.end() && (r.verdict == Verdict::kFork || r.seq >= f->second))
      continue;
    // Another writer's branch of the node's own origin: a copy of its
    // directory writes too. Its fork may never be proved when one branch
    // vanished (a second copy over the node that wrote it); one state and
    // nothing lost judge it.
    if (r.own_origin && (r.verdict == Verdict::kFork || r.verdict == Verdict::kBadProof)) continue;
    // A revoked origin's runs past its last seq: held back as not a member's.
    if (auto rv = revoked.find(r.id.origin); rv != revoked.end() && r.seq > rv->second) continue;
    if (vanished.count(r.id) && (r.verdict == Verdict::kFork || r.verdict == Verdict::kBadProof)) continue;
    auto& [count, first] = by_verdict[r.verdict];
    if (count++ == 0) first = &r;
  }
  for (const auto& [verdict, seen] : by_verdict)
    out.push_back(std::to_string(seen.first) + " valid updates refused as " + verdict_name(verdict) + ", first by " +
                  seen.second->node + ": " + seen.second->detail);
}

}  // namespace

std::vector<std::string> check_run(const std::vector<NodeSnapshot>& nodes, const Model& model,
                                   const Refusals& refusals, const std::vector<OriginMove>& moves) {
  std::vector<std::string> out;
  for (const auto& n : nodes) check_prefixes(n, out);
  check_one_hash(nodes, out);
  check_forks(nodes, out);
  for (const auto& n : nodes)
    if (n.revoked != nodes.front().revoked)
      out.push_back(n.name + " holds " + std::to_string(n.revoked.size()) + " revocations in effect, " +
                    nodes.front().name + " " + std::to_string(nodes.front().revoked.size()) + " (or other last seqs)");
  const Resolved r = resolve_all(nodes, model, moves);
  check_data(nodes, model, r, out);
  check_in_flight(nodes, model, r, out);
  for (const auto& n : nodes) check_acknowledged_once(n, model, r, out);
  check_refusals(refusals, r.forks, r.revoked, model, out);
  return out;
}

std::vector<std::string> check_hostile(const std::vector<NodeSnapshot>& nodes, const HostileLedger& ledger) {
  std::vector<std::string> out;
  for (const auto& n : nodes)
    for (const auto& [origin, updates] : n.log)
      for (const auto& u : updates) {
        if (ledger.made_up_bytes.count({u.id(), u.body()}))
          out.push_back(n.name + " holds origin " + hex_origin(origin) + " seq " + std::to_string(u.seq()) + " (" +
                        u.id().to_string() + ") as the stranger forged or altered it");
      }
  return out;
}

std::vector<std::string> check_outsider(const NodeSnapshot& outsider, OriginId origin,
                                        const std::vector<NodeSnapshot>& nodes) {
  std::vector<std::string> out;
  for (const auto& [held, seq] : outsider.vector)
    if (held != origin)
      out.push_back(outsider.name + " holds origin " + hex_origin(held) + " up to seq " + std::to_string(seq) +
                    ": an untrusted node received updates");
  for (const auto& n : nodes)
    if (auto it = n.vector.find(origin); it != n.vector.end())
      out.push_back(n.name + " holds the outsider's origin " + hex_origin(origin) + " up to seq " +
                    std::to_string(it->second) + ": updates of an untrusted node were stored");
  return out;
}

}  // namespace replog::sim
