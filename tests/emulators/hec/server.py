"""An HTTP Event Collector (HEC) emulator: a real HTTP/1.1 server on loopback that answers like Splunk.

It accepts the JSON event endpoint (``/services/collector``, ``/services/collector/event``), the raw
endpoint, health and indexer acknowledgement, checks tokens, channels, sizes and index allow-lists,
and records every accepted event with its ackId and arrival order so tests can count loss and
duplicates. Faults (busy, latency, dropped connections, acks that never come, unhealthy) are switched
at run time through :class:`HecFaults`.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from .tls import server_context, wrap_accepted

logger = logging.getLogger("tests.emulators.hec")

# Splunk's HEC reply codes: code -> (HTTP status, text). Source: Splunk docs "Troubleshoot HTTP Event
# Collector" and the SplunkAdmins reply-code lookup (see shared reference anchors.md section 5).
HEC_REPLIES: Dict[int, Tuple[int, str]] = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
    17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
    19: (503, "HEC is unhealthy, ack service unavailable"),
    20: (503, "HEC is unhealthy, queues are full, ack service unavailable"),
}

EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
ACK_PATHS = ("/services/collector/ack",)
ENVELOPE_METADATA = ("host", "source", "sourcetype", "index")


@dataclass
class TokenConfig:
    """One HEC token as configured in inputs.conf ``[http://<name>]``.

    Arguments:
        ack: ``useACK``: every accepted request gets an ackId and a channel is required.
        indexes: Allowed indexes (``indexes``); None allows any index.
        disabled: A disabled token is refused with code 1.
        default_index: ``index``: used when an envelope names none; defaults to the first allowed
            index, else "main".
    """

    ack: bool = False
    indexes: Optional[List[str]] = None
    disabled: bool = False
    default_index: Optional[str] = None

    def effective_index(self, requested: Optional[str]) -> str:
        if requested:
            return requested
        if self.default_index:
            return self.default_index
        return self.indexes[0] if self.indexes else "main"

    def allows(self, index: str) -> bool:
        return self.indexes is None or index in self.indexes


class HecFaults:
    """Run-time fault switches. Every switch is thread-safe and takes effect on the next request."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.clear()

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._busy_until = 0.0
            self._busy_share = 0.0
            self._latency = 0.0
            self._drop_share = 0.0
            self._drop_after_accept = False
            self._never_ack_all = False
            self._never_ack_left = 0
            self._health_code = 17

    def busy_for(self, seconds: float) -> None:
        """Answer every data request with 503 code 9 ("Server is busy") for ``seconds`` from now; health answers
        503 code 18 ("queues are full") meanwhile."""
        with self._lock:
            self._busy_until = time.monotonic() + seconds

    def busy_rate(self, share: float) -> None:
        """Answer this share (0..1) of data requests, chosen at random, with 503 code 9."""
        with self._lock:
            self._busy_share = _share(share)

    def latency(self, seconds: float) -> None:
        """Delay every response (data, ack and health) by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def drop_rate(self, share: float, after_accept: bool = False) -> None:
        """Close the connection without a response for this share (0..1) of data requests.

        Arguments:
            share: Fraction of data requests to drop.
            after_accept: False drops before the events are recorded (the data is lost on the server
                side); True records the events first, so a client that resends makes duplicates.
        """
        with self._lock:
            self._drop_share = _share(share)
            self._drop_after_accept = after_accept

    def never_ack(self, n: Optional[int] = None) -> None:
        """Make acks never turn true: for every request from now on (``n=None``), or for the next ``n``."""
        with self._lock:
            if n is None:
                self._never_ack_all = True
            else:
                self._never_ack_left += max(0, n)

    def health_unhealthy(self, code: int = 18) -> None:
        """Make ``/services/collector/health`` answer 503 with code 18, 19 or 20."""
        if code not in (18, 19, 20):
            raise ValueError(f"health code must be 18, 19 or 20, not {code}")
        with self._lock:
            self._health_code = code

    # Decisions taken by the request handler.
    def _latency_seconds(self) -> float:
        with self._lock:
            return self._latency

    def _is_busy(self) -> bool:
        with self._lock:
            if time.monotonic() < self._busy_until:
                return True
            return self._busy_share > 0 and self._random.random() < self._busy_share

    def _drop_decision(self) -> Optional[str]:
        """Return None, "before" or "after" (accept) for the current data request."""
        with self._lock:
            if self._drop_share > 0 and self._random.random() < self._drop_share:
                return "after" if self._drop_after_accept else "before"
            return None

    def _take_never_ack(self) -> bool:
        with self._lock:
            if self._never_ack_all:
                return True
            if self._never_ack_left > 0:
                self._never_ack_left -= 1
                return True
            return False

    def _health(self) -> int:
        with self._lock:
            if self._health_code == 17 and time.monotonic() < self._busy_until:
                return 18  # Splunk answers data with "Server is busy" (9) when its queues are full, health with 18
            return self._health_code


def _share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"share must be within 0..1, not {value}")
    return value


@dataclass
class _Channel:
    next_ack_id: int = 0
    # ackId -> monotonic time at which it reads true (math.inf: never).
    pending: Dict[int, float] = field(default_factory=dict)


class _Rejection(Exception):
    def __init__(self, code: int, invalid_event_number: Optional[int] = None) -> None:
        super().__init__(code)
        self.code = code
        self.invalid_event_number = invalid_event_number


class HecEmulator:
    """A Splunk HEC endpoint on loopback.

    Arguments:
        host: Address to bind (loopback only).
        port: Port; 0 picks a free one (see :attr:`url` after :meth:`start`).
        tokens: token -> {"ack": bool, "indexes": list|None, "disabled": bool, "default_index": str}.
        ack_delay: Seconds after acceptance before an ackId reads true ("indexed").
        max_content_length: ``limits.conf [http_input] max_content_length``; larger bodies get HTTP 413.
        max_event_size: ``inputs.conf [http] maxEventSize``; larger envelopes are a parsing error (code 6).
        tls: Serve HTTPS with a self-signed certificate made at run time.
        partial_batches: When an envelope in a batch is invalid, keep the envelopes before it (as
            Splunk indexes them) and answer with the error and ``invalid-event-number``. False makes
            the request all-or-nothing.
        record_path: Also append each accepted event as one JSON line to this file.
        seed: Seed of the random choices of share-based faults.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Optional[Dict[str, Dict[str, Any]]] = None,
        ack_delay: float = 0.0,
        max_content_length: int = 838860800,
        max_event_size: int = 5 * 1024 * 1024,
        tls: bool = False,
        partial_batches: bool = True,
        record_path: Optional[str] = None,
        seed: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.ack_delay = ack_delay
        self.max_content_length = max_content_length
        self.max_event_size = max_event_size
        self.tls = tls
        self.partial_batches = partial_batches
        self.record_path = record_path
        self.faults = HecFaults(seed)
        self._lock = threading.Lock()
        self._events_changed = threading.Condition(self._lock)
        self._tokens: Dict[str, TokenConfig] = {}
        for token, settings in (tokens or {}).items():
            self.set_token(token, **settings)
        self._events: List[Dict[str, Any]] = []
        self._channels: Dict[str, _Channel] = {}
        self._counters: Counter = Counter()
        self._request_seq = 0
        self._server: Optional[_HecHttpServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> "HecEmulator":
        """Bind and serve in a background thread. Returns self."""
        context = server_context() if self.tls else None
        self._stopping.clear()
        self._server = _HecHttpServer((self.host, self.port), self, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"hec-emulator-{self.port}", daemon=True)
        self._thread.start()
        logger.info("action=hec_emulator_started url=%s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "HecEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8088`` (no path)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    # ---------------------------------------------------------------------------------- inspection
    def set_token(self, token: str, ack: bool = False, indexes: Optional[Iterable[str]] = None,
                  disabled: bool = False, default_index: Optional[str] = None) -> None:
        """Add or replace a token (takes effect on the next request)."""
        config = TokenConfig(ack=ack, indexes=list(indexes) if indexes is not None else None,
                             disabled=disabled, default_index=default_index)
        with self._lock:
            self._tokens[token] = config

    def remove_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def events(self) -> List[Dict[str, Any]]:
        """Every accepted event in arrival order: the envelope as received plus ``_ack_id`` (None
        without ack), ``_seq`` (0-based arrival order), ``_request`` (request number), ``_channel``,
        ``_token`` and ``_endpoint`` ("event" or "raw")."""
        with self._lock:
            return [dict(event) for event in self._events]

    def wait_for_events(self, count: int, timeout: float) -> List[Dict[str, Any]]:
        """Wait until at least ``count`` events were accepted; return them (maybe fewer on timeout)."""
        deadline = time.monotonic() + timeout
        with self._events_changed:
            while len(self._events) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._events_changed.wait(remaining)
            return [dict(event) for event in self._events]

    @property
    def requests(self) -> Dict[str, int]:
        """Counters snapshot: ``total``, per endpoint (``event``, ``raw``, ``ack``, ``health``),
        ``accepted``, ``accepted_events``, ``busy``, ``dropped``, ``code_<n>`` and ``status_<n>``."""
        with self._lock:
            return dict(self._counters)

    def pending_acks(self) -> int:
        """AckIds handed out and not yet reported true to a client."""
        with self._lock:
            return sum(len(channel.pending) for channel in self._channels.values())

    # ------------------------------------------------------------------------------ request logic
    def _count(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._counters[key] += 1

    def _token(self, token: str) -> Optional[TokenConfig]:
        with self._lock:
            return self._tokens.get(token)

    def _accept(self, token: str, config: TokenConfig, channel: Optional[str], endpoint: str,
                envelopes: List[Dict[str, Any]], with_ack_id: bool) -> Optional[int]:
        """Record envelopes atomically; return the ackId when the token uses ack and ``with_ack_id``."""
        never = config.ack and with_ack_id and self.faults._take_never_ack()
        with self._lock:
            ack_id: Optional[int] = None
            if config.ack and with_ack_id and channel is not None:
                state = self._channels.setdefault(channel, _Channel())
                ack_id = state.next_ack_id
                state.next_ack_id += 1
                state.pending[ack_id] = math.inf if never else time.monotonic() + self.ack_delay
            self._request_seq += 1
            recorded = []
            for envelope in envelopes:
                event = dict(envelope)
                event.update({"_ack_id": ack_id, "_seq": len(self._events), "_request": self._request_seq,
                              "_channel": channel, "_token": token, "_endpoint": endpoint})
                self._events.append(event)
                recorded.append(event)
            self._counters["accepted"] += 1
            self._counters["accepted_events"] += len(envelopes)
            if self.record_path and recorded:
                with open(self.record_path, "a", encoding="utf-8") as record:
                    for event in recorded:
                        record.write(json.dumps(event, ensure_ascii=False) + "\n")
            self._events_changed.notify_all()
            return ack_id

    def _query_acks(self, channel: str, ack_ids: List[int]) -> Dict[str, bool]:
        """Report each ackId; a true ack is consumed (a second query reads false), as in Splunk."""
        now = time.monotonic()
        result: Dict[str, bool] = {}
        with self._lock:
            state = self._channels.get(channel)
            for ack_id in ack_ids:
                ready_at = state.pending.get(ack_id) if state else None
                done = ready_at is not None and now >= ready_at
                if done and state is not None:
                    del state.pending[ack_id]
                result[str(ack_id)] = done
        return result

    def _validate_envelopes(self, body: bytes, config: TokenConfig) -> Tuple[List[Dict[str, Any]], Optional[_Rejection]]:
        """Parse concatenated JSON envelopes; return the valid prefix and the first rejection, if any."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return [], _Rejection(6, 0)
        decoder = json.JSONDecoder()
        accepted: List[Dict[str, Any]] = []
        position, number = 0, 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position >= len(text):
                break
            try:
                envelope, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                return accepted, _Rejection(6, number)
            size = len(text[position:end].encode("utf-8"))
            position = end
            rejection = self._check_envelope(envelope, size, config)
            if rejection is not None:
                return accepted, _Rejection(rejection, number)
            accepted.append(envelope)
            number += 1
        if not accepted:
            return [], _Rejection(5)
        return accepted, None

    def _check_envelope(self, envelope: Any, size: int, config: TokenConfig) -> Optional[int]:
        if not isinstance(envelope, dict):
            return 6
        if size > self.max_event_size:
            return 6
        if "event" not in envelope:
            return 12
        event = envelope["event"]
        if event is None or (isinstance(event, str) and not event.strip()):
            return 13
        if "time" in envelope and not _is_epoch(envelope["time"]):
            return 6
        for key in ENVELOPE_METADATA:
            if key in envelope and not isinstance(envelope[key], str):
                return 6
        if "fields" in envelope and not _valid_indexed_fields(envelope["fields"]):
            return 15
        if not config.allows(config.effective_index(envelope.get("index"))):
            return 7
        return None


def _is_epoch(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _valid_indexed_fields(fields: Any) -> bool:
    """Indexed fields must be a flat object of scalars or lists of scalars."""
    if not isinstance(fields, dict):
        return False
    scalar = (str, int, float)
    for value in fields.values():
        if isinstance(value, list):
            if not all(isinstance(item, scalar) for item in value):
                return False
        elif not isinstance(value, scalar):
            return False
    return True


class _HecHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], emulator: HecEmulator,
                 ssl_context: Optional[ssl.SSLContext]) -> None:
        self.emulator = emulator
        self.ssl_context = ssl_context
        self._open: Set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _HecHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the per-connection thread, so a slow TLS handshake never blocks the acceptor.
        if self.ssl_context is not None:
            try:
                request = wrap_accepted(self.ssl_context, request, timeout=10)
            except (ssl.SSLError, OSError):
                return
        with self._open_lock:
            self._open.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            if self.ssl_context is not None:
                request.close()

    def close_open_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HecHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Splunkd"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # headers and body are separate writes; Nagle would add 40 ms
    server: _HecHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        logger.debug("action=hec_request %s", format % args)

    @property
    def emulator(self) -> HecEmulator:
        return self.server.emulator

    # -------------------------------------------------------------------------------- plumbing
    def _reply(self, status: int, payload: Dict[str, Any], close: bool = False) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.emulator._count(f"status_{status}")

    def _reply_code(self, code: int, invalid_event_number: Optional[int] = None,
                    status: Optional[int] = None, ack_id: Optional[int] = None) -> None:
        http_status, text = HEC_REPLIES[code]
        payload: Dict[str, Any] = {"text": text, "code": code}
        if invalid_event_number is not None:
            payload["invalid-event-number"] = invalid_event_number
        if ack_id is not None:
            payload["ackId"] = ack_id
        self.emulator._count(f"code_{code}")
        self._reply(status or http_status, payload)

    def _drop(self) -> None:
        """Close the connection without any response bytes."""
        self.emulator._count("dropped")
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _delay(self) -> None:
        seconds = self.emulator.faults._latency_seconds()
        if seconds > 0:
            self.emulator._stopping.wait(seconds)

    def _read_body(self) -> Optional[bytes]:
        """Read the body; answer 411/413 and return None if it cannot be taken."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                # Chunked uploads are not emulated; clients in this project always send a length.
                self._reply(411, {"text": "Length Required"}, close=True)
                return None
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self._reply(400, {"text": "Invalid Content-Length"}, close=True)
            return None
        if length > self.emulator.max_content_length:
            # The body is not read, so the connection cannot be reused.
            self._reply(413, {"text": f"Content-Length of {length} too large "
                                      f"(maximum is {self.emulator.max_content_length})"}, close=True)
            return None
        return self.rfile.read(length)

    def _query(self) -> Dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def _authenticate(self, query: Dict[str, str]) -> Optional[Tuple[str, TokenConfig]]:
        """Return (token, config), or answer with codes 1/2/3/4/16 and return None."""
        if "token" in query:
            self._reply_code(16)
            return None
        header = self.headers.get("Authorization")
        if header is None:
            self._reply_code(2)
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "splunk" or not token:
            self._reply_code(3)
            return None
        config = self.emulator._token(token)
        if config is None:
            self._reply_code(4)
            return None
        if config.disabled:
            self._reply_code(1)
            return None
        return token, config

    def _channel(self, query: Dict[str, str], required: bool) -> Tuple[bool, Optional[str]]:
        """Return (ok, channel); answer code 10/11 when a required channel is missing or not a GUID."""
        channel = self.headers.get("X-Splunk-Request-Channel") or query.get("channel")
        if channel is None:
            if required:
                self._reply_code(10)
                return False, None
            return True, None
        try:
            uuid.UUID(channel)
        except ValueError:
            self._reply_code(11)
            return False, None
        return True, channel.lower()

    # -------------------------------------------------------------------------------- endpoints
    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler API
        self.emulator._count("total")
        path = urlsplit(self.path).path.rstrip("/")
        self._delay()
        if path in HEALTH_PATHS:
            self._health()
            return
        self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler API
        self.emulator._count("total")
        path = urlsplit(self.path).path.rstrip("/")
        self._delay()
        body = self._read_body()
        if body is None:
            return
        if path in EVENT_PATHS:
            self._data(body, "event")
        elif path in RAW_PATHS:
            self._data(body, "raw")
        elif path in ACK_PATHS:
            self._ack(body)
        else:
            self._reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def _health(self) -> None:
        self.emulator._count("health")
        header = self.headers.get("Authorization")
        if header is not None:
            token = header.strip().partition(" ")[2].strip()
            if self.emulator._token(token) is None:
                self._reply_code(4, status=400)
                return
        self._reply_code(self.emulator.faults._health())

    def _data(self, body: bytes, endpoint: str) -> None:
        emulator = self.emulator
        emulator._count(endpoint)
        query = self._query()
        auth = self._authenticate(query)
        if auth is None:
            return
        token, config = auth
        drop = emulator.faults._drop_decision()
        if drop == "before":
            self._drop()
            return
        if emulator.faults._is_busy():
            emulator._count("busy")
            self._reply_code(9)
            return
        ok, channel = self._channel(query, required=config.ack or endpoint == "raw")
        if not ok:
            return
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                self._reply_code(6, 0)
                return
        if endpoint == "raw":
            envelopes, rejection = self._raw_envelopes(body, query, config)
        else:
            envelopes, rejection = emulator._validate_envelopes(body, config)
        if rejection is not None:
            if envelopes and emulator.partial_batches:
                emulator._accept(token, config, channel, endpoint, envelopes, with_ack_id=False)
            self._reply_code(rejection.code, rejection.invalid_event_number)
            return
        ack_id = emulator._accept(token, config, channel, endpoint, envelopes, with_ack_id=True)
        if drop == "after":
            self._drop()
            return
        self._reply_code(0, ack_id=ack_id)

    def _raw_envelopes(self, body: bytes, query: Dict[str, str],
                       config: TokenConfig) -> Tuple[List[Dict[str, Any]], Optional[_Rejection]]:
        """Break raw text into events on newlines (Splunk's default LINE_BREAKER); metadata comes from the query."""
        text = body.decode("utf-8", errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return [], _Rejection(5)
        if not config.allows(config.effective_index(query.get("index"))):
            return [], _Rejection(7)
        metadata = {key: query[key] for key in ENVELOPE_METADATA if key in query}
        return [dict(metadata, event=line) for line in lines], None

    def _ack(self, body: bytes) -> None:
        self.emulator._count("ack")
        query = self._query()
        auth = self._authenticate(query)
        if auth is None:
            return
        _, config = auth
        if not config.ack:
            self._reply_code(14)
            return
        ok, channel = self._channel(query, required=True)
        if not ok or channel is None:
            return
        try:
            request = json.loads(body.decode("utf-8"))
            ack_ids = [int(ack_id) for ack_id in request["acks"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            self._reply_code(6)
            return
        self._reply(200, {"acks": self.emulator._query_acks(channel, ack_ids)})
