// libFuzzer target: LAN beacons (node/discovery/beacon.h) on untrusted bytes.
// Invariants, each an abort when broken:
//  - open_beacon reads any input without going past it; what it accepts is
//    exactly kBeaconBytes long, with the magic and the version;
//  - an accepted beacon re-encoded from its fields (with the device that made
//    it, when one of the known devices did) gives the same bytes back;
//  - the input read as fields (nonce, port, device) encodes to a beacon that
//    opens to the same port and names that device and no other, and that no
//    longer opens once any one of its bits is flipped.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "check.h"
#include "fuzz_beacon.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  using namespace replog::fuzz;
  const BeaconKeys keys = beacon_keys();
  const std::string_view packet(reinterpret_cast<const char*>(data), size);

  OpenedBeacon b;
  if (open_beacon(keys, packet, &b) == BeaconVerdict::kOk) {
    FUZZ_CHECK(size == kBeaconBytes);
    FUZZ_CHECK(std::memcmp(data, kBeaconMagic, 4) == 0 && data[4] == kBeaconVersion);
    auto sender = beacon_sender(keys, b, {beacon_device(0), beacon_device(1)});
    if (sender && b.flags == 0) FUZZ_CHECK(encode_beacon(keys, *sender, b.port, b.nonce) == packet);
  }

  // The input as fields: 16 bytes of nonce, 2 of port, 1 choosing the device, 1 choosing a bit.
  if (size < kBeaconNonceBytes + 4) return 0;
  BeaconNonce nonce;
  std::memcpy(nonce.data(), data, nonce.size());
  const auto port = static_cast<uint16_t>(data[16] << 8 | data[17]);
  const std::string device = beacon_device(data[18] & 1), other = beacon_device(~data[18] & 1);
  const std::string made = encode_beacon(keys, device, port, nonce);
  OpenedBeacon back;
  FUZZ_CHECK(open_beacon(keys, made, &back) == BeaconVerdict::kOk);
  FUZZ_CHECK(back.port == port && back.nonce == nonce && back.flags == 0);
  FUZZ_CHECK(beacon_is_from(keys, back, device) && !beacon_is_from(keys, back, other));
  std::string flipped = made;
  const size_t bit = data[19] % (kBeaconBytes * 8);
  flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
  FUZZ_CHECK(open_beacon(keys, flipped, &back) != BeaconVerdict::kOk);
  return 0;
}
