"""HTTP front end of the SLS emulator and the ``SlsEmulator`` facade tests use.

One ``ThreadingHTTPServer`` speaking HTTP/1.1 keep-alive. Every response carries Content-Length,
lowercase ``x-log-*`` headers and never Content-Encoding (the SDK decompresses by
``x-log-compresstype`` only). Request targets may be origin-form (``/logstores``) or absolute-form
(``http://proj.host:port/logstores``, i.e. the emulator used as an HTTP proxy).
"""

from __future__ import annotations

import collections
import hashlib
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Deque, Dict, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from ..sts.tokens import DEFAULT_ISSUER_KEY, TokenIssuer
from .auth import AuthFailure, Authenticator
from .faults import Faults
from .protobuf import ProtobufError, count_logs, encode_log_group_list
from .state import DEFAULT_MAX_CONSUMER_GROUPS, SlsError, SlsState

try:  # lz4 is in the test venv; a bare interpreter still serves deflate and uncompressed bodies.
    import lz4.block as lz4_block
except ImportError:  # pragma: no cover - depends on the interpreter
    lz4_block = None

LOGGER = logging.getLogger("tests.emulators.sls")

# Deflate level for pull responses: the client cannot see the level, and 1 keeps benchmarks server-light.
_DEFLATE_LEVEL = 1


@dataclass(frozen=True)
class RequestRecord:
    """One served request, as kept in ``SlsEmulator.request_log``."""

    api: str
    method: str
    path: str
    params: Dict[str, str]
    project: str
    status: int
    error_code: str
    access_key_id: str
    user_agent: str
    time: float


