"""The subset of Splunk's search language that eventtype searches use here.

Supported: ``field=value`` and ``field!=value`` (value bare or double-quoted, ``*`` a wildcard in both, matched
case-insensitively; field names case-sensitive), ``field IN (a, "b c", d*)``, ``NOT``, ``AND``, ``OR``, implicit
AND between terms, parentheses, and ``eventtype=<name>`` (evaluated recursively). Operators must be upper case, as
in Splunk (lower-case ``or`` is a search term).

Splunk evaluates ``OR`` before ``AND`` (Search Manual, "Boolean expressions": parentheses, NOT, OR, AND), so
``a=1 b=2 OR c=3`` means ``a=1 AND (b=2 OR c=3)``; the parser follows that order.

On a multivalue field ``field=value`` holds when any value matches. ``field!=value`` holds only when the field
exists and no value matches, while ``NOT field=value`` also holds when the field is absent (Search Manual,
"Difference between NOT and !="). ``field=*`` holds when the field exists.

Not supported (a ``SearchError``, never a silent mismatch): bare terms matched against ``_raw``, ``tag=``
(tags are computed after eventtypes), numeric ``< >`` comparisons, pipes, subsearches, ``TERM()``/``CASE()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

Fields = Dict[str, List[str]]
EventtypeResolver = Callable[[str, Fields], bool]


class SearchError(Exception):
    """The search is outside the simulated subset or malformed."""


@dataclass(frozen=True)
class _Token:
    kind: str   # "word" | "quoted" | "(" | ")" | "," | "=" | "!=" | "end"
    text: str
    pos: int


def _tokenize(text: str) -> List[_Token]:
    tokens: List[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            tokens.append(_Token(char, char, i))
            i += 1
        elif text.startswith("!=", i):
            tokens.append(_Token("!=", "!=", i))
            i += 2
        elif char == "=":
            tokens.append(_Token("=", "=", i))
            i += 1
        elif char in "<>|[]`":
            raise SearchError(f"{char!r} at {i} is outside the simulated search subset: {text!r}")
        elif char == '"':
            out, j = [], i + 1
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                out.append(text[j])
                j += 1
            if j >= len(text):
                raise SearchError(f"unterminated quote at {i}: {text!r}")
            tokens.append(_Token("quoted", "".join(out), i))
            i = j + 1
        else:
            match = re.match(r'[^\s()=,"!<>|]+(?:![^=\s()][^\s()=,"!<>|]*)*', text[i:])
            if not match:
                raise SearchError(f"cannot read {text[i:i + 20]!r} at {i}")
            tokens.append(_Token("word", match.group(0), i))
            i += len(match.group(0))
    tokens.append(_Token("end", "", len(text)))
    return tokens


class Matcher:
    def matches(self, fields: Fields, eventtypes: EventtypeResolver) -> bool:
        raise NotImplementedError


def value_matches(pattern: str, value: str) -> bool:
    """Splunk search value match: case-insensitive, ``*`` the only wildcard."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


@dataclass
class FieldTerm(Matcher):
    field: str
    patterns: List[str]
    negated: bool = False   # field!=value

    def matches(self, fields: Fields, eventtypes: EventtypeResolver) -> bool:
        if self.field == "eventtype":
            hit = any(eventtypes(pattern, fields) for pattern in self.patterns)
            return not hit if self.negated else hit
        values = fields.get(self.field)
        if not values:
            return False
        hit = any(value_matches(pattern, value) for pattern in self.patterns for value in values)
        return not hit if self.negated else hit


@dataclass
class Not(Matcher):
    inner: Matcher

    def matches(self, fields: Fields, eventtypes: EventtypeResolver) -> bool:
        return not self.inner.matches(fields, eventtypes)


@dataclass
class AllOf(Matcher):
    parts: List[Matcher]

    def matches(self, fields: Fields, eventtypes: EventtypeResolver) -> bool:
        return all(part.matches(fields, eventtypes) for part in self.parts)


