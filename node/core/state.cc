#include "node/core/state.h"

#include <sodium.h>

#include <algorithm>

#include "protocol/bytes.h"
#include "protocol/msgpack_codec.h"

namespace replog {

std::string path_to_string(const Path& path) {
  std::string out;
  for (const auto& seg : path) out = path_child(out, seg);
  return out;
}

Path parse_dotted_path(std::string_view text) {
  Path p;
  parse_dotted_path_into(text, p);
  return p;
}

void parse_dotted_path_into(std::string_view text, Path& out) {
  size_t n = 0;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view seg = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (n < out.size()) out[n].assign(seg);
    else out.emplace_back(seg);
    ++n;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  out.resize(n);
}

const char* conflict_kind_name(ConflictKind kind) {
  switch (kind) {
    case ConflictKind::kSchema: return "schema";
    case ConflictKind::kUnique: return "unique";
    case ConflictKind::kFailed: return "failed";
    case ConflictKind::kOverflow: return "overflow";
    case ConflictKind::kMissing: return "missing";
    case ConflictKind::kExists: return "exists";
    case ConflictKind::kBadArgument: return "bad-argument";
  }
  return "unknown";
}

namespace {

// A child inside a map or a record's fields, or a list element by index.
Value* child_of(Value& v, const std::string& seg) {
  if (v.is_map()) {
    auto it = v.as_map().find(seg);
    return it == v.as_map().end() ? nullptr : &it->second;
  }
  if (v.is_record()) {
    auto it = v.as_record().fields.find(seg);
    return it == v.as_record().fields.end() ? nullptr : &it->second;
  }
  if (v.is_list()) {
    if (seg.empty() || seg.size() > 9 || !std::all_of(seg.begin(), seg.end(), ::isdigit)) return nullptr;
    size_t i = std::stoul(seg);
    return i < v.as_list().size() ? &v.as_list()[i] : nullptr;
  }
  return nullptr;
}

Map* members_of(Value& v) {
  if (v.is_map()) return &v.as_map();
  if (v.is_record()) return &v.as_record().fields;
  return nullptr;
}

}  // namespace

State::State() : root_(Map{}), schema_(std::make_shared<const TypeRegistry>()) {}

const Value* State::get(const Path& path) const {
  const Value* cur = &root_;
  for (const auto& seg : path) {
    cur = child_of(const_cast<Value&>(*cur), seg);
    if (!cur) return nullptr;
  }
  return cur;
}

std::optional<UpdateId> State::record_writer(const std::string& type, const std::string& id) const {
  auto it = writers_.find(record_key(type, id));
  if (it == writers_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> State::unique_holder(const std::string& type, const std::string& field,
                                                const Value& value, const std::string& except) const {
  auto t = unique_.find(type);
  if (t == unique_.end()) return std::nullopt;
  auto f = t->second.find(field);
  if (f == t->second.end()) return std::nullopt;
  auto v = f->second.find(encode_msgpack(value));
  if (v == f->second.end()) return std::nullopt;
  for (const auto& id : v->second)  // ids in order: the answer depends on the data alone
    if (id != except) return id;
  return std::nullopt;
}

void State::reindex_under(const Path& path, bool add) {
  auto rt = schema_->find_record(path[0]);
  if (!rt || rt->unique().empty()) return;
  const Value* records = get({path[0]});
  if (records == nullptr) return;
  auto one = [&](const std::string& id, const Value& record) {
    if (add) index_record(path[0], id, record);
    else unindex_record(path[0], id, record);
  };
  if (path.size() >= 2) {
    if (const Value* record = records->find(path[1])) one(path[1], *record);
  } else if (records->is_map()) {
    for (const auto& [id, record] : records->as_map()) one(id, record);
  }
}

void State::index_record(const std::string& type, const std::string& id, const Value& record) {
  if (!record.is_record() || record.as_record().type != type) return;
  auto rt = schema_->find_record(type);
  if (!rt) return;
  for (const auto& field : rt->unique()) {
    const Value* v = record.find(field);
    if (!v || v->is_null()) continue;
    unique_[type][field][encode_msgpack(*v)].insert(id);
  }
}

void State::unindex_record(const std::string& type, const std::string& id, const Value& record) {
  if (!record.is_record() || record.as_record().type != type) return;
  auto t = unique_.find(type);
  if (t == unique_.end()) return;
  for (auto& [field, slots] : t->second) {
    const Value* v = record.find(field);
    if (!v || v->is_null()) continue;
    auto it = slots.find(encode_msgpack(*v));
    if (it == slots.end()) continue;
    it->second.erase(id);
    if (it->second.empty()) slots.erase(it);
  }
}

void State::rebuild_index() {
  unique_.clear();
  for (const auto& [type, records] : root_.as_map()) {
    auto rt = schema_->find_record(type);
    if (!rt || rt->unique().empty() || !records.is_map()) continue;
    for (const auto& [id, record] : records.as_map()) index_record(type, id, record);
  }
}

Status State::write(const Path& path, std::optional<Value> value, UndoEntry* undo) {
  if (path.empty()) return Status::invalid_argument("the root cannot be replaced; name a path");
  // The unique index follows the records under `path`: out before the change,
  // back in after it, whichever way this function returns.
  reindex_under(path, false);
  struct Reindex {
    State* state;
    const Path& path;
    // NOLINTNEXTLINE(bugprone-exception-escape): only checked accesses (as_map() after is_map()) that cannot throw
    ~Reindex() { state->reindex_under(path, true); }
  } reindex{this, path};

  Value* cur = &root_;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    Value* next = child_of(*cur, path[i]);
    if (next == nullptr) {
      if (!value) return Status::ok();  // erasing below a missing place: nothing to do
      Map* m = members_of(*cur);
      if (m == nullptr) {
        return Status::invalid_argument(at_path(path_to_string(Path(path.begin(), path.begin() + static_cast<long>(i))),
                                                std::string("is a ") + cur->kind_name() + ", not a map"));
      }
      // Create the missing maps; undoing erases the topmost one.
      if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::PathOp>, UndoEntry::PathOp{Path(path.begin(), path.begin() + static_cast<long>(i) + 1), std::nullopt, path});
      Value* made = &(*m)[path[i]];
      *made = Value(Map{});
      for (size_t j = i + 1; j + 1 < path.size(); ++j) {
        made = &made->as_map()[path[j]];
        *made = Value(Map{});
      }
      made->as_map()[path.back()] = std::move(*value);
      return Status::ok();
    }
    if (members_of(*next) == nullptr && !next->is_list()) {
      return Status::invalid_argument(at_path(path_to_string(Path(path.begin(), path.begin() + static_cast<long>(i) + 1)),
                                              std::string("is a ") + next->kind_name() + ", not a map"));
    }
    cur = next;
  }
  const std::string& last = path.back();
  if (cur->is_list()) {
    Value* slot = child_of(*cur, last);
    if (slot == nullptr || !value) {
      return Status::invalid_argument(at_path(
          path_to_string(path), slot ? "a list element cannot be unset (use remove)" : "no such list element"));
    }
    // The old value is replaced: it moves into the undo entry rather than being copied.
    if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::PathOp>, UndoEntry::PathOp{path, std::move(*slot), {}});
    *slot = std::move(*value);
  } else if (Map* m = members_of(*cur)) {
    if (value) {
      auto [it, inserted] = m->try_emplace(last);
      if (undo)
        undo->ops.emplace_back(std::in_place_type<UndoEntry::PathOp>,
                               UndoEntry::PathOp{path, inserted ? std::nullopt : std::optional<Value>(std::move(it->second)), {}});
      it->second = std::move(*value);
    } else {
      auto it = m->find(last);
      if (it == m->end()) return Status::ok();  // nothing to erase
      if (undo)
        undo->ops.emplace_back(std::in_place_type<UndoEntry::PathOp>, UndoEntry::PathOp{path, std::move(it->second), {}});
      m->erase(it);
    }
  } else {
    return Status::invalid_argument(at_path(path_to_string(Path(path.begin(), path.end() - 1)),
                                            std::string("is a ") + cur->kind_name() + ", not a map"));
  }
  return Status::ok();
}

