"""A subset of Splunk's eval language, for ``EVAL-<field>`` calculated fields, with Splunk's null rules.

Supported syntax: double-quoted string literals (``\\"`` and ``\\\\`` escapes), numbers, field names bare
(``[A-Za-z_][A-Za-z0-9_]*``) or single-quoted (``'userIdentity.userName'``), parentheses, the operators
``* / %``, ``+ - .``, ``= == != < <= > >= LIKE IN (...)``, ``NOT``, ``AND``, ``XOR``, ``OR`` (keywords in any
case), and the functions in ``FUNCTIONS``. Anything else is an ``EvalError`` at parse time, never a silent null.

Values: ``None`` is null; a field's single value is a ``FieldValue`` (a string that compares and computes as a
number when it looks like one, as Splunk's field values do); a field with several values is a ``list`` (a
multivalue); string literals are ``str``; numbers are ``int``/``float``; booleans exist only inside conditions
(a calculated field cannot hold one).

Null rules: arithmetic, concatenation, comparisons and string functions with a null operand give null; ``AND``
and ``OR`` are three-valued (false AND null = false, true OR null = true); a null condition in ``if``/``case``
counts as false; ``coalesce`` skips nulls (an empty string is not null).

A bare name written with a dot (``userIdentity.type``) is rejected: Splunk reads ``.`` as concatenation there,
so the name must be single-quoted. A multivalue field used where one value is expected is an error rather than
a guess.
"""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

Fields = Dict[str, List[str]]


class EvalError(Exception):
    """The expression is outside the simulated subset, malformed, or cannot be evaluated as Splunk would."""


class FieldValue(str):
    """One value read from an event field."""


Value = Union[None, str, int, float, bool, List[str]]

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _as_number(value: Value) -> Optional[Union[int, float]]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, FieldValue) and _NUMBER_RE.match(value.strip()):
        text = value.strip()
        return int(text) if re.match(r"^[+-]?\d+$", text) else float(text)
    return None


def format_number(number: Union[int, float]) -> str:
    if isinstance(number, float):
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    return str(number)


def _as_text(value: Value) -> str:
    if isinstance(value, bool):
        raise EvalError("a boolean cannot be used as a string")
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, list):
        raise EvalError("a multivalue field is used where one value is expected (use mvindex)")
    return str(value)


# --------------------------------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    kind: str    # "str" | "num" | "field" | "name" | "op" | "kw" | "end"
    text: str
    pos: int


_KEYWORDS = {"AND", "OR", "NOT", "XOR", "LIKE", "IN"}
_OPERATORS = ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ".", "(", ")", ",")


