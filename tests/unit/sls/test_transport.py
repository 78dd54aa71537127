"""sls/transport.py's OriginConnections against a loopback HTTP/1.1 server that counts connections and requests."""

from __future__ import annotations

import http.client
import os
import select
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest

from sls_forwarder.sls.transport import OriginConnections


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.paths: List[str] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths.append(self.path)
        if self.path == "/drop":
            self.close_connection = True  # read the request, answer nothing
            return
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/then-close":
            self.close_connection = True  # without saying so: the client keeps the connection
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _origin(server: _Server) -> OriginConnections:
    return OriginConnections("http", "127.0.0.1", server.server_address[1], timeout=5, tls=None, keep=4)


def test_a_connection_is_kept_for_the_next_request(server: _Server) -> None:
    origin = _origin(server)
    answers = [origin.request("GET", "/a", None, {}), origin.request("GET", "/b", None, {})]
    assert [(a.status, a.body) for a in answers] == [(200, b"/a"), (200, b"/b")]
    assert server.connections == 1
    origin.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(server: _Server) -> None:
    origin = _origin(server)
    origin.request("GET", "/then-close", None, {})  # answered as keep-alive, then closed by the server
    kept = [connection.sock for connection in origin._idle]
    assert kept and _wait_until_readable(kept), "the server did not close the kept connection"
    assert origin.request("GET", "/b", None, {}).body == b"/b"
    assert server.connections == 2 and server.paths == ["/then-close", "/b"]
    origin.close()


def _wait_until_readable(sockets: list) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if select.select(sockets, [], [], 0.05)[0]:
            return True
    return False


def test_a_request_left_unanswered_raises_and_is_not_sent_again(server: _Server) -> None:
    origin = _origin(server)
    origin.request("GET", "/a", None, {})  # the drop comes on a kept connection, where a resend would be tempting
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        origin.request("GET", "/drop", None, {})
    assert server.paths == ["/a", "/drop"]
    assert origin.request("GET", "/c", None, {}).body == b"/c"
    origin.close()


def test_connection_close_from_the_server_is_honoured(server: _Server) -> None:
    origin = _origin(server)
    origin.request("GET", "/close", None, {})
    origin.request("GET", "/a", None, {})
    assert server.connections == 2
    origin.close()


def test_connections_on_descriptors_above_1023_are_kept(server: _Server) -> None:
    """select() cannot watch such descriptors; an input with hundreds of shards has them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    filler = [open(os.devnull) for _ in range(1030)]
    try:
        origin = _origin(server)
        origin.request("GET", "/a", None, {})
        assert origin._idle[0].sock.fileno() > 1023  # type: ignore[union-attr]
        origin.request("GET", "/b", None, {})
        assert server.connections == 1
        origin.close()
    finally:
        for handle in filler:
            handle.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
