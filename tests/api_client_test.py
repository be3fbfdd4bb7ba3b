#!/usr/bin/python3
"""The local API from another language: tools/replog_client.py against a real
`replog node`: a call with a datetime and an enum, the state read back with its
types and as dataclasses and enum.Enum members generated from the schema, an event received by a subscriber, a refused call's message, the CLI
going through the running node, and the trust ops. Usage: api_client_test.py PATH_TO_REPLOG"""
import dataclasses
import datetime
import enum
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import replog_client as rc  # noqa: E402

replog = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="replog-api-test-")
data = os.path.join(tmp, "d")
node = None
try:
    with open(os.path.join(tmp, "schema.json"), "w") as f:
        f.write('{"enums": {"Color": ["Red", "Green"]}, "records": {"Task": {"fields": '
                '{"title": "string", "due": "time", "color": "Color"}, "required": ["title"], "unique": ["title"]}}}')
    subprocess.run([replog, "init", "--data", data, "--schema", os.path.join(tmp, "schema.json")], check=True,
                   stdout=subprocess.DEVNULL)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(tmp, "node.log"), "w")
    node = subprocess.Popen([replog, "node", "--data", data, "--listen", "tcp://127.0.0.1:%d" % port, "--insecure"],
                            stderr=log)
    deadline = time.monotonic() + 15
    while not os.path.exists(os.path.join(data, "api.endpoint")):
        assert time.monotonic() < deadline, "the node did not publish its API within 15 s"
        time.sleep(0.05)
    client = rc.Client(data)
    sub = client.subscribe()
    # Wait until the subscription has reached the publisher (events before that are not
    # delivered): make probe calls until one's event arrives, for at most 15 s.
    sub.setsockopt(rc.zmq.RCVTIMEO, 200)
    probes, deadline = 0, time.monotonic() + 15
    while True:
        client.call("set", {"path": "probe", "value": probes})
        probes += 1
        try:
            _, _, event = rc.unpack(sub.recv())
            break
        except rc.zmq.Again:
            assert time.monotonic() < deadline, "no event reached the subscriber within 15 s"
    sub.setsockopt(rc.zmq.RCVTIMEO, 5000)
    while event["arg"]["value"] != probes - 1:  # a late event of an earlier probe: read on to the last
        _, _, event = rc.unpack(sub.recv())
    print("subscribed after %d probe call(s)" % probes)

    due = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.timezone.utc)
    uid = client.call("create", {"type": "Task", "id": "t1",
                                 "fields": {"title": "from python", "due": due, "color": rc.Enum("Color", "Green")}})
    assert len(uid) == 32, uid
    task = client.state("Task.t1")
    assert isinstance(task, rc.Record) and task.type == "Task", task
    assert task.fields["due"] == due, task.fields["due"]
    assert task.fields["color"] == rc.Enum("Color", "Green"), task.fields["color"]
    print("state comes back typed:", rc.show(task))

    # With the schema: dataclasses and enum.Enum members generated from it, both ways.
    schema = client.schema()  # the node's schema in force
    with open(os.path.join(tmp, "schema.json")) as f:
        assert sorted(rc.Schema.from_json(f.read()).records) == sorted(schema.records)
    Task, Color = schema.records["Task"], schema.enums["Color"]
    assert issubclass(Color, enum.Enum) and dataclasses.is_dataclass(Task)
    assert schema.typed(task) == Task(title="from python", due=due, color=Color.Green), schema.typed(task)
    red = Task(title="red one", color=Color.Red)
    client.call("create", {"type": "Task", "id": "t3", "fields": schema.untyped(red).fields})
    tasks = schema.typed(client.state("Task"), "Task")
    assert tasks["t3"] == red and tasks["t3"].color is Color.Red and tasks["t3"].due is None, tasks
    print("typed from the schema:", tasks["t3"])

    _, kind, event = rc.unpack(sub.recv())
    assert kind == "update" and event["id"] == uid and event["method"] == "create", event
    print("subscriber saw", event["id"], event["method"])

    try:
        client.call("create", {"type": "Task", "id": "t2", "fields": {"title": "from python"}})
        raise AssertionError("a unique violation was accepted")
    except RuntimeError as e:
        assert "Task.t2.title" in str(e), e
        print("refused:", e)

    # The CLI goes through the running node (it holds the directory's lock).
    out = subprocess.run([replog, "call", "--data", data, "set", '{"path": "x", "value": 1}'],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    h = subprocess.run([replog, "state", "--data", data, "--hash"], capture_output=True, text=True, timeout=30)
    assert h.stdout.strip() == client.hash(), (h.stdout, client.hash())
    status = client.status()
    assert status["updates"] == 4 + probes, status

    # The trust list is the running node's: the CLI changes it through the API.
    other = "AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE"
    out = subprocess.run([replog, "trust", "add", other, "--name", "b", "--data", data, "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    listed = client.request("trust.list")
    assert [(d["id"], d["name"], d["how"]) for d in listed] == [(other, "b", "manual")], listed
    try:
        client.request("trust.add", {"id": status["device_id"]})
        raise AssertionError("the node trusted its own device id")
    except RuntimeError as e:
        assert "own device id" in str(e), e
    assert client.request("trust.remove", {"id": other}) == {"removed": True}
    out = subprocess.run([replog, "trust", "list", "--data", data], capture_output=True, text=True, timeout=30)
    assert out.stdout == "no trusted devices\n", (out.stdout, out.stderr)
    print("trust ops through the running node")
    print("all API checks passed")
finally:
    if node:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    shutil.rmtree(tmp, ignore_errors=True)