void State::add_conflict(Conflict c, UndoEntry* undo) {
  auto it = conflicts_.find(c.skipped);
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::ConflictOp>, UndoEntry::ConflictOp{c.skipped, it == conflicts_.end() ? std::nullopt : std::optional<Conflict>(it->second)});
  UpdateId key = c.skipped;
  conflicts_[key] = std::move(c);
}

void State::remove_conflict(const UpdateId& key, UndoEntry* undo) {
  auto it = conflicts_.find(key);
  if (it == conflicts_.end()) return;
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::ConflictOp>, UndoEntry::ConflictOp{key, it->second});
  conflicts_.erase(it);
}

void State::set_writer(const std::string& type, const std::string& id, std::optional<UpdateId> writer, UndoEntry* undo) {
  std::string key = record_key(type, id);
  auto it = writers_.find(key);
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::WriterOp>, UndoEntry::WriterOp{key, it == writers_.end() ? std::nullopt : std::optional<UpdateId>(it->second)});
  if (writer) writers_[key] = *writer;
  else if (it != writers_.end()) writers_.erase(it);
}

void State::set_schema(std::shared_ptr<const TypeRegistry> schema, UndoEntry* undo) {
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::SchemaOp>, UndoEntry::SchemaOp{schema_});
  schema_ = std::move(schema);
  rebuild_index();
}

