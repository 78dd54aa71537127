"""A Splunk Web stand-in: the built app's pages, the globals the UCC bundle reads, and splunkd under Splunk Web's
proxy path, answered by the app's own REST handlers (see README.md for what it does and does not emulate)."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import secrets
import ssl
import sys
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.splunk_runner.runner import read_conf

from .handlers import AdminHandlerRunner, HandlerResponse
from .searches import SearchJobs, app_build_rule, parse_sid, sample_dashboard_rules
from .splunkd import SplunkdForWeb

logger = logging.getLogger("tests.emulators.splunkweb")

LOCALE = "en-US"
USER = "admin"
SPLUNK_VERSION = "9.4.0"
SPLUNK_BUILD = "6b4ebe426ca6"
RAW_PREFIX = f"/{LOCALE}/splunkd/__raw/"
# What Splunk's own web.conf exposes through the splunkd proxy (the subset these pages call); apps add theirs.
SYSTEM_EXPOSED = ("search/jobs", "search/jobs/*", "search/jobs/*/*", "search/v2/jobs", "search/v2/jobs/*",
                  "search/v2/jobs/*/*", "authentication/current-context", "data/ui/times", "server/info",
                  "server/info/*", "apps/local", "apps/local/*", "web-features", "data/indexes", "data/indexes/*")
CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
                 ".css": "text/css", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
                 ".png": "image/png", ".woff": "font/woff", ".woff2": "font/woff2", ".txt": "text/plain"}

I18N_JS = """// Splunk Web stand-in: identity translations.
window.gettext = function (s) { return s; };
window._ = window.gettext;
window.ungettext = function (s, p, n) { return n === 1 ? s : p; };
window.sprintf = function (f) { var a = Array.prototype.slice.call(arguments, 1); var i = 0;
  return String(f).replace(/%[sd]/g, function () { return String(a[i++]); }); };
