"""The JSON shapes of the HTTP API (pydantic models: they are the OpenAPI schema too)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from searchclip._results import (
    IndexedImage,
    MigrationInfo,
    PhotoMetadata,
    SearchHit,
    SearchResults,
)


class Error(BaseModel):
    """Every error: one line meant for a person."""

    error: str = Field(examples=["no image with id 17 in this index"])


class Metadata(BaseModel):
    """What the photo's EXIF and header said; ``taken_at`` in ISO 8601, with its UTC offset
    when the EXIF gave one, else the camera's wall-clock time (or UTC for a file time)."""

    taken_at: str | None = None
    taken_at_source: str = ""
    utc_offset_minutes: int | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    format: str | None = None


class TagOut(BaseModel):
    label: str
    score: float
    vocabulary: str


class ImageOut(BaseModel):
    """An indexed image; ``thumbnail`` and ``file`` are the URLs to fetch it from."""

    id: int
    path: str
    name: str
    width: int
    height: int
    size: int
    metadata: Metadata | None = None
    thumbnail: str
    file: str


class Hit(ImageOut):
    """One result: an image with its rank and score."""

    rank: int
    score: float
    offline: bool = Field(False, description="on a drive missing at the last index run")


class Cutoff(BaseModel):
    """How ``relevant=true`` chose its minimum score (None: nothing stood out)."""

    min_score: float | None
    separation: float
    background_separation: float
    stands_out: bool
    probability: float | None = Field(
        None,
        description="a sigmoid model's (SigLIP's) match probability min_score stands for; "
        "null where the score split decided",
    )


class SearchResponse(BaseModel):
    """A page of hits: ``offset`` and ``limit`` as asked; ``more`` when a next page has hits."""

    hits: list[Hit]
    offset: int
    limit: int
    more: bool
    missing: int = Field(description="indexed files found gone and left out")
    cutoff: Cutoff | None = None


class ImageDetails(ImageOut):
    """An image with its stored tags."""

    tags: list[TagOut]


class Vocabulary(BaseModel):
    name: str
    labels: int
    tagged_images: int
    calibrated_labels: int


class TagsResponse(BaseModel):
    """The vocabularies tagged in the index and every label that some image carries."""

    vocabularies: list[Vocabulary]
    labels: list[str]


class Migration(BaseModel):
    """A switch to another model in progress: ``encoded`` of ``total`` images have a vector
    of it; ``waiting_for``: offline folders it waits for."""

    model: str
    dim: int
    encoded: int
    total: int
    precision: str
    waiting_for: list[str] = []


class KeptModel(BaseModel):
    """A model the index used before, whose vectors it kept (switching back: no encoding)."""

    model: str
    dim: int
    vectors: int


class InfoResponse(BaseModel):
    index_dir: str
    model: str
    dim: int
    files: int
    failures: int
    precision: str
    vocabularies: list[Vocabulary]
    migration: Migration | None = None  # queries use ``model`` until the switch
    kept_models: list[KeptModel] = []


class Health(BaseModel):
    status: str = "ok"


def migration_out(migration: MigrationInfo | None) -> Migration | None:
    if migration is None:
        return None
    return Migration(
        model=migration.model,
        dim=migration.dim,
        encoded=migration.encoded,
        total=migration.total,
        precision=migration.precision,
        waiting_for=[folder.path for folder in migration.waiting_for],
    )


def metadata_out(meta: PhotoMetadata | None) -> Metadata | None:
    if meta is None:
        return None
    return Metadata(
        taken_at=meta.taken_at_iso,
        taken_at_source=meta.taken_at_source,
        utc_offset_minutes=meta.utc_offset_minutes,
        camera_make=meta.camera_make,
        camera_model=meta.camera_model,
        lens=meta.lens,
        latitude=meta.latitude,
        longitude=meta.longitude,
        format=meta.format,
    )


def _image_fields(image: SearchHit | IndexedImage, prefix: str) -> dict:
    return {
        "id": image.id,
        "path": image.path,
        "name": image.path.rsplit("/", 1)[-1],
        "width": image.width,
        "height": image.height,
        "size": image.size,
        "metadata": metadata_out(image.metadata),
        "thumbnail": f"{prefix}/api/images/{image.id}/thumbnail",
        "file": f"{prefix}/api/images/{image.id}/file",
    }


def hit_out(hit: SearchHit, prefix: str) -> Hit:
    fields = _image_fields(hit, prefix)
    return Hit(rank=hit.rank, score=round(hit.score, 6), offline=hit.offline, **fields)


def page_out(results: SearchResults, offset: int, limit: int, prefix: str) -> SearchResponse:
    """Hits ``offset`` to ``offset + limit`` of ``results`` (fetched with one more to know)."""
    page = results[offset : offset + limit]
    cut = results.cutoff
    return SearchResponse(
        hits=[hit_out(hit, prefix) for hit in page],
        offset=offset,
        limit=limit,
        more=len(results) > offset + limit,
        missing=len(results.missing),
        cutoff=None
        if cut is None
        else Cutoff(
            min_score=cut.min_score,
            separation=round(cut.separation, 3),
            background_separation=round(cut.background_separation, 3),
            stands_out=cut.stands_out,
            probability=cut.probability,
        ),
    )


def image_out(image: IndexedImage, prefix: str) -> ImageDetails:
    tags = [
        TagOut(label=t.label, score=round(t.score, 6), vocabulary=t.vocabulary) for t in image.tags
    ]
    return ImageDetails(tags=tags, **_image_fields(image, prefix))
