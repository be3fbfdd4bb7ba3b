"""A second implementation of replog's S3 archive, written from docs/ARCHIVE.md and
PROTOCOL.md alone (no C++ was read to write it). Every rule cites the section it
implements, so a difference from replog points at either replog or the document.

    bucket     plain HTTP ListObjectsV2 (continuation tokens, start-after, delimiter),
               GET, PUT and DELETE, unsigned (for a test server that checks no
               signatures)
    names      ARCHIVE.md §2: segment, change feed and snapshot names, one spelling each
    keys       ARCHIVE.md §3: the archive key from a member's cluster secret, the AEAD
               and nonce subkeys, the key id
    sealing    ARCHIVE.md §3: header, chunks, synthetic nonces; open (every check) and seal
    segments   ARCHIVE.md §4: plaintext decode and encode, the proof against the chain
               and the head (PROTOCOL.md §8, through replog_peer.py)
    snapshots  ARCHIVE.md §6: plaintext decode and encode, names, vector digest, heads,
               checkpoint (docs/STORAGE.md), state hash, signature, signer membership
    evidence   ARCHIVE.md §2 and §5 "Forks": fork evidence objects, their names from
               their contents, sealed and opened, proved (PROTOCOL.md §8 through
               replog_peer.py)
    reader     ARCHIVE.md §5: per origin, the chain of segments from seq 1 (the one
               reaching furthest at each step), holes named, every other segment
               checked against it; every snapshot checked against the segments

Needs Debian's python3-msgpack and python3-nacl.
"""
import hashlib
import http.client
import json
import os
import re
import struct
import urllib.parse
import xml.etree.ElementTree as ET

import msgpack

import replog_peer as rp

# ---------------------------------------------------------------------------------------------
# Constants (ARCHIVE.md §3, §4, §6)
# ---------------------------------------------------------------------------------------------

MAGIC = b"replog-a"
FORMAT = 1
KIND_SEGMENT, KIND_SNAPSHOT, KIND_EVIDENCE = 1, 2, 3
CHUNK = 65536
HEADER_SIZE = 28                       # 8 + 1 + 1 + 2 + 4 + 4 + 8
CHUNK_OVERHEAD = 24 + 16               # nonce + Poly1305 tag
MAX_PLAINTEXT = 256 * 1024 * 1024      # "refuses a length above 256 MiB before reading on"
KDF_CONTEXT_ARCHIVE = "rlarchiv"       # the subkeys E (id 1) and N (id 2)
KDF_CONTEXT_MEMBER = "archive0"        # a member's archive key from the cluster secret (id 1)
KEY_ID_TAG = b"replog-archive-key-id-v1"
NONCE_TAG = b"replog-archive-nonce-v1"
SNAPSHOT_TAG = b"replog-snapshot-v1"
SEGMENT_VERSION = 1
SNAPSHOT_VERSION = 1


class ArchiveError(Exception):
    """Corruption or a refusal, named by the object's key (ARCHIVE.md §3: "Any failure is
    corruption named by the object's key")."""

    def __init__(self, key, why):
        super().__init__("%s: %s" % (key, why))
        self.key, self.why = key, why


# ---------------------------------------------------------------------------------------------
# The bucket: unsigned ListObjectsV2 / GET / PUT / DELETE over plain HTTP, path-style
# ---------------------------------------------------------------------------------------------

class Bucket:
    """`endpoint` http://HOST:PORT, `bucket` its name, `prefix` the archive's prefix (names
    below are relative to it, ARCHIVE.md §2). Loopback test servers only: no signing."""

    MAX_PAGES = 10000                  # bound on continuation pages of one listing

    def __init__(self, endpoint, bucket, prefix="", timeout=10.0):
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError("endpoint is http://HOST:PORT")
        self.host, self.port, self.bucket, self.timeout = u.hostname, u.port, bucket, timeout
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.requests = 0

    def _request(self, method, path, query=None, body=None, headers=None):
        url = "/" + urllib.parse.quote(self.bucket) + ("/" + urllib.parse.quote(path) if path else "")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            self.requests += 1
            return r.status, data
        finally:
            conn.close()

    @staticmethod
    def _strip(tag):
        return tag.rsplit("}", 1)[-1]

    def list(self, prefix="", start_after=None, delimiter=None, max_keys=None):
        """ListObjectsV2 over every page: (keys, common prefixes), both relative to the
        archive's prefix, in the order the store gives them."""
        keys, prefixes, token = [], [], None
        for _ in range(self.MAX_PAGES):
            q = [("list-type", "2"), ("prefix", self.prefix + prefix)]
            if start_after is not None:
                q.append(("start-after", self.prefix + start_after))
            if delimiter is not None:
                q.append(("delimiter", delimiter))
            if max_keys is not None:
                q.append(("max-keys", str(max_keys)))
            if token is not None:
                q.append(("continuation-token", token))
            status, data = self._request("GET", "", q)
            if status != 200:
                raise OSError("listing %r: HTTP %d %s" % (prefix, status, data[:200]))
            root = ET.fromstring(data)
            truncated, token = False, None
            for el in root:
                tag = self._strip(el.tag)
                if tag == "Contents":
                    for c in el:
                        if self._strip(c.tag) == "Key":
                            keys.append(self._rel(c.text or ""))
                elif tag == "CommonPrefixes":
                    for c in el:
                        if self._strip(c.tag) == "Prefix":
                            prefixes.append(self._rel(c.text or ""))
                elif tag == "IsTruncated":
                    truncated = (el.text or "").strip() == "true"
                elif tag == "NextContinuationToken":
                    token = el.text
            if not truncated:
                return keys, prefixes
            if not token:
                raise OSError("listing %r: truncated without a continuation token" % prefix)
        raise OSError("listing %r: more than %d pages" % (prefix, self.MAX_PAGES))

    def _rel(self, key):
        if not key.startswith(self.prefix):
            raise OSError("the store listed %r outside the prefix %r" % (key, self.prefix))
        return key[len(self.prefix):]

    def get(self, name):
        """The object's bytes, or None when it is not there (404)."""
        status, data = self._request("GET", self.prefix + name)
        if status == 404:
            return None
        if status != 200:
            raise OSError("GET %s: HTTP %d" % (name, status))
        return data

    def put(self, name, data):
        status, body = self._request("PUT", self.prefix + name, body=bytes(data),
                                     headers={"Content-Type": "application/octet-stream"})
        if status not in (200, 201):
            raise OSError("PUT %s: HTTP %d %s" % (name, status, body[:200]))

    def delete(self, name):
        status, _ = self._request("DELETE", self.prefix + name)
        if status not in (200, 204):
            raise OSError("DELETE %s: HTTP %d" % (name, status))


