"""An independent replog peer written from PROTOCOL.md and docs/ alone.

Nothing here is taken from the C++ sources: every rule cites the section of the
documents it implements, so that a difference between this client and a node
points at either the node or the document.

    values    docs/VALUES.md        canonical MessagePack encoder, bounded decoder,
                                    the schema document and resolving against it
    ids       PROTOCOL.md §1, §6    update ids, origins, device ids
    replay    docs/METHODS.md       every built-in method and its conflicts
    hash      PROTOCOL.md §3,       the state hash
              docs/STORAGE.md
    signed    PROTOCOL.md §8        origin ids from Ed25519 keys, the chain, heads and
                                    their encodings, certificates, check_head; fork
                                    evidence (its reader, check_evidence, the fork seq);
                                    a log that verifies runs against heads, signs its own
                                    and serves ranges ending at heads
    wire      PROTOCOL.md §2, §7,   frames, Hello, Vector, Request, Updates, Push (with
              §8 "On the wire"      heads on a link with feature bit 1), Evidence (type 10,
                                    kept as sent), compressed bodies (feature bit 4),
                                    CURVE keys from the Ed25519 identity, the listening
                                    side (PeerServer)
    invite    PROTOCOL.md §7        the invite line, Join / JoinReply and their proofs
    members   PROTOCOL.md §7        Members frames, their entries and the order of entries
    beacons   PROTOCOL.md §7,       keys derived from the cluster secret, the 56-byte
              docs/STORAGE.md       UDP beacon
    api       PROTOCOL.md §4        the node's local API (call, state, hash, status)

Needs Debian's python3-zmq, python3-msgpack and python3-nacl; python3-zstandard for
compressed bodies.
"""
import copy
import hashlib
import re
import struct
import time

import msgpack
import zmq

# ---------------------------------------------------------------------------------------------
# Values (docs/VALUES.md)
# ---------------------------------------------------------------------------------------------

ENUM_EXT, RECORD_EXT, TIME_EXT = 1, 2, -1
MAX_DEPTH = 64                 # VALUES.md "Decoding limits"
MAX_PAYLOAD = 1 << 20          # one string, bin or extension payload
MAX_ELEMENTS = 1 << 20         # elements of one list or map
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
CANONICAL_NAN = bytes.fromhex("7ff8000000000000")


class Time:
    """A time: seconds and nanoseconds since the Unix epoch, UTC (VALUES.md "time")."""
    __slots__ = ("sec", "nsec")

    def __init__(self, sec, nsec=0):
        self.sec, self.nsec = sec, nsec

    def __eq__(self, other):
        return isinstance(other, Time) and (self.sec, self.nsec) == (other.sec, other.nsec)

    def __hash__(self):
        return hash((self.sec, self.nsec))

    def __repr__(self):
        return "Time(%d, %d)" % (self.sec, self.nsec)


class Enum:
    __slots__ = ("type", "member")

    def __init__(self, type_, member):
        self.type, self.member = type_, member

    def __eq__(self, other):
        return isinstance(other, Enum) and (self.type, self.member) == (other.type, other.member)

    def __hash__(self):
        return hash((self.type, self.member))

    def __repr__(self):
        return "Enum(%s.%s)" % (self.type, self.member)


class Record:
    __slots__ = ("type", "fields")

    def __init__(self, type_, fields):
        self.type, self.fields = type_, fields

    def __eq__(self, other):
        return isinstance(other, Record) and self.type == other.type and encode(self) == encode(other)

    def __repr__(self):
        return "Record(%s, %r)" % (self.type, self.fields)


class DecodeError(Exception):
    pass


def _uint_header(n, fix_max, fix_base, codes):
    if n <= fix_max:
        return bytes([fix_base | n])
    if n < 1 << 8 and codes[0] is not None:
        return bytes([codes[0], n])
    if n < 1 << 16:
        return bytes([codes[1]]) + struct.pack(">H", n)
    return bytes([codes[2]]) + struct.pack(">I", n)


def _encode_int(v):
    if v >= 0:
        if v < 128:
            return bytes([v])
        if v < 1 << 8:
            return b"\xcc" + bytes([v])
        if v < 1 << 16:
            return b"\xcd" + struct.pack(">H", v)
        if v < 1 << 32:
            return b"\xce" + struct.pack(">I", v)
        return b"\xcf" + struct.pack(">Q", v)
    if v >= -32:
        return struct.pack(">b", v)
    if v >= -(1 << 7):
        return b"\xd0" + struct.pack(">b", v)
    if v >= -(1 << 15):
        return b"\xd1" + struct.pack(">h", v)
    if v >= -(1 << 31):
        return b"\xd2" + struct.pack(">i", v)
    return b"\xd3" + struct.pack(">q", v)


def _encode_ext(code, payload):
    n = len(payload)
    fix = {1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}
    t = struct.pack(">b", code)
    if n in fix:
        return bytes([fix[n]]) + t + payload
    if n < 1 << 8:
        return b"\xc7" + bytes([n]) + t + payload
    if n < 1 << 16:
        return b"\xc8" + struct.pack(">H", n) + t + payload
    return b"\xc9" + struct.pack(">I", n) + t + payload


def _encode_time(t):
    if t.nsec == 0 and 0 <= t.sec < 1 << 32:
        payload = struct.pack(">I", t.sec)
    elif 0 <= t.sec < 1 << 34:
        payload = struct.pack(">Q", (t.nsec << 34) | t.sec)
    else:
        payload = struct.pack(">Iq", t.nsec, t.sec)
    return _encode_ext(TIME_EXT, payload)


def _sorted_items(m):
    return sorted(m.items(), key=lambda kv: kv[0].encode("utf-8"))


def encode(v, out=None):
    """The canonical encoding (VALUES.md: every header in its smallest form, map keys
    sorted by their UTF-8 bytes, floats always float64 with one NaN)."""
    top = out is None
    if top:
        out = bytearray()
    if v is None:
        out += b"\xc0"
    elif v is True:
        out += b"\xc3"
    elif v is False:
        out += b"\xc2"
    elif isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError("int out of int64 range: %d" % v)
        out += _encode_int(v)
    elif isinstance(v, float):
        out += b"\xcb" + (CANONICAL_NAN if v != v else struct.pack(">d", v))
    elif isinstance(v, str):
        b = v.encode("utf-8")
        out += _uint_header(len(b), 31, 0xa0, (0xd9, 0xda, 0xdb)) + b
    elif isinstance(v, (bytes, bytearray)):
        n = len(v)
        out += (bytes([0xc4, n]) if n < 256 else
                b"\xc5" + struct.pack(">H", n) if n < 1 << 16 else b"\xc6" + struct.pack(">I", n)) + bytes(v)
    elif isinstance(v, (list, tuple)):
        out += _uint_header(len(v), 15, 0x90, (None, 0xdc, 0xdd))
        for x in v:
            encode(x, out)
    elif isinstance(v, dict):
        out += _uint_header(len(v), 15, 0x80, (None, 0xde, 0xdf))
        for k, x in _sorted_items(v):
            encode(k, out)
            encode(x, out)
    elif isinstance(v, Time):
        out += _encode_time(v)
    elif isinstance(v, Enum):
        out += _encode_ext(ENUM_EXT, encode([v.type, v.member]))
    elif isinstance(v, Record):
        out += _encode_ext(RECORD_EXT, encode([v.type, v.fields]))
    else:
        raise TypeError("not a replog value: %r" % (v,))
    return bytes(out) if top else None


class _Reader:
    def __init__(self, data):
        self.data, self.pos, self.declared = data, 0, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise DecodeError("truncated at byte %d" % self.pos)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def count(self, n):
        if n > MAX_ELEMENTS:
            raise DecodeError("%d elements (at most %d)" % (n, MAX_ELEMENTS))
        self.declared += n
        if self.declared > len(self.data):
            raise DecodeError("declares more elements than the input has bytes")


def _str(b):
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("invalid UTF-8")


def _payload(r, n):
    if n > MAX_PAYLOAD:
        raise DecodeError("payload of %d bytes (at most 1 MiB)" % n)
    return r.take(n)


def _decode(r, depth):
    b = r.take(1)[0]
    if b <= 0x7f:
        return b
    if b >= 0xe0:
        return b - 256
    if 0xa0 <= b <= 0xbf:
        return _str(_payload(r, b & 0x1f))
    if 0x90 <= b <= 0x9f:
        return _decode_array(r, b & 0x0f, depth)
    if 0x80 <= b <= 0x8f:
        return _decode_map(r, b & 0x0f, depth)
    if b == 0xc0:
        return None
    if b == 0xc2:
        return False
    if b == 0xc3:
        return True
    if b in (0xc4, 0xc5, 0xc6):
        n = struct.unpack(">" + "BHI"[b - 0xc4], r.take(1 << (b - 0xc4)))[0]
        return bytes(_payload(r, n))
    if b in (0xd9, 0xda, 0xdb):
        n = struct.unpack(">" + "BHI"[b - 0xd9], r.take(1 << (b - 0xd9)))[0]
        return _str(_payload(r, n))
    if b == 0xca:
        return float(struct.unpack(">f", r.take(4))[0])
    if b == 0xcb:
        return struct.unpack(">d", r.take(8))[0]
    if 0xcc <= b <= 0xcf:
        size = 1 << (b - 0xcc)
        v = int.from_bytes(r.take(size), "big")
        if v > INT64_MAX:
            raise DecodeError("integer above 2^63-1")
        return v
    if 0xd0 <= b <= 0xd3:
        size = 1 << (b - 0xd0)
        return int.from_bytes(r.take(size), "big", signed=True)
    if b in (0xdc, 0xdd):
        n = struct.unpack(">" + ("H" if b == 0xdc else "I"), r.take(2 if b == 0xdc else 4))[0]
        return _decode_array(r, n, depth)
    if b in (0xde, 0xdf):
        n = struct.unpack(">" + ("H" if b == 0xde else "I"), r.take(2 if b == 0xde else 4))[0]
        return _decode_map(r, n, depth)
    if 0xd4 <= b <= 0xd8:
        code = struct.unpack(">b", r.take(1))[0]
        return _decode_ext(code, r.take(1 << (b - 0xd4)), depth)
    if b in (0xc7, 0xc8, 0xc9):
        n = struct.unpack(">" + "BHI"[b - 0xc7], r.take(1 << (b - 0xc7)))[0]
        code = struct.unpack(">b", r.take(1))[0]
        return _decode_ext(code, _payload(r, n), depth)
    raise DecodeError("byte 0x%02x is not a MessagePack header" % b)


def _decode_array(r, n, depth):
    if depth >= MAX_DEPTH:
        raise DecodeError("nested deeper than %d" % MAX_DEPTH)
    r.count(n)
    return [_decode(r, depth + 1) for _ in range(n)]


def _decode_map(r, n, depth):
    if depth >= MAX_DEPTH:
        raise DecodeError("nested deeper than %d" % MAX_DEPTH)
    r.count(n)
    m = {}
    for _ in range(n):
        k = _decode(r, depth + 1)
        if not isinstance(k, str):
            raise DecodeError("map key is not a string")
        if k in m:
            raise DecodeError("duplicate map key %r" % k)
        m[k] = _decode(r, depth + 1)
    return m


def _decode_ext(code, payload, depth):
    payload = bytes(payload)
    if code == TIME_EXT:
        if len(payload) == 4:
            return Time(struct.unpack(">I", payload)[0], 0)
        if len(payload) == 8:
            x = struct.unpack(">Q", payload)[0]
            nsec, sec = x >> 34, x & ((1 << 34) - 1)
        elif len(payload) == 12:
            nsec, sec = struct.unpack(">Iq", payload)
        else:
            raise DecodeError("timestamp extension of %d bytes (expected 4, 8 or 12)" % len(payload))
        if nsec >= 10 ** 9:
            raise DecodeError("timestamp nanoseconds >= 10^9")
        return Time(sec, nsec)
    if code in (ENUM_EXT, RECORD_EXT):
        if depth >= MAX_DEPTH:
            raise DecodeError("nested deeper than %d" % MAX_DEPTH)
        inner = _Reader(payload)
        v = _decode(inner, depth + 1)
        if inner.pos != len(payload):
            raise DecodeError("trailing bytes in an extension")
        if code == ENUM_EXT:
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)):
                raise DecodeError("enum payload is not [type, member]")
            return Enum(v[0], v[1])
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], dict)):
            raise DecodeError("record payload is not [type, {fields}]")
        return Record(v[0], v[1])
    raise DecodeError("unknown extension type %d" % code)


def decode(data):
    """One value, nothing after it (VALUES.md, decoding limits and refusals)."""
    r = _Reader(bytes(data))
    v = _decode(r, 0)
    if r.pos != len(r.data):
        raise DecodeError("trailing bytes")
    return v


def values_equal(a, b):
    return encode(a) == encode(b)


# ---------------------------------------------------------------------------------------------
# The schema document (docs/VALUES.md "The schema document")
# ---------------------------------------------------------------------------------------------

BUILTIN_TYPES = ("any", "null", "bool", "int", "float", "string", "bytes", "time")
RESERVED_NAMES = BUILTIN_TYPES + ("list", "map")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class SchemaError(Exception):
    pass


def _ident(name, what):
    if not isinstance(name, str) or not IDENT.match(name) or len(name.encode()) > 128:
        raise SchemaError("%s %r is not an identifier of at most 128 bytes" % (what, name))


def parse_type(s, depth=0):
    """A field type string -> ("list", T) | ("map", T) | name."""
    if depth > 64:
        raise SchemaError("type nests deeper than 64")
    for kind in ("list", "map"):
        if s.startswith(kind + "<") and s.endswith(">"):
            return (kind, parse_type(s[len(kind) + 1:-1], depth + 1))
    if s in BUILTIN_TYPES:
        return s
    _ident(s, "type")
    return s


