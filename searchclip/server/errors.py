"""Every failure as JSON ``{"error": "one line"}``, with the status it deserves: bad input is
4xx, never 5xx, and no traceback ever reaches a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from searchclip._errors import (
    CatalogDamagedError,
    EmptyIndexError,
    ImageNotFoundError,
    ImageReadError,
    IndexedFileUnavailableError,
    InputError,
    InvalidArgumentError,
    ModelError,
    SearchclipError,
)

_log = logging.getLogger("searchclip.server")
_LOCATIONS = ("query", "path", "body", "header")


class UploadTooLargeError(InvalidArgumentError):
    """An uploaded file is over the server's size limit."""


def status_of(exc: SearchclipError) -> int:
    """The HTTP status of one of searchclip's errors."""
    for kind, status in (
        (UploadTooLargeError, 413),
        (ImageNotFoundError, 404),
        (IndexedFileUnavailableError, 404),
        (InputError, 400),
        (ImageReadError, 400),  # an upload, or an indexed file that no longer decodes
        (EmptyIndexError, 409),
        (CatalogDamagedError, 503),
        (ModelError, 503),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    line = " ".join(str(message).split()) or "error"
    return JSONResponse({"error": line}, status_code=status, headers=headers)


def validation_line(problems) -> str:
    """pydantic's problems as one line: ``limit: Input should be less than or equal to 1000``."""
    parts = []
    for problem in problems:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p not in _LOCATIONS)
        message = problem.get("msg", "invalid")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SearchclipError)
    async def searchclip_error(request: Request, exc: SearchclipError) -> JSONResponse:
        return error_response(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_line(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error answering %s", request.url.path)  # for the operator
        first = str(exc).splitlines()[0] if str(exc) else ""
        return error_response(
            500, f"unexpected {type(exc).__name__}" + (f": {first}" if first else "")
        )
