"""The dashboard's HTTP server (docs/HTTP.md) on real nodes: /metrics in the
Prometheus text format with counters that move, and the access rules: a foreign
Host or Origin and a write without the CSRF token are refused and change
nothing; a bind other than 127.0.0.1 refuses every request and the WebSocket
without its token (401), and takes it from a header, the cookie or ?token=."""
import json
import re
import sys
import time

import harness as H
import dashboard_util as D

EVIL_ORIGIN = {"Origin": "http://evil.example"}


def check_names(families):
    for name, fam in families.items():
        H.check(name.startswith("replog_"), "metric %s does not start with replog_" % name)
        H.check((fam["type"] == "counter") == name.endswith("_total"),
                "metric %s: a counter's name ends in _total, and only a counter's" % name)
        H.check(fam["help"], "metric %s has no HELP" % name)
    for needed in ("replog_updates_applied_total", "replog_conflicts",
                   "replog_peers_connected", "replog_peer_sent_bytes_total", "replog_peer_received_updates_total",
                   "replog_replication_lag_updates", "replog_lmdb_map_size_bytes", "replog_lmdb_used_bytes"):
        H.check(needed in families, "/metrics lacks %s: %s" % (needed, sorted(families)))


def metrics_move(a, b):
    before = D.metrics(a)
    check_names(before)
    H.step("/metrics parses (%d families); 3 calls on a over HTTP, 2 on b by the CLI" % len(before))
    local0 = D.value(before, "replog_updates_applied_total", source="local")
    peer0 = D.value(before, "replog_updates_applied_total", source="peer")
    for i in range(3):
        D.call(a, "set", {"path": "m.a%d" % i, "value": i})
    for i in range(2):
        b.call("set", {"path": "m.b%d" % i, "value": i})

    def moved():
        m = D.metrics(a)
        ok = (D.value(m, "replog_updates_applied_total", source="local") == local0 + 3 and
              D.value(m, "replog_updates_applied_total", source="peer") == peer0 + 2 and
              D.value(m, "replog_updates_held", origin=a.node_id) == 3 and
              D.value(m, "replog_updates_held", origin=b.node_id) == 2 and
              (D.value(m, "replog_peer_received_updates_total", peer=b.node_id) or 0) >= 2 and
              (D.value(m, "replog_peer_received_bytes_total", peer=b.node_id) or 0) > 0 and
              D.value(m, "replog_peers_connected") == 1 and
              D.value(m, "replog_replication_lag_updates", peer=b.node_id, side="self") == 0)
        return m if ok else None
    after = H.wait_until(moved, "a's counters to count 3 local and 2 received updates",
                         timeout=10, on_timeout=lambda: json.dumps({k: str(v["samples"]) for k, v in D.metrics(a).items()
                                                                    if "updates" in k})[:2000])
    H.check(D.value(after, "replog_http_responses_total", code="200") > 0, "HTTP responses are counted")
    H.step("counters moved: applied local %d -> %d, peer %d -> %d" % (
        local0, D.value(after, "replog_updates_applied_total", source="local"), peer0,
        D.value(after, "replog_updates_applied_total", source="peer")))
    H.check(D.value(after, "replog_checkpoint_age_seconds") is None, "no checkpoint yet, so no checkpoint age")
    a.stop()  # a checkpoint is written at shutdown (cut --undo-window updates behind the head)
    a.start()
    age = D.value(D.metrics(a), "replog_checkpoint_age_seconds")
    H.check(age is not None and 0 <= age < 60, "after a restart, the checkpoint's age: %s" % age)
    H.wait_until(lambda: D.value(D.metrics(a), "replog_peers_connected") == 1, "a to reconnect to b", timeout=10)
    H.step("after a restart the checkpoint age shows (%.1f s)" % age)


def unchanged(a, before_hash, before_count, what):
    H.check(a.hash() == before_hash and a.count() == before_count, "%s changed the node's state" % what)