@dataclass
class AnyOf(Matcher):
    parts: List[Matcher]

    def matches(self, fields: Fields, eventtypes: EventtypeResolver) -> bool:
        return any(part.matches(fields, eventtypes) for part in self.parts)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _is_keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.text == word

    def parse(self) -> Matcher:
        node = self._and()
        if self._peek().kind != "end":
            raise SearchError(f"unexpected {self._peek().text!r} at {self._peek().pos}: {self.text!r}")
        return node

    def _and(self) -> Matcher:
        parts = [self._or()]
        while self._peek().kind not in ("end", ")"):
            if self._is_keyword("AND"):
                self._take()
            parts.append(self._or())
        return parts[0] if len(parts) == 1 else AllOf(parts)

    def _or(self) -> Matcher:
        parts = [self._not()]
        while self._is_keyword("OR"):
            self._take()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else AnyOf(parts)

    def _not(self) -> Matcher:
        if self._is_keyword("NOT"):
            self._take()
            return Not(self._not())
        return self._primary()

    def _primary(self) -> Matcher:
        token = self._take()
        if token.kind == "(":
            node = self._and()
            if self._take().kind != ")":
                raise SearchError(f"missing ')' for '(' at {token.pos}: {self.text!r}")
            return node
        if token.kind != "word" or token.text in ("AND", "OR", "NOT"):
            raise SearchError(f"expected a field term at {token.pos}, got {token.text or 'end'!r}: {self.text!r}")
        following = self._peek()
        if following.kind in ("=", "!="):
            self._take()
            value = self._take()
            if value.kind not in ("word", "quoted"):
                raise SearchError(f"missing value after {token.text}{following.text} at {value.pos}")
            return self._field_term(token.text, [value.text], following.kind == "!=")
        if following.kind == "word" and following.text == "IN":
            self._take()
            return self._field_term(token.text, self._in_list(), False)
        raise SearchError(f"bare term {token.text!r} (matched against _raw by Splunk) is not simulated; "
                          f"use field=value: {self.text!r}")

    def _field_term(self, field: str, patterns: List[str], negated: bool) -> Matcher:
        if field in ("tag",) or field.startswith("tag::"):
            raise SearchError(f"{field}= in an eventtype search is not simulated (tags come after eventtypes)")
        return FieldTerm(field, patterns, negated)

    def _in_list(self) -> List[str]:
        if self._take().kind != "(":
            raise SearchError(f"IN needs a parenthesised list: {self.text!r}")
        values: List[str] = []
        while True:
            token = self._take()
            if token.kind not in ("word", "quoted"):
                raise SearchError(f"bad IN list item {token.text!r} at {token.pos}: {self.text!r}")
            values.append(token.text)
            separator = self._take()
            if separator.kind == ")":
                return values
            if separator.kind != ",":
                raise SearchError(f"IN list items are separated by commas, at {separator.pos}: {self.text!r}")


def parse_search(text: str) -> Matcher:
    return _Parser(text).parse()


def field_terms(matcher: Matcher) -> List[FieldTerm]:
    """Every field term of a parsed search (for the lint: which sourcetypes it names)."""
    if isinstance(matcher, FieldTerm):
        return [matcher]
    if isinstance(matcher, Not):
        return field_terms(matcher.inner)
    if isinstance(matcher, (AllOf, AnyOf)):
        terms: List[FieldTerm] = []
        for part in matcher.parts:
            terms += field_terms(part)
        return terms
    return []


def required_sourcetype_patterns(matcher: Matcher) -> Optional[List[str]]:
    """Sourcetype patterns that every match must satisfy, or None when the search does not pin one down."""
    if isinstance(matcher, FieldTerm):
        return list(matcher.patterns) if matcher.field == "sourcetype" and not matcher.negated else None
    if isinstance(matcher, AllOf):
        for part in matcher.parts:
            found = required_sourcetype_patterns(part)
            if found is not None:
                return found
        return None
    if isinstance(matcher, AnyOf):
        collected: List[str] = []
        for part in matcher.parts:
            found = required_sourcetype_patterns(part)
            if found is None:
                return None
            collected += found
        return collected
    return None


def patterns_cover(patterns: Sequence[str], value: str) -> bool:
    return any(value_matches(pattern, value) for pattern in patterns)
