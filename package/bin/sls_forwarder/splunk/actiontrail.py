"""ActionTrail records as Splunk events: the record at the root, key fields first, SLS provenance last.

ActionTrail reaches SLS in three shapes (docs/architecture.md, "Routing and normalisation"):

- A: topic ``actiontrail_audit_event``, the record as JSON text in the content ``event``;
- B: the legacy topic ``actiontrail_event``, the same plus ``owner_id``;
- C: flattened content keys ``event.eventName``, ``event.userIdentity.type`` ..., all values strings, with the
  request parameters as JSON text in ``event.requestParameterJson``.

Whichever arrives, the body is one line of JSON: the record's key fields in ``KEY_FIELDS`` order, its other keys
in their order, ``responseElements`` last among them, then ``"sls": {topic, source, project, logstore, shard, tags,
[owner_id], [trimmed]}``. Key fields come first because search-time JSON extraction reads ``_raw`` only up to a
limit. ``_time`` is the record's ``eventTime`` in milliseconds, else ``__time__`` plus the nanosecond part.

An event over ``max_event_bytes`` (HEC's default ``maxEventSize``, 5 MB; below props' TRUNCATE of 8 MB) loses whole
keys in ``TRIM_ORDER`` until it fits, listed in ``sls.trimmed``: the JSON is never cut. Pure.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .events import EventMeta, EventShaper, xml_escape, xml_legal
from .timefields import field_time, splunk_time

__all__ = ["ActionTrailShaper", "ActionTrailGroup", "KEY_FIELDS", "TRIM_ORDER", "MAX_EVENT_BYTES"]

KEY_FIELDS = ("eventTime", "eventName", "eventType", "eventRW", "eventSource", "serviceName", "acsRegion",
              "sourceIpAddress", "userAgent", "userIdentity", "errorCode", "errorMessage", "requestParameters",
              "additionalEventData", "referencedResources")
LAST_FIELD = "responseElements"
TRIM_ORDER = ("responseElements", "requestParameters")
MAX_EVENT_BYTES = 5 * 1024 * 1024

# What JSON allows around a document (str.strip() would also drop characters that make it invalid).
_JSON_WHITESPACE = " \t\n\r"
_EVENT = "event"
_FLAT_PREFIX = "event."
_OWNER_ID = "owner_id"
_PARAMETERS = "requestParameters"
_PARAMETER_JSON = "requestParameterJson"
_PROVENANCE = "sls"


def _reject_constant(name: str) -> Any:
    raise ValueError("not strict JSON: %s" % name)


# NaN and Infinity would come out of json.dumps as invalid JSON; a record holding them is not taken as a record.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)
# Records come from json.loads, so they cannot hold cycles: the check is skipped.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _json_value(text: str) -> Optional[Any]:
    """The strict JSON value of ``text``, or None when it is not JSON."""
    # raw_decode on the stripped text is what decode() does, minus its two regex passes for whitespace.
    stripped = text.strip(_JSON_WHITESPACE)
    try:
        value, end = _STRICT_JSON.raw_decode(stripped)
    except (ValueError, RecursionError):
        return None
    return value if end == len(stripped) else None


def _json_object(text: str) -> Optional[Dict[str, Any]]:
    value = _json_value(text)
    return value if isinstance(value, dict) else None


def _unflatten(contents: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """Nest the ``event.*`` keys of shape C; a key clashing with another's nesting stays flat, under its full name."""
    record: Dict[str, Any] = {}
    for key, value in contents:
        if not key.startswith(_FLAT_PREFIX):
            continue
        path = key[len(_FLAT_PREFIX):].split(".")
        node = record
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                node = None
                break
            node = child
        if node is None or isinstance(node.get(path[-1]), dict):
            record[key] = value
        else:
            node[path[-1]] = value
    if _PARAMETERS not in record and isinstance(record.get(_PARAMETER_JSON), str):
        parameters = _json_value(record[_PARAMETER_JSON])
        if parameters is not None:
            record[_PARAMETERS] = parameters
            del record[_PARAMETER_JSON]
    return record


def _ordered(record: Dict[str, Any]) -> Dict[str, Any]:
    """The record's keys in body order (without an ``sls`` key of its own: the provenance object takes that name)."""
    ordered = {key: record[key] for key in KEY_FIELDS if key in record}
    ordered.update(record)  # the other keys, in record order; key fields keep their places
    if LAST_FIELD in ordered:
        ordered[LAST_FIELD] = ordered.pop(LAST_FIELD)
    ordered.pop(_PROVENANCE, None)
    return ordered


