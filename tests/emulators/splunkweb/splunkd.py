"""The splunkd double plus the two endpoints only the pages need: ``data/inputs/<scheme>`` and ``data/indexes``.

UCC's input handler (``DataInputModel``) stores inputs through ``data/inputs/<scheme>``, not ``configs/conf-inputs``;
splunkd keeps them in inputs.conf as ``[<scheme>://<name>]``, which is where this double keeps them too (so
``stanza("inputs", "aliyun_sls://prod")`` is what the modular input is later started with). A GET merges the app's
``default/inputs.conf [<scheme>]`` under the stanza, as splunkd does.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from tests.emulators.splunkd import SplunkdDouble
from tests.emulators.splunkd.render import Entry, acl
from tests.emulators.splunkd.server import _fields, _Request, _RestError  # the double's own request model

INPUTS_CONF = "inputs"
INDEXES = ("main", "summary", "history", "_internal", "_audit", "_introspection", "aliyun")


class SplunkdForWeb(SplunkdDouble):
    """:class:`SplunkdDouble` that also serves modular-input stanzas and the index list.

    Arguments:
        input_defaults: ``{scheme: {key: value}}``, the app's ``default/inputs.conf`` stanzas per scheme.
        **kwargs: As for :class:`SplunkdDouble`.
    """

    def __init__(self, input_defaults: Optional[Dict[str, Dict[str, str]]] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_defaults = dict(input_defaults or {})

    def input_stanza(self, scheme: str, name: str) -> Optional[Dict[str, str]]:
        """The stored ``[<scheme>://<name>]`` stanza (without defaults), or None."""
        return self.stanza(INPUTS_CONF, f"{scheme}://{name}")

    def input_names(self, scheme: str) -> List[str]:
        with self._lock:
            prefix = f"{scheme}://"
            return [stanza[len(prefix):] for stanza in self._confs.get(INPUTS_CONF, {}) if stanza.startswith(prefix)]

    # ------------------------------------------------------------------------------------ routing
    def _handle(self, request: _Request) -> Tuple[int, str, str]:
        if request.segments[:2] == ["data", "indexes"]:
            return self._indexes(request)
        if request.segments[:2] == ["data", "inputs"] and len(request.segments) > 2 \
                and request.segments[2] in self.input_defaults:
            return self._data_inputs(request)
        return super()._handle(request)

    def _indexes(self, request: _Request) -> Tuple[int, str, str]:
        if request.method != "GET":
            raise _RestError(405, "Method not allowed")
        entries = [Entry(name, self._ns_path("search", f"data/indexes/{name}"),
                         {"disabled": "0", "isInternal": "1" if name.startswith("_") else "0",
                          "datatype": "event", "eai:appName": "search", "eai:userName": "nobody"},
                         acl("search", sharing="global"))
                   for name in INDEXES]
        return self._feed(request, "indexes", self._ns_path("search", "data/indexes"), entries)

    def _input_entry(self, scheme: str, name: str, values: Dict[str, str]) -> Entry:
        content = {"host": self.server_name, "index": "default", "disabled": "0"}
        content.update(self.input_defaults[scheme])
        content.update(values)
        content.update({"eai:appName": self.app, "eai:userName": "nobody"})
        path = self._ns_path(self.app, f"data/inputs/{quote(scheme, safe='')}/{quote(name, safe='')}")
        return Entry(name, path, content, acl(self.app))

    def _data_inputs(self, request: _Request) -> Tuple[int, str, str]:
        scheme = request.segments[2]
        collection = self._ns_path(self.app, f"data/inputs/{quote(scheme, safe='')}")
        name = request.remainder(3)
        action = ""
        for suffix in ("/enable", "/disable"):
            if name.endswith(suffix):
                name, action = name[:-len(suffix)], suffix[1:]
        with self._lock:
            stanzas = self._confs.setdefault(INPUTS_CONF, {})

            def entry(short: str) -> Entry:
                return self._input_entry(scheme, short, stanzas[f"{scheme}://{short}"])

            if not name or name == "_reload":
                if request.method == "GET" or name == "_reload":
                    return self._feed(request, scheme, collection, [entry(n) for n in self.input_names(scheme)])
                if request.method != "POST":
                    raise _RestError(405, "Method not allowed")
                new = request.one("name")
                if not new:
                    raise _RestError(400, "Missing required argument: name")
                if f"{scheme}://{new}" in stanzas:
                    raise _RestError(409, f"An object with name={new} already exists")
                stanzas[f"{scheme}://{new}"] = _fields(request, exclude=("name",))
                return self._feed(request, scheme, collection, [entry(new)], status=201, paged=False)
            key = f"{scheme}://{name}"
            if key not in stanzas:
                raise _RestError(404, f"Could not find object id={name}")
            if request.method == "GET":
                return self._feed(request, scheme, collection, [entry(name)], paged=False)
            if request.method == "POST":
                stanzas[key].update(_fields(request))
                if action:
                    stanzas[key]["disabled"] = "1" if action == "disable" else "0"
                return self._feed(request, scheme, collection, [entry(name)], paged=False)
            if request.method == "DELETE":
                del stanzas[key]
                return self._feed(request, scheme, collection, [entry(n) for n in self.input_names(scheme)])
        raise _RestError(405, "Method not allowed")
