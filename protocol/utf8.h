// UTF-8 validation: every string inside a Value is valid UTF-8 (docs/VALUES.md).
#pragma once

#include <string_view>

namespace replog {

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace replog
