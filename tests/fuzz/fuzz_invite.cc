// libFuzzer target: invite lines (protocol/invite.h parse_line) on untrusted
// text, as `replog join` reads what a person pasted. Invariants, each an
// abort when broken:
//  - a line that parses has fields within the rules (check_line), and
//    formats back to exactly the text it came from, surrounding whitespace
//    aside: one payload has one text, so no change of a character reads as
//    the same invite;
//  - parsing the formatted line again gives the same fields.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "protocol/invite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  static const bool ready = sodium_init() >= 0;
  FUZZ_CHECK(ready);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto line = invite::parse_line(text);
  if (!line) return 0;
  FUZZ_CHECK(invite::check_line(*line).is_ok());
  FUZZ_CHECK(line->endpoints.size() >= 1 && line->endpoints.size() <= invite::kMaxEndpoints);
  const std::string again = invite::format_line(*line);
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  FUZZ_CHECK(first != std::string_view::npos && again == text.substr(first, last - first + 1));
  auto reparsed = invite::parse_line(again);
  FUZZ_CHECK(reparsed.is_ok());
  FUZZ_CHECK(reparsed->cluster == line->cluster && reparsed->inviter_key == line->inviter_key &&
             reparsed->secret == line->secret && reparsed->endpoints == line->endpoints);
  return 0;
}