window.i18n_register = function () {};
"""
I18N_CATALOG = "i18n_register({plural: function (n) { return n === 1 ? 0 : 1; }, catalog: {}});\n"
THEME_JS = "window.__get_theme__ = {getTheme: function () { return Promise.resolve('enterprise'); }};\n"
LAYOUT_JS = """// Splunk Web stand-in: a plain header instead of Splunk's chrome.
window.__splunk_layout__ = {create: function () {
  var header = document.createElement('header');
  header.setAttribute('data-test', 'standin-header');
  header.style.cssText = 'background:#1a1c20;color:#fff;padding:6px 16px;font:13px sans-serif;display:flex;gap:18px';
  var title = document.createElement('strong');
  title.textContent = 'Splunk Web stand-in (not Splunk)';
  header.appendChild(title);
  __NAV__.forEach(function (item) {
    var link = document.createElement('a');
    link.href = item.href; link.textContent = item.label; link.style.color = '#9fd0ff';
    header.appendChild(link);
  });
  var container = document.createElement('div');
  document.body.appendChild(header);
  document.body.appendChild(container);
  return {getContainerElement: function () { return container; }};
}};
"""


@dataclass
class Served:
    """One request the stand-in answered."""

    method: str
    path: str
    status: int


class SplunkWebStandIn:
    """Splunk Web for one installed app, on 127.0.0.1.

    Arguments:
        app_dir: The installed app (``$SPLUNK_HOME/etc/apps/<app>``), as built.
        splunkd: The splunkd double the handlers persist to.
        handlers: Runs the app's admin_external handlers.
        host: Address to bind (loopback).
        port: 0 picks a free port.
    """

    def __init__(self, app_dir: str, splunkd: SplunkdForWeb, handlers: AdminHandlerRunner,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.app_dir = app_dir
        self.app = os.path.basename(app_dir)
        self.splunkd = splunkd
        self.handlers = handlers
        self.host = host
        self.port = port
        self.app_build = read_conf(os.path.join(app_dir, "default", "app.conf")).get("install", {}).get("build", "1")
        self.search_jobs = SearchJobs([app_build_rule(self.app, self.app_build), *sample_dashboard_rules()])
        self.csrf_token = secrets.token_hex(16)
        self.exposed = self._exposed_patterns()
        self._served: List[Served] = []
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> "SplunkWebStandIn":
        self._server = _StandInHttpServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"splunkweb-standin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> "SplunkWebStandIn":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def page_url(self, view: str) -> str:
        return f"{self.url}/{LOCALE}/app/{self.app}/{view}"

    @property
    def csrf_cookie(self) -> str:
        return f"splunkweb_csrf_token_{self.port}"

    # --------------------------------------------------------------------------------- inspection
    def served(self) -> List[Served]:
        with self._lock:
            return list(self._served)

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._served.append(Served(method, path, status))

    # ---------------------------------------------------------------------------------- the app
    def _exposed_patterns(self) -> List[Tuple[str, List[str]]]:
        patterns = [(pattern, ["GET", "POST", "DELETE"]) for pattern in SYSTEM_EXPOSED]
        for stanza, values in read_conf(os.path.join(self.app_dir, "default", "web.conf")).items():
            if stanza.startswith("expose:") and "pattern" in values:
                methods = [m.strip().upper() for m in values.get("methods", "GET").split(",")]
                patterns.append((values["pattern"], methods))
        return patterns

    def is_exposed(self, endpoint_path: str, method: str) -> bool:
        """Splunk Web proxies only endpoints a web.conf ``[expose:*]`` pattern names (``*`` is one segment)."""
        segments = endpoint_path.strip("/").split("/")
        for pattern, methods in self.exposed:
            wanted = pattern.strip("/").split("/")
            if method in methods and len(wanted) == len(segments) and all(
                    w == "*" or w == s for w, s in zip(wanted, segments)):
                return True
        return False

    def view_template(self, view: str) -> Optional[str]:
        """The HTML template a view names (``template="<app>:/templates/base.html"``), or None for no such view."""
        path = os.path.join(self.app_dir, "default", "data", "ui", "views", f"{view}.xml")
        if not os.path.isfile(path):
            return None
        template = ElementTree.parse(path).getroot().get("template", "")
        app, _, relative = template.partition(":/")
        if app != self.app or not relative:
            return None
        return os.path.join(self.app_dir, "appserver", relative)

    def nav(self) -> List[Dict[str, str]]:
        """The app bar from ``default/data/ui/nav/default.xml``: views in order, with their labels."""
        path = os.path.join(self.app_dir, "default", "data", "ui", "nav", "default.xml")
        items = []
        for view in ElementTree.parse(path).getroot().iter("view"):
            name = view.get("name", "")
            label = name.capitalize()
            view_path = os.path.join(self.app_dir, "default", "data", "ui", "views", f"{name}.xml")
            if os.path.isfile(view_path):
                label = ElementTree.parse(view_path).getroot().findtext("label") or label
            items.append({"label": label, "href": f"/{LOCALE}/app/{self.app}/{name}"})
        return items

    def config_js(self) -> str:
        config = {
            "SPLUNKD_PATH": f"/{LOCALE}/splunkd/__raw", "LOCALE": LOCALE, "MRSPARKLE_ROOT_PATH": "",
            "MRSPARKLE_PORT_NUMBER": str(self.port), "BUILD_NUMBER": SPLUNK_BUILD, "BUILD_PUSH_NUMBER": 0,
            "APP_BUILD": self.app_build, "USERNAME": USER, "USER_DISPLAYNAME": "Administrator",
            "SERVER_ZONEINFO": "", "SERVER_TIMEZONE_OFFSET": 0, "VERSION_LABEL": SPLUNK_VERSION,
            "SPLUNK_UI_THEME": "enterprise", "APP": self.app, "APP_DISPLAYNAME": self.app,
            "FORM_KEY": self.csrf_token, "IS_ADMIN": True, "PRODUCT_TYPE": "enterprise", "INSTANCE_TYPE": "download",
        }
        return f"window.$C = {json.dumps(config, indent=1)};\n"

    def static_file(self, relative: str) -> Optional[str]:
        """``/static/@<build>/app/<app>/<path>``: appserver/static first, then the app's static/ (icons)."""
        for base in (os.path.join(self.app_dir, "appserver", "static"), os.path.join(self.app_dir, "static")):
            path = os.path.normpath(os.path.join(base, relative))
            if path.startswith(base + os.sep) and os.path.isfile(path):
                return path
        return None

    # ----------------------------------------------------------------------------------- splunkd
    def forward(self, method: str, endpoint_path: str, query: str, body: bytes) -> Tuple[int, str, bytes]:
        """Pass a call to the splunkd double, authenticated as the logged-in user's session."""
        url = f"{self.splunkd.url}/servicesNS/{USER}/{quote(self.app, safe='')}/{endpoint_path}"
        if query:
            url += "?" + query
        request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers={
            "Authorization": f"Splunk {self.splunkd.session_key}",
            "Content-Type": "application/x-www-form-urlencoded"})
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                return response.status, response.headers.get("Content-Type", "application/json"), response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", "application/json"), err.read()

    def admin_call(self, endpoint: str, method: str, entity: Optional[str],
                   params: Dict[str, List[str]]) -> HandlerResponse:
        """Map a REST call to an admin_external handler action, as splunkd does."""
        if method == "GET":
            action, entity_id = "list", entity
        elif method == "POST" and entity:
            action, entity_id = "edit", entity
        elif method == "POST":
            action, entity_id = "create", (params.get("name") or [""])[-1]
            if not entity_id:
                return HandlerResponse(400, [], "Missing required argument: name")
        elif method == "DELETE" and entity:
            action, entity_id = "remove", entity
        else:
            return HandlerResponse(405, [], "Method not allowed")
        return self.handlers.call(endpoint, action, entity_id, params, self.splunkd.session_key, USER)

    def render_entries(self, endpoint: str, response: HandlerResponse, params: Dict[str, List[str]]) -> str:
        """splunkd's ``output_mode=json`` feed of a handler's confInfo."""
        origin = f"{self.splunkd.url}/servicesNS/nobody/{self.app}/{endpoint}"
        entries = []
        for item in response.entries:
            metadata = item.get("metadata", {})
            content = dict(item["content"])
            if "disabled" in content:
                content["disabled"] = str(content["disabled"]).strip().lower() in ("1", "true", "t", "yes")
            for key in ("eai:appName", "eai:userName", "eai:attributes"):
                if key in metadata:
                    content[key] = metadata[key]
            link = f"/servicesNS/nobody/{self.app}/{endpoint}/{quote(item['name'], safe='')}"
            entries.append({"name": item["name"], "id": origin + "/" + quote(item["name"], safe=""),
                            "updated": "2026-01-01T00:00:00+00:00",
                            "links": {"alternate": link, "list": link, "edit": link, "remove": link},
                            "author": "nobody", "acl": metadata.get("eai:acl") or {}, "content": content})
        count = int((params.get("count") or ["30"])[-1] or 30)
        offset = int((params.get("offset") or ["0"])[-1] or 0)
        total = len(entries)
        page = entries[offset:] if count <= 0 else entries[offset:offset + count]
        return json.dumps({"links": {"create": f"/servicesNS/nobody/{self.app}/{endpoint}/_new"}, "origin": origin,
                           "updated": "2026-01-01T00:00:00+00:00",
                           "generator": {"build": SPLUNK_BUILD, "version": SPLUNK_VERSION}, "entry": page,
                           "paging": {"total": total, "perPage": count, "offset": offset}, "messages": []})

    def platform_call(self, method: str, segments: List[str], params: Dict[str, List[str]]) -> Optional[Tuple[int, Any]]:
        """The Splunk Web/splunkd calls that are not the app's: search jobs, user context, UI times, app info."""
        head = segments[0] if segments else ""
        if head == "search" and segments[1:2] in (["jobs"], ["v2"]):
            return self._search_call(method, segments, params)
        if segments == ["authentication", "current-context"]:
            return 200, _feed("current-context", [{"username": USER, "roles": ["admin"], "realname": "Administrator",
                                                    "capabilities": ["admin_all_objects", "list_inputs", "rtsearch",
                                                                     "search", "edit_modinput_aliyun_sls"]}])
        if segments == ["data", "ui", "times"]:
            return 200, _feed("times", [])
        if segments[:2] == ["apps", "local"]:
            return 200, _feed(self.app, [{"build": self.app_build, "version": "", "label": self.app,
                                          "disabled": False, "visible": True}])
        if segments == ["web-features"]:
            return 200, _feed("feature:ui", [{}])
        return None

    def _search_call(self, method: str, segments: List[str], params: Dict[str, List[str]]) -> Tuple[int, Any]:
        sid, tail = parse_sid(segments)
        jobs = self.search_jobs
        if sid is None:
            if method == "POST":
                search = (params.get("search") or [""])[-1]
                return 201, {"sid": jobs.dispatch(search, {k: v[-1] for k, v in params.items()})}
            wanted = [value for value in params.get("id", [])]
            return 200, {"entry": [jobs.status_entry(s) for s in wanted if jobs.job(s)],
                         "paging": {"total": len(wanted), "perPage": 0, "offset": 0}, "messages": []}
        job = jobs.job(sid)
        if job is None:
            return 404, {"messages": [{"type": "FATAL", "text": f"Unknown sid: {sid}"}]}
        if tail in ("", "control") or method == "DELETE":
            return 200, {"entry": [jobs.status_entry(sid)], "messages": []}
        if tail in ("results", "results_preview", "events"):
            return 200, jobs.results(job["rows"], (params.get("output_mode") or ["json"])[-1])
        return 200, {"entry": [], "messages": []}


