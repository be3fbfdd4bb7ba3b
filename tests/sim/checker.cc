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

// The in-flight calls the first node holds: the others must hold the same.
std::set<UpdateId> in_flight_held(const std::vector<NodeSnapshot>& nodes, const Model& model) {
  std::set<UpdateId> out;
  if (nodes.empty()) return out;
  const auto held = held_ids(nodes.front());
  for (const auto& call : model.in_flight_calls())
    if (held.count(call.id)) out.insert(call.id);
  return out;
}

void check_in_flight(const std::vector<NodeSnapshot>& nodes, const Model& model, std::vector<std::string>& out) {
  const std::set<UpdateId> expected = in_flight_held(nodes, model);
  for (const auto& n : nodes) {
    const auto held = held_ids(n);
    for (const auto& call : model.in_flight_calls()) {
      auto it = held.find(call.id);
      const int times = it == held.end() ? 0 : it->second;
      if (times > 1 || (times == 1) != (expected.count(call.id) == 1))
        out.push_back(n.name + ": call in flight at a crash " + call.id.to_string() + " (" + call.method + ") held " +
                      std::to_string(times) + " times, " + nodes.front().name + " holds it " +
                      std::to_string(expected.count(call.id)) + " times");
    }
  }
}

void check_data(const std::vector<NodeSnapshot>& nodes, const Model& model, std::vector<std::string>& out) {
  const std::string expected = encode_msgpack(model.fold(in_flight_held(nodes, model)));
  for (const auto& n : nodes)
    if (encode_msgpack(n.data) != expected)
      out.push_back(n.name + ": data differs from the model's fold of " + std::to_string(model.calls().size()) +
                    " acknowledged calls");
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

void check_acknowledged_once(const NodeSnapshot& n, const Model& model, std::vector<std::string>& out) {
  const std::map<UpdateId, int> held = held_ids(n);
  for (const auto& call : model.calls()) {
    auto it = held.find(call.id);
    const int times = it == held.end() ? 0 : it->second;
    if (times != 1)
      out.push_back(n.name + ": acknowledged call " + call.id.to_string() + " (" + call.method + ") held " +
                    std::to_string(times) + " times");
  }
}

// Refusals other than gaps and too-far-ahead, by verdict, with the first of each.
void check_refusals(const Refusals& refusals, std::vector<std::string>& out) {
  std::map<Verdict, std::pair<uint64_t, const Refusal*>> by_verdict;
  for (const Refusal& r : refusals) {
    if (r.verdict == Verdict::kGap || r.verdict == Verdict::kTooFarAhead) continue;
    auto& [count, first] = by_verdict[r.verdict];
    if (count++ == 0) first = &r;
  }
  for (const auto& [verdict, seen] : by_verdict)
    out.push_back(std::to_string(seen.first) + " valid updates refused as " + verdict_name(verdict) + ", first by " +
                  seen.second->node + ": " + seen.second->detail);
}

}  // namespace

std::vector<std::string> check_run(const std::vector<NodeSnapshot>& nodes, const Model& model,
                                   const Refusals& refusals, bool relaxed) {
  std::vector<std::string> out;
  for (const auto& n : nodes) check_prefixes(n, out);
  if (relaxed) return out;
  check_one_hash(nodes, out);
  check_data(nodes, model, out);
  check_in_flight(nodes, model, out);
  for (const auto& n : nodes) check_acknowledged_once(n, model, out);
  check_refusals(refusals, out);
  return out;
}

std::vector<std::string> check_hostile(const std::vector<NodeSnapshot>& nodes, const HostileLedger& ledger) {
  std::vector<std::string> out;
  for (const auto& n : nodes)
    for (const auto& [origin, updates] : n.log)
      for (const auto& u : updates) {
        if (ledger.made_up.count(u.id()))
          out.push_back(n.name + " holds " + u.id().to_string() + ", which the stranger forged");
        else if (ledger.altered_updates.count({u.id(), u.body()}))
          out.push_back(n.name + " holds origin " + hex_origin(origin) + " seq " + std::to_string(u.seq()) +
                        " as the stranger altered it");
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
