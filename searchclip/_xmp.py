"""XMP keywords: reading people's own keywords back, and the sidecar conventions.

A sidecar sits next to its image: ``IMG_1.jpg.xmp`` (darktable, digiKam) or ``IMG_1.xmp``
(Lightroom). Keywords are its ``dc:subject`` entries, and those of the image's embedded XMP
and IPTC Keywords. searchclip marks what it wrote itself in a private namespace
(``searchclip:subjects``, ``searchclip:hierarchicalSubjects``), so those are never read back as
the user's: the table of keywords holds only what people typed.

Reading needs no optional package: an XMP packet is RDF/XML, parsed here with the standard
library (the array forms of dc:subject are few: rdf:Bag, rdf:Seq, rdf:Alt), and Pillow, which
searchclip decodes with anyway, hands over an image's embedded XMP packet and IPTC records.
Writing goes through exiv2 (searchclip/_xmp_write.py). Keywords are re-read at indexing for
files that are new or changed, and for those whose sidecar changed since the last pass over
their root (one directory listing per folder, one stat per sidecar found).
"""

from __future__ import annotations

import contextlib
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from searchclip._catalog import Catalog

SEARCHCLIP_NS = "https://searchclip.dev/xmp/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC_NS = "http://purl.org/dc/elements/1.1/"
LR_NS = "http://ns.adobe.com/lightroom/1.0/"
SIDECAR_STYLES = ("darktable", "lightroom")  # IMG_1.jpg.xmp, IMG_1.xmp
_MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # darktable histories reach a few hundred kB
_PASS_KEY = "keywords_read_at:"  # + root: when the last keyword pass over it began
_MTIME_SLACK_NS = 2_000_000_000  # coarse file-system clocks (FAT: 2 s)
_WRITE_EVERY = 5000  # files whose keywords are stored per transaction


class InvalidSidecarError(ValueError):
    """A sidecar that is not an XMP packet searchclip can read; it is never overwritten."""


@dataclass(frozen=True)
class XmpKeywords:
    """What one XMP packet says about keywords, and which of them searchclip wrote."""

    subjects: tuple[str, ...] = ()
    hierarchical: tuple[str, ...] = ()
    own_subjects: frozenset[str] = field(default_factory=frozenset)
    own_hierarchical: frozenset[str] = field(default_factory=frozenset)

    def people(self) -> list[str]:
        """The dc:subject keywords searchclip did not write."""
        return [s for s in self.subjects if s not in self.own_subjects]


def sidecar_path(image: str | os.PathLike, style: str = "darktable") -> Path:
    """Where ``style``'s sidecar of ``image`` lives."""
    image = Path(image)
    if style == "lightroom":
        return image.with_suffix(".xmp")
    return image.with_name(image.name + ".xmp")


def parse_xmp(text: str | bytes) -> XmpKeywords:
    """The keywords of an XMP packet (a sidecar's text or an embedded packet).

    Raises InvalidSidecarError for text that is not XML holding an rdf:RDF element; a DOCTYPE
    (never in XMP) is refused before parsing, which rules out entity expansion."""
    head = text[:4096] if isinstance(text, bytes) else text[:4096].encode("utf-8", "replace")
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise InvalidSidecarError("declares a DOCTYPE, which XMP never does")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidSidecarError(f"not well-formed XML ({exc})") from None
    rdf = root if root.tag == f"{{{RDF_NS}}}RDF" else root.find(f".//{{{RDF_NS}}}RDF")
    if rdf is None:
        raise InvalidSidecarError("no rdf:RDF element: not an XMP packet")
    found: dict[str, list[str]] = {}
    for description in rdf.iter(f"{{{RDF_NS}}}Description"):
        for name, ns, local in (
            ("subjects", DC_NS, "subject"),
            ("hierarchical", LR_NS, "hierarchicalSubject"),
            ("own_subjects", SEARCHCLIP_NS, "subjects"),
            ("own_hierarchical", SEARCHCLIP_NS, "hierarchicalSubjects"),
        ):
            for element in description.findall(f"{{{ns}}}{local}"):
                found.setdefault(name, []).extend(_array_items(element))
            if (value := description.get(f"{{{ns}}}{local}")) is not None:  # a simple value
                found.setdefault(name, []).append(value)
    return XmpKeywords(
        subjects=tuple(_unique(found.get("subjects", ()))),
        hierarchical=tuple(_unique(found.get("hierarchical", ()))),
        own_subjects=frozenset(found.get("own_subjects", ())),
        own_hierarchical=frozenset(found.get("own_hierarchical", ())),
    )


def read_sidecar(path: str | os.PathLike) -> XmpKeywords:
    """The keywords of the sidecar at ``path``. Raises OSError, InvalidSidecarError."""
    with open(path, "rb") as handle:
        data = handle.read(_MAX_SIDECAR_BYTES + 1)
    if len(data) > _MAX_SIDECAR_BYTES:
        raise InvalidSidecarError(f"larger than {_MAX_SIDECAR_BYTES // 2**20} MiB")
    return parse_xmp(data)


