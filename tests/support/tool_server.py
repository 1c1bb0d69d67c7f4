#!/usr/bin/env python3
"""The independent checker's tool server: an effectively-once HTTP tool host.

Run it as its own process so it survives a `kill -9` of the Continuum server:

    python3 tool_server.py --port 8099 [--host 127.0.0.1] [--state ledger.json]

`POST /tools/<name>` takes the tool arguments as a JSON body and the headers
`Idempotency-Key`, `Continuum-Run-Id` and `Continuum-Step`. The first successful
delivery of a key APPLIES the effect: it is recorded in the ledger with a
deterministic result computed from the tool name and arguments (see
`result_for`), and that result is the response body (text/plain). Later
deliveries of the same key return the stored result and count as duplicates.
A key delivered again with different arguments is flagged as a mismatch.

Behaviour per tool is set by a JSON config, from the env var
`TOOL_SERVER_CONFIG`, from `--config`, or at run time by `POST /control`:

    {"tools": {"<name>": RULE, ...}, "default": RULE}
    RULE: {"delay_ms": N, "delay_ms_max": M,     # sleep N ms, or uniformly N..M ms
           "fail_first": K, "fail_status": 503,  # the first K deliveries of each key fail
           "retry_after_s": S,                    # ... with this Retry-After header
           "status": 400,                         # always answer this status, never apply
           "body_hex": "636166e9"}                # answer these raw bytes instead of the result
                                                  # (the effect is still applied and recorded)

`POST /control` merges rules (`{"replace": true, ...}` replaces them all).
`GET /stats` reports counters (see `Ledger.stats`), `GET /ledger` every key's
record (with `received_at`: the Unix time each delivery arrived), `POST /reset`
forgets everything (ledger, counters, rules unless `{"keep_rules": true}`),
`GET /healthz` answers `{"status": "ok"}`.

With `--state FILE` the ledger is written to FILE (atomically, fsynced) after
every change, and loaded at start, so the checker can survive its own restart.

Only the Python standard library is used.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RULE_FIELDS = {"delay_ms", "delay_ms_max", "fail_first", "fail_status", "retry_after_s", "status", "body_hex"}


def canonical_json(value):
    """Compact, key-sorted JSON: the same text for equal values, no "; " inside."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def result_for(name, args):
    """The deterministic result of applying tool `name` to `args` (a JSON value)."""
    return f"{name}({canonical_json(args)})=ok"