class _Reply(Exception):
    """Internal: a finished answer (status, body, extra headers)."""

    def __init__(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


def _route(method: str, parts: Sequence[str], params: Mapping[str, str]) -> Tuple[str, Dict[str, str]]:
    """Map a request to an API name and its path arguments.

    Raises:
        SlsError: the request matches no SLS API the emulator serves.
    """
    count = len(parts)
    if count == 0:
        api = {"POST": "create_project", "GET": "get_project", "DELETE": "delete_project"}.get(method)
        if api:
            return api, {}
    elif parts[0] == "logstores":
        if count == 1:
            api = {"POST": "create_logstore", "GET": "list_logstores"}.get(method)
            if api:
                return api, {}
        elif count == 2:
            api = {"GET": "get_logstore", "DELETE": "delete_logstore"}.get(method)
            if api:
                return api, {"logstore": parts[1]}
        elif parts[2] == "shards":
            args = {"logstore": parts[1]}
            if count == 3 and method == "GET":
                return "list_shards", args
            if count == 4 and method == "POST" and parts[3] in ("lb", "route"):
                args["target"] = parts[3]
                return "put_logs", args
            if count == 4:
                args["shard"] = parts[3]
                if method == "GET":
                    api = {"cursor": "get_cursor", "cursor_time": "get_cursor_time",
                           "log": "pull_logs"}.get(params.get("type", ""))
                    if api:
                        return api, args
                if method == "POST":
                    api = {"split": "split_shard", "merge": "merge_shard"}.get(params.get("action", ""))
                    if api:
                        return api, args
        elif parts[2] == "consumergroups":
            args = {"logstore": parts[1]}
            if count == 3:
                api = {"GET": "list_consumer_groups", "POST": "create_consumer_group"}.get(method)
                if api:
                    return api, args
            elif count == 4:
                args["group"] = parts[3]
                if method == "POST":
                    api = {"heartbeat": "heartbeat", "checkpoint": "update_checkpoint"}.get(params.get("type", ""))
                else:
                    api = {"GET": "get_checkpoint", "PUT": "update_consumer_group",
                           "DELETE": "delete_consumer_group"}.get(method)
                if api:
                    return api, args
    raise SlsError(400, "ParameterInvalid", "the emulator does not serve %s /%s" % (method, "/".join(parts)))


def project_from_host(host: str) -> str:
    """The project named by a Host header: its first label, unless the host is an IP or localhost."""
    name = host.strip().lower()
    if name.startswith("["):
        return ""
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    try:
        ipaddress.ip_address(name)
        return ""
    except ValueError:
        pass
    if name == "localhost" or "." not in name:
        return ""
    return name.split(".", 1)[0]


def _shard_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SlsError(400, "ShardNotExist", "Shard %s does not exist" % text) from None


def _load_json(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeError):
        raise SlsError(400, "JsonInfoInvalid", "request body is not valid JSON") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sls-emulator"
    emulator: "SlsEmulator"  # set on the per-emulator subclass

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        LOGGER.debug("action=http " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        emulator = self.emulator
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "malformed request body framing")
            self.close_connection = True
            return
        target = urlsplit(self.path)
        path = unquote(target.path) or "/"
        pairs = parse_qsl(target.query, keep_blank_values=True)
        params = dict(pairs)
        headers = {name.lower(): value for name, value in self.headers.items()}
        host = headers.get("host") or target.netloc
        project = project_from_host(host)
        request_id = uuid.uuid4().hex[:24].upper()
        api, key_id = "unknown", ""
        try:
            api, args = _route(self.command, [p for p in path.split("/") if p], params)
            try:
                key_id = emulator.authenticator.verify(self.command, path, pairs, headers, body)
            except AuthFailure as failure:
                raise SlsError(failure.status, failure.code, failure.message) from None
            if emulator.faults.latency > 0:
                time.sleep(emulator.faults.latency)
            fault = emulator.faults.decide(api)
            if fault is not None and fault.drop:
                emulator._record(api, self.command, path, params, project, 0, "drop", key_id, headers)
                self.close_connection = True
                return
            if fault is not None:
                raise SlsError(fault.status, fault.code, fault.message)
            self._check_md5(headers, body)
            try:
                reply = emulator._dispatch(api, project, args, params, headers, body)
            except (ValueError, TypeError, KeyError) as error:  # malformed numbers or JSON fields
                raise SlsError(400, "ParameterInvalid", "invalid request: %s" % error) from None
        except SlsError as error:
            reply = _Reply(error.status, _json({"errorCode": error.code, "errorMessage": error.message,
                                               "requestId": request_id}),
                           {"Content-Type": "application/json"})
            emulator._record(api, self.command, path, params, project, error.status, error.code, key_id, headers)
        else:
            emulator._record(api, self.command, path, params, project, reply.status, "", key_id, headers)
        self._send(reply, request_id)

    def _read_body(self) -> bytes:
        """The whole request body, sized by Content-Length or sent chunked (as Node.js sends a PUT or POST).

        Every byte of the request is consumed, the chunked terminator of a bodiless PUT included, so the next
        request on the keep-alive connection starts where it should and gets exactly one response.

        Raises:
            ValueError: the framing is malformed.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                if self.rfile.readline(1024) not in (b"\r\n", b"\n"):
                    raise ValueError("a chunk is not followed by CRLF")
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _check_md5(headers: Mapping[str, str], body: bytes) -> None:
        expected = headers.get("content-md5")
        if body and expected and expected.upper() != hashlib.md5(body).hexdigest().upper():
            raise SlsError(400, "InvalidContentMD5", "Content-MD5 does not match the body")

    def _send(self, reply: _Reply, request_id: str) -> None:
        self.send_response(reply.status)
        self.send_header("x-log-requestid", request_id)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


class _Server(ThreadingHTTPServer):
    """Tracks open connections so ``stop`` can close idle keep-alive sockets and join their threads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], handler: type):
        self.connections: Set[socket.socket] = set()
        self.connection_threads: Set[threading.Thread] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: Tuple[str, int]) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="sls-emulator-conn", daemon=True)
        with self.connections_lock:
            self.connections.add(request)
            self.connection_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: socket.socket, client_address: Tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)
                self.connection_threads.discard(threading.current_thread())

    def handle_error(self, request: object, client_address: object) -> None:
        LOGGER.debug("action=connection_error client=%s", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        with self.connections_lock:
            sockets = list(self.connections)
            threads = list(self.connection_threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class SlsEmulator:
    """A local Alibaba Cloud Log Service.

    Arguments:
        host: address to bind (keep it on 127.0.0.x).
        port: port to bind; 0 picks a free one.
        access_keys: {AccessKeyId: AccessKeySecret} accepted by signature verification.
        sts_tokens: {AccessKeyId: token}; those keys must send ``x-acs-security-token``.
        max_consumer_groups: consumer groups allowed per logstore (real SLS: 30).
        strict_heartbeat: answer 400 NotExistConsumerWithBody to unknown consumers reporting shards.
        fault_seed: seed of the random fault switches (reproducible runs).
        sts_issuer_key: the key the STS and metadata twins seal their temporary keys with; those keys are accepted
            (``x-acs-security-token`` signed) until they expire, then answered 401 SecurityTokenExpired.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 access_keys: Optional[Mapping[str, str]] = None,
                 sts_tokens: Optional[Mapping[str, str]] = None,
                 max_consumer_groups: int = DEFAULT_MAX_CONSUMER_GROUPS,
                 strict_heartbeat: bool = False, fault_seed: int = 0,
                 request_log_size: int = 100_000, sts_issuer_key: str = DEFAULT_ISSUER_KEY):
        self.host = host
        self._requested_port = port
        self.authenticator = Authenticator(access_keys or {}, sts_tokens, TokenIssuer(sts_issuer_key))
        self.state = SlsState(max_consumer_groups=max_consumer_groups, strict_heartbeat=strict_heartbeat)
        self.faults = Faults(fault_seed)
        self._log: Deque[RequestRecord] = collections.deque(maxlen=request_log_size)
        self._counters: Dict[str, int] = collections.Counter()
        self._log_lock = threading.Lock()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "SlsEmulator":
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        handler = type("SlsHandler", (_Handler,), {"emulator": self})
        self._server = _Server((self.host, self._requested_port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sls-emulator", daemon=True)
        self._thread.start()
        LOGGER.info("action=emulator_started url=%s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close open keep-alive connections and join every server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "SlsEmulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    # ---- test API: setup ----------------------------------------------------------------------------

    @property
    def max_consumer_groups(self) -> int:
        return self.state.max_consumer_groups

    @max_consumer_groups.setter
    def max_consumer_groups(self, value: int) -> None:
        self.state.max_consumer_groups = value

    def create_project(self, project: str, description: str = "") -> None:
        self.state.create_project(project, description)

    def create_logstore(self, project: str, logstore: str, shard_count: int = 2, ttl: int = 30) -> None:
        self.state.create_logstore(project, logstore, shard_count, ttl)

    def put_log_groups(self, project: str, logstore: str, shard_id: int, log_groups: Sequence[bytes],
                       receive_time: Optional[int] = None) -> None:
        """Append serialized LogGroups to a shard directly (no HTTP), stamped with ``receive_time``."""
        self.state.append(project, logstore, shard_id, list(log_groups), receive_time)

    def split_shard(self, project: str, logstore: str, shard_id: int, key: Optional[str] = None) -> List[dict]:
        return self.state.split_shard(project, logstore, shard_id, key)

    def merge_shard(self, project: str, logstore: str, shard_id: int) -> List[dict]:
        return self.state.merge_shard(project, logstore, shard_id)

    def expire(self, project: str, logstore: str, shard_id: int, count: int) -> None:
        """Drop the ``count`` oldest log groups; a cursor before them becomes InvalidCursor."""
        self.state.expire(project, logstore, shard_id, count)

    def expire_security_tokens(self) -> None:
        """Treat every temporary key issued so far as expired (SLS answers 401 SecurityTokenExpired to it)."""
        self.authenticator.expired_before = time.time()

    def advance_clock(self, seconds: float) -> None:
        """Fast-forward the consumer-liveness clock (consumers time out without waiting)."""
        self.state.advance_clock(seconds)

    # ---- test API: inspection -----------------------------------------------------------------------

    def shards(self, project: str, logstore: str) -> List[dict]:
        return self.state.list_shards(project, logstore)

    def begin_cursor(self, project: str, logstore: str, shard_id: int) -> str:
        return self.state.cursor_for(project, logstore, shard_id, "begin")

    def end_cursor(self, project: str, logstore: str, shard_id: int) -> str:
        return self.state.cursor_for(project, logstore, shard_id, "end")

    def log_group_count(self, project: str, logstore: str, shard_id: int) -> int:
        """Log groups currently retained in the shard."""
        with self.state.lock:
            return len(self.state.logstore(project, logstore).shard(shard_id).groups)

    def log_groups(self, project: str, logstore: str, shard_id: int) -> List[bytes]:
        """The retained serialized LogGroups of a shard, oldest first."""
        with self.state.lock:
            return list(self.state.logstore(project, logstore).shard(shard_id).groups)

    def checkpoints(self, project: str, logstore: str, group: str) -> Dict[int, Dict[str, object]]:
        """{shard_id: {"checkpoint", "consumer", "updateTime" (µs)}} for every shard of the logstore."""
        rows = self.state.get_checkpoints(project, logstore, group, None)
        return {row["shard"]: {"checkpoint": row["checkpoint"], "consumer": row["consumer"],
                               "updateTime": row["updateTime"]} for row in rows}

    def owners(self, project: str, logstore: str, group: str) -> Dict[int, str]:
        """{shard_id: owning consumer, "" when unowned}, after applying consumer timeouts."""
        with self.state.lock:
            view = self.state.consumer_view(project, logstore, group)
            shard_ids = sorted(self.state.logstore(project, logstore).shards)
            return {shard_id: view.owner.get(shard_id, "") for shard_id in shard_ids}

    def consumer_groups(self, project: str, logstore: str) -> List[dict]:
        """[{"name", "timeout", "order"}] of a logstore, as ListConsumerGroup returns them."""
        return self.state.list_consumer_groups(project, logstore)

    def consumers(self, project: str, logstore: str, group: str) -> List[str]:
        """Live consumers of a group, after applying timeouts."""
        with self.state.lock:
            return sorted(self.state.consumer_view(project, logstore, group).last_seen)

    def revoking(self, project: str, logstore: str, group: str) -> Set[int]:
        """Shards being taken away from their owner (not returned to it, not yet given to anyone)."""
        with self.state.lock:
            return set(self.state.consumer_view(project, logstore, group).revoking)

    @property
    def request_log(self) -> List[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def counters(self) -> Dict[str, int]:
        """{api: number of requests served, including failed ones}."""
        with self._log_lock:
            return dict(self._counters)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()
            self._counters.clear()

    def _record(self, api: str, method: str, path: str, params: Dict[str, str], project: str,
                status: int, error_code: str, key_id: str, headers: Mapping[str, str]) -> None:
        record = RequestRecord(api, method, path, params, project, status, error_code, key_id,
                               headers.get("user-agent", ""), time.time())
        with self._log_lock:
            self._log.append(record)
            self._counters[api] += 1

    # ---- API implementations ------------------------------------------------------------------------

    def _dispatch(self, api: str, project: str, args: Dict[str, str], params: Dict[str, str],
                  headers: Dict[str, str], body: bytes) -> _Reply:
        state = self.state
        if api == "create_project":
            request = _load_json(body) or {}
            name = request.get("projectName") or project  # type: ignore[union-attr]
            state.create_project(name, request.get("description", ""))  # type: ignore[union-attr]
            return _Reply(200)
        if not project:
            raise SlsError(404, "ProjectNotExist", "The Project does not exist : (no project in Host)")
        with state.lock:
            state.project(project)
        handler = getattr(self, "_api_" + api)
        return handler(project, args, params, headers, body)

    def _api_get_project(self, project: str, *_: object) -> _Reply:
        with self.state.lock:
            owner = self.state.project(project)
            return _Reply(200, _json({
                "projectName": owner.name, "description": owner.description, "status": "Normal",
                "region": "cn-emulator", "owner": "0", "createTime": str(owner.create_time),
                "lastModifyTime": str(owner.create_time)}), {"Content-Type": "application/json"})

    def _api_delete_project(self, project: str, *_: object) -> _Reply:
        self.state.delete_project(project)
        return _Reply(200)

    def _api_create_logstore(self, project: str, args: Dict[str, str], params: Dict[str, str],
                             headers: Dict[str, str], body: bytes) -> _Reply:
        request = _load_json(body)
        if not isinstance(request, dict) or not request.get("logstoreName"):
            raise SlsError(400, "LogStoreInfoInvalid", "logstoreName is required")
        self.state.create_logstore(project, request["logstoreName"], int(request.get("shardCount", 2)),
                                   int(request.get("ttl", 30)), request)
        return _Reply(200)

    def _api_list_logstores(self, project: str, args: Dict[str, str], params: Dict[str, str],
                            *_: object) -> _Reply:
        with self.state.lock:
            names = sorted(self.state.project(project).logstores)
        wanted = params.get("logstoreName", "")
        names = [n for n in names if wanted in n]
        offset, size = int(params.get("offset", 0) or 0), int(params.get("size", 100) or 100)
        page = names[offset:offset + size]
        return _Reply(200, _json({"count": len(page), "total": len(names), "logstores": page}),
                      {"Content-Type": "application/json"})

    def _api_get_logstore(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        with self.state.lock:
            store = self.state.logstore(project, args["logstore"])
            config = {"enable_tracking": False, "appendMeta": False, "autoSplit": False,
                      "maxSplitShard": 64, "telemetryType": "", "mode": "standard"}
            config.update({k: v for k, v in store.config.items() if k in config})
            config.update({"logstoreName": store.name, "ttl": store.ttl,
                           "shardCount": sum(1 for s in store.shards.values() if s.status == "readwrite"),
                           "createTime": store.create_time, "lastModifyTime": store.create_time})
        return _Reply(200, _json(config), {"Content-Type": "application/json"})

    def _api_delete_logstore(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        self.state.delete_logstore(project, args["logstore"])
        return _Reply(200)

    def _api_list_shards(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        return _Reply(200, _json(self.state.list_shards(project, args["logstore"])),
                      {"Content-Type": "application/json"})

    def _api_split_shard(self, project: str, args: Dict[str, str], params: Dict[str, str], *_: object) -> _Reply:
        result = self.state.split_shard(project, args["logstore"], _shard_id(args["shard"]), params.get("key"))
        return _Reply(200, _json(result), {"Content-Type": "application/json"})

    def _api_merge_shard(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        result = self.state.merge_shard(project, args["logstore"], _shard_id(args["shard"]))
        return _Reply(200, _json(result), {"Content-Type": "application/json"})

    def _api_put_logs(self, project: str, args: Dict[str, str], params: Dict[str, str],
                      headers: Dict[str, str], body: bytes) -> _Reply:
        compress_type = headers.get("x-log-compresstype", "").lower()
        try:
            raw_size = int(headers.get("x-log-bodyrawsize", len(body)))
        except ValueError:
            raise SlsError(400, "InvalidBodyRawSize", "x-log-bodyrawsize is not a number") from None
        raw = _decompress(body, compress_type, raw_size)
        if len(raw) != raw_size:
            raise SlsError(400, "InvalidBodyRawSize", "x-log-bodyrawsize %d does not match the body" % raw_size)
        try:
            if count_logs(raw) == 0:
                raise SlsError(400, "PostBodyInvalid", "the log group holds no logs")
        except ProtobufError as error:
            raise SlsError(400, "PostBodyInvalid", "the body is not a LogGroup: %s" % error) from None
        hash_key = params.get("key", "") if args["target"] == "route" else None
        shard_id = self.state.pick_shard(project, args["logstore"], hash_key)
        self.state.append(project, args["logstore"], shard_id, [raw])
        return _Reply(200)

    def _api_get_cursor(self, project: str, args: Dict[str, str], params: Dict[str, str], *_: object) -> _Reply:
        cursor = self.state.cursor_for(project, args["logstore"], _shard_id(args["shard"]), params.get("from", ""))
        return _Reply(200, _json({"cursor": cursor}), {"Content-Type": "application/json"})

    def _api_get_cursor_time(self, project: str, args: Dict[str, str], params: Dict[str, str],
                             *_: object) -> _Reply:
        when = self.state.cursor_time(project, args["logstore"], _shard_id(args["shard"]), params.get("cursor", ""))
        return _Reply(200, _json({"cursor_time": when}), {"Content-Type": "application/json"})

    def _api_pull_logs(self, project: str, args: Dict[str, str], params: Dict[str, str],
                       headers: Dict[str, str], body: bytes) -> _Reply:
        if params.get("query") or params.get("processor"):
            raise SlsError(400, "ParameterInvalid", "the emulator does not run SPL queries or processors")
        shard_id = _shard_id(args["shard"])
        try:
            count = int(params.get("count", 1000))
        except ValueError:
            raise SlsError(400, "ParameterInvalid", "count is not a number") from None
        groups, next_cursor = self.state.read(project, args["logstore"], shard_id, params.get("cursor", ""),
                                              count, params.get("end_cursor", ""))
        raw = encode_log_group_list(groups)
        reply_headers = {"Content-Type": "application/x-protobuf", "x-log-cursor": next_cursor,
                         "x-log-count": str(len(groups)), "x-log-bodyrawsize": str(len(raw))}
        accepted = [e.strip().lower() for e in headers.get("accept-encoding", "").split(",")]
        if raw and "lz4" in accepted and lz4_block is not None:
            payload = lz4_block.compress(raw, store_size=False)
            reply_headers["x-log-compresstype"] = "lz4"
        elif raw and ("deflate" in accepted or "lz4" in accepted):
            # Without the lz4 module the answer falls back to deflate; the SDK follows x-log-compresstype.
            payload = zlib.compress(raw, _DEFLATE_LEVEL)
            reply_headers["x-log-compresstype"] = "deflate"
        else:
            payload = raw
        if groups:
            due = self.faults.take_split(project, args["logstore"], shard_id)
            if due is not None:
                self.state.split_shard(project, args["logstore"], shard_id, due[1])
        return _Reply(200, payload, reply_headers)

    def _api_list_consumer_groups(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        return _Reply(200, _json(self.state.list_consumer_groups(project, args["logstore"])),
                      {"Content-Type": "application/json"})

    def _api_create_consumer_group(self, project: str, args: Dict[str, str], params: Dict[str, str],
                                   headers: Dict[str, str], body: bytes) -> _Reply:
        request = _load_json(body)
        if not isinstance(request, dict) or not request.get("consumerGroup"):
            raise SlsError(400, "JsonInfoInvalid", "consumerGroup is required")
        timeout = request.get("timeout")
        if not isinstance(timeout, int) or timeout <= 0:
            raise SlsError(400, "ParameterInvalid", "timeout must be a positive integer")
        self.state.create_consumer_group(project, args["logstore"], request["consumerGroup"], timeout,
                                         bool(request.get("order", False)))
        return _Reply(200)

    def _api_update_consumer_group(self, project: str, args: Dict[str, str], params: Dict[str, str],
                                   headers: Dict[str, str], body: bytes) -> _Reply:
        request = _load_json(body)
        if not isinstance(request, dict):
            raise SlsError(400, "JsonInfoInvalid", "the body must be a JSON object")
        timeout = request.get("timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            raise SlsError(400, "ParameterInvalid", "timeout must be a positive integer")
        order = request.get("order")
        self.state.update_consumer_group(project, args["logstore"], args["group"], timeout,
                                         None if order is None else bool(order))
        return _Reply(200)

    def _api_delete_consumer_group(self, project: str, args: Dict[str, str], *_: object) -> _Reply:
        self.state.delete_consumer_group(project, args["logstore"], args["group"])
        return _Reply(200)

    def _api_heartbeat(self, project: str, args: Dict[str, str], params: Dict[str, str],
                       headers: Dict[str, str], body: bytes) -> _Reply:
        reported = _load_json(body)
        if reported is None:
            reported = []
        if not isinstance(reported, list) or not all(isinstance(s, int) for s in reported):
            raise SlsError(400, "ParameterInvalid", "the heartbeat body must be a JSON array of shard ids")
        consumer = params.get("consumer", "")
        if not consumer:
            raise SlsError(400, "ParameterInvalid", "consumer is required")
        held = self.state.heartbeat(project, args["logstore"], args["group"], consumer, reported)
        return _Reply(200, _json(held), {"Content-Type": "application/json"})

    def _api_get_checkpoint(self, project: str, args: Dict[str, str], params: Dict[str, str],
                            *_: object) -> _Reply:
        shard = params.get("shard")
        shard_id = None if shard in (None, "", "-1") else _shard_id(shard)  # type: ignore[arg-type]
        rows = self.state.get_checkpoints(project, args["logstore"], args["group"], shard_id)
        return _Reply(200, _json(rows), {"Content-Type": "application/json"})

    def _api_update_checkpoint(self, project: str, args: Dict[str, str], params: Dict[str, str],
                               headers: Dict[str, str], body: bytes) -> _Reply:
        request = _load_json(body)
        if not isinstance(request, dict) or "shard" not in request or "checkpoint" not in request:
            raise SlsError(400, "JsonInfoInvalid", "shard and checkpoint are required")
        force = params.get("forceSuccess", "").lower() == "true"
        consumer = params.get("consumer", "")
        if not consumer and not force:
            raise SlsError(400, "ParameterInvalid", "a checkpoint without consumer needs forceSuccess=true")
        self.state.update_checkpoint(project, args["logstore"], args["group"], consumer,
                                     int(request["shard"]), str(request["checkpoint"]), force)
        return _Reply(200)


def _decompress(body: bytes, compress_type: str, raw_size: int) -> bytes:
    if compress_type in ("", "none"):
        return body
    if compress_type == "lz4":
        if lz4_block is None:
            raise SlsError(400, "InvalidCompressType", "lz4 is not available in this emulator's Python")
        try:
            return lz4_block.decompress(body, uncompressed_size=raw_size)
        except Exception:  # lz4 raises LZ4BlockError, a plain Exception subclass
            raise SlsError(400, "InvalidBodyRawSize", "the lz4 body does not decompress to x-log-bodyrawsize") from None
    if compress_type in ("deflate", "gzip"):
        try:
            return zlib.decompress(body)
        except zlib.error:
            raise SlsError(400, "InvalidCompressType", "the body is not deflate data") from None
    raise SlsError(400, "InvalidCompressType", "compress type %s is not supported" % compress_type)


__all__ = ["SlsEmulator", "RequestRecord", "project_from_host"]
