#include "node/api/invite_ops.h"

#include "node/sync/endpoint.h"
#include "protocol/device_id.h"
#include "protocol/invite.h"

namespace replog {

namespace {

Result<std::vector<std::string>> endpoints_of(const Value* given, const InviterInfo& inviter) {
  if (!given || given->is_null()) return inviter.endpoints;
  if (!given->is_list()) return Status::invalid_argument("invite.create: endpoints must be a list of strings");
  if (given->as_list().empty() || given->as_list().size() > invite::kMaxEndpoints)
    return Status::invalid_argument("invite.create: give 1 to 8 endpoints");
  std::vector<std::string> out;
  for (const auto& e : given->as_list()) {
    if (!e.is_string()) return Status::invalid_argument("invite.create: endpoints must be a list of strings");
    REPLOG_RETURN_IF_ERROR(check_peer_endpoint(e.as_string()));
    out.push_back(e.as_string());
  }
  return out;
}

}  // namespace

Result<Value> run_invite_create(InviteBook& book, const InviterInfo& inviter, const Value& arg) {
  if (!arg.is_null() && !arg.is_map()) return Status::invalid_argument("invite.create needs {expires_ms?, endpoints?}");
  const Value* expires = arg.is_map() ? arg.find("expires_ms") : nullptr;
  if (expires && !expires->is_int()) return Status::invalid_argument("invite.create: expires_ms must be an integer");
  auto endpoints = endpoints_of(arg.is_map() ? arg.find("endpoints") : nullptr, inviter);
  if (!endpoints) return endpoints.status();
  invite::InviteLine line{inviter.cluster, inviter.public_key, "", std::move(endpoints).value()};
  line.secret.assign(invite::kSecretBytes, '\0');  // checked before an invite is opened
  REPLOG_RETURN_IF_ERROR(invite::check_line(line));
  auto opened = book.open(expires ? expires->as_int() : InviteBook::kDefaultExpiryMs);
  if (!opened) return opened.status();
  line.secret = opened->secret;
  List shown;
  for (const auto& e : line.endpoints) shown.push_back(Value(e));
  return Value(Map{{"line", Value(invite::format_line(line))},
                   {"expires_ms", Value(opened->expires_ms)},
                   {"cluster_id", Value(inviter.cluster)},
                   {"device_id", Value(format_device_id(inviter.public_key))},
                   {"endpoints", Value(std::move(shown))}});
}

}  // namespace replog