def type_string(t):
    return "%s<%s>" % (t[0], type_string(t[1])) if isinstance(t, tuple) else t


class Schema:
    """A type registry built from a schema document; `canonical` is its canonical document."""

    def __init__(self, doc):
        if not isinstance(doc, dict) or set(doc) - {"enums", "records"}:
            raise SchemaError("a document has only the keys enums and records")
        self.enums, self.records = {}, {}
        enums = doc.get("enums", {})
        records = doc.get("records", {})
        if not isinstance(enums, dict) or not isinstance(records, dict):
            raise SchemaError("enums and records are maps")
        for name, members in enums.items():
            _ident(name, "enum")
            if name in RESERVED_NAMES:
                raise SchemaError("enum name %s is a built-in type name" % name)
            if not isinstance(members, list) or not members:
                raise SchemaError("enum %s needs at least one member" % name)
            for m in members:
                _ident(m, "member")
            if len(set(members)) != len(members):
                raise SchemaError("enum %s repeats a member" % name)
            self.enums[name] = list(members)
        for name, rec in records.items():
            _ident(name, "record")
            if name in RESERVED_NAMES or name in self.enums:
                raise SchemaError("record name %s is taken" % name)
            if not isinstance(rec, dict) or set(rec) - {"fields", "required", "unique"}:
                raise SchemaError("record %s has only fields, required and unique" % name)
            fields = rec.get("fields", {})
            if not isinstance(fields, dict):
                raise SchemaError("fields of %s is not a map" % name)
            parsed = {}
            for f, t in fields.items():
                _ident(f, "field")
                if not isinstance(t, str):
                    raise SchemaError("type of %s.%s is not a string" % (name, f))
                parsed[f] = parse_type(t)
            lists = {}
            for key in ("required", "unique"):
                names = rec.get(key, [])
                if not isinstance(names, list) or any(not isinstance(n, str) or n not in parsed for n in names) \
                        or len(set(names)) != len(names):
                    raise SchemaError("%s of %s names undeclared or repeated fields" % (key, name))
                lists[key] = sorted(names, key=lambda n: n.encode())
            self.records[name] = {"fields": parsed, "required": lists["required"], "unique": lists["unique"]}
        for rec in self.records.values():
            for t in rec["fields"].values():
                self._check_declared(t)

    def _check_declared(self, t):
        if isinstance(t, tuple):
            return self._check_declared(t[1])
        if t not in BUILTIN_TYPES and t not in self.enums and t not in self.records:
            raise SchemaError("type %s is not declared" % t)

    def canonical(self):
        doc = {}
        if self.enums:
            doc["enums"] = {n: list(m) for n, m in self.enums.items()}
        if self.records:
            recs = {}
            for n, r in self.records.items():
                d = {"fields": {f: type_string(t) for f, t in r["fields"].items()}}
                if r["required"]:
                    d["required"] = list(r["required"])
                if r["unique"]:
                    d["unique"] = list(r["unique"])
                recs[n] = d
            doc["records"] = recs
        return doc

    # -- resolving (VALUES.md "Two steps: decode, then resolve")
    def resolve(self, v, t="any"):
        """Returns v checked against type t (ints given for floats converted), or raises
        SchemaError. Inside `any`, enums and records are still resolved."""
        if isinstance(t, tuple):
            kind, inner = t
            if kind == "list":
                if not isinstance(v, list):
                    raise SchemaError("expected %s" % type_string(t))
                return [self.resolve(x, inner) for x in v]
            if not isinstance(v, dict):
                raise SchemaError("expected %s" % type_string(t))
            return {k: self.resolve(x, inner) for k, x in v.items()}
        if t == "any":
            if isinstance(v, list):
                return [self.resolve(x) for x in v]
            if isinstance(v, dict):
                return {k: self.resolve(x) for k, x in v.items()}
            if isinstance(v, Enum):
                return self.resolve(v, v.type)
            if isinstance(v, Record):
                return self.resolve(v, v.type)
            return v
        if t == "null":
            if v is not None:
                raise SchemaError("expected null")
            return v
        if t == "bool":
            if not isinstance(v, bool):
                raise SchemaError("expected bool")
            return v
        if t == "int":
            if not isinstance(v, int) or isinstance(v, bool):
                raise SchemaError("expected int")
            return v
        if t == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SchemaError("expected float")
            return float(v)
        if t == "string":
            if not isinstance(v, str):
                raise SchemaError("expected string")
            return v
        if t == "bytes":
            if not isinstance(v, bytes):
                raise SchemaError("expected bytes")
            return v
        if t == "time":
            if not isinstance(v, Time):
                raise SchemaError("expected time")
            return v
        if t in self.enums:
            if not isinstance(v, Enum) or v.type != t or v.member not in self.enums[t]:
                raise SchemaError("expected a member of %s" % t)
            return v
        if t in self.records:
            if not isinstance(v, Record) or v.type != t:
                raise SchemaError("expected a %s record" % t)
            return Record(t, self.resolve_fields(t, v.fields))
        raise SchemaError("unknown type %s" % t)

    def resolve_fields(self, type_, fields):
        rec = self.records[type_]
        out = {}
        for f, x in fields.items():
            if f not in rec["fields"]:
                raise SchemaError("undeclared field %s" % f)
            out[f] = None if x is None else self.resolve(x, rec["fields"][f])
        for f in rec["required"]:
            if out.get(f) is None:
                raise SchemaError("required field %s missing" % f)
        return out


# ---------------------------------------------------------------------------------------------
# Ids (PROTOCOL.md §1, §6)
# ---------------------------------------------------------------------------------------------

RESERVED_ORIGINS = (0, (1 << 64) - 1)


def update_key(hlc, origin):
    return struct.pack(">QQ", hlc, origin)


def parse_update_id(text):
    if not isinstance(text, str) or len(text) != 32 or not re.fullmatch(r"[0-9A-Fa-f]{32}", text):
        raise ValueError("not an update id: %r" % (text,))
    return bytes.fromhex(text)


def origin_text(origin):
    return "%016x" % origin


