"""Shell globs on the paths of the files table, as :func:`fnmatch.fnmatchcase` matches them.

A glob is first decided per folder where the folder settles it: no file of ``/b/`` can match
``/a/*``, every file of ``/a/2023/`` matches ``*/2023/*``. The files of the other folders are
then matched on their paths' UTF-8 bytes, held in one buffer (:class:`Paths`), by vectorised
comparisons of the glob's literal runs (:func:`_matching`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Paths:
    """Every row's path, UTF-8, in one buffer: NUL, path, NUL, path, ..., NUL, then 7 bytes
    0xFF (never in UTF-8) so that 8 bytes can be read at any position. Row i is
    ``buffer[bounds[i] + 1 : bounds[i + 1]]``."""

    buffer: np.ndarray  # uint8
    bounds: np.ndarray  # the positions of the NULs, len(rows) + 1 of them

    @classmethod
    def joined(cls, paths: str | None) -> Paths:
        """The paths in ``paths``, NUL between them (None: no path)."""
        data = b"\0" if paths is None else b"\0" + paths.encode("utf-8", "surrogatepass") + b"\0"
        data += b"\xff" * 7
        buffer = np.frombuffer(data, np.uint8)
        return cls(buffer, np.flatnonzero(buffer == 0))


def with_slash(folder: str) -> str:
    """What the paths of the files in ``folder`` start with ("/" itself ends with one)."""
    return folder if folder.endswith("/") else folder + "/"


# The two wildcards of a parsed glob (literal runs are bytes): "*", and "?" or a "[...]" set.
_STAR, _ONE = object(), object()
_NONE, _ALL, _SOME = 0, 1, 2  # what a folder says of its files


def glob_rows(
    paths: Paths,
    folders: Sequence[str | None],
    folder_codes: np.ndarray,
    pattern: str,
    rows: np.ndarray,
) -> np.ndarray:
    """Those of ``rows`` (in any order) whose path matches ``pattern``; ``folders`` are the
    distinct folders and ``folder_codes`` each row's index into them."""
    head, slash = _literal_start(pattern), _last_literal_slash(pattern)
    within = pattern[: slash + 1] + "*" if slash >= 0 else None
    verdicts = [_verdict(folder, pattern, head, within) for folder in folders]
    verdicts = np.array(verdicts, np.int8)
    said = verdicts[folder_codes[rows]] if len(verdicts) else np.full(len(rows), _SOME)
    undecided = rows[said == _SOME]
    return np.concatenate([rows[said == _ALL], _matching(paths, pattern, undecided)])


def _verdict(folder: str | None, pattern: str, head: str, within: str | None) -> int:
    """Whether every file in ``folder`` matches, none does, or its name decides.

    A path is the folder, "/", and a name without "/" (the indexer stores paths absolute
    and normalised, without "//"): the glob's literal start (``head``)
    must agree with the folder's, and the glob up to its last literal "/" must match a part
    of the folder (``within`` is that part and a "*"). A glob ending in "*" that matches the
    folder (its "*" taking the folder's end) matches every path that goes on from it.
    """
    if folder is None:  # not known: the path decides
        return _SOME
    start = with_slash(folder)
    if not start.startswith(head) and not (
        head.startswith(start) and "/" not in head[len(start) :]
    ):
        return _NONE
    if within is not None and not fnmatch.fnmatchcase(start, within):
        return _NONE
    if pattern.endswith("*") and fnmatch.fnmatchcase(start, pattern):
        return _ALL
    return _SOME


