// The local API's invite op (PROTOCOL.md §4): invite.create {expires_ms?,
// endpoints?} opens an invite in the running node's InviteBook and answers
// {line, expires_ms, cluster_id, device_id, endpoints}. `replog invite` is its
// only caller; it needs a running node, since invites live in its memory.
//
// Thread safety: as the InviteBook's (any thread).
#pragma once

#include <string>
#include <vector>

#include "node/sync/invites.h"
#include "replog/status.h"
#include "replog/value.h"

namespace replog {

// What an invite names of the node that makes it.
struct InviterInfo {
  std::string cluster;
  std::string public_key;              // Ed25519, 32 bytes
  std::vector<std::string> endpoints;  // where it listens, as others reach it (node/sync/endpoint.h)
};

// Opens an invite: expires_ms (default 10 minutes, 1 ms..24 h) and endpoints
// (1..8 tcp://HOST:PORT; default: `inviter.endpoints`) from `arg`, a map or
// nil. One-line errors for a bad arg, a bad endpoint or a full book.
Result<Value> run_invite_create(InviteBook& book, const InviterInfo& inviter, const Value& arg);

}  // namespace replog
