#include "storage/trust.h"

#include <algorithm>
#include <tuple>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "protocol/device_id.h"
#include "protocol/utf8.h"

namespace replog {

namespace {

using nlohmann::json;

constexpr int64_t kTrustFileVersion = 2;
constexpr size_t kMaxNameBytes = 64;

// Where `key` is, or would go, in `devices` (ordered by public key).
template <typename Devices>
auto position_of(Devices& devices, std::string_view key) {
  return std::lower_bound(devices.begin(), devices.end(), key,
                          [](const TrustedDevice& d, std::string_view k) { return std::string_view(d.public_key) < k; });
}

}  // namespace

// A name is printed on a terminal, where control characters would move the
// cursor or hide text.
Status check_device_name(const std::string& name) {
  if (name.size() > kMaxNameBytes)
    return Status::invalid_argument("name: " + std::to_string(name.size()) + " bytes, at most " +
                                    std::to_string(kMaxNameBytes) + " are allowed");
  if (!is_valid_utf8(name)) return Status::invalid_argument("name: not valid UTF-8");
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    // U+0080..U+009F are C2 80..C2 9F.
    bool c1 = c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) < 0xA0;
    if (c < 0x20 || c == 0x7F || c1)
      return Status::invalid_argument("name: a control character at byte " + std::to_string(i + 1));
  }
  return Status::ok();
}

namespace {

Status check_how(const std::string& how) {
  if (how == "manual" || how == "invite" || how == "introducer") return Status::ok();
  return Status::invalid_argument("how: \"" + how + "\" is not manual, invite or introducer");
}

Status check_key(const std::string& key, const char* what) {
  if (key.size() == kDeviceKeyBytes) return Status::ok();
  return Status::invalid_argument(std::string(what) + ": " + std::to_string(key.size()) + " bytes, want " +
                                  std::to_string(kDeviceKeyBytes));
}

// An author is a device key, or empty (this node, unkeyed).
Status check_author(const std::string& author) {
  return author.empty() ? Status::ok() : check_key(author, "author");
}

// What add() and the loader both require of a device.
Status check_device(const TrustedDevice& device) {
  REPLOG_RETURN_IF_ERROR(check_key(device.public_key, "public key"));
  if (device.added_ms < 0) return Status::invalid_argument("added_ms: negative");
  if (device.changed_ms < 0) return Status::invalid_argument("changed_ms: negative");
  REPLOG_RETURN_IF_ERROR(check_author(device.changed_by));
  REPLOG_RETURN_IF_ERROR(check_device_name(device.name));
  return check_how(device.how);
}

Status check_removed(const RemovedDevice& device) {
  REPLOG_RETURN_IF_ERROR(check_key(device.public_key, "public key"));
  if (device.removed_ms < 0) return Status::invalid_argument("removed_ms: negative");
  REPLOG_RETURN_IF_ERROR(check_author(device.removed_by));
  return check_device_name(device.name);
}

MemberEntry entry_of(const TrustedDevice& d) { return MemberEntry{d.public_key, false, d.changed_ms, d.changed_by, d.name}; }
MemberEntry entry_of(const RemovedDevice& d) { return MemberEntry{d.public_key, true, d.removed_ms, d.removed_by, d.name}; }

Status only_members(const json& object, std::initializer_list<const char*> allowed) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture those
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
      return Status::corruption("unknown member \"" + key + "\"");
  }
  return Status::ok();
}