class Ledger:
    """All the state of the checker. Thread-safe: every method takes the lock."""

    def __init__(self, state_file=None):
        self._lock = threading.Lock()
        self._state_file = state_file
        self._rules = {"tools": {}, "default": {}}
        self._reset_counters()
        if state_file and os.path.exists(state_file):
            with open(state_file, "r", encoding="utf-8") as f:
                saved = json.load(f)
            self._keys = saved.get("keys", {})
            self._tools = saved.get("tools", {})
            self._deliveries = saved.get("deliveries", 0)
            self._unkeyed = saved.get("unkeyed", [])
            self._header_mismatches = saved.get("header_mismatches", [])

    def _reset_counters(self):
        self._keys = {}  # key -> record (see deliver)
        self._tools = {}  # name -> {"deliveries", "applied", "duplicates", "failed", "rejected"}
        self._deliveries = 0
        self._unkeyed = []  # deliveries without an Idempotency-Key (each one applied)
        self._header_mismatches = []  # key != f"{run_id}:{step}"
        self._in_flight = 0
        self._max_concurrency = 0

    # --- rules -------------------------------------------------------------

    def set_rules(self, update):
        with self._lock:
            if update.get("replace"):
                self._rules = {"tools": {}, "default": {}}
            for name, rule in (update.get("tools") or {}).items():
                merged = dict(self._rules["tools"].get(name, {}))
                merged.update(_check_rule(rule))
                self._rules["tools"][name] = merged
            if "default" in update:
                merged = dict(self._rules["default"])
                merged.update(_check_rule(update["default"] or {}))
                self._rules["default"] = merged
            return json.loads(json.dumps(self._rules))

    def rule_for(self, name):
        with self._lock:
            rule = dict(self._rules["default"])
            rule.update(self._rules["tools"].get(name, {}))
            return rule

    # --- concurrency -------------------------------------------------------

    def enter(self):
        with self._lock:
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)

    def leave(self):
        with self._lock:
            self._in_flight -= 1

    # --- deliveries --------------------------------------------------------

    def deliver(self, name, args, key, run_id, step, rule, received_at=None):
        """Records one delivery and decides the answer: (status, body, headers).
        `received_at` (Unix seconds) is when the request arrived, before any delay."""
        received_at = time.time() if received_at is None else received_at
        with self._lock:
            self._deliveries += 1
            tool = self._tools.setdefault(
                name, {"deliveries": 0, "applied": 0, "duplicates": 0, "failed": 0, "rejected": 0})
            tool["deliveries"] += 1
            if key and run_id and step and key != f"{run_id}:{step}":
                self._header_mismatches.append({"key": key, "run_id": run_id, "step": step})

            if "status" in rule and rule["status"] is not None:
                tool["rejected"] += 1
                if key:
                    record = self._record(key, name, args, run_id, step)
                    record["deliveries"] += 1
                    record.setdefault("received_at", []).append(received_at)
                    record["rejected"] += 1
                self._save()
                return rule["status"], f"tool '{name}' rejects this request", {}

            if not key:
                result = result_for(name, args)
                self._unkeyed.append({"tool": name, "args": args, "result": result})
                tool["applied"] += 1
                self._save()
                return 200, result, {}

            record = self._record(key, name, args, run_id, step)
            record["deliveries"] += 1
            record.setdefault("received_at", []).append(received_at)
            if canonical_json(args) != canonical_json(record["args"]) or name != record["tool"]:
                record["mismatched"] = True
                record.setdefault("other_args", []).append({"tool": name, "args": args})

            if record["applied"] > 0:
                record["duplicates"] += 1
                tool["duplicates"] += 1
                self._save()
                return 200, record["result"], {"Idempotent-Replayed": "true"}

            fail_first = int(rule.get("fail_first", 0) or 0)
            if record["failed"] < fail_first:
                record["failed"] += 1
                tool["failed"] += 1
                self._save()
                headers = {}
                if rule.get("retry_after_s") is not None:
                    headers["Retry-After"] = str(int(rule["retry_after_s"]))
                return int(rule.get("fail_status", 503)), f"tool '{name}' is failing on purpose", headers

            record["applied"] += 1
            record["result"] = result_for(name, args)
            tool["applied"] += 1
            self._save()
            return 200, record["result"], {}

    def _record(self, key, name, args, run_id, step):
        record = self._keys.get(key)
        if record is None:
            record = {"tool": name, "args": args, "run_id": run_id, "step": step, "deliveries": 0,
                      "applied": 0, "duplicates": 0, "failed": 0, "rejected": 0, "mismatched": False,
                      "result": None, "received_at": []}
            self._keys[key] = record
        return record

    # --- reports -----------------------------------------------------------

    def stats(self):
        with self._lock:
            applied = sum(r["applied"] for r in self._keys.values()) + len(self._unkeyed)
            return {
                "keys": len(self._keys),
                "deliveries": self._deliveries,
                "applied": applied,
                "duplicates": sum(r["duplicates"] for r in self._keys.values()),
                "failed": sum(r["failed"] for r in self._keys.values()),
                "rejected": sum(r["rejected"] for r in self._keys.values()),
                "unkeyed": len(self._unkeyed),
                "mismatches": sorted(k for k, r in self._keys.items() if r["mismatched"]),
                "multiply_applied": sorted(k for k, r in self._keys.items() if r["applied"] > 1),
                "header_mismatches": list(self._header_mismatches),
                "in_flight": self._in_flight,
                "max_concurrency": self._max_concurrency,
                "tools": json.loads(json.dumps(self._tools)),
            }

    def ledger(self):
        with self._lock:
            return {"keys": json.loads(json.dumps(self._keys)), "unkeyed": list(self._unkeyed)}

    def reset(self, keep_rules=False):
        with self._lock:
            in_flight = self._in_flight
            self._reset_counters()
            self._in_flight = in_flight
            if not keep_rules:
                self._rules = {"tools": {}, "default": {}}
            self._save()

    def _save(self):
        """Persists the ledger (caller holds the lock). Atomic: temp file, fsync, rename."""
        if not self._state_file:
            return
        document = {"keys": self._keys, "tools": self._tools, "deliveries": self._deliveries,
                    "unkeyed": self._unkeyed, "header_mismatches": self._header_mismatches}
        directory = os.path.dirname(os.path.abspath(self._state_file))
        fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_file)


