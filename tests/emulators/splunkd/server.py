"""A splunkd REST double: the management endpoints the add-on (through solnlib/splunklib) calls.

Served over HTTPS (self-signed, generated at run time) or HTTP, with session-key auth, in Atom XML or
``output_mode=json``: ``configs/conf-<file>``, ``properties/<file>``, ``storage/passwords``,
``server/info``, ``auth/login`` and the HEC input endpoints ``data/inputs/http``. Seeded from plain dicts.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.emulators.hec.tls import server_context, wrap_accepted

from .render import Entry, acl, atom_error, atom_feed, json_error, json_feed

logger = logging.getLogger("tests.emulators.splunkd")

# solnlib's CredentialManager chunking (what UCC's REST handlers use to store encrypted fields).
CRED_SEP = "``splunk_cred_sep``"
CRED_END_MARK = (
    "``splunk_cred_sep``S``splunk_cred_sep``P``splunk_cred_sep``L``splunk_cred_sep``"
    "U``splunk_cred_sep``N``splunk_cred_sep``K``splunk_cred_sep``"
)
CRED_CHUNK = 255
ENCRYPTED_TOKEN = "******"
HEC_APP = "splunk_httpinput"
DEFAULT_LIMITS_HTTP_INPUT = {
    "max_content_length": "838860800",
    "max_number_of_tokens": "10000",
    "max_number_of_ack_channel": "1000000",
    "max_number_of_acked_requests_pending_query": "10000000",
    "max_number_of_acked_requests_pending_query_per_ack_channel": "1000000",
    "metrics_report_interval": "60",
}


def ucc_realm(app: str, conf: str) -> str:
    """The ``storage/passwords`` realm UCC uses for encrypted fields of ``<conf>.conf``."""
    return f"__REST_CREDENTIAL__#{app}#configs/conf-{conf}"


def password_entity_name(realm: str, username: str) -> str:
    """splunkd's name of a stored credential: ``realm:username:`` with colons escaped."""
    return f"{realm.replace(':', chr(92) + ':')}:{username.replace(':', chr(92) + ':')}:"


@dataclass
class _Request:
    method: str
    segments: List[str]        # raw (still URL-encoded) path segments after the namespace
    params: Dict[str, List[str]]
    json: bool

    def one(self, key: str, default: Optional[str] = None) -> Optional[str]:
        values = self.params.get(key)
        return values[-1] if values else default

    def remainder(self, start: int) -> str:
        """The decoded entity name made of segments[start:]; names may contain (encoded) slashes."""
        return unquote("/".join(self.segments[start:]))