// A member that must be there; null when it is not.
const json* member(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

Result<int64_t> ms_member(const json& j, const char* name) {
  const json* v = member(j, name);
  if (!v || !v->is_number_unsigned() || v->get<uint64_t>() > std::numeric_limits<int64_t>::max())
    return Status::corruption(std::string(name) + ": want an integer, 0 or more");
  return v->get<int64_t>();
}

Result<std::string> id_member(const json& j, const char* name, bool may_be_empty) {
  const json* id = member(j, name);
  if (!id || !id->is_string()) return Status::corruption(std::string(name) + ": want a device id (a string)");
  if (may_be_empty && id->get<std::string>().empty()) return std::string();
  auto key = parse_device_id(id->get<std::string>());
  if (!key) return Status::corruption(std::string(name) + ": " + key.status().message());
  return key;
}

Result<std::string> name_member(const json& j) {
  const json* name = member(j, "name");
  if (!name || !name->is_string()) return Status::corruption("name: want a string");
  return name->get<std::string>();
}

// Version 1 devices have no changed_ms and by: their entry is their adding, by this node.
Result<TrustedDevice> device_from_json(const json& j, int64_t version) {
  if (!j.is_object()) return Status::corruption("not an object");
  if (version == 1) REPLOG_RETURN_IF_ERROR(only_members(j, {"id", "name", "added_ms", "how"}));
  else REPLOG_RETURN_IF_ERROR(only_members(j, {"id", "name", "added_ms", "how", "changed_ms", "by"}));
  auto key = id_member(j, "id", false);
  if (!key) return key.status();
  auto name = name_member(j);
  if (!name) return name.status();
  const json* how = member(j, "how");
  if (!how || !how->is_string()) return Status::corruption("how: want a string");
  auto added = ms_member(j, "added_ms");
  if (!added) return added.status();
  TrustedDevice device{*key, *name, *added, how->get<std::string>(), *added, ""};
  if (version > 1) {
    auto changed = ms_member(j, "changed_ms");
    if (!changed) return changed.status();
    auto by = id_member(j, "by", true);
    if (!by) return by.status();
    device.changed_ms = *changed;
    device.changed_by = *by;
  }
  Status valid = check_device(device);
  if (!valid) return Status::corruption(valid.message());
  return device;
}

Result<RemovedDevice> removed_from_json(const json& j) {
  if (!j.is_object()) return Status::corruption("not an object");
  REPLOG_RETURN_IF_ERROR(only_members(j, {"id", "name", "removed_ms", "by"}));
  auto key = id_member(j, "id", false);
  if (!key) return key.status();
  auto name = name_member(j);
  if (!name) return name.status();
  auto ms = ms_member(j, "removed_ms");
  if (!ms) return ms.status();
  auto by = id_member(j, "by", true);
  if (!by) return by.status();
  RemovedDevice device{*key, *name, *ms, *by};
  Status valid = check_removed(device);
  if (!valid) return Status::corruption(valid.message());
  return device;
}

// The file's version (1 or 2), once its top level is as documented.
Result<int64_t> check_header(const json& doc) {
  if (!doc.is_object()) return Status::corruption("not a JSON object");
  const json* version = member(doc, "version");
  if (!version || !version->is_number_integer()) return Status::corruption("version: want the integer 1 or 2");
  const int64_t v = version->get<int64_t>();
  if (v != 1 && v != kTrustFileVersion)
    return Status::corruption("version " + version->dump() + " is not known (this build reads versions 1 and 2)");
  if (v == 1) REPLOG_RETURN_IF_ERROR(only_members(doc, {"version", "devices"}));
  else REPLOG_RETURN_IF_ERROR(only_members(doc, {"version", "devices", "removed"}));
  const json* devices = member(doc, "devices");
  if (!devices || !devices->is_array()) return Status::corruption("devices: want an array");
  if (v > 1) {
    const json* removed = member(doc, "removed");
    if (!removed || !removed->is_array()) return Status::corruption("removed: want an array");
  }
  return v;
}

template <typename T>
void sort_by_key(std::vector<T>& v) {
  std::sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.public_key < b.public_key; });
}

struct TrustFile {
  std::vector<TrustedDevice> devices;
  std::vector<RemovedDevice> removed;
};