B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _gf_mul(a, b):
    """GF(32) = GF(2)[x]/(x^5 + x^2 + 1)."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x20:
            a ^= 0x25
    return r


def _check_char(block):
    c, w = 0, 1
    for d in block:
        w = _gf_mul(w, 2)      # x^i for the i-th character, i from 1
        c ^= _gf_mul(w, d)
    return c


def device_id(public_key):
    """PROTOCOL.md §6: base32 without padding, a check character per block of 13,
    eight groups of 7 joined by '-'."""
    assert len(public_key) == 32
    bits = int.from_bytes(public_key, "big") << 4          # 256 bits + 4 zero bits = 52 x 5
    digits = [(bits >> (5 * (51 - i))) & 31 for i in range(52)]
    out = []
    for b in range(4):
        block = digits[13 * b:13 * b + 13]
        out += block + [_check_char(block)]
    s = "".join(B32[d] for d in out)
    return "-".join(s[7 * i:7 * i + 7] for i in range(8))


def parse_device_id(text):
    s = text.replace("-", "").replace(" ", "").upper()
    if len(s) != 56 or any(c not in B32 for c in s):
        raise ValueError("device id: not 56 characters of the alphabet")
    vals = [B32.index(c) for c in s]
    digits = []
    for b in range(4):
        block = vals[14 * b:14 * b + 14]
        if _check_char(block[:13]) != block[13]:
            raise ValueError("device id: the check fails in block %d" % (b + 1))
        digits += block[:13]
    if digits[51] & 0x0f:
        raise ValueError("device id: the last character carries bits that must be zero")
    bits = 0
    for d in digits:
        bits = (bits << 5) | d
    return (bits >> 4).to_bytes(32, "big")


# ---------------------------------------------------------------------------------------------
# Update bodies (PROTOCOL.md §1)
# ---------------------------------------------------------------------------------------------

MAX_UPDATE = 1_048_576
MAX_FRAME = 4_194_304


class Update:
    __slots__ = ("hlc", "origin", "body", "seq", "method", "arg_bytes")

    def __init__(self, hlc, origin, body):
        self.hlc, self.origin, self.body = hlc, origin, bytes(body)
        self.seq, self.method, self.arg_bytes = parse_body(self.body)

    @property
    def key(self):
        return update_key(self.hlc, self.origin)

    @property
    def id(self):
        return self.key.hex()

    def envelope(self):
        return [self.hlc, self.origin, self.body]

    def __repr__(self):
        return "Update(%s seq %d %s)" % (self.id, self.seq, self.method)


def encode_body(seq, method, arg_value=None, arg_bytes=None):
    """[seq, method, bin(arg)], seq in its smallest unsigned form."""
    m = method.encode("utf-8")
    if arg_bytes is None:
        arg_bytes = encode(arg_value)
    out = bytearray(b"\x93")
    out += _encode_int(seq)
    out += _uint_header(len(m), 31, 0xa0, (0xd9, 0xda, 0xdb)) + m
    out += encode(bytes(arg_bytes))
    if len(out) > MAX_UPDATE:
        raise ValueError("body of %d bytes is above max_update" % len(out))
    return bytes(out)


def parse_body(body):
    """The well-framed rule of §1: one fixarray of 3, seq >= 1 as positive fixint or
    cc..cf, method a str of 1..255 bytes, arg a bin; nothing after it."""
    if len(body) > MAX_UPDATE:
        raise DecodeError("body above max_update")
    r = _Reader(body)
    b = r.take(1)[0]
    if b == 0xdc:
        n = struct.unpack(">H", r.take(2))[0]
    elif b == 0xdd:
        n = struct.unpack(">I", r.take(4))[0]
    elif 0x90 <= b <= 0x9f:
        n = b & 0x0f
    else:
        raise DecodeError("body is not an array")
    if n != 3:
        raise DecodeError("body is not 3 elements")
    h = r.take(1)[0]
    if h <= 0x7f:
        seq = h
    elif 0xcc <= h <= 0xcf:
        seq = int.from_bytes(r.take(1 << (h - 0xcc)), "big")
    else:
        raise DecodeError("seq is not an unsigned integer")
    if seq < 1:
        raise DecodeError("seq 0")
    h = r.take(1)[0]
    if 0xa0 <= h <= 0xbf:
        n = h & 0x1f
    elif h == 0xd9:
        n = r.take(1)[0]
    elif h == 0xda:
        n = struct.unpack(">H", r.take(2))[0]
    elif h == 0xdb:
        n = struct.unpack(">I", r.take(4))[0]
    else:
        raise DecodeError("method is not a str")
    if not 1 <= n <= 255:
        raise DecodeError("method of %d bytes" % n)
    method = bytes(r.take(n)).decode("utf-8", "replace")
    h = r.take(1)[0]
    if h in (0xc4, 0xc5, 0xc6):
        n = struct.unpack(">" + "BHI"[h - 0xc4], r.take(1 << (h - 0xc4)))[0]
    else:
        raise DecodeError("arg is not a bin")
    arg = bytes(r.take(n))
    if r.pos != len(body):
        raise DecodeError("bytes after the body")
    return seq, method, arg


# ---------------------------------------------------------------------------------------------
# Hybrid logical clock (PROTOCOL.md §1, docs/ARCHITECTURE.md "Ordering")
# ---------------------------------------------------------------------------------------------

class HybridClock:
    """48 bits of ms since the epoch, 16-bit counter; tick() is above everything the
    clock issued or observed, a counter overflow carries into the milliseconds."""

    def __init__(self, offset_ms=0):
        self.last = 0
        self.offset_ms = offset_ms

    def now_ms(self):
        return int(time.time() * 1000) + self.offset_ms

    def tick(self):
        self.last = max(self.now_ms() << 16, self.last + 1)
        return self.last

    def observe(self, hlc):
        self.last = max(self.last, hlc)


# ---------------------------------------------------------------------------------------------
# Replay (docs/METHODS.md, docs/ARCHITECTURE.md "Replay")
# ---------------------------------------------------------------------------------------------

SCHEMA, UNIQUE, FAILED, OVERFLOW, MISSING, EXISTS, BAD_ARGUMENT = 1, 2, 3, 4, 5, 6, 7
KIND_NAMES = {1: "schema", 2: "unique", 3: "failed", 4: "overflow", 5: "missing", 6: "exists",
              7: "bad-argument"}
METHODS = ("set", "unset", "inc", "add", "remove", "create", "update", "delete", "schema",
           "resolve", "retire", "revoke")
MAX_SEGMENTS = 32


class Conflict(Exception):
    def __init__(self, kind, path=(), involved=(), why=""):
        super().__init__("%s at %s: %s" % (KIND_NAMES.get(kind, kind), list(path), why))
        self.kind, self.path, self.involved = kind, list(path), list(involved)


def _bad(why):
    return Conflict(BAD_ARGUMENT, [], [], why)


def _arg_str(arg, key):
    v = arg.get(key)
    if not isinstance(v, str):
        raise _bad("%s is not a str" % key)
    return v


def _arg_path(arg):
    p = arg.get("path")
    if isinstance(p, str):
        segs = p.split(".")
    elif isinstance(p, list) and all(isinstance(s, str) for s in p):
        segs = list(p)
    else:
        raise _bad("path is not a str or a list of str")
    if not segs or any(s == "" for s in segs) or len(segs) > MAX_SEGMENTS:
        raise _bad("path empty, with an empty segment, or above 32 segments")
    return segs


_INDEX = re.compile(r"[0-9]{1,9}\Z")


class State:
    """data, open conflicts, schema, retired, and the last writer of each record."""

    def __init__(self):
        self.data = {}
        self.conflicts = {}          # skipped key -> (kind, [involved keys], [path])
        self.schema = None           # a Schema, or None when nothing is declared
        self.retired = {}            # origin (16 hex) -> last seq
        self.writers = {}            # (type, id) -> key of its last writer
        self.unknown = 0
        self.applied = []            # keys in replay order (for debugging)

    # -- the state hash (PROTOCOL.md §3, docs/STORAGE.md "State hash")
    def hash_input(self):
        conflicts = [[k, kind, list(inv), list(path)]
                     for k, (kind, inv, path) in sorted(self.conflicts.items())]
        schema = self.schema.canonical() if self.schema else {}
        return encode([self.data, conflicts, schema, dict(self.retired)])

    def state_hash(self):
        return hashlib.blake2b(self.hash_input(), digest_size=32).hexdigest()

    def conflict_view(self):
        """{skipped id: (kind, [involved ids], [path])}, ids as 32 hex digits."""
        return {k.hex(): (kind, [i.hex() for i in inv], list(path))
                for k, (kind, inv, path) in self.conflicts.items()}

    # -- folding
    def apply(self, u):
        self.applied.append(u.key)
        if u.method not in METHODS:
            self.unknown += 1
            return None
        saved = (copy.deepcopy(self.data), dict(self.writers), self.schema, dict(self.retired),
                 dict(self.conflicts))
        try:
            try:
                arg = decode(u.arg_bytes)
            except DecodeError as e:
                raise _bad("argument does not decode: %s" % e)
            if not isinstance(arg, dict):
                raise _bad("argument is not a map")
            getattr(self, "_m_" + u.method)(arg, u.key)
            return None
        except Conflict as c:
            self.data, self.writers, self.schema, self.retired, self.conflicts = saved
            self.conflicts[u.key] = (c.kind, list(c.involved), list(c.path))
            return c

    # -- typing of places (METHODS.md: a place under a record type has its declared type)
    def _record_type(self, name):
        return self.schema is not None and name in self.schema.records

    def _place_type(self, path):
        """The declared type at path, "any" for untyped places; raises Conflict(schema)
        when the path crosses an undeclared field."""
        if not path or not self._record_type(path[0]):
            return "any"
        if len(path) == 1:
            return ("map", path[0])
        if len(path) == 2:
            return path[0]
        rec = self.schema.records[path[0]]
        if path[2] not in rec["fields"]:
            raise Conflict(SCHEMA, path, [], "undeclared field %s" % path[2])
        t = rec["fields"][path[2]]
        for seg in path[3:]:
            if isinstance(t, tuple):
                t = t[1]
            elif t in self.schema.records:
                fields = self.schema.records[t]["fields"]
                if seg not in fields:
                    raise Conflict(SCHEMA, path, [], "undeclared field %s" % seg)
                t = fields[seg]
            elif t == "any":
                return "any"
            else:
                raise Conflict(SCHEMA, path, [], "%s has no members" % t)
        return t

    def _resolve(self, value, t, path):
        if self.schema is None:
            reg = Schema({})
        else:
            reg = self.schema
        try:
            return reg.resolve(value, t)
        except SchemaError as e:
            raise Conflict(SCHEMA, path, [], str(e))

    def _note_writer(self, path, key):
        if len(path) >= 2 and self._record_type(path[0]):
            self.writers[(path[0], path[1])] = key

    def _check_records_after(self, path):
        """A record that breaks its type after the method (METHODS.md)."""
        if len(path) >= 2 and self._record_type(path[0]):
            rec = self.data.get(path[0], {}).get(path[1]) if isinstance(self.data.get(path[0]), dict) else None
            if rec is None:
                return
            if not isinstance(rec, Record) or rec.type != path[0]:
                raise Conflict(SCHEMA, path[:2], [], "not a %s record" % path[0])
            try:
                self.schema.resolve_fields(path[0], rec.fields)
            except SchemaError as e:
                raise Conflict(SCHEMA, path[:2], [], str(e))

    # -- navigation (METHODS.md; the list index and null rules as the node behaves)
    @staticmethod
    def _step(node, seg, path):
        """The child of a map, record or list at seg: None when a map or record lacks it;
        Conflict(failed) when node is not a container (null included) or a list lacks
        the element. A list element is named by 1 to 9 decimal digits."""
        if isinstance(node, dict):
            return node.get(seg)
        if isinstance(node, Record):
            return node.fields.get(seg)
        if isinstance(node, list):
            if not _INDEX.match(seg) or int(seg) >= len(node):
                raise Conflict(FAILED, path, [], "no such list element %s" % seg)
            return node[int(seg)]
        raise Conflict(FAILED, path, [], "a step is not a map, record or list")

    def _container(self, path, create):
        """The container that holds path[-1]. Absent maps on the way are made when
        `create` (None is returned otherwise); a null on the way is not a map."""
        node = self.data
        for seg in path[:-1]:
            nxt = self._step(node, seg, path)
            if nxt is None:
                present = (seg in node) if isinstance(node, dict) else \
                    (seg in node.fields) if isinstance(node, Record) else True
                if present:
                    raise Conflict(FAILED, path, [], "%s is null, not a map" % seg)
                if not create:
                    return None
                nxt = {}
                if isinstance(node, dict):
                    node[seg] = nxt
                else:
                    node.fields[seg] = nxt
            node = nxt
        if not isinstance(node, (dict, Record, list)):
            raise Conflict(FAILED, path, [], "%s is not a map, record or list" % path[-1])
        return node

    def _get(self, path):
        """The value at path, None when absent (or null); Conflict(failed) as _container."""
        c = self._container(path, create=False)
        if c is None:
            return None
        return self._step(c, path[-1], path)

    def _put(self, path, value, key):
        c = self._container(path, create=True)
        last = path[-1]
        if isinstance(c, dict):
            c[last] = value
        elif isinstance(c, Record):
            c.fields[last] = value
        else:
            if not _INDEX.match(last) or int(last) >= len(c):
                raise Conflict(FAILED, path, [], "no such list element %s" % last)
            c[int(last)] = value

    # -- unique constraints (METHODS.md; DECISIONS.md: they bind the values an update writes)
    def _check_unique(self, type_, id_, fields, changed):
        if self.schema is None or type_ not in self.schema.records:
            return
        for f in self.schema.records[type_]["unique"]:
            if f not in changed:
                continue
            v = fields.get(f)
            if v is None:
                continue
            for other_id, other in self.data.get(type_, {}).items():
                if other_id == id_ or not isinstance(other, Record):
                    continue
                ov = other.fields.get(f)
                if ov is not None and values_equal(ov, v):
                    w = self.writers.get((type_, other_id))
                    raise Conflict(UNIQUE, [type_, id_, f], [w] if w else [], "%s taken" % f)

    # -- the methods
    def _m_set(self, arg, key):
        path = _arg_path(arg)
        if "value" not in arg:
            raise _bad("value missing")
        t = self._place_type(path)
        value = self._resolve(arg["value"], t, path)
        self._put(path, value, key)
        self._after_write(path, key)

    def _after_write(self, path, key, unique_fields=None):
        self._check_records_after(path)
        if len(path) >= 2 and self._record_type(path[0]):
            rec = self.data.get(path[0], {}).get(path[1])
            if isinstance(rec, Record):
                changed = unique_fields if unique_fields is not None else (
                    set(rec.fields) if len(path) == 2 else {path[2]})
                self._check_unique(path[0], path[1], rec.fields, changed)
        self._note_writer(path, key)

    def _m_unset(self, arg, key):
        path = _arg_path(arg)
        c = self._container(path, create=False)
        if c is None:
            return
        last = path[-1]
        if isinstance(c, dict):
            c.pop(last, None)
        elif isinstance(c, Record):
            c.fields.pop(last, None)
        else:
            self._step(c, last, path)
            raise Conflict(FAILED, path, [], "a list element cannot be unset")
        self._after_write(path, key, unique_fields=set())

    def _m_inc(self, arg, key):
        path = _arg_path(arg)
        by = arg.get("by", 1)
        if isinstance(by, bool) or not isinstance(by, (int, float)):
            raise _bad("by is not a number")
        cur = self._get(path)
        if cur is None:
            new = by
        elif isinstance(cur, bool) or not isinstance(cur, (int, float)):
            raise Conflict(SCHEMA, path, [], "not a number")
        elif isinstance(cur, int):
            if isinstance(by, float):
                raise Conflict(SCHEMA, path, [], "an int incremented by a float")
            new = cur + by
            if not INT64_MIN <= new <= INT64_MAX:
                raise Conflict(OVERFLOW, path, [], "int64 overflow")
        else:
            new = cur + by
        t = self._place_type(path)
        new = self._resolve(new, t, path)
        self._put(path, new, key)
        self._after_write(path, key)

    def _m_add(self, arg, key):
        path = _arg_path(arg)
        if "value" not in arg:
            raise _bad("value missing")
        cur = self._get(path)
        if cur is None:
            cur = []
        elif not isinstance(cur, list):
            raise Conflict(SCHEMA, path, [], "not a list")
        value = arg["value"]
        if any(values_equal(value, x) for x in cur):
            return
        t = self._place_type(path)
        new = self._resolve(cur + [value], t, path)
        self._put(path, new, key)
        self._after_write(path, key)

    def _m_remove(self, arg, key):
        path = _arg_path(arg)
        if "value" not in arg:
            raise _bad("value missing")
        try:
            cur = self._get(path)
        except Conflict:
            return          # the node: a path that leads nowhere holds no member
        if cur is None:
            return
        if not isinstance(cur, list):
            raise Conflict(SCHEMA, path, [], "not a list")
        value = arg["value"]
        new = [x for x in cur if not values_equal(value, x)]
        if len(new) == len(cur):
            return
        self._put(path, new, key)
        self._after_write(path, key)

    def _record_arg(self, arg, with_fields):
        type_, id_ = _arg_str(arg, "type"), _arg_str(arg, "id")
        if type_ == "" or id_ == "":
            raise _bad("empty type or id")
        fields = None
        if with_fields:
            fields = arg.get("fields")
            if not isinstance(fields, dict):
                raise _bad("fields is not a map")
        if not self._record_type(type_):
            raise Conflict(SCHEMA, [type_, id_], [], "unknown record type %s" % type_)
        return type_, id_, fields

    def _table(self, type_):
        t = self.data.get(type_)
        if t is None:
            t = self.data[type_] = {}
        if not isinstance(t, dict):
            raise Conflict(FAILED, [type_], [], "%s is not a map" % type_)
        return t

    def _m_create(self, arg, key):
        type_, id_, fields = self._record_arg(arg, True)
        table = self.data.get(type_)
        if isinstance(table, dict) and table.get(id_) is not None:
            w = self.writers.get((type_, id_))
            raise Conflict(EXISTS, [type_, id_], [w] if w else [], "exists")
        try:
            resolved = self.schema.resolve_fields(type_, fields)
        except SchemaError as e:
            raise Conflict(SCHEMA, [type_, id_], [], str(e))
        resolved = {f: v for f, v in resolved.items() if v is not None}
        self._check_unique(type_, id_, resolved, set(resolved))
        self._table(type_)[id_] = Record(type_, resolved)
        self.writers[(type_, id_)] = key

    def _m_update(self, arg, key):
        type_, id_, fields = self._record_arg(arg, True)
        table = self.data.get(type_)
        rec = table.get(id_) if isinstance(table, dict) else None
        if rec is None:
            raise Conflict(MISSING, [type_, id_], [], "missing")
        decl = self.schema.records[type_]["fields"]
        new = dict(rec.fields)
        for f, v in fields.items():
            if f not in decl:
                raise Conflict(SCHEMA, [type_, id_, f], [], "undeclared field %s" % f)
            if v is None:
                new.pop(f, None)
            else:
                new[f] = self._resolve(v, decl[f], [type_, id_, f])
        try:
            self.schema.resolve_fields(type_, new)
        except SchemaError as e:
            raise Conflict(SCHEMA, [type_, id_], [], str(e))
        changed = {f for f, v in fields.items() if v is not None and not values_equal(rec.fields.get(f), v)}
        self._check_unique(type_, id_, new, changed)
        if fields:
            self.writers[(type_, id_)] = key
        table[id_] = Record(type_, new)

    def _m_delete(self, arg, key):
        type_, id_, _ = self._record_arg(arg, False)
        table = self.data.get(type_)
        if isinstance(table, dict) and id_ in table:
            del table[id_]
            self.writers.pop((type_, id_), None)

    def _m_schema(self, arg, key):
        doc = arg.get("document")
        try:
            self.schema = Schema(doc)
        except SchemaError as e:
            raise Conflict(SCHEMA, [], [], str(e))
        if not self.schema.enums and not self.schema.records:
            self.schema = None

    def _m_resolve(self, arg, key):
        try:
            target = parse_update_id(arg.get("update"))
        except ValueError as e:
            raise _bad(str(e))
        self.conflicts.pop(target, None)

    def _m_retire(self, arg, key):
        origin = arg.get("origin")
        last_seq = arg.get("last_seq")
        if not isinstance(origin, str) or not re.fullmatch(r"[0-9A-Fa-f]{1,16}", origin):
            raise _bad("origin is not 1 to 16 hex digits")
        if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
            raise _bad("last_seq is not an int >= 0")
        self.retired[origin_text(int(origin, 16))] = last_seq


    def _m_revoke(self, arg, key):
        # Its effect is not folded here: revocations_in_effect() decides it over the log.
        if revoke_arg(arg) is None:
            raise _bad("revoke needs origin (1 to 16 hex digits, not reserved) and last_seq (an int >= 0)")


def revoke_arg(arg):
    """PROTOCOL.md §8 "Revocation", 1.: (origin, last_seq) when the argument has the shape."""
    if not isinstance(arg, dict):
        return None
    origin, last_seq = arg.get("origin"), arg.get("last_seq")
    if not isinstance(origin, str) or not re.fullmatch(r"[0-9A-Fa-f]{1,16}", origin):
        return None
    o = int(origin, 16)
    if o in (0, (1 << 64) - 1):
        return None
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
        return None
    return o, last_seq


def revocations_in_effect(updates, fork_seqs):
    """PROTOCOL.md §8 "Revocation", 2. to 5.: origin -> the last seq that counts."""
    revs = []  # (writer origin, its seq, target, last_seq)
    for u in updates:
        if u.method != "revoke":
            continue
        try:
            r = revoke_arg(decode(u.arg_bytes))
        except DecodeError:
            r = None
        if r is not None:
            revs.append((u.origin, u.seq, r[0], r[1]))
    fate = [None] * len(revs)  # True: in effect, False: void, None: undecided
    for i, (writer, seq, _, _) in enumerate(revs):
        if writer in fork_seqs and seq >= fork_seqs[writer]:
            fate[i] = False
    blockers = [[j for j, q in enumerate(revs) if j != i and q[2] == r[0] and q[3] < r[1]]
                for i, r in enumerate(revs)]

    def on_cycle(i):
        seen, todo = set(), list(blockers[i])
        while todo:
            j = todo.pop()
            if fate[j] is not None or j in seen:
                continue
            if j == i:
                return True
            seen.add(j)
            todo.extend(blockers[j])
        return False

    while None in fate:
        changed = True
        while changed:
            changed = False
            for i in range(len(revs)):
                if fate[i] is not None:
                    continue
                if any(fate[j] is True for j in blockers[i]):
                    fate[i], changed = False, True
                elif all(fate[j] is False for j in blockers[i]):
                    fate[i], changed = True, True
        for i in [i for i in range(len(revs)) if fate[i] is None and on_cycle(i)]:
            fate[i] = True
    out = {}
    for i, (_, _, target, last_seq) in enumerate(revs):
        if fate[i]:
            out[target] = min(out.get(target, last_seq), last_seq)
    return out


def replay(updates, fork_seqs=None):
    """The fold of `updates` in key order, from empty, leaving out what forks
    (origin -> fork seq) and revocations in effect shut out (§8)."""
    fork_seqs = dict(fork_seqs or {})
    left_out = dict(fork_seqs)
    for origin, last_seq in revocations_in_effect(updates, fork_seqs).items():
        left_out[origin] = min(left_out.get(origin, last_seq + 1), last_seq + 1)
    s = State()
    for u in sorted(updates, key=lambda u: u.key):
        if u.origin in left_out and u.seq >= left_out[u.origin]:
            s.applied.append(u.key)  # left out: changes nothing
            continue
        s.apply(u)
    return s


# ---------------------------------------------------------------------------------------------
# Signed origins (PROTOCOL.md §8)
# ---------------------------------------------------------------------------------------------

FEATURE_SIGNED = 2             # §2 Features, bit 1 (value 2): Updates and Push carry heads
HEAD_FINAL, HEAD_LEGACY = 1, 2  # §8 Heads, the flag bits
MAX_PUSH_HEADS = 4096          # §2 the table: a Push carries at most 4,096 heads
MAX_CLOCK_SKEW_MS = 3600 * 1000  # §2 Receiving, 5. (--max-clock-skew, default 1 h)


def _b2b256(data):
    """BLAKE2b-256, unkeyed (§8 Notation)."""
    return hashlib.blake2b(data, digest_size=32).digest()


def origin_id(key):
    """§8 Origin ids: the first 8 bytes of BLAKE2b-256("replog-origin-v1" ‖ K), big-endian."""
    return int.from_bytes(_b2b256(b"replog-origin-v1" + bytes(key))[:8], "big")


def _cluster_bytes(cluster):
    c = cluster.encode("utf-8") if isinstance(cluster, str) else bytes(cluster)
    if not 1 <= len(c) <= 64:
        raise ValueError("a cluster id is 1..64 bytes")
    return c


def chain_start(cluster, key):
    """§8 The chain: c_0 = BLAKE2b-256("replog-chain-v1" ‖ u8(len(cluster)) ‖ cluster ‖ K)."""
    c = _cluster_bytes(cluster)
    return _b2b256(b"replog-chain-v1" + bytes([len(c)]) + c + bytes(key))


def chain_step(prev, key, hlc, body):
    """§8 The chain: c_n = BLAKE2b-256(c_{n-1} ‖ K ‖ u64be(hlc_n) ‖ body_n)."""
    return _b2b256(bytes(prev) + bytes(key) + struct.pack(">Q", hlc) + bytes(body))


def head_message(origin, seq, chain, flags):
    """§8 Heads: the 63 bytes a head's signature covers."""
    return b"replog-head-v1" + struct.pack(">QQ", origin, seq) + bytes(chain) + bytes([flags])


