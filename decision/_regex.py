"""``$regex`` on RE2: MongoDB's PCRE patterns translated for a linear-time engine.

RE2 never backtracks, so no pattern can stall the service, but it lacks a few PCRE
features. ``compile_regex`` translates what can be translated and rejects the rest
with a message saying why:

- ``$options`` ``i``, ``m`` and ``s`` become the inline flags ``(?i)``, ``(?m)`` and
  ``(?s)``. RE2 has no ``x`` (extended) mode, so for ``x`` we strip unescaped
  whitespace and ``#`` comments outside character classes ourselves, as PCRE does.
- ``(?#...)`` comments are removed.
- PCRE's ``$`` (outside multi-line mode) and ``\\Z`` also match before a final
  newline; RE2's only match at the very end, so both become ``(?:\\n?\\z)``.
- Backreferences, lookaround, atomic groups, possessive quantifiers, recursion and
  conditionals have no linear-time equivalent: they are compile errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import re2

OPTION_LETTERS: Final = frozenset("imsx")
"""The ``$options`` letters MongoDB accepts."""

_X_WHITESPACE: Final = frozenset(" \t\n\r\f\v")
_END_OF_TEXT: Final = r"(?:\n?\z)"

_UNSUPPORTED: Final = (
    (re.compile(r"\\[1-9]|\\k[<{']|\\g"), "backreferences"),
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers"),
    (re.compile(r"\(\?(?:R|[+-]?\d|&|P>)"), "recursion"),
    (re.compile(r"\(\?\("), "conditionals"),
    (re.compile(r"\\[KGRXhHvVN]|\\[cC]"), "PCRE-only escapes such as \\K, \\G, \\R or \\h"),
)
_INLINE_MULTILINE: Final = re.compile(r"\(\?[a-zA-Z]*m")


class RegexError(ValueError):
    """A pattern that cannot be compiled; the message says why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # an invalid pattern is our error to report, not stderr's
    options.never_capture = True  # we only ask whether it matches
    return options


_OPTIONS: Final = _options()


def translate(pattern: str, flags: str) -> str:
    """The RE2 pattern equivalent to the PCRE ``pattern`` with MongoDB ``flags``."""
    extended = "x" in flags
    # PCRE's $ also matches before a final newline unless in multi-line mode; an
    # inline (?m) switches it to per-line, which RE2 does natively.
    translate_dollar = "m" not in flags and not _INLINE_MULTILINE.search(pattern)
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        char = pattern[i]
        if char == "\\":
            if pattern.startswith("\\Q", i):  # quoted literal: copied as is up to \E
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            escape = pattern[i : i + 2]
            out.append(_END_OF_TEXT if escape == "\\Z" and not in_class else escape)
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):  # POSIX class such as [:alpha:]
                end = pattern.find(":]", i + 2)
                if end >= 0:
                    out.append(pattern[i : end + 2])
                    i = end + 2
                    continue
            in_class = char != "]"
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            start = i + 1
            if pattern.startswith("^", start):
                start += 1
            if pattern.startswith("]", start):  # a leading ] is a literal
                start += 1
            out.append(pattern[i:start])
            i = start
            continue
        if pattern.startswith("(?#", i):
            end = pattern.find(")", i)
            i = n if end < 0 else end + 1
            continue
        if extended and char in _X_WHITESPACE:
            i += 1
            continue
        if extended and char == "#":
            end = pattern.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        out.append(_END_OF_TEXT if char == "$" and translate_dollar else char)
        i += 1
    prefix = "".join(f"(?{letter})" for letter in "ims" if letter in flags)
    return prefix + "".join(out)


def _unsupported_feature(pattern: str) -> str | None:
    for finder, feature in _UNSUPPORTED:
        if finder.search(pattern):
            return feature
    return None


def compile_regex(pattern: str, flags: str) -> Callable[[str], bool]:
    """A function telling whether a string contains a match of ``pattern``.

    Raises RegexError for unknown flags, NUL bytes, PCRE features RE2 cannot run and
    invalid patterns.
    """
    unknown = sorted(set(flags) - OPTION_LETTERS)
    if unknown:
        raise RegexError(f"unknown $options letter(s) {''.join(unknown)!r}; use i, m, s and x")
    if "\0" in pattern:
        raise RegexError("a regular expression cannot contain a NUL character")
    regexp = re2._re2.RE2(translate(pattern, flags).encode("utf-8", "surrogatepass"), _OPTIONS)
    if not regexp.ok():
        feature = _unsupported_feature(pattern)
        if feature is not None:
            raise RegexError(
                f"invalid regular expression {pattern!r}: it uses {feature}, which RE2 "
                "(the linear-time engine that keeps patterns from stalling the service) "
                "cannot run"
            )
        detail = regexp.error()
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexError(f"invalid regular expression {pattern!r}: {detail}")
    # The low-level RE2 object: the public re2.search builds a Match object and maps
    # byte offsets back to characters, which costs about 7x more than matching.
    match = regexp.Match
    unanchored = re2._re2.RE2.Anchor.UNANCHORED

    def search(text: str) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: no MongoDB string holds one
            data = text.encode("utf-8", "surrogatepass")
        return bool(match(unanchored, data, 0, len(data))[0][0] >= 0)

    return search