# ---------------------------------------------------------------------------------------------
# Names (ARCHIVE.md §2): decimal zero-padded to the width, ids lowercase hex, one spelling
# ---------------------------------------------------------------------------------------------

_SEG = re.compile(r"log/([0-9a-f]{16})/([0-9]{20})-([0-9]{20})\.seg")
_SNAP = re.compile(r"snapshots/([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{16})\.snap")
_CHANGE = re.compile(r"changes/([0-9]{13})-([0-9a-f]{16})-([0-9]{20})")
_EVIDENCE = re.compile(r"evidence/([0-9a-f]{16})/([0-9]{20})-([0-9a-f]{16})\.ev")
U64 = (1 << 64) - 1


def segment_name(origin, first, last):
    return "log/%016x/%020d-%020d.seg" % (origin, last, first)


def origin_prefix(origin):
    return "log/%016x/" % origin


def start_after_held(origin, held):
    """§2: `start-after = log/<origin>/<held:20>-~` lists the segments ending past `held`."""
    return "log/%016x/%020d-~" % (origin, held)


def parse_segment_name(name):
    """(origin, first, last), or None when `name` is not a segment's name (ignored)."""
    m = _SEG.fullmatch(name)
    if not m:
        return None
    origin, last, first = int(m.group(1), 16), int(m.group(2)), int(m.group(3))
    if not 1 <= first <= last or last > U64:
        return None
    return origin, first, last


def evidence_name(origin, fork_seq, digest):
    return "evidence/%016x/%020d-%s.ev" % (origin, fork_seq, bytes(digest).hex())


def parse_evidence_name(name):
    """(origin, fork seq, digest), or None when `name` is not fork evidence's name."""
    m = _EVIDENCE.fullmatch(name)
    if not m:
        return None
    origin, seq, digest = int(m.group(1), 16), int(m.group(2)), bytes.fromhex(m.group(3))
    if not 1 <= seq <= U64:
        return None
    return origin, seq, digest


def name_of_evidence(evidence):
    """§2: the name fork evidence (PROTOCOL.md §8 encoding) is stored under: its origin, its
    fork seq (the branch seq of chain evidence, 1 for key evidence) and the first 8 bytes
    of BLAKE2b-256 over the encoding."""
    e = rp.decode_evidence(evidence)
    digest = hashlib.blake2b(bytes(evidence), digest_size=32).digest()[:8]
    return evidence_name(e.a.origin, rp.fork_seq(e), digest)


def write_evidence(key, evidence):
    """(name, object bytes): §5 "Forks", plaintext u8 1 ‖ evidence, sealed under its name."""
    name = name_of_evidence(evidence)
    return name, seal(key, KIND_EVIDENCE, evidence_context(*parse_evidence_name(name)), b"\x01" + bytes(evidence))


def read_evidence(name, data, keys, cluster):
    """§5 "Forks": opens the object, checks the format byte, that the evidence decodes and
    names this very object, and that it proves a fork in `cluster`. Returns (origin, fork
    seq, evidence bytes); raises ArchiveError naming `name`."""
    pt = open_sealed(name, data, keys, KIND_EVIDENCE)
    if not pt or pt[0] != 1:
        raise ArchiveError(name, "evidence of format %r, not 1" % (pt[:1],))
    evidence = pt[1:]
    try:
        if name_of_evidence(evidence) != name:
            raise ArchiveError(name, "holds evidence named %s" % name_of_evidence(evidence))
        origin, seq = rp.check_evidence(rp.decode_evidence(evidence), cluster)
    except rp.EvidenceError as e:
        raise ArchiveError(name, "evidence: %s" % e)
    return origin, seq, evidence


def snapshot_name(cut, vdigest, mdigest):
    return "snapshots/%s-%s-%s.snap" % (bytes(cut).hex(), bytes(vdigest).hex(), bytes(mdigest).hex())


def parse_snapshot_name(name):
    """(cut[16], vector digest[8], methods digest[8]), or None."""
    m = _SNAP.fullmatch(name)
    if not m:
        return None
    return tuple(bytes.fromhex(g) for g in m.groups())


def parse_change_name(name):
    """(uploader ms, origin, last seq), or None."""
    m = _CHANGE.fullmatch(name)
    if not m or int(m.group(3)) > U64:
        return None
    return int(m.group(1)), int(m.group(2), 16), int(m.group(3))


# ---------------------------------------------------------------------------------------------
# Keys (ARCHIVE.md §3)
# ---------------------------------------------------------------------------------------------

def kdf(master, context, subkey_id, length=32):
    """libsodium crypto_kdf_derive_from_key: BLAKE2b keyed with the master key over the
    empty message, salt = u64le(subkey id) ‖ 8 zero bytes, personal = the 8-byte context
    ‖ 8 zero bytes (as replog_peer.kdf_derive, which the beacon test checks against the
    node)."""
    return rp.kdf_derive(bytes(master), context, subkey_id, length)