class ActionTrailGroup(NamedTuple):
    """What the events of one log group share."""

    provenance: Dict[str, Any]  # the "sls" object without owner_id and trimmed
    provenance_json: str  # and as JSON text, written once per group
    host: Optional[str]  # rendered host when host_field is a group-level field, else None


class ActionTrailShaper:
    """Serialize ActionTrail logs of one input as ``aliyun:actiontrail`` events.

    Arguments:
        meta: The input's metadata with the ActionTrail sourcetype.
        fmt: "stream" or "hec", as for EventShaper.
        project: The input's project, for the provenance object.
        logstore: The input's Logstore, likewise.
        max_event_bytes: Size above which keys in TRIM_ORDER are dropped.
    """

    def __init__(self, meta: EventMeta, fmt: str, project: str, logstore: str,
                 max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._shaper = EventShaper(meta, fmt)  # envelope and host rendering are those of every event
        self._stream = fmt == "stream"
        self._prefix, self._before_host, self._after_host, self._suffix = self._shaper.envelope()
        self._host_field = meta.host_field
        self._project = project
        self._logstore = logstore
        self._max_event_bytes = max_event_bytes

    @property
    def sourcetype(self) -> str:
        return self._shaper.meta.sourcetype

    def group(self, topic: str, source: str, tags: Sequence[Tuple[str, str]], shard_id: int) -> ActionTrailGroup:
        """The shared part of the events of one log group pulled from ``shard_id`` (call once per group)."""
        provenance = {"topic": topic, "source": source, "project": self._project, "logstore": self._logstore,
                      "shard": shard_id, "tags": dict(tags)}
        host = self._shaper.render_group_host(_GroupView(topic, source, list(tags)))
        return ActionTrailGroup(provenance, self._json(provenance), host)

    def event(self, group: ActionTrailGroup, seconds: int, nanos: int,
              contents: Sequence[Tuple[str, str]]) -> Optional[bytes]:
        """The serialized event of one log, or None when the log holds no ActionTrail record (shape A, B or C).

        Arguments:
            group: From ``group()``.
            seconds: The log's ``__time__``.
            nanos: Its ``__time_ns_part__`` (0 when absent).
            contents: Its content pairs in wire order.
        """
        record, owner_id = self._record(contents)
        if record is None:
            return None
        event_time = record.get("eventTime")
        time_text = (field_time(event_time) if isinstance(event_time, str) else None) or splunk_time(seconds, nanos)
        host = group.host if group.host is not None else self._content_host(contents)
        head = self._prefix + time_text + self._before_host + host + self._after_host
        body = _ordered(record)
        if owner_id is None:
            provenance, provenance_json = group.provenance, group.provenance_json
        else:
            provenance = dict(group.provenance, owner_id=owner_id)
            provenance_json = self._json(provenance)
        event = self._render(head, body, provenance_json)
        trimmed: List[str] = []
        for key in TRIM_ORDER:
            if len(event) <= self._max_event_bytes:
                break
            if key in body:
                del body[key]
                trimmed.append(key)
                event = self._render(head, body, self._json(dict(provenance, trimmed=trimmed)))
        return event

    @staticmethod
    def _json(value: Any) -> str:
        """Compact JSON, legal in XML (U+FFFE, U+FFFF and lone surrogates escaped)."""
        return xml_legal(_ENCODER.encode(value))

    def _render(self, head: str, body: Dict[str, Any], provenance_json: str) -> bytes:
        """The event: envelope and body, the provenance object spliced in as the body's last member."""
        text = self._json(body)
        text = "%s%s%s}" % (text[:-1], '"sls":' if len(text) == 2 else ',"sls":', provenance_json)
        if self._stream:
            text = xml_escape(text)
        return "".join((head, text, self._suffix)).encode("utf-8")

    @staticmethod
    def _record(contents: Sequence[Tuple[str, str]]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
        """(record, owner_id) of shape A/B (``event`` JSON text) or C (flattened keys); (None, ..) for neither."""
        event_text = None
        owner_id = None
        flattened = False
        for key, value in contents:
            if key == _EVENT:
                if event_text is None:
                    event_text = value
            elif key == _OWNER_ID:
                if owner_id is None:
                    owner_id = value
            elif key.startswith(_FLAT_PREFIX):
                flattened = True
        if event_text is not None:
            record = _json_object(event_text)
            if record is not None:
                return record, owner_id
        if flattened:
            return _unflatten(contents), owner_id
        return None, owner_id

    def _content_host(self, contents: Sequence[Tuple[str, str]]) -> str:
        for key, value in contents:
            if key == self._host_field:
                return self._shaper.render_host(value)
        return self._shaper.render_host("")


class _GroupView(NamedTuple):
    topic: str
    source: str
    tags: List[Tuple[str, str]]
