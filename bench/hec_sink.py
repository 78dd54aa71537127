"""A minimal HTTP Event Collector for the benchmark: real HEC replies, but it only counts what it receives.

    python -m bench.hec_sink --token T [--ack-token T2]

The test HEC emulator (tests/emulators/hec) parses and keeps every envelope, which costs more CPU and memory
than a forwarder at full speed can be given on a small machine. This sink speaks the same protocol to the
client (``Authorization: Splunk <token>``, gzip bodies, channels, ackIds, ``/services/collector/ack``,
``/services/collector/health``) and per request only finds the ``event_id`` values with one regular
expression, so it can tell delivered, missing and duplicated events apart. An ack-enabled token reports
every ackId it handed out as indexed at the first query.

Events put by the SLS emulator's producer (bench/sls_server.py) carry ``put_at`` then ``event_id``; for each such
event's first arrival the sink records ``time.time()`` minus ``put_at``: how long put -> delivered took.

It prints ``{"url": "http://127.0.0.1:PORT"}`` and serves until SIGTERM. Benchmark endpoints (no auth):
``GET /bench/stats`` -> ``{"events", "distinct", "requests", "body_bytes", "rejected"}``,
``GET /bench/latencies`` -> ``{"latencies": [seconds, ...]}`` and ``POST /bench/reset``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Set

# The data set gives every log a unique event_id (the record's eventId in normalised ActionTrail events); JSON-in-a-
# string values escape their quotes, so this key matches exactly once per envelope (stream XML leaves quotes alone,
# so the same pattern counts the stream too).
EVENT_ID = re.compile(rb'"(?:event_id|eventId)":\s*"([^"\\]+)"')
# A producer event: its first two fields, put time and id (both JSON and stream XML leave these quotes alone).
PUT_AT_ID = re.compile(rb'"put_at":\s*"([0-9.]+)",\s*"event_id":\s*"([^"\\]+)"')
EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
ACK_PATHS = ("/services/collector/ack", "/services/collector/ack/1.0")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")


class DeliveryCounter:
    """Thread-safe count of received events and of distinct event_ids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: Set[bytes] = set()
        self.events = 0
        self.requests = 0
        self.body_bytes = 0
        self.rejected = 0

    def add(self, body: bytes) -> int:
        """Count the events of one accepted body; returns how many it held."""
        ids = EVENT_ID.findall(body)
        with self._lock:
            self._ids.update(ids)
            self.events += len(ids)
            self.requests += 1
            self.body_bytes += len(body)
        return len(ids)

    def reject(self) -> None:
        with self._lock:
            self.rejected += 1

    def stats(self) -> Dict[str, int]:
        with self._lock:
            return {"events": self.events, "distinct": len(self._ids), "requests": self.requests,
                    "body_bytes": self.body_bytes, "rejected": self.rejected}

    def reset(self) -> None:
        with self._lock:
            self._ids.clear()
            self.events = self.requests = self.body_bytes = self.rejected = 0


class ArrivalLatencies:
    """Seconds from put to the first arrival of each producer event (see ``PUT_AT_ID``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Set[bytes] = set()
        self._values: List[float] = []

    def add(self, body: bytes, arrived: float) -> None:
        if b'"put_at"' not in body:  # the throughput data sets have none: no regex pass for them
            return
        found = PUT_AT_ID.findall(body)
        with self._lock:
            for put_at, event_id in found:
                if event_id not in self._seen:
                    self._seen.add(event_id)
                    self._values.append(arrived - float(put_at))

    def values(self) -> List[float]:
        with self._lock:
            return list(self._values)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._values.clear()


class AckChannels:
    """ackIds per channel, counted from 0 as Splunk does; each is reported true once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Dict[str, Set[int]] = {}
        self._next: Dict[str, int] = {}

    def issue(self, channel: str) -> int:
        with self._lock:
            ack_id = self._next.get(channel, 0)
            self._next[channel] = ack_id + 1
            self._pending.setdefault(channel, set()).add(ack_id)
            return ack_id

    def query(self, channel: str, ack_ids: List[int]) -> Dict[str, bool]:
        with self._lock:
            pending = self._pending.get(channel, set())
            answer = {str(ack_id): ack_id in pending for ack_id in ack_ids}
            pending.difference_update(ack_ids)
            return answer


class SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tokens: Dict[str, bool]) -> None:
        super().__init__(("127.0.0.1", 0), SinkHandler)
        self.tokens = tokens           # token -> indexer acknowledgement on
        self.counter = DeliveryCounter()
        self.latencies = ArrivalLatencies()
        self.acks = AckChannels()


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One send per reply and no Nagle: a reply split in two small writes waits for the client's delayed ACK
    # (about 40 ms), which would cap a one-event-per-request client at ~25 requests per second.
    wbufsize = 65536
    disable_nagle_algorithm = True
    server: SinkServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        """No access log: one line per request would cost more than counting the request."""

    def _reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _token_ack(self) -> Optional[bool]:
        """Whether the request's token uses ack; None (after replying) when the token is not valid."""
        header = self.headers.get("Authorization", "")
        if not header:
            self._reply(401, {"text": "Token is required", "code": 2})
            return None
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token:
            self._reply(401, {"text": "Invalid authorization", "code": 3})
            return None
        if token not in self.server.tokens:
            self._reply(403, {"text": "Invalid token", "code": 4})
            return None
        return self.server.tokens[token]

    def _channel(self) -> str:
        channel = self.headers.get("X-Splunk-Request-Channel", "")
        if not channel and "channel=" in self.path:
            channel = self.path.split("channel=", 1)[1].split("&", 1)[0]
        return channel

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler API
        path = self.path.split("?", 1)[0]
        if path == "/bench/stats":
            self._reply(200, self.server.counter.stats())
        elif path == "/bench/latencies":
            self._reply(200, {"latencies": self.server.latencies.values()})
        elif path in HEALTH_PATHS:
            self._reply(200, {"text": "HEC is healthy", "code": 17})
        else:
            self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler API
        path = self.path.split("?", 1)[0]
        body = self._body()  # always read, so the keep-alive connection stays in step
        if path == "/bench/reset":
            self.server.counter.reset()
            self.server.latencies.reset()
            self._reply(200, {"text": "reset"})
            return
        if path not in EVENT_PATHS and path not in ACK_PATHS:
            self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})
            return
        ack = self._token_ack()
        if ack is None:
            self.server.counter.reject()
            return
        channel = self._channel()
        if ack and not channel:
            self.server.counter.reject()
            self._reply(400, {"text": "Data channel is missing", "code": 10})
            return
        if path in ACK_PATHS:
            if not ack:
                self._reply(400, {"text": "ACK is disabled", "code": 14})
                return
            requested = json.loads(body or b"{}").get("acks", [])
            self._reply(200, {"acks": self.server.acks.query(channel, [int(a) for a in requested])})
            return
        if not body.strip():
            self.server.counter.reject()
            self._reply(400, {"text": "No data", "code": 5})
            return
        self.server.counter.add(body)
        self.server.latencies.add(body, time.time())
        reply: Dict[str, object] = {"text": "Success", "code": 0}
        if ack:
            reply["ackId"] = self.server.acks.issue(channel)
        self._reply(200, reply)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hec_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True, help="a token without indexer acknowledgement")
    parser.add_argument("--ack-token", default="", help="a token with indexer acknowledgement")
    args = parser.parse_args(argv)
    tokens = {args.token: False}
    if args.ack_token:
        tokens[args.ack_token] = True
    server = SinkServer(tokens)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    sys.stdout.write(json.dumps({"url": "http://127.0.0.1:%d" % server.server_address[1]}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