// The devices and tombstones of a trust file's text, ordered by public key.
Result<TrustFile> parse_trust_file(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // nlohmann's messages start with "[json.exception.parse_error.101] "; keep the readable part.
    std::string what = e.what();
    auto start = what.find("] ");
    return Status::corruption("not JSON: " + (start == std::string::npos ? what : what.substr(start + 2)));
  }
  auto version = check_header(doc);
  if (!version) return version.status();
  TrustFile file;
  for (size_t i = 0; i < doc["devices"].size(); ++i) {
    auto device = device_from_json(doc["devices"][i], *version);
    if (!device) return device.status().with_context("devices[" + std::to_string(i) + "]");
    file.devices.push_back(std::move(device).value());
  }
  if (*version > 1) {
    for (size_t i = 0; i < doc["removed"].size(); ++i) {
      auto device = removed_from_json(doc["removed"][i]);
      if (!device) return device.status().with_context("removed[" + std::to_string(i) + "]");
      file.removed.push_back(std::move(device).value());
    }
  }
  sort_by_key(file.devices);
  sort_by_key(file.removed);
  std::vector<std::string> keys;
  for (const auto& d : file.devices) keys.push_back(d.public_key);
  for (const auto& d : file.removed) keys.push_back(d.public_key);
  std::sort(keys.begin(), keys.end());
  auto twice = std::adjacent_find(keys.begin(), keys.end());
  if (twice != keys.end()) return Status::corruption(format_device_id(*twice) + " is listed twice");
  if (keys.size() > kMaxTrustEntries)
    return Status::corruption(std::to_string(keys.size()) + " entries, at most " + std::to_string(kMaxTrustEntries));
  return file;
}

std::string author_text(const std::string& author) { return author.empty() ? "" : format_device_id(author); }

// The file's text: members in the documented order, two-space indents.
// REQUIRES: every entry passes check_device()/check_removed() (dump() throws on bad UTF-8).
std::string trust_file_text(const std::vector<TrustedDevice>& devices, const std::vector<RemovedDevice>& removed) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& d : devices)
    list.push_back({{"id", format_device_id(d.public_key)},
                    {"name", d.name},
                    {"added_ms", d.added_ms},
                    {"how", d.how},
                    {"changed_ms", d.changed_ms},
                    {"by", author_text(d.changed_by)}});
  nlohmann::ordered_json gone = nlohmann::ordered_json::array();
  for (const auto& d : removed)
    gone.push_back({{"id", format_device_id(d.public_key)},
                    {"name", d.name},
                    {"removed_ms", d.removed_ms},
                    {"by", author_text(d.removed_by)}});
  nlohmann::ordered_json doc{{"version", kTrustFileVersion}, {"devices", std::move(list)}, {"removed", std::move(gone)}};
  return doc.dump(2) + "\n";
}

// The entry held for `key`, member or tombstone, if any.
std::optional<MemberEntry> held_entry(const std::vector<TrustedDevice>& devices,
                                      const std::vector<RemovedDevice>& removed, std::string_view key) {
  auto d = position_of(devices, key);
  if (d != devices.end() && d->public_key == key) return entry_of(*d);
  auto r = std::lower_bound(removed.begin(), removed.end(), key,
                            [](const RemovedDevice& x, std::string_view k) { return std::string_view(x.public_key) < k; });
  if (r != removed.end() && r->public_key == key) return entry_of(*r);
  return std::nullopt;
}

// Drops `key` from both lists (its entry is being replaced).
void erase_key(std::vector<TrustedDevice>& devices, std::vector<RemovedDevice>& removed, std::string_view key) {
  std::erase_if(devices, [&](const TrustedDevice& d) { return d.public_key == key; });
  std::erase_if(removed, [&](const RemovedDevice& d) { return d.public_key == key; });
}

void insert_sorted(std::vector<TrustedDevice>& devices, TrustedDevice d) {
  auto at = position_of(devices, d.public_key);
  devices.insert(at, std::move(d));
}
void insert_sorted(std::vector<RemovedDevice>& removed, RemovedDevice d) {
  auto at = std::lower_bound(removed.begin(), removed.end(), d.public_key,
                             [](const RemovedDevice& x, const std::string& k) { return x.public_key < k; });
  removed.insert(at, std::move(d));
}

}  // namespace

