"""An app's search-time knowledge, applied to one event in Splunk's order.

Order (Knowledge Manager Manual, "The sequence of search-time operations"): KV_MODE extraction, FIELDALIAS,
EVAL, LOOKUP, eventtypes, tags; within each kind the classes run in ASCII order of their class name.

- FIELDALIAS-<class> = (<source> AS|ASNEW <alias>)+ : every alias reads the fields as they were before aliasing
  (an alias cannot feed another). AS copies the source over the alias, and removes the alias when the source is
  missing (the behaviour since 7.2.4); ASNEW writes only an alias the event does not have.
- EVAL-<field> = <expr> : every calculated field reads the fields as they were after aliasing, so calculated
  fields cannot see one another; a null result removes the field.
- LOOKUP-<class> : run one after another in class order; the inputs are read from the fields before any
  automatic lookup ran (Splunk does not support nested automatic lookups; an input that only an earlier lookup
  produces is an error), while OUTPUTNEW sees earlier lookups' outputs.
- eventtypes.conf: enabled eventtypes whose search matches (see spl_search); tags.conf: ``[eventtype=<name>]``
  and ``[<field>=<value>]`` stanzas (value URL-decoded, compared exactly), ``<tag> = enabled|disabled``.

Only sourcetype stanzas are applied; EXTRACT/REPORT and KV_MODE other than json/none are errors. JSON extraction
reads the first ``[spath] extraction_cutoff`` characters (5000 unless the app's limits.conf says otherwise).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .conf import ConfFile, read_app_conf
from .evalexpr import EvalError, Node, parse_eval, to_field_values
from .kvjson import DEFAULT_CUTOFF, flatten_json
from .lookups import AutomaticLookup, LookupDefinitionError, LookupTable, load_lookup_table, parse_automatic_lookup
from .spl_search import Matcher, SearchError, parse_search, value_matches

Fields = Dict[str, List[str]]
METADATA_FIELDS = ("_raw", "sourcetype", "source", "host", "index")
SEARCH_TIME_PREFIXES = ("FIELDALIAS-", "EVAL-", "LOOKUP-", "REPORT-", "EXTRACT-")


class KnowledgeError(Exception):
    """The app uses something the simulator does not model, or an event cannot be processed as Splunk would."""


@dataclass(frozen=True)
class FieldAlias:
    class_name: str
    source: str
    alias: str
    overwrite: bool   # AS (True) or ASNEW (False)


@dataclass(frozen=True)
class CalculatedField:
    key: str
    field: str
    expression: str
    node: Node


def search_time_class(key: str) -> Optional[Tuple[str, str]]:
    """``EVAL-user`` -> ("EVAL-", "user"); the prefix is case-insensitive, the class name is not."""
    for prefix in SEARCH_TIME_PREFIXES:
        if key.upper().startswith(prefix):
            return prefix, key[len(prefix):]
    return None


def parse_field_aliases(class_name: str, value: str) -> List[FieldAlias]:
    words = _words(value)
    if not words or len(words) % 3:
        raise KnowledgeError(f"FIELDALIAS-{class_name} is not (<field> AS|ASNEW <alias>)+: {value!r}")
    aliases = []
    for index in range(0, len(words), 3):
        source, keyword, alias = words[index:index + 3]
        if keyword.upper() not in ("AS", "ASNEW"):
            raise KnowledgeError(f"FIELDALIAS-{class_name}: expected AS or ASNEW, got {keyword!r}")
        aliases.append(FieldAlias(class_name, source, alias, keyword.upper() == "AS"))
    return aliases


def _words(value: str) -> List[str]:
    words, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char.isspace() and not quoted:
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


@dataclass
class SourcetypeKnowledge:
    sourcetype: str
    kv_json: bool
    indexed_json: bool
    aliases: List[FieldAlias] = field(default_factory=list)
    calculated: List[CalculatedField] = field(default_factory=list)
    lookups: List[AutomaticLookup] = field(default_factory=list)

    def props_fields(self, table_columns: Dict[str, List[str]]) -> Dict[str, List[str]]:
        """The fields pytest-splunk-addon derives from each props class (its field tests): FIELDALIAS sources and
        aliases, EVAL targets (unless the expression is ``null()``), LOOKUP event-side inputs and outputs (every
        CSV column when there is no output clause)."""
        found: Dict[str, List[str]] = {}
        for alias in self.aliases:
            names = found.setdefault(f"FIELDALIAS-{alias.class_name}", [])
            names += [name for name in (alias.source, alias.alias) if name not in names]
        for calc in self.calculated:
            if calc.expression.strip() != "null()":
                found[calc.key] = [calc.field]
        for lookup in self.lookups:
            names = [event_field for _, event_field in lookup.inputs]
            if lookup.outputs:
                names += [event_field for _, event_field in lookup.outputs]
            else:
                names += table_columns.get(lookup.table_name, [])
            found[f"LOOKUP-{lookup.class_name}"] = list(dict.fromkeys(names))
        return found

    def reads(self) -> List[str]:
        """Fields the aliases, calculated fields and lookups read."""
        names = [alias.source for alias in self.aliases]
        for calc in self.calculated:
            names += calc.node.field_names()
        for lookup in self.lookups:
            names += [event_field for _, event_field in lookup.inputs]
        return names


@dataclass
class SearchResult:
    fields: Fields
    eventtypes: List[str]
    tags: List[str]


class App:
    """The default/ confs and lookups of one app folder."""

    def __init__(self, app_dir: str, json_cutoff: Optional[int] = None):
        self.app_dir = app_dir
        limits = read_app_conf(app_dir, "limits")
        # limits.conf [spath] extraction_cutoff bounds automatic JSON extraction (0 = the whole event here).
        self.json_cutoff = json_cutoff if json_cutoff is not None else \
            int(limits.get("spath", "extraction_cutoff", str(DEFAULT_CUTOFF)))
        self.props = read_app_conf(app_dir, "props")
        self.transforms = read_app_conf(app_dir, "transforms")
        self.eventtypes_conf = read_app_conf(app_dir, "eventtypes")
        self.tags_conf = read_app_conf(app_dir, "tags")
        self.lookups_dir = os.path.join(app_dir, "lookups")
        self._sourcetypes: Dict[str, SourcetypeKnowledge] = {}
        self._tables: Dict[str, LookupTable] = {}
        self._eventtypes: Optional[Dict[str, Matcher]] = None

    def confs(self) -> List[ConfFile]:
        return [self.props, self.transforms, self.eventtypes_conf, self.tags_conf]

    # ----------------------------------------------------------------------------------------------- loading

    def knowledge_for(self, sourcetype: str) -> SourcetypeKnowledge:
        if sourcetype not in self._sourcetypes:
            self._sourcetypes[sourcetype] = self._load_sourcetype(sourcetype)
        return self._sourcetypes[sourcetype]

    def _load_sourcetype(self, sourcetype: str) -> SourcetypeKnowledge:
        if sourcetype not in self.props.stanzas:
            raise KnowledgeError(f"props.conf has no [{sourcetype}] stanza")
        settings = self.props.stanzas[sourcetype]
        kv_mode = settings.get("KV_MODE", "auto").strip().lower()
        indexed = settings.get("INDEXED_EXTRACTIONS", "").strip().lower()
        if indexed not in ("", "json"):
            raise KnowledgeError(f"[{sourcetype}] INDEXED_EXTRACTIONS={indexed} is not simulated")
        if kv_mode not in ("json", "none") and not (indexed == "json" and kv_mode == "auto"):
            raise KnowledgeError(f"[{sourcetype}] KV_MODE={kv_mode} is not simulated (json or none)")
        auto_kv_json = settings.get("AUTO_KV_JSON", "true").strip().lower() in ("1", "true", "t", "yes")
        knowledge = SourcetypeKnowledge(sourcetype, kv_mode == "json" or (kv_mode == "auto" and auto_kv_json),
                                        indexed == "json")
        for key in sorted(settings, key=lambda k: (search_time_class(k) or ("", ""))[1]):
            kind = search_time_class(key)
            if kind is None:
                continue
            prefix, class_name = kind
            value = settings[key]
            if prefix in ("REPORT-", "EXTRACT-"):
                raise KnowledgeError(f"[{sourcetype}] {key}: regex extractions are not simulated")
            if prefix == "FIELDALIAS-":
                aliases = parse_field_aliases(class_name, value)
                _check_reads(sourcetype, key, [alias.source for alias in aliases])
                knowledge.aliases += aliases
            elif prefix == "EVAL-":
                try:
                    node = parse_eval(value)
                except EvalError as err:
                    raise KnowledgeError(f"[{sourcetype}] {key}: {err}") from None
                _check_reads(sourcetype, key, node.field_names())
                knowledge.calculated.append(CalculatedField(key, class_name, value, node))
            else:
                try:
                    lookup = parse_automatic_lookup(class_name, value)
                    self.table(lookup.table_name)
                except LookupDefinitionError as err:
                    raise KnowledgeError(f"[{sourcetype}] {key}: {err}") from None
                _check_reads(sourcetype, key, [event_field for _, event_field in lookup.inputs])
                knowledge.lookups.append(lookup)
        targets = [calc.field for calc in knowledge.calculated]
        duplicated = sorted({name for name in targets if targets.count(name) > 1})
        if duplicated:
            raise KnowledgeError(f"[{sourcetype}] several EVAL- keys set {', '.join(duplicated)}")
        return knowledge

    def props_fields(self, sourcetype: str) -> Dict[str, List[str]]:
        knowledge = self.knowledge_for(sourcetype)
        columns = {lookup.table_name: self.table(lookup.table_name).columns for lookup in knowledge.lookups}
        return knowledge.props_fields(columns)

    def table(self, name: str) -> LookupTable:
        if name not in self._tables:
            self._tables[name] = load_lookup_table(self.transforms, name, self.lookups_dir)
        return self._tables[name]

    def eventtypes(self) -> Dict[str, Matcher]:
        if self._eventtypes is None:
            parsed: Dict[str, Matcher] = {}
            for name, settings in self.eventtypes_conf.stanzas.items():
                if name == "default" or _is_disabled(settings):
                    continue
                try:
                    parsed[name] = parse_search(settings.get("search", ""))
                except SearchError as err:
                    raise KnowledgeError(f"eventtype {name}: {err}") from None
            self._eventtypes = parsed
        return self._eventtypes

    # ----------------------------------------------------------------------------------------------- running

    def search(self, raw: str, sourcetype: str, *, source: str = "", host: str = "", index: str = "",
               keep_empty_json: bool = True, keep_null_json: bool = True) -> SearchResult:
        knowledge = self.knowledge_for(sourcetype)
        fields: Fields = {"_raw": [raw], "sourcetype": [sourcetype]}
        for name, value in (("source", source), ("host", host), ("index", index)):
            if value:
                fields[name] = [value]
        extracted: Fields = {}
        for enabled in (knowledge.indexed_json, knowledge.kv_json):
            if enabled:  # both on: Splunk extracts every field twice, which is what this reproduces
                for name, values in flatten_json(raw, keep_empty=keep_empty_json, keep_null=keep_null_json,
                                                 cutoff=self.json_cutoff).items():
                    extracted.setdefault(name, []).extend(values)
        for name, values in extracted.items():
            if name not in METADATA_FIELDS:
                fields[name] = values
            elif name in knowledge.reads():
                raise KnowledgeError(f"the body has a JSON key {name!r}, which collides with Splunk's {name} field, "
                                     f"and the confs read {name}: which one they get is not documented")
        fields = self._alias(knowledge, fields)
        fields = self._calculate(knowledge, fields)
        fields = self._lookup(knowledge, fields)
        eventtypes = self._match_eventtypes(fields)
        fields["eventtype"] = eventtypes
        tags = self._tags(fields, eventtypes)
        if tags:
            fields["tag"] = tags
        if not eventtypes:
            del fields["eventtype"]
        return SearchResult(fields, eventtypes, tags)

    @staticmethod
    def _alias(knowledge: SourcetypeKnowledge, before: Fields) -> Fields:
        after = dict(before)
        for alias in knowledge.aliases:
            values = before.get(alias.source)
            if values:
                if alias.overwrite or alias.alias not in before:
                    after[alias.alias] = list(values)
            elif alias.overwrite:
                after.pop(alias.alias, None)
        return after

    @staticmethod
    def _calculate(knowledge: SourcetypeKnowledge, before: Fields) -> Fields:
        after = dict(before)
        for calc in knowledge.calculated:
            try:
                values = to_field_values(calc.node.evaluate(before), calc.expression)
            except EvalError as err:
                raise KnowledgeError(f"{calc.key}: {err}") from None
            if values is None:
                after.pop(calc.field, None)
            else:
                after[calc.field] = values
        return after

    def _lookup(self, knowledge: SourcetypeKnowledge, before: Fields) -> Fields:
        after = dict(before)
        for lookup in knowledge.lookups:
            for _, event_field in lookup.inputs:
                if event_field not in before and event_field in after:
                    raise KnowledgeError(f"LOOKUP-{lookup.class_name} reads {event_field}, which only an earlier "
                                         f"automatic lookup sets (Splunk does not support nested automatic lookups)")
            try:
                lookup.apply(self.table(lookup.table_name), before, after)
            except LookupDefinitionError as err:
                raise KnowledgeError(str(err)) from None
        return after

    def _match_eventtypes(self, fields: Fields) -> List[str]:
        eventtypes = self.eventtypes()
        cache: Dict[str, bool] = {}
        visiting: List[str] = []

        def resolve(pattern: str, event_fields: Fields) -> bool:
            return any(matches(name) for name in eventtypes if value_matches(pattern, name))

        def matches(name: str) -> bool:
            if name not in cache:
                if name in visiting:
                    raise KnowledgeError(f"eventtype {name} refers to itself")
                visiting.append(name)
                cache[name] = eventtypes[name].matches(fields, resolve)
                visiting.pop()
            return cache[name]

        return sorted(name for name in eventtypes if matches(name))

    def _tags(self, fields: Fields, eventtypes: List[str]) -> List[str]:
        tags = set()
        for stanza, settings in self.tags_conf.stanzas.items():
            if "=" not in stanza:
                continue
            name, value = stanza.split("=", 1)
            value = urllib.parse.unquote(value)
            present = value in eventtypes if name == "eventtype" else value in fields.get(name, [])
            if not present:
                continue
            for tag, state in settings.items():
                if state.strip().lower() == "enabled":
                    tags.add(tag)
        return sorted(tags)


def _check_reads(sourcetype: str, key: str, names: List[str]) -> None:
    """Internal fields (``_time``, ``_indextime``...) are not simulated, and whether JSON keys with leading
    underscores (``__topic__``) survive extraction is not documented, so knowledge must not read them."""
    internal = sorted({name for name in names if name.startswith("_") and name != "_raw"})
    if internal:
        raise KnowledgeError(f"[{sourcetype}] {key} reads {', '.join(internal)}: internal or underscore fields "
                             f"are not simulated")


def _is_disabled(settings: Dict[str, str]) -> bool:
    return settings.get("disabled", "0").strip().lower() in ("1", "true", "t", "yes")