void State::set_retired(OriginId origin, uint64_t last_seq, UndoEntry* undo) {
  auto it = retired_.find(origin);
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::RetiredOp>, UndoEntry::RetiredOp{origin, it == retired_.end() ? std::nullopt : std::optional<uint64_t>(it->second)});
  retired_[origin] = last_seq;
}

void State::count_unknown(UndoEntry* undo) {
  if (undo) undo->ops.emplace_back(std::in_place_type<UndoEntry::UnknownOp>, UndoEntry::UnknownOp{});
  ++unknown_;
}

void State::undo(const UndoEntry& entry) {
  for (auto op = entry.ops.rbegin(); op != entry.ops.rend(); ++op) {
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, UndoEntry::PathOp>) {
            (void)write(o.path, o.old, nullptr);
          } else if constexpr (std::is_same_v<T, UndoEntry::ConflictOp>) {
            if (o.old) conflicts_[o.key] = *o.old;
            else conflicts_.erase(o.key);
          } else if constexpr (std::is_same_v<T, UndoEntry::WriterOp>) {
            if (o.old) writers_[o.record] = *o.old;
            else writers_.erase(o.record);
          } else if constexpr (std::is_same_v<T, UndoEntry::SchemaOp>) {
            schema_ = o.old;
            rebuild_index();
          } else if constexpr (std::is_same_v<T, UndoEntry::RetiredOp>) {
            if (o.old) retired_[o.origin] = *o.old;
            else retired_.erase(o.origin);
          } else {
            --unknown_;
          }
        },
        *op);
  }
}

// --- encodings ---------------------------------------------------------------

namespace {

Value id_value(const UpdateId& id) {
  auto k = id.key();
  return Value(Bytes{std::string(k.data(), k.size())});
}

Value conflicts_value(const std::map<UpdateId, Conflict>& conflicts) {
  List out;
  for (const auto& [key, c] : conflicts) {
    List involved;
    for (const auto& i : c.involved) involved.push_back(id_value(i));
    List path;
    for (const auto& seg : c.path) path.push_back(Value(seg));
    out.push_back(Value(List{id_value(key), Value(static_cast<int64_t>(c.kind)), Value(std::move(involved)),
                             Value(std::move(path))}));
  }
  return Value(std::move(out));
}

Value retired_value(const std::map<OriginId, uint64_t>& retired) {
  Map m;
  for (const auto& [origin, seq] : retired) m[hex16(origin)] = Value(static_cast<int64_t>(seq));
  return Value(std::move(m));
}

void append_array_header(std::string& out, uint8_t n) { out.push_back(static_cast<char>(0x90 | n)); }

Result<UpdateId> id_from(const Value& v) {
  if (v.kind() != Value::Kind::kBytes || v.as_bytes().data.size() != 16)
    return Status::corruption("checkpoint: update id is not 16 bytes");
  return UpdateId::from_key(v.as_bytes().data);
}

}  // namespace