def refusals(a):
    good_csrf = D.csrf(a)
    before_hash, before_count = a.hash(), a.count()
    arg = {"method": "set", "arg": {"path": "evil", "value": 1}}
    cases = [
        ("GET with a foreign Host (DNS rebinding)", lambda: D.request(a, "GET", "/api/status", host_header="evil.example:%d" % a.http_port), 403),
        ("GET with a foreign Origin", lambda: D.request(a, "GET", "/api/status", headers=EVIL_ORIGIN), 403),
        ("/metrics with a foreign Host", lambda: D.request(a, "GET", "/metrics", host_header="rebind.example"), 403),
        ("a write without the CSRF token", lambda: D.post(a, "/api/call", arg), 403),
        ("a write with a wrong CSRF token", lambda: D.post(a, "/api/call", arg, "0" * 64), 403),
        ("a write with the CSRF token from a foreign Origin", lambda: D.post(a, "/api/call", arg, good_csrf, EVIL_ORIGIN), 403),
        ("a write with the CSRF token and a foreign Host", lambda: D.post(a, "/api/call", arg, good_csrf, host_header="evil.example:%d" % a.http_port), 403),
        ("a resolve without the CSRF token", lambda: D.post(a, "/api/resolve", {"update": "0" * 32}), 403),
        ("a call whose body is not JSON", lambda: D.request(a, "POST", "/api/call", "{not json", {"X-Replog-CSRF": good_csrf}), 400),
        ("a call with a bad typed argument", lambda: D.post(a, "/api/call", {"method": "set", "arg": {"$time": 3}}, good_csrf), 400),
        ("a body over the limit", lambda: D.oversized_post(a, "/api/call", 2_000_000, good_csrf), 413),
        ("an unknown endpoint", lambda: D.request(a, "GET", "/api/nothing"), 404),
        ("a PUT", lambda: D.request(a, "PUT", "/api/call", "{}", {"X-Replog-CSRF": good_csrf}), 405),
    ]
    for what, send, expected in cases:
        status, _, body = send()
        H.check(status == expected, "%s: expected %d, got %d %s" % (what, expected, status, body[:200]))
        err = json.loads(body)
        H.check(set(err) == {"error"} and err["error"] and b"\n" not in body,
                "%s: a one-line JSON error, got %r" % (what, body[:200]))
    H.check(D.websocket_status(a, headers=EVIL_ORIGIN) == 403, "a WebSocket from a foreign Origin is refused")
    H.check(D.websocket_status(a, host_header="evil.example:%d" % a.http_port) == 403,
            "a WebSocket with a foreign Host is refused")
    H.check(D.websocket_status(a, headers={"Origin": D.url_of(a)}) == 101, "a same-origin WebSocket is accepted")
    unchanged(a, before_hash, before_count, "the refused requests")
    a.check_alive()
    H.step("%d refused requests and 2 refused WebSockets changed nothing; a same-origin one upgrades" % len(cases))


