"""Atom XML and JSON renderings of splunkd REST entries, in the shapes splunklib and solnlib parse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from xml.sax.saxutils import escape, quoteattr

ATOM_NS = "http://www.w3.org/2005/Atom"
REST_NS = "http://dev.splunk.com/ns/rest"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
UPDATED = "2026-01-01T00:00:00+00:00"


@dataclass
class Entry:
    """One REST entity.

    Arguments:
        title: Entity name (``<title>``, ``name`` in JSON).
        path: Absolute URL path of the entity, already URL-encoded (``<link rel="alternate">``).
        content: Entity fields; values are strings, lists or dicts. ``eai:acl`` is added from ``acl``.
        acl: Access metadata (app, owner, sharing, ...).
        text: For ``properties/<file>/<stanza>`` key entries: plain-text content instead of a dict.
    """

    title: str
    path: str
    content: Dict[str, Any] = field(default_factory=dict)
    acl: Dict[str, Any] = field(default_factory=dict)
    text: Optional[str] = None


def acl(app: str, owner: str = "nobody", sharing: str = "app") -> Dict[str, Any]:
    """The ``eai:acl`` block of an entity shared at app level and readable by everyone."""
    return {
        "app": app,
        "can_change_perms": "1",
        "can_list": "1",
        "can_share_app": "1",
        "can_share_global": "1",
        "can_share_user": "0",
        "can_write": "1",
        "modifiable": "1",
        "owner": owner,
        "perms": {"read": ["*"], "write": ["admin", "sc_admin"]},
        "removable": "0",
        "sharing": sharing,
    }


def _value_xml(value: Any) -> str:
    if isinstance(value, dict):
        keys = "".join(f"<s:key name={quoteattr(str(key))}>{_value_xml(item)}</s:key>"
                       for key, item in value.items())
        return f"<s:dict>{keys}</s:dict>"
    if isinstance(value, (list, tuple)):
        return "<s:list>" + "".join(f"<s:item>{_value_xml(item)}</s:item>" for item in value) + "</s:list>"
    if value is None:
        return ""
    return escape(str(value))


def _entry_xml(entry: Entry, base_url: str) -> str:
    links = "".join(f'<link href={quoteattr(entry.path)} rel="{rel}"/>' for rel in ("alternate", "list", "edit", "remove"))
    if entry.text is not None:
        content = f'<content type="text">{escape(entry.text)}</content>'
    else:
        fields = dict(entry.content)
        if entry.acl:
            fields["eai:acl"] = entry.acl
        content = f'<content type="text/xml">{_value_xml(fields)}</content>'
    return (f"<entry><title>{escape(entry.title)}</title><id>{escape(base_url + entry.path)}</id>"
            f"<updated>{UPDATED}</updated>{links}<author><name>{escape(str(entry.acl.get('owner', 'nobody')))}</name>"
            f"</author>{content}</entry>")


def atom_feed(title: str, path: str, entries: List[Entry], base_url: str, total: int, offset: int,
              per_page: int, version: str) -> str:
    """Render a feed of entries as splunkd does for list and single-entity GETs."""
    body = "".join(_entry_xml(entry, base_url) for entry in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<feed xmlns="{ATOM_NS}" xmlns:s="{REST_NS}" xmlns:opensearch="{OPENSEARCH_NS}">'
            f"<title>{escape(title)}</title><id>{escape(base_url + path)}</id><updated>{UPDATED}</updated>"
            f'<generator build="0" version="{escape(version)}"/><author><name>Splunk</name></author>'
            f"<opensearch:totalResults>{total}</opensearch:totalResults>"
            f"<opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>"
            f"<opensearch:startIndex>{offset}</opensearch:startIndex><s:messages/>{body}</feed>")


def _json_content(entry: Entry) -> Any:
    if entry.text is not None:
        return entry.text
    content = dict(entry.content)
    if "disabled" in content:
        # JSON output mode reports the disabled flag as a boolean.
        content["disabled"] = str(content["disabled"]).lower() in ("1", "true")
    content["eai:acl"] = None
    return content


def json_feed(path: str, entries: List[Entry], base_url: str, total: int, offset: int, per_page: int,
              version: str) -> str:
    """Render a feed as ``output_mode=json``."""
    rendered = [{
        "name": entry.title,
        "id": base_url + entry.path,
        "updated": UPDATED,
        "links": {"alternate": entry.path, "list": entry.path, "edit": entry.path, "remove": entry.path},
        "author": entry.acl.get("owner", "nobody"),
        "acl": entry.acl,
        "content": _json_content(entry),
    } for entry in entries]
    return json.dumps({
        "links": {"create": path + "/_new", "_reload": path + "/_reload"},
        "origin": base_url + path,
        "updated": UPDATED,
        "generator": {"build": "0", "version": version},
        "entry": rendered,
        "paging": {"total": total, "perPage": per_page, "offset": offset},
        "messages": [],
    })


def atom_error(message: str, kind: str = "ERROR") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n'
            f'    <msg type="{kind}">{escape(message)}</msg>\n  </messages>\n</response>\n')


def json_error(message: str, kind: str = "ERROR") -> str:
    return json.dumps({"messages": [{"type": kind, "text": message}]})