void State::append_hashed_parts(std::string& out) const {
  encode_msgpack_into(root_, out);
  encode_msgpack_into(conflicts_value(conflicts_), out);
  encode_msgpack_into(schema_->to_document(), out);
  encode_msgpack_into(retired_value(retired_), out);
}

std::string State::canonical_encoding() const {
  std::string out;
  append_array_header(out, 4);
  append_hashed_parts(out);
  return out;
}

std::array<uint8_t, 32> State::hash() const {
  std::string enc = canonical_encoding();
  std::array<uint8_t, 32> h;
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(enc.data()), enc.size(), nullptr, 0);
  return h;
}

std::string State::hash_hex() const {
  auto h = hash();
  return to_hex(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

std::string State::encode() const {
  std::string out;
  append_array_header(out, 6);  // the four hashed parts, then what replay needs besides
  append_hashed_parts(out);
  Map writers;
  for (const auto& [k, id] : writers_) writers[k] = id_value(id);
  encode_msgpack_into(Value(std::move(writers)), out);
  encode_msgpack_into(Value(static_cast<int64_t>(unknown_)), out);
  return out;
}

Result<State> State::decode(std::string_view bytes) {
  auto v = decode_msgpack_local(bytes);
  if (!v) return v.status().with_context("checkpoint state");
  if (!v->is_list() || v->as_list().size() != 6) return Status::corruption("checkpoint state is not a 6-element array");
  List& parts = v->as_list();
  State s;
  if (!parts[0].is_map()) return Status::corruption("checkpoint state: data is not a map");
  s.root_ = std::move(parts[0]);
  if (!parts[1].is_list()) return Status::corruption("checkpoint state: conflicts are not a list");
  for (const auto& c : parts[1].as_list()) {
    if (!c.is_list() || c.as_list().size() != 4 || !c.as_list()[1].is_int() || !c.as_list()[2].is_list() ||
        !c.as_list()[3].is_list())
      return Status::corruption("checkpoint state: malformed conflict");
    Conflict conflict;
    auto skipped = id_from(c.as_list()[0]);
    if (!skipped) return skipped.status();
    conflict.skipped = *skipped;
    conflict.kind = static_cast<ConflictKind>(c.as_list()[1].as_int());
    for (const auto& i : c.as_list()[2].as_list()) {
      auto id = id_from(i);
      if (!id) return id.status();
      conflict.involved.push_back(*id);
    }
    for (const auto& seg : c.as_list()[3].as_list()) {
      if (!seg.is_string()) return Status::corruption("checkpoint state: conflict path is not strings");
      conflict.path.push_back(seg.as_string());
    }
    s.conflicts_[conflict.skipped] = std::move(conflict);
  }
  auto reg = TypeRegistry::from_document(parts[2]);
  if (!reg) return reg.status().with_context("checkpoint state");
  s.schema_ = std::make_shared<const TypeRegistry>(std::move(reg).value());
  if (!parts[3].is_map()) return Status::corruption("checkpoint state: retired is not a map");
  for (const auto& [origin, seq] : parts[3].as_map()) {
    auto o = parse_hex16(origin);
    if (!o || !seq.is_int()) return Status::corruption("checkpoint state: malformed retired entry");
    s.retired_[*o] = static_cast<uint64_t>(seq.as_int());
  }
  if (!parts[4].is_map()) return Status::corruption("checkpoint state: writers is not a map");
  for (const auto& [k, id] : parts[4].as_map()) {
    auto w = id_from(id);
    if (!w) return w.status();
    s.writers_[k] = *w;
  }
  if (!parts[5].is_int()) return Status::corruption("checkpoint state: unknown count is not an int");
  s.unknown_ = static_cast<uint64_t>(parts[5].as_int());
  s.rebuild_index();
  return s;
}

}  // namespace replog