class _RestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SplunkdDouble:
    """splunkd's management port, reduced to what the add-on uses.

    Arguments:
        session_key: The only accepted key (``Authorization: Splunk <key>``); login also hands it out.
        app: The add-on's app name; entities are reported as owned by ``nobody`` in this app.
        confs: ``{conf_name: {stanza: {key: value}}}``; values become strings.
        passwords: ``[{"realm": ..., "username": ..., "password": ...}]`` seeded into storage/passwords.
        server_name: ``serverName`` of server/info.
        host: Address to bind (loopback).
        port: 0 picks a free port.
        tls: Serve HTTPS (splunklib's default scheme) with a generated self-signed certificate.
        version: Splunk version reported by server/info and feeds.
        users: ``{username: password}`` accepted by ``auth/login``; default ``{"admin": "changeme"}``.
        hec: Optional HEC emulator: tokens created or changed through ``data/inputs/http`` are
            registered on it, and the global HEC settings report its port and scheme.
        hec_tokens: ``{name: {"token": ..., "index": ..., "indexes": [...], "useACK": "0"|"1", "disabled": "0"|"1"}}``.
        hec_enabled: Whether HEC is globally enabled at start (``[http] disabled = 0``).
    """

    def __init__(
        self,
        session_key: str = "sk",
        app: str = "TA-aliyun-sls",
        confs: Optional[Dict[str, Dict[str, Dict[str, Any]]]] = None,
        passwords: Optional[List[Dict[str, str]]] = None,
        server_name: str = "hf1",
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        version: str = "9.4.1",
        users: Optional[Dict[str, str]] = None,
        hec: Optional[Any] = None,
        hec_tokens: Optional[Dict[str, Dict[str, Any]]] = None,
        hec_enabled: bool = True,
    ) -> None:
        self.session_key = session_key
        self.app = app
        self.server_name = server_name
        self.host = host
        self.port = port
        self.tls = tls
        self.version = version
        self.users = dict(users) if users is not None else {"admin": "changeme"}
        self.hec = hec
        self._lock = threading.RLock()
        self._confs: Dict[str, Dict[str, Dict[str, str]]] = {}
        for conf, stanzas in (confs or {}).items():
            for stanza, values in stanzas.items():
                self.set_stanza(conf, stanza, values)
        self._confs.setdefault("limits", {}).setdefault("http_input", dict(DEFAULT_LIMITS_HTTP_INPUT))
        self._passwords: Dict[str, Dict[str, str]] = {}
        for item in passwords or []:
            self.put_password(item["realm"], item.get("username") or item["name"],
                              item.get("password", item.get("clear_password", "")))
        self._http_settings: Dict[str, str] = {
            "disabled": "0" if hec_enabled else "1", "enableSSL": "1", "port": "8088",
            "useDeploymentServer": "0", "dedicatedIoThreads": "2", "maxSockets": "0", "maxThreads": "0",
        }
        self._http_tokens: Dict[str, Dict[str, Any]] = {}
        for name, settings in (hec_tokens or {}).items():
            self._create_hec_token(name, settings)
        self._calls: List[Tuple[str, str]] = []
        self._server: Optional[_SplunkdHttpServer] = None
        self._thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> "SplunkdDouble":
        context = server_context() if self.tls else None
        self._server = _SplunkdHttpServer((self.host, self.port), self, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"splunkd-double-{self.port}", daemon=True)
        self._thread.start()
        self._sync_hec_settings()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "SplunkdDouble":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>`` (or http), the ``server_uri`` splunkd hands to inputs."""
        return f"{self.scheme}://{self.host}:{self.port}"

    # ------------------------------------------------------------------------- seeding/inspection
    def set_stanza(self, conf: str, stanza: str, values: Dict[str, Any]) -> None:
        """Create or replace a stanza of ``<conf>.conf``."""
        with self._lock:
            self._confs.setdefault(conf, {})[stanza] = {key: _text(value) for key, value in values.items()}

    def stanza(self, conf: str, stanza: str) -> Optional[Dict[str, str]]:
        """A copy of a stanza as stored (encrypted fields read ``******``), or None."""
        with self._lock:
            found = self._confs.get(conf, {}).get(stanza)
            return dict(found) if found is not None else None

    def put_password(self, realm: str, username: str, password: str) -> None:
        """Store one storage/passwords entry as is (no chunking)."""
        with self._lock:
            self._passwords[password_entity_name(realm, username)] = {
                "realm": realm, "username": username, "clear_password": password}

    def passwords(self) -> List[Dict[str, str]]:
        """Every stored credential: ``{"name", "realm", "username", "clear_password"}``."""
        with self._lock:
            return [dict(item, name=name) for name, item in self._passwords.items()]

    def store_encrypted(self, conf: str, stanza: str, fields: Dict[str, str],
                        others: Optional[Dict[str, Any]] = None) -> None:
        """Store a stanza the way UCC's REST handler does with encrypted fields.

        The stanza keeps ``******`` for each encrypted key; ``storage/passwords`` gets, in realm
        ``__REST_CREDENTIAL__#<app>#configs/conf-<conf>``, the JSON of the encrypted fields under the
        stanza name, split as solnlib's CredentialManager does (``<stanza>``splunk_cred_sep``<n>`` chunks of
        255 characters, then an end-mark entry).

        Arguments:
            conf: Conf file name without ``.conf`` (``ta_aliyun_sls_account``).
            stanza: Stanza name (the account name).
            fields: Encrypted fields in clear text, e.g. ``{"access_key_secret": "..."}``.
            others: Plain fields of the stanza, e.g. ``{"access_key_id": "..."}``.
        """
        realm = ucc_realm(self.app, conf)
        blob = json.dumps(fields)
        chunks = [blob[index:index + CRED_CHUNK] for index in range(0, len(blob), CRED_CHUNK)]
        with self._lock:
            for name in [name for name, item in self._passwords.items()
                         if item["realm"] == realm and item["username"].split(CRED_SEP)[0] == stanza]:
                del self._passwords[name]
            for number, chunk in enumerate(chunks + [CRED_END_MARK], start=1):
                self.put_password(realm, f"{stanza}{CRED_SEP}{number}", chunk)
            values = dict(others or {})
            values.update({key: ENCRYPTED_TOKEN for key in fields})
            self.set_stanza(conf, stanza, values)

    def read_encrypted(self, conf: str, stanza: str) -> Optional[Dict[str, Any]]:
        """Reassemble the encrypted fields of a stanza stored UCC-style (chunked or single), or None."""
        realm = ucc_realm(self.app, conf)
        with self._lock:
            chunks: Dict[int, str] = {}
            single: Optional[str] = None
            for item in self._passwords.values():
                if item["realm"] != realm:
                    continue
                user, _, number = item["username"].partition(CRED_SEP)
                if user != stanza:
                    continue
                if number.isdigit():
                    chunks[int(number)] = item["clear_password"]
                else:
                    single = item["clear_password"]
        if chunks:
            blob = ""
            for number in sorted(chunks):
                if chunks[number] == CRED_END_MARK:
                    break
                blob += chunks[number]
            return json.loads(blob)
        return json.loads(single) if single is not None else None

    def hec_tokens(self) -> Dict[str, Dict[str, Any]]:
        """HEC inputs by name (without the ``http://`` prefix)."""
        with self._lock:
            return {name: dict(settings) for name, settings in self._http_tokens.items()}

    def hec_settings(self) -> Dict[str, str]:
        """The global ``[http]`` stanza of the HEC inputs."""
        with self._lock:
            return dict(self._http_settings)

    def calls(self) -> List[Tuple[str, str]]:
        """Every request served: ``(method, path with query)``, in order."""
        with self._lock:
            return list(self._calls)

    # ------------------------------------------------------------------------------------ routing
    def _handle(self, request: _Request) -> Tuple[int, str, str]:
        """Return (status, content type, body) for an authenticated request."""
        head = request.segments[:2]
        if head == ["server", "info"] and request.method == "GET":
            return self._server_info(request)
        if request.segments and request.segments[0] == "properties":
            return self._properties(request)
        if request.segments and request.segments[0] == "configs" and len(request.segments) > 1 \
                and request.segments[1].startswith("conf-"):
            return self._configs(request)
        if head == ["storage", "passwords"]:
            return self._storage_passwords(request)
        if request.segments[:3] == ["data", "inputs", "http"]:
            return self._http_inputs(request)
        raise _RestError(404, f"Not Found: {'/'.join(request.segments)}")

    def _feed(self, request: _Request, title: str, path: str, entries: List[Entry], status: int = 200,
              paged: bool = True) -> Tuple[int, str, str]:
        total = len(entries)
        offset = int(request.one("offset", "0") or 0)
        count = int(request.one("count", "30") or 30)
        if paged:
            entries = _search(entries, request.one("search"))
            total = len(entries)
            entries = entries[offset:] if count <= 0 else entries[offset:offset + count]
        base = self.url
        if request.json:
            return status, "application/json", json_feed(path, entries, base, total, offset, count, self.version)
        return status, "text/xml; charset=utf-8", atom_feed(title, path, entries, base, total, offset, count,
                                                           self.version)

    def _ns_path(self, app: str, rest: str) -> str:
        return f"/servicesNS/nobody/{quote(app, safe='')}/{rest}"

    # --------------------------------------------------------------------------------- server/info
    def _server_info(self, request: _Request) -> Tuple[int, str, str]:
        content = {
            "serverName": self.server_name, "version": self.version, "build": "0", "product_type": "enterprise",
            "server_roles": ["heavyweight_forwarder"], "os_name": "Linux", "cpu_arch": "x86_64",
            "guid": "00000000-0000-4000-8000-000000000001", "host": self.server_name, "mode": "normal",
            "kvStoreStatus": "disabled",
        }
        entry = Entry("server-info", "/services/server/info/server-info", content, acl("system", sharing="system"))
        return self._feed(request, "server-info", "/services/server/info", [entry], paged=False)

    # --------------------------------------------------------------------------------- conf files
    def _stanza_entry(self, conf: str, stanza: str, values: Dict[str, str]) -> Entry:
        content = {"disabled": "0"}
        content.update(values)
        content.update({"eai:appName": self.app, "eai:userName": "nobody"})
        path = self._ns_path(self.app, f"configs/conf-{quote(conf, safe='')}/{quote(stanza, safe='')}")
        return Entry(stanza, path, content, acl(self.app))

    def _configs(self, request: _Request) -> Tuple[int, str, str]:
        conf = unquote(request.segments[1][len("conf-"):])
        collection = self._ns_path(self.app, f"configs/conf-{quote(conf, safe='')}")
        name = request.remainder(2)
        with self._lock:
            stanzas = self._confs.get(conf, {})
            if name in ("_reload", "_new") or (not name and request.method == "GET"):
                if name == "_reload":
                    return self._feed(request, f"conf-{conf}", collection, [], paged=False)
                # configs/conf-<file> lists an unknown file as empty, never 404 (splunklib relies on it).
                entries = [self._stanza_entry(conf, stanza, values) for stanza, values in stanzas.items()]
                return self._feed(request, f"conf-{conf}", collection, entries)
            if not name:
                if request.method != "POST":
                    raise _RestError(405, "Method not allowed")
                stanza = request.one("name")
                if not stanza:
                    raise _RestError(400, "Missing required argument: name")
                if stanza in stanzas:
                    raise _RestError(409, f"An object with name={stanza} already exists")
                self.set_stanza(conf, stanza, _fields(request, exclude=("name",)))
                entry = self._stanza_entry(conf, stanza, self._confs[conf][stanza])
                return self._feed(request, f"conf-{conf}", collection, [entry], status=201, paged=False)
            if name not in stanzas:
                raise _RestError(404, f"Could not find object id={name}")
            if request.method == "GET":
                return self._feed(request, f"conf-{conf}", collection,
                                  [self._stanza_entry(conf, name, stanzas[name])], paged=False)
            if request.method == "POST":
                stanzas[name].update(_fields(request))
                return self._feed(request, f"conf-{conf}", collection,
                                  [self._stanza_entry(conf, name, stanzas[name])], paged=False)
            if request.method == "DELETE":
                del stanzas[name]
                entries = [self._stanza_entry(conf, stanza, values) for stanza, values in stanzas.items()]
                return self._feed(request, f"conf-{conf}", collection, entries)
        raise _RestError(405, "Method not allowed")

    def _properties(self, request: _Request) -> Tuple[int, str, str]:
        segments = request.segments[1:]
        conf = unquote(segments[0]) if segments else ""
        stanza = unquote(segments[1]) if len(segments) > 1 else ""
        key = request.remainder(3) if len(segments) > 2 else ""
        base = self._ns_path(self.app, "properties")
        with self._lock:
            if not conf:
                if request.method == "POST":
                    name = request.one("__conf")
                    if not name:
                        raise _RestError(400, "Missing required argument: __conf")
                    self._confs.setdefault(name, {})
                    return 201, "text/xml; charset=utf-8", ""
                entries = [Entry(name, f"{base}/{quote(name, safe='')}", {}, acl(self.app)) for name in self._confs]
                return self._feed(request, "properties", base, entries)
            if conf not in self._confs:
                raise _RestError(404, f"Could not find object id={conf}")
            stanzas = self._confs[conf]
            if not stanza:
                if request.method == "POST":
                    name = request.one("__stanza")
                    if not name:
                        raise _RestError(400, "Missing required argument: __stanza")
                    stanzas.setdefault(name, {})
                    return 201, "text/xml; charset=utf-8", ""
                entries = [Entry(name, f"{base}/{quote(conf, safe='')}/{quote(name, safe='')}", {}, acl(self.app))
                           for name in stanzas]
                return self._feed(request, conf, f"{base}/{quote(conf, safe='')}", entries)
            if stanza not in stanzas:
                raise _RestError(404, f"Could not find object id={stanza}")
            values = stanzas[stanza]
            if request.method == "POST":
                values.update(_fields(request))
                return 200, "text/xml; charset=utf-8", ""
            if key:
                if key not in values:
                    raise _RestError(404, f"Could not find object id={key}")
                return 200, "text/plain; charset=utf-8", values[key]
            stanza_path = f"{base}/{quote(conf, safe='')}/{quote(stanza, safe='')}"
            entries = [Entry(name, f"{stanza_path}/{quote(name, safe='')}", text=value)
                       for name, value in values.items()]
            return self._feed(request, stanza, stanza_path, entries)

    # ----------------------------------------------------------------------------- storage/passwords
    def _password_entry(self, name: str, item: Dict[str, str]) -> Entry:
        content = {
            "clear_password": item["clear_password"],
            # Not Splunk's cipher: a stand-in that is never the clear text.
            "encr_password": "$7$" + base64.b64encode(item["clear_password"].encode("utf-8")[::-1]).decode("ascii"),
            "password": "********",
            "realm": item["realm"],
            "username": item["username"],
            "eai:appName": self.app,
            "eai:userName": "nobody",
        }
        return Entry(name, self._ns_path(self.app, f"storage/passwords/{quote(name, safe='')}"), content,
                     acl(self.app))

    def _storage_passwords(self, request: _Request) -> Tuple[int, str, str]:
        collection = self._ns_path(self.app, "storage/passwords")
        name = request.remainder(2)
        with self._lock:
            if not name:
                if request.method == "GET":
                    entries = [self._password_entry(key, item) for key, item in self._passwords.items()]
                    return self._feed(request, "passwords", collection, entries)
                if request.method != "POST":
                    raise _RestError(405, "Method not allowed")
                username, password = request.one("name"), request.one("password")
                if not username or password is None:
                    raise _RestError(400, "Missing required arguments: name, password")
                realm = request.one("realm", "") or ""
                key = password_entity_name(realm, username)
                if key in self._passwords:
                    raise _RestError(409, f"An object with name={key} already exists")
                self.put_password(realm, username, password)
                entry = self._password_entry(key, self._passwords[key])
                return self._feed(request, "passwords", collection, [entry], status=201, paged=False)
            key = name if name in self._passwords else name + ":"
            if key not in self._passwords:
                raise _RestError(404, f"Could not find object id={name}")
            if request.method == "GET":
                return self._feed(request, "passwords", collection,
                                  [self._password_entry(key, self._passwords[key])], paged=False)
            if request.method == "POST":
                password = request.one("password")
                if password is None:
                    raise _RestError(400, "Missing required argument: password")
                self._passwords[key]["clear_password"] = password
                return self._feed(request, "passwords", collection,
                                  [self._password_entry(key, self._passwords[key])], paged=False)
            if request.method == "DELETE":
                del self._passwords[key]
                entries = [self._password_entry(other, item) for other, item in self._passwords.items()]
                return self._feed(request, "passwords", collection, entries)
        raise _RestError(405, "Method not allowed")

    # ------------------------------------------------------------------------------ HEC inputs
    def _http_global_entry(self) -> Entry:
        content = dict(self._http_settings)
        content.update({"eai:appName": HEC_APP, "eai:userName": "nobody"})
        return Entry("http", self._ns_path(HEC_APP, "data/inputs/http/http"), content, acl(HEC_APP))

    def _http_token_entry(self, name: str) -> Entry:
        settings = self._http_tokens[name]
        content = {key: value for key, value in settings.items()}
        content.update({"eai:appName": HEC_APP, "eai:userName": "nobody"})
        title = f"http://{name}"
        return Entry(title, self._ns_path(HEC_APP, f"data/inputs/http/{quote(title, safe='')}"), content,
                     acl(HEC_APP))

    def _create_hec_token(self, name: str, settings: Dict[str, Any]) -> None:
        values: Dict[str, Any] = {"token": str(uuid.uuid4()), "index": "default", "indexes": [],
                                  "useACK": "0", "disabled": "0", "host": self.server_name}
        for key, value in settings.items():
            values[key] = [str(item) for item in value] if key == "indexes" else _text(value)
        with self._lock:
            self._http_tokens[name] = values
        self._sync_hec_token(name)

    def _sync_hec_token(self, name: str) -> None:
        if self.hec is None:
            return
        settings = self._http_tokens[name]
        indexes = settings.get("indexes") or None
        self.hec.set_token(settings["token"], ack=_flag(settings.get("useACK", "0")), indexes=indexes,
                           disabled=_flag(settings.get("disabled", "0")) or _flag(self._http_settings["disabled"]),
                           default_index=settings.get("index") if settings.get("index") != "default" else None)

    def _sync_hec_settings(self) -> None:
        if self.hec is None:
            return
        with self._lock:
            self._http_settings["port"] = str(self.hec.port)
            self._http_settings["enableSSL"] = "1" if self.hec.tls else "0"
            for name in self._http_tokens:
                self._sync_hec_token(name)

    def _http_inputs(self, request: _Request) -> Tuple[int, str, str]:
        collection = self._ns_path(HEC_APP, "data/inputs/http")
        name = request.remainder(3)
        action = ""
        for suffix in ("/enable", "/disable"):
            if name.endswith(suffix):
                name, action = name[:-len(suffix)], suffix[1:]
        if name.startswith("http://"):
            name = name[len("http://"):]
        with self._lock:
            if not name:
                if request.method == "GET":
                    entries = [self._http_global_entry()] + [self._http_token_entry(key) for key in self._http_tokens]
                    return self._feed(request, "http", collection, entries)
                if request.method != "POST":
                    raise _RestError(405, "Method not allowed")
                new = request.one("name")
                if not new:
                    raise _RestError(400, "Missing required argument: name")
                new = new[len("http://"):] if new.startswith("http://") else new
                if new in self._http_tokens or new == "http":
                    raise _RestError(409, f"An object with name=http://{new} already exists")
                settings: Dict[str, Any] = _fields(request, exclude=("name",))
                if "indexes" in request.params:
                    settings["indexes"] = [item for value in request.params["indexes"] for item in value.split(",")
                                           if item]
                self._create_hec_token(new, settings)
                return self._feed(request, "http", collection, [self._http_token_entry(new)], status=201,
                                  paged=False)
            if name == "http":
                if request.method == "GET":
                    return self._feed(request, "http", collection, [self._http_global_entry()], paged=False)
                if request.method == "POST":
                    self._http_settings.update(_fields(request))
                    if action:
                        self._http_settings["disabled"] = "0" if action == "enable" else "1"
                    for token_name in self._http_tokens:
                        self._sync_hec_token(token_name)
                    return self._feed(request, "http", collection, [self._http_global_entry()], paged=False)
                raise _RestError(405, "Method not allowed")
            if name not in self._http_tokens:
                raise _RestError(404, f"Could not find object id=http://{name}")
            if request.method == "GET":
                return self._feed(request, "http", collection, [self._http_token_entry(name)], paged=False)
            if request.method == "POST":
                settings = self._http_tokens[name]
                settings.update(_fields(request))
                if "indexes" in request.params:
                    settings["indexes"] = [item for value in request.params["indexes"] for item in value.split(",")
                                           if item]
                if action:
                    settings["disabled"] = "0" if action == "enable" else "1"
                self._sync_hec_token(name)
                return self._feed(request, "http", collection, [self._http_token_entry(name)], paged=False)
            if request.method == "DELETE":
                token = self._http_tokens.pop(name)["token"]
                if self.hec is not None:
                    self.hec.remove_token(token)
                entries = [self._http_global_entry()] + [self._http_token_entry(key) for key in self._http_tokens]
                return self._feed(request, "http", collection, entries)
        raise _RestError(405, "Method not allowed")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "t", "yes", "y")


