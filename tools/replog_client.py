#!/usr/bin/python3
"""A client of a running replog node's local API (PROTOCOL.md, "Local API").

Shows that any language with ZeroMQ and MessagePack can use a node: times come
back as datetimes, enums as Enum(type, member), records as Record(type, fields).
With the schema document (Schema), enums become members of enum.Enum classes
and records instances of dataclasses, both generated from the schema, and
back again for calls.

    replog_client.py --data DIR call METHOD ARG_JSON
    replog_client.py --data DIR state [PATH]
    replog_client.py --data DIR hash | status
    replog_client.py --data DIR watch [N]     # print the next N committed updates

ARG_JSON is plain JSON, with {"$time": ISO} and {"$enum": "Type.Member"} tags.
Needs Debian's python3-zmq and python3-msgpack.
"""
import argparse
import dataclasses
import datetime
import enum
import json
import os
import sys

import msgpack
import zmq

ENUM_EXT, RECORD_EXT = 1, 2


class Enum:
    """An enum member by type and member name (not a tuple: msgpack would pack that as a list)."""

    def __init__(self, type_, member):
        self.type, self.member = type_, member

    def __eq__(self, other):
        return isinstance(other, Enum) and (self.type, self.member) == (other.type, other.member)

    def __repr__(self):
        return "Enum(%s.%s)" % (self.type, self.member)


class Record:
    def __init__(self, type_, fields):
        self.type, self.fields = type_, fields

    def __eq__(self, other):
        return isinstance(other, Record) and (self.type, self.fields) == (other.type, other.fields)

    def __repr__(self):
        return "Record(%s, %r)" % (self.type, self.fields)


def _default(obj):
    if isinstance(obj, Enum):
        return msgpack.ExtType(ENUM_EXT, msgpack.packb([obj.type, obj.member]))
    if isinstance(obj, Record):
        return msgpack.ExtType(RECORD_EXT, msgpack.packb([obj.type, obj.fields], default=_default, datetime=True))
    raise TypeError("cannot encode %r" % (obj,))


def _ext_hook(code, data):
    if code == ENUM_EXT:
        return Enum(*msgpack.unpackb(data))
    if code == RECORD_EXT:
        type_, fields = msgpack.unpackb(data, ext_hook=_ext_hook, timestamp=3)
        return Record(type_, fields)
    return msgpack.ExtType(code, data)


def pack(value):
    return msgpack.packb(value, default=_default, datetime=True, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, ext_hook=_ext_hook, timestamp=3, raw=False)


_SCALARS = {"any": object, "null": type(None), "bool": bool, "int": int, "float": float, "string": str,
            "bytes": bytes, "time": datetime.datetime}


