#include "storage/trust.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "protocol/device_id.h"
#include "protocol/utf8.h"

namespace replog {

namespace {

using nlohmann::json;

constexpr int64_t kTrustFileVersion = 1;
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

// What add() and the loader both require of a device.
Status check_device(const TrustedDevice& device) {
  if (device.public_key.size() != kDeviceKeyBytes)
    return Status::invalid_argument("public key: " + std::to_string(device.public_key.size()) + " bytes, want " +
                                    std::to_string(kDeviceKeyBytes));
  if (device.added_ms < 0) return Status::invalid_argument("added_ms: negative");
  REPLOG_RETURN_IF_ERROR(check_device_name(device.name));
  return check_how(device.how);
}

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

Result<TrustedDevice> device_from_json(const json& j) {
  if (!j.is_object()) return Status::corruption("not an object");
  REPLOG_RETURN_IF_ERROR(only_members(j, {"id", "name", "added_ms", "how"}));
  const json *id = member(j, "id"), *name = member(j, "name"), *added = member(j, "added_ms"), *how = member(j, "how");
  if (!id || !id->is_string()) return Status::corruption("id: want a device id (a string)");
  if (!name || !name->is_string()) return Status::corruption("name: want a string");
  if (!how || !how->is_string()) return Status::corruption("how: want a string");
  if (!added || !added->is_number_unsigned() || added->get<uint64_t>() > std::numeric_limits<int64_t>::max())
    return Status::corruption("added_ms: want an integer, 0 or more");
  auto key = parse_device_id(id->get<std::string>());
  if (!key) return Status::corruption("id: " + key.status().message());
  TrustedDevice device{*key, name->get<std::string>(), added->get<int64_t>(), how->get<std::string>()};
  Status valid = check_device(device);
  if (!valid) return Status::corruption(valid.message());
  return device;
}

Status check_header(const json& doc) {
  if (!doc.is_object()) return Status::corruption("not a JSON object");
  REPLOG_RETURN_IF_ERROR(only_members(doc, {"version", "devices"}));
  const json* version = member(doc, "version");
  if (!version || !version->is_number_integer()) return Status::corruption("version: want the integer 1");
  if (version->get<int64_t>() != kTrustFileVersion)
    return Status::corruption("version " + version->dump() + " is not known (this build reads version 1)");
  const json* devices = member(doc, "devices");
  if (!devices || !devices->is_array()) return Status::corruption("devices: want an array");
  return Status::ok();
}

// The devices of a trust file's text, ordered by public key.
Result<std::vector<TrustedDevice>> parse_trust_file(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // nlohmann's messages start with "[json.exception.parse_error.101] "; keep the readable part.
    std::string what = e.what();
    auto start = what.find("] ");
    return Status::corruption("not JSON: " + (start == std::string::npos ? what : what.substr(start + 2)));
  }
  REPLOG_RETURN_IF_ERROR(check_header(doc));
  std::vector<TrustedDevice> devices;
  for (size_t i = 0; i < doc["devices"].size(); ++i) {
    auto device = device_from_json(doc["devices"][i]);
    if (!device) return device.status().with_context("devices[" + std::to_string(i) + "]");
    devices.push_back(std::move(device).value());
  }
  std::sort(devices.begin(), devices.end(),
            [](const TrustedDevice& a, const TrustedDevice& b) { return a.public_key < b.public_key; });
  auto twice = std::adjacent_find(devices.begin(), devices.end(), [](const auto& a, const auto& b) {
    return a.public_key == b.public_key;
  });
  if (twice != devices.end())
    return Status::corruption("devices: " + format_device_id(twice->public_key) + " is listed twice");
  return devices;
}

// The file's text: members in the documented order, two-space indents.
// REQUIRES: every device passes check_device() (dump() throws on bad UTF-8).
std::string trust_file_text(const std::vector<TrustedDevice>& devices) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& d : devices)
    list.push_back(
        {{"id", format_device_id(d.public_key)}, {"name", d.name}, {"added_ms", d.added_ms}, {"how", d.how}});
  nlohmann::ordered_json doc{{"version", kTrustFileVersion}, {"devices", std::move(list)}};
  return doc.dump(2) + "\n";
}

}  // namespace

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
  auto devices = parse_trust_file(*text);
  if (!devices) return devices.status().with_context(path);
  store->devices_ = std::move(devices).value();
  return store;
}

std::vector<TrustedDevice> TrustStore::list() const {
  std::lock_guard<std::mutex> l(mu_);
  return devices_;
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
  auto it = position_of(next, device.public_key);
  if (it != next.end() && it->public_key == device.public_key) {
    // Trusted already: only a new, non-empty name changes anything.
    if (device.name.empty() || device.name == it->name) return Status::ok();
    it->name = std::move(device.name);
  } else {
    next.insert(it, std::move(device));
  }
  REPLOG_RETURN_IF_ERROR(write_locked(next));
  devices_ = std::move(next);
  ++generation_;
  return Status::ok();
}

Result<bool> TrustStore::remove(std::string_view public_key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = position_of(devices_, public_key);
  if (it == devices_.end() || it->public_key != public_key) return false;
  std::vector<TrustedDevice> next = devices_;
  next.erase(next.begin() + (it - devices_.begin()));
  REPLOG_RETURN_IF_ERROR(write_locked(next));
  devices_ = std::move(next);
  ++generation_;
  return true;
}

uint64_t TrustStore::generation() const {
  std::lock_guard<std::mutex> l(mu_);
  return generation_;
}

Status TrustStore::write_locked(const std::vector<TrustedDevice>& devices) {
  return env_.write_file(path_, trust_file_text(devices), 0600);
}

}  // namespace replog
