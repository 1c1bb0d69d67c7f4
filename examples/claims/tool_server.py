#!/usr/bin/env python3
"""Tools for the insurance-claims demo agent (Python standard library only).

    python3 examples/claims/tool_server.py [--port 8091] [--host 127.0.0.1]

Continuum POSTs a tool's arguments as a JSON body to:

  POST /tools/lookup_policy         {"claim_id": "CLM-1001"}
      -> the policy covering the claim (holder, product, limits, deductible, perils)
  POST /tools/check_fraud_signals   {"claim_id": "CLM-1001", "amount_eur": 4200}
      -> a risk score 0-100, a level and the signals that raised it
  POST /tools/create_triage_ticket  {"claim_id": "CLM-1001", "priority": "high",
                                     "queue": "fraud-review", "summary": "..."}
      -> a new triage ticket

Lookups are deterministic: the same claim id always gives the same answer.
Creating a ticket is the one side effect, and it honours the `Idempotency-Key`
header that Continuum sends with every tool call ("{run_id}:{seq}", the same on
every retry and after a crash): a repeated key returns the ticket created the
first time — never a second ticket. Reusing a key with different arguments is
refused (422). Without a key every call creates a ticket.

`GET /tickets` lists the tickets created; `GET /healthz` answers {"status": "ok"}.
"""

import argparse
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLDERS = ["Ana Ruiz", "Ben Okafor", "Chloé Martin", "Dev Patel", "Eva Nowak", "Farid Haddad",
           "Grace Liu", "Hugo Berg", "Ines Costa", "Jonas Weber"]
PRODUCTS = {
    "motor": ["collision", "theft", "glass", "fire"],
    "home": ["fire", "water damage", "storm", "burglary"],
    "travel": ["medical", "cancellation", "baggage"],
}
FRAUD_SIGNALS = [
    ("recent_policy_change", "coverage was raised less than 30 days before the loss"),
    ("late_report", "the loss was reported more than 14 days after it happened"),
    ("repeat_claimant", "three or more claims in the last 24 months"),
    ("amount_near_limit", "the claimed amount is within 10% of the coverage limit"),
    ("address_mismatch", "the loss address differs from the insured address"),
    ("unverified_invoice", "the repair invoice comes from an unregistered vendor"),
]
PRIORITIES = ("low", "normal", "high", "urgent")
QUEUES = ("standard", "fast-track", "fraud-review", "large-loss")


class BadRequest(Exception):
    pass


def digest(*parts):
    """A stable integer from the inputs: the demo's only source of 'randomness'."""
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def claim_id_of(args):
    claim_id = args.get("claim_id")
    if not isinstance(claim_id, str) or not claim_id.strip():
        raise BadRequest("claim_id (a non-empty string) is required")
    return claim_id.strip()


def lookup_policy(args):
    claim_id = claim_id_of(args)
    h = digest("policy", claim_id)
    product = sorted(PRODUCTS)[h % len(PRODUCTS)]
    perils = PRODUCTS[product]
    limit = [5_000, 10_000, 25_000, 50_000, 100_000][(h >> 8) % 5]
    start_year = 2021 + (h >> 16) % 4
    start_month = 1 + (h >> 20) % 12
    return {
        "claim_id": claim_id,
        "policy_id": f"POL-{h % 1_000_000:06d}",
        "holder": HOLDERS[(h >> 24) % len(HOLDERS)],
        "product": product,
        "status": "lapsed" if (h >> 28) % 10 == 0 else "active",
        "coverage_limit_eur": limit,
        "deductible_eur": [0, 150, 250, 500][(h >> 32) % 4],
        "covered_perils": perils[: 2 + (h >> 36) % (len(perils) - 1)],
        "effective_from": f"{start_year}-{start_month:02d}-01",
        "effective_to": f"{start_year + 1}-{start_month:02d}-01",
    }


def check_fraud_signals(args):
    claim_id = claim_id_of(args)
    amount = args.get("amount_eur")
    if amount is not None and (not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0):
        raise BadRequest("amount_eur must be a non-negative number")
    h = digest("fraud", claim_id)
    signals = [{"code": code, "detail": detail}
               for i, (code, detail) in enumerate(FRAUD_SIGNALS) if (h >> (i * 5)) % 4 == 0]
    policy = lookup_policy({"claim_id": claim_id})
    if amount is not None and amount >= 0.9 * policy["coverage_limit_eur"] and \
            not any(s["code"] == "amount_near_limit" for s in signals):
        signals.append({"code": "amount_near_limit", "detail": dict(FRAUD_SIGNALS)["amount_near_limit"]})
    score = min(100, 8 + 17 * len(signals) + (h >> 40) % 9)
    level = "high" if score >= 60 else "medium" if score >= 30 else "low"
    return {"claim_id": claim_id, "risk_score": score, "risk_level": level, "signals": signals,
            "model": "demo-rules-v1"}


class TicketBook:
    """The demo's only mutable state: tickets, and which idempotency key made which."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tickets = []
        self.by_key = {}  # Idempotency-Key -> (canonical args, ticket)

    def create(self, args, key):
        claim_id = claim_id_of(args)
        priority = args.get("priority", "normal")
        queue = args.get("queue", "standard")
        summary = args.get("summary", "")
        if priority not in PRIORITIES:
            raise BadRequest(f"priority must be one of {', '.join(PRIORITIES)}")
        if queue not in QUEUES:
            raise BadRequest(f"queue must be one of {', '.join(QUEUES)}")
        if not isinstance(summary, str):
            raise BadRequest("summary must be a string")
        canonical = json.dumps(args, sort_keys=True)
        with self.lock:
            if key and key in self.by_key:
                first_args, ticket = self.by_key[key]
                if first_args != canonical:
                    return 422, {"error": "this Idempotency-Key was already used with different arguments"}
                return 200, dict(ticket, replayed=True)
            ticket = {"ticket_id": f"TRI-{len(self.tickets) + 1:06d}", "claim_id": claim_id,
                      "priority": priority, "queue": queue, "summary": summary, "status": "open",
                      "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "idempotency_key": key or None}
            self.tickets.append(ticket)
            if key:
                self.by_key[key] = (canonical, ticket)
            return 201, dict(ticket, replayed=False)

    def list(self):
        with self.lock:
            return list(self.tickets)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClaimsDemoTools/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("claims-tools: " + (fmt % args) + "\n")

    def _send(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/tickets":
            self._send(200, {"data": self.server.tickets.list()})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise BadRequest("the arguments must be a JSON object")
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        except BadRequest as error:
            self._send(400, {"error": str(error)})
            return
        try:
            if self.path == "/tools/lookup_policy":
                self._send(200, lookup_policy(args))
            elif self.path == "/tools/check_fraud_signals":
                self._send(200, check_fraud_signals(args))
            elif self.path == "/tools/create_triage_ticket":
                status, body = self.server.tickets.create(args, self.headers.get("Idempotency-Key"))
                self._send(status, body)
            else:
                self._send(404, {"error": f"no tool at {self.path}"})
        except BadRequest as error:
            self._send(400, {"error": str(error)})


def main():
    parser = argparse.ArgumentParser(description="Tools for the claims demo agent.")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--host", default="127.0.0.1")
    options = parser.parse_args()
    server = ThreadingHTTPServer((options.host, options.port), Handler)
    server.daemon_threads = True
    server.tickets = TicketBook()
    sys.stderr.write(f"claims-tools: listening on http://{options.host}:{server.server_address[1]}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