def embedded_keywords(image: str | os.PathLike) -> list[str]:
    """The keywords in an image file's own XMP (dc:subject) and IPTC (2:25 Keywords), as
    Pillow reads them from the header; [] for a file without any, or that cannot be read."""
    from PIL import Image, IptcImagePlugin

    found: list[str] = []
    try:
        with Image.open(image) as opened:
            packet = opened.info.get("xmp") or opened.info.get("XML:com.adobe.xmp")
            tag_v2 = getattr(opened, "tag_v2", None)  # TIFF keeps its packet in tag 700
            if packet is None and tag_v2 is not None:
                packet = tag_v2.get(700)
            if isinstance(packet, (bytes, str)) and packet:
                with contextlib.suppress(InvalidSidecarError):  # its IPTC may still be good
                    found.extend(parse_xmp(packet).people())
            iptc = IptcImagePlugin.getiptcinfo(opened) or {}
    except Exception:  # a file the indexer read, whose header Pillow cannot: no keywords
        return found
    values = iptc.get((2, 25), [])
    for value in values if isinstance(values, list) else [values]:
        found.append(_iptc_text(value))
    return _unique(found)


def file_keywords(image: str, sidecars: Iterable[str]) -> tuple[list[tuple[str, str]], list]:
    """((keyword, source) of one image, [(sidecar, why) for sidecars that could not be read])."""
    pairs: list[tuple[str, str]] = []
    unreadable = []
    for sidecar in sidecars:
        try:
            pairs.extend((keyword, "sidecar") for keyword in read_sidecar(sidecar).people())
        except (OSError, InvalidSidecarError) as exc:
            unreadable.append((sidecar, str(exc)))
    pairs.extend((keyword, "embedded") for keyword in embedded_keywords(image))
    return pairs, unreadable


@dataclass
class KeywordPass:
    """What one pass read: files whose keywords were re-read, and sidecars it could not."""

    files: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def refresh_keywords(catalog: Catalog, root: str, changed: Iterable[str]) -> KeywordPass:
    """Re-read the keywords of the files under ``root`` whose content is new or changed
    (``changed``: their paths), or whose sidecar appeared, changed or went away since the last
    pass over ``root``; store them in the catalog."""
    started_ns = time.time_ns()
    key = _PASS_KEY + root
    last = catalog.get_setting(key)
    since_ns = int(last) - _MTIME_SLACK_NS if last is not None else None
    changed = set(changed)
    by_folder: dict[str, list[tuple[int, str, bool]]] = {}
    for file_id, path, offline_since, from_sidecar in catalog.keywords.files_under(root):
        if offline_since is None:  # an offline file's folder is not there to read
            by_folder.setdefault(os.path.dirname(path), []).append((file_id, path, from_sidecar))
    result = KeywordPass()
    found: dict[int, list[tuple[str, str]]] = {}
    for folder, entries in by_folder.items():
        names = _sidecar_names(folder)
        for file_id, path, from_sidecar in entries:
            sidecars = [os.path.join(folder, n) for n in _sidecars_of(path, names)]
            if path in changed or _newer(sidecars, since_ns) or (from_sidecar and not sidecars):
                found[file_id], unreadable = file_keywords(path, sidecars)
                result.unreadable.extend(unreadable)
                result.files += 1
            if len(found) >= _WRITE_EVERY:  # bounded memory on a first pass over a big library
                catalog.keywords.replace(found)
                found = {}
    if found:
        catalog.keywords.replace(found)
    catalog.set_setting(key, str(started_ns))
    return result


def _sidecar_names(folder: str) -> dict[str, str]:
    """Lower-cased name → name of the .xmp files in ``folder`` ({} if it cannot be listed)."""
    try:
        with os.scandir(folder) as entries:
            return {
                entry.name.lower(): entry.name
                for entry in entries
                if entry.name.lower().endswith(".xmp")
            }
    except OSError:
        return {}


def _sidecars_of(image: str, names: dict[str, str]) -> list[str]:
    """The sidecar names of ``image`` present in its folder: darktable's, then Lightroom's."""
    base = os.path.basename(image).lower()
    candidates = (base + ".xmp", os.path.splitext(base)[0] + ".xmp")
    return [names[c] for c in dict.fromkeys(candidates) if c in names]


def _newer(paths: list[str], since_ns: int | None) -> bool:
    if since_ns is None:
        return bool(paths)
    for path in paths:
        try:
            if os.stat(path).st_mtime_ns >= since_ns:
                return True
        except OSError:
            return True  # gone between listing and stat: read again
    return False


def _array_items(element: ET.Element) -> list[str]:
    """The values of an XMP property: the rdf:li of its Bag/Seq/Alt, else its own text."""
    items = [
        (li.text or "").strip()
        for container in element
        if container.tag in {f"{{{RDF_NS}}}{kind}" for kind in ("Bag", "Seq", "Alt")}
        for li in container.findall(f"{{{RDF_NS}}}li")
    ]
    if not items and len(element) == 0 and (element.text or "").strip():
        items = [element.text.strip()]
    return [item for item in items if item]


def _iptc_text(value: bytes) -> str:
    try:  # IPTC text is UTF-8 where the file says so (1:90), which every current tool writes
        return value.decode("utf-8").strip()
    except UnicodeDecodeError:
        return value.decode("latin-1").strip()


def _unique(values: Iterable[str]) -> list[str]:
    return [value for value in dict.fromkeys(v.strip() for v in values) if value]
