#include "node/core/checkpoint.h"

#include "protocol/msgpack_codec.h"

namespace replog {

std::string encode_checkpoint(const UpdateId& cut, const VersionVector& vector, const std::string& methods_digest,
                              const State& state) {
  std::string out;
  out.push_back(static_cast<char>(0x84));  // map of 4, keys in byte order
  auto key = [&](const char* k) { encode_msgpack_into(Value(k), out); };
  key("cut");
  auto k = cut.key();
  encode_msgpack_into(Value(Bytes{std::string(k.data(), k.size())}), out);
  key("methods");
  encode_msgpack_into(Value(methods_digest), out);
  key("state");
  encode_msgpack_into(Value(Bytes{state.encode()}), out);
  key("vector");
  encode_msgpack_into(vector_to_value(vector), out);
  return out;
}

Result<Checkpoint> decode_checkpoint(std::string_view bytes) {
  auto v = decode_msgpack_local(bytes);
  if (!v) return v.status().with_context("checkpoint");
  const Value* cut = v->find("cut");
  const Value* methods = v->find("methods");
  const Value* state = v->find("state");
  const Value* vector = v->find("vector");
  if (!cut || cut->kind() != Value::Kind::kBytes || cut->as_bytes().data.size() != 16 || !methods ||
      !methods->is_string() || !state || state->kind() != Value::Kind::kBytes || !vector)
    return Status::corruption("checkpoint: missing or malformed fields");
  auto vec = vector_from_value(*vector);
  if (!vec) return vec.status().with_context("checkpoint");
  return Checkpoint{UpdateId::from_key(cut->as_bytes().data), std::move(vec).value(), methods->as_string(),
                    state->as_bytes().data};
}

}  // namespace replog
