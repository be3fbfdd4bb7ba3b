// libFuzzer target: update bodies and their envelopes (protocol/update.h) on
// untrusted bytes: parse_update, Update::parse and read_envelope, the readers
// used at ingest, at import and in replay. Invariants, each an abort when broken:
//  - a body that parses is within the limits ([seq > 0, method of 1..255
//    bytes, arg], at most kMaxUpdateBytes) and its fields lie inside it;
//  - parse_update and Update::parse agree;
//  - Update::make of the parsed fields gives a body that parses to the same
//    fields, and is a fixpoint after one pass;
//  - read_envelope over a stream never reads past its input, reports a length
//    whenever it succeeds, and an envelope it reads is written back by
//    append_envelope to one that reads to the same update.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "check.h"
#include "protocol/limits.h"
#include "protocol/update.h"

namespace replog::fuzz {
namespace {

bool same(const Update& a, const Update& b) {
  return a.id() == b.id() && a.body() == b.body() && a.seq() == b.seq() && a.method() == b.method() &&
         a.arg() == b.arg();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_body(const UpdateId& id, std::string_view body) {
  auto view = parse_update(id, body);
  auto owned = Update::parse(id, std::string(body));
  FUZZ_CHECK(view.is_ok() == owned.is_ok());
  if (!view) return;
  FUZZ_CHECK(body.size() <= limits::kMaxUpdateBytes);
  FUZZ_CHECK(view->seq > 0);
  FUZZ_CHECK(!view->method.empty() && view->method.size() <= 255);
  FUZZ_CHECK(inside(view->method, body) && inside(view->arg, body));
  FUZZ_CHECK(view->body == body && view->id == id);
  FUZZ_CHECK(owned->seq() == view->seq && owned->method() == view->method && owned->arg() == view->arg &&
             owned->body() == body);

  Update made = Update::make(id, view->seq, view->method, view->arg);
  auto again = Update::parse(id, made.body());
  FUZZ_CHECK(again.is_ok());
  FUZZ_CHECK(same(*again, made));
  FUZZ_CHECK(again->seq() == view->seq && again->method() == view->method && again->arg() == view->arg);
  FUZZ_CHECK(Update::make(id, again->seq(), again->method(), again->arg()).body() == made.body());
}

// Reads envelopes one after another, as an import does, until one cannot be read.
void check_stream(std::string_view bytes) {
  size_t at = 0;
  for (int n = 0; at < bytes.size() && n < 64; ++n) {
    size_t used = 0;
    auto u = read_envelope(bytes.substr(at), used);
    FUZZ_CHECK(used <= bytes.size() - at);
    if (u) {
      FUZZ_CHECK(used > 0);
      std::string out;
      append_envelope(*u, out);
      size_t used_again = 0;
      auto again = read_envelope(out, used_again);
      FUZZ_CHECK(again.is_ok() && same(*again, *u) && used_again == out.size());
      check_body(u->id(), u->body());
    }
    if (used == 0) break;
    at += used;
  }
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The whole input as one body, under an id taken from nothing (ids are not checked here).
  fuzz::check_body(UpdateId{1, 2}, bytes);
  // The whole input as a stream of envelopes.
  fuzz::check_stream(bytes);
  return 0;
}
