// The cluster and keys fuzz_proof.cc checks against, shared with the corpus
// writer (make_corpus.cc) so that its seeds are heads and evidence that verify.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/origin_proof.h"

namespace replog::fuzz {

inline constexpr std::string_view kProofCluster = "f1f1f1f1-0001";

struct ProofKeys {
  std::string pub, secret;  // 32 bytes; 64 bytes (libsodium form)
};

// Key pair i (0..2) of the seed i*32+1, i*32+2, ..., i*32+32: key 0 and key 1
// are PROTOCOL.md §8's K and D.
inline const ProofKeys& proof_keys(int i) {
  static const std::array<ProofKeys, 3> keys = [] {
    std::array<ProofKeys, 3> out;
    if (sodium_init() < 0) std::abort();
    for (size_t k = 0; k < out.size(); ++k) {
      unsigned char seed[crypto_sign_SEEDBYTES];
      for (size_t j = 0; j < sizeof seed; ++j) seed[j] = static_cast<unsigned char>(k * 32 + j + 1);
      out[k] = {std::string(proof::kKeyBytes, '\0'), std::string(proof::kSecretKeyBytes, '\0')};
      crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(out[k].pub.data()),
                               reinterpret_cast<unsigned char*>(out[k].secret.data()), seed);
    }
    return out;
  }();
  return keys.at(static_cast<size_t>(i));
}

}  // namespace replog::fuzz
