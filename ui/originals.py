"""Serving the corpus's own files ("Open the original file") without letting them act on the page.

Gradio serves a file under `allowed_paths` inline, with the type its name suggests: a saved web page in
the corpus would run its scripts on the assistant's own origin (with the user's session), and any other
file in the corpus folder could be fetched too. This middleware sits in front of Gradio's file route: a
file inside the corpus folder is served only when it is an indexed article's original, and whatever the
route serves comes with a sandboxing Content-Security-Policy — the page still shows, but runs no script
and fetches nothing from elsewhere. PDFs are the exception: the browser's own viewer opens them, and a
sandbox would block it. Gradio still answers first (its login check included); the middleware only
turns a file it would serve into a 404 when it is no article.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

# Gradio's file route, "/file=PATH", and its deprecated twin "/file/PATH" (the same handler).
FILE_ROUTE = re.compile(r"/file[=/]")
SANDBOX = b"sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
NOT_AN_ARTICLE = b"Not an article of this corpus."


class CorpusFiles:
    """ASGI middleware: `is_article(relative_path)` says whether a corpus file is an indexed original."""

    def __init__(self, app, corpus_dir: Path, is_article: Callable[[str], bool]):
        self.app, self.is_article = app, is_article
        # The corpus folder as named (articles may be links inside it) and as it really is.
        self.named_root = Path(os.path.abspath(corpus_dir))
        self.root = self.named_root.resolve()

    async def __call__(self, scope, receive, send):
        route = FILE_ROUTE.search(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            return await self.app(scope, receive, send)
        allowed = self._may_serve(scope["path"][route.end() :])
        refused = False

        async def guarded(message):
            nonlocal refused
            if message["type"] == "http.response.start":
                if message["status"] < 400 and not allowed:  # a range request's 206 too
                    refused = True
                    message = {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                    await send(message)
                    return await send({"type": "http.response.body", "body": NOT_AN_ARTICLE})
                headers = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
                if not dict(headers).get(b"content-type", b"").startswith(b"application/pdf"):
                    headers.append((b"content-security-policy", SANDBOX))
                message = {**message, "headers": headers}
            elif refused:
                return  # the file's bytes are not sent
            await send(message)

        await self.app(scope, receive, guarded)

    def _may_serve(self, requested: str) -> bool:
        # As Gradio reads the path: relative to the working folder. An article's source may itself be a
        # link inside the corpus (the loader checked where it points), so it is looked up as named too.
        try:
            named = Path(os.path.abspath(requested))
            if named.is_relative_to(self.named_root) and self.is_article(named.relative_to(self.named_root).as_posix()):
                return True
            resolved = named.resolve()
        except (OSError, RuntimeError, ValueError):
            return True  # not a path we can place: Gradio's own checks refuse it
        if not resolved.is_relative_to(self.root):
            return True  # not in the corpus (an upload, an export): Gradio's allowed paths decide
        return self.is_article(resolved.relative_to(self.root).as_posix())
