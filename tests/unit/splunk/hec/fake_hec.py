"""A small scriptable HEC on 127.0.0.1 for HecSender/HecSink tests (the full emulator is tests/emulators/hec).

It answers like Splunk (``{"text":"Success","code":0[,"ackId":n]}``, 503 code 9, 400 code 6 with
``invalid-event-number``, 403 code 4, ``/services/collector/ack``) and lets a test script the next replies,
withhold acks, hold requests, and read back every request and accepted envelope.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Set, Tuple


class FakeHec:
    """Arguments:
        ack: Give every accepted request an ackId (token with indexer acknowledgement).
        token: The accepted token; anything else gets 403 code 4.
    """

    def __init__(self, ack: bool = False, token: str = "tok") -> None:
        self.ack = ack
        self.token = token
        self.changed = threading.Condition()
        self.events: List[Dict[str, Any]] = []
        self.posts: List[Tuple[str, Dict[str, str], bytes]] = []  # (path, lower-case headers, decoded body)
        self.scripted: Deque[Tuple[int, Dict[str, Any]]] = deque()
        self.reject_marker: Optional[str] = None
        self.name_invalid_event = True
        self.auto_ack = True
        self.never_ack: Set[int] = set()
        self.acks: Dict[int, bool] = {}
        self.released = threading.Event()
        self.released.set()
        self._next_ack_id = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def __enter__(self) -> "FakeHec":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def script(self, *replies: Tuple[int, Dict[str, Any]]) -> None:
        """Answer the next event POSTs with these (status, JSON) replies, before any other rule."""
        with self.changed:
            self.scripted.extend(replies)

    def release_acks(self) -> None:
        """Make every pending ackId read true (except those in ``never_ack``)."""
        with self.changed:
            for ack_id in self.acks:
                self.acks[ack_id] = ack_id not in self.never_ack

    def event_posts(self) -> List[Tuple[str, Dict[str, str], bytes]]:
        with self.changed:
            return [post for post in self.posts if post[0].endswith("/event")]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(self)`` is true (re-checked whenever the server records something)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def event_values(self) -> List[Any]:
        with self.changed:
            return [envelope["event"] for envelope in self.events]

    # -- request handling (server threads) -----------------------------------------------------------------

    def handle_event(self, headers: Dict[str, str], body: bytes) -> Tuple[int, Dict[str, Any]]:
        self.released.wait(30)
        with self.changed:
            if headers.get("authorization") != "Splunk " + self.token:
                return 403, {"text": "Invalid token", "code": 4}
            if self.scripted:
                return self.scripted.popleft()
            envelopes = [json.loads(line) for line in body.split(b"\n") if line.strip()]
            for number, envelope in enumerate(envelopes):
                if self.reject_marker is not None and self.reject_marker in json.dumps(envelope):
                    reply: Dict[str, Any] = {"text": "Invalid data format", "code": 6}
                    if self.name_invalid_event:
                        reply["invalid-event-number"] = number
                    return 400, reply
            self.events.extend(envelopes)
            reply = {"text": "Success", "code": 0}
            if self.ack:
                ack_id = self._next_ack_id
                self._next_ack_id += 1
                self.acks[ack_id] = self.auto_ack and ack_id not in self.never_ack
                reply["ackId"] = ack_id
            return 200, reply

    def handle_ack(self, body: bytes) -> Tuple[int, Dict[str, Any]]:
        with self.changed:
            if not self.ack:
                return 400, {"text": "ACK is disabled", "code": 14}
            states = {}
            for ack_id in json.loads(body)["acks"]:
                states[str(ack_id)] = self.acks.get(ack_id, False)
                if states[str(ack_id)]:
                    del self.acks[ack_id]  # Splunk reports a true ack once
            return 200, {"acks": states}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        pass

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler API
        fake: FakeHec = self.server.fake  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        headers = {name.lower(): value for name, value in self.headers.items()}
        with fake.changed:
            fake.posts.append((self.path, headers, body))
            fake.changed.notify_all()
        if self.path.endswith("/services/collector/event"):
            status, reply = fake.handle_event(headers, body)
        elif self.path.endswith("/services/collector/ack"):
            status, reply = fake.handle_ack(body)
        else:
            status, reply = 404, {"text": "not found"}
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        with fake.changed:
            fake.changed.notify_all()