def tokenize(text: str) -> List[Token]:
    tokens: List[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char in "\"'":
            value, end = _read_quoted(text, i, char)
            tokens.append(Token("str" if char == '"' else "field", value, i))
            i = end
            continue
        number = re.match(r"\d+(\.\d+)?", text[i:])
        if number and not (tokens and tokens[-1].kind == "name" and tokens[-1].pos == i):
            tokens.append(Token("num", number.group(0), i))
            i += len(number.group(0))
            continue
        name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
        if name:
            word = name.group(0)
            end = i + len(word)
            if end < len(text) and text[end] == "." and end + 1 < len(text) and \
                    (text[end + 1].isalnum() or text[end + 1] == "_"):
                raise EvalError(f"bare field name with a dot at {i} ({text[i:end + 8]!r}...): Splunk reads '.' as "
                                f"concatenation there; single-quote the name")
            kind = "kw" if word.upper() in _KEYWORDS else "name"
            tokens.append(Token(kind, word.upper() if kind == "kw" else word, i))
            i = end
            continue
        for operator in _OPERATORS:
            if text.startswith(operator, i):
                tokens.append(Token("op", operator, i))
                i += len(operator)
                break
        else:
            raise EvalError(f"unexpected character {char!r} at {i}")
    tokens.append(Token("end", "", len(text)))
    return tokens


def _read_quoted(text: str, start: int, quote: str) -> Tuple[str, int]:
    out = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise EvalError(f"unterminated {quote}-quoted text at {start}")


# --------------------------------------------------------------------------------------------------- AST

class Node:
    def evaluate(self, fields: Fields) -> Value:
        raise NotImplementedError

    def field_names(self) -> List[str]:
        return []


@dataclass
class Literal(Node):
    value: Value

    def evaluate(self, fields: Fields) -> Value:
        return self.value


@dataclass
class FieldRef(Node):
    name: str

    def evaluate(self, fields: Fields) -> Value:
        values = fields.get(self.name)
        if not values:
            return None
        if len(values) == 1:
            return FieldValue(values[0])
        return list(values)

    def field_names(self) -> List[str]:
        return [self.name]


@dataclass
class Unary(Node):
    op: str
    operand: Node

    def evaluate(self, fields: Fields) -> Value:
        value = self.operand.evaluate(fields)
        if self.op == "NOT":
            truth = _truth(value, "NOT")
            return None if truth is None else not truth
        number = _as_number(value)
        if value is None:
            return None
        if number is None:
            raise EvalError(f"unary minus on a non-number {value!r}")
        return -number

    def field_names(self) -> List[str]:
        return self.operand.field_names()


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node

    def evaluate(self, fields: Fields) -> Value:
        if self.op in ("AND", "OR", "XOR"):
            return _logic(self.op, self.left.evaluate(fields), self.right.evaluate(fields))
        left, right = self.left.evaluate(fields), self.right.evaluate(fields)
        if left is None or right is None:
            return None
        if self.op in ("=", "==", "!=", "<", "<=", ">", ">="):
            return _compare(self.op, left, right)
        if self.op == "LIKE":
            return _like(_as_text(left), _as_text(right))
        if self.op == ".":
            return _as_text(left) + _as_text(right)
        return _arithmetic(self.op, left, right)

    def field_names(self) -> List[str]:
        return self.left.field_names() + self.right.field_names()


@dataclass
class InList(Node):
    operand: Node
    choices: List[Node]

    def evaluate(self, fields: Fields) -> Value:
        value = self.operand.evaluate(fields)
        if value is None:
            return None
        return any(choice is not None and _compare("=", value, choice)
                   for choice in (node.evaluate(fields) for node in self.choices))

    def field_names(self) -> List[str]:
        names = self.operand.field_names()
        for node in self.choices:
            names += node.field_names()
        return names


@dataclass
class Call(Node):
    name: str
    args: List[Node]

    def evaluate(self, fields: Fields) -> Value:
        spec = FUNCTIONS[self.name]
        if spec.lazy:
            return spec.impl(self.args, fields)
        return spec.impl(*[arg.evaluate(fields) for arg in self.args])

    def field_names(self) -> List[str]:
        names: List[str] = []
        for arg in self.args:
            names += arg.field_names()
        return names


def _truth(value: Value, where: str) -> Optional[bool]:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    raise EvalError(f"{where} needs a boolean, got {value!r}")


def _logic(op: str, left: Value, right: Value) -> Optional[bool]:
    a, b = _truth(left, op), _truth(right, op)
    if op == "AND":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if op == "OR":
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    return None if a is None or b is None else a != b


def _compare(op: str, left: Value, right: Value) -> bool:
    if isinstance(left, list) or isinstance(right, list):
        raise EvalError("comparison with a multivalue field is not simulated (use mvindex or mvfind)")
    if isinstance(left, bool) or isinstance(right, bool):
        raise EvalError("comparison of a boolean")
    a_num, b_num = _as_number(left), _as_number(right)
    if a_num is not None and b_num is not None:
        return _ordered(op, a_num, b_num)
    return _ordered(op, _as_text(left), _as_text(right))


def _ordered(op: str, a: Any, b: Any) -> bool:
    return {"=": a == b, "==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _arithmetic(op: str, left: Value, right: Value) -> Value:
    a, b = _as_number(left), _as_number(right)
    if a is None or b is None:
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            return str(left) + str(right)
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return None
    if op == "/":
        result = a / b
        return int(result) if result.is_integer() and isinstance(a, int) and isinstance(b, int) else result
    return a % b


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


# --------------------------------------------------------------------------------------------------- functions

@dataclass(frozen=True)
class FunctionSpec:
    impl: Callable[..., Value]
    min_args: int
    max_args: int
    lazy: bool = False  # receives (nodes, fields) so it evaluates only what it needs


def _scalar(value: Value, name: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, list):
        raise EvalError(f"{name}() got a multivalue field; the simulator does not guess per-value semantics")
    return _as_text(value)


def _fn_if(nodes: Sequence[Node], fields: Fields) -> Value:
    return nodes[1].evaluate(fields) if _truth(nodes[0].evaluate(fields), "if") else nodes[2].evaluate(fields)


def _fn_case(nodes: Sequence[Node], fields: Fields) -> Value:
    if len(nodes) % 2:
        raise EvalError("case() needs condition/value pairs")
    for index in range(0, len(nodes), 2):
        if _truth(nodes[index].evaluate(fields), "case"):
            return nodes[index + 1].evaluate(fields)
    return None


def _fn_coalesce(nodes: Sequence[Node], fields: Fields) -> Value:
    for node in nodes:
        value = node.evaluate(fields)
        if value is not None:
            return value
    return None


def _mv(value: Value) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, list):
        return value
    return [_as_text(value)]


def _single_or_list(values: List[str]) -> Value:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _fn_mvindex(value: Value, start: Value, end: Value = None) -> Value:
    values = _mv(value)
    if values is None or start is None:
        return None
    first = _as_int(start, "mvindex")
    if first < 0:
        first += len(values)
    if end is None:
        return values[first] if 0 <= first < len(values) else None
    last = _as_int(end, "mvindex")
    if last < 0:
        last += len(values)
    if first < 0 or first >= len(values) or last < first:
        return None
    return _single_or_list(values[first:last + 1])


def _as_int(value: Value, name: str) -> int:
    number = _as_number(FieldValue(value) if isinstance(value, str) else value)
    if number is None or int(number) != number:
        raise EvalError(f"{name}() needs an integer, got {value!r}")
    return int(number)


def _fn_split(value: Value, delimiter: Value) -> Value:
    text = _scalar(value, "split")
    if text is None or delimiter is None:
        return None
    separator = _as_text(delimiter)
    return _single_or_list(list(text) if separator == "" else text.split(separator))


def _fn_substr(value: Value, start: Value, length: Value = None) -> Value:
    text = _scalar(value, "substr")
    if text is None or start is None:
        return None
    begin = _as_int(start, "substr")
    begin = len(text) + begin if begin < 0 else max(begin - 1, 0)
    if length is None:
        return text[begin:]
    return text[begin:begin + _as_int(length, "substr")]


_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


def compile_regex(pattern: str) -> "re.Pattern[str]":
    """Compile a PCRE pattern with Python's re; PCRE allows ``^(?i)...``, which Python 3.11+ rejects, so inline
    flags preceded only by anchors move to the front (same meaning). Other differences are errors, not guesses."""
    try:
        return re.compile(pattern)
    except re.error as err:
        flags = _INLINE_FLAGS.search(pattern)
        if flags and not re.search(r"[A-Za-z0-9\\]", pattern[:flags.start()]):
            return re.compile(flags.group(0) + pattern[:flags.start()] + pattern[flags.end():])
        raise EvalError(f"regex {pattern!r} does not compile with Python's re ({err}); PCRE may differ") from None


def _fn_replace(value: Value, pattern: Value, replacement: Value) -> Value:
    text = _scalar(value, "replace")
    if text is None or pattern is None or replacement is None:
        return None
    try:
        return compile_regex(_as_text(pattern)).sub(_as_text(replacement).replace("\\0", "\\g<0>"), text)
    except re.error as err:
        raise EvalError(f"replace(): bad replacement {replacement!r} ({err})") from None


def _fn_match(value: Value, pattern: Value) -> Value:
    text = _scalar(value, "match")
    if text is None or pattern is None:
        return None
    return compile_regex(_as_text(pattern)).search(text) is not None


def _fn_like(value: Value, pattern: Value) -> Value:
    text = _scalar(value, "like")
    if text is None or pattern is None:
        return None
    return _like(text, _as_text(pattern))


def _fn_tonumber(value: Value, base: Value = None) -> Value:
    text = _scalar(value, "tonumber")
    if text is None:
        return None
    if base is not None:
        try:
            return int(text.strip(), _as_int(base, "tonumber"))
        except ValueError:
            return None
    return _as_number(FieldValue(text))


def _fn_tostring(value: Value, form: Value = None) -> Value:
    if form is not None:
        raise EvalError("tostring() with a format argument is not simulated")
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    return _scalar(value, "tostring")


def _fn_cidrmatch(cidr: Value, address: Value) -> Value:
    network, ip = _scalar(cidr, "cidrmatch"), _scalar(address, "cidrmatch")
    if network is None or ip is None:
        return None
    try:
        return ipaddress.ip_address(ip.strip()) in ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return False


def _text_fn(name: str, convert: Callable[[str], Value]) -> Callable[[Value], Value]:
    def impl(value: Value) -> Value:
        text = _scalar(value, name)
        return None if text is None else convert(text)
    return impl


def _trim_fn(name: str, method: str) -> Callable[..., Value]:
    def impl(value: Value, chars: Value = None) -> Value:
        text = _scalar(value, name)
        if text is None:
            return None
        return getattr(text, method)(None if chars is None else _as_text(chars))
    return impl


def _fn_mvcount(value: Value) -> Value:
    values = _mv(value)
    return None if values is None else len(values)


def _fn_mvjoin(value: Value, delimiter: Value) -> Value:
    values = _mv(value)
    return None if values is None or delimiter is None else _as_text(delimiter).join(values)


def _fn_mvappend(*values: Value) -> Value:
    out: List[str] = []
    for value in values:
        out += _mv(value) or []
    return _single_or_list(out)


def _fn_in(value: Value, *choices: Value) -> Value:
    if value is None:
        return None
    return any(choice is not None and _compare("=", value, choice) for choice in choices)


def _fn_isnum(value: Value) -> bool:
    return _as_number(value) is not None


def _fn_isstr(value: Value) -> bool:
    return isinstance(value, str) and _as_number(value) is None


FUNCTIONS: Dict[str, FunctionSpec] = {
    "if": FunctionSpec(_fn_if, 3, 3, lazy=True),
    "case": FunctionSpec(_fn_case, 2, 99, lazy=True),
    "coalesce": FunctionSpec(_fn_coalesce, 1, 99, lazy=True),
    "isnull": FunctionSpec(lambda value: value is None, 1, 1),
    "isnotnull": FunctionSpec(lambda value: value is not None, 1, 1),
    "isnum": FunctionSpec(_fn_isnum, 1, 1),
    "isstr": FunctionSpec(_fn_isstr, 1, 1),
    "null": FunctionSpec(lambda: None, 0, 0),
    "true": FunctionSpec(lambda: True, 0, 0),
    "false": FunctionSpec(lambda: False, 0, 0),
    "len": FunctionSpec(_text_fn("len", len), 1, 1),
    "lower": FunctionSpec(_text_fn("lower", str.lower), 1, 1),
    "upper": FunctionSpec(_text_fn("upper", str.upper), 1, 1),
    "trim": FunctionSpec(_trim_fn("trim", "strip"), 1, 2),
    "ltrim": FunctionSpec(_trim_fn("ltrim", "lstrip"), 1, 2),
    "rtrim": FunctionSpec(_trim_fn("rtrim", "rstrip"), 1, 2),
    "urldecode": FunctionSpec(_text_fn("urldecode", urllib.parse.unquote), 1, 1),
    "like": FunctionSpec(_fn_like, 2, 2),
    "match": FunctionSpec(_fn_match, 2, 2),
    "replace": FunctionSpec(_fn_replace, 3, 3),
    "substr": FunctionSpec(_fn_substr, 2, 3),
    "split": FunctionSpec(_fn_split, 2, 2),
    "mvindex": FunctionSpec(_fn_mvindex, 2, 3),
    "mvcount": FunctionSpec(_fn_mvcount, 1, 1),
    "mvjoin": FunctionSpec(_fn_mvjoin, 2, 2),
    "mvappend": FunctionSpec(_fn_mvappend, 1, 99),
    "in": FunctionSpec(_fn_in, 2, 99),
    "tonumber": FunctionSpec(_fn_tonumber, 1, 2),
    "tostring": FunctionSpec(_fn_tostring, 1, 2),
    "cidrmatch": FunctionSpec(_fn_cidrmatch, 2, 2),
}


# --------------------------------------------------------------------------------------------------- parser

class _Parser:
    """Precedence, lowest first: OR, XOR, AND, NOT, comparison (= != < > LIKE IN), + - ., * / %, unary -."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def parse(self) -> Node:
        node = self._or()
        if self._peek().kind != "end":
            raise EvalError(f"unexpected {self._peek().text!r} at {self._peek().pos} in {self.text!r}")
        return node

    def _peek(self) -> Token:
        return self.tokens[self.index]

    def _take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _accept(self, kind: str, *texts: str) -> Optional[Token]:
        token = self._peek()
        if token.kind == kind and (not texts or token.text in texts):
            return self._take()
        return None

    def _expect(self, kind: str, text: str) -> None:
        if not self._accept(kind, text):
            raise EvalError(f"expected {text!r} at {self._peek().pos} in {self.text!r}")

    def _binary_level(self, operand: Callable[[], Node], kind: str, ops: Tuple[str, ...]) -> Node:
        node = operand()
        while True:
            token = self._accept(kind, *ops)
            if not token:
                return node
            node = Binary(token.text, node, operand())

    def _or(self) -> Node:
        return self._binary_level(self._xor, "kw", ("OR",))

    def _xor(self) -> Node:
        return self._binary_level(self._and, "kw", ("XOR",))

    def _and(self) -> Node:
        return self._binary_level(self._not, "kw", ("AND",))

    def _not(self) -> Node:
        if self._accept("kw", "NOT"):
            return Unary("NOT", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        node = self._additive()
        while True:
            token = self._accept("op", "=", "==", "!=", "<", "<=", ">", ">=") or self._accept("kw", "LIKE")
            if token:
                node = Binary(token.text, node, self._additive())
                continue
            if self._accept("kw", "IN"):
                self._expect("op", "(")
                choices = [self._or()]
                while self._accept("op", ","):
                    choices.append(self._or())
                self._expect("op", ")")
                node = InList(node, choices)
                continue
            return node

    def _additive(self) -> Node:
        return self._binary_level(self._multiplicative, "op", ("+", "-", "."))

    def _multiplicative(self) -> Node:
        return self._binary_level(self._unary, "op", ("*", "/", "%"))

    def _unary(self) -> Node:
        if self._accept("op", "-"):
            return Unary("-", self._unary())
        return self._primary()

    def _primary(self) -> Node:
        token = self._take()
        if token.kind == "str":
            return Literal(token.text)
        if token.kind == "num":
            return Literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "field":
            return FieldRef(token.text)
        if token.kind == "op" and token.text == "(":
            node = self._or()
            self._expect("op", ")")
            return node
        if token.kind in ("name", "kw") and self._peek().kind == "op" and self._peek().text == "(":
            return self._call(token)
        if token.kind == "name":
            return FieldRef(token.text)
        raise EvalError(f"unexpected {token.text or 'end'!r} at {token.pos} in {self.text!r}")

    def _call(self, name_token: Token) -> Node:
        name = name_token.text.lower()
        if name not in FUNCTIONS:
            raise EvalError(f"function {name_token.text}() is not supported by the simulator "
                            f"(supported: {', '.join(sorted(FUNCTIONS))})")
        self._expect("op", "(")
        args: List[Node] = []
        if not self._accept("op", ")"):
            args.append(self._or())
            while self._accept("op", ","):
                args.append(self._or())
            self._expect("op", ")")
        spec = FUNCTIONS[name]
        if not spec.min_args <= len(args) <= spec.max_args:
            raise EvalError(f"{name}() takes {spec.min_args}..{spec.max_args} arguments, got {len(args)}")
        return Call(name, args)


def parse_eval(text: str) -> Node:
    return _Parser(text).parse()


def to_field_values(result: Value, expression: str) -> Optional[List[str]]:
    """What a calculated field holds after its expression: None removes the field."""
    if result is None:
        return None
    if isinstance(result, bool):
        raise EvalError(f"the result is a boolean, which a field cannot hold: {expression!r}")
    if isinstance(result, list):
        return list(result)
    return [_as_text(result)]
