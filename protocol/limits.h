// Protocol constants: the same on every node, never node-local settings
// (docs/VALUES.md, PROTOCOL.md). Changing one is a protocol version change.
#pragma once

#include <cstddef>
#include <cstdint>

namespace replog::limits {

// Largest update body: the encoded [seq, method, bin(arg)], method included.
// Hello's max_update. Checked alike at a local call, at ingest, at import and
// where a frame is decoded, so that no node refuses what another relays.
inline constexpr size_t kMaxUpdateBytes = 1 << 20;
// Deepest nesting of lists, maps, records and enums inside one value.
inline constexpr size_t kMaxDepth = 64;
// Longest string, bytes or extension payload inside one value.
inline constexpr size_t kMaxStringBytes = 1 << 20;
// Most elements of one list or map (also bounded by the bytes that remain).
inline constexpr size_t kMaxContainerElements = 1 << 20;
// Most segments in a path named by a method argument.
inline constexpr size_t kMaxPathSegments = 32;
// Deepest nesting in this node's own stored state: a value of kMaxDepth
// written at a path of kMaxPathSegments, with room to spare.
inline constexpr size_t kMaxLocalDepth = 128;
// Largest typed-JSON text accepted from a person or a file line.
inline constexpr size_t kMaxJsonBytes = 16 << 20;

}  // namespace replog::limits
