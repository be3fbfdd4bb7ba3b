#include "storage/peers.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "protocol/device_id.h"

namespace replog {

namespace {

using nlohmann::json;

constexpr int64_t kPeersFileVersion = 1;

// tcp://HOST:PORT with a printable HOST and PORT 1..65535; what the daemon
// dials is checked again there (node/sync/endpoint.h).
Status check_endpoint(const std::string& e) {
  const auto colon = e.rfind(':');
  if (e.size() > 255 || e.compare(0, 6, "tcp://") != 0 || colon == std::string::npos || colon <= 6)
    return Status::invalid_argument("endpoint \"" + e.substr(0, 64) + "\": want tcp://HOST:PORT");
  for (char c : e)
    if (c < 0x21 || c > 0x7e) return Status::invalid_argument("endpoint: not printable ASCII");
  const std::string port = e.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    return Status::invalid_argument("endpoint " + e + ": port is not 1..65535");
  return Status::ok();
}

Status check_peer(const StoredPeer& p) {
  if (p.public_key.size() != kDeviceKeyBytes) return Status::invalid_argument("id: want a 32-byte key");
  if (p.how != "invite") return Status::invalid_argument("how: \"" + p.how + "\" is not invite");
  if (p.endpoints.empty() || p.endpoints.size() > kMaxStoredPeerEndpoints)
    return Status::invalid_argument("endpoints: want 1 to 8");
  for (const auto& e : p.endpoints) REPLOG_RETURN_IF_ERROR(check_endpoint(e));
  return Status::ok();
}

Result<StoredPeer> peer_from_json(const json& j) {
  if (!j.is_object() || j.size() != 3 || !j.contains("id") || !j.contains("endpoints") || !j.contains("how"))
    return Status::corruption("want exactly {id, endpoints, how}");
  if (!j["id"].is_string() || !j["how"].is_string() || !j["endpoints"].is_array())
    return Status::corruption("id and how are strings, endpoints an array");
  auto key = parse_device_id(j["id"].get<std::string>());
  if (!key) return Status::corruption("id: " + key.status().message());
  StoredPeer p{*key, {}, j["how"].get<std::string>()};
  for (const auto& e : j["endpoints"]) {
    if (!e.is_string()) return Status::corruption("endpoints: want strings");
    if (p.endpoints.size() > kMaxStoredPeerEndpoints) break;
    p.endpoints.push_back(e.get<std::string>());
  }
  Status valid = check_peer(p);
  if (!valid) return Status::corruption(valid.message());
  return p;
}

Result<std::vector<StoredPeer>> parse_peers_file(const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Status::corruption("not a JSON object");
  if (doc.size() != 2 || !doc.contains("version") || !doc.contains("peers"))
    return Status::corruption("want exactly {version, peers}");
  if (!doc["version"].is_number_integer() || doc["version"].get<int64_t>() != kPeersFileVersion)
    return Status::corruption("version " + doc["version"].dump() + " is not known (this build reads version 1)");
  if (!doc["peers"].is_array() || doc["peers"].size() > kMaxStoredPeers)
    return Status::corruption("peers: want an array of at most 256");
  std::vector<StoredPeer> peers;
  for (size_t i = 0; i < doc["peers"].size(); ++i) {
    auto p = peer_from_json(doc["peers"][i]);
    if (!p) return p.status().with_context("peers[" + std::to_string(i) + "]");
    if (std::any_of(peers.begin(), peers.end(), [&](const StoredPeer& q) { return q.public_key == p->public_key; }))
      return Status::corruption("peers: " + format_device_id(p->public_key) + " is listed twice");
    peers.push_back(std::move(p).value());
  }
  return peers;
}

std::string peers_file_text(std::vector<StoredPeer> peers) {
  std::sort(peers.begin(), peers.end(), [](const auto& a, const auto& b) { return a.public_key < b.public_key; });
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& p : peers)
    list.push_back({{"id", format_device_id(p.public_key)}, {"endpoints", p.endpoints}, {"how", p.how}});
  nlohmann::ordered_json doc{{"version", kPeersFileVersion}, {"peers", std::move(list)}};
  return doc.dump(2) + "\n";
}

}  // namespace

Result<std::vector<StoredPeer>> load_peers(const std::string& path, Env& env) {
  auto mode = env.file_mode(path);
  if (!mode && mode.status().code() == Status::Code::kNotFound) return std::vector<StoredPeer>{};
  if (!mode) return mode.status();
  REPLOG_RETURN_IF_ERROR(
      check_owner_only(env, path, *mode, 022, "the stored peers", "lets others choose whom this node dials"));
  auto text = env.read_file(path);
  if (!text) return text.status();
  auto peers = parse_peers_file(*text);
  if (!peers) return peers.status().with_context(path);
  return peers;
}

Status store_peer(const std::string& path, const StoredPeer& peer, Env& env) {
  REPLOG_RETURN_IF_ERROR(check_peer(peer));
  auto peers = load_peers(path, env);
  if (!peers) return peers.status();
  auto same = std::find_if(peers->begin(), peers->end(), [&](const auto& p) { return p.public_key == peer.public_key; });
  if (same != peers->end()) *same = peer;
  else if (peers->size() >= kMaxStoredPeers) return Status::invalid_argument(path + ": already 256 peers");
  else peers->push_back(peer);
  return env.write_file(path, peers_file_text(std::move(peers).value()), 0600);
}

}  // namespace replog