def cert_message(cluster, key):
    """§8 Key certificates: what a device key signs to vouch for key K in this cluster."""
    c = _cluster_bytes(cluster)
    return b"replog-origin-cert-v1" + bytes([len(c)]) + c + bytes(key)


def ed25519_verify(key, message, signature):
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey
    try:
        VerifyKey(bytes(key)).verify(bytes(message), bytes(signature))
        return True
    except (BadSignatureError, ValueError):
        return False


class HeadError(ValueError):
    """A head the reader or check_head refuses (one line)."""


def _is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64


def _is_bin(v, n):
    return isinstance(v, bytes) and len(v) == n


class Head:
    """§8 A head's encoding: [origin, seq, chain, flags, signature(, key(, device, cert))]."""
    __slots__ = ("origin", "seq", "chain", "flags", "signature", "key", "device", "cert")

    def __init__(self, origin, seq, chain, flags, signature, key=None, device=None, cert=None):
        self.origin, self.seq, self.chain, self.flags, self.signature = origin, seq, chain, flags, signature
        self.key, self.device, self.cert = key, device, cert

    def wire(self):
        w = [self.origin, self.seq, bytes(self.chain), self.flags, bytes(self.signature)]
        if self.key is not None:
            w.append(bytes(self.key))
            if self.device is not None:
                w += [bytes(self.device), bytes(self.cert)]
        return w

    def encode(self):
        """Every integer and bin in its shortest form (msgpack-python writes them so)."""
        return msgpack.packb(self.wire(), use_bin_type=True)

    def without_key(self):
        return Head(self.origin, self.seq, self.chain, self.flags, self.signature)

    def with_key(self, key, device=None, cert=None):
        return Head(self.origin, self.seq, self.chain, self.flags, self.signature, key, device, cert)

    def same_signed(self, other):
        return (self.origin, self.seq, bytes(self.chain), self.flags, bytes(self.signature)) == \
            (other.origin, other.seq, bytes(other.chain), other.flags, bytes(other.signature))

    @classmethod
    def from_wire(cls, v):
        """The reader's shape checks (§8 A head's encoding) on a decoded array: bins are
        bytes, strs are str, so a str in a bin's place is told apart."""
        if not isinstance(v, (list, tuple)) or len(v) not in (5, 6, 8):
            raise HeadError("a head is an array of 5, 6 or 8 elements")
        origin, seq, chain, flags, sig = v[:5]
        if not (_is_uint(origin) and _is_uint(seq) and _is_uint(flags)):
            raise HeadError("a head's origin, seq and flags are unsigned integers")
        if seq == 0:
            raise HeadError("a head's seq is at least 1")
        if flags & ~(HEAD_FINAL | HEAD_LEGACY):
            raise HeadError("a head's flags have a bit other than 1 and 2")
        if not _is_bin(chain, 32):
            raise HeadError("a head's chain is a bin of 32 bytes")
        if not _is_bin(sig, 64):
            raise HeadError("a head's signature is a bin of 64 bytes")
        key = device = cert = None
        if len(v) >= 6:
            key = v[5]
            if not _is_bin(key, 32):
                raise HeadError("a head's key is a bin of 32 bytes")
        if len(v) == 8:
            device, cert = v[6], v[7]
            if not _is_bin(device, 32):
                raise HeadError("a head's device is a bin of 32 bytes")
            if not _is_bin(cert, 64):
                raise HeadError("a head's certificate is a bin of 64 bytes")
        return cls(origin, seq, chain, flags, sig, key, device, cert)

    @classmethod
    def decode(cls, data):
        """A head that is the whole input: any byte after it is refused."""
        try:
            v = msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)
        except msgpack.ExtraData:
            raise HeadError("bytes after the head")
        except Exception as e:
            raise HeadError("a head does not decode: %s" % e)
        return cls.from_wire(v)

    @classmethod
    def read(cls, data):
        """A head read off the front of a longer input: (head, bytes used)."""
        u = msgpack.Unpacker(raw=False, strict_map_key=False)
        u.feed(bytes(data))
        try:
            v = u.unpack()
        except Exception as e:
            raise HeadError("a head does not decode: %s" % e)
        return cls.from_wire(v), u.tell()

    def __repr__(self):
        return "Head(%016x #%d%s%s)" % (self.origin, self.seq, " final" if self.flags & HEAD_FINAL else "",
                                        " +key" if self.key is not None else "")


def check_head(head, cluster, known_key=None):
    """§8 What a receiver checks of a head. Returns the key it verified under, or None when
    it cannot be checked yet (no key carried, none known); raises HeadError when refused."""
    key = head.key if head.key is not None else known_key
    if key is None:
        return None
    if len(key) != 32:
        raise HeadError("a key is 32 bytes")
    if head.origin in RESERVED_ORIGINS:
        raise HeadError("origin %s is reserved" % origin_text(head.origin))
    if not head.flags & HEAD_LEGACY and origin_id(key) != head.origin:
        raise HeadError("origin %s is not the id of the key (id %s)" % (origin_text(head.origin),
                                                                         origin_text(origin_id(key))))
    if head.cert is not None and not ed25519_verify(head.device, cert_message(cluster, key), head.cert):
        raise HeadError("the key's certificate does not verify under its device key")
    if not ed25519_verify(key, head_message(head.origin, head.seq, head.chain, head.flags), head.signature):
        raise HeadError("the head's signature does not verify")
    return bytes(key)


class OriginWriter:
    """The holder of an Ed25519 key, which writes the origin derived from it (§8 Writers).
    `signing_key` is a nacl SigningKey; `device`, another SigningKey, vouches for it with
    a certificate when the key is not itself a device key."""

    def __init__(self, cluster, signing_key, device=None):
        self.cluster, self.signing_key = cluster, signing_key
        self.key = bytes(signing_key.verify_key)
        self.origin = origin_id(self.key)
        if self.origin in RESERVED_ORIGINS:
            raise ValueError("this key's id is reserved: draw another key (§8 Origin ids)")
        self.device = self.cert = None
        if device is not None:
            self.device = bytes(device.verify_key)
            self.cert = device.sign(cert_message(cluster, self.key)).signature

    @classmethod
    def generate(cls, cluster, device=None):
        from nacl.signing import SigningKey
        while True:
            try:
                return cls(cluster, SigningKey.generate(), device)
            except ValueError:
                continue

    def sign(self, seq, chain, flags=0):
        sig = self.signing_key.sign(head_message(self.origin, seq, chain, flags)).signature
        return Head(self.origin, seq, bytes(chain), flags, sig)

    def carried(self, head):
        """The head as it travels where the receiver may not know the key."""
        return head.with_key(self.key, self.device, self.cert)


# -- Fork evidence (§8 "Fork evidence")

EVIDENCE_CHAIN, EVIDENCE_KEY = 1, 2   # the two kinds
MAX_EVIDENCE = 3 * 1024 * 1024        # 3,145,728 bytes: a reader refuses more unread
MAX_EVIDENCE_DEPTH = 5                # arrays nested deeper than this are refused


class EvidenceError(ValueError):
    """Evidence the reader or check_evidence refuses (one line)."""


class Evidence:
    """§8 Fork evidence: kind 1 (chain) [1, head a, head b, s, base, [update a_s, ...],
    [update b_s, ...]] with each update its §1 envelope; kind 2 (key) [2, head a, head b]."""
    __slots__ = ("kind", "a", "b", "s", "base", "branch_a", "branch_b")

    def __init__(self, kind, a, b, s=None, base=None, branch_a=None, branch_b=None):
        self.kind, self.a, self.b = kind, a, b
        self.s, self.base = s, base
        self.branch_a, self.branch_b = branch_a, branch_b

    @property
    def origin(self):
        """§8: the origin of evidence is its heads' origin."""
        return self.a.origin

    def wire(self):
        if self.kind == EVIDENCE_KEY:
            return [EVIDENCE_KEY, self.a.wire(), self.b.wire()]
        return [EVIDENCE_CHAIN, self.a.wire(), self.b.wire(), self.s, bytes(self.base),
                [u.envelope() for u in self.branch_a], [u.envelope() for u in self.branch_b]]

    def encode(self):
        """Every integer and bin in its shortest form."""
        return msgpack.packb(self.wire(), use_bin_type=True)

    def __repr__(self):
        if self.kind == EVIDENCE_KEY:
            return "Evidence(key, %s)" % origin_text(self.origin)
        return "Evidence(chain, %s from #%d, %d/%d updates)" % (origin_text(self.origin), self.s,
                                                                 len(self.branch_a), len(self.branch_b))


def _nesting(v):
    """How deep arrays (and maps) nest in a decoded value; a scalar is 0."""
    deepest, todo = 0, [(v, 1)]
    while todo:
        x, d = todo.pop()
        if isinstance(x, (list, tuple)):
            deepest = max(deepest, d)
            todo.extend((y, d + 1) for y in x)
        elif isinstance(x, dict):
            deepest = max(deepest, d)
            todo.extend((y, d + 1) for kv in x.items() for y in kv)
    return deepest


def _read_branch(v, which):
    """A branch: a non-empty array of §1 envelopes, each body a bin of at most max_update
    that is well-framed."""
    if not isinstance(v, list) or not v:
        raise EvidenceError("branch %s is not a non-empty array" % which)
    out = []
    for i, e in enumerate(v):
        if not isinstance(e, list) or len(e) != 3:
            raise EvidenceError("branch %s, update %d: not an array of 3" % (which, i))
        hlc, origin, body = e
        if not (_is_uint(hlc) and _is_uint(origin)):
            raise EvidenceError("branch %s, update %d: hlc and origin are unsigned integers" % (which, i))
        if not isinstance(body, bytes) or len(body) > MAX_UPDATE:
            raise EvidenceError("branch %s, update %d: the body is not a bin of at most %d bytes"
                                % (which, i, MAX_UPDATE))
        try:
            out.append(Update(hlc, origin, body))
        except DecodeError as x:
            raise EvidenceError("branch %s, update %d: the body is not well-framed (%s)" % (which, i, x))
    return out


