"""Formula terms in ``confounders:``: ``rcs(age, 4)``, ``log(afp)``, ``grade:nodes``, ``stage*age``.

A term is **parsed, never evaluated**: the text is NFKC-normalised, split
into tokens, parsed into a small syntax tree whose every node is on an
allow-list (column names, numbers, the six functions below, ``:``, ``*``,
``+``, parentheses, and arithmetic inside ``I()``/``log()``/``sqrt()``/
``exp()``/``rcs()``), and the columns are computed by this module's own
interpreter of that tree with numpy. No Python ``eval``/``exec`` runs, ours
or a library's, and a name is only ever looked up as a column of the data.
Anything else is refused with one line (:class:`~causal_hcc.errors.SpecError`,
exit 2 from the CLI) naming the position.

Grammar
-------
After NFKC normalisation (so ``ｌｏｇ`` *is* ``log``: what is checked is what
is computed) and at most :data:`MAX_TERM_CHARS` characters::

    term    := cross ('+' cross)*                 # R's formula operators
    cross   := inter ('*' inter)*                 # a*b = a + b + a:b
    inter   := factor (':' factor)*               # a:b interaction
    factor  := '(' term ')' | variable
    variable:= NAME                               # a column (numeric or categorical)
             | 'rcs' '(' arith [',' knots] ')'    # rms::rcs, default 5 knots
             | 'log' '(' arith ')' | 'sqrt' '(' arith ')' | 'exp' '(' arith ')'
             | 'I' '(' arith ')'                  # arithmetic "as is"
             | 'C' '(' NAME ')'                   # the column as categorical
    knots   := INTEGER (3..7) | '[' number (',' number)* ']' | 'c' '(' number (',' number)* ')'
    arith   := aterm (('+' | '-') aterm)*         # inside the functions only
    aterm   := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom [('**' | '^') unary]          # ^ is a power here, as in R's I(age^2)
    atom    := NUMBER | NAME | '(' arith ')' | ('log' | 'sqrt' | 'exp' | 'I') '(' arith ')'
    NAME    := letter/_/. then letters, digits, _ and .   (R's and Python's names: ecog.ps,
               lambda, class are plain names; no keywords)
             | `backtick quoted`                  # any other name: `2nd`, `my col`, `log(afp)`
    NUMBER  := 12, 1.5, .5, 1e-3                  # finite

Refused, each with one line: string literals (``'...'``, ``"..."``,
f-strings), attribute access (``x.y`` is the *name* ``x.y``; ``x . y`` and
``().__class__`` are syntax errors), any function other than the six
(``eval``, ``open``, ``__import__``, ``getattr``…), keyword arguments,
lambdas, comprehensions, subscripts, ``-`` and ``/`` at formula level
(R's removal and nesting), ``^``/``**`` outside a function (R's crossing
power: ``age^2`` means ``age`` in R; write ``I(age^2)``), a name that
starts with a digit unless quoted (```2nd```), control and invisible
characters (bidi overrides, zero-width spaces, NUL) anywhere, nesting
deeper than :data:`MAX_DEPTH`, more than :data:`MAX_TERMS` terms from one
entry, more than :data:`MAX_MODEL_TERMS` in all and more than
:data:`MAX_TERM_COLUMNS` columns from one term.

Model (R's ``terms`` and ``model.matrix``)
------------------------------------------
The confounder list is one formula, ``entry1 + entry2 + ...``, read as R
reads it: ``a*b`` is ``a + b + a:b``, ``(a + b):c`` is ``a:c + b:c``,
``a:a`` is ``a``, and a term listed twice enters once (``[stage,
"stage*age"]`` = ``stage + age + stage:age``). A categorical variable in a
term is coded by **contrasts** (indicators of its non-reference levels) when
the term without it is in the model (or is empty), else by **indicators of
every level**: R's rule (``model.matrix``; Chambers & Hastie 1992, p. 38),
so ``grade:nodes`` alone gives one slope of ``nodes`` per grade, and
``grade*nodes`` the main effects plus the non-reference slopes. When every
variable of a term is categorical and coded by all its levels (``a:b``
without ``a`` or ``b``), the columns sum to 1 and the last one is aliased
with the baseline; it is left out with a warning (R's ``coxph`` and ``glm``
report it as ``NA``; the fitted model is the same). Column names:
``x`` (numeric), ``x=level``, ``x``, ``x'``, ``x''`` (``rcs``, as rms names
them), ``log(x)``, ``I(age ** 2)`` (arithmetic written canonically, ``^``
as ``**``), ``C(x)=level``, and for a term its variables' names joined by
``:`` in the order the variables first appear (``grade=b:nodes``).

Reference levels: ``reference: {x: level}`` when given (also for a
variable used only inside terms or ``C(x)``); otherwise the most frequent
level for a variable listed on its own (the documented default of
:class:`~causal_hcc.cohort.Cohort`), and the first level in sorted order
(R's ``contr.treatment``) for a variable used only inside terms. Levels of a
categorical variable are limited to ``cohort.MAX_LEVELS`` (50), also after
expansion: an interaction's level combinations count, and ``C(x)`` of a
variable with many values is refused. Level names are never values of a
continuous variable (they would be written to ``results.json``): a numeric
variable made categorical (``C(x)``, ``categorical:``, or text levels that
read as numbers) is refused when a value is not a whole number, when it has
more than :data:`MAX_NUMERIC_LEVELS` distinct values and one is held by
fewer than 5 patients, or when more than half of its (at least 3) distinct
values are held by one patient each (``cohort._continuous_levels``).

Functions
---------
* ``rcs(x, k)``: restricted cubic spline with ``k`` knots (3 to 7) at
  Harrell's default quantiles, exactly as R's ``rms::rcs`` /
  ``Hmisc::rcspline.eval`` (``inclx = TRUE``, ``norm = 2``, ``fractied =
  0.05``, outer knots at the 5th smallest / largest value when n < 100);
  columns ``x``, ``x'``, ``x''``… as rms names them. ``rcs(x, [20, 40,
  60])`` or ``rcs(x, c(20, 40, 60))`` gives the knots. With few distinct
  values the knots are the interior distinct values, or Hmisc's alternate
  quantiles under heavy ties, as R does (fewer columns; the cohort's
  ``warnings`` say so).
* ``log(x)``, ``sqrt(x)``, ``exp(x)``, ``I(...)``: numpy's functions on the
  arithmetic inside (``+ - * / ** ^``, numbers, numeric columns); ``log``
  of a value <= 0 and ``sqrt`` of a negative value are refused naming the
  rows, as is any other non-finite result.
* ``C(x)``: the column ``x`` as a categorical variable.

Knots are computed once on the validated cohort, so a bootstrap resample
(:meth:`~causal_hcc.cohort.Cohort.take`) keeps them, as ``rms`` keeps the
knots of the fitted model.

Why our own parser and interpreter (not formulaic or patsy): both evaluate
the factors of a formula as Python code, and a term written with fullwidth
identifiers (which Python NFKC-normalises) ran arbitrary code through them.
A spec is data; here nothing in it is ever executed.

References
----------
.. [1] Harrell FE. *Regression Modeling Strategies*, 2nd ed. Springer,
   2015, section 2.4.5 (restricted cubic splines, default knot quantiles).
.. [2] Stone CJ, Koo CY. Additive splines in statistics. *Proc Stat Comp
   Sect Am Stat Assoc* 1985:45-48.
.. [3] Chambers JM, Hastie TJ (eds). *Statistical Models in S*. Wadsworth,
   1992, section 2.4.1 (coding of factors in terms; R's ``model.matrix``).
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import numpy as np
import pandas as pd

from causal_hcc.errors import DataError, SpecError

__all__ = ["is_term", "term_variables", "term_matrix", "model_matrix", "rcs_knots", "rcs_basis", "parse_term", "parse_confounders",
           "build_design", "Numeric", "Factor", "Design", "Formula", "normalise", "FUNCTIONS", "MAX_TERM_CHARS",
           "MAX_DEPTH", "MAX_TERMS", "MAX_TERM_COLUMNS", "MAX_MODEL_TERMS", "MAX_NUMERIC_LEVELS"]

#: the functions a term may call (nothing else is ever called)
FUNCTIONS: tuple[str, ...] = ("rcs", "log", "sqrt", "exp", "I", "C")
_ARITH_FUNCTIONS = ("log", "sqrt", "exp", "I")
#: longest term accepted (characters, before and after NFKC normalisation)
MAX_TERM_CHARS = 500
#: deepest nesting of parentheses, calls and signs
MAX_DEPTH = 20
#: most R terms one confounder entry may expand to (``a*b*c*d*e*f`` gives 63)
MAX_TERMS = 64
#: most columns one term may give (bounds the work of products of splines and factors)
MAX_TERM_COLUMNS = 100
#: most distinct terms the whole confounder list may give
MAX_MODEL_TERMS = 1000
#: a numeric variable made categorical with more distinct values than this looks continuous (refused)
MAX_NUMERIC_LEVELS = 20

# characters that make a confounder entry a term rather than a column name
_TERM_CHARS = re.compile(r"[():*`^+\[\]]")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


# --------------------------------------------------------------------------
# text: normalisation, characters, messages
# --------------------------------------------------------------------------
def normalise(text: str) -> str:
    """NFKC normal form (what Python would make of identifiers; what we parse and show)."""
    return unicodedata.normalize("NFKC", text)


def _char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def _shown(text: str, limit: int = 60) -> str:
    """A term quoted in a message: non-printable characters escaped, cut to ``limit``."""
    out = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return out if len(out) <= limit else out[:limit] + "\u2026"


def _is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_."


def _is_name_char(ch: str) -> bool:
    return ch.isalpha() or ch in "_." or unicodedata.category(ch) in ("Nd", "Mn", "Mc")


def _syntactic(name: str) -> bool:
    """A name that needs no backticks (R's and Python's rules, no keywords)."""
    return (bool(name) and _is_name_start(name[0]) and all(_is_name_char(c) for c in name)
            and not (name[0] == "." and len(name) > 1 and name[1].isdigit()))


def non_ascii_note(name: str) -> str:
    """'' for an ASCII name, else a note naming its non-ASCII characters (confusables: Cyrillic 'а' in 'аge')."""
    odd = [c for c in dict.fromkeys(name) if ord(c) > 127]
    if not odd:
        return ""
    return " (it contains non-ASCII characters: " + ", ".join(_char(c) for c in odd[:3]) + ")"


def is_term(name: str, columns: Sequence[str] = ()) -> bool:
    """True when ``name`` is a formula term rather than a column name.

    A data column of that exact name is always the column (``log(afp)`` may
    be a column's name). Otherwise a name holding ``( ) : * ` ^ + [ ]``
    (after NFKC normalisation) is a term.
    """
    return isinstance(name, str) and name not in columns and bool(_TERM_CHARS.search(normalise(name)))


# --------------------------------------------------------------------------
# syntax tree (every node type is on the allow-list; nothing else exists)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Name:
    """A column name (looked up in the data, never evaluated)."""

    name: str


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Knots:
    values: tuple[float, ...]


@dataclass(frozen=True)
class Call:
    fn: str  # one of FUNCTIONS
    args: tuple["Node", ...]


@dataclass(frozen=True)
class BinOp:
    op: str  # arithmetic: + - * / **
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Neg:
    operand: "Node"


@dataclass(frozen=True)
class Plus:
    """Formula ``+`` (a list of terms)."""

    items: tuple["Node", ...]


@dataclass(frozen=True)
class Cross:
    """Formula ``*``: ``a*b`` = ``a + b + a:b``."""

    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Inter:
    """Formula ``:``."""

    left: "Node"
    right: "Node"


Node = Union[Name, Num, Knots, Call, BinOp, Neg, Plus, Cross, Inter]


# --------------------------------------------------------------------------
# tokens and parser
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str  # "name", "num", "op", "end"
    text: str
    pos: int  # 1-based character position in the normalised term


_OPS = ("**", "(", ")", ",", ":", "*", "^", "+", "-", "/", "[", "]")


class _Parser:
    def __init__(self, text: str, where: str):
        self.where = where
        self.text = text
        self.toks = self._tokenize(text)
        self.i = 0
        self.depth = 0

    # ---- errors
    def fail(self, msg: str) -> SpecError:
        return SpecError(f"{self.where}: {msg}")

    # ---- tokens
    def _tokenize(self, s: str) -> list[_Tok]:
        out: list[_Tok] = []
        i, n = 0, len(s)
        while i < n:
            ch = s[i]
            if ch.isspace():
                i += 1
                continue
            if ch == "`":
                j = s.find("`", i + 1)
                if j < 0:
                    raise self.fail(f"unclosed backtick at position {i + 1}")
                if j == i + 1:
                    raise self.fail(f"empty name `` at position {i + 1}")
                out.append(_Tok("name", s[i + 1:j], i + 1))
                i = j + 1
                continue
            if ch in "'\"":
                raise self.fail(f"text in quotes at position {i + 1} is not allowed (a term holds column names, "
                                "numbers and the functions rcs, log, sqrt, exp, I, C; quote a column name with "
                                "backticks, `like this`)")
            if ch.isdigit() or (ch == "." and i + 1 < n and s[i + 1].isdigit()):
                m = _NUMBER.match(s, i)
                j = m.end() if m else i + 1
                if j < n and _is_name_char(s[j]) or not m:
                    k = j
                    while k < n and _is_name_char(s[k]):
                        k += 1
                    word = s[i:k]
                    raise self.fail(f"'{_shown(word)}' at position {i + 1} is not a number; a column name that "
                                    f"starts with a digit must be quoted with backticks: `{_shown(word)}`")
                out.append(_Tok("num", m.group(0), i + 1))
                i = j
                continue
            if _is_name_start(ch):
                j = i + 1
                while j < n and _is_name_char(s[j]):
                    j += 1
                out.append(_Tok("name", s[i:j], i + 1))
                i = j
                continue
            op = "**" if s.startswith("**", i) else ch
            if op in _OPS:
                out.append(_Tok("op", op, i + 1))
                i += len(op)
                continue
            what = {"=": "'=' (keyword arguments, comparisons)", "~": "'~' (a whole formula: list the terms)",
                    "|": "'|'", "%": "'%' (R operators)", "$": "'$'", "@": "'@'", "{": "'{'", "}": "'}'",
                    ";": "';'", "!": "'!'", "&": "'&'", "<": "'<'", ">": "'>'", "\\": "a backslash",
                    "#": "'#'"}.get(ch, f"'{ch}' ({_char(ch)})" if ch.isprintable() else _char(ch))
            raise self.fail(f"{what} at position {i + 1} is not allowed in a term")
        out.append(_Tok("end", "", n + 1))
        return out

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def expect(self, op: str, context: str) -> None:
        if not self.is_op(op):
            raise self.unexpected(f"expected '{op}' {context}")
        self.i += 1

    def unexpected(self, expected: str = "") -> SpecError:
        t = self.tok
        if t.kind == "end":
            return self.fail("the term ends too early" + (f" ({expected})" if expected else ""))
        shown = t.text if t.kind != "name" else (t.text if _syntactic(t.text) else f"`{t.text}`")
        return self.fail(f"unexpected '{_shown(shown, 40)}' at position {t.pos}" + (f" ({expected})" if expected else ""))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep")

    def leave(self) -> None:
        self.depth -= 1

    # ---- formula level
    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("empty term")
        node = self.term()
        if self.tok.kind != "end":
            if self.is_op(")"):
                raise self.fail(f"unmatched ')' at position {self.tok.pos}")
            raise self.unexpected()
        return node

    def term(self) -> Node:
        items = [self.cross()]
        while self.is_op("+"):
            self.i += 1
            items.append(self.cross())
        return items[0] if len(items) == 1 else Plus(tuple(items))

    def cross(self) -> Node:
        node = self.inter()
        while self.is_op("*"):
            self.i += 1
            node = Cross(node, self.inter())
        return node

    def inter(self) -> Node:
        node = self.factor()
        while self.is_op(":"):
            self.i += 1
            node = Inter(node, self.factor())
        return node

    def factor(self) -> Node:
        t = self.tok
        if self.is_op("("):
            self.i += 1
            self.enter()
            node = self.term()
            self.expect(")", f"to close the '(' at position {t.pos}")
            self.leave()
        elif t.kind == "name":
            node = self.call_or_name(formula=True)
        elif t.kind == "num":
            raise self.fail(f"a number ({t.text}) at position {t.pos} is not a term; write arithmetic inside I(), "
                            "e.g. I(age / 10)")
        elif self.is_op("-"):
            raise self.fail(f"'-' at position {t.pos}: removing terms is not supported; list only the terms you "
                            "want")
        else:
            raise self.unexpected()
        if self.is_op("**", "^"):
            op = self.tok.text
            inner = deparse(node)
            raise self.fail(f"'{op}' at position {self.tok.pos} outside I() is R's formula crossing, not a power "
                            f"(R reads age^2 as age); for the power write I({_shown(inner, 30)} ** 2) "
                            f"or I({_shown(inner, 30)}^2)")
        if self.is_op("/"):
            raise self.fail(f"'/' at position {self.tok.pos} outside I() is R's nesting; write a + a:b, or "
                            "I(a / b) for a ratio")
        if self.is_op("-"):
            raise self.fail(f"'-' at position {self.tok.pos}: removing terms is not supported; write arithmetic "
                            "inside I(), e.g. I(a - b)")
        return node

    def call_or_name(self, *, formula: bool) -> Node:
        t = self.tok
        self.i += 1
        if not self.is_op("("):
            return Name(t.text)
        fn = t.text
        if fn not in FUNCTIONS:
            avail = ", ".join(FUNCTIONS)
            raise self.fail(f"unknown function '{_shown(fn, 40)}'{non_ascii_note(fn)}; available: {avail}")
        if not formula and fn in ("rcs", "C"):
            raise self.fail(f"{fn}() at position {t.pos} gives "
                            f"{'several columns' if fn == 'rcs' else 'a categorical variable'}; it cannot be used "
                            "inside arithmetic (I(), log(), sqrt(), exp())")
        open_pos = self.tok.pos
        self.i += 1
        self.enter()
        if fn == "C":
            if self.tok.kind != "name" or self.peek().kind == "op" and self.peek().text == "(":
                raise self.unexpected("C() takes one column name")
            args: tuple[Node, ...] = (Name(self.tok.text),)
            self.i += 1
        elif fn == "rcs":
            x = self.arith()
            if self.is_op(","):
                self.i += 1
                args = (x, self.knots())
            else:
                args = (x,)
        else:
            args = (self.arith(),)
        if self.is_op(","):
            raise self.fail(f"{fn}() at position {t.pos} takes {'one or two arguments' if fn == 'rcs' else 'one argument'}")
        self.expect(")", f"to close {fn}( at position {open_pos}")
        self.leave()
        return Call(fn, args)

    def knots(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Num(self.number(t))
        if self.is_op("[") or (t.kind == "name" and t.text == "c" and self.peek().kind == "op"
                               and self.peek().text == "("):
            close = "]" if self.is_op("[") else ")"
            self.i += 1 if close == "]" else 2
            vals = [self.signed_number()]
            while self.is_op(","):
                self.i += 1
                vals.append(self.signed_number())
            self.expect(close, "to close the knots")
            return Knots(tuple(vals))
        raise self.unexpected("rcs(x, k) takes the number of knots or a list of knots, e.g. [20, 40, 60]")

    def signed_number(self) -> float:
        sign = 1.0
        while self.is_op("-", "+"):
            sign = -sign if self.tok.text == "-" else sign
            self.i += 1
        if self.tok.kind != "num":
            raise self.unexpected("a knot must be a number")
        t = self.tok
        self.i += 1
        return sign * self.number(t)

    def number(self, t: _Tok) -> float:
        v = float(t.text)
        if not math.isfinite(v):
            raise self.fail(f"the number {_shown(t.text, 30)} at position {t.pos} is out of range")
        return v

    # ---- arithmetic (inside the functions)
    def arith(self) -> Node:
        node = self.aterm()
        while self.is_op("+", "-"):
            op = self.tok.text
            self.i += 1
            node = BinOp(op, node, self.aterm())
        return node

    def aterm(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/"):
            op = self.tok.text
            self.i += 1
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_op("-", "+"):
            neg = self.tok.text == "-"
            self.i += 1
            self.enter()
            node = self.unary()
            self.leave()
            return Neg(node) if neg else node
        return self.power()

    def power(self) -> Node:
        node = self.atom()
        if self.is_op("**", "^"):
            self.i += 1
            self.enter()
            node = BinOp("**", node, self.unary())  # right-associative, binds tighter than a leading sign
            self.leave()
        return node

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Num(self.number(t))
        if t.kind == "name":
            return self.call_or_name(formula=False)
        if self.is_op("("):
            self.i += 1
            self.enter()
            node = self.arith()
            self.expect(")", f"to close the '(' at position {t.pos}")
            self.leave()
            return node
        if self.is_op(":"):
            raise self.fail(f"':' at position {t.pos} (an interaction) cannot be used inside a function; write "
                            "a:b outside it, or I(a * b) for the product")
        raise self.unexpected()


def parse_term(text: str) -> Node:
    """The syntax tree of one confounder term (raises :class:`SpecError` with one line if it is not allowed)."""
    if not isinstance(text, str):
        raise SpecError(f"confounder term must be text, got {type(text).__name__}")
    where = f"confounder term '{_shown(text)}'"
    if len(text) > MAX_TERM_CHARS:
        raise SpecError(f"{where}: {len(text):,} characters, more than {MAX_TERM_CHARS}")
    norm = normalise(text)
    if len(norm) > MAX_TERM_CHARS:
        raise SpecError(f"{where}: {len(norm):,} characters after Unicode normalisation, more than {MAX_TERM_CHARS}")
    for i, ch in enumerate(norm):
        if unicodedata.category(ch)[0] == "C" and ch not in " \t":
            kind = "a control" if unicodedata.category(ch) == "Cc" else "an invisible or unassigned"
            raise SpecError(f"{where}: {kind} character ({_char(ch)}) at position {i + 1} is not allowed")
    if norm != text:  # show what is parsed, so that a confusable cannot hide
        where = f"confounder term '{_shown(text)}' (read as '{_shown(norm)}')"
    return _Parser(norm, where).parse()


# --------------------------------------------------------------------------
# canonical text
# --------------------------------------------------------------------------
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4}


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else format(v, ".15g")


def deparse(node: Node) -> str:
    """The canonical text of a node (R-like: ``rcs(age, 4)``, ``I(age ** 2)``, ``a:b``)."""
    if isinstance(node, Name):
        return node.name if _syntactic(node.name) else f"`{node.name}`"
    if isinstance(node, Num):
        return _fmt_num(node.value)
    if isinstance(node, Knots):
        return "[" + ", ".join(_fmt_num(v) for v in node.values) + "]"
    if isinstance(node, Call):
        return f"{node.fn}(" + ", ".join(deparse(a) for a in node.args) + ")"
    if isinstance(node, Neg):
        inner = deparse(node.operand)
        return f"-({inner})" if _prec(node.operand) < _PREC["neg"] else f"-{inner}"
    if isinstance(node, BinOp):
        p = _PREC[node.op]
        left, right = deparse(node.left), deparse(node.right)
        lp, rp = _prec(node.left), _prec(node.right)
        if lp < p or (node.op == "**" and lp <= p):
            left = f"({left})"
        if rp < p or (node.op in ("-", "/") and rp == p) or (node.op == "**" and rp < _PREC["neg"]):
            right = f"({right})"
        return f"{left} {node.op} {right}"
    if isinstance(node, Plus):
        return " + ".join(deparse(i) for i in node.items)
    if isinstance(node, Cross):
        return f"{_fdeparse(node.left, 2)} * {_fdeparse(node.right, 2)}"
    if isinstance(node, Inter):
        return f"{_fdeparse(node.left, 3)}:{_fdeparse(node.right, 3)}"
    raise TypeError(type(node).__name__)  # pragma: no cover - the parser makes no other node


def _prec(node: Node) -> int:
    if isinstance(node, BinOp):
        return _PREC[node.op]
    if isinstance(node, Neg):
        return _PREC["neg"]
    return 9


def _fdeparse(node: Node, level: int) -> str:
    own = 1 if isinstance(node, Plus) else 2 if isinstance(node, Cross) else 3 if isinstance(node, Inter) else 9
    text = deparse(node)
    return f"({text})" if own < level else text


def _names(node: Node) -> list[str]:
    """Column names a node reads, in order of appearance."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Name):
            if n.name not in out:
                out.append(n.name)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
        elif isinstance(n, BinOp):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Neg):
            walk(n.operand)
        elif isinstance(n, Plus):
            for a in n.items:
                walk(a)
        elif isinstance(n, (Cross, Inter)):
            walk(n.left)
            walk(n.right)

    walk(node)
    return out