# Request parameters that steer the REST call and are never stored as fields.
_CONTROL_PARAMS = ("output_mode", "count", "offset", "search", "sort_dir", "sort_key", "sort_mode", "f", "summarize")


def _fields(request: _Request, exclude: Tuple[str, ...] = ()) -> Dict[str, str]:
    return {key: values[-1] for key, values in request.params.items()
            if key not in _CONTROL_PARAMS and key not in exclude and not key.startswith("__")}


def _search(entries: List[Entry], search: Optional[str]) -> List[Entry]:
    """splunkd's ``search`` filter: ``field=value`` terms (``*`` globs, exact otherwise) and free
    terms (case-insensitive substring of the name or any value); all terms must match."""
    if not search:
        return entries
    terms = search.split()

    def value_of(entry: Entry, key: str) -> Optional[str]:
        if key in ("name", "title"):
            return entry.title
        if key.startswith("eai:acl."):
            return str(entry.acl.get(key[len("eai:acl."):], ""))
        value = entry.content.get(key)
        return None if value is None else str(value)

    def matches(entry: Entry, term: str) -> bool:
        key, separator, wanted = term.partition("=")
        if separator and key and not key.endswith("\\"):
            actual = value_of(entry, key)
            return actual is not None and fnmatch.fnmatchcase(actual, wanted.replace("\\=", "="))
        needle = term.lower()
        haystack = [entry.title] + [str(value) for value in entry.content.values()]
        return any(needle in text.lower() for text in haystack)

    return [entry for entry in entries if all(matches(entry, term) for term in terms)]


