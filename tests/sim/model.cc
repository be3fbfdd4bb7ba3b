#include "sim/model.h"

#include <algorithm>

namespace replog::sim {

namespace {

const Value* member(const Value& arg, const char* name) { return arg.find(name); }
const std::string& key_of(const Value& arg) { return member(arg, "path")->as_string(); }

void fold_set(Map& root, const Value& arg) { root[key_of(arg)] = *member(arg, "value"); }

void fold_inc(Map& root, const Value& arg) {
  auto it = root.find(key_of(arg));
  const int64_t by = member(arg, "by")->as_int();
  if (it == root.end() || it->second.is_null()) root[key_of(arg)] = Value(by);
  else if (it->second.is_int()) it->second = Value(it->second.as_int() + by);
  // anything else: skipped
}

void fold_membership(Map& root, const Value& arg, bool add) {
  const Value& v = *member(arg, "value");
  auto it = root.find(key_of(arg));
  if (it != root.end() && !it->second.is_null() && !it->second.is_list()) return;  // skipped
  List members = it != root.end() && it->second.is_list() ? it->second.as_list() : List{};
  auto at = std::find(members.begin(), members.end(), v);
  if (add == (at != members.end())) return;  // nothing to change
  if (add) members.push_back(v);
  else members.erase(at);
  root[key_of(arg)] = Value(std::move(members));
}

Map* records(Map& root) {
  auto it = root.find(kRecordType);
  return it == root.end() ? nullptr : &it->second.as_map();
}

void fold_create(Map& root, const Value& arg) {
  const std::string& id = member(arg, "id")->as_string();
  Map* items = records(root);
  if (items && items->count(id)) return;  // exists: skipped
  if (!items) items = &(root[kRecordType] = Value(Map{})).as_map();
  const Value* fields = member(arg, "fields");
  (*items)[id] = Value::record(kRecordType, fields ? fields->as_map() : Map{});
}

void fold_update(Map& root, const Value& arg) {
  Map* items = records(root);
  const std::string& id = member(arg, "id")->as_string();
  if (!items || !items->count(id)) return;  // missing: skipped
  Map& fields = (*items)[id].as_record().fields;
  for (const auto& [name, value] : member(arg, "fields")->as_map()) {
    if (value.is_null()) fields.erase(name);
    else fields[name] = value;
  }
}

void fold_delete(Map& root, const Value& arg) {
  if (Map* items = records(root)) items->erase(member(arg, "id")->as_string());
}

}  // namespace

void Model::acknowledge(const UpdateId& id, std::string method, Value arg, int node, uint64_t seq, uint64_t moves) {
  calls_.push_back({id, std::move(method), std::move(arg), node, seq, moves});
}

void Model::in_flight(const UpdateId& id, std::string method, Value arg, int node, uint64_t seq, uint64_t moves) {
  in_flight_.push_back({id, std::move(method), std::move(arg), node, seq, moves});
}

void Model::forget_node(int node) {
  auto at = std::stable_partition(calls_.begin(), calls_.end(), [&](const AckedCall& c) { return c.node != node; });
  for (auto it = at; it != calls_.end(); ++it) it->copied_over = true;
  in_flight_.insert(in_flight_.end(), at, calls_.end());
  calls_.erase(at, calls_.end());
}

Value Model::fold(const std::set<UpdateId>& held) const {
  std::set<const AckedCall*> calls;
  for (const auto& c : in_flight_)
    if (held.count(c.id)) calls.insert(&c);
  return fold(calls, [](const AckedCall& c) { return c.id; });
}

Value Model::fold(const std::set<const AckedCall*>& held, const std::function<UpdateId(const AckedCall&)>& held_as,
                  const std::set<const AckedCall*>& left_out) const {
  std::vector<std::pair<UpdateId, const AckedCall*>> ordered;
  for (const auto& c : calls_)
    if (!left_out.count(&c)) ordered.push_back({held_as(c), &c});
  for (const auto& c : in_flight_)
    if (held.count(&c)) ordered.push_back({held_as(c), &c});
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Map root;
  const AckedCall* last = nullptr;
  for (const auto& [id, c] : ordered) {
    // Two writers of one origin (a copied directory) making one call at one
    // clock reading and seq wrote one update, byte for byte: it is held once.
    if (last && held_as(*last) == id && last->method == c->method && last->arg == c->arg) continue;
    last = c;
    if (c->method == "set") fold_set(root, c->arg);
    else if (c->method == "inc") fold_inc(root, c->arg);
    else if (c->method == "add") fold_membership(root, c->arg, true);
    else if (c->method == "remove") fold_membership(root, c->arg, false);
    else if (c->method == "create") fold_create(root, c->arg);
    else if (c->method == "update") fold_update(root, c->arg);
    else if (c->method == "delete") fold_delete(root, c->arg);
  }
  return Value(std::move(root));
}

}  // namespace replog::sim