def decode_evidence(data):
    """§8 Fork evidence, the reader: the shape (and each body's framing) only, never a
    signature or a chain. Refuses input over 3 MiB unread, arrays nested deeper than 5, a
    kind other than 1 or 2, a kind 1 not an array of 7 or a kind 2 not an array of 3, a
    branch that is not an array or is empty, an update that is not an envelope with a
    well-framed body, any byte after the evidence, and any head the head reader refuses."""
    data = bytes(data)
    if len(data) > MAX_EVIDENCE:
        raise EvidenceError("evidence of %d bytes (at most %d)" % (len(data), MAX_EVIDENCE))
    try:
        v = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except msgpack.ExtraData:
        raise EvidenceError("bytes after the evidence")
    except msgpack.StackError:
        raise EvidenceError("nested deeper than %d arrays" % MAX_EVIDENCE_DEPTH)
    except Exception as e:
        raise EvidenceError("evidence does not decode: %s" % e)
    if _nesting(v) > MAX_EVIDENCE_DEPTH:
        raise EvidenceError("nested deeper than %d arrays" % MAX_EVIDENCE_DEPTH)
    if not isinstance(v, list) or not v:
        raise EvidenceError("evidence is not an array")
    kind = v[0]
    if not _is_uint(kind) or kind not in (EVIDENCE_CHAIN, EVIDENCE_KEY):
        raise EvidenceError("evidence of kind %r (1 or 2)" % (kind,))
    if kind == EVIDENCE_CHAIN and len(v) != 7:
        raise EvidenceError("chain evidence is an array of 7, not %d" % len(v))
    if kind == EVIDENCE_KEY and len(v) != 3:
        raise EvidenceError("key evidence is an array of 3, not %d" % len(v))
    try:
        a, b = Head.from_wire(v[1]), Head.from_wire(v[2])
    except HeadError as e:
        raise EvidenceError("a head of the evidence: %s" % e)
    if kind == EVIDENCE_KEY:
        return Evidence(kind, a, b)
    s, base = v[3], v[4]
    # The encoding gives s: uint64 and base: bin 32.
    if not _is_uint(s):
        raise EvidenceError("the fork seq is not an unsigned integer")
    if not _is_bin(base, 32):
        raise EvidenceError("the base is not a bin of 32 bytes")
    return Evidence(kind, a, b, s, base, _read_branch(v[5], "a"), _read_branch(v[6], "b"))


def check_evidence(e, cluster):
    """§8 Fork evidence, check_evidence(e, cluster), rules 1 to 4. Returns (origin, fork
    seq) when it accepts; raises EvidenceError with one line when it refuses."""
    a, b = e.a, e.b
    # 1. Both heads carry their keys and name one origin.
    if a.key is None or b.key is None:
        raise EvidenceError("a head of the evidence does not carry its key")
    if a.origin != b.origin:
        raise EvidenceError("the heads name two origins, %s and %s" % (origin_text(a.origin), origin_text(b.origin)))
    # 2. Both heads pass check_head in this cluster, with no known key.
    for name, h in (("a", a), ("b", b)):
        try:
            check_head(h, cluster)
        except HeadError as x:
            raise EvidenceError("head %s: %s" % (name, x))
    origin = a.origin
    if e.kind == EVIDENCE_KEY:
        # 3. Two keys, and the origin derived from neither or from both.
        if bytes(a.key) == bytes(b.key):
            raise EvidenceError("key evidence whose heads carry one key")
        if (origin_id(a.key) == origin) != (origin_id(b.key) == origin):
            raise EvidenceError("the origin is derived from one key only: the other key's claim proves no fork")
        return origin, fork_seq(e)
    # 4. Chain evidence.
    key = bytes(a.key)
    if bytes(b.key) != key:
        raise EvidenceError("chain evidence whose heads carry two keys")
    s = e.s
    if not (1 <= s <= a.seq and s <= b.seq):
        raise EvidenceError("fork seq %d is not within 1..%d and at most %d" % (s, a.seq, b.seq))
    for name, h, branch in (("a", a, e.branch_a), ("b", b, e.branch_b)):
        if len(branch) != h.seq - s + 1:
            raise EvidenceError("branch %s holds %d updates, not %d" % (name, len(branch), h.seq - s + 1))
    fa, fb = e.branch_a[0], e.branch_b[0]
    if (fa.hlc, fa.body) == (fb.hlc, fb.body):
        raise EvidenceError("the branches' first updates are one (same hlc and body): no fork")
    if s == 1 and bytes(e.base) != chain_start(cluster, key):
        raise EvidenceError("fork seq 1 and the base is not c_0 of this cluster and key")
    for name, h, branch in (("a", a, e.branch_a), ("b", b, e.branch_b)):
        c = bytes(e.base)
        for i, u in enumerate(branch):
            if u.origin != origin:
                raise EvidenceError("branch %s, update %d names origin %s" % (name, i, origin_text(u.origin)))
            if u.seq != s + i:
                raise EvidenceError("branch %s, update %d has seq %d, not %d" % (name, i, u.seq, s + i))
            c = chain_step(c, key, u.hlc, u.body)
        if c != bytes(h.chain):
            raise EvidenceError("branch %s does not chain from the base to its head's chain" % name)
    return origin, fork_seq(e)


def fork_seq(e):
    """§8 The fork seq: the first seq replay leaves out, s for chain evidence, 1 for key
    evidence."""
    return e.s if e.kind == EVIDENCE_CHAIN else 1


class Refusal:
    __slots__ = ("origin", "seqs", "kind", "reason")

    def __init__(self, origin, seqs, kind, reason):
        self.origin, self.seqs, self.kind, self.reason = origin, seqs, kind, reason

    def __repr__(self):
        s = "#%d" % self.seqs[0] if len(self.seqs) == 1 else "#%d..%d" % (self.seqs[0], self.seqs[-1]) \
            if self.seqs else ""
        return "%s%s: %s (%s)" % (origin_text(self.origin), s, self.kind, self.reason)


class OriginRecord:
    """What a verifying node keeps of one origin (§8 "A run that passes is stored with its
    head"): its key (and certificate), its legacy and final flags, the chain value after
    every update it holds (chains[n] = c_n, c_0 first) and the heads it holds, by seq."""

    def __init__(self):
        self.key = self.device = self.cert = None
        self.legacy = False
        self.final = None              # the seq of its final head, when held
        self.chains = []
        self.heads = {}


class SignedLog:
    """A log that keeps signed origins: every update it holds is covered by a head it
    verified (or signed, for its own origins), per PROTOCOL.md §8. `updates` maps origin
    -> [Update] in seq order; `refused` lists every Refusal since it was made."""

    def __init__(self, cluster, max_clock_skew_ms=MAX_CLOCK_SKEW_MS, now_ms=None):
        self.cluster = cluster
        self.updates = {}
        self.records = {}
        self.writers = {}
        self.quarantined = {}          # origin -> the fork seq
        self.refused = []
        self.max_clock_skew_ms = max_clock_skew_ms
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))

    # -- what it holds
    def held(self, origin):
        return len(self.updates.get(origin, []))

    def vector(self):
        return {o: len(u) for o, u in self.updates.items() if u}

    def record(self, origin):
        return self.records.get(origin)

    # -- its own origins
    def add_writer(self, writer):
        self.writers[writer.origin] = writer
        rec = self.records.setdefault(writer.origin, OriginRecord())
        rec.key, rec.device, rec.cert = writer.key, writer.device, writer.cert
        if not rec.chains:
            rec.chains = [chain_start(self.cluster, writer.key)]
        self.updates.setdefault(writer.origin, [])
        return writer

    def append_own(self, u):
        """Stores the next update of one of its own origins and chains it."""
        rec = self.records[u.origin]
        if u.origin not in self.writers or u.seq != self.held(u.origin) + 1:
            raise ValueError("not the next update of an own origin: %r" % (u,))
        self.updates[u.origin].append(u)
        rec.chains.append(chain_step(rec.chains[-1], rec.key, u.hlc, u.body))
        return u

    def sign_head(self, origin, seq=None, flags=0):
        """Its own origin's head at `seq` (the last update by default), kept as held."""
        rec = self.records[origin]
        seq = self.held(origin) if seq is None else seq
        head = self.writers[origin].sign(seq, rec.chains[seq], flags)
        rec.heads[seq] = head
        if flags & HEAD_FINAL:
            rec.final = seq
        return head

    def carried(self, origin, head):
        rec = self.records[origin]
        return head.with_key(rec.key, rec.device, rec.cert)

    # -- receiving with verification (§8 On the wire)
    def receive(self, updates, heads):
        """The updates of one frame (or of the Pushes of one poll together) with their heads.
        Returns (stored updates, refusals); a run is stored whole or not at all."""
        by_origin, repeats = {}, []
        for u in updates:
            seen = by_origin.setdefault(u.origin, {})
            first = seen.get(u.seq)
            if first is None:
                seen[u.seq] = u
            elif (first.hlc, first.body) != (u.hlc, u.body):
                repeats.append(u)              # judged after the first
        heads_by = {}
        for h in heads:
            heads_by.setdefault(h.origin, []).append(h)
        stored, refusals = [], []
        for groups in (by_origin, self._group(repeats)):
            for origin in sorted(groups):
                ups = sorted(groups[origin].values(), key=lambda u: u.seq)
                s, r = self._receive_origin(origin, ups, sorted(heads_by.get(origin, []), key=lambda h: h.seq))
                stored += s
                refusals += r
        self.refused += refusals
        return stored, refusals

    @staticmethod
    def _group(ups):
        g = {}
        for u in ups:
            g.setdefault(u.origin, {})[u.seq] = u
        return g

    def _receive_origin(self, origin, ups, heads):
        stored, refusals = [], []
        i = 0
        for head in heads:
            run = []
            while i < len(ups) and ups[i].seq <= head.seq:
                run.append(ups[i])
                i += 1
            if not run:
                continue
            # §8 rule 2: where the run breaks (a hole, or a second update at one seq), what
            # comes before the last break is a gap, and the rest is judged as the run.
            for k in range(len(run) - 1, 0, -1):
                if run[k].seq != run[k - 1].seq + 1:
                    refusals.append(Refusal(origin, [u.seq for u in run[:k]], "gap",
                                            "a hole or a repeat after #%d, before its head" % run[k - 1].seq))
                    run = run[k:]
                    break
            try:
                stored += self._take_run(origin, run, head)
            except _RunRefused as e:
                refusals.append(Refusal(origin, [u.seq for u in run], e.kind, str(e)))
        if i < len(ups):
            rest = ups[i:]
            refusals.append(Refusal(origin, [u.seq for u in rest], "unverified",
                                    "no head of its batch covers it"))
        return stored, refusals

    def _take_run(self, origin, run, head):
        if origin in RESERVED_ORIGINS:
            raise _RunRefused("reserved", "origin %s is reserved" % origin_text(origin))
        if origin in self.quarantined:
            raise _RunRefused("quarantined", "origin %s is quarantined" % origin_text(origin))
        seqs = [u.seq for u in run]
        if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            raise _RunRefused("bad proof", "the run's seqs are not consecutive")
        if seqs[-1] != head.seq:
            raise _RunRefused("unverified", "the run stops at #%d, short of its head #%d" % (seqs[-1], head.seq))
        held = self.held(origin)
        if seqs[0] > held + 1:
            raise _RunRefused("gap", "starts at #%d, %d held" % (seqs[0], held))
        have = self.updates.get(origin, [])
        same = [u.seq <= held and (have[u.seq - 1].hlc, have[u.seq - 1].body) == (u.hlc, u.body) for u in run]
        if seqs[-1] <= held and all(same):
            return []                                           # a duplicate
        rec = self.records.get(origin)
        known = rec.key if rec is not None else None
        if known is not None and head.key is not None and bytes(head.key) != known:
            raise _RunRefused("bad proof", "its head carries another key than the origin's")
        if known is None and head.key is None:
            raise _RunRefused("unverified", "no key known for the origin and none carried (pull from seq 1)")
        try:
            key = check_head(head, self.cluster, known)
        except HeadError as e:
            raise _RunRefused("bad proof", str(e))
        if rec is not None and rec.final is not None and seqs[-1] > rec.final:
            raise _RunRefused("final", "the origin's final head is at #%d" % rec.final)
        chains = rec.chains if rec is not None and rec.chains else [chain_start(self.cluster, key)]
        if not all(same[:len([s for s in seqs if s <= held])]):
            # Held seqs with other bytes: a second branch when it chains to its signed head.
            c = chains[seqs[0] - 1]
            for u in run:
                c = chain_step(c, key, u.hlc, u.body)
            if c != bytes(head.chain):
                raise _RunRefused("bad proof", "held seqs with other bytes that do not chain to the head")
            fork = next(u.seq for u, s in zip(run, same) if not s)
            self.quarantined[origin] = fork
            raise _RunRefused("fork", "two branches signed by the origin's key from #%d" % fork)
        new = [u for u in run if u.seq > held]
        c = chains[held] if held < len(chains) else None
        if c is None:
            raise _RunRefused("bad proof", "no chain value held at #%d" % held)
        added = []
        for u in new:
            c = chain_step(c, key, u.hlc, u.body)
            added.append(c)
        if c != bytes(head.chain):
            raise _RunRefused("bad proof", "the run does not chain to its head: altered or forged bytes")
        prev = have[held - 1].hlc if held else 0
        for u in new:
            if u.hlc <= prev:
                raise _RunRefused("form", "#%d: its hlc does not rise" % u.seq)
            if (u.hlc >> 16) > self.now_ms() + self.max_clock_skew_ms:
                raise _RunRefused("form", "#%d: its time is beyond the clock skew" % u.seq)
            prev = u.hlc
        if rec is None:
            rec = self.records[origin] = OriginRecord()
        if rec.key is None:
            rec.key = key
            if head.cert is not None:
                rec.device, rec.cert = bytes(head.device), bytes(head.cert)
            rec.legacy = bool(head.flags & HEAD_LEGACY)
            rec.chains = [chain_start(self.cluster, key)] if not rec.chains else rec.chains
        rec.chains += added
        rec.heads[head.seq] = head.without_key()
        if head.flags & HEAD_FINAL:
            rec.final = head.seq
        self.updates.setdefault(origin, []).extend(new)
        return new

    # -- serving (§8 On the wire: Updates)
    def serve(self, origin, from_seq, to_seq, max_bytes):
        """The answer to a Request: (more, updates, head or None), the range ending at a head
        it holds: taken within the byte limit and to_seq, cut back to the last held head among
        them, or carried on past the limits to the first held head; nothing past its newest
        head. The head carries the key when from_seq is 1, and always for a legacy origin."""
        rec = self.records.get(origin)
        ups = self.updates.get(origin, [])
        if (from_seq == 0 or from_seq > to_seq or origin in RESERVED_ORIGINS or from_seq > len(ups)
                or rec is None or not rec.heads):
            return False, [], None
        newest = max(rec.heads)
        if from_seq > newest:
            return False, [], None
        limit = min(max(max_bytes, 1), MAX_UPDATE)
        end, size = from_seq - 1, 0
        while end < min(to_seq, len(ups)):
            n = len(ups[end].body)
            if end >= from_seq and size + n > limit:
                break
            size += n
            end += 1
        cut = max((s for s in rec.heads if from_seq <= s <= end), default=None)
        if cut is None:
            cut = min(s for s in rec.heads if s > end)       # on past the limits to the first head
        head = rec.heads[cut]
        if from_seq == 1 or rec.legacy:
            head = head.with_key(rec.key, rec.device, rec.cert)
        more = cut < min(to_seq, newest)
        return more, ups[from_seq - 1:cut], head

    def runs(self, origin, from_seq, sign=True):
        """The updates of `origin` from `from_seq` as runs, each ending at a head held (for
        its own origins, with `sign`, a head is signed at the last update first), for a Push:
        [(updates, head)], the head carrying the key when the run starts at seq 1."""
        rec = self.records[origin]
        held = self.held(origin)
        if sign and origin in self.writers and held not in rec.heads and held >= from_seq:
            self.sign_head(origin)
        out, start = [], from_seq
        for s in sorted(x for x in rec.heads if x >= from_seq):
            head = rec.heads[s]
            if start == 1 or rec.legacy:
                head = head.with_key(rec.key, rec.device, rec.cert)
            out.append((self.updates[origin][start - 1:s], head))
            start = s + 1
        return out