def _matching(paths: Paths, pattern: str, rows: np.ndarray) -> np.ndarray:
    """Those of ``rows`` whose path matches ``pattern``, by its literal runs.

    The first run is compared at the path's start, the last at its end, those between found
    in order (the earliest occurrence after the previous one, from a sorted list of all
    their occurrences), each on the rows the previous ones left. For a glob whose only
    wildcard is ``*`` that is the whole match; ``?`` and ``[...]`` are then checked by
    fnmatch's regular expression on the paths the runs left.
    """
    if not len(rows):
        return rows
    parts = _glob_parts(pattern)
    buffer = paths.buffer
    starts, ends = paths.bounds[rows] + 1, paths.bounds[rows + 1]
    literal = [isinstance(part, bytes) for part in parts]
    if literal == [True]:  # no wildcard: the path itself
        ok = (ends - starts == len(parts[0])) & _has_at(buffer, starts, parts[0])
        return rows[ok]
    head = parts[0] if literal[0] else b""
    tail = parts[-1] if literal[-1] else b""
    inner = parts[int(literal[0]) : len(parts) - int(literal[-1])]
    inner = [part for part in inner if isinstance(part, bytes)]
    limit = ends - len(tail)
    ok = starts + len(head) <= limit
    for run, at in ((tail, limit), (head, starts)):
        if run:
            ok &= _has_at(buffer, at, run)
    rows, starts, limit = rows[ok], starts[ok], limit[ok]
    at = starts + len(head)
    for run in inner:
        found = _occurrences(buffer, run)
        after = np.searchsorted(found, at)
        nxt = found[np.minimum(after, len(found) - 1)] if len(found) else at
        ok = (after < len(found)) & (nxt + len(run) <= limit)
        rows, starts, limit, at = rows[ok], starts[ok], limit[ok], nxt[ok] + len(run)
    if any(part is _ONE for part in parts) and len(rows):  # the runs were necessary only
        match = re.compile(fnmatch.translate(pattern)).match
        text = buffer.tobytes()
        ends = limit + len(tail)
        exact = [
            match(text[start:end].decode("utf-8", "surrogatepass")) is not None
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        rows = rows[np.array(exact, bool)]
    return rows


def _tokens(pattern: str):
    """``pattern`` as fnmatch reads it: (position, token), a token being a literal
    character, ``_STAR`` or ``_ONE`` (``?`` or a ``[...]`` set: one character each)."""
    i, n = 0, len(pattern)
    while i < n:
        char, start = pattern[i], i
        i += 1
        if char == "*":
            yield start, _STAR
        elif char == "?":
            yield start, _ONE
        elif char == "[":  # a set runs to the next "]", one right after "[" or "[!" included
            j = i + (i < n and pattern[i] == "!")
            j += j < n and pattern[j] == "]"
            j = pattern.find("]", j)
            if j < 0:  # unclosed: a literal "["
                yield start, char
            else:
                yield start, _ONE
                i = j + 1
        else:
            yield start, char


def _glob_parts(pattern: str) -> list:
    """The glob as literal runs (UTF-8 bytes), ``_STAR`` (for a run of ``*``) and ``_ONE``."""
    parts: list = []
    literal: list[str] = []
    for _, token in _tokens(pattern):
        if isinstance(token, str):
            literal.append(token)
            continue
        if literal:
            parts.append("".join(literal).encode("utf-8", "surrogatepass"))
            literal.clear()
        if token is _ONE or not parts or parts[-1] is not _STAR:
            parts.append(token)
    if literal:
        parts.append("".join(literal).encode("utf-8", "surrogatepass"))
    return parts


def _literal_start(pattern: str) -> str:
    for position, token in _tokens(pattern):
        if not isinstance(token, str):
            return pattern[:position]
    return pattern


def _last_literal_slash(pattern: str) -> int:
    return max((i for i, token in _tokens(pattern) if token == "/"), default=-1)


def _has_at(buffer: np.ndarray, positions: np.ndarray, run: bytes) -> np.ndarray:
    """Whether ``buffer`` holds ``run`` at each of ``positions`` (any position, in range or
    not: a row too short for it fails on its own length). Compared 8 bytes at a time."""
    words = _words(buffer)
    ok = np.ones(len(positions), bool)
    for offset in range(0, len(run), 8):
        chunk = run[offset : offset + 8]
        mask = np.uint64((1 << 8 * len(chunk)) - 1)
        got = words[np.clip(positions + offset, 0, len(words) - 1)]
        ok &= (got & mask) == np.uint64(int.from_bytes(chunk, "little"))
    return ok


def _words(buffer: np.ndarray) -> np.ndarray:
    """The 8 bytes from each position of ``buffer`` on, as one little-endian integer: a view
    whose items overlap (the buffer's padding makes the last ones whole)."""
    return np.ndarray((len(buffer) - 7,), "<u8", buffer=buffer, strides=(1,))


# Bytes that most paths hold several times: a poor place to look for a run first.
_COMMON = frozenset(b"/._-0123456789 ")


def _occurrences(buffer: np.ndarray, run: bytes) -> np.ndarray:
    """Every position at which ``run`` starts in ``buffer``, sorted (overlaps included)."""
    anchor = next((i for i, byte in enumerate(run) if byte not in _COMMON), 0)
    found = np.flatnonzero(buffer == run[anchor]) - anchor
    found = found[(found >= 0) & (found <= len(buffer) - 8)]
    return found[_has_at(buffer, found, run)] if len(run) > 1 else found
