"""CSV lookups from transforms.conf and automatic ``LOOKUP-<class>`` application.

transforms.conf settings simulated (Knowledge Manager Manual, "Add field matching rules to your lookup
configuration"): ``filename``, ``match_type = WILDCARD(f)[, CIDR(g)]``, ``max_matches`` (default 100 without a
``time_field``), ``min_matches`` (default 0) with ``default_match``, ``case_sensitive_match`` (default true).
Rows match in file order. KV store, external and time-bounded lookups are errors.

``LOOKUP-<class> = <table> (<lookup_field> [AS <event_field>])+ [OUTPUT|OUTPUTNEW (<lookup_field> [AS
<event_field>])+]``: with no output clause every other column is output as with OUTPUT. OUTPUT overwrites the
event field, and with no match it leaves the field empty (the conservative reading: a conf must not rely on an
earlier value surviving an OUTPUT miss). OUTPUTNEW writes only output fields the event does not have yet.
Several matches make a multivalue field in row order; empty cells output nothing.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .conf import ConfFile

Fields = Dict[str, List[str]]


class LookupDefinitionError(Exception):
    """A lookup definition or invocation that the simulator cannot honour."""


@dataclass
class LookupTable:
    name: str
    path: str
    columns: List[str]
    rows: List[Dict[str, str]]
    wildcard_fields: List[str] = field(default_factory=list)
    cidr_fields: List[str] = field(default_factory=list)
    max_matches: int = 100
    min_matches: int = 0
    default_match: str = ""
    case_sensitive: bool = True

    def matching_rows(self, keys: Dict[str, str]) -> List[Dict[str, str]]:
        found = []
        for row in self.rows:
            if all(self._cell_matches(column, row.get(column, ""), value) for column, value in keys.items()):
                found.append(row)
                if len(found) >= self.max_matches:
                    break
        return found

    def _cell_matches(self, column: str, cell: str, value: str) -> bool:
        if column in self.cidr_fields:
            try:
                return ipaddress.ip_address(value.strip()) in ipaddress.ip_network(cell.strip(), strict=False)
            except ValueError:
                return False
        flags = 0 if self.case_sensitive else re.IGNORECASE
        if column in self.wildcard_fields:
            regex = ".*".join(re.escape(part) for part in cell.split("*"))
            return re.fullmatch(regex, value, flags | re.DOTALL) is not None
        return cell == value if self.case_sensitive else cell.lower() == value.lower()


_TRUE = ("1", "true", "t", "yes", "y", "on")


def load_lookup_table(transforms: ConfFile, name: str, lookups_dir: str) -> LookupTable:
    if name not in transforms.stanzas:
        raise LookupDefinitionError(f"transforms.conf has no stanza [{name}]")
    settings = transforms.stanzas[name]
    for unsupported in ("external_type", "collection", "time_field", "external_cmd"):
        if settings.get(unsupported):
            raise LookupDefinitionError(f"[{name}] sets {unsupported}; only CSV lookups without time are simulated")
    filename = settings.get("filename", "")
    if not filename:
        raise LookupDefinitionError(f"[{name}] has no filename")
    path = os.path.join(lookups_dir, filename)
    if not os.path.isfile(path):
        raise LookupDefinitionError(f"[{name}] filename {filename} is not in {lookups_dir}")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = [dict(zip(header, row + [""] * (len(header) - len(row)))) for row in reader if row]
    table = LookupTable(name, path, header, rows)
    for kind, column in re.findall(r"(\w+)\(\s*([^)]*?)\s*\)", settings.get("match_type", "")):
        if kind.upper() == "WILDCARD":
            table.wildcard_fields.append(column)
        elif kind.upper() == "CIDR":
            table.cidr_fields.append(column)
        else:
            raise LookupDefinitionError(f"[{name}] match_type {kind}() is not simulated")
    table.max_matches = int(settings.get("max_matches", "100"))
    table.min_matches = int(settings.get("min_matches", "0"))
    table.default_match = settings.get("default_match", "")
    table.case_sensitive = settings.get("case_sensitive_match", "true").strip().lower() in _TRUE
    return table


@dataclass
class AutomaticLookup:
    class_name: str
    table_name: str
    inputs: List[Tuple[str, str]]          # (lookup column, event field)
    outputs: List[Tuple[str, str]]         # (lookup column, event field); empty = every non-input column
    output_new: bool

    def resolved_outputs(self, table: LookupTable) -> List[Tuple[str, str]]:
        if self.outputs:
            return self.outputs
        inputs = {column for column, _ in self.inputs}
        return [(column, column) for column in table.columns if column not in inputs]

    def apply(self, table: LookupTable, inputs_from: Fields, fields: Fields) -> None:
        """Match on ``inputs_from`` (the pre-lookup fields) and write outputs into ``fields``."""
        rows = self._rows_for(table, inputs_from)
        outputs = self.resolved_outputs(table)
        defaults = max(table.min_matches - len(rows), 0)
        for column, event_field in outputs:
            values = [row[column] for row in rows if row.get(column, "") != ""]
            values += [table.default_match] * defaults if table.default_match != "" else []
            if self.output_new:
                if event_field not in fields and values:
                    fields[event_field] = values
            elif values:
                fields[event_field] = values
            else:
                fields.pop(event_field, None)

    def _rows_for(self, table: LookupTable, inputs_from: Fields) -> List[Dict[str, str]]:
        value_lists = []
        for column, event_field in self.inputs:
            values = inputs_from.get(event_field)
            if not values:
                return []
            value_lists.append((column, values))
        multivalued = [column for column, values in value_lists if len(values) > 1]
        if len(multivalued) > 1:
            raise LookupDefinitionError(f"LOOKUP-{self.class_name}: several multivalue inputs ({', '.join(multivalued)}) "
                               f"are not simulated")
        rows: List[Dict[str, str]] = []
        spread = multivalued[0] if multivalued else None
        candidates = dict(value_lists)[spread] if spread else [None]
        for candidate in candidates:
            keys = {column: (candidate if column == spread else values[0]) for column, values in value_lists}
            rows += table.matching_rows(keys)
        return rows


def parse_automatic_lookup(class_name: str, value: str) -> AutomaticLookup:
    words = [word for word in re.split(r"[\s,]+", value.strip()) if word]
    if not words:
        raise LookupDefinitionError(f"LOOKUP-{class_name} is empty")
    table, rest = words[0], words[1:]
    mode_at: Optional[int] = next((i for i, word in enumerate(rest) if word.upper() in ("OUTPUT", "OUTPUTNEW")),
                                  None)
    input_words = rest if mode_at is None else rest[:mode_at]
    output_words = [] if mode_at is None else rest[mode_at + 1:]
    inputs = _pairs(input_words, class_name, "input")
    outputs = _pairs(output_words, class_name, "output")
    if not inputs:
        raise LookupDefinitionError(f"LOOKUP-{class_name} names no input field")
    if mode_at is not None and not outputs:
        raise LookupDefinitionError(f"LOOKUP-{class_name} has {rest[mode_at]} but no output field")
    output_new = mode_at is not None and rest[mode_at].upper() == "OUTPUTNEW"
    return AutomaticLookup(class_name, table, inputs, outputs, output_new)


def _pairs(words: List[str], class_name: str, what: str) -> List[Tuple[str, str]]:
    pairs: List[Tuple[str, str]] = []
    index = 0
    while index < len(words):
        column = words[index]
        if column.upper() == "AS":
            raise LookupDefinitionError(f"LOOKUP-{class_name}: misplaced AS in the {what} fields")
        if index + 1 < len(words) and words[index + 1].upper() == "AS":
            if index + 2 >= len(words):
                raise LookupDefinitionError(f"LOOKUP-{class_name}: AS without a field name")
            pairs.append((column, words[index + 2]))
            index += 3
        else:
            pairs.append((column, column))
            index += 1
    return pairs