def _check_rule(rule):
    if not isinstance(rule, dict):
        raise ValueError("a rule must be an object")
    unknown = set(rule) - RULE_FIELDS
    if unknown:
        raise ValueError(f"unknown rule fields: {sorted(unknown)}")
    return rule


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ContinuumCheckerTools/1"

    @property
    def ledger(self):
        return self.server.ledger

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("tool_server: " + (fmt % args) + "\n")

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status, value):
        self._send(status, json.dumps(value))

    def do_GET(self):
        if self.path == "/healthz":
            self._send_json(200, {"status": "ok"})
        elif self.path == "/stats":
            self._send_json(200, self.ledger.stats())
        elif self.path == "/ledger":
            self._send_json(200, self.ledger.ledger())
        elif self.path == "/control":
            self._send_json(200, self.ledger.set_rules({}))
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self):
        received_at = time.time()
        raw = self._read_body()
        if self.path.startswith("/tools/"):
            self._tool(self.path[len("/tools/"):], raw, received_at)
            return
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self._send_json(400, {"error": "body is not JSON"})
            return
        if self.path == "/control":
            try:
                self._send_json(200, self.ledger.set_rules(body))
            except ValueError as error:
                self._send_json(400, {"error": str(error)})
        elif self.path == "/reset":
            self.ledger.reset(keep_rules=bool(body.get("keep_rules")))
            self._send_json(200, {"reset": True})
        else:
            self._send_json(404, {"error": "not found"})

    def _tool(self, name, raw, received_at):
        self.ledger.enter()
        try:
            try:
                args = json.loads(raw) if raw.strip() else {}
            except ValueError:
                self._send(400, f"tool '{name}': the body is not JSON", "text/plain")
                return
            rule = self.ledger.rule_for(name)
            delay_ms = float(rule.get("delay_ms", 0) or 0)
            if rule.get("delay_ms_max") is not None:
                delay_ms = random.uniform(delay_ms, float(rule["delay_ms_max"]))
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)
            status, body, headers = self.ledger.deliver(
                name, args, self.headers.get("Idempotency-Key"), self.headers.get("Continuum-Run-Id"),
                self.headers.get("Continuum-Step"), rule, received_at)
            if status == 200 and rule.get("body_hex") is not None:
                body = bytes.fromhex(rule["body_hex"])
            self._send(status, body, "text/plain; charset=utf-8", headers)
        finally:
            self.ledger.leave()


class ToolServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, ledger, verbose=False):
        super().__init__(address, Handler)
        self.ledger = ledger
        self.verbose = verbose


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", help="persist the ledger to this file")
    parser.add_argument("--config", help="JSON rules (as for POST /control)")
    parser.add_argument("--verbose", action="store_true")
    options = parser.parse_args(argv)

    ledger = Ledger(options.state)
    for source in (os.environ.get("TOOL_SERVER_CONFIG"), options.config):
        if source:
            ledger.set_rules(json.loads(source))
    server = ToolServer((options.host, options.port), ledger, options.verbose)
    sys.stderr.write(json.dumps({"msg": "tool server listening", "port": server.server_address[1]}) + "\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
