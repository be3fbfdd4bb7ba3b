// The update envelope [hlc, origin, bin(body)] read from a msgpack-c object,
// for decoders that already hold one (the wire). Internal to protocol/ and the
// tools; the rest of replog uses append_envelope/read_envelope (update.h).
#pragma once

#include <msgpack.hpp>

#include "protocol/origin_proof.h"
#include "protocol/update.h"

namespace replog {

// Checks the envelope's form and parses the body (Update::parse).
Result<Update> update_from_envelope(const msgpack::object& o);

namespace proof {
// A head or evidence read from a msgpack-c object (origin_proof.h's forms).
Result<Head> head_from_object(const msgpack::object& o);
Result<Evidence> evidence_from_object(const msgpack::object& o);
}  // namespace proof

}  // namespace replog