class _SplunkdHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], double: SplunkdDouble, ssl_context: Any) -> None:
        self.double = double
        self.ssl_context = ssl_context
        super().__init__(address, _SplunkdHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is not None:
            try:
                request = wrap_accepted(self.ssl_context, request, timeout=10)
            except OSError:
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if self.ssl_context is not None:
                request.close()


class _SplunkdHandler(BaseHTTPRequestHandler):
    # splunkd answers HTTP/1.1 but the clients here open a connection per call; closing keeps stop() quick.
    protocol_version = "HTTP/1.0"
    server_version = "Splunkd"
    sys_version = ""
    timeout = 30
    disable_nagle_algorithm = True
    server: _SplunkdHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        logger.debug("action=splunkd_request %s", format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        double = self.server.double
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        if raw_body and "json" not in (self.headers.get("Content-Type") or ""):
            for key, values in parse_qs(raw_body.decode("utf-8"), keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        as_json = (params.get("output_mode") or [""])[-1] == "json"
        with double._lock:
            double._calls.append((method, self.path))
        # Empty segments inside the path are kept: entity names such as "http://name" come back from
        # splunklib as "http%3A//name" (it unquotes the alternate link and re-quotes it with "/" safe).
        segments = split.path.strip("/").split("/")
        # Every owner/app namespace sees the same objects (see the harness README).
        if segments[:1] == ["servicesNS"] and len(segments) >= 3:
            segments = segments[3:]
        elif segments[:1] == ["services"]:
            segments = segments[1:]
        else:
            self._error(404, "Not Found", as_json)
            return
        request = _Request(method, segments, params, as_json)
        if segments == ["auth", "login"] and method == "POST":
            self._login(request)
            return
        header = (self.headers.get("Authorization") or "").strip()
        scheme, _, key = header.partition(" ")
        if scheme not in ("Splunk", "Bearer") or key.strip() != double.session_key:
            self._error(401, "call not properly authenticated", as_json, kind="WARN")
            return
        try:
            status, content_type, body = double._handle(request)
        except _RestError as error:
            self._error(error.status, error.message, as_json)
            return
        self._send(status, content_type, body)

    def _error(self, status: int, message: str, as_json: bool, kind: str = "ERROR") -> None:
        if as_json:
            self._send(status, "application/json", json_error(message, kind))
        else:
            self._send(status, "text/xml; charset=utf-8", atom_error(message, kind))

    def _login(self, request: _Request) -> None:
        double = self.server.double
        username, password = request.one("username"), request.one("password")
        if username is None or double.users.get(username) != password:
            self._error(401, "Login failed", request.json, kind="WARN")
            return
        if request.json:
            self._send(200, "application/json", json.dumps({"sessionKey": double.session_key}))
        else:
            self._send(200, "text/xml; charset=utf-8",
                       f"<response>\n  <sessionKey>{double.session_key}</sessionKey>\n</response>\n")
