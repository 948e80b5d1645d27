"""Writing stored tags into XMP sidecars, merged with what is there.

Ownership: searchclip lists the entries it added in its own namespace
(``searchclip:subjects`` for dc:subject, ``searchclip:hierarchicalSubjects`` for
lr:hierarchicalSubject), which photo managers keep untouched like any unknown property. A label
already in dc:subject that searchclip did not add is the user's: it stays theirs, is not listed,
and so is never removed by a later run. A re-run after re-tagging removes only listed entries
that are no longer tags. Everything else in the sidecar is left as it was.

The writer is Adobe's XMP Toolkit, through exempi and python-xmp-toolkit: it parses the whole
packet into XMP's data model and serialises it again, so every field searchclip never names
survives, and it makes the keyword arrays rdf:Bags as their schemas say. (pyexiv2, which needs
no system library, was tried first: exiv2 writes new arrays as rdf:Seq, and neither deleting
nor re-typing an existing array took effect through its API.) The new text goes to a temporary
file in the sidecar's folder, which then replaces the sidecar (os.replace): a crash leaves the
old sidecar or the new one, never half of one. The image file is never opened for writing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from searchclip._atomic_files import atomic_write
from searchclip._errors import InvalidArgumentError, MissingExtraError
from searchclip._xmp import (
    DC_NS,
    LR_NS,
    SEARCHCLIP_NS,
    SIDECAR_STYLES,
    InvalidSidecarError,
    XmpKeywords,
    read_sidecar,
    sidecar_path,
)

XMP_EXTRA = "xmp"
_ARRAYS = {  # what this module writes: (namespace, property) → which XmpKeywords field it is
    (DC_NS, "subject"): "subjects",
    (LR_NS, "hierarchicalSubject"): "hierarchical",
    (SEARCHCLIP_NS, "subjects"): "own_subjects",
    (SEARCHCLIP_NS, "hierarchicalSubjects"): "own_hierarchical",
}


@dataclass(frozen=True)
class SidecarChange:
    """One sidecar written (or, in a dry run, that would be): keywords added and removed."""

    image: str
    sidecar: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    created: bool


@dataclass(frozen=True)
class XmpReport:
    """What an XMP export did: sidecars changed, images whose sidecar was already up to date,
    and images skipped, with why (a sidecar that is not valid XMP, an image that is gone)."""

    vocabulary: str
    sidecar_style: str
    dry_run: bool
    changes: tuple[SidecarChange, ...]
    unchanged: int
    skipped: tuple[tuple[str, str], ...]

    @property
    def written(self) -> int:
        return 0 if self.dry_run else len(self.changes)


@dataclass(frozen=True)
class _Plan:
    """A sidecar's keyword arrays after the merge."""

    subjects: list[str]
    hierarchical: list[str]
    own_subjects: list[str]
    own_hierarchical: list[str]


def check_style(sidecar: str, root: str) -> None:
    if sidecar not in SIDECAR_STYLES:
        raise InvalidArgumentError(
            f"unknown sidecar naming {sidecar!r}: use darktable (IMG_1.jpg.xmp) or "
            "lightroom (IMG_1.xmp)",
            value=sidecar,
        )
    if not root or "|" in root or root != root.strip():
        raise InvalidArgumentError(
            f"the hierarchical root must be a plain word without '|', got {root!r}", value=root
        )


def merge(current: XmpKeywords, labels: Sequence[str], root: str) -> _Plan:
    """The arrays once ``labels`` are searchclip's keywords in a sidecar that says ``current``."""
    wanted_h = [f"{root}|{label.replace('|', '/')}" for label in labels]
    subjects, own_subjects = _merge_array(current.subjects, current.own_subjects, labels)
    hierarchical, own_h = _merge_array(current.hierarchical, current.own_hierarchical, wanted_h)
    return _Plan(subjects, hierarchical, own_subjects, own_h)


