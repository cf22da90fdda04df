"""The HMI's HTTP server: ``/`` the page, ``/api/state`` its data, ``POST /api/command`` the
operator's commands (standard library only).

``POST /api/command`` takes ``{"command": "start"|"stop"|"estop"|"reset", "reason": "…"}``
and sends a ``crmsort_msgs/LineCommand`` with source ``"hmi"`` to the line, then waits up
to ``answer_timeout_s`` for the line controller's answer (``control/state``). Replies
(JSON): 200 accepted, 409 refused by the line (its reason in ``message``), 202 sent but no
answer heard in time; 400 a body that is not a JSON object, an unknown command (named) or
a reason that is not a string; 403 a read-only HMI; 413 a body over 4 KiB."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from sorting.control import parse_command
from sorting.errors import CommandError
from sorting.hmi.commands import CommandSink, command_msg
from sorting.hmi.state import HmiState

MAX_BODY = 4096
SOURCE = "hmi"


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
    daemon thread between :meth:`start` and :meth:`stop`. Commands posted to
    ``/api/command`` go to ``commands``; without one, or with ``read_only``, they are
    refused (403) and the page shows no working buttons."""

    def __init__(self, state: HmiState, host: str = "127.0.0.1", port: int = 8080,
                 title: str = "crmsort", *, commands: CommandSink | None = None,
                 read_only: bool = False, answer_timeout_s: float = 2.0) -> None:
        self.state = state
        self.commands = None if read_only else commands
        self.answer_timeout_s = answer_timeout_s
        page = page_html(title)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", page)
                elif path == "/api/state":
                    snap = state.snapshot()
                    snap["commands"] = server.commands is not None
                    body = json.dumps(_clean(snap)).encode("utf-8")
                    self._send(200, "application/json", body)
                else:
                    self._send(404, "text/plain; charset=utf-8",
                               f"{path}: not here (the HMI serves / and /api/state)\n".encode())

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                if path != "/api/command":
                    self._json(404, {"error": f"{path}: not here (commands go to "
                                              "POST /api/command)"})
                    return
                code, doc = server.handle_command(self._body())
                self._json(code, doc)

            def _body(self) -> bytes | None:
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    n = -1
                if n < 0 or n > MAX_BODY:
                    return None
                return self.rfile.read(n)

            def _json(self, code: int, doc: dict[str, Any]) -> None:
                self._send(code, "application/json", json.dumps(_clean(doc)).encode("utf-8"))

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

    def handle_command(self, body: bytes | None) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON reply for a ``POST /api/command`` body (see the module
        docstring)."""
        if self.commands is None:
            return 403, {"error": "this HMI is read-only: it sends no commands (served with "
                                  "--read-only, or without a line to command)"}
        if body is None:
            return 413, {"error": f"the body must be a JSON object of at most {MAX_BODY} "
                                  "bytes with a Content-Length"}
        try:
            doc = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            return 400, {"error": f"the body is not JSON: {exc}"}
        if not isinstance(doc, dict) or "command" not in doc:
            return 400, {"error": 'expected a JSON object {"command": "start"|"stop"|"estop"|'
                                  '"reset", "reason": "..."}'}
        reason = doc.get("reason", "")
        if not isinstance(reason, str):
            return 400, {"error": f"reason: expected a string, got {type(reason).__name__}"}
        try:
            cmd = parse_command(str(doc["command"]))
        except CommandError as exc:
            return 400, {"error": str(exc)}
        msg = command_msg(cmd, SOURCE, reason)
        self.commands.send(msg)
        sent = {"command": cmd.name, "source": SOURCE, "reason": reason}
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        end = time.monotonic() + self.answer_timeout_s
        while True:
            answer = self.state.answer(stamp, SOURCE)
            if answer is not None:
                ok = bool(answer["accepted"])
                return (200 if ok else 409), {**sent, "accepted": ok,
                                               "message": answer["message"]}
            if time.monotonic() >= end:
                return 202, {**sent, "accepted": None,
                             "message": f"sent; no answer from the line controller within "
                                        f"{self.answer_timeout_s:g} s"}
            time.sleep(0.02)

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