class _RunRefused(Exception):
    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind


# ---------------------------------------------------------------------------------------------
# Peer protocol (PROTOCOL.md §2, §7)
# ---------------------------------------------------------------------------------------------

HELLO, ERROR, VECTOR, REQUEST, UPDATES, PUSH = 1, 2, 3, 4, 5, 6
EVIDENCE = 10                  # §2 the table: one piece of fork evidence, only with feature bit 1
PROTOCOL_VERSION = 1
ERROR_NAMES = {1: "malformed frame", 2: "unsupported version or limits", 3: "other cluster",
               4: "hello first", 5: "unavailable", 6: "hello does not bind the link"}
ERROR_UNBOUND = 6
FEATURE_COMPRESS = 16          # §2 Features, bit 4 (value 16): bodies may go compressed
COMPRESSIBLE = {3, 4, 5, 6, 9, 10, 11}   # §2 "Compressed bodies": the types that may be


def compressed_frame(type_, body, version=PROTOCOL_VERSION):
    """§2 "Compressed bodies": [version, type, zbody], zbody the body's MessagePack as one
    zstd frame that names its content size."""
    import zstandard
    z = zstandard.ZstdCompressor(level=1, write_content_size=True).compress(msgpack.packb(body, use_bin_type=True))
    return b"\x93" + msgpack.packb(version) + msgpack.packb(type_) + msgpack.packb(z, use_bin_type=True)


def uncompressed_frame(data):
    """The frame `data` with its compressed body in place, as the bytes the sender
    compressed, after the checks §2 "Compressed bodies" lists; PeerError when one fails."""
    import zstandard
    frame = msgpack.unpackb(data, raw=False, strict_map_key=False)
    version, type_, z = frame
    if type_ not in COMPRESSIBLE:
        raise PeerError("a compressed body in a frame of type %d" % type_)
    size = zstandard.frame_content_size(z)
    if size < 0:
        raise PeerError("a compressed body whose zstd frame does not name its size")
    if size > MAX_FRAME:
        raise PeerError("a compressed body of %d bytes, over max_frame" % size)
    d = zstandard.ZstdDecompressor().decompressobj()
    try:
        body = d.decompress(z)
    except zstandard.ZstdError as e:
        raise PeerError("a compressed body does not decompress: %s" % e)
    if not d.eof or d.unused_data or len(body) != size:
        raise PeerError("a compressed body is not exactly one zstd frame of its named size")
    u = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=MAX_FRAME + 4096)
    u.feed(body)
    try:
        inner = u.unpack()
    except (msgpack.OutOfData, ValueError) as e:
        raise PeerError("a compressed body that is not one MessagePack object: %s" % e)
    if u.tell() != len(body):
        raise PeerError("bytes after a compressed body")
    if not isinstance(inner, list):
        raise PeerError("a compressed body that is not an array")
    return b"\x93" + msgpack.packb(version) + msgpack.packb(type_) + body


def curve_keys(signing_seed_and_pk):
    """(public, secret) X25519 keys from a 64-byte Ed25519 secret key (§7)."""
    from nacl import bindings
    sk = bytes(signing_seed_and_pk)
    return bindings.crypto_sign_ed25519_pk_to_curve25519(sk[32:]), bindings.crypto_sign_ed25519_sk_to_curve25519(sk)


def curve_public_of_device(device_id_text):
    from nacl import bindings
    return bindings.crypto_sign_ed25519_pk_to_curve25519(parse_device_id(device_id_text))


def curve_public_of_key(ed25519_public):
    from nacl import bindings
    return bindings.crypto_sign_ed25519_pk_to_curve25519(bytes(ed25519_public))


def hello_message(cluster, curve_key, node_id):
    """§2 Handshake: what a Hello's signature covers,
    "replog-hello-v1" ‖ u8(len(cluster)) ‖ cluster ‖ curve key (32) ‖ u64be(node_id)."""
    c = _cluster_bytes(cluster)
    return b"replog-hello-v1" + bytes([len(c)]) + c + bytes(curve_key) + struct.pack(">Q", node_id)


def hello_proof(identity_key, cluster, node_id, origin_key=None, origin_cert=None):
    """The elements a signed Hello appends after `features` (§2 Handshake): the device key
    and its signature over hello_message with the device's own CURVE key, then the origin
    key and the device's certificate for it when node_id is that key's origin."""
    from nacl.signing import SigningKey
    sk = bytes(identity_key)
    device = sk[32:]
    sig = SigningKey(sk[:32]).sign(hello_message(cluster, curve_public_of_key(device), node_id)).signature
    out = [device, sig]
    if origin_key is not None:
        out += [bytes(origin_key), bytes(origin_cert)]
    return out


class HelloError(ValueError):
    """A Hello that is malformed (Error 1) or does not bind its link (Error 6)."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


def read_hello(body):
    """§2 the table and Handshake: a Hello body of 5, 6, 8 or 10 elements (more: those after
    the tenth ignored); 7 and 9 are malformed; elements 7-8 and 9-10 are each two nils or a
    bin of 32 then a bin of 64, and 9-10 bins only with 7-8 bins. Raises HelloError(1)."""
    def bad(why):
        raise HelloError(1, why)
    if not isinstance(body, list) or len(body) < 5:
        bad("hello is not an array of at least 5")
    if len(body) in (7, 9):
        bad("hello of %d elements" % len(body))
    if not isinstance(body[0], str) or not isinstance(body[2], str):
        bad("hello cluster or endpoint is not a str")
    if not all(_is_uint(v) for v in body[1:2] + body[3:6]):
        bad("hello integer field is not an unsigned integer")

    def pair(i):
        a, b = body[i], body[i + 1]
        if a is None and b is None:
            return None
        if not (_is_bin(a, 32) and _is_bin(b, 64)):
            bad("hello elements %d-%d are not a bin of 32 and a bin of 64" % (i + 1, i + 2))
        return bytes(a), bytes(b)
    signed = pair(6) if len(body) >= 8 else None
    keyed = pair(8) if len(body) >= 10 else None
    if keyed and not signed:
        bad("hello carries an origin key but no signature")
    f = {"cluster": body[0], "node_id": body[1], "endpoint": body[2], "max_update": body[3],
         "max_frame": body[4], "features": body[5] if len(body) > 5 else 0,
         "device": None, "signature": None, "key": None, "cert": None}
    if signed:
        f["device"], f["signature"] = signed
    if keyed:
        f["key"], f["cert"] = keyed
    return f


def check_hello(f, cluster, link_curve):
    """§2 Handshake, what a receiver checks of a Hello (`f` from read_hello) that arrived on a
    link whose CURVE key is `link_curve` (None: plain TCP, nothing authenticated). Returns
    whether the link is bound to f's node id; raises HelloError(6) when the Hello must be
    refused."""
    def refuse(why):
        raise HelloError(ERROR_UNBOUND, why)
    if f["device"] is None:
        if link_curve is not None and f["features"] & FEATURE_SIGNED:
            refuse("feature bit 1 on an authenticated link and no signature")
        return False
    try:
        curve = curve_public_of_key(f["device"])
    except Exception:
        refuse("the device key has no CURVE form")
    if link_curve is not None and curve != bytes(link_curve):
        refuse("signed by another device than the link's")
    if f["key"] is None:
        if origin_id(f["device"]) != f["node_id"]:
            refuse("node id is not the device key's origin")
    else:
        if origin_id(f["key"]) != f["node_id"]:
            refuse("node id is not the carried key's origin")
        if not ed25519_verify(f["device"], cert_message(cluster, f["key"]), f["cert"]):
            refuse("the certificate does not verify")
    if not ed25519_verify(f["device"], hello_message(cluster, curve, f["node_id"]), f["signature"]):
        refuse("the signature does not verify")
    return link_curve is not None


def pack_frame(type_, body, version=PROTOCOL_VERSION):
    return msgpack.packb([version, type_, body], use_bin_type=True)


def evidence_bytes(frame):
    """The evidence of an Evidence frame ([version, 10, [evidence]], §2) as the bytes the
    sender wrote, for decode_evidence to read as they are."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=MAX_FRAME + 4096)
    u.feed(bytes(frame))
    try:
        if u.read_array_header() != 3:
            raise PeerError("an Evidence frame is not [version, type, body]")
        u.skip()
        u.skip()
        if u.read_array_header() != 1:
            raise PeerError("an Evidence frame's body is not [evidence]")
        start = u.tell()
        u.skip()
        end = u.tell()
    except (msgpack.OutOfData, ValueError) as e:
        raise PeerError("an Evidence frame does not decode: %s" % e)
    return bytes(frame)[start:end]


class PeerError(Exception):
    pass


