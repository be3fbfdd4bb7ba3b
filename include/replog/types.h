// The small types an application meets through the facade: update ids, the
// version vector, paths into state, and conflicts (docs/METHODS.md).
//
// An update's id is (hlc, origin): the hybrid logical clock reading of the
// call and the 64-bit id of the node that made it. Ids order updates for
// replay; as text they are 32 hex digits (PROTOCOL.md "Update id").
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"

namespace replog {

using OriginId = uint64_t;

// Ids no origin may have: 0 and all ones (never made by init; refused at ingest).
inline constexpr bool is_reserved_origin(OriginId o) { return o == 0 || o == ~OriginId{0}; }

struct UpdateId {
  uint64_t hlc = 0;
  OriginId origin = 0;

  static constexpr size_t kKeyBytes = 16;
  // The 16 bytes big-endian hlc || origin (the log's key; key order is replay order).
  // Inline: every put, lookup and sort of the log's keys makes one.
  std::array<char, kKeyBytes> key() const {
    std::array<char, kKeyBytes> k;
    for (int i = 0; i < 8; ++i) {
      k[static_cast<size_t>(i)] = static_cast<char>(hlc >> (56 - 8 * i));
      k[static_cast<size_t>(8 + i)] = static_cast<char>(origin >> (56 - 8 * i));
    }
    return k;
  }
  // REQUIRES: key.size() == 16
  static UpdateId from_key(std::string_view key) {
    UpdateId id;
    for (int i = 0; i < 8; ++i) {
      id.hlc = (id.hlc << 8) | static_cast<uint8_t>(key[static_cast<size_t>(i)]);
      id.origin = (id.origin << 8) | static_cast<uint8_t>(key[static_cast<size_t>(8 + i)]);
    }
    return id;
  }

  // 32 lowercase hex digits: the key in hex (hlc then origin).
  std::string to_string() const;
  // 32 hex digits of either case.
  static Result<UpdateId> parse(std::string_view text);

  auto operator<=>(const UpdateId&) const = default;
};

// For each origin, the highest seq held: an exact summary of what a node
// holds, since every node holds a gap-free prefix of each origin.
using VersionVector = std::map<OriginId, uint64_t>;

// A place in state: map keys and record fields from the root, e.g.
// {"Task", "t1", "due"} (written "Task.t1.due").
using Path = std::vector<std::string>;
std::string path_to_string(const Path& path);
// "a.b.c" -> {"a", "b", "c"} (segments may be empty; callers that care check).
Path parse_dotted_path(std::string_view text);

// Why replay skipped an update. The codes are part of the state hash and of
// PROTOCOL.md; the text is rendered at display time only.
enum class ConflictKind : uint8_t {
  kSchema = 1,       // breaks the schema in force (type, required field, undeclared field)
  kUnique = 2,       // breaks a unique constraint
  kFailed = 3,       // the method failed (returned or threw its MethodFailure)
  kOverflow = 4,     // inc would overflow int64
  kMissing = 5,      // update of a record that does not exist
  kExists = 6,       // create of a record that exists
  kBadArgument = 7,  // the argument does not decode or has the wrong shape
};
const char* conflict_kind_name(ConflictKind kind);

// An update every node skipped alike, open until a `resolve` call closes it.
struct Conflict {
  UpdateId skipped;
  ConflictKind kind;
  std::vector<UpdateId> involved;  // other updates involved, e.g. the record's last writer
  Path path;                       // where it broke (docs/METHODS.md gives each kind's path)
};

}  // namespace replog
