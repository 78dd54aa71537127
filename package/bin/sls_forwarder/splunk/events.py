"""Turn decoded SLS log groups into serialized Splunk events: XML stream events or HEC /event envelopes.

This module is on the hot path, so it splices pre-escaped text instead of building dicts and calling
``json.dumps`` per event:

- keys repeat from log to log, so each distinct key sequence becomes a cached ``%``-template with the JSON
  (and, for the stream, XML) escaped keys already in place;
- most values need no escaping: one regex search over all values of a log decides, and only values that
  need it go through ``json.dumps``;
- topic, source, tags and the host are rendered once per log group.

The output is defined by a straightforward reference (``json.dumps`` per key/value, ``xml.sax.saxutils.escape``)
that the unit tests compare it to byte for byte.

Body rules (one line of JSON, keys in this order): each content ``key: value`` in wire order (duplicates kept),
``__topic__``, ``__source__``, each ``__tag__:<key>``, ``__time__`` (int) and ``__time_ns_part__`` (int, only when
not 0). Strings are JSON-escaped without ``ensure_ascii``; additionally the code points that JSON leaves alone but
XML 1.0 forbids (U+FFFE, U+FFFF, lone surrogates) are written as ``\\uXXXX`` escapes, so the body is the same for
both formats and always legal inside XML.

A value whose key is listed in ``json_fields`` is embedded as JSON when it is a JSON object or array (strict JSON:
``NaN``/``Infinity`` do not count). Its text is kept as it came (duplicate keys and number spelling survive), minus
surrounding JSON whitespace, with CR/LF turned into spaces (in valid JSON they can only be whitespace between tokens).
Anything else stays a JSON string.

Splunk metadata: time is ``str(__time__)`` or ``"<sec>.<ns:09d>"`` (a ``__time_ns_part__`` of 10^9 or more, out of
spec, is left out of the time and kept in the body: ``.1000000000`` would read as another time); with ``time_field`` set, a log whose first value
of that key parses as a service time (``timefields.field_time``) gets ``"<sec>.<ms:03d>"`` from it instead.
Host is the value of ``host_field``: the group's value for ``__topic__``, ``__source__`` and ``__tag__:<key>``
(first tag with that key), otherwise the first content value with that key; empty or missing means
``default_host``. Empty index, sourcetype, source or stanza are left out, so Splunk applies its defaults. In the
stream format, metadata characters that XML 1.0 forbids or a parser would normalise (CR; in the stanza attribute
also TAB and LF) are replaced with U+FFFD (the body never contains any: JSON escapes every control character).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from ..caches import SizedCache, entry_bytes
from .timefields import NANOS_PER_SECOND, field_time

__all__ = ["EventMeta", "EventShaper", "FORMATS", "json_string", "xml_legal"]

FORMATS = ("stream", "hec")

# Characters that force a value through json.dumps: JSON specials and controls, plus the code points that
# json.dumps(ensure_ascii=False) leaves raw although XML 1.0 forbids them.
_JSON_UNSAFE = re.compile("[\"\\\\\x00-\x1f\ud800-\udfff\ufffe\uffff]")
# The same for the stream format, where & < > must also be escaped for XML.
_STREAM_UNSAFE = re.compile("[\"\\\\\x00-\x1f\ud800-\udfff\ufffe\uffff&<>]")
# The ASCII members of the two classes above, for the fast check of ASCII text.
_JSON_SPECIAL_BYTES = bytes(range(0x20)) + b'"\\'
_STREAM_SPECIAL_BYTES = _JSON_SPECIAL_BYTES + b"&<>"
# Code points that survive json.dumps(ensure_ascii=False) but are illegal in XML 1.0.
_XML_HOSTILE = re.compile("[\ud800-\udfff\ufffe\uffff]")
# Metadata is not JSON-escaped: these characters are replaced with U+FFFD. In element text that is what XML 1.0
# forbids plus CR (a parser would turn it into LF); in the attribute also TAB and LF (a parser turns them into spaces).
_XML_TEXT_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ATTRIBUTE_UNSAFE = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")
_GROUP_FIELDS = ("__topic__", "__source__")
_TAG_PREFIX = "__tag__:"
# Distinct key sequences (and hosts) are few in practice; the bounds, in estimated bytes, protect against logs whose
# keys never repeat (dynamic keys), which filled count-bounded caches with hundreds of MB. The transcoder calls the
# shaper only for the logs its fast path declines, so 1.25 MiB per shaper is plenty for regular data.
_TEMPLATE_CACHE_BYTES = 1 << 20
_HOST_CACHE_BYTES = 256 << 10
# Host names are short; a host_field pointing at a long value is rendered every time rather than cached.
_MAX_CACHED_HOST = 256


# json.dumps(text, ensure_ascii=False) for a str, without json.dumps' dispatch overhead.
_quote = json.encoder.encode_basestring


def _unicode_escape(match: "re.Match[str]") -> str:
    return "\\u%04x" % ord(match.group())


def _is_clean(text: str, special_bytes: bytes, special: "re.Pattern[str]") -> bool:
    """True when ``text`` holds none of the characters that need escaping.

    ASCII text (the usual case) is checked by deleting the special bytes in C, which is several times faster
    than a regex with a large character class; other text falls back to the regex.
    """
    if text.isascii():
        return len(text.encode("ascii").translate(None, special_bytes)) == len(text)
    return special.search(text) is None


def json_string(text: str) -> str:
    """Return ``text`` as a JSON string literal (quotes included), UTF-8 friendly and legal inside XML.

    Arguments:
        text: Any string.

    Returns:
        ``json.dumps(text, ensure_ascii=False)`` with U+FFFE, U+FFFF and lone surrogates written as ``\\uXXXX``.
    """
    if _is_clean(text, _JSON_SPECIAL_BYTES, _JSON_UNSAFE):
        return '"' + text + '"'
    quoted = _quote(text)
    if text.isascii():
        return quoted
    if _XML_HOSTILE.search(quoted) is not None:
        quoted = _XML_HOSTILE.sub(_unicode_escape, quoted)
    return quoted


def xml_legal(json_text: str) -> str:
    """JSON text with the code points XML 1.0 forbids but JSON leaves raw (U+FFFE, U+FFFF, lone surrogates) escaped.

    Arguments:
        json_text: Output of ``json.dumps(..., ensure_ascii=False)``.
    """
    if json_text.isascii() or _XML_HOSTILE.search(json_text) is None:
        return json_text
    return _XML_HOSTILE.sub(_unicode_escape, json_text)


def xml_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` escaped, as the stream format's ``<data>`` carries the body."""
    return _xml_escape(text)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_text(text: str) -> str:
    """Escape metadata for XML element content, replacing characters XML cannot carry as they are with U+FFFD."""
    return _xml_escape(_XML_TEXT_UNSAFE.sub("\ufffd", text))


