// The two JSON forms of a Value (docs/VALUES.md).
//
// Typed JSON round-trips exactly. Plain JSON null, true/false, strings, arrays
// and objects map to themselves; a number without fraction or exponent is an
// int, any other number a float. Tags carry the other types:
//   {"$time": "2026-11-25T14:33:07.123Z"}   {"$enum": "Color.Red"}
//   {"$bytes": "<base64>"}                  {"$type": "Task", "title": ...}
//   {"$float": "NaN" | "Infinity" | "-Infinity"}
//   {"$map": {...}}   a map whose keys may start with '$'
// Parsing needs no registry: "$enum" yields an unresolved enum and "$type" a
// record with its type name; resolve them with TypeRegistry::resolve.
//
// Info JSON is lossy and for display: an enum becomes its member name, a time
// ISO-8601, bytes base64, a record the object of its fields.
#pragma once

#include <string>
#include <string_view>

#include "replog/status.h"
#include "replog/value.h"

namespace replog {

Result<Value> parse_typed_json(std::string_view text);
std::string to_typed_json(const Value& value, int indent = -1);
std::string to_info_json(const Value& value, int indent = -1);

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace replog
