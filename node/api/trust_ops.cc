#include "node/api/trust_ops.h"

#include "protocol/device_id.h"
#include "storage/data_dir.h"
#include "storage/identity.h"

namespace replog {

namespace {

// The device id in arg["id"], parsed; `usage` when it is missing.
Result<std::string> key_of(const Value& arg, const std::string& usage) {
  const Value* id = arg.find("id");
  if (!id || !id->is_string()) return Status::invalid_argument(usage);
  return parse_device_id(id->as_string());
}

// This node's public key; empty when the directory has no key file yet (then
// no key is its own: a key made later is a fresh random one).
Result<std::string> own_key(const std::string& data_dir, Env& env) {
  auto identity = load_identity(DataDir(data_dir, env).identity_file(), env);
  if (identity) return identity->public_key();
  if (identity.status().code() == Status::Code::kNotFound) return std::string();
  return identity.status();
}

Result<Value> trust_add(TrustStore& trust, const std::string& data_dir, const Value& arg, Env& env) {
  const std::string usage = "trust.add needs {id: device id, name?: str}";
  auto key = key_of(arg, usage);
  if (!key) return key.status();
  const Value* name = arg.find("name");
  if (name && !name->is_string()) return Status::invalid_argument(usage);
  auto own = own_key(data_dir, env);
  if (!own) return own.status();
  if (*key == *own)
    return Status::invalid_argument(format_device_id(*key) +
                                    " is this node's own device id; a node does not trust itself");
  // Authored by this node: the entry spreads to every member (PROTOCOL.md §7).
  TrustedDevice device{*key, name ? name->as_string() : "", env.now_millis(), "manual", 0, *own};
  REPLOG_RETURN_IF_ERROR(trust.add(std::move(device)));
  auto added = trust.find(*key);
  if (!added) return Status::not_found(format_device_id(*key) + " was removed while it was added");
  return trusted_device_value(*added);
}

}  // namespace

bool is_trust_op(const std::string& op) { return op == "trust.list" || op == "trust.add" || op == "trust.remove"; }

Value trusted_device_value(const TrustedDevice& device) {
  return Value(Map{{"id", Value(format_device_id(device.public_key))},
                   {"name", Value(device.name)},
                   {"added_ms", Value(device.added_ms)},
                   {"how", Value(device.how)},
                   {"changed_ms", Value(device.changed_ms)},
                   {"by", Value(device.changed_by.empty() ? "" : format_device_id(device.changed_by))}});
}

Value removed_device_value(const RemovedDevice& device) {
  return Value(Map{{"id", Value(format_device_id(device.public_key))},
                   {"name", Value(device.name)},
                   {"removed_ms", Value(device.removed_ms)},
                   {"by", Value(device.removed_by.empty() ? "" : format_device_id(device.removed_by))}});
}

Result<Value> run_trust_op(TrustStore& trust, const std::string& data_dir, const std::string& op, const Value& arg,
                           Env& env) {
  if (op == "trust.list") {
    List devices;
    for (const auto& d : trust.list()) devices.push_back(trusted_device_value(d));
    const Value* removed = arg.is_map() ? arg.find("removed") : nullptr;
    if (!removed || removed->kind() != Value::Kind::kBool || !removed->as_bool()) return Value(std::move(devices));
    List gone;
    for (const auto& d : trust.removed()) gone.push_back(removed_device_value(d));
    return Value(Map{{"devices", Value(std::move(devices))}, {"removed", Value(std::move(gone))}});
  }
  if (op == "trust.add") return trust_add(trust, data_dir, arg, env);
  if (op == "trust.remove") {
    auto key = key_of(arg, "trust.remove needs {id: device id}");
    if (!key) return key.status();
    auto own = own_key(data_dir, env);
    if (!own) return own.status();
    auto removed = trust.remove(*key, *own, env.now_millis());
    if (!removed) return removed.status();
    return Value(Map{{"removed", Value(*removed)}});
  }
  return Status::invalid_argument("unknown trust op \"" + op + "\" (trust.list, trust.add, trust.remove)");
}

}  // namespace replog