def archive_key_from_secret(cluster_secret):
    """§3: a member's archive key = crypto_kdf_derive_from_key(32, 1, "archive0", secret)."""
    if len(cluster_secret) != 32:
        raise ValueError("a cluster secret is 32 bytes")
    return kdf(cluster_secret, KDF_CONTEXT_MEMBER, 1)


def read_cluster_key(data_dir):
    """docs/STORAGE.md cluster.key: exactly 32 bytes."""
    with open(os.path.join(data_dir, "cluster.key"), "rb") as f:
        secret = f.read()
    if len(secret) != 32:
        raise ValueError("cluster.key is not 32 bytes")
    return secret


class ArchiveKey:
    """The archive key A with its subkeys E (AEAD, id 1) and N (nonce, id 2) and its id."""

    def __init__(self, a):
        if len(a) != 32:
            raise ValueError("an archive key is 32 bytes")
        self.a = bytes(a)
        self.e = kdf(self.a, KDF_CONTEXT_ARCHIVE, 1)
        self.n = kdf(self.a, KDF_CONTEXT_ARCHIVE, 2)
        self.id = struct.unpack(">I", hashlib.blake2b(KEY_ID_TAG + self.a, digest_size=32).digest()[:4])[0]

    @classmethod
    def of_member(cls, data_dir):
        return cls(archive_key_from_secret(read_cluster_key(data_dir)))


# ---------------------------------------------------------------------------------------------
# Sealing (ARCHIVE.md §3)
# ---------------------------------------------------------------------------------------------

def segment_context(origin, first, last):
    return struct.pack(">QQQ", origin, first, last)


def snapshot_context(cut, vdigest, mdigest):
    return bytes(cut) + bytes(vdigest) + bytes(mdigest)


def context_of_name(name):
    """(kind, context) that binds an object to its name, or None for a foreign name."""
    s = parse_segment_name(name)
    if s is not None:
        return KIND_SEGMENT, segment_context(*s)
    p = parse_snapshot_name(name)
    if p is not None:
        return KIND_SNAPSHOT, snapshot_context(*p)
    e = parse_evidence_name(name)
    if e is not None:
        return KIND_EVIDENCE, evidence_context(*e)
    return None


def evidence_context(origin, fork_seq, digest):
    """§3: u64be origin ‖ u64be fork seq ‖ digest[8]."""
    return struct.pack(">QQ", origin, fork_seq) + bytes(digest)


def header(kind, key_id, length):
    return MAGIC + struct.pack(">BBHIIQ", FORMAT, kind, 0, key_id, CHUNK, length)