def _xml_attribute(text: str) -> str:
    return _xml_escape(_XML_ATTRIBUTE_UNSAFE.sub("\ufffd", text)).replace('"', "&quot;")


def _reject_constant(name: str) -> Any:
    raise ValueError("not strict JSON: %s" % name)


# One decoder for all calls: json.loads with keyword arguments would build a new one every time.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


# What the json module accepts around a document; str.strip() would also drop e.g. U+00A0 or \x1c, which make the
# value invalid JSON.
_JSON_WHITESPACE = " \t\n\r"


def _embedded_json(value: str) -> Optional[str]:
    """Return the text to splice for a ``json_fields`` value, or None when it is not a JSON object or array."""
    stripped = value.strip(_JSON_WHITESPACE)
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        # raw_decode, not decode: the whitespace is stripped already, and decode's two regex passes for it cost
        # about a fifth of the parse. Starting with { or [, a document is an object or an array.
        _, end = _STRICT_JSON.raw_decode(stripped)
    except (ValueError, RecursionError):
        return None
    if end != len(stripped):  # more text after the document
        return None
    if "\n" in stripped or "\r" in stripped:
        stripped = stripped.replace("\r", " ").replace("\n", " ")
    if not stripped.isascii() and _XML_HOSTILE.search(stripped) is not None:
        stripped = _XML_HOSTILE.sub(_unicode_escape, stripped)
    return stripped


