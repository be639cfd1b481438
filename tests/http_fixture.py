"""A small HTTP server on 127.0.0.1 for download tests: Range requests, a Hugging-Face-like
``/<org>/<repo>/resolve/<rev>/<file>`` endpoint, and an optional cut-off to simulate a dropped
connection. Bounded: it serves only the files it was given and stops with the test."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer:
    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)      # url path (no leading slash) -> content
        self.cut_after: dict[str, int] = {}  # path -> bytes to send before dropping the connection (once)
        self.stall_after: dict[str, int] = {}  # path -> bytes to send before going silent (once), connection open
        self.etags: dict[str, str] = {}  # path -> ETag to announce instead of the content's sha256
        self.stop = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _serve(self, head: bool) -> None:
                path = self.path.lstrip("/").split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((self.command, path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if "/resolve/" in path:  # Hugging Face hub headers
                    self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
                    etag = server.etags.get(path) or hashlib.sha256(data).hexdigest()
                    self.send_header("ETag", f'"{etag}"')
                self.end_headers()
                if head:
                    return
                stall = server.stall_after.pop(path, None)
                if stall is not None:
                    self.wfile.write(body[:stall])
                    self.wfile.flush()
                    server.stop.wait(30)
                    self.close_connection = True
                    return
                cut = server.cut_after.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                self._serve(head=False)

            def do_HEAD(self):  # noqa: N802
                self._serve(head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def read(path: str | Path) -> bytes:
    return Path(path).read_bytes()