bool supersedes(const MemberEntry& a, const MemberEntry& b) {
  return std::tie(a.ms, a.removed, a.author, a.name) > std::tie(b.ms, b.removed, b.author, b.name);
}

const char* member_refusal_name(MemberRefusal r) {
  switch (r) {
    case MemberRefusal::kAboutSender: return "about_sender";
    case MemberRefusal::kSelfAuthored: return "self_authored";
    case MemberRefusal::kAuthorRemoved: return "author_removed";
    case MemberRefusal::kFuture: return "future";
    case MemberRefusal::kInvalid: return "invalid";
    case MemberRefusal::kFull: return "full";
  }
  return "unknown";
}

Result<std::unique_ptr<TrustStore>> TrustStore::open(const std::string& path, Env& env) {
  std::unique_ptr<TrustStore> store(new TrustStore(path, env));
  auto mode = env.file_mode(path);
  if (!mode && mode.status().code() == Status::Code::kNotFound) return store;
  if (!mode) return mode.status();
  // Whoever may write this file decides who may write into the node.
  REPLOG_RETURN_IF_ERROR(
      check_owner_only(env, path, *mode, 022, "the trust list", "lets others change whom this node trusts"));
  auto text = env.read_file(path);
  if (!text) return text.status();
  auto file = parse_trust_file(*text);
  if (!file) return file.status().with_context(path);
  store->devices_ = std::move(file->devices);
  store->removed_ = std::move(file->removed);
  return store;
}

std::vector<TrustedDevice> TrustStore::list() const {
  std::lock_guard<std::mutex> l(mu_);
  return devices_;
}

std::vector<RemovedDevice> TrustStore::removed() const {
  std::lock_guard<std::mutex> l(mu_);
  return removed_;
}

std::vector<MemberEntry> TrustStore::entries() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<MemberEntry> out;
  out.reserve(devices_.size() + removed_.size());
  for (const auto& d : devices_) out.push_back(entry_of(d));
  for (const auto& d : removed_) out.push_back(entry_of(d));
  std::sort(out.begin(), out.end(), [](const MemberEntry& a, const MemberEntry& b) { return a.public_key < b.public_key; });
  return out;
}

std::optional<TrustedDevice> TrustStore::find(std::string_view public_key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = position_of(devices_, public_key);
  if (it == devices_.end() || it->public_key != public_key) return std::nullopt;
  return *it;
}

Status TrustStore::add(TrustedDevice device) {
  REPLOG_RETURN_IF_ERROR(check_device(device));
  std::lock_guard<std::mutex> l(mu_);
  std::vector<TrustedDevice> next = devices_;
  std::vector<RemovedDevice> next_removed = removed_;
  auto held = held_entry(devices_, removed_, device.public_key);
  // The new entry must win over the one it replaces, whatever the clocks say.
  device.changed_ms = std::max(device.added_ms, held ? held->ms + 1 : 0);
  auto it = position_of(next, device.public_key);
  if (it != next.end() && it->public_key == device.public_key) {
    // Trusted already: only a new, non-empty name changes anything.
    if (device.name.empty() || device.name == it->name) return Status::ok();
    it->name = std::move(device.name);
    it->changed_ms = device.changed_ms;
    it->changed_by = std::move(device.changed_by);
  } else {
    if (!held && devices_.size() + removed_.size() >= kMaxTrustEntries)
      return Status::invalid_argument("the trust list is full: " + std::to_string(kMaxTrustEntries) +
                                      " devices, removed ones included");
    if (device.name.empty() && held) device.name = held->name;
    erase_key(next, next_removed, device.public_key);
    insert_sorted(next, std::move(device));
  }
  REPLOG_RETURN_IF_ERROR(write_locked(next, next_removed));
  devices_ = std::move(next);
  removed_ = std::move(next_removed);
  ++generation_;
  return Status::ok();
}

