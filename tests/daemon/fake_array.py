#!/usr/bin/env python3
# A TEST exec-backend script (host-daemon/arrays/exec/README.md contract): an "array" that is
# a directory ($QB_FAKE_ARRAY_DIR); a snapshot is an empty file named snapshot_name. If the file
# "$DIR/slow" exists, snapshot first writes "$DIR/snapshot-started", then sleeps that many
# seconds (the daemon may kill it or be killed meanwhile) before creating the files. If the file
# "$DIR/fail" exists, snapshot fails at once with array-error (creating nothing). Every call
# appends its op to "$DIR/calls"; if "$DIR/stall-OP" exists (OP = resolve, prepare, ...), that
# call first creates "$DIR/OP-started", then sleeps the number of seconds the file holds.
import json, os, sys, time

d = os.environ["QB_FAKE_ARRAY_DIR"]
req = json.load(sys.stdin)
op = req["op"]
with open(os.path.join(d, "calls"), "a") as calls:
    calls.write(op + "\n")
stall = os.path.join(d, "stall-" + op)
if os.path.exists(stall):
    open(os.path.join(d, op + "-started"), "w").close()
    time.sleep(float(open(stall).read().strip() or "5"))

def answer(obj):
    sys.stdout.write(json.dumps(obj))
    sys.exit(0)

if op == "capabilities":
    answer({"ok": True, "capabilities": {"atomic_group": True, "clone": False, "rollback": False}})
if op in ("resolve", "prepare"):
    answer({"ok": True})
if op == "snapshot":
    if os.path.exists(os.path.join(d, "fail")):
        answer({"ok": False, "error": {"code": "array-error", "message": "array refused (test)"}})
    slow = os.path.join(d, "slow")
    if os.path.exists(slow):
        open(os.path.join(d, "snapshot-started"), "w").close()
        # Detach from the daemon: the "array" finishes even if the daemon dies or kills us.
        if os.fork() != 0:
            time.sleep(float(open(slow).read().strip() or "5"))
            answer({"ok": False, "error": {"code": "timeout", "message": "still in flight"}})
        os.setsid()
        time.sleep(float(open(slow).read().strip() or "5"))
        for lun in req["luns"]:
            open(os.path.join(d, lun["snapshot_name"]), "w").close()
        os._exit(0)
    snaps = []
    for lun in req["luns"]:
        open(os.path.join(d, lun["snapshot_name"]), "w").close()
        snaps.append({"volume": lun["volume"], "array_name": lun["snapshot_name"]})
    answer({"ok": True, "snapshots": snaps})
if op == "find":
    snaps = [{"volume": l["volume"], "array_name": l["snapshot_name"]}
             for l in req["luns"] if os.path.exists(os.path.join(d, l["snapshot_name"]))]
    answer({"ok": True, "snapshots": snaps})
if op == "list":
    answer({"ok": True, "snapshots": []})
if op == "remove":
    try:
        os.remove(os.path.join(d, req["snapshot"]["array_name"]))
    except FileNotFoundError:
        pass
    answer({"ok": True})
answer({"ok": False, "error": {"code": "unsupported", "message": op}})