def chunk_count(length):
    return max(1, -(-length // CHUNK))


def sealed_size(length):
    return HEADER_SIZE + length + chunk_count(length) * CHUNK_OVERHEAD


def chunk_nonce(key, ad, plaintext):
    """nonce = BLAKE2b-192(key N; "replog-archive-nonce-v1" ‖ ad ‖ chunk plaintext)."""
    return hashlib.blake2b(NONCE_TAG + ad + plaintext, digest_size=24, key=key.n).digest()


def seal(key, kind, context, plaintext):
    """The object's bytes: header ‖ n × (nonce[24] ‖ ciphertext)."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as encrypt
    plaintext = bytes(plaintext)
    h = header(kind, key.id, len(plaintext))
    out = bytearray(h)
    for i in range(chunk_count(len(plaintext))):
        chunk = plaintext[i * CHUNK:(i + 1) * CHUNK]
        ad = h + bytes(context) + struct.pack(">Q", i)
        nonce = chunk_nonce(key, ad, chunk)
        out += nonce + encrypt(chunk, ad, nonce, key.e)
    return bytes(out)


def open_sealed(name, data, keys, kind=None):
    """Opens the object `data` stored under `name` with one of `keys` (ArchiveKey list):
    checks the magic, format, kind (that of the name) and chunk size, refuses a length
    above 256 MiB, requires the size 28 + L + n·40, finds the key by its id, opens every
    chunk and checks each stored nonce against the recomputed one. Returns the plaintext;
    raises ArchiveError naming `name`."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as decrypt
    from nacl.exceptions import CryptoError
    bound = context_of_name(name)
    if bound is None:
        raise ArchiveError(name, "not a segment's or a snapshot's name")
    name_kind, context = bound
    if kind is not None and kind != name_kind:
        raise ArchiveError(name, "asked for kind %d, the name is of kind %d" % (kind, name_kind))
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise ArchiveError(name, "%d bytes, shorter than the header" % len(data))
    h = data[:HEADER_SIZE]
    if h[:8] != MAGIC:
        raise ArchiveError(name, "the magic is not \"replog-a\"")
    fmt, k, reserved, key_id, chunk, length = struct.unpack(">BBHIIQ", h[8:])
    if fmt != FORMAT:
        raise ArchiveError(name, "format %d, not %d" % (fmt, FORMAT))
    if k != name_kind:
        raise ArchiveError(name, "kind %d in the header, the name is of kind %d" % (k, name_kind))
    if chunk != CHUNK:
        raise ArchiveError(name, "chunk size %d, not %d" % (chunk, CHUNK))
    if reserved != 0:
        # Not in §3's list of checks; the header is in every chunk's ad, so a changed one
        # fails to open anyway. Refused here outright (the layout says u16 0).
        raise ArchiveError(name, "the reserved u16 is %d, not 0" % reserved)
    if length > MAX_PLAINTEXT:
        raise ArchiveError(name, "a plaintext length of %d, above 256 MiB" % length)
    if len(data) != sealed_size(length):
        raise ArchiveError(name, "%d bytes, not 28 + %d + %d·40" % (len(data), length, chunk_count(length)))
    key = next((x for x in keys if x.id == key_id), None)
    if key is None:
        raise ArchiveError(name, "sealed under key id %08x, which is not held" % key_id)
    out = bytearray()
    pos = HEADER_SIZE
    for i in range(chunk_count(length)):
        clen = min(CHUNK, length - i * CHUNK) if length else 0
        nonce = data[pos:pos + 24]
        ct = data[pos + 24:pos + 24 + clen + 16]
        pos += 24 + clen + 16
        ad = h + context + struct.pack(">Q", i)
        try:
            pt = decrypt(ct, ad, nonce, key.e)
        except CryptoError:
            raise ArchiveError(name, "chunk %d does not open (altered bytes, another name or key)" % i)
        if chunk_nonce(key, ad, pt) != nonce:
            raise ArchiveError(name, "chunk %d: its nonce is not the synthetic nonce of its plaintext" % i)
        out += pt
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Segments (ARCHIVE.md §4)
# ---------------------------------------------------------------------------------------------

class Segment:
    __slots__ = ("origin", "first", "last", "head", "updates")

    def __init__(self, origin, first, last, head, updates):
        self.origin, self.first, self.last, self.head, self.updates = origin, first, last, head, updates

    def __repr__(self):
        return "Segment(%016x #%d..#%d)" % (self.origin, self.first, self.last)


def encode_envelope(u):
    """PROTOCOL.md §1 envelope [hlc, origin, bin(body)], each in its shortest form."""
    return msgpack.packb([u.hlc, u.origin, bytes(u.body)], use_bin_type=True)


def encode_segment(origin, first, last, head, updates):
    """§4: u8 1 ‖ u64be origin ‖ u64be first ‖ u64be last ‖ head ‖ envelopes."""
    if len(updates) != last - first + 1 or [u.seq for u in updates] != list(range(first, last + 1)):
        raise ValueError("a segment holds exactly seqs first..last")
    out = bytearray(struct.pack(">BQQQ", SEGMENT_VERSION, origin, first, last))
    out += head.encode()
    for u in updates:
        out += encode_envelope(u)
    return bytes(out)


def decode_segment(name, plaintext):
    """The shape of §4 against the name: version, origin/first/last equal the name's, a
    head (PROTOCOL.md §8 reader) at `last` of this origin carrying the key exactly when
    first is 1, then last − first + 1 envelopes of this origin at seqs first..last with
    rising hlc, each body well-framed (PROTOCOL.md §1), and nothing after."""
    parsed = parse_segment_name(name)
    if parsed is None:
        raise ArchiveError(name, "not a segment's name")
    origin, first, last = parsed
    p = bytes(plaintext)
    if len(p) < 25:
        raise ArchiveError(name, "a segment plaintext of %d bytes" % len(p))
    ver, o, f, la = struct.unpack(">BQQQ", p[:25])
    if ver != SEGMENT_VERSION:
        raise ArchiveError(name, "segment version %d" % ver)
    if (o, f, la) != (origin, first, last):
        raise ArchiveError(name, "holds %016x #%d..#%d, the name says %016x #%d..#%d" % (o, f, la, origin, first, last))
    try:
        head, used = rp.Head.read(p[25:])
    except rp.HeadError as e:
        raise ArchiveError(name, "its head: %s" % e)
    if head.origin != origin or head.seq != last:
        raise ArchiveError(name, "its head is %016x #%d, not at #%d of the origin" % (head.origin, head.seq, last))
    if (head.key is not None) != (first == 1):
        raise ArchiveError(name, "its head %s the key although first is %d" %
                           ("carries" if head.key is not None else "does not carry", first))
    pos = 25 + used
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_bin_len=rp.MAX_UPDATE,
                                max_str_len=rp.MAX_UPDATE, max_array_len=3, max_map_len=0)
    unpacker.feed(p[pos:])
    updates, prev = [], 0
    for seq in range(first, last + 1):
        try:
            env = unpacker.unpack()
        except msgpack.OutOfData:
            raise ArchiveError(name, "ends before the envelope of #%d" % seq)
        except Exception as e:
            raise ArchiveError(name, "the envelope of #%d does not decode: %s" % (seq, e))
        if not (isinstance(env, list) and len(env) == 3 and rp._is_uint(env[0]) and rp._is_uint(env[1])
                and isinstance(env[2], bytes)):
            raise ArchiveError(name, "the envelope of #%d is not [hlc, origin, bin]" % seq)
        if env[1] != origin:
            raise ArchiveError(name, "the envelope of #%d names origin %016x" % (seq, env[1]))
        try:
            u = rp.Update(env[0], env[1], env[2])
        except rp.DecodeError as e:
            raise ArchiveError(name, "the body of #%d is not well-framed: %s" % (seq, e))
        if u.seq != seq:
            raise ArchiveError(name, "the envelope at #%d has seq %d in its body" % (seq, u.seq))
        if u.hlc <= prev:
            raise ArchiveError(name, "#%d: its hlc does not rise" % seq)
        prev = u.hlc
        updates.append(u)
    if unpacker.tell() != len(p) - pos:
        raise ArchiveError(name, "%d bytes after the last envelope" % (len(p) - pos - unpacker.tell()))
    return Segment(origin, first, last, head, updates)


# ---------------------------------------------------------------------------------------------
# Snapshots (ARCHIVE.md §6)
# ---------------------------------------------------------------------------------------------

class Snapshot:
    __slots__ = ("cut", "vector", "state_hash", "heads", "checkpoint", "signer", "signature",
                 "signed_part", "checkpoint_bytes")

    def __repr__(self):
        return "Snapshot(cut %s, %d origins)" % (self.cut.hex(), len(self.vector))


def vector_bytes(vector):
    """u32be n ‖ n × (u64be origin ‖ u64be seq), origins ascending."""
    items = sorted(vector.items())
    return struct.pack(">I", len(items)) + b"".join(struct.pack(">QQ", o, s) for o, s in items)


def vector_digest(vector):
    return hashlib.blake2b(vector_bytes(vector), digest_size=32).digest()[:8]


def snapshot_message(cluster, signed_part):
    """BLAKE2b-256("replog-snapshot-v1" ‖ u8 len(cluster) ‖ cluster ‖ every byte before
    `signer`), which the writer's device key signs."""
    c = rp._cluster_bytes(cluster)
    return hashlib.blake2b(SNAPSHOT_TAG + bytes([len(c)]) + c + bytes(signed_part), digest_size=32).digest()


def methods_digest_of(methods_hex):
    """The name's methods digest: the first 8 bytes of the checkpoint's methods digest (a
    64-hex str, docs/STORAGE.md Checkpoint)."""
    if not isinstance(methods_hex, str) or not re.fullmatch(r"[0-9a-f]{64}", methods_hex):
        raise ValueError("the checkpoint's methods is not 64 lowercase hex digits")
    return bytes.fromhex(methods_hex)[:8]


def decode_snapshot(name, plaintext):
    """The layout of §6; the checks against the name, the state and the signature are
    check_snapshot's."""
    p = bytes(plaintext)
    s = Snapshot()
    pos = 0

    def take(n, what):
        nonlocal pos
        if pos + n > len(p):
            raise ArchiveError(name, "the snapshot ends inside its %s" % what)
        b = p[pos:pos + n]
        pos += n
        return b

    if take(1, "version")[0] != SNAPSHOT_VERSION:
        raise ArchiveError(name, "snapshot version %d" % p[0])
    s.cut = take(16, "cut")
    n = struct.unpack(">I", take(4, "vector"))[0]
    if n > (len(p) - pos) // 16:
        raise ArchiveError(name, "a vector of %d origins does not fit" % n)
    s.vector, prev = {}, None
    for _ in range(n):
        o, q = struct.unpack(">QQ", take(16, "vector"))
        if prev is not None and o <= prev:
            raise ArchiveError(name, "the vector's origins do not ascend")
        prev = o
        s.vector[o] = q
    s.state_hash = take(32, "state hash")
    h = struct.unpack(">I", take(4, "head count"))[0]
    s.heads = []
    for i in range(h):
        try:
            head, used = rp.Head.read(p[pos:])
        except rp.HeadError as e:
            raise ArchiveError(name, "head %d: %s" % (i, e))
        pos += used
        s.heads.append(head)
    ln = struct.unpack(">Q", take(8, "checkpoint length"))[0]
    if ln > len(p) - pos:
        raise ArchiveError(name, "a checkpoint of %d bytes does not fit" % ln)
    cp = take(ln, "checkpoint")
    s.signed_part = p[:pos]
    s.signer = take(32, "signer")
    s.signature = take(64, "signature")
    if pos != len(p):
        raise ArchiveError(name, "%d bytes after the signature" % (len(p) - pos))
    try:
        s.checkpoint = msgpack.unpackb(cp, raw=False, strict_map_key=False)
    except Exception as e:
        raise ArchiveError(name, "the checkpoint does not decode: %s" % e)
    s.checkpoint_bytes = cp
    return s


def _state_hash_of(state_bytes):
    """docs/STORAGE.md: the state is [data, conflicts, schema, retired, writers, unknown];
    the state hash is BLAKE2b-256 of the canonical [data, conflicts, schema, retired]. The
    first four elements are hashed as stored, and must be canonical: each is decoded with
    the bounded value decoder and re-encoded to the same bytes."""
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(state_bytes)
    n = u.read_array_header()
    if n != 6:
        raise ValueError("the state is an array of %d, not 6" % n)
    parts, start = [], u.tell()
    for i in range(4):
        u.skip()
        end = u.tell()
        parts.append(state_bytes[start:end])
        start = end
    for i in range(2):
        u.skip()
    if u.tell() != len(state_bytes):
        raise ValueError("bytes after the state")
    raw = b"\x94" + b"".join(parts)
    return hashlib.blake2b(raw, digest_size=32).digest(), parts


def check_snapshot(name, snap, cluster, members, known):
    """ARCHIVE.md §6 "A reader trusts a snapshot only when": the signer is a member, the
    signature holds, the name's cut, vector digest and methods digest are the contents',
    the checkpoint's cut and vector are the snapshot's, and the state hashes to the hash it
    records. Also: each head is of an origin and seq of the vector and verifies (with the
    key `known` holds for its origin, {origin: (key, chains)}) at the chain there."""
    ncut, nvd, nmd = parse_snapshot_name(name)
    if bytes(snap.signer) not in members:
        raise ArchiveError(name, "signed by %s, not a member" % rp.device_id(snap.signer))
    if not rp.ed25519_verify(snap.signer, snapshot_message(cluster, snap.signed_part), snap.signature):
        raise ArchiveError(name, "the signature does not verify under its signer")
    if snap.cut != ncut:
        raise ArchiveError(name, "holds cut %s, the name says %s" % (snap.cut.hex(), ncut.hex()))
    if vector_digest(snap.vector) != nvd:
        raise ArchiveError(name, "its vector's digest is %s, the name says %s" % (vector_digest(snap.vector).hex(), nvd.hex()))
    cp = snap.checkpoint
    if not isinstance(cp, dict) or sorted(cp) != ["cut", "methods", "state", "vector"]:
        raise ArchiveError(name, "the checkpoint is not a map of cut, methods, state, vector")
    try:
        md = methods_digest_of(cp["methods"])
    except ValueError as e:
        raise ArchiveError(name, str(e))
    if md != nmd:
        raise ArchiveError(name, "its methods digest starts %s, the name says %s" % (md.hex(), nmd.hex()))
    if list(cp) != sorted(cp) or list(cp["vector"]) != sorted(cp["vector"]) or \
            msgpack.packb(cp, use_bin_type=True) != snap.checkpoint_bytes:
        raise ArchiveError(name, "the checkpoint is not in canonical form (keys in byte order, shortest forms)")
    if cp["cut"] != snap.cut:
        raise ArchiveError(name, "the checkpoint's cut is not the snapshot's")
    want = {"%016x" % o: q for o, q in snap.vector.items()}
    if cp["vector"] != want:
        raise ArchiveError(name, "the checkpoint's vector %r is not the snapshot's %r" % (cp["vector"], want))
    if not isinstance(cp["state"], bytes):
        raise ArchiveError(name, "the checkpoint's state is not a bin")
    try:
        h, parts = _state_hash_of(cp["state"])
        for part in parts:
            if rp.encode(rp.decode(part)) != part:
                raise ValueError("a part of the state is not in canonical form")
    except (ValueError, rp.DecodeError, msgpack.UnpackException) as e:
        raise ArchiveError(name, "the state does not decode: %s" % e)
    if h != snap.state_hash:
        raise ArchiveError(name, "the state hashes to %s, it records %s" % (h.hex(), snap.state_hash.hex()))
    for head in snap.heads:
        if snap.vector.get(head.origin) != head.seq:
            raise ArchiveError(name, "a head %016x #%d that is not at the vector's seq" % (head.origin, head.seq))
        k = known.get(head.origin)
        if k is None:
            continue
        key, chains = k
        if head.key is not None and bytes(head.key) != key:
            raise ArchiveError(name, "head %016x #%d carries another key than the segments'" % (head.origin, head.seq))
        try:
            rp.check_head(head, cluster, key)
        except rp.HeadError as e:
            raise ArchiveError(name, "head %016x #%d: %s" % (head.origin, head.seq, e))
        if head.seq < len(chains) and bytes(head.chain) != chains[head.seq]:
            raise ArchiveError(name, "head %016x #%d is not on the chain of the segments" % (head.origin, head.seq))
    return True


def encode_snapshot(cluster, signing_key, cut, vector, state_hash, heads, checkpoint_bytes):
    """§6 plaintext, signed with `signing_key` (a nacl SigningKey)."""
    out = bytearray([SNAPSHOT_VERSION]) + bytes(cut) + vector_bytes(vector) + bytes(state_hash)
    out += struct.pack(">I", len(heads))
    for h in heads:
        out += h.encode()
    out += struct.pack(">Q", len(checkpoint_bytes)) + bytes(checkpoint_bytes)
    sig = signing_key.sign(snapshot_message(cluster, bytes(out))).signature
    return bytes(out) + bytes(signing_key.verify_key) + sig


# ---------------------------------------------------------------------------------------------
# Members (ARCHIVE.md §4 "Membership is checked as for a peer's run", PROTOCOL.md §8)
# ---------------------------------------------------------------------------------------------

def read_identity(data_dir):
    """docs/STORAGE.md identity.key: 64 bytes, the seed then the public key. Returns a nacl
    SigningKey."""
    from nacl.signing import SigningKey
    with open(os.path.join(data_dir, "identity.key"), "rb") as f:
        raw = f.read()
    if len(raw) != 64:
        raise ValueError("identity.key is not 64 bytes")
    sk = SigningKey(raw[:32])
    if bytes(sk.verify_key) != raw[32:]:
        raise ValueError("identity.key's public half is not its seed's")
    return sk


def members_of(data_dir):
    """The member's own device key and every device of its trust.json (docs/STORAGE.md)."""
    keys = {bytes(read_identity(data_dir).verify_key)}
    path = os.path.join(data_dir, "trust.json")
    if os.path.exists(path):
        with open(path) as f:
            doc = json.load(f)
        for d in doc.get("devices", []):
            keys.add(rp.parse_device_id(d["id"]))
    return keys


# ---------------------------------------------------------------------------------------------
# The reader (ARCHIVE.md §4, §5, §6)
# ---------------------------------------------------------------------------------------------

class OriginChain:
    """What the reader holds of one origin: its key (and certificate), its updates 1..k and
    the chain value after each (chains[n] = c_n)."""

    def __init__(self, origin):
        self.origin = origin
        self.key = self.device = self.cert = None
        self.updates = []
        self.chains = []
        self.heads = {}                # seq -> Head, as the segments carry them

    @property
    def held(self):
        return len(self.updates)


class Report:
    def __init__(self):
        self.vector = {}               # origin -> seq held from the chain of segments
        self.segments = {}             # name -> Segment, every one that verified
        self.snapshots = {}            # name -> Snapshot, every one that verified
        self.problems = []             # ArchiveError, each named by its key
        self.ignored = []              # names that are not the archive's
        self.changes = []              # parsed change feed entries
        self.plaintexts = {}           # name -> plaintext, every object that opened
        self.objects = {}              # name -> the object's bytes as read
        self.chains = {}               # origin -> OriginChain
        self.evidence = {}             # name -> (origin, fork seq), every piece that proves a fork

    @property
    def damaged(self):
        return sorted({p.key for p in self.problems})

    def updates(self):
        return [u for o in sorted(self.chains) for u in self.chains[o].updates]


class Reader:
    """Reads and verifies an archive. `keys` ArchiveKey list; `cluster` the cluster id;
    `members` the member device keys (None: take every origin, as --insecure)."""

    def __init__(self, bucket, keys, cluster, members=None, list_page=None):
        self.bucket, self.keys, self.cluster, self.members = bucket, list(keys), cluster, members
        self.list_page = list_page

    def _list(self, prefix, **kw):
        return self.bucket.list(prefix, max_keys=self.list_page, **kw)

    def origins(self):
        """§5: the origins come from a delimited listing of `log/`."""
        _, prefixes = self._list("log/", delimiter="/")
        out = []
        for p in prefixes:
            m = re.fullmatch(r"log/([0-9a-f]{16})/", p)
            if m:
                out.append(int(m.group(1), 16))
        return sorted(out)

    def open_segment(self, name, data, report=None):
        pt = open_sealed(name, data, self.keys, KIND_SEGMENT)
        if report is not None:
            report.plaintexts[name] = pt
        return decode_segment(name, pt)

    def _prove(self, name, seg, oc):
        """§4 Proof: from c_0 (with the key of the segment from seq 1) or the chain held at
        first − 1, over every update, to the head, which verifies under the key; the key,
        or the device certifying it, is a member's."""
        if seg.first == 1:
            key = bytes(seg.head.key)
            if oc.key is not None and key != oc.key:
                raise ArchiveError(name, "its head carries another key than the origin's")
        else:
            key = oc.key
            if key is None or oc.held < seg.first - 1:
                raise ArchiveError(name, "no chain held at #%d" % (seg.first - 1))
        try:
            rp.check_head(seg.head, self.cluster, key)
        except rp.HeadError as e:
            raise ArchiveError(name, "its head: %s" % e)
        if self.members is not None:
            if seg.first == 1:
                who = seg.head.device if seg.head.cert is not None else key
            else:
                who = oc.device if oc.cert is not None else oc.key
            if bytes(who) not in self.members:
                raise ArchiveError(name, "the origin's key is not a member's")
        c = rp.chain_start(self.cluster, key) if seg.first == 1 else oc.chains[seg.first - 1]
        chains = []
        for u in seg.updates:
            c = rp.chain_step(c, key, u.hlc, u.body)
            chains.append(c)
        if c != bytes(seg.head.chain):
            raise ArchiveError(name, "its updates do not chain to its head")
        if seg.first > 1 and oc.updates:
            prev = oc.updates[seg.first - 2].hlc
            if seg.updates[0].hlc <= prev:
                raise ArchiveError(name, "#%d: its hlc does not rise past #%d's" % (seg.first, seg.first - 1))
        return key, chains

    def read_origin(self, origin, report, names, fetch):
        """§5 the chain of segments from seq 1, the one reaching furthest at each step,
        then every other segment against it."""
        oc = OriginChain(origin)
        segs = [s for s in (parse_segment_name(n) for n in names) if s is not None]
        by_first = {}
        for n, s in zip(names, segs):
            by_first.setdefault(s[1], []).append((s[2], n))
        used = set()
        while True:
            cands = sorted(by_first.get(oc.held + 1, []), reverse=True)
            if not cands:
                break
            last, name = cands[0]
            used.add(name)
            data = fetch(name)
            try:
                if data is None:
                    raise ArchiveError(name, "listed but answers 404")
                seg = self.open_segment(name, data, report)
                key, chains = self._prove(name, seg, oc)
            except ArchiveError as e:
                report.problems.append(e)
                break                  # §5: a segment that does not open or chain stops the origin
            if oc.key is None:
                oc.key = key
                if seg.head.cert is not None:
                    oc.device, oc.cert = bytes(seg.head.device), bytes(seg.head.cert)
                oc.chains = [rp.chain_start(self.cluster, key)]
            oc.updates += seg.updates
            oc.chains += chains
            oc.heads[seg.last] = seg.head
            report.segments[name] = seg
        # every other segment: past a hole (named), or checked against the chain held
        for n, s in sorted(zip(names, segs), key=lambda x: (x[1][1], x[1][2]) if x[1] else (0, 0)):
            if s is None or n in used:
                continue
            _, first, last = s
            if first > oc.held + 1:
                report.problems.append(ArchiveError(n, "the archive lacks #%d although it holds up to #%d"
                                                    % (oc.held + 1, last)))
                continue
            data = fetch(n)
            try:
                if data is None:
                    raise ArchiveError(n, "listed but answers 404")
                seg = self.open_segment(n, data, report)
                if last > oc.held:
                    raise ArchiveError(n, "reaches #%d past the chain of segments (#%d)" % (last, oc.held))
                self._prove(n, seg, oc)
                for u in seg.updates:
                    h = oc.updates[u.seq - 1]
                    if (h.hlc, h.body) != (u.hlc, u.body):
                        raise ArchiveError(n, "#%d differs from the chain's: a fork" % u.seq)
            except ArchiveError as e:
                report.problems.append(e)
                continue
            report.segments[n] = seg
        return oc

    def _named(self, prefix, parse, report, fetch):
        """(name, bytes or None) of each object under `prefix` whose name `parse` accepts;
        the other names are recorded as ignored."""
        names, _ = self._list(prefix)
        for n in names:
            if parse(n) is None:
                report.ignored.append(n)
                continue
            yield n, fetch(n)

    def read(self, verify_snapshots=True):
        """Reads and verifies the whole archive; returns a Report."""
        report = Report()

        def fetch(name):
            data = self.bucket.get(name)
            if data is not None:
                report.objects[name] = data
            return data

        all_log, _ = self._list("log/")
        by_origin = {}
        for n in all_log:
            s = parse_segment_name(n)
            if s is None:
                report.ignored.append(n)
                continue
            by_origin.setdefault(s[0], []).append(n)
        listed_origins = self.origins()
        if sorted(by_origin) != listed_origins:
            report.problems.append(ArchiveError("log/", "the delimited listing gives origins %s, the full one %s"
                                                % ([rp.origin_text(o) for o in listed_origins],
                                                   [rp.origin_text(o) for o in sorted(by_origin)])))
        for origin in sorted(by_origin):
            # §5: the origin's listing, as a reader that holds nothing would make it
            names, _ = self._list(origin_prefix(origin), start_after=start_after_held(origin, 0))
            names = [n for n in names if parse_segment_name(n) is not None]
            oc = self.read_origin(origin, report, names, fetch)
            report.chains[origin] = oc
            if oc.held:
                report.vector[origin] = oc.held
        changes, _ = self._list("changes/")
        for n in changes:
            c = parse_change_name(n)
            (report.changes.append(c) if c else report.ignored.append(n))
        if verify_snapshots:
            known = {o: (oc.key, oc.chains) for o, oc in report.chains.items() if oc.key is not None}
            for n, data in self._named("snapshots/", parse_snapshot_name, report, fetch):
                try:
                    if data is None:
                        raise ArchiveError(n, "listed but answers 404")
                    pt = open_sealed(n, data, self.keys, KIND_SNAPSHOT)
                    report.plaintexts[n] = pt
                    snap = decode_snapshot(n, pt)
                    check_snapshot(n, snap, self.cluster,
                                   self.members if self.members is not None else {bytes(snap.signer)}, known)
                    for o, q in snap.vector.items():
                        if report.vector.get(o, 0) < q:
                            raise ArchiveError(n, "its vector has %016x #%d, the archive holds #%d (a truncated bucket)"
                                               % (o, q, report.vector.get(o, 0)))
                    cut = max((oc.updates[q - 1].key for o, q in snap.vector.items()
                               for oc in [report.chains[o]] if q >= 1), default=None)
                    if cut is not None and cut != snap.cut:
                        raise ArchiveError(n, "its cut %s is not the newest update of its vector (%s)"
                                           % (snap.cut.hex(), cut.hex()))
                except ArchiveError as e:
                    report.problems.append(e)
                    continue
                report.snapshots[n] = snap
        for n, data in self._named("evidence/", parse_evidence_name, report, fetch):
            try:
                if data is None:
                    raise ArchiveError(n, "listed but answers 404")
                origin, seq, _ = read_evidence(n, data, self.keys, self.cluster)
            except ArchiveError as e:
                report.problems.append(e)
                continue
            report.evidence[n] = (origin, seq)
        return report

    def pull_origin(self, origin, held_chain):
        """§5 Pulling an origin: list its prefix after what is held and take the chain of
        segments in order. `held_chain` an OriginChain (updated in place). Returns the
        names taken; raises ArchiveError on a segment that does not open or chain, or on
        a hole."""
        names, _ = self._list(origin_prefix(origin), start_after=start_after_held(origin, held_chain.held))
        spans = sorted((s[1], -s[2], n) for n in names for s in [parse_segment_name(n)] if s)
        taken = []
        for first, neg_last, name in spans:
            last = -neg_last
            if last <= held_chain.held:
                continue
            if first > held_chain.held + 1:
                raise ArchiveError(name, "the archive lacks #%d although it holds up to #%d"
                                   % (held_chain.held + 1, last))
            data = self.bucket.get(name)
            if data is None:
                raise ArchiveError(name, "listed but answers 404 (merged away: list again)")
            seg = self.open_segment(name, data)
            key, chains = self._prove(name, seg, held_chain)
            skip = held_chain.held - first + 1
            for u, h in zip(seg.updates[:skip], held_chain.updates[first - 1:]):
                if (u.hlc, u.body) != (h.hlc, h.body):
                    raise ArchiveError(name, "#%d differs from what is held: a fork" % u.seq)
            if held_chain.key is None:
                held_chain.key = key
                if seg.head.cert is not None:
                    held_chain.device, held_chain.cert = bytes(seg.head.device), bytes(seg.head.cert)
                held_chain.chains = [rp.chain_start(self.cluster, key)]
            held_chain.updates += seg.updates[skip:]
            held_chain.chains += chains[skip:]
            held_chain.heads[seg.last] = seg.head
            taken.append(name)
        return taken


# ---------------------------------------------------------------------------------------------
# The writer's side (ARCHIVE.md §3, §4): a segment from a log, for determinism checks
# ---------------------------------------------------------------------------------------------

def write_segment(key, cluster, signing_key, updates, first, last, flags=0):
    """The sealed segment of `updates` (all of one origin from seq 1, in seq order) for
    first..last, its head signed now with `signing_key` (the origin's key, a nacl
    SigningKey) at the chain of `last`, carrying the key when first is 1. Returns (name,
    bytes)."""
    writer = rp.OriginWriter(cluster, signing_key)
    c = rp.chain_start(cluster, writer.key)
    for u in updates[:last]:
        c = rp.chain_step(c, writer.key, u.hlc, u.body)
    head = writer.sign(last, c, flags)
    if first == 1:
        head = writer.carried(head)
    origin = writer.origin
    pt = encode_segment(origin, first, last, head, updates[first - 1:last])
    return segment_name(origin, first, last), seal(key, KIND_SEGMENT, segment_context(origin, first, last), pt)


# ---------------------------------------------------------------------------------------------
# Merging (ARCHIVE.md §6): what a merge of an origin's chain of segments should give
# ---------------------------------------------------------------------------------------------

MERGE_MAX_BYTES = 64 * 1024 * 1024


def level(n):
    """A segment of n updates is of level floor(log4 n)."""
    lv = 0
    while n >= 4:
        n //= 4
        lv += 1
    return lv


def plan_merges(chain, sizes=None):
    """`chain`: the (first, last) spans of an origin's chain of segments from seq 1, in order.
    Joins four consecutive segments of one level (their bytes under 64 MiB when `sizes`
    gives them) into one of their whole range, again until none are left. The document
    does not say which four when more than four of one level follow each other; this
    takes the first four from seq 1. Returns the chain after merging."""
    chain = list(chain)
    sizes = dict(sizes or {})
    for _ in range(10000):
        for i in range(len(chain) - 3):
            four = chain[i:i + 4]
            lv = {level(last - first + 1) for first, last in four}
            if len(lv) == 1 and sum(sizes.get(s, 0) for s in four) < MERGE_MAX_BYTES:
                joined = (four[0][0], four[-1][1])
                sizes[joined] = sum(sizes.get(s, 0) for s in four)
                chain[i:i + 4] = [joined]
                break
        else:
            return chain
    raise RuntimeError("merging does not end")
