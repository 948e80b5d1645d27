"""`searchclip serve`: the HTTP API and the page, run by uvicorn over one index."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, open_engine
from searchclip._errors import InvalidArgumentError, MissingExtraError

TOKEN_ENV_VAR = "SEARCHCLIP_TOKEN"


def serve(
    index: IndexOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=f"Required on every request (also: ${TOKEN_ENV_VAR}); needed beyond 127.0.0.1.",
            show_default=False,
        ),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Serve the index over HTTP: a search page at / and a JSON API under /api (its OpenAPI
    schema at /openapi.json). The server keeps answering while `searchclip index` updates it.

    \b
    Examples:
      searchclip serve                          # http://127.0.0.1:8765/
      searchclip serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    try:
        import uvicorn

        from searchclip.server import create_app
    except ImportError as err:
        raise MissingExtraError(
            f"searchclip serve needs {err.name}: pip install 'searchclip[serve]'", extra="serve"
        ) from None
    if not 0 < port < 65536:
        raise InvalidArgumentError(f"--port must be between 1 and 65535, got {port}", value=port)
    token = token or os.environ.get(TOKEN_ENV_VAR) or None
    if not _loopback(host):
        typer.echo(
            f"warning: listening on {host}: anyone who can reach this machine can reach the "
            "server; every request must carry the token",
            err=True,
        )
        if not token:
            raise InvalidArgumentError(
                f"serving on {host} needs --token TOKEN (or ${TOKEN_ENV_VAR}): "
                "only 127.0.0.1 is served without one"
            )
    with open_engine(index, create=False, device=device) as engine:
        app = create_app(engine, token=token)
        where = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
        typer.echo(f"serving {engine.index_dir} at {where} (Ctrl-C stops)", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
