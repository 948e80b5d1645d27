"""The token a server bound beyond 127.0.0.1 requires on every request but ``/healthz``."""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie

from starlette.responses import HTMLResponse

from searchclip.server.errors import error_response

_MESSAGE = "this server needs its token: Authorization: Bearer TOKEN, or ?token=TOKEN"
_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>searchclip</title>
<body style="font-family: system-ui, sans-serif; max-width: 36em; margin: 4em auto">
<h1>searchclip needs its token</h1><p>This server was started with a token. Open the
address it printed, which ends in <code>?token=…</code>, or add <code>?token=TOKEN</code>
to this address.</p></body></html>"""

COOKIE = "searchclip_token"


class TokenCheck:
    """ASGI middleware: a request passes with ``Authorization: Bearer TOKEN``, the cookie, or
    ``?token=TOKEN``; the last sets the cookie, so a page opened from a link with the token
    loads its thumbnails without it in every URL."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        given, from_query = self._given(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token):
            await _refusal(scope)(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                path = scope.get("root_path") or "/"  # the app's own prefix when mounted
                cookie = f"{COOKIE}={given}; Path={path}; HttpOnly; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _given(scope) -> tuple[str | None, bool]:
        headers = dict(scope.get("headers") or ())
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # a malformed cookie header is no token
            cookies = SimpleCookie()
        if COOKIE in cookies:
            return cookies[COOKIE].value, False
        from urllib.parse import parse_qs

        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return (values[0], True) if values else (None, False)


def _refusal(scope):
    """401: a page for a browser asking for a page, JSON for everything else."""
    headers = dict(scope.get("headers") or ())
    if b"text/html" in headers.get(b"accept", b""):
        return HTMLResponse(_PAGE, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return error_response(401, _MESSAGE, {"WWW-Authenticate": "Bearer"})