def _merge_array(
    present: Sequence[str], owned: frozenset[str], wanted: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(the array's new entries, those searchclip owns): owned entries no longer wanted go,
    wanted ones that are missing are added and owned; an entry someone else put there is
    kept and never becomes searchclip's."""
    stale = {entry for entry in owned if entry not in wanted}
    kept = [entry for entry in present if entry not in stale]
    added = [entry for entry in dict.fromkeys(wanted) if entry not in present]
    own = [entry for entry in dict.fromkeys(wanted) if entry in owned or entry in added]
    return kept + added, own


def export_sidecars(
    images: Iterable[tuple[str, list[str]]],
    *,
    vocabulary: str,
    style: str,
    root: str,
    dry_run: bool,
) -> XmpReport:
    """Write each (image, labels) into its ``style`` sidecar where that changes anything."""
    xmp = _load_toolkit() if not dry_run else None
    changes: list[SidecarChange] = []
    skipped: list[tuple[str, str]] = []
    unchanged = 0
    for image, labels in images:
        if not os.path.exists(image):
            skipped.append((image, "image not found"))
            continue
        sidecar = sidecar_path(image, style)
        exists = sidecar.exists()
        try:
            current = read_sidecar(sidecar) if exists else XmpKeywords()
        except (OSError, InvalidSidecarError) as exc:
            skipped.append((image, f"{sidecar} left untouched: {exc}"))
            continue
        plan = merge(current, labels, root)
        if _same(current, plan) or (not exists and not plan.subjects):
            unchanged += 1
            continue
        change = SidecarChange(
            image=image,
            sidecar=str(sidecar),
            added=tuple(s for s in plan.subjects if s not in current.subjects),
            removed=tuple(s for s in current.subjects if s not in plan.subjects),
            created=not exists,
        )
        if not dry_run:
            try:
                _write(xmp, sidecar, plan, exists)
            except (OSError, UnicodeDecodeError, xmp.XMPError) as exc:
                skipped.append((image, f"{sidecar} left untouched: {exc}"))
                continue
        changes.append(change)
    return XmpReport(vocabulary, style, dry_run, tuple(changes), unchanged, tuple(skipped))


def _same(current: XmpKeywords, plan: _Plan) -> bool:
    return (
        list(current.subjects) == plan.subjects
        and list(current.hierarchical) == plan.hierarchical
        and current.own_subjects == frozenset(plan.own_subjects)
        and current.own_hierarchical == frozenset(plan.own_hierarchical)
    )


def _write(xmp, sidecar, plan: _Plan, exists: bool) -> None:
    if exists:
        with open(sidecar, "rb") as source:
            meta = xmp.XMPMeta(xmp_str=source.read().decode("utf-8-sig"))
    else:
        meta = xmp.XMPMeta()
    for (ns, name), field_name in _ARRAYS.items():
        meta.delete_property(ns, name)
        for value in getattr(plan, field_name):  # an array made this way is an rdf:Bag
            meta.append_array_item(ns, name, value, {"prop_value_is_array": True})
    # A sidecar holds one packet and nothing else: no xpacket wrapper, no padding
    # (what darktable, digiKam and Lightroom write).
    data = meta.serialize_to_str(omit_packet_wrapper=True).encode("utf-8")
    atomic_write(sidecar, lambda out: out.write(data), sync_folder=False, keep_mode=exists)


def _load_toolkit():
    """libxmp (python-xmp-toolkit), with searchclip's and Lightroom's namespaces registered.
    Its import fails without the exempi library itself (Debian: libexempi8)."""
    try:
        import libxmp
        import libxmp.core
    except Exception as exc:  # ImportError, or libxmp's ExempiLoadError without libexempi
        raise MissingExtraError(
            f"writing XMP sidecars needs python-xmp-toolkit and the exempi library ({exc}): "
            f"pip install 'searchclip[{XMP_EXTRA}]', and apt-get install libexempi8 "
            "(Debian, Ubuntu) or brew install exempi (macOS)",
            extra=XMP_EXTRA,
        ) from None
    for uri, prefix in ((SEARCHCLIP_NS, "searchclip"), (LR_NS, "lr")):
        libxmp.core.XMPMeta.register_namespace(uri, prefix)
    return libxmp
