"""searchclip over HTTP: ``create_app(engine)`` is the API and the page as an ASGI app
(FastAPI), which ``searchclip serve`` runs with uvicorn and a program can mount in its own.

Needs the ``serve`` extra: ``pip install 'searchclip[serve]'``.
"""

from searchclip.server.app import DEFAULT_UPLOAD_LIMIT, create_app

__all__ = ["DEFAULT_UPLOAD_LIMIT", "create_app"]