@dataclass(frozen=True)
class EventMeta:
    """Splunk metadata of one input's events.

    Arguments:
        index: Target index ("" = the input's or token's default).
        sourcetype: Sourcetype ("" = Splunk's default).
        source: Source, by default ``sls:<project>:<logstore>``.
        default_host: Host when the host field is empty or missing.
        host_field: Field whose value becomes the host; ``__source__`` is the group's source.
        json_fields: Content keys whose JSON object/array values are embedded as JSON (e.g. ActionTrail's "event").
        stanza: ``aliyun_sls://<name>`` for the XML stream.
        time_field: Content key holding the service's own event time ("" = always ``__time__``).
    """

    index: str
    sourcetype: str
    source: str
    default_host: str
    host_field: str = "__source__"
    json_fields: Tuple[str, ...] = ()
    stanza: str = ""
    time_field: str = ""


class _Template:
    """The cached rendering of one key sequence: a %-template with the keys spliced in."""

    __slots__ = ("format", "json_positions", "host_position", "time_position")

    def __init__(self, format_text: str, json_positions: Tuple[int, ...], host_position: int,
                 time_position: int = -1) -> None:
        self.format = format_text
        self.json_positions = json_positions
        self.host_position = host_position
        self.time_position = time_position


class EventShaper:
    """Serialize log groups into Splunk events of one input.

    Arguments:
        meta: The input's Splunk metadata.
        fmt: "stream" for modular-input XML ``<event>`` elements, "hec" for HEC /event JSON envelopes.

    Raises:
        ValueError: ``fmt`` is not one of FORMATS.
    """

    def __init__(self, meta: EventMeta, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError("event format %r must be one of %s" % (fmt, ", ".join(FORMATS)))
        self.meta = meta
        self.fmt = fmt
        self._stream = fmt == "stream"
        self._unsafe = _STREAM_UNSAFE if self._stream else _JSON_UNSAFE
        self._special_bytes = _STREAM_SPECIAL_BYTES if self._stream else _JSON_SPECIAL_BYTES
        self._json_fields = frozenset(meta.json_fields)
        self._host_from_group = meta.host_field in _GROUP_FIELDS or meta.host_field.startswith(_TAG_PREFIX)
        self._templates: SizedCache[Tuple[str, ...], _Template] = SizedCache(_TEMPLATE_CACHE_BYTES)
        self._hosts: SizedCache[str, str] = SizedCache(_HOST_CACHE_BYTES)
        if self._stream:
            stanza = ' stanza="%s"' % _xml_attribute(meta.stanza) if meta.stanza else ""
            self._prefix = '<event%s unbroken="1"><time>' % stanza
            self._before_host = "</time><host>"
            self._after_host = "</host>" + "".join(
                "<%s>%s</%s>" % (name, _xml_text(value), name)
                for name, value in (("source", meta.source), ("sourcetype", meta.sourcetype), ("index", meta.index))
                if value
            ) + "<data>"
            self._suffix = "</data><done/></event>"
        else:
            self._prefix = '{"time":'
            self._before_host = ',"host":'
            self._after_host = "".join(
                ',"%s":%s' % (name, json_string(value))
                for name, value in (("source", meta.source), ("sourcetype", meta.sourcetype), ("index", meta.index))
                if value
            ) + ',"event":'
            self._suffix = "}"

    # -------------------------------------------------------------------------------------------------------------
    # Rendering pieces, public for sls_forwarder.transcode, which splices them into events without decoded tuples.
    # -------------------------------------------------------------------------------------------------------------

    def envelope(self) -> Tuple[str, str, str, str]:
        """The fixed text of every event: (before time, between time and host, after host up to the body, after body).

        An event is ``before_time + time + before_host + host + after_host + body + after_body``.
        """
        return self._prefix, self._before_host, self._after_host, self._suffix

    def render_key(self, key: str) -> str:
        """A content key as it appears in the body: a JSON string literal, XML-escaped for the stream."""
        quoted = json_string(key)
        return _xml_escape(quoted) if self._stream else quoted

    def template_keys(self, keys: Sequence[str]) -> List[str]:
        """Each key as ``render_key`` renders it, with ``%`` doubled for a %-template.

        Keys without specials (nearly all) are checked together in one scan and only quoted: a template is built for
        every log when keys do not repeat.
        """
        joined = "".join(keys)
        if _is_clean(joined, self._special_bytes, self._unsafe):
            rendered = ['"' + key + '"' for key in keys]
        else:
            rendered = [self.render_key(key) for key in keys]
        if "%" in joined:
            rendered = [key.replace("%", "%%") for key in rendered]
        return rendered

    def json_positions(self, keys: Sequence[str]) -> Tuple[int, ...]:
        """Positions of the ``json_fields`` keys in a key sequence."""
        json_fields = self._json_fields
        return tuple(position for position, key in enumerate(keys) if key in json_fields) if json_fields else ()

    def render_value(self, value: str) -> str:
        """A plain (not ``json_fields``) content value as it appears between its quotes in the body."""
        return self._escape_inner(value)

    def render_json_field(self, value: str) -> str:
        """A ``json_fields`` value as it appears in the body: the embedded JSON, or a quoted string literal."""
        embedded = _embedded_json(value)
        if embedded is None:
            return '"' + self._escape_inner(value) + '"'
        return _xml_escape(embedded) if self._stream else embedded

    def render_group(self, group: Any) -> Tuple[str, Optional[str]]:
        """The group's part of its events.

        Arguments:
            group: Anything with topic, source and tags like ``sls.decoder.LogGroup``.

        Returns:
            The body text from ``"__topic__"`` up to the value of ``"__time__"`` (exclusive), and the rendered host
            when ``host_field`` is a group-level field (None when it is a content key).
        """
        return self._group_tail(group), (self._group_host(group) if self._host_from_group else None)

    def render_host(self, value: str) -> str:
        """The host element text or JSON value for a ``host_field`` value ("" means ``default_host``)."""
        return self._render_host(value)

    def render_group_host(self, group: Any) -> Optional[str]:
        """The rendered host of a group's events when ``host_field`` is a group-level field, else None."""
        return self._group_host(group) if self._host_from_group else None

    @property
    def host_from_group(self) -> bool:
        """True when ``host_field`` is ``__topic__``, ``__source__`` or a ``__tag__:`` field."""
        return self._host_from_group

    # -------------------------------------------------------------------------------------------------------------

    def shape(self, groups: Iterable[Any], cache: bool = True) -> Tuple[List[bytes], int]:
        """Serialize every log of ``groups``.

        Arguments:
            groups: Objects shaped like ``sls.decoder.LogGroup`` (topic, source, tags, logs of time, time_ns, contents).
            cache: False leaves the template cache alone (logs whose key sequences do not repeat); same output.

        Returns:
            The UTF-8 events in input order, and the newest ``__time__`` seen (0 when there are no logs).
        """
        events: List[bytes] = []
        append = events.append
        newest = 0
        unsafe_search = self._unsafe.search
        special_bytes = self._special_bytes
        templates = self._templates
        prefix = self._prefix
        suffix = self._suffix
        for group in groups:
            logs = group.logs
            if not logs:
                continue
            group_tail = self._group_tail(group)
            group_host = self._group_host(group) if self._host_from_group else None
            if group_host is not None:
                group_middle = self._before_host + group_host + self._after_host
            for log in logs:
                contents = log.contents
                if contents:
                    keys, values = zip(*contents)
                    template = templates.get(keys)
                    if template is None:
                        template = self._template(keys, cache)
                    if template.json_positions:
                        values = self._render_with_json(values, template.json_positions)
                    else:
                        # One check over all values of the log; _is_clean inlined, this runs for every log.
                        joined = "".join(values)
                        if joined.isascii():
                            clean = len(joined.encode("ascii").translate(None, special_bytes)) == len(joined)
                        else:
                            clean = unsafe_search(joined) is None
                        if not clean:
                            values = self._escape_values(values)
                    head = template.format % values
                else:
                    keys = values = ()
                    template = None
                    head = "{"
                seconds = log.time
                if seconds > newest:
                    newest = seconds
                nanos = log.time_ns
                if nanos:
                    time_text = "%d.%09d" % (seconds, nanos) if nanos < NANOS_PER_SECOND else "%d" % seconds
                    body = '%s%s%d,"__time_ns_part__":%d}' % (head, group_tail, seconds, nanos)
                else:
                    time_text = "%d" % seconds
                    body = "%s%s%d}" % (head, group_tail, seconds)
                if template is not None and template.time_position >= 0:
                    time_text = field_time(contents[template.time_position][1]) or time_text
                if group_host is None:
                    middle = self._before_host + self._log_host(contents, template) + self._after_host
                else:
                    middle = group_middle
                append((prefix + time_text + middle + body + suffix).encode("utf-8"))
        return events, newest

    def _group_tail(self, group: Any) -> str:
        """``"__topic__":..,"__source__":..,"__tag__:k":..,"__time__":`` rendered for this format."""
        parts = ['"__topic__":', json_string(group.topic), ',"__source__":', json_string(group.source)]
        for key, value in group.tags:
            parts.append("," + json_string(_TAG_PREFIX + key) + ":" + json_string(value))
        parts.append(',"__time__":')
        tail = "".join(parts)
        return _xml_escape(tail) if self._stream else tail

    def _group_host(self, group: Any) -> str:
        """The rendered host when ``host_field`` names a group-level field."""
        field = self.meta.host_field
        value = ""
        if field == "__source__":
            value = group.source
        elif field == "__topic__":
            value = group.topic
        else:
            wanted = field[len(_TAG_PREFIX):]
            for key, tag_value in group.tags:
                if key == wanted:
                    value = tag_value
                    break
        return self._render_host(value)

    def _log_host(self, contents: Sequence[Tuple[str, str]], template: Optional[_Template]) -> str:
        if template is None or template.host_position < 0:
            return self._render_host("")
        return self._render_host(contents[template.host_position][1])

    def _render_host(self, value: str) -> str:
        rendered = self._hosts.get(value)
        if rendered is None:
            host = value or self.meta.default_host
            rendered = _xml_text(host) if self._stream else json_string(host)
            if len(value) <= _MAX_CACHED_HOST:
                self._hosts.put(value, rendered, entry_bytes(value, rendered))
        return rendered

    def _template(self, keys: Tuple[str, ...], cache: bool = True) -> _Template:
        rendered = self.template_keys(keys)
        json_positions = self.json_positions(keys)
        parts = [key + ':"%s"' for key in rendered]
        for position in json_positions:
            parts[position] = rendered[position] + ":%s"
        host_position = -1
        if not self._host_from_group and self.meta.host_field in keys:
            host_position = keys.index(self.meta.host_field)
        time_field = self.meta.time_field
        time_position = keys.index(time_field) if time_field and time_field in keys else -1
        template = _Template("{" + ",".join(parts) + ",", json_positions, host_position, time_position)
        if cache:
            self._templates.put(keys, template, entry_bytes(keys, template, template.format, items=keys))
        return template

    def _escape_inner(self, value: str) -> str:
        """The JSON-escaped value without its quotes, XML-escaped for the stream."""
        inner = json_string(value)[1:-1]
        return _xml_escape(inner) if self._stream else inner

    def _escape_values(self, values: Tuple[str, ...]) -> Tuple[str, ...]:
        special_bytes = self._special_bytes
        unsafe = self._unsafe
        return tuple(v if _is_clean(v, special_bytes, unsafe) else self._escape_inner(v) for v in values)

    def _render_with_json(self, values: Tuple[str, ...], json_positions: Tuple[int, ...]) -> Tuple[str, ...]:
        """Values for a template with ``json_fields`` slots: those slots get embedded JSON or a quoted string."""
        rendered = list(values)
        special_bytes = self._special_bytes
        unsafe = self._unsafe
        for position, value in enumerate(values):
            if position in json_positions:
                rendered[position] = self.render_json_field(value)
            elif not _is_clean(value, special_bytes, unsafe):
                rendered[position] = self._escape_inner(value)
        return tuple(rendered)
