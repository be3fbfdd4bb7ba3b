// Peer endpoints: the only form a node dials is tcp://HOST:PORT, where HOST is
// an IPv4 address, a bracketed IPv6 address or a DNS name, and PORT is
// 1..65535 (PROTOCOL.md "Connecting back"). Anything else a peer names (ipc://,
// inproc://, a port of 0, a 10,000-character string) is refused before it
// reaches ZeroMQ, so no field of a frame can make a node dial a local socket
// or stop on an exception.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"

namespace replog {

// The longest endpoint accepted: "tcp://" + a 253-byte DNS name + ":65535".
inline constexpr size_t kMaxEndpointBytes = 6 + 253 + 6;

// OK when `endpoint` is tcp://HOST:PORT as above; otherwise why not, in one line.
Status check_peer_endpoint(std::string_view endpoint);

// Where others can reach a node bound to `bound` (tcp://HOST:PORT), for an
// invite: `bound` itself, unless HOST is a wildcard (0.0.0.0, *, [::]); then
// tcp://ADDRESS:PORT for each address of this host's interfaces that are up,
// loopback and link-local left out (IPv4 first; IPv6 too for [::]), at most
// `max` of them; 127.0.0.1 when there is none. kInvalidArgument when `bound`
// is not tcp://HOST:PORT.
Result<std::vector<std::string>> reachable_endpoints(const std::string& bound, size_t max);

}  // namespace replog