class Peer:
    """One outgoing link (a DEALER) to a node, as another node would open it."""

    def __init__(self, endpoint, cluster, node_id, identity_key=None, server_device_id=None,
                 advertise="", context=None, features=0, server_key=None, sign=None,
                 origin_key=None, origin_cert=None):
        """`sign`: whether Hellos carry the signature (§2 Handshake); by default when the link
        has a device key and the Hello sets feature bit 1, as a node of this version does.
        `origin_key`/`origin_cert`: when node_id is the origin of a key the device certified."""
        self.context = context or zmq.Context.instance()
        self.cluster, self.node_id, self.advertise = cluster, node_id, advertise
        self.features = features
        self.identity_key = identity_key
        self.sign = (identity_key is not None and bool(features & FEATURE_SIGNED)) if sign is None else sign
        self.origin_key, self.origin_cert = origin_key, origin_cert
        self.link_curve = None     # the server's CURVE key: what its Hello's signature must bind
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME + 4096)
        self.sock.setsockopt(zmq.SNDHWM, 1000)
        self.sock.setsockopt(zmq.RCVHWM, 1000)
        if identity_key is not None:
            pub, sec = curve_keys(identity_key)
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
            self.link_curve = server_key if server_key is not None else curve_public_of_device(server_device_id)
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, self.link_curve)
        self.sock.connect(endpoint)
        self.peer_hello = None
        self.errors = []           # (code, message) received
        self.vector_tips = {}      # origin -> (seq, tip): the chain tips of the last Vector received
        self.empty_without_head = []   # Requests answered empty with no fourth element on a signed link
        self.other = []            # frames received that no call was waiting for
        self.evidence = []         # the evidence of every Evidence frame received, as sent (bytes)
        self.compressed_received = 0   # frames that came with a compressed body

    def close(self):
        self.sock.close(0)

    def send(self, type_, body, version=PROTOCOL_VERSION, compress=False):
        """`compress`: the body goes compressed (§2 "Compressed bodies"), as a link where
        both Hellos set bit 4 allows; tests send it on other links too, to see it refused."""
        self.sock.send(compressed_frame(type_, body, version) if compress else pack_frame(type_, body, version))

    def send_raw(self, data):
        self.sock.send(data)

    @property
    def compressing(self):
        """§2 Features: bodies may go compressed when both Hellos set bit 4."""
        return self.peer_hello is not None and bool(self.features & self.peer_hello["features"] & FEATURE_COMPRESS)

    def recv(self, timeout_s):
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        data = self.sock.recv()
        frame = msgpack.unpackb(data, raw=False, strict_map_key=False)
        if not (isinstance(frame, list) and len(frame) == 3):
            raise PeerError("frame is not [version, type, body]: %r" % (frame,))
        if isinstance(frame[2], bytes):
            if not self.compressing:
                raise PeerError("a compressed body on a link without feature bit 4 on both sides")
            data = uncompressed_frame(data)
            frame = msgpack.unpackb(data, raw=False, strict_map_key=False)
            self.compressed_received += 1
        if frame[1] == EVIDENCE:
            self.evidence.append(evidence_bytes(data))
        return frame

    def wait_for(self, types, timeout_s=5.0):
        """The next frame of one of `types`; Errors are returned too."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerError("no frame of type %s within %.1f s" % (types, timeout_s))
            f = self.recv(left)
            if f is None:
                continue
            if f[1] == ERROR:
                self.errors.append(tuple(f[2]))
            if f[1] in types or f[1] == ERROR:
                return f
            self.other.append(f)

    def wait_for_evidence(self, origin=None, timeout_s=5.0):
        """The first piece of evidence received on this link (of `origin`, when given), as
        its bytes; §8 "Evidence spreads": a node sends every piece it keeps when a link with
        feature bit 1 becomes ready, and again when it keeps a new one."""
        deadline = time.monotonic() + timeout_s
        while True:
            for data in self.evidence:
                if origin is None:
                    return data
                try:
                    if decode_evidence(data).origin == origin:
                        return data
                except EvidenceError:
                    pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerError("no Evidence%s within %.1f s" % (
                    "" if origin is None else " of %s" % origin_text(origin), timeout_s))
            f = self.recv(left)
            if f is not None and f[1] != EVIDENCE:
                if f[1] == ERROR:
                    self.errors.append(tuple(f[2]))
                self.other.append(f)

    def hello_body(self):
        body = [self.cluster, self.node_id, self.advertise, MAX_UPDATE, MAX_FRAME, self.features]
        if self.sign:
            body += hello_proof(self.identity_key, self.cluster, self.node_id, self.origin_key, self.origin_cert)
        return body

    def handshake(self, timeout_s=10.0):
        """§ Handshake: Hello, again at growing intervals (20 ms .. 200 ms) until answered."""
        deadline = time.monotonic() + timeout_s
        interval = 0.02
        while time.monotonic() < deadline:
            self.send(HELLO, self.hello_body())
            f = self.recv(interval)
            while f is not None:
                if f[1] == HELLO:
                    # The answer is checked as §2 Handshake says a receiver checks a Hello.
                    try:
                        hello = read_hello(f[2])
                        hello["origin_bound"] = check_hello(hello, self.cluster, self.link_curve)
                    except HelloError as e:
                        raise PeerError("the node's Hello is refused here: %s (%r)" % (e, f[2]))
                    self.peer_hello = hello
                    return self.peer_hello
                if f[1] == ERROR:
                    self.errors.append(tuple(f[2]))
                    raise PeerError("handshake answered with Error %r" % (f[2],))
                self.other.append(f)
                f = self.recv(0)
            interval = min(interval * 2, 0.2)
        raise PeerError("no Hello back within %.0f s" % timeout_s)

    def exchange_vectors(self, vector, timeout_s=5.0):
        """Sends our vector (reply = false) in pages and returns the peer's answer, a dict
        origin -> seq, assembled from its pages (§ Sync)."""
        entries = [[o, s] for o, s in sorted(vector.items())]
        pages = [entries[i:i + 1024] for i in range(0, len(entries), 1024)] or [[]]
        self.vector_tips = {}
        for i, page in enumerate(pages):
            self.send(VECTOR, [i, len(pages), False, page])
        got, expect = {}, None
        deadline = time.monotonic() + timeout_s
        while True:
            f = self.wait_for((VECTOR,), max(0.01, deadline - time.monotonic()))
            if f[1] == ERROR:
                raise PeerError("Vector answered with Error %r" % (f[2],))
            page, npages, reply, items = f[2]
            if not reply:
                continue
            if page == 0:
                got, expect = {}, npages
            if expect is None or npages != expect:
                got, expect = {}, None
                continue
            for entry in items:
                # [origin, seq] or [origin, seq, tip]: the tip is the first 8
                # bytes of the sender's chain at that seq (§3 Vector).
                if len(entry) not in (2, 3) or (len(entry) == 3 and
                                                (not isinstance(entry[2], bytes) or len(entry[2]) != 8)):
                    raise PeerError("Vector entry %r is not [origin, seq] or [origin, seq, tip of 8 bytes]"
                                    % (entry,))
                o, s = entry[0], entry[1]
                if o not in RESERVED_ORIGINS:
                    got[o] = s
                    if len(entry) == 3:
                        self.vector_tips[o] = (s, entry[2])
            if page == npages - 1:
                return got

    @property
    def signed(self):
        """§2 Features: the link carries heads when both Hellos set bit 1."""
        return self.peer_hello is not None and bool(self.features & self.peer_hello["features"] & FEATURE_SIGNED)

    def request_range(self, origin, from_seq, to_seq, max_bytes=1 << 20, timeout_s=5.0):
        """Request -> (more, updates, head): the head is the fourth element of Updates on a
        signed link (§8 On the wire), None when absent or nil."""
        self.send(REQUEST, [origin, from_seq, to_seq, max_bytes])
        while True:
            f = self.wait_for((UPDATES,), timeout_s)
            if f[1] == ERROR:
                raise PeerError("Request answered with Error %r" % (f[2],))
            body = f[2]
            if not (isinstance(body, list) and len(body) in (3, 4)):
                raise PeerError("Updates body malformed: %r" % (body,))
            if body[0] != origin:
                self.other.append(f)
                continue
            if self.signed and len(body) != 4:
                if body[2]:
                    raise PeerError("Updates without its head on a signed link: %r" % (body[:2],))
                # §8 says an empty range's head is nil; an empty answer of 3 elements is read as
                # one (tests/interop/README.md, "Unclear in PROTOCOL.md").
                self.empty_without_head.append((origin, from_seq, to_seq))
            head = Head.from_wire(body[3]) if len(body) == 4 and body[3] is not None else None
            return body[1], [Update(h, og, b) for h, og, b in body[2]], head

    def request(self, origin, from_seq, to_seq, max_bytes=1 << 20, timeout_s=5.0):
        more, ups, _ = self.request_range(origin, from_seq, to_seq, max_bytes, timeout_s)
        return more, ups

    def pull_verified(self, log, their_vector, max_bytes=1 << 20):
        """§8 Receiving with verification: pulls, origin by origin, what `log` (a SignedLog)
        lacks of `their_vector`; each range is verified against the head it ends at (the key
        from the head or remembered for the origin, the chain from c_0 or the remembered tip)
        and stored whole, or refused. Stops pulling an origin at its first refusal. Returns
        (updates stored, refusals)."""
        got, refused = [], []
        for origin, theirs in sorted(their_vector.items()):
            while log.held(origin) < theirs:
                more, ups, head = self.request_range(origin, log.held(origin) + 1, theirs, max_bytes)
                if not ups:
                    break
                stored, refusals = log.receive(ups, [head] if head is not None else [])
                got += stored
                refused += refusals
                if refusals or not stored:
                    break
        return got, refused

    def push_runs(self, runs, compress=False):
        """§8 On the wire, Push: whole runs [(updates, head)], each ending at its head, in as
        few frames as fit (at most 4,096 heads and max_frame bytes each); their bodies
        compressed when `compress`."""
        frames, ups, heads, size = [], [], [], 0
        for run, head in runs:
            n = sum(len(u.body) + 24 for u in run) + 200
            if ups and (len(heads) == MAX_PUSH_HEADS or size + n > MAX_FRAME - 4096):
                frames.append((ups, heads))
                ups, heads, size = [], [], 0
            ups += [u.envelope() for u in run]
            heads.append(head.wire())
            size += n
        if ups:
            frames.append((ups, heads))
        for u, h in frames:
            self.send(PUSH, [u, h], compress=compress)
        return len(frames)

    def pull(self, have, their_vector, max_bytes=1 << 20):
        """Pulls, origin by origin, what `have` (origin -> list of updates in seq order)
        lacks of `their_vector`. Returns the updates received."""
        got = []
        for origin, theirs in sorted(their_vector.items()):
            own = len(have.get(origin, []))
            while own < theirs:
                more, ups = self.request(origin, own + 1, theirs, max_bytes)
                if not ups:
                    break
                for u in ups:
                    if u.origin != origin or u.seq != own + 1:
                        raise PeerError("Updates out of order: %r after seq %d" % (u, own))
                    have.setdefault(origin, []).append(u)
                    got.append(u)
                    own += 1
        return got

    def push(self, updates):
        self.send(PUSH, [[u.envelope() for u in updates]])


# ---------------------------------------------------------------------------------------------
# Local API (PROTOCOL.md §4)
# ---------------------------------------------------------------------------------------------

class ApiError(Exception):
    pass


class Api:
    def __init__(self, data_dir, timeout_ms=10000, context=None):
        import os
        with open(os.path.join(data_dir, "api.endpoint")) as f:
            self.api_endpoint, self.events_endpoint = f.read().split("\n")[:2]
        self.context = context or zmq.Context.instance()
        self.timeout_ms = timeout_ms
        self._connect()

    def _connect(self):
        self.sock = self.context.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self.sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        self.sock.connect(self.api_endpoint)

    def close(self):
        self.sock.close(0)

    def request(self, op, arg=None):
        self.sock.send(encode([1, op, {} if arg is None else arg]))
        try:
            reply = decode(self.sock.recv())
        except zmq.Again:
            self.sock.close(0)
            self._connect()
            raise ApiError("no reply to %s within %d ms" % (op, self.timeout_ms))
        if not (isinstance(reply, list) and len(reply) == 3 and reply[0] == 1):
            raise ApiError("reply is not [1, status, result]: %r" % (reply,))
        if reply[1] != "ok":
            raise ApiError(reply[2])
        return reply[2]

    def call(self, method, arg):
        return self.request("call", {"method": method, "arg": arg})["id"]

    def state(self, path=None):
        return self.request("state", {"path": path} if path else {})

    def hash(self):
        return self.request("hash", None)

    def status(self):
        return self.request("status", None)


# ---------------------------------------------------------------------------------------------
# Joining with an invite (PROTOCOL.md §7 "Joining with an invite")
# ---------------------------------------------------------------------------------------------

JOIN, JOIN_REPLY, MEMBERS = 7, 8, 9
FEATURE_MEMBERS = 1            # §2 Features, bit 0
INVITE_PREFIX = "replog-invite-1:"
B32_LOWER = B32.lower()
_CLUSTER_ID_CHARS = set("0123456789abcdefABCDEF-_")


class InviteError(ValueError):
    pass


def blake2b(data, size, key=b""):
    """libsodium crypto_generichash: BLAKE2b with the output length given (and a key)."""
    return hashlib.blake2b(data, digest_size=size, key=key).digest()


def base32_lower(data):
    """RFC 4648 alphabet in lower case, no padding, unused bits of the last character zero."""
    bits, n, out = 0, 0, []
    for b in data:
        bits, n = (bits << 8) | b, n + 8
        while n >= 5:
            n -= 5
            out.append(B32_LOWER[(bits >> n) & 31])
    if n:
        out.append(B32_LOWER[(bits << (5 - n)) & 31])
    return "".join(out)


def unbase32_lower(text):
    if any(c not in B32_LOWER for c in text):
        raise InviteError("a character outside the alphabet")
    nbits = 5 * len(text)
    nbytes, rest = divmod(nbits, 8)
    if rest >= 5:                       # no byte count gives this many characters
        raise InviteError("a length no byte count gives")
    v = 0
    for c in text:
        v = (v << 5) | B32_LOWER.index(c)
    if v & ((1 << rest) - 1):
        raise InviteError("non-zero padding bits")
    return (v >> rest).to_bytes(nbytes, "big")


def _endpoint_ok(ep):
    if not (7 <= len(ep) <= 255) or not all(0x20 < b < 0x7f for b in ep):
        return False
    m = re.fullmatch(rb"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})", ep)
    return bool(m) and 1 <= int(m.group(2)) <= 65535


def make_invite(inviter_key, secret, cluster, endpoints):
    """The line for these fields (§7 "The line")."""
    assert len(inviter_key) == 32 and len(secret) == 16
    c = cluster.encode()
    body = bytes(inviter_key) + bytes(secret) + bytes([len(c)]) + c + bytes([len(endpoints)])
    for ep in endpoints:
        e = ep.encode()
        body += bytes([len(e)]) + e
    check_bytes = blake2b(INVITE_PREFIX.encode() + body, 16)[:4]
    return INVITE_PREFIX + base32_lower(body + check_bytes)


def parse_invite(line):
    """{inviter_key, secret, cluster, endpoints} of a line, or InviteError (§7 "The line")."""
    line = line.strip()
    if not line.startswith(INVITE_PREFIX):
        if line.startswith("replog-invite-"):
            raise InviteError("another version")
        raise InviteError("not an invite line")
    raw = unbase32_lower(line[len(INVITE_PREFIX):])
    if len(raw) < 32 + 16 + 1 + 1 + 1 + 4:
        raise InviteError("too short")
    body, check_bytes = raw[:-4], raw[-4:]
    if blake2b(INVITE_PREFIX.encode() + body, 16)[:4] != check_bytes:
        raise InviteError("truncated or changed")
    pos = 48
    c = body[pos]
    pos += 1
    if not 1 <= c <= 64 or pos + c > len(body):
        raise InviteError("cluster id length")
    cluster = body[pos:pos + c].decode("ascii", "replace")
    if any(ch not in _CLUSTER_ID_CHARS for ch in cluster):
        raise InviteError("cluster id characters")
    pos += c
    if pos >= len(body):
        raise InviteError("runs past the end")
    n = body[pos]
    pos += 1
    if not 1 <= n <= 8:
        raise InviteError("number of endpoints")
    endpoints = []
    for _ in range(n):
        if pos >= len(body):
            raise InviteError("runs past the end")
        ln = body[pos]
        pos += 1
        if pos + ln > len(body):
            raise InviteError("runs past the end")
        ep = body[pos:pos + ln]
        if not _endpoint_ok(ep):
            raise InviteError("endpoint %r" % ep)
        endpoints.append(ep.decode("ascii"))
        pos += ln
    if pos != len(body):
        raise InviteError("bytes after the last endpoint")
    return {"inviter_key": body[:32], "secret": body[32:48], "cluster": cluster, "endpoints": endpoints}


def join_proof(secret, joiner_key, inviter_key):
    return blake2b(b"replog-join-v1" + bytes(joiner_key) + bytes(inviter_key), 32, key=secret)


def accept_proof(secret, inviter_key, joiner_key):
    return blake2b(b"replog-accept-v1" + bytes(inviter_key) + bytes(joiner_key), 32, key=secret)


def join_reply_ok(body):
    """A JoinReply body that decodes (§7): accepted with a 32-byte proof, a 1..64-byte
    cluster id and a 32-byte secret, or refused with all three empty."""
    if not (isinstance(body, list) and len(body) == 4 and isinstance(body[0], bool)):
        return False
    ok, proof, cluster, secret = body
    if not (isinstance(proof, bytes) and isinstance(cluster, str) and isinstance(secret, bytes)):
        return False
    if ok:
        return len(proof) == 32 and 1 <= len(cluster.encode()) <= 64 and len(secret) == 32
    return proof == b"" and cluster == "" and secret == b""


# ---------------------------------------------------------------------------------------------
# Membership (PROTOCOL.md §7 "Membership")
# ---------------------------------------------------------------------------------------------

MEMBER, REMOVED = 0, 1
MAX_MEMBER_ENTRIES = 1024


class MemberEntry:
    __slots__ = ("key", "state", "ms", "author", "name", "endpoint")

    def __init__(self, key, state, ms, author, name="", endpoint=""):
        self.key, self.state, self.ms, self.author = bytes(key), state, ms, bytes(author)
        self.name, self.endpoint = name, endpoint

    def wire(self):
        return [self.key, self.state, self.ms, self.author, self.name, self.endpoint]

    def order(self):
        """Of two entries about one key the greater by (ms, removed over member, author bytes,
        name bytes) wins."""
        return (self.ms, self.state == REMOVED, self.author, self.name.encode())

    def __repr__(self):
        return "MemberEntry(%s, %s, ms=%d, by %s, name=%r, endpoint=%r)" % (
            device_id(self.key), "removed" if self.state == REMOVED else "member", self.ms,
            device_id(self.author), self.name, self.endpoint)


def decode_members(body):
    """The entries of a Members frame body; ValueError when its shape is not §2's."""
    if not (isinstance(body, list) and len(body) == 1 and isinstance(body[0], list)):
        raise ValueError("Members body is not [[entry, ...]]")
    if len(body[0]) > MAX_MEMBER_ENTRIES:
        raise ValueError("more than 1,024 entries")
    out = []
    for e in body[0]:
        if not (isinstance(e, list) and len(e) == 6):
            raise ValueError("entry is not 6 elements: %r" % (e,))
        key, state, ms, author, name, endpoint = e
        if not (isinstance(key, bytes) and len(key) == 32 and isinstance(author, bytes) and len(author) == 32):
            raise ValueError("key or author not bin 32: %r" % (e,))
        if state not in (MEMBER, REMOVED) or not (isinstance(ms, int) and 0 <= ms < (1 << 63)):
            raise ValueError("state or ms: %r" % (e,))
        if not (isinstance(name, str) and len(name.encode()) <= 64 and isinstance(endpoint, str)
                and len(endpoint.encode()) <= 265):
            raise ValueError("name or endpoint: %r" % (e,))
        out.append(MemberEntry(key, state, ms, author, name, endpoint))
    return out