def _feed(name: str, contents: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"entry": [{"name": name, "id": name, "acl": {}, "content": content} for content in contents],
            "paging": {"total": len(contents), "perPage": 30, "offset": 0}, "messages": []}


def _error(text: str) -> Dict[str, Any]:
    return {"messages": [{"type": "ERROR", "text": text}]}


class _StandInHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], stand_in: SplunkWebStandIn) -> None:
        self.stand_in = stand_in
        super().__init__(address, _StandInHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser closing a kept-alive connection is normal; anything else is logged with its traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            logger.exception("action=splunkweb_connection_error client=%s", client_address)


class _StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SplunkWebStandIn"
    sys_version = ""
    server: _StandInHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        logger.debug("action=splunkweb_request %s", format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    # ------------------------------------------------------------------------------------ replies
    def _send(self, status: int, content_type: str, body: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.stand_in.record(self.command, self.path, status)

    def _json(self, status: int, payload: Any) -> None:
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self._send(status, "application/json; charset=utf-8", body.encode("utf-8"))

    def _text(self, status: int, content_type: str, text: str, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, content_type, text.encode("utf-8"), headers)

    # ------------------------------------------------------------------------------------ routing
    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if path.startswith(RAW_PREFIX):
                self._splunkd(method, path[len(RAW_PREFIX):], split.query, body)
            elif method == "GET":
                self._web(path)
            else:
                self._text(405, "text/plain", "Method not allowed")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser left the page before the answer (a handler run takes a fraction of a second)
        except Exception as err:  # noqa: BLE001  (a stand-in bug must show as a failed request, not a hang)
            logger.exception("action=splunkweb_error path=%s", self.path)
            self._json(500, _error(f"Splunk Web stand-in error: {err!r}"))

    def _web(self, path: str) -> None:
        stand_in = self.server.stand_in
        app_prefix = f"/{LOCALE}/app/{stand_in.app}/"
        static_app = f"/app/{stand_in.app}/"
        if path in ("/", f"/{LOCALE}", f"/{LOCALE}/"):
            self._text(303, "text/plain", "", {"Location": stand_in.page_url("configuration")})
        elif path == "/favicon.ico":
            self._send(204, "image/x-icon", b"")
        elif path.startswith(app_prefix):
            template = stand_in.view_template(path[len(app_prefix):])
            if template is None or not os.path.isfile(template):
                self._text(404, "text/html", "<h1>404 Not Found</h1><p>No such view.</p>")
                return
            with open(template, "rb") as handle:
                html = handle.read()
            cookie = f"{stand_in.csrf_cookie}={stand_in.csrf_token}; Path=/"
            self._send(200, "text/html; charset=utf-8", html, {"Set-Cookie": cookie})
        elif path == f"/{LOCALE}/config":
            self._text(200, "text/javascript", stand_in.config_js())
        elif path == f"/{LOCALE}/i18ncatalog":
            self._text(200, "text/javascript", I18N_CATALOG)
        elif path.startswith(f"/{LOCALE}/static/"):
            self._static(path[len(f"/{LOCALE}/static/"):], static_app)
        else:
            self._text(404, "text/plain", "Not found")

    def _static(self, rest: str, static_app: str) -> None:
        stand_in = self.server.stand_in
        if rest.startswith("@"):
            rest = rest[rest.find("/"):] if "/" in rest else "/"
        else:
            rest = "/" + rest
        if rest == "/js/i18n.js":
            self._text(200, "text/javascript", I18N_JS)
        elif rest == "/build/api/get_theme.js":
            self._text(200, "text/javascript", THEME_JS)
        elif rest in ("/build/api/layout.js", "/build/api/layout-dark.js"):
            self._text(200, "text/javascript", LAYOUT_JS.replace("__NAV__", json.dumps(stand_in.nav())))
        elif rest.startswith(static_app):
            found = stand_in.static_file(unquote(rest[len(static_app):]))
            if found is None:
                self._text(404, "text/plain", "Not found")
                return
            extension = os.path.splitext(found)[1]
            content_type = CONTENT_TYPES.get(extension) or mimetypes.guess_type(found)[0] or "application/octet-stream"
            with open(found, "rb") as handle:
                self._send(200, content_type, handle.read())
        else:
            self._text(404, "text/plain", "Not found")

    def _splunkd(self, method: str, rest: str, query: str, body: bytes) -> None:
        stand_in = self.server.stand_in
        if method in ("POST", "DELETE") and not self._csrf_ok():
            self._json(401, _error("Splunk cannot authenticate the request. CSRF validation failed."))
            return
        params = parse_qs(query, keep_blank_values=True)
        if body:
            for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        segments = [unquote(s) for s in rest.strip("/").split("/")]
        if segments[:1] == ["servicesNS"] and len(segments) >= 3:
            segments = segments[3:]
        elif segments[:1] == ["services"]:
            segments = segments[1:]
        else:
            self._json(404, _error("Not Found"))
            return
        endpoint_path = "/".join(quote(s, safe="") for s in segments)
        if not stand_in.is_exposed("/".join(segments), method):
            self._json(404, _error(f"Splunk Web does not expose {'/'.join(segments)} ({method})"))
            return
        platform = stand_in.platform_call(method, segments, params)
        if platform is not None:
            self._json(*platform)
            return
        if segments[0] in stand_in.handlers.handlers:
            entity = "/".join(segments[1:]) or None
            response = stand_in.admin_call(segments[0], method, entity, params)
            if response.error is not None:
                if response.stderr:
                    logger.info("action=handler_stderr endpoint=%s %s", segments[0], response.stderr[-2000:])
                self._json(response.status, _error(response.error))
            else:
                self._json(response.status, stand_in.render_entries(segments[0], response, params))
            return
        status, content_type, reply = stand_in.forward(method, endpoint_path, query, body)
        self._send(status, content_type, reply)

    def _csrf_ok(self) -> bool:
        stand_in = self.server.stand_in
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            cookies[key] = value
        sent = self.headers.get("X-Splunk-Form-Key") or ""
        return bool(sent) and sent == cookies.get(stand_in.csrf_cookie) == stand_in.csrf_token