def connection_limit(a):
    """64 connections at most (docs/HTTP.md §3): one more is closed at once, and the server
    serves again once they go."""
    import http.client
    import socket
    held = []
    try:
        for _ in range(64):
            # Each answered once and kept alive: accepted and counted for sure.
            c = http.client.HTTPConnection(a.http_host, a.http_port, timeout=D.TIMEOUT_S)
            c.request("GET", "/api/hash")
            r = c.getresponse()
            r.read()
            H.check(r.status == 200, "a kept-alive connection is answered: %d" % r.status)
            held.append(c)
        extra = socket.create_connection((a.http_host, a.http_port), timeout=D.TIMEOUT_S)
        try:
            extra.sendall(b"GET /api/status HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (a.http_host.encode(), a.http_port))
            answer = extra.recv(100)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""  # closed before or while the request arrived
        H.check(answer == b"", "a 65th connection is closed unanswered, got %r" % answer[:60])
        extra.close()
    finally:
        for s in held:
            s.close()
    H.wait_until(lambda: D.get_json(a, "/api/hash")["state_hash"], "a to serve again once the connections closed",
                 timeout=5)
    H.step("a 65th connection was closed at once; the server serves again once the 64 are gone")


def slow_client(a):
    """A WebSocket client that never reads is dropped once its queue passes its bound
    (512 messages or 8 MiB, docs/HTTP.md §3); the node goes on serving."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small, so the server's side backs up soon
    s.settimeout(D.TIMEOUT_S)
    s.connect((a.http_host, a.http_port))
    try:
        s.sendall(("GET /api/events HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (a.http_host, a.http_port)).encode())
        H.check(s.recv(12).startswith(b"HTTP/1.1 101"), "the slow client's stream opened")
        H.wait_until(lambda: D.value(D.metrics(a), "replog_websocket_clients") == 1, "the stream to count", timeout=5)
        big = "x" * 600_000
        calls = 0
        while D.value(D.metrics(a), "replog_websocket_dropped_total") == 0:
            H.check(calls < 60, "60 updates of 600 kB did not drop a client that never reads")
            D.call(a, "set", {"path": "big.v%d" % calls, "value": big})
            calls += 1
        H.wait_until(lambda: D.value(D.metrics(a), "replog_websocket_clients") == 0, "the slow stream to close",
                     timeout=5)
    finally:
        s.close()
    H.check("fell" in a.log_text() and "behind: dropped" in a.log_text(), "a says it dropped the slow client")
    H.step("a WebSocket client that never read was dropped after %d updates of 600 kB; a serves on" % calls)


def token_bind(cluster):
    """A node bound to 127.0.0.2 (not 127.0.0.1 or ::1) generates a token and prints its URL."""
    c = D.with_http(cluster.add_node("c"), host="127.0.0.2")  # no peers: only requests could change it
    c.start()
    m = H.wait_until(lambda: re.search(r"dashboard: (http://127\.0\.0\.2:%d/\?token=([0-9a-f]{64}))" % c.http_port,
                                       c.log_text()), "c to print its dashboard URL with a token", timeout=5)
    token = m.group(2)
    H.check("without TLS" in c.log_text(), "c warns that its dashboard has no TLS in front")
    before_hash, before_count = c.hash(), c.count()
    for method, path in (("GET", "/"), ("GET", "/api/status"), ("GET", "/api/session"), ("GET", "/metrics"),
                         ("GET", "/app.js")):
        status, _, _ = D.request(c, method, path)
        H.check(status == 401, "%s %s without the token: expected 401, got %d" % (method, path, status))
        status, _, _ = D.request(c, method, path, headers={"Authorization": "Bearer " + "f" * 64})
        H.check(status == 401, "%s %s with a wrong token: expected 401, got %d" % (method, path, status))
    status, _, _ = D.post(c, "/api/call", {"method": "set", "arg": {"path": "x", "value": 1}}, "0" * 64)
    H.check(status == 401, "a write without the token: expected 401, got %d" % status)
    H.check(D.websocket_status(c) == 401, "the WebSocket without the token is refused with 401")
    unchanged(c, before_hash, before_count, "the requests without a token")

    bearer = {"Authorization": "Bearer " + token}
    H.check(D.get_json(c, "/api/status", bearer)["node_id"] == c.node_id, "the token in a header opens the API")
    status, hdrs, _ = D.request(c, "GET", "/?token=" + token)
    H.check(status == 200 and "replog_token=" + token in hdrs.get("set-cookie", ""),
            "the dashboard URL sets the token's cookie: %d %s" % (status, hdrs.get("set-cookie")))
    cookie = {"Cookie": "replog_token=" + token}
    D.call(c, "set", {"path": "via.cookie", "value": True}, cookie)
    H.check(D.websocket_status(c, "/api/events?token=" + token) == 101, "the WebSocket with ?token= upgrades")
    H.check(D.websocket_status(c, headers=cookie) == 101, "the WebSocket with the cookie upgrades")
    H.check("replog_conflicts" in D.metrics(c, bearer), "/metrics with the token")
    H.step("127.0.0.2: every request and the WebSocket refused without the token (401); header, cookie and ?token= work")


def test(cluster):
    a = cluster.add_node("a")
    b = cluster.add_node("b")
    a.peers = [b.listen]
    b.peers = [a.listen]
    a.extra_args += ["--undo-window", "2"]  # its shutdown checkpoint is cut 2 updates behind the head
    D.with_http(a)
    D.with_http(b)
    t0 = time.monotonic()
    a.start()
    b.start()
    H.wait_until(lambda: any(p["ready"] for p in D.get_json(a, "/api/peers")), "a to have b as a ready peer", timeout=10)
    metrics_move(a, b)
    refusals(a)
    connection_limit(a)
    slow_client(a)
    token_bind(cluster)
    H.step("took %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    H.run(test)