def members_body(entries):
    return [[e.wire() for e in entries]]


# ---------------------------------------------------------------------------------------------
# Discovery beacons (PROTOCOL.md §7 "Discovery", docs/STORAGE.md cluster.key)
# ---------------------------------------------------------------------------------------------

BEACON_MAGIC = b"RPLD"
BEACON_VERSION = 1
BEACON_SIZE = 56


def kdf_derive(master, context, subkey_id=1, length=32):
    """libsodium crypto_kdf_derive_from_key (documented as BLAKE2b keyed with the master key,
    salt = subkey id as 8 bytes little-endian padded with zeros to 16, personal = the
    8-byte context padded to 16)."""
    assert len(master) == 32 and len(context) == 8
    return hashlib.blake2b(b"", digest_size=length, key=master,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=context.encode() + bytes(8)).digest()


def beacon_keys(cluster_secret):
    """(tag key, MAC key)."""
    return kdf_derive(cluster_secret, "beaconid"), kdf_derive(cluster_secret, "beaconmc")


def make_beacon(keys, device_key, port, nonce=None, flags=0):
    tag_key, mac_key = keys
    nonce = nonce if nonce is not None else __import__("os").urandom(16)
    tag = blake2b(nonce + bytes(device_key), 16, key=tag_key)
    mask = int.from_bytes(blake2b(nonce, 16, key=tag_key)[:2], "big")
    head = BEACON_MAGIC + bytes([BEACON_VERSION, flags]) + nonce + tag + struct.pack(">H", port ^ mask)
    return head + blake2b(head, 16, key=mac_key)


def parse_beacon(data, keys, device_keys):
    """(status, port, device key) of a datagram: status is "malformed", "bad_mac",
    "unknown_device" or "ok" (the first of device_keys whose tag matches)."""
    import hmac
    tag_key, mac_key = keys
    if len(data) != BEACON_SIZE or data[:4] != BEACON_MAGIC or data[4] != BEACON_VERSION:
        return "malformed", None, None
    if not hmac.compare_digest(blake2b(data[:40], 16, key=mac_key), data[40:56]):
        return "bad_mac", None, None
    nonce, tag = data[6:22], data[22:38]
    port = struct.unpack(">H", data[38:40])[0] ^ int.from_bytes(blake2b(nonce, 16, key=tag_key)[:2], "big")
    if port == 0:
        return "malformed", None, None
    for k in device_keys:
        if hmac.compare_digest(blake2b(nonce + bytes(k), 16, key=tag_key), tag):
            return "ok", port, bytes(k)
    return "unknown_device", port, None


# ---------------------------------------------------------------------------------------------
# The listening side: a CURVE ROUTER and the ZAP handler a node answers itself (§7 Trust)
# ---------------------------------------------------------------------------------------------

class ZapHandler:
    """Answers ZAP (RFC 27) on inproc://zeromq.zap.01 of a context, in a thread.
    `policy(mechanism, client_curve_key)` returns (status code, user id)."""

    def __init__(self, context, policy):
        import threading
        self.context, self.policy = context, policy
        self.requests = []                 # (mechanism, client key, status) seen
        self.sock = context.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("inproc://zeromq.zap.01")
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            if not self.sock.poll(50):
                continue
            msg = self.sock.recv_multipart()
            version, request_id, domain, _address, _identity, mechanism = msg[:6]
            creds = msg[6:]
            key = creds[0] if mechanism == b"CURVE" and creds else None
            status, user = self.policy(mechanism.decode(), key)
            self.requests.append((mechanism.decode(), key, status, domain.decode()))
            self.sock.send_multipart([version, request_id, str(status).encode(),
                                      b"OK" if status == 200 else b"refused", user.encode(), b""])

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close(0)


class Listener:
    """A ROUTER, CURVE server with ZAP domain `replog` as a node binds it (§2, §7); plain
    TCP (as with --insecure) when `identity_key` is None."""

    def __init__(self, identity_key, endpoint="tcp://127.0.0.1:*", context=None):
        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME + 4096)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if identity_key is not None:
            pub, sec = curve_keys(identity_key)
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
            self.sock.setsockopt(zmq.ZAP_DOMAIN, b"replog")
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.last_data = None
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def recv(self, timeout_s):
        """(routing id, [version, type, body], the ZAP user id of the connection) or None."""
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        parts = self.sock.recv_multipart(copy=False)
        try:
            user = parts[-1].get("User-Id")
        except zmq.ZMQError:       # no ZAP on a plain socket
            user = None
        if len(parts) != 2:
            self.last_data = None
            return parts[0].bytes, None, user
        self.last_data = parts[1].bytes          # the frame as sent
        return parts[0].bytes, msgpack.unpackb(self.last_data, raw=False, strict_map_key=False), user

    def send(self, rid, type_, body):
        self.sock.send_multipart([rid, pack_frame(type_, body)])

    def close(self):
        self.sock.close(0)


def hello_fields(body):
    return read_hello(body)


class PeerServer:
    """The listening side of a peer, as a node answers on its ROUTER (§2 Handshake, Sync;
    §8 On the wire), over a SignedLog: Hello with its own Hello, a Vector with its vector,
    a Request with a range ending at a head it holds (the head the fourth element on a link
    where both Hellos set bit 1), a Push by verifying its runs. Driven by poll(); records
    what it saw: `hellos`, `requests`, `served` ((origin, from_seq, to_seq, count, head)),
    `pushed` (updates stored from Pushes) and `refused`. Evidence on a link where both
    Hellos set bit 1 is checked with check_evidence against its cluster (§8 "Evidence
    spreads"): `evidence` holds what passed, as sent, `refused_evidence` (bytes, why) the
    rest."""

    def __init__(self, listener, log, node_id, features=FEATURE_SIGNED, identity_key=None):
        """`identity_key`: the listener's device key (64 bytes), when it is a CURVE server:
        its Hellos are signed with it, and each Hello it receives must bind the device
        that ZAP admitted (its user id, 64 hex digits of the device key) to its node id."""
        self.lis, self.log, self.node_id, self.features = listener, log, node_id, features
        self.identity_key = identity_key
        self.links = {}               # routing id -> the peer's Hello fields
        self.hellos, self.requests, self.served, self.pushed, self.refused = [], [], [], [], []
        self.refused_hellos = []      # (Hello fields, why)
        self.evidence, self.refused_evidence = [], []
        self.frames = 0

    def hello_body(self):
        body = [self.log.cluster, self.node_id, self.lis.endpoint, MAX_UPDATE, MAX_FRAME, self.features]
        if self.identity_key is not None:
            body += hello_proof(self.identity_key, self.log.cluster, self.node_id)
        return body

    def signed(self, rid):
        h = self.links.get(rid)
        return h is not None and bool(h["features"] & self.features & FEATURE_SIGNED)

    def poll(self, timeout_s):
        """Handles at most one frame; returns False when none came within timeout_s."""
        got = self.lis.recv(timeout_s)
        if got is None:
            return False
        rid, f, user = got
        self.frames += 1
        if not (isinstance(f, list) and len(f) == 3 and f[0] == PROTOCOL_VERSION):
            return True
        _, type_, body = f
        if type_ == HELLO:
            try:
                fields = read_hello(body)
            except HelloError as e:
                self.lis.send(rid, ERROR, [1, str(e)])
                return True
            if fields["cluster"] != self.log.cluster:
                self.lis.send(rid, ERROR, [3, "another cluster"])
                return True
            link_curve = None
            if self.identity_key is not None:
                link_curve = curve_public_of_key(bytes.fromhex(user))
            try:
                fields["origin_bound"] = check_hello(fields, self.log.cluster, link_curve)
            except HelloError as e:
                self.links.pop(rid, None)
                self.refused_hellos.append((fields, str(e)))
                self.lis.send(rid, ERROR, [e.code, str(e)])
                return True
            self.links[rid] = fields
            self.hellos.append(fields)
            self.lis.send(rid, HELLO, self.hello_body())
        elif rid not in self.links:
            self.lis.send(rid, ERROR, [4, "say hello first"])
        elif type_ == VECTOR:
            if not body[2]:
                entries = [[o, n] for o, n in sorted(self.log.vector().items())]
                pages = [entries[i:i + 1024] for i in range(0, len(entries), 1024)] or [[]]
                for i, page in enumerate(pages):
                    self.lis.send(rid, VECTOR, [i, len(pages), True, page])
        elif type_ == REQUEST:
            origin, from_seq, to_seq, max_bytes = body
            self.requests.append((origin, from_seq, to_seq, max_bytes))
            more, ups, head = self.log.serve(origin, from_seq, to_seq, max_bytes)
            self.served.append((origin, from_seq, to_seq, len(ups), head))
            answer = [origin, more, [u.envelope() for u in ups]]
            if self.signed(rid):
                answer.append(head.wire() if head is not None else None)
            self.lis.send(rid, UPDATES, answer)
        elif type_ == PUSH:
            if not self.signed(rid) or len(body) != 2:
                self.refused.append(Refusal(0, [], "unverified", "a Push without heads"))
                return True
            try:
                ups = [Update(h, o, b) for h, o, b in body[0]]
                heads = [Head.from_wire(h) for h in body[1]]
            except (DecodeError, HeadError, ValueError, TypeError) as e:
                self.refused.append(Refusal(0, [], "malformed", str(e)))
                return True
            stored, refusals = self.log.receive(ups, heads)
            self.pushed += stored
            self.refused += refusals
        elif type_ == EVIDENCE and self.signed(rid):
            try:
                data = evidence_bytes(self.lis.last_data)
                check_evidence(decode_evidence(data), self.log.cluster)
            except (PeerError, EvidenceError) as e:
                self.refused_evidence.append((self.lis.last_data, str(e)))
                return True
            self.evidence.append(data)
        return True

    def close(self):
        self.lis.close()
