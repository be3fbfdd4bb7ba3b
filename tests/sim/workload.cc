#include "sim/workload.h"

namespace replog::sim {

namespace {
Value at(const std::string& key, const char* name, Value v) { return Value(Map{{"path", Value(key)}, {name, std::move(v)}}); }
Value record_ref(const std::string& id) { return Value(Map{{"type", Value(kRecordType)}, {"id", Value(id)}}); }
}  // namespace

std::string Workload::pick(const char* prefix, int count) {
  return prefix + std::to_string(rng_() % static_cast<uint64_t>(count));
}

Value Workload::record_fields() {
  Map fields;
  if (rng_() % 2) fields["n"] = Value(static_cast<int64_t>(rng_() % 100));
  if (rng_() % 3 == 0) fields["tag"] = rng_() % 2 ? Value("t" + std::to_string(rng_() % 5)) : Value();
  return Value(std::move(fields));
}

std::pair<std::string, Value> Workload::random_call() {
  const auto small = [&] { return Value(static_cast<int64_t>(rng_() % 5)); };
  switch (rng_() % 10) {
    case 0: return {"set", at(pick("c", 4), "value", Value(static_cast<int64_t>(rng_() % 1000)))};
    case 1: case 2: return {"inc", at(pick("c", 4), "by", Value(static_cast<int64_t>(1 + rng_() % 5)))};
    case 3: return {"set", at(pick("v", 4), "value", rng_() % 2 ? Value("s" + std::to_string(rng_() % 9)) : small())};
    case 4: return {"add", at(pick("s", 3), "value", small())};
    case 5: return {"remove", at(pick("s", 3), "value", small())};
    case 6: return {"set", at(pick("s", 3), "value", rng_() % 4 ? Value(List{small()}) : small())};
    case 7: {
      Value arg = record_ref(pick("i", 4));
      arg.as_map()["fields"] = record_fields();
      return {"create", std::move(arg)};
    }
    case 8: {
      Value arg = record_ref(pick("i", 4));
      arg.as_map()["fields"] = record_fields();
      return {"update", std::move(arg)};
    }
    default: return {"delete", record_ref(pick("i", 4))};
  }
}

CallOutcome Workload::call(SimNode& node) {
  auto [method, arg] = random_call();
  return call(node, method, std::move(arg));
}

CallOutcome Workload::call(SimNode& node, const std::string& method, Value arg) {
  return call(node, method, std::move(arg), false);
}

CallOutcome Workload::call_in_flight(SimNode& node) {
  auto [method, arg] = random_call();
  return call(node, method, std::move(arg), true);
}

CallOutcome Workload::call(SimNode& node, const std::string& method, Value arg, bool answer_lost) {
  CallOutcome out;
  auto id = node.node->call(method, arg);
  out.line = std::string(answer_lost ? "call in flight n" : "call n") + std::to_string(node.index) + " " + method + " ";
  if (id) {
    out.acknowledged = !answer_lost;
    out.line += id->to_string();
    // Its seq: what the node holds of its origin now (one thread drives the node).
    const uint64_t seq = seq_of(node.node->vector(), id->origin);
    out.line += " #" + std::to_string(seq);
    const uint64_t moves = cluster_ ? cluster_->moves().size() : 0;
    if (answer_lost) model_.in_flight(*id, method, std::move(arg), node.index, seq, moves);
    else model_.acknowledge(*id, method, std::move(arg), node.index, seq, moves);
    return out;
  }
  using Code = Status::Code;
  const auto code = id.status().code();
  const bool storage = code == Code::kNoSpace || code == Code::kStoreFull || code == Code::kIOError;
  out.failed = code != Code::kRefused && code != Code::kInvalidArgument && !(storage && (storage_errors_expected_ || answer_lost));
  out.line += "refused " + std::to_string(static_cast<int>(code)) + (out.failed ? " " + id.status().message() : "");
  return out;
}

}  // namespace replog::sim
