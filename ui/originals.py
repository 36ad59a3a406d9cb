"""Serving the corpus's own files ("Open the original file") without letting them act on the page.

Gradio serves a file under `allowed_paths` inline, with the type its name suggests: a saved web page in
the corpus would run its scripts on the assistant's own origin (with the user's session), and any other
file in the corpus folder could be fetched too. This middleware sits in front of Gradio's file route: a
file inside the corpus folder is served only when it is an indexed article's original, and whatever the
route serves comes with a sandboxing Content-Security-Policy — the page still shows, but runs no script
and fetches nothing from elsewhere. PDFs are the exception: the browser's own viewer opens them, and a
sandbox would block it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FILE_ROUTE = "/file="
SANDBOX = b"sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class CorpusFiles:
    """ASGI middleware: `is_article(relative_path)` says whether a corpus file is an indexed original."""

    def __init__(self, app, corpus_dir: Path, is_article: Callable[[str], bool]):
        self.app, self.root, self.is_article = app, corpus_dir.resolve(), is_article

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if FILE_ROUTE not in path:
            return await self.app(scope, receive, send)
        if not self._may_serve(path.split(FILE_ROUTE, 1)[1]):
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            return await send({"type": "http.response.body", "body": b"Not an article of this corpus."})

        async def sandboxed(message):
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
                if not dict(headers).get(b"content-type", b"").startswith(b"application/pdf"):
                    headers.append((b"content-security-policy", SANDBOX))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sandboxed)

    def _may_serve(self, requested: str) -> bool:
        try:  # resolved as Gradio resolves it (relative to the working folder), symlinks followed
            path = Path(os.path.abspath(requested)).resolve()
        except (OSError, RuntimeError, ValueError):
            return True  # not a path we can place: Gradio's own checks refuse it
        if not path.is_relative_to(self.root):
            return True  # not in the corpus (an upload, an export): Gradio's allowed paths decide
        return self.is_article(path.relative_to(self.root).as_posix())
