#!/usr/bin/env python3
# A TEST exec-backend script (host-daemon/arrays/exec/README.md contract) that records every call
# and can stall one step: the "array" is the directory $QB_FAKE_ARRAY_DIR. Every call appends
# its op to "$DIR/calls". If "$DIR/stall-OP" exists (OP = resolve, prepare, ...), that call
# first creates "$DIR/OP-started", then sleeps the number of seconds the file holds.
# Snapshots are empty files named snapshot_name, as in fake_array.py.
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
