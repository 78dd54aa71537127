"""Incremental parser of the modular-input XML event stream, as splunkd reads it from a script's stdout.

A script may write one ``<stream>`` document for its whole life (splunklib's EventWriter) or one per
batch (solnlib's ClassicEventWriter), so the parser accepts a sequence of ``<stream>...</stream>``
documents and yields each ``<event>`` as soon as its closing tag has arrived.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, List, Optional

EVENT_FIELDS = ("time", "host", "source", "sourcetype", "index", "data")
_TOKENS = ("<stream>", "</stream>", "<event", "<?xml")


class StreamParser:
    """Feed text chunks with :meth:`feed`; completed events are returned and kept in :attr:`events`.

    Anything splunkd would not accept (text outside elements, events outside ``<stream>``, malformed
    events) is recorded in :attr:`errors` instead of raising, so a test can assert the stream was clean.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._in_stream = False
        self.events: List[Dict[str, Any]] = []
        self.errors: List[str] = []
        self.streams_opened = 0
        self.streams_closed = 0

    @property
    def in_stream(self) -> bool:
        """True while a ``<stream>`` is open (the script has not written ``</stream>`` yet)."""
        return self._in_stream

    def feed(self, text: str) -> List[Dict[str, Any]]:
        """Add a chunk of stdout; return the events completed by it."""
        self._buffer += text
        completed: List[Dict[str, Any]] = []
        while True:
            stripped = self._buffer.lstrip()
            self._buffer = stripped
            if not stripped:
                break
            if stripped.startswith("<?xml"):
                end = stripped.find("?>")
                if end < 0:
                    break
                self._buffer = stripped[end + 2:]
            elif stripped.startswith("<stream>"):
                if self._in_stream:
                    self.errors.append("<stream> opened inside an open <stream>")
                self._in_stream = True
                self.streams_opened += 1
                self._buffer = stripped[len("<stream>"):]
            elif stripped.startswith("</stream>"):
                if not self._in_stream:
                    self.errors.append("</stream> without an open <stream>")
                self._in_stream = False
                self.streams_closed += 1
                self._buffer = stripped[len("</stream>"):]
            elif stripped.startswith("<event"):
                end = stripped.find("</event>")
                if end < 0:
                    break
                end += len("</event>")
                event = self._parse_event(stripped[:end])
                self._buffer = stripped[end:]
                if event is not None:
                    completed.append(event)
            elif any(token.startswith(stripped) for token in _TOKENS):
                break  # a tag split across chunks
            else:
                cut = stripped.find("<", 1)
                junk = stripped if cut < 0 else stripped[:cut]
                self.errors.append(f"unexpected text outside any event: {junk[:200]!r}")
                self._buffer = "" if cut < 0 else stripped[cut:]
        self.events.extend(completed)
        return completed

    def close(self) -> None:
        """The script's stdout ended: anything still buffered is an incomplete element."""
        if self._buffer.strip():
            self.errors.append(f"stdout ended inside an element: {self._buffer[:200]!r}")
        self._buffer = ""

    def _parse_event(self, text: str) -> Optional[Dict[str, Any]]:
        if not self._in_stream:
            self.errors.append("<event> outside <stream>")
        try:
            element = ElementTree.fromstring(text)
        except ElementTree.ParseError as error:
            self.errors.append(f"malformed event ({error}): {text[:200]!r}")
            return None
        event: Dict[str, Any] = {"stanza": element.get("stanza")}
        for name in EVENT_FIELDS:
            child = element.find(name)
            event[name] = None if child is None else (child.text or "")
        event["unbroken"] = element.get("unbroken")
        event["done"] = element.find("done") is not None
        return event
