// The key, name and cluster fuzz_archive.cc opens objects with, shared with the
// corpus writer (make_corpus.cc) so that its seeds open.
#pragma once

#include <string>
#include <string_view>

#include "protocol/archive_format.h"
#include "protocol/bytes.h"

namespace replog::fuzz {

inline constexpr std::string_view kArchiveCluster = "f1f1f1f1-0001";

inline const archive::ArchiveKey& archive_key() {
  static const archive::ArchiveKey key = archive::ArchiveKey::from_bytes(std::string(32, '\x42')).value();
  return key;
}

// The name every sealed seed is bound to: origin 0x11, seqs 1..2.
inline std::string archive_context() { return archive::segment_context({0x11, 1, 2}); }

}  // namespace replog::fuzz
