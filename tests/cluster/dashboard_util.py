"""Helpers for the dashboard tests (docs/HTTP.md): raw HTTP with any Host and
Origin, the WebSocket handshake, and a strict parser of the Prometheus text
format. Only the standard library: the requests are built by hand so that a
test can send what a browser would never send."""
import http.client
import json
import os
import re
import socket

import harness as H

TIMEOUT_S = 5


def url_of(node):
    return "http://%s:%d" % (node.http_host, node.http_port)


def with_http(node, host="127.0.0.1", extra=()):
    """Gives `node` a dashboard on host:free port (before it starts)."""
    node.http_host = host
    node.http_port = H.free_port()
    node.extra_args += ["--http", "%s:%d" % (host, node.http_port), *extra]
    return node


def request(node, method, path, body=None, headers=None, host_header=None):
    """(status, headers dict with lower-case names, body bytes). Host defaults to the bound address."""
    c = http.client.HTTPConnection(node.http_host, node.http_port, timeout=TIMEOUT_S)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        c.putheader("Host", host_header if host_header is not None else "%s:%d" % (node.http_host, node.http_port))
        data = body.encode() if isinstance(body, str) else body
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if data is not None:
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get_json(node, path, headers=None):
    status, _, body = request(node, "GET", path, headers=headers)
    H.check(status == 200, "GET %s: %d %s" % (path, status, body[:300]))
    return json.loads(body)


def csrf(node, headers=None):
    return get_json(node, "/api/session", headers)["csrf"]


def post(node, path, obj, token=None, headers=None, host_header=None):
    h = dict(headers or {})
    if token is not None:
        h["X-Replog-CSRF"] = token
    return request(node, "POST", path, json.dumps(obj), h, host_header)


def call(node, method, arg, headers=None):
    status, _, body = post(node, "/api/call", {"method": method, "arg": arg}, csrf(node, headers), headers)
    H.check(status == 200, "POST /api/call %s: %d %s" % (method, status, body[:300]))
    return json.loads(body)["id"]


def oversized_post(node, path, length, csrf_token):
    """Announces a body of `length` bytes and sends only its start (a server that refuses it at
    the header need not read it); returns (status, {}, body) of the answer, as request() does."""
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            "X-Replog-CSRF: %s\r\nContent-Length: %d\r\n\r\n" % (path, node.http_host, node.http_port,
                                                                    csrf_token, length))
    with socket.create_connection((node.http_host, node.http_port), timeout=TIMEOUT_S) as s:
        s.sendall(head.encode() + b"x" * 1024)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3}) .*?\r\n\r\n(.*)", answer, re.S)
    H.check(m is not None, "no HTTP answer to an oversized body: %r" % answer[:100])
    return int(m.group(1)), {}, m.group(2)


def websocket_status(node, path="/api/events", headers=None, host_header=None):
    """Sends a WebSocket upgrade; returns the status code of the answer (101: upgraded)."""
    h = {"Host": host_header or "%s:%d" % (node.http_host, node.http_port), "Upgrade": "websocket",
         "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    with socket.create_connection((node.http_host, node.http_port), timeout=TIMEOUT_S) as s:
        s.sendall(("GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    H.check(m is not None, "no HTTP answer to a WebSocket upgrade: %r" % head[:100])
    return int(m.group(1))


# --- the Prometheus text format (exposition format 0.0.4) ------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?,?\})? ([^ ]+)(?: (-?\d+))?$" % (_NAME, _LABEL, _LABEL))
_ONE_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


def _unescape(v):
    return v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _number(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        raise H.TestFailure("metrics: not a number in %r" % line)


def parse_prometheus(text):
    """{name: {"type": t, "help": h, "samples": {frozenset(labels.items()): value}}}; fails on any
    line the format does not allow, a sample before its TYPE, a family declared twice or a
    repeated sample."""
    families = {}
    current = None
    H.check(text.endswith("\n"), "metrics: the text must end with a newline")
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            H.check(len(parts) == 4 and re.fullmatch(_NAME, parts[2]), "metrics: bad comment %r" % line)
            fam = families.setdefault(parts[2], {"type": None, "help": None, "samples": {}})
            key = "help" if parts[1] == "HELP" else "type"
            H.check(fam[key] is None, "metrics: %s given twice for %s" % (key, parts[2]))
            if key == "type":
                H.check(parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"),
                        "metrics: bad type in %r" % line)
                H.check(not fam["samples"], "metrics: TYPE after samples of %s" % parts[2])
            fam[key] = parts[3]
            current = parts[2]
            continue
        H.check(line and not line.startswith("#"), "metrics: unexpected line %r" % line)
        m = _SAMPLE.match(line)
        H.check(m is not None, "metrics: malformed sample line %r" % line)
        name = m.group(1)
        H.check(name == current and families[name]["type"], "metrics: sample %r outside its family" % line)
        labels = frozenset((k, _unescape(v)) for k, v in _ONE_LABEL.findall(m.group(2) or ""))
        samples = families[name]["samples"]
        H.check(labels not in samples, "metrics: sample repeated: %r" % line)
        samples[labels] = _number(m.group(3), line)
    return families


def metrics(node, headers=None):
    status, hdrs, body = request(node, "GET", "/metrics", headers=headers)
    H.check(status == 200, "GET /metrics: %d" % status)
    H.check(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
            "/metrics content type: %s" % hdrs.get("content-type"))
    return parse_prometheus(body.decode())


def value(families, name, **labels):
    fam = families.get(name)
    if fam is None:
        return None
    return fam["samples"].get(frozenset(labels.items()))


def artifact_dir():
    """Where a test leaves what a person may want to look at (REPLOG_ARTIFACTS, else a temp dir)."""
    d = os.environ.get("REPLOG_ARTIFACTS") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "replog-artifacts")
    os.makedirs(d, exist_ok=True)
    return d