class Schema:
    """Python classes generated from a schema document (docs/VALUES.md): an
    enum.Enum subclass per enum type (member name = value) and a dataclass per
    record type, its fields keyword arguments defaulting to None (absent).

    typed() turns what the client reads (Enum, Record, nested in maps and
    lists) into those classes; untyped() turns them back for a call. A record
    field the schema does not declare (a newer schema wrote it) is dropped by
    typed(); an enum member or record type it does not know is a ValueError
    naming the place."""

    def __init__(self, document):
        self.enums = {name: enum.Enum(name, [(m, m) for m in members])
                      for name, members in document.get("enums", {}).items()}
        self.records = {}
        for name, spec in document.get("records", {}).items():
            fields = [(f, self._python_type(t), dataclasses.field(default=None))
                      for f, t in sorted(spec.get("fields", {}).items())]
            self.records[name] = dataclasses.make_dataclass(name, fields, eq=True)

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))

    def _python_type(self, declared):
        if declared.startswith("list<"):
            return list
        if declared.startswith("map<"):
            return dict
        if declared in _SCALARS:
            return _SCALARS[declared]
        return declared  # an enum or record of this schema, by name

    def typed(self, value, path=""):
        if isinstance(value, Enum):
            members = self.enums.get(value.type)
            if members is None or value.member not in members.__members__:
                raise ValueError("%s: unknown enum member %s.%s" % (path or "value", value.type, value.member))
            return members[value.member]
        if isinstance(value, Record):
            cls = self.records.get(value.type)
            if cls is None:
                raise ValueError("%s: unknown record type %s" % (path or "value", value.type))
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: self.typed(v, _child(path, k)) for k, v in value.fields.items() if k in names})
        if isinstance(value, dict):
            return {k: self.typed(v, _child(path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.typed(v, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
        return value

    def untyped(self, value):
        if isinstance(value, enum.Enum) and self.enums.get(type(value).__name__) is type(value):
            return Enum(type(value).__name__, value.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return Record(type(value).__name__, {f.name: self.untyped(getattr(value, f.name))
                                                 for f in dataclasses.fields(value)
                                                 if getattr(value, f.name) is not None})
        if isinstance(value, dict):
            return {k: self.untyped(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.untyped(v) for v in value]
        return value


def _child(path, key):
    return "%s.%s" % (path, key) if path else key


class Client:
    def __init__(self, data_dir, timeout_ms=10000):
        with open(os.path.join(data_dir, "api.endpoint")) as f:
            self.api, self.events = f.read().split()[:2]
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.socket.setsockopt(zmq.SNDTIMEO, timeout_ms)
        self.socket.connect(self.api)

    def request(self, op, arg=None):
        self.socket.send(pack([1, op, arg if arg is not None else {}]))
        version, status, result = unpack(self.socket.recv())
        if status != "ok":
            raise RuntimeError(result)
        return result

    def call(self, method, arg):
        return self.request("call", {"method": method, "arg": arg})["id"]

    def state(self, path=None):
        return self.request("state", {"path": path} if path else {})

    def hash(self):
        return self.request("hash")

    def schema(self):
        """The node's schema in force, as a Schema (generated classes)."""
        return Schema(self.request("schema"))

    def status(self):
        return self.request("status")

    def subscribe(self):
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.request("subscribe")["events"])
        return sub


def from_typed_json(v):
    if isinstance(v, dict):
        if set(v) == {"$time"}:
            return datetime.datetime.fromisoformat(v["$time"].replace("Z", "+00:00"))
        if set(v) == {"$enum"}:
            return Enum(*v["$enum"].rsplit(".", 1))
        if "$type" in v:
            return Record(v["$type"], {k: from_typed_json(x) for k, x in v.items() if k != "$type"})
        return {k: from_typed_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_typed_json(x) for x in v]
    return v


def show(v):
    if isinstance(v, datetime.datetime):
        return "time(%s)" % v.isoformat()
    if isinstance(v, Enum):
        return "%s.%s" % (v.type, v.member)
    if isinstance(v, Record):
        return "%s(%s)" % (v.type, ", ".join("%s=%s" % (k, show(x)) for k, x in sorted(v.fields.items())))
    if isinstance(v, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, show(x)) for k, x in sorted(v.items()))
    if isinstance(v, list):
        return "[%s]" % ", ".join(show(x) for x in v)
    return json.dumps(v)


def main():
    p = argparse.ArgumentParser(description="client of a running replog node's local API")
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("op", choices=["call", "state", "hash", "status", "watch"])
    p.add_argument("args", nargs="*")
    a = p.parse_args()
    try:
        c = Client(a.data)
        if a.op == "call":
            print(c.call(a.args[0], from_typed_json(json.loads(a.args[1]))))
        elif a.op == "state":
            print(show(c.state(a.args[0] if a.args else None)))
        elif a.op == "hash":
            print(c.hash())
        elif a.op == "status":
            print(show(c.status()))
        else:
            sub = c.subscribe()
            sub.setsockopt(zmq.RCVTIMEO, 10000)
            for _ in range(int(a.args[0]) if a.args else 1):
                _, kind, event = unpack(sub.recv())
                print(event["id"], event["method"], show(event["arg"]))
                sys.stdout.flush()
    except (OSError, RuntimeError, zmq.ZMQError, IndexError, ValueError) as e:
        print("replog_client: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
