"""What a search request may ask (query parameters, a JSON body, or a multipart form with an
uploaded image), checked by pydantic, and how it runs on the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from searchclip import _images as images
from searchclip._errors import ImageReadError, InvalidArgumentError
from searchclip._filter_words import photo_filter
from searchclip._query import Query, Term, text_terms
from searchclip.server.errors import UploadTooLargeError, validation_line

if TYPE_CHECKING:
    from fastapi import Request
    from PIL import Image

    from searchclip._engine import SearchEngine
    from searchclip._results import SearchResults

MAX_RESULTS = 1000  # a page holds at most this many hits, and a sorted search sorts as many
MAX_OFFSET = 100_000
MAX_ID = 2**63 - 1  # SQLite's largest integer
ImageIds = list[Annotated[int, Field(ge=1, le=MAX_ID)]]
_UPLOAD_SIDE = 448  # an uploaded image is decoded at least this large: the models take 224-384


class SearchRequest(BaseModel):
    """A search: query terms, filters, a cut-off, an order, a page. Each text may carry an
    inline weight (``2:sunset``); ``like`` and ``not_like`` are ids of indexed images."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    q: str | None = Field(None, description="what to look for, in words", max_length=2000)
    not_: list[str] = Field([], alias="not", description="push images like these texts down")
    like: ImageIds = Field([], description="ids of indexed images to find more like")
    not_like: ImageIds = Field([], description="ids of indexed images to push down")
    limit: int = Field(30, ge=1, le=MAX_RESULTS, description="hits per page")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="hits to skip")
    min_score: float | None = Field(None, ge=-1, le=1, description="every image scoring this")
    relevant: bool = Field(False, description="every image that stands out for the query")
    sort: Literal["score", "date", "-date", "path"] = "score"
    tag: list[str] = Field([], description="only images with every one of these tags")
    no_tag: list[str] = Field([], description="no image with any of these tags")
    after: str | None = Field(None, description="taken on or after: 2023, 2023-06, 2023-06-15")
    before: str | None = Field(None, description="taken before (same forms)")
    in_: list[str] = Field([], alias="in", description="under any of these folders")
    path: str | None = Field(None, description="absolute path matches this glob")
    camera: str | None = Field(None, description="camera make or model contains this")
    lens: str | None = Field(None, description="lens contains this")
    format: list[str] = Field([], description="jpeg, png, webp, ...")
    min_width: int | None = Field(None, ge=1)
    min_height: int | None = Field(None, ge=1)
    orientation: Literal["landscape", "portrait", "square"] | None = None
    has_gps: bool | None = None
    near: str | None = Field(None, description="LAT,LON in degrees (with within)")
    within: float | None = Field(None, gt=0, le=20_100, description="kilometres from near")
    include_offline: bool = Field(False, description="also images on drives found missing")

    @classmethod
    def from_json(cls, body: bytes) -> SearchRequest:
        try:
            return cls.model_validate_json(body or b"{}")
        except ValidationError as err:
            raise InvalidArgumentError(validation_line(err.errors())) from None

    @property
    def fetch(self) -> int:
        """How many hits to ask for: this page, and one more to know whether another follows."""
        return self.offset + self.limit + 1

    def run(self, engine: SearchEngine, image: Image.Image | None = None) -> SearchResults:
        """The request's results, in its order (all of them that its page needs)."""
        where = photo_filter(
            after=self.after,
            before=self.before,
            folders=self.in_,
            path_glob=self.path,
            camera=self.camera,
            lens=self.lens,
            formats=self.format,
            min_width=self.min_width,
            min_height=self.min_height,
            orientation=self.orientation,
            has_gps=self.has_gps,
            near=self.near,
            within_km=self.within,
            include_offline=self.include_offline,
            flag="",
        )
        terms = self._terms(image)
        cut = self.min_score is not None or self.relevant
        if not terms:
            if not self.tag or cut:
                raise InvalidArgumentError("give q, like, an image, or a tag to list")
            first, *others = self.tag
            found = engine.images_with_tag(
                first, self.fetch, tags=others, not_tags=self.no_tag, where=where
            )
            return found.sorted_by(self.sort)
        # a sorted page must come from the same sorted list as the pages before it
        k = None if cut else (self.fetch if self.sort == "score" else MAX_RESULTS + 1)
        found = engine.search(
            Query(tuple(terms)),
            k,
            tags=self.tag,
            not_tags=self.no_tag,
            where=where,
            min_score=self.min_score,
            relevant=self.relevant,
        )
        return found.sorted_by(self.sort)

    def _terms(self, image: Image.Image | None) -> list[Term]:
        words = self.q if self.q and self.q.strip() else None  # an empty box asks nothing
        terms = text_terms(words, self.not_)
        terms += [Term(image_id=image_id) for image_id in self.like]
        terms += [Term(image_id=image_id, weight=-1) for image_id in self.not_like]
        if image is not None:
            terms.append(Term(image=image))
        return terms


async def search_from_form(request: Request, max_bytes: int) -> tuple[SearchRequest, bytes]:
    """The request of a multipart form: its ``query`` field (JSON) and its ``image`` bytes,
    refused past ``max_bytes`` without reading further."""
    try:
        async with request.form(max_files=1, max_fields=10, max_part_size=max_bytes + 1) as form:
            upload, text = form.get("image"), form.get("query")
            if upload is None or isinstance(upload, str):
                raise InvalidArgumentError("the form needs an image file in its 'image' field")
            data = await upload.read(max_bytes + 1)
    except InvalidArgumentError:
        raise
    except Exception as err:  # Starlette's multipart errors: a malformed or oversized form
        raise InvalidArgumentError(f"the multipart form cannot be read: {err}") from None
    if len(data) > max_bytes:
        raise UploadTooLargeError(
            f"the uploaded image is over the limit of {max_bytes / (1024 * 1024):.3g} MB"
        )
    if text is not None and not isinstance(text, str):
        raise InvalidArgumentError("the form's 'query' field must be text (JSON)")
    return SearchRequest.from_json((text or "{}").encode()), data


def decoded_upload(data: bytes) -> Image.Image:
    """An uploaded image, decoded with the guards of indexing (declared size, decode budget,
    aspect ratio, truncation); it is never written anywhere."""
    try:
        decoded = images.decode_image(
            data,
            min_side=_UPLOAD_SIDE,
            reduce=True,
            decode_pixels=images.decode_budget(1),
            max_aspect=images.MAX_ASPECT_RATIO,
        )
    except ImageReadError as err:
        raise ImageReadError(f"the uploaded image: {err.reason}") from None
    return decoded.image