def term_variables(term: str, columns: Sequence[str] = ()) -> list[str]:
    """Column names a term reads, in order (``rcs(age, 4)`` -> ``["age"]``; ``log(`2nd`)`` -> ``["2nd"]``).

    Parses the term (:func:`parse_term`; a term that is not allowed raises
    :class:`SpecError`). A name matches a data column in ``columns`` whose
    NFKC form equals it, so a column written in fullwidth characters is found.
    """
    names = _names(parse_term(term))
    return [_bind(v, columns) for v in names]


def _bind(name: str, columns: Sequence[str]) -> str:
    """The data column a (normalised) name refers to: exact, else the one column whose NFKC form equals it."""
    if not columns or name in columns:
        return name
    hits = [c for c in columns if isinstance(c, str) and normalise(c) == name]
    return hits[0] if len(hits) == 1 else name

# --------------------------------------------------------------------------
# restricted cubic splines (rms::rcs)
# --------------------------------------------------------------------------
def rcs_knots(x: np.ndarray, nk: int, fractied: float = 0.05, notes: list[str] | None = None) -> np.ndarray:
    """Knots of ``rms::rcs(x, nk)``: ``Hmisc::rcspline.eval``'s default algorithm.

    Quantiles ``seq(outer, 1 - outer, length = nk)`` with ``outer`` 0.1 for 3
    knots, 0.05 for 4-6 and 0.025 for 7 (R's type-7 quantiles); with fewer
    than 100 values the outer knots move to the 5th smallest and largest
    value; a value holding at least ``fractied`` of the data at either end
    (and no interior value that does) is replaced by the next value inward.

    Few distinct values are handled as Hmisc does, with a note instead of
    R's warning (appended to ``notes``):

    * ``nxu - 2 <= nk`` (``nxu`` distinct values): the knots are the
      ``nxu - 2`` interior distinct values (R: "knots set to ... interior
      values");
    * quantile knots with fewer than ``min(nk, 3)`` distinct values (heavy
      ties): Hmisc's alternate algorithm, quantiles at ``2 nk`` equally
      spaced probabilities (the middle value of three when a tied end
      value was overridden), then the same < 100 adjustment of the first
      and ``nk``-th knot as R applies.

    Raises
    ------
    DataError
        Fewer than 6 values, or fewer than 3 distinct knots in the end (R
        stops there too).
    """
    xx = np.asarray(x, dtype=float)
    xx = xx[~np.isnan(xx)]
    n = len(xx)
    if n < 6:
        raise DataError("rcs: knots need at least 6 non-missing values")
    notes = notes if notes is not None else []
    xu = np.unique(xx)
    nxu = len(xu)
    if nxu - 2 <= nk:
        if nxu - 2 < 3:
            raise DataError(f"rcs: the variable has only {nxu} distinct values; a spline needs at least 5 "
                            "(3 knots at interior values)")
        notes.append(f"{nk} knots requested with {nxu} distinct values; knots set to the {nxu - 2} interior "
                     "values (as rms::rcs)")
        return xu[1:-1].copy()
    outer = 0.05 if nk > 3 else 0.1
    if nk > 6:
        outer = 0.025
    nke = nk
    first: list[float] = []
    last: list[float] = []
    over_first = over_last = False
    if 0 < fractied < 1:
        vals, counts = np.unique(xx, return_counts=True)
        f = counts / n
        if len(f) > 2 and f[1:-1].max() < fractied:
            if f[0] >= fractied:
                first = [float(xx[xx > xx.min()].min())]
                xx = xx[xx > first[0]]
                nke -= 1
                over_first = True
            if f[-1] >= fractied:
                last = [float(xx[xx < xx.max()].max())]
                xx = xx[xx < last[0]]
                nke -= 1
                over_last = True
    if nke == 1:
        knots = np.array([np.median(xx)])
    elif nxu <= nke:
        knots = xu.copy()
    else:
        p = np.linspace(0.5, 1 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
        knots = np.quantile(xx, p)
        if len(np.unique(knots)) < min(nke, 3):
            knots = np.quantile(xx, np.linspace(outer, 1 - outer, 2 * nke))
            if first and len(np.unique(knots)) < 3:
                mid = (first[0] + last[0]) / 2 if last else float(np.median(xx))
                knots = np.sort(np.array([first[0], mid, last[0] if last else np.quantile(xx, 1 - outer)]))
            nu = len(np.unique(knots))
            if nu < 3:
                raise DataError(f"rcs: fewer than 3 distinct knots for {nk} requested (the variable has too many "
                                "tied values); give the knots, e.g. rcs(x, [20, 40, 60])")
            notes.append(f"could not obtain {nke} knots with the default algorithm (tied values); used the "
                         f"alternate algorithm to obtain {nu} knots (as rms::rcs)")
        if len(xx) < 100:
            srt = np.sort(xx)
            if not over_first:
                knots[0] = srt[4]
            if not over_last:
                if nke - 1 >= len(knots):  # R's knots[nke] <- ... extends the vector (with NA between)
                    knots = np.concatenate([knots, np.full(nke - len(knots), np.nan)])
                knots[nke - 1] = srt[len(srt) - 5]
    knots = np.concatenate([first, knots, last])
    knots = np.unique(knots[~np.isnan(knots)])
    if len(knots) < 3:
        raise DataError(f"rcs: fewer than 3 distinct knots for {nk} requested (the variable has too many tied "
                        "values); give the knots, e.g. rcs(x, [20, 40, 60])")
    return knots


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """``Hmisc::rcspline.eval(x, knots, inclx = TRUE)`` (norm = 2): ``n x (k - 1)``."""
    x = np.asarray(x, dtype=float)
    k = np.asarray(knots, dtype=float)
    nk = len(k)
    kd = (k[-1] - k[0]) ** (2.0 / 3.0)
    cols = [x]
    for j in range(nk - 2):
        cols.append(np.maximum((x - k[j]) / kd, 0) ** 3
                    + ((k[-2] - k[j]) * np.maximum((x - k[-1]) / kd, 0) ** 3
                       - (k[-1] - k[j]) * np.maximum((x - k[-2]) / kd, 0) ** 3) / (k[-1] - k[-2]))
    return np.column_stack(cols)




# --------------------------------------------------------------------------
# the model: entries -> R terms -> columns
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Numeric:
    """A numeric variable's columns: ``values`` (n, k) and their names."""

    values: np.ndarray
    labels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Factor:
    """A categorical variable: ``codes`` (n,) index ``levels``; ``reference`` is the index of the reference level."""

    codes: np.ndarray
    levels: tuple[str, ...]
    reference: int
    label: str


#: ``resolve(column, want, where)``: the column as a variable; ``want`` is "any" (numeric or categorical as
#: the data and the spec say), "number" (arithmetic, rcs) or "factor" (C(x)); ``where`` names the entry
Resolver = Callable[[str, str, str], Union[Numeric, Factor]]


@dataclass
class Entry:
    """One item of the confounder list: a column (``bare``) or a parsed term."""

    text: str
    node: Node
    bare: bool
    terms: list[frozenset[str]]

    @property
    def where(self) -> str:
        return f"confounder '{_shown(self.text)}'" if self.bare else f"confounder term '{_shown(self.text)}'"


@dataclass
class Formula:
    """The confounder list read as one R formula (``entry1 + entry2 + ...``).

    ``variables``: canonical text -> node, in order of first appearance (R's
    ``attr(terms, "variables")``); ``terms``: R's terms, each a set of
    variables, without duplicates, ordered by degree (R's ``keep.order =
    FALSE``).
    """

    entries: list[Entry]
    variables: dict[str, Node]
    terms: list[frozenset[str]]
    data_columns: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        """The data columns the confounders read, in order."""
        out: list[str] = []
        for e in self.entries:
            for v in _names(e.node):
                c = _bind(v, self.data_columns) if not e.bare else v
                if c not in out:
                    out.append(c)
        return out

    def term_label(self, term: frozenset[str]) -> str:
        return ":".join(self._var_label(k) for k in self._ordered(term))

    def _ordered(self, term: frozenset[str]) -> list[str]:
        return [k for k in self.variables if k in term]

    def _var_label(self, key: str) -> str:
        node = self.variables[key]
        return node.name if isinstance(node, Name) else key


def parse_confounders(entries: Sequence[str], columns: Sequence[str] = ()) -> Formula:
    """Parse the confounder list (column names and terms) into R's terms.

    An entry that is a column of the data (``columns``), or holds none of
    the term characters, is a column; any other entry is parsed
    (:func:`parse_term`). Raises :class:`SpecError` (one line) for a term
    that is not allowed or expands to more than :data:`MAX_TERMS` terms.
    """
    cols = [str(c) for c in columns]
    variables: dict[str, Node] = {}
    parsed: list[Entry] = []
    for text in entries:
        if not isinstance(text, str):
            raise SpecError(f"confounders: each entry must be text (a column name or a term), got "
                            f"{type(text).__name__}")
        if text in cols or not is_term(text, cols):
            node: Node = Name(text)
            key = deparse(node)
            variables.setdefault(key, node)
            parsed.append(Entry(text, node, True, [frozenset([key])]))
            continue
        node = parse_term(text)
        where = f"confounder term '{_shown(text)}'"
        terms = _expand(node, variables, where)
        parsed.append(Entry(text, node, False, terms))
    seen: list[frozenset[str]] = []
    for e in parsed:
        for t in e.terms:
            if t not in seen:
                seen.append(t)
        if len(seen) > MAX_MODEL_TERMS:
            raise SpecError(f"confounders: more than {MAX_MODEL_TERMS:,} terms")
    ordered = sorted(seen, key=len)  # stable: R orders terms by degree, then as they appear
    return Formula(parsed, variables, ordered, cols)


def _expand(node: Node, variables: dict[str, Node], where: str) -> list[frozenset[str]]:
    """R's expansion of formula operators into terms (sets of variables)."""
    def dedup(ts: list[frozenset[str]]) -> list[frozenset[str]]:
        out: list[frozenset[str]] = []
        for t in ts:
            if t not in out:
                out.append(t)
        if len(out) > MAX_TERMS:
            raise SpecError(f"{where}: expands to {len(out):,} terms, more than {MAX_TERMS}")
        return out

    if isinstance(node, Plus):
        return dedup([t for item in node.items for t in _expand(item, variables, where)])
    if isinstance(node, (Cross, Inter)):
        left = _expand(node.left, variables, where)
        right = _expand(node.right, variables, where)
        if len(left) * len(right) > MAX_TERMS * MAX_TERMS:  # pragma: no cover - each side is already bounded
            raise SpecError(f"{where}: expands to more than {MAX_TERMS} terms")
        prod = [a | b for a in left for b in right]  # R: (a + c):(b + d) = a:b + a:d + c:b + c:d
        return dedup(left + right + prod if isinstance(node, Cross) else prod)
    key = deparse(node)
    variables.setdefault(key, node)
    return [frozenset([key])]


def _codings(terms: Sequence[frozenset[str]]) -> dict[tuple[frozenset[str], str], bool]:
    """``(term, variable) -> True`` when a categorical variable is coded by contrasts in that term.

    R's rule (``TermCode`` in R's ``model.c``): contrasts when the term
    without the variable is empty (the intercept) or is contained in a term
    that comes before it; otherwise indicators of every level.
    """
    out: dict[tuple[frozenset[str], str], bool] = {}
    for i, t in enumerate(terms):
        for v in t:
            rest = t - {v}
            out[(t, v)] = not rest or any(rest <= p for p in terms[:i])
    return out


@dataclass
class Design:
    """The confounders' design matrix and how its columns map back.

    ``X`` (n, p) and ``names``; ``entry_columns``: each confounder entry ->
    its columns (a term shared by two entries, such as ``stage`` in
    ``[stage, "stage*age"]``, belongs to both); ``term_columns``: each R term
    (label as R prints it: ``rcs(age, 4)``, ``celltype``, ``celltype:karno``)
    -> its columns, for tests that group a term's columns (``cox.zph(terms =
    TRUE)``); ``empty``: entries left with no column (constant);
    ``factors``: the data columns coded as categorical (by name) and their
    :class:`Factor`; ``notes``: warnings.
    """

    X: np.ndarray
    names: list[str]
    entry_columns: dict[str, list[str]]
    term_columns: dict[str, list[str]]
    empty: list[str]
    factors: dict[str, Factor]
    notes: list[str]


def build_design(formula: Formula, n: int, resolve: Resolver, *, where: Callable[[np.ndarray], str] | None = None,
                 max_levels: int = 50) -> Design:
    """Compute the columns of every term with our own interpreter (numpy; nothing is evaluated as code).

    Raises
    ------
    DataError
        ``log`` of a value <= 0, ``sqrt`` of a negative value, a
        non-finite result (rows named); a term with more than ``max_levels``
        level combinations or more than :data:`MAX_TERM_COLUMNS` columns;
        two entries giving a column of the same name.
    SpecError
        A categorical variable inside arithmetic.
    """
    rows = where or (lambda m: f"{int(np.sum(m))} rows")
    notes: list[str] = []
    values: dict[str, Numeric | Factor] = {}
    factors: dict[str, Factor] = {}
    owner: dict[frozenset[str], Entry] = {}
    for e in formula.entries:
        for t in e.terms:
            owner.setdefault(t, e)
        for t in e.terms:
            for key in formula._ordered(t):
                if key not in values:
                    values[key] = _variable(formula, key, e, n, resolve, rows, notes)
                    node = formula.variables[key]
                    if isinstance(node, Name) and isinstance(values[key], Factor):
                        factors[_bind(node.name, formula.data_columns) if not e.bare else node.name] = values[key]

    codes = _codings(formula.terms)
    term_mats: dict[frozenset[str], tuple[np.ndarray, list[str]]] = {}
    for t in formula.terms:
        keys = formula._ordered(t)
        e = owner[t]
        label = formula.term_label(t)
        counts = []
        levels = 1
        width = 1
        for k in keys:
            v = values[k]
            if isinstance(v, Factor):
                c = len(v.levels) - (1 if codes[(t, k)] else 0)
                levels *= max(c, 1)
                counts.append(f"{formula._var_label(k)}: {c}")
            else:
                c = v.values.shape[1]
            width *= max(c, 1)
        if len(counts) > 1 and levels > max_levels:
            raise DataError(f"{e.where}: the term '{_shown(label)}' has {levels:,} level combinations "
                            f"({' x '.join(counts)}), more than {max_levels}; group levels with codes: or leave "
                            "the interaction out")
        if width > MAX_TERM_COLUMNS:
            raise DataError(f"{e.where}: the term '{_shown(label)}' gives {width:,} columns, more than "
                            f"{MAX_TERM_COLUMNS}")
        mat, names = None, [""]
        for k in keys:
            v = values[k]
            if isinstance(v, Factor):
                idx = [j for j in range(len(v.levels)) if not (codes[(t, k)] and j == v.reference)]
                block = (v.codes[:, None] == np.asarray(idx)[None, :]).astype(float) if idx else np.empty((n, 0))
                labs = [f"{v.label}={v.levels[j]}" for j in idx]
            else:
                block, labs = v.values, list(v.labels)
            if mat is None:
                mat, names = block, labs
            else:  # R's column order: the first variable varies fastest
                mat = np.einsum("ni,nj->nji", mat, block).reshape(n, mat.shape[1] * block.shape[1])
                names = [f"{a}:{b}" for b in labs for a in names]
        assert mat is not None
        keep = [j for j in range(mat.shape[1]) if n and not np.all(mat[:, j] == mat[0, j])]
        mat, names = mat[:, keep], [names[j] for j in keep]
        if (len(keys) > 1 and mat.shape[1] > 1 and all(isinstance(values[k], Factor) and not codes[(t, k)]
                                                       for k in keys)
                and np.all(mat.sum(axis=1) == 1.0)):
            notes.append(f"{e.where}: '{_shown(label)}' is coded with every level combination (no main effects, "
                         f"as R does); its last column '{_shown(names[-1])}' is aliased with the baseline and left "
                         "out (R's coxph and glm report NA for it; the model is the same)")
            mat, names = mat[:, :-1], names[:-1]
        term_mats[t] = (mat, names)

    blocks: list[np.ndarray] = []
    all_names: list[str] = []
    by_name: dict[str, str] = {}
    entry_columns: dict[str, list[str]] = {}
    empty: list[str] = []
    done: set[frozenset[str]] = set()
    for e in formula.entries:
        cols: list[str] = []
        for t in sorted(e.terms, key=len):
            mat, names = term_mats[t]
            cols += [c for c in names if c not in cols]
            if t in done:
                continue
            done.add(t)
            for c in names:
                if c in by_name:
                    raise DataError(f"{e.where} gives the column '{_shown(c)}', which '{_shown(by_name[c])}' "
                                    "gives too (the same variable twice: list it once)")
                by_name[c] = e.text
            blocks.append(mat)
            all_names += names
        entry_columns[e.text] = cols
        if not cols:
            empty.append(e.text)
    X = np.hstack(blocks).astype(float) if blocks else np.empty((n, 0))
    term_columns = {formula.term_label(t): term_mats[t][1] for t in formula.terms if term_mats[t][1]}
    return Design(X, all_names, entry_columns, term_columns, empty, factors, notes)


def _variable(formula: Formula, key: str, e: Entry, n: int, resolve: Resolver, rows: Callable[[np.ndarray], str],
              notes: list[str]) -> Numeric | Factor:
    """Compute one variable of the model (a column, a function of columns, ``C(x)``)."""
    node = formula.variables[key]
    where = e.where
    col = (lambda name: name) if e.bare else (lambda name: _bind(name, formula.data_columns))
    if isinstance(node, Name):
        return resolve(col(node.name), "any", where)
    assert isinstance(node, Call)
    if node.fn == "C":
        arg = node.args[0]
        assert isinstance(arg, Name)
        f = resolve(col(arg.name), "factor", where)
        assert isinstance(f, Factor)
        return Factor(f.codes, f.levels, f.reference, key)
    if node.fn == "rcs":
        x = _arith(node.args[0], e, n, resolve, rows, col)
        base = node.args[0].name if isinstance(node.args[0], Name) else deparse(node.args[0])
        knots = _rcs_knots_of(node, x, notes, where)
        basis = rcs_basis(x, knots)
        return Numeric(basis, tuple(base + "'" * j for j in range(basis.shape[1])))
    x = _arith(node, e, n, resolve, rows, col)
    bad = ~np.isfinite(x)
    if bad.any():
        raise DataError(f"{where} gives non-finite values at {rows(bad)}")
    return Numeric(x[:, None], (key,))


def _rcs_knots_of(node: Call, x: np.ndarray, notes: list[str], where: str) -> np.ndarray:
    parms = node.args[1] if len(node.args) > 1 else Num(5.0)
    if isinstance(parms, Knots):
        knots = np.sort(np.asarray(parms.values, dtype=float))
        if len(knots) < 3:
            raise DataError("rcs: give at least 3 knots")
        if np.any(np.diff(knots) == 0):
            raise DataError(f"rcs: the knots must be distinct, got {deparse(parms)}")
        return knots
    assert isinstance(parms, Num)
    if not float(parms.value).is_integer():
        raise DataError(f"rcs: the number of knots must be a whole number, got {parms.value!r}")
    nk = int(parms.value)
    if not 3 <= nk <= 7:
        raise DataError(f"rcs: the number of knots must be 3 to 7 (Harrell's defaults), got {nk}")
    found: list[str] = []
    knots = rcs_knots(x, nk, notes=found)
    notes += [f"{where.replace('confounder term', 'confounder')}: {msg}" for msg in found]
    return knots


def _arith(node: Node, e: Entry, n: int, resolve: Resolver, rows: Callable[[np.ndarray], str],
           col: Callable[[str], str]) -> np.ndarray:
    """The interpreter of arithmetic: numbers, numeric columns, + - * / ** and log, sqrt, exp, I."""
    where = e.where
    if isinstance(node, Num):
        return np.full(n, node.value)
    if isinstance(node, Name):
        v = resolve(col(node.name), "number", where)
        assert isinstance(v, Numeric) and v.values.shape[1] == 1
        return np.asarray(v.values[:, 0], dtype=float)
    if isinstance(node, Neg):
        return -_arith(node.operand, e, n, resolve, rows, col)
    if isinstance(node, BinOp):
        a = _arith(node.left, e, n, resolve, rows, col)
        b = _arith(node.right, e, n, resolve, rows, col)
        with np.errstate(all="ignore"):
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            if node.op == "/":
                return a / b
            return np.power(a, b)
    if isinstance(node, Call) and node.fn in _ARITH_FUNCTIONS:
        x = _arith(node.args[0], e, n, resolve, rows, col)
        arg = node.args[0]
        label = arg.name if isinstance(arg, Name) else deparse(arg)
        if node.fn == "log":
            bad = ~(x > 0)
            if bad.any():
                raise DataError(f"{where}: log of a value <= 0 in '{_shown(label)}' at {rows(bad)}")
            return np.log(x)
        if node.fn == "sqrt":
            bad = ~(x >= 0)
            if bad.any():
                raise DataError(f"{where}: sqrt of a negative value in '{_shown(label)}' at {rows(bad)}")
            return np.sqrt(x)
        if node.fn == "exp":
            with np.errstate(over="ignore"):
                return np.exp(x)
        return x
    raise SpecError(f"{where}: '{deparse(node)}' cannot be used inside arithmetic")  # pragma: no cover


# --------------------------------------------------------------------------
# one term on a DataFrame (a convenience; the cohort builds its design with its own checks)
# --------------------------------------------------------------------------
def _frame_resolver(df: pd.DataFrame, categorical: Sequence[str]) -> Resolver:
    def resolve(name: str, want: str, where: str) -> Numeric | Factor:
        if name not in df.columns:
            raise DataError(f"{where}: column '{_shown(name)}' not found{non_ascii_note(name)}")
        s = df[name]
        cat = (name in categorical or want == "factor" or isinstance(s.dtype, pd.CategoricalDtype)
               or not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)))
        if cat:
            if want == "number":
                raise SpecError(f"{where}: '{_shown(name)}' is categorical; arithmetic and rcs() need a number")
            if isinstance(s.dtype, pd.CategoricalDtype):
                levels = [str(v) for v in s.cat.categories]
            else:
                vals = s.dropna().unique().tolist()
                try:
                    vals = sorted(vals, key=float)
                except (TypeError, ValueError):
                    vals = sorted(vals, key=str)
                levels = list(dict.fromkeys(_level(v) for v in vals))
            lev = np.array([_level(v) for v in s.astype(object)], dtype=object)
            levels = [L for L in levels if np.any(lev == L)]
            codes = np.array([levels.index(v) for v in lev], dtype=np.intp)
            return Factor(codes, tuple(levels), 0, name)
        return Numeric(s.to_numpy(dtype=float)[:, None], (name,))
    return resolve