Result<bool> TrustStore::remove(std::string_view public_key, std::string_view author, int64_t ms) {
  REPLOG_RETURN_IF_ERROR(check_key(std::string(public_key), "public key"));
  REPLOG_RETURN_IF_ERROR(check_author(std::string(author)));
  std::lock_guard<std::mutex> l(mu_);
  auto held = held_entry(devices_, removed_, public_key);
  if (held && held->removed) return false;  // removed already
  if (!held && devices_.size() + removed_.size() >= kMaxTrustEntries)
    return Status::invalid_argument("the trust list is full: " + std::to_string(kMaxTrustEntries) +
                                    " devices, removed ones included");
  std::vector<TrustedDevice> next = devices_;
  std::vector<RemovedDevice> next_removed = removed_;
  erase_key(next, next_removed, public_key);
  insert_sorted(next_removed, RemovedDevice{std::string(public_key), held ? held->name : "",
                                            std::max(ms, held ? held->ms + 1 : 0), std::string(author)});
  REPLOG_RETURN_IF_ERROR(write_locked(next, next_removed));
  devices_ = std::move(next);
  removed_ = std::move(next_removed);
  ++generation_;
  return held.has_value();
}

Result<MergeResult> TrustStore::merge(const std::vector<MemberEntry>& entries, const MergeRules& rules) {
  MergeResult result;
  std::lock_guard<std::mutex> l(mu_);
  std::vector<TrustedDevice> next = devices_;
  std::vector<RemovedDevice> next_removed = removed_;
  auto refuse = [&](MemberRefusal why, const MemberEntry& e) { result.refused.emplace_back(why, e.public_key); };
  for (const MemberEntry& e : entries) {
    if (!rules.own_key.empty() && e.public_key == rules.own_key) continue;  // a node never trusts itself
    if (e.public_key == rules.sender) {
      refuse(MemberRefusal::kAboutSender, e);
      continue;
    }
    if (e.author == e.public_key) {
      refuse(MemberRefusal::kSelfAuthored, e);
      continue;
    }
    if (e.ms > rules.now_ms + rules.max_ahead_ms) {
      refuse(MemberRefusal::kFuture, e);
      continue;
    }
    if (e.public_key.size() != kDeviceKeyBytes || e.author.size() != kDeviceKeyBytes || e.ms < 0 ||
        !check_device_name(e.name)) {
      refuse(MemberRefusal::kInvalid, e);
      continue;
    }
    auto author = held_entry(next, next_removed, e.author);
    if (author && author->removed && author->ms <= e.ms) {
      refuse(MemberRefusal::kAuthorRemoved, e);
      continue;
    }
    auto held = held_entry(next, next_removed, e.public_key);
    if (held && !supersedes(e, *held)) continue;  // what we hold is as new or newer
    if (!held && next.size() + next_removed.size() >= kMaxTrustEntries) {
      refuse(MemberRefusal::kFull, e);
      continue;
    }
    const bool was_member = held && !held->removed;
    if (e.removed) {
      erase_key(next, next_removed, e.public_key);
      insert_sorted(next_removed, RemovedDevice{e.public_key, e.name, e.ms, e.author});
      if (was_member) result.removed.push_back(e.public_key);
    } else if (was_member) {
      auto it = position_of(next, e.public_key);
      it->name = e.name;
      it->changed_ms = e.ms;
      it->changed_by = e.author;
    } else {
      erase_key(next, next_removed, e.public_key);
      insert_sorted(next, TrustedDevice{e.public_key, e.name, rules.now_ms, "introducer", e.ms, e.author});
      result.added.push_back(e.public_key);
    }
    ++result.accepted;
  }
  if (result.accepted == 0) return result;
  REPLOG_RETURN_IF_ERROR(write_locked(next, next_removed));
  devices_ = std::move(next);
  removed_ = std::move(next_removed);
  ++generation_;
  return result;
}

uint64_t TrustStore::generation() const {
  std::lock_guard<std::mutex> l(mu_);
  return generation_;
}

Status TrustStore::write_locked(const std::vector<TrustedDevice>& devices, const std::vector<RemovedDevice>& removed) {
  return env_.write_file(path_, trust_file_text(devices, removed), 0600);
}

}  // namespace replog
