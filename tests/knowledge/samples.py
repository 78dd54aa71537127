"""pytest-splunk-addon requirement samples: the XML files and ``pytest-splunk-addon-data.conf``.

A sample file holds ``<device>`` then ``<event code= name= format=>`` elements, each with ``<transport type host
source sourcetype/>``, ``<raw><![CDATA[...]]></raw>`` and ``<cim>`` (``<models><model>``, ``<cim_fields><field
name value/>``, ``<missing_recommended_fields><field>name</field>``, ``<exceptions><field name value reason/>``),
optionally ``<other_mappings><field name value/>``. The data conf has one stanza per sample file name (or a
regex over file names) giving ``sourcetype``, ``source``, ``host``, ``sourcetype_to_search``.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .conf import ConfFile, parse_conf

DATA_CONF = "pytest-splunk-addon-data.conf"


@dataclass
class SampleEvent:
    file: str                 # sample file name
    position: int             # 1-based position in the file
    name: str
    code: str
    raw: str
    sourcetype: str
    source: str
    host: str
    models: List[str]
    cim_fields: Dict[str, str]
    other_mappings: Dict[str, str]
    exceptions: Dict[str, str]
    missing_recommended: List[str]
    problems: List[str] = field(default_factory=list)   # inconsistencies found while reading

    @property
    def label(self) -> str:
        return f"{self.file}#{self.position} {self.name or self.code or '(unnamed)'}"


class DataConf:
    def __init__(self, conf: ConfFile):
        self.conf = conf

    def settings_for(self, file_name: str) -> Dict[str, str]:
        if file_name in self.conf.stanzas:
            return self.conf.stanzas[file_name]
        for stanza, settings in self.conf.stanzas.items():
            try:
                if re.fullmatch(stanza, file_name):
                    return settings
            except re.error:
                continue
        return {}


def read_samples(samples_dir: str) -> List[SampleEvent]:
    data_path = os.path.join(samples_dir, DATA_CONF)
    if not os.path.exists(data_path):
        data_path = os.path.join(os.path.dirname(os.path.abspath(samples_dir)), DATA_CONF)
    data = DataConf(parse_conf(data_path)) if os.path.exists(data_path) else DataConf(ConfFile(data_path))
    events: List[SampleEvent] = []
    for file_name in sorted(os.listdir(samples_dir)):
        if file_name.endswith(".xml"):
            try:
                events += read_sample_file(os.path.join(samples_dir, file_name), data.settings_for(file_name))
            except ElementTree.ParseError as err:
                events.append(_unreadable(file_name, f"not well-formed XML: {err}"))
    return events


def _unreadable(file_name: str, problem: str) -> SampleEvent:
    """A stand-in event so that a broken file is reported as a failure, not skipped."""
    return SampleEvent(file=file_name, position=0, name="(file)", code="", raw="", sourcetype="", source="", host="",
                       models=[], cim_fields={}, other_mappings={}, exceptions={}, missing_recommended=[],
                       problems=[problem])


# The transport types pytest-splunk-addon accepts in a requirement sample.
TRANSPORT_TYPES = ("modinput", "Modinput", "Mod input", "Modular Input", "Modular input", "modular input",
                   "modular_input", "Mod Input", "dbx", "windows_input", "hec_event", "scripted_input",
                   "scripted input", "hec_raw", "file_monitor", "forwarder", "syslog")


def read_sample_file(path: str, settings: Optional[Dict[str, str]] = None) -> List[SampleEvent]:
    settings = settings or {}
    file_name = os.path.basename(path)
    root = ElementTree.parse(path).getroot()
    file_problems = [] if root.tag == "device" else [f"the root element is <{root.tag}>, not <device>"]
    file_problems += [f"<device> has no <{tag}>" for tag in ("vendor", "product", "version")
                      if root.find(tag) is None]
    events = []
    for position, element in enumerate(root.iter("event"), start=1):
        event = _read_event(element, file_name, position, settings)
        event.problems[:0] = file_problems
        events.append(event)
    return events


def _read_event(element: ElementTree.Element, file_name: str, position: int, settings: Dict[str, str]) -> SampleEvent:
    transport = element.find("transport")
    attributes = transport.attrib if transport is not None else {}
    problems: List[str] = []
    conf_sourcetype = settings.get("sourcetype_to_search") or settings.get("sourcetype", "")
    sourcetype = attributes.get("sourcetype") or conf_sourcetype
    if not settings:
        problems.append(f"{DATA_CONF} has no stanza for {file_name}")
    elif attributes.get("sourcetype") and conf_sourcetype and attributes["sourcetype"] != conf_sourcetype:
        problems.append(f"transport sourcetype {attributes['sourcetype']} differs from {DATA_CONF}'s "
                        f"{conf_sourcetype}")
    if settings and settings.get("requirement_test_sample", "0").strip() not in ("1", "true"):
        problems.append(f"{DATA_CONF} [{file_name}] lacks requirement_test_sample = 1")
    ingested, searched = settings.get("sourcetype", ""), settings.get("sourcetype_to_search", "")
    if ingested and searched and ingested != searched:
        problems.append(f"{DATA_CONF} ingests sourcetype {ingested} but searches {searched}; an index-time "
                        f"sourcetype rename is not simulated")
    if transport is None:
        problems.append("the event has no <transport>")
    elif attributes.get("type") not in TRANSPORT_TYPES:
        problems.append(f"transport type {attributes.get('type')!r} is not one PSA accepts")
    if element.find("cim") is None:
        problems.append("the event has no <cim> (a requirement sample declares its models and fields there)")
    raw_element = element.find("raw")
    raw = (raw_element.text or "").strip() if raw_element is not None else ""
    if not raw:
        problems.append("the event has no <raw>")
    cim = element.find("cim")
    return SampleEvent(
        file=file_name, position=position, name=element.get("name", ""), code=element.get("code", ""),
        raw=raw, sourcetype=sourcetype,
        source=attributes.get("source") or settings.get("source", ""),
        host=attributes.get("host") or settings.get("host", ""),
        models=[(model.text or "").strip() for model in element.iter("model")],
        cim_fields=_named_fields(cim, "cim_fields"),
        other_mappings=_named_fields(element, "other_mappings"),
        exceptions=_named_fields(cim, "exceptions"),
        missing_recommended=[(item.get("name") or item.text or "").strip()
                             for group in (cim.iter("missing_recommended_fields") if cim is not None else [])
                             for item in group.iter("field")],
        problems=problems,
    )


def _named_fields(parent: Optional[ElementTree.Element], tag: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    if parent is None:
        return values
    for group in parent.iter(tag):
        for item in group.iter("field"):
            if item.get("name"):
                values[item.get("name", "")] = item.get("value", "")
    return values
