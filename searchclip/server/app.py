"""The HTTP API and the page: a FastAPI app, a thin layer over one SearchEngine.

FastAPI rather than bare Starlette: the request parameters and JSON shapes are declared once
(pydantic models) and become both the validation and the published OpenAPI schema, which the
schema fuzzing tests run against. Endpoints are plain functions: Starlette runs them in its
thread pool, and a SearchEngine is safe to share between threads for searching, also while
another process indexes into the same index (it re-reads the index when its generation moves).
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from searchclip._engine import SearchEngine
from searchclip._errors import InvalidArgumentError
from searchclip.server import models
from searchclip.server.errors import install_error_handlers
from searchclip.server.requests import (
    MAX_ID,
    MAX_OFFSET,
    MAX_RESULTS,
    SearchRequest,
    decoded_upload,
    search_from_form,
)
from searchclip.server.security import TokenCheck

ImageId = Annotated[int, Path(ge=1, le=MAX_ID, description="an image's id in the index")]
DEFAULT_UPLOAD_LIMIT = 20 * 1024 * 1024  # bytes; a phone photo is 2-12 MB
_ERRORS = {
    400: {"model": models.Error, "description": "bad input"},
    404: {"model": models.Error, "description": "no such image"},
    409: {"model": models.Error, "description": "the index cannot answer yet"},
}


def create_app(
    engine: SearchEngine,
    *,
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_UPLOAD_LIMIT,
) -> FastAPI:
    """The API and page for ``engine``'s index. With ``token``, every request but
    ``/healthz`` must carry it (``Authorization: Bearer …``, the ``searchclip_token`` cookie,
    or ``?token=`` once, which sets the cookie). Mount it in a larger app with
    ``parent.mount("/photos", create_app(engine))``."""
    app = FastAPI(
        title="searchclip",
        summary="Semantic search of an image index: text, images, filters, tags.",
        version="1",
        responses=_ERRORS,
        docs_url=None,  # FastAPI's docs pages load their scripts from a CDN; the schema stays
        redoc_url=None,
    )
    install_error_handlers(app)
    if token:
        app.add_middleware(TokenCheck, token=token)
    static = resources.files("searchclip.server") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    def prefix(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def page(request: Request, query: SearchRequest, image=None) -> models.SearchResponse:
        results = query.run(engine, image=image)
        return models.page_out(results, query.offset, query.limit, prefix(request))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/healthz", response_model=models.Health, tags=["service"])
    def healthz() -> models.Health:
        return models.Health()

    @app.get("/api/info", response_model=models.InfoResponse, tags=["index"])
    def info() -> models.InfoResponse:
        found = engine.info()
        return models.InfoResponse(
            index_dir=found.index_dir,
            model=found.model,
            dim=found.dim,
            files=found.files,
            failures=found.failures,
            precision=found.precision,
            vocabularies=[models.Vocabulary(**v.__dict__) for v in found.vocabularies],
            migration=models.migration_out(found.migration),
            kept_models=[models.KeptModel(**kept.__dict__) for kept in found.kept_models],
        )

    @app.get("/api/tags", response_model=models.TagsResponse, tags=["index"])
    def tags() -> models.TagsResponse:
        found = engine.info()
        vocabularies = [models.Vocabulary(**v.__dict__) for v in found.vocabularies]
        return models.TagsResponse(vocabularies=vocabularies, labels=engine.tag_labels())

    @app.get("/api/search", response_model=models.SearchResponse, tags=["search"])
    def search_get(
        request: Request, query: Annotated[SearchRequest, Query()]
    ) -> models.SearchResponse:
        """Search by text (``q``), indexed images (``like``, ``not_like``: ids), filters."""
        return page(request, query)

    @app.post(
        "/api/search",
        response_model=models.SearchResponse,
        tags=["search"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "image": {"type": "string", "format": "binary"},
                                "query": {
                                    "type": "string",
                                    "description": "a SearchRequest as JSON (optional)",
                                },
                            },
                            "required": ["image"],
                        }
                    },
                },
            }
        },
    )
    async def search_post(request: Request) -> models.SearchResponse:
        """The same search as a JSON body (a SearchRequest), or as a multipart form holding an
        uploaded ``image`` to search by (and optionally ``query``, a SearchRequest as JSON)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            query, data = await search_from_form(request, max_upload_bytes)
            image = decoded_upload(data)
            return await _in_thread(page, request, query, image)
        if kind not in ("application/json", ""):
            raise InvalidArgumentError(f"send JSON or a multipart form, not {kind}")
        query = SearchRequest.from_json(await request.body())
        return await _in_thread(page, request, query)

    @app.get("/api/images/{image_id}", response_model=models.ImageDetails, tags=["images"])
    def image(request: Request, image_id: ImageId) -> models.ImageDetails:
        return models.image_out(engine.image(image_id), prefix(request))

    @app.get(
        "/api/images/{image_id}/similar", response_model=models.SearchResponse, tags=["images"]
    )
    def similar(
        request: Request,
        image_id: ImageId,
        limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 30,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> models.SearchResponse:
        """More like this: the images nearest to an indexed one, itself left out."""
        query = SearchRequest(like=[image_id], limit=limit, offset=offset)
        results = engine.search_similar(image_id, query.fetch)
        return models.page_out(results, query.offset, query.limit, prefix(request))

    @app.get(
        "/api/images/{image_id}/thumbnail",
        response_class=Response,
        tags=["images"],
        responses={200: {"content": {"image/webp": {}}}, 304: {"description": "not modified"}},
    )
    def thumbnail(request: Request, image_id: ImageId) -> Response:
        """A small upright copy (long side 320 px), made once and cached in the index."""
        found = engine.thumbnail(image_id)
        headers = {"ETag": found.etag, "Cache-Control": "private, no-cache"}  # revalidated: 304
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(found.path, media_type=found.media_type, headers=headers)

    @app.get(
        "/api/images/{image_id}/file",
        response_class=FileResponse,
        tags=["images"],
        responses={200: {"content": {"image/*": {}}}},
    )
    def image_file(image_id: ImageId) -> FileResponse:
        """The indexed file itself, while it is what was indexed (never a symbolic link)."""
        path = engine.image_file(image_id)
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    return app


async def _in_thread(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


__all__ = ["MAX_RESULTS", "create_app"]
