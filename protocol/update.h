// Updates and their ids (docs/STORAGE.md, PROTOCOL.md "Updates").
//
// An update is one call of a one-argument method. Its id is (hlc, origin); its
// LMDB key is the 16 bytes big-endian hlc || origin, so key order is replay
// order. Its *body* is the MessagePack array
//   [seq: uint, method: str, arg: bin]
// where arg holds the MessagePack encoding of the argument Value, wrapped in
// bin so that the framing can be checked without decoding the content:
// content is decided in replay, never where the bytes enter. A body is kept
// exactly as its origin encoded it, and is at most limits::kMaxUpdateBytes.
//
// `Update` owns its body and is parsed once, where the bytes enter (the wire,
// an import, a local call); every layer below uses it. `UpdateView` is the
// same without ownership, for bodies read in place (replay from LMDB).
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "replog/status.h"
#include "replog/types.h"

namespace replog {

// An update whose body is held elsewhere; valid while that body is.
struct UpdateView {
  UpdateId id;
  uint64_t seq = 0;
  std::string_view method;
  std::string_view arg;   // MessagePack of the argument (may fail to decode: replay decides)
  std::string_view body;  // the whole body, as its origin encoded it
};

// Checks the framing and size of a body and splits it; never looks inside arg.
Result<UpdateView> parse_update(const UpdateId& id, std::string_view body);

class Update {
 public:
  Update() = default;
  // parse_update() over a body this Update then owns.
  static Result<Update> parse(const UpdateId& id, std::string body);
  // Encodes a new body (deterministic). The caller checks body().size()
  // against limits::kMaxUpdateBytes. REQUIRES: seq > 0, a method of 1..255 bytes.
  static Update make(const UpdateId& id, uint64_t seq, std::string_view method, std::string_view arg);

  const UpdateId& id() const { return id_; }
  uint64_t seq() const { return seq_; }
  std::string_view method() const { return std::string_view(body_).substr(method_at_, method_len_); }
  std::string_view arg() const { return std::string_view(body_).substr(arg_at_, arg_len_); }
  const std::string& body() const { return body_; }
  UpdateView view() const { return {id_, seq_, method(), arg(), body_}; }

 private:
  UpdateId id_;
  uint64_t seq_ = 0;
  std::string body_;
  uint32_t method_at_ = 0, method_len_ = 0, arg_at_ = 0, arg_len_ = 0;
};

// The envelope in which an update travels, on the wire and in exports:
// the MessagePack array [hlc: uint, origin: uint, body: bin].
void append_envelope(const Update& u, std::string& out);
// Reads one envelope at `bytes` and parses its body. `used` gets the
// envelope's length, or 0 when no envelope could be read at all (the stream
// cannot go on); an envelope whose body fails is an error with `used` set.
Result<Update> read_envelope(std::string_view bytes, size_t& used);

}  // namespace replog
