#!/usr/bin/python3
"""The to-do list from Python, through a running `replog node` on a todo data
directory (its local API): tasks come back as instances of a dataclass and
priorities as enum.Enum members, both generated from the node's schema, due
dates as datetimes. Prints the list as `todo DIR list` does.

    todo_client.py DIR list
    todo_client.py DIR add ID TITLE [--high]

Needs tools/replog_client.py (found beside this repository's tools/) and
Debian's python3-zmq and python3-msgpack."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import replog_client as rc  # noqa: E402


def describe(task_id, task, Priority):
    line = "%s  %s %s" % (task_id, "[x]" if task.done else "[ ]", task.title)
    if task.priority is Priority.High:
        line += "  !high"
    if task.due is not None:
        line += "  due " + task.due.date().isoformat()
    return line


def main():
    if len(sys.argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    client = rc.Client(sys.argv[1])
    schema = client.schema()
    Task, Priority = schema.records["Task"], schema.enums["Priority"]
    if sys.argv[2] == "list":
        try:
            tasks = schema.typed(client.state("Task"), "Task")
        except RuntimeError:  # no task yet
            tasks = {}
        for task_id, task in sorted(tasks.items()):
            print(describe(task_id, task, Priority))
        for c in client.request("conflicts")["conflicts"]:
            print("conflict %s: %s at %s" % (c["update"], c["kind"], ".".join(c["path"])))
    elif sys.argv[2] == "add" and len(sys.argv) >= 5:
        task = Task(title=sys.argv[4], priority=Priority.High if "--high" in sys.argv[5:] else Priority.Low,
                    done=False)
        client.call("create", {"type": "Task", "id": sys.argv[3], "fields": schema.untyped(task).fields})
    else:
        print("todo_client: unknown command", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
