#!/usr/bin/python3
"""A scriptable MongoDB stand-in for Helios's sink tests, built on MockupDB
(MongoDB's own wire-protocol test server, Debian package python3-mockupdb).

It answers the handshake the Rust driver needs, keeps the inserted
documents in memory like a collection with a unique `_id` index (11000 for a
duplicate), answers `find` by `_id`, and can be told over stdin to misbehave:

  {"fail_next": ["hangup", "not_primary", "wce", "timeout"]}  # next inserts, in order
  {"fail_all": "not_primary"} / {"fail_all": null}             # every insert until cleared
  {"refuse": {"<24-hex id>": [121, "Document failed validation"]}}
  {"timeseries": true}                                         # no unique _id

Every command except the handshake is logged to --log as one JSON line:
  {"command": ..., "body": <canonical extended JSON>, "outcome": ...,
   "stored": [<hex ids inserted by it>]}
The first line on stdout is the port it listens on.
"""

import argparse
import json
import sys
import threading

from bson import json_util
from bson.int64 import Int64
from bson.json_util import CANONICAL_JSON_OPTIONS
from mockupdb import MockupDB

HELLO = {
    "ismaster": True,
    "isWritablePrimary": True,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48000000,
    "maxWriteBatchSize": 100000,
    "minWireVersion": 0,
    "maxWireVersion": 17,
    "ok": 1,
}
HANDSHAKE = {"hello", "ismaster", "buildinfo", "ping", "endsessions", "getlasterror"}

lock = threading.Lock()
state = {
    "stored": {},  # hex id -> count (more than 1 only in time-series mode)
    "docs": {},  # hex id -> the last document stored with it
    "fail_next": [],
    "fail_all": None,
    "refuse": {},
    "timeseries": False,
}


def log(out, name, body, outcome, stored=()):
    if out is None:
        return
    line = {
        "command": name,
        "body": json.loads(json_util.dumps(body, json_options=CANONICAL_JSON_OPTIONS)),
        "outcome": outcome,
        "stored": list(stored),
    }
    out.write(json.dumps(line) + "\n")
    out.flush()


def failure(request, kind):
    if kind == "hangup":
        return request.hangup()
    if kind == "not_primary":
        return request.replies(ok=0, code=10107, codeName="NotWritablePrimary", errmsg="not primary")
    if kind == "timeout":
        return request.replies(ok=0, code=262, codeName="ExceededTimeLimit", errmsg="operation exceeded time limit")
    raise ValueError(kind)


def handle_insert(request, out):
    doc = request.doc
    docs = doc.get("documents", [])
    with lock:
        kind = state["fail_next"].pop(0) if state["fail_next"] else state["fail_all"]
        if kind is not None and kind != "wce":
            log(out, "insert", doc, kind)
            return failure(request, kind)
        write_errors = []
        inserted = []
        for index, d in enumerate(docs):
            key = str(d.get("_id"))
            if key in state["refuse"]:
                code, msg = state["refuse"][key]
                write_errors.append({"index": index, "code": code, "errmsg": msg})
            elif key in state["stored"] and not state["timeseries"]:
                write_errors.append({"index": index, "code": 11000, "codeName": "DuplicateKey",
                                     "errmsg": "E11000 duplicate key error dup key: { _id: ObjectId('%s') }" % key})
            else:
                state["stored"][key] = state["stored"].get(key, 0) + 1
                state["docs"][key] = d
                inserted.append(key)
        reply = {"ok": 1, "n": len(inserted)}
        if write_errors:
            reply["writeErrors"] = write_errors
        if kind == "wce":
            # Applied on the primary, not confirmed by the majority.
            reply["writeConcernError"] = {"code": 64, "codeName": "WriteConcernFailed",
                                          "errmsg": "waiting for replication timed out"}
        log(out, "insert", doc, kind or "ok", inserted)
    return request.replies(reply)


def handle_find(request, out):
    """Answers `{}`, `{_id: X}` and `{_id: {$in: [...]}, ...}` (other
    conditions ignored) from the stored documents, in one batch."""
    doc = request.doc
    wanted = doc.get("filter", {}).get("_id")
    with lock:
        if wanted is None:
            found = list(state["docs"].values())
        else:
            keys = wanted.get("$in", []) if isinstance(wanted, dict) else [wanted]
            found = [state["docs"][str(k)] for k in keys if str(k) in state["docs"]]
    log(out, "find", doc, "ok")
    ns = "%s.%s" % (doc.get("$db"), doc.get("find"))
    return request.replies({"cursor": {"id": Int64(0), "ns": ns, "firstBatch": found}, "ok": 1})


def make_handler(out):
    def handler(request):
        name = (request.command_name or "").lower()
        if name in ("hello", "ismaster"):
            return request.replies(HELLO)
        if name in HANDSHAKE:
            return request.ok()
        if name == "insert":
            return handle_insert(request, out)
        if name == "find":
            return handle_find(request, out)
        # createIndexes, create, collMod, ...: accept and log.
        log(out, request.command_name, request.doc, "ok")
        return request.ok()
    return handler


def control_loop():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        update = json.loads(line)
        with lock:
            for key, value in update.items():
                if key == "refuse":
                    state["refuse"].update(value)
                else:
                    state[key] = value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", help="JSON-lines command log (omit for benchmarks)")
    args = parser.parse_args()
    out = open(args.log, "a", buffering=1) if args.log else None
    server = MockupDB(auto_ismaster=False, verbose=False)
    server.autoresponds(make_handler(out))
    port = server.run()
    print(port, flush=True)
    control_loop()  # until the test closes our stdin or kills us
    server.stop()


if __name__ == "__main__":
    main()
