"""Label vocabularies for zero-shot tagging: built-in (COCO, ImageNet) or read from a text file.

File format (UTF-8; a leading BOM is tolerated)::

    # a line whose first non-blank character is '#' is a comment
    dog
    crane bird<TAB>a photo of a crane, a type of bird.; a crane standing in water.

One label per line. A label may give its own prompts after a tab, separated by ';'; they are
used verbatim instead of the templates. Trailing whitespace and '\\r' are ignored, so CRLF files
read the same. Blank lines, duplicate labels (compared case-insensitively, runs of whitespace
counting as one space), empty prompts, a tab with nothing after it and a file without labels
are errors (:class:`~searchclip._errors.InvalidArgumentError`, naming the file and the line).

The built-in files live in ``searchclip/vocabularies/`` (provenance in its README.md): line i
of ``imagenet.txt`` is ImageNet-1k class index i.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from searchclip._errors import InvalidArgumentError
from searchclip._templates import DEFAULT_TEMPLATES, IMAGENET_TEMPLATES

__all__ = [
    "BUILTIN",
    "DEFAULT_TEMPLATES",
    "IMAGENET_TEMPLATES",
    "Label",
    "Vocabulary",
    "load_vocabulary",
    "parse_vocabulary",
]

BUILTIN: tuple[str, ...] = ("coco", "imagenet", "shapes")


@dataclass(frozen=True)
class Label:
    name: str
    prompts: tuple[str, ...] = ()  # the label's own prompts, if its line gave any

    def texts(self, templates: Sequence[str]) -> list[str]:
        """The texts to embed for this label: its own prompts if any, else the filled templates."""
        if self.prompts:
            return list(self.prompts)
        return [template.replace("{}", self.name) for template in _checked(templates)]


@dataclass(frozen=True)
class Vocabulary:
    name: str  # "coco", "imagenet", or the file's stem
    labels: tuple[Label, ...]

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def fingerprint(self, templates: Sequence[str]) -> str:
        """SHA-256 (hex) of everything that decides the label embeddings, in order.

        The label names, their own prompts and the templates count; the vocabulary's name, its
        comments and line endings do not. Used as the cache key of a (model, vocabulary) pair.
        """
        content = {
            "labels": [[label.name, list(label.prompts)] for label in self.labels],
            "templates": list(_checked(templates)),
        }
        encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def load_vocabulary(name_or_path: str | os.PathLike) -> Vocabulary:
    """A built-in vocabulary by name (see ``BUILTIN``), else the vocabulary file at that path."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        resource = resources.files("searchclip") / "vocabularies" / f"{name_or_path}.txt"
        text = resource.read_text(encoding="utf-8")
        return parse_vocabulary(text, name_or_path, f"built-in vocabulary {name_or_path}")
    path = Path(name_or_path)
    source = f"vocabulary file {os.fspath(path)}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{source} not found; built-in vocabularies: {', '.join(BUILTIN)}"
        ) from None
    except OSError as error:
        raise InvalidArgumentError(f"cannot read {source}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InvalidArgumentError(f"{source}: line {line} is not UTF-8 text") from None
    return parse_vocabulary(text, path.stem, source)


def parse_vocabulary(text: str, name: str, source: str = "<text>") -> Vocabulary:
    """Parse vocabulary text (format in the module docstring); ``source`` names it in errors."""
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start an empty one
    labels: list[Label] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(" \r")
        if not line.strip():
            raise InvalidArgumentError(
                f"{source}: line {number} is empty (delete it, or start it with '#')"
            )
        if line.lstrip().startswith("#"):
            continue
        label = _parse_line(line, f"{source}: line {number}")
        key = " ".join(label.name.split()).casefold()
        if key in first_seen:
            raise InvalidArgumentError(
                f"{source}: line {number}: {label.name!r} duplicates line {first_seen[key]}"
            )
        first_seen[key] = number
        labels.append(label)
    if not labels:
        raise InvalidArgumentError(f"{source} has no labels (one label per line)")
    return Vocabulary(name, tuple(labels))


def _parse_line(line: str, where: str) -> Label:
    name, tab, rest = line.partition("\t")
    name = name.strip()
    if not name:
        raise InvalidArgumentError(f"{where} has prompts but no label before the tab")
    if not tab:
        return Label(name)
    if not rest.strip():
        raise InvalidArgumentError(f"{where}: nothing after the tab (remove it, or add prompts)")
    prompts = tuple(prompt.strip() for prompt in rest.split(";"))
    for position, prompt in enumerate(prompts, start=1):
        if not prompt:
            raise InvalidArgumentError(
                f"{where}: prompt {position} of {name!r} is empty (a stray ';'?)"
            )
    return Label(name, prompts)


def _checked(templates: Sequence[str]) -> Sequence[str]:
    if isinstance(templates, str):
        raise InvalidArgumentError(
            f"templates must be a sequence of strings, not the string {templates!r}"
        )
    if not templates:
        raise InvalidArgumentError("no prompt templates given; use DEFAULT_TEMPLATES, for example")
    for template in templates:
        if "{}" not in template:
            raise InvalidArgumentError(f"prompt template {template!r} has no '{{}}' for the label")
    return templates