def _level(v: object) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def model_matrix(entries: Sequence[str], df: pd.DataFrame, *, categorical: Sequence[str] = (),
                 where: Callable[[np.ndarray], str] | None = None) -> Design:
    """R's ``model.matrix(~ entry1 + entry2 + ...)`` less the intercept, on ``df``.

    A text, pandas-categorical or ``categorical`` variable is categorical,
    its reference the first level in sorted order (R's ``factor``). Columns
    that are constant are left out, as is the aliased last column of a term
    whose categorical variables are all coded by every level (R keeps them;
    its model fits give them ``NA``). The cohort builds its design with its
    own column checks (:class:`~causal_hcc.cohort.Cohort`); this is the same
    model on a plain DataFrame.
    """
    formula = parse_confounders(list(entries), [str(c) for c in df.columns])
    return build_design(formula, len(df), _frame_resolver(df, categorical), where=where)


def term_matrix(term: str, df: pd.DataFrame, *, categorical: Sequence[str] = (),
                where: Callable[[np.ndarray], str] | None = None,
                notes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """The design columns of one term on ``df`` (:func:`model_matrix` of ``[term]``) and their names.

    Alone in the model, a term is coded as R codes it: ``grade:nodes`` gives
    one slope per grade (every level), ``grade*nodes`` the main effects and
    the non-reference slopes. ``notes`` receives warnings (``rcs`` with few
    distinct values).
    """
    d = model_matrix([term], df, categorical=categorical, where=where)
    if notes is not None:
        notes += d.notes
    return d.X, d.names
