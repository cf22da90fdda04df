"""The HMI's HTTP server: ``/`` the page, ``/api/state`` its data (standard library only)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from sorting.hmi.state import HmiState


def _clean(obj: Any) -> Any:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def page_html(title: str) -> bytes:
    """The dashboard page, titled ``title``."""
    text = resources.files("sorting.hmi").joinpath("page.html").read_text(encoding="utf-8")
    return text.replace("{{TITLE}}", title).encode("utf-8")


class HmiServer:
    """Serves ``state`` on ``host:port`` (port 0: any free one; see :attr:`url`) from a
    daemon thread between :meth:`start` and :meth:`stop`."""

    def __init__(self, state: HmiState, host: str = "127.0.0.1", port: int = 8080,
                 title: str = "crmsort") -> None:
        self.state = state
        page = page_html(title)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", page)
                elif path == "/api/state":
                    body = json.dumps(_clean(state.snapshot())).encode("utf-8")
                    self._send(200, "application/json", body)
                else:
                    self._send(404, "text/plain; charset=utf-8",
                               f"{path}: not here (the HMI serves / and /api/state)\n".encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the operator's console is not an access log

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/"

    def start(self) -> HmiServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="crmsort-hmi",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()
