"""The HTTP plumbing the STS and metadata twins share: a threaded HTTP/1.1 server on a free loopback port that
answers every request with exactly one response carrying Content-Length, and a request log."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Deque, Dict, List, Optional, Tuple, TypeVar

__all__ = ["TwinServer", "TwinLifecycle", "Answer", "Served"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Served:
    """One request as the twin saw it (``detail`` is the twin's error code or its own note)."""

    method: str
    path: str
    status: int
    detail: str
    time: float


Handler = Callable[[str, str, Dict[str, str], bytes], Tuple[Answer, str]]


class TwinServer:
    """Serves ``handle(method, target, lowercase headers, body) -> (Answer, detail)`` on ``host:port``.

    ``drop_connections`` makes it close each connection without an answer (a service that is down).
    """

    def __init__(self, handle: Handler, host: str = "127.0.0.1", port: int = 0, name: str = "twin") -> None:
        self._handle = handle
        self.host = host
        self._requested_port = port
        self.name = name
        self.drop_connections = False
        self._log: Deque[Served] = collections.deque(maxlen=10_000)
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        twin = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = twin.name
            disable_nagle_algorithm = True  # headers and body leave in two writes; no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if twin.drop_connections:
                    twin._record(self.command, self.path, 0, "dropped")
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer, detail = twin._handle(self.command, self.path, headers, body)
                twin._record(self.command, self.path, answer.status, detail)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        server = ThreadingHTTPServer((self.host, self._requested_port), _Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    def _record(self, method: str, path: str, status: int, detail: str) -> None:
        with self._lock:
            self._log.append(Served(method, path, status, detail, time.time()))

    @property
    def request_log(self) -> List[Served]:
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()


Twin = TypeVar("Twin", bound="TwinLifecycle")


class TwinLifecycle:
    """start/stop, the context manager, url and port of a twin that serves through its ``http`` TwinServer."""

    http: TwinServer

    def start(self: Twin) -> Twin:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self: Twin) -> Twin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def port(self) -> int:
        return self.http.port
