"""The neuron browser's local web server: stdlib `http.server`, JSON API + the bundled page.

Why stdlib: the browser must work offline with every asset local (no CDN), and the venv has no
web framework; a threaded `http.server` is plenty for one user on localhost. It binds to
127.0.0.1 by default. Every answer comes from a `NeuronIndex` built once at start.

API (GET, JSON unless noted; errors are `{"error": ...}` with status 400/404):
    /api/meta                                   model, layers, categories, clusters
    /api/search?q=fast&side=top&page=0&size=50  neurons whose top (bottom) tokens match q
    /api/neuron?component=backbone&layer=25&index=1187
    /api/heatmap                                per-layer shares (rows x layers)
    /api/layer?component=backbone&layer=25&criterion=speed&page=0
    /api/cluster?concept=fast&size=20&method=keyword&pool=full
    /api/direction?name=my_dir&alpha=10&mode=override&neurons=backbone:25:1187:-1,...
                                                a direction YAML file (download)
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..errors import VlaSteerError
from .index import NeuronIndex, parse_selection

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = ("index.html", "app.js", "app.css")


def _handler(index: NeuronIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "vla-steer-browser"

        def log_message(self, fmt: str, *args) -> None:  # route to logging, not stderr
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, status: int = 200) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path.startswith("/api/"):
                    self._api(url.path[5:], q)
                else:
                    self._static(url.path)
            except VlaSteerError as exc:
                self._json({"error": str(exc)}, 400)
            except (KeyError, ValueError) as exc:
                self._json({"error": f"bad request: {exc}"}, 400)

        def _static(self, path: str) -> None:
            name = "index.html" if path in ("/", "") else path.lstrip("/")
            if name not in STATIC_FILES:  # a fixed list: nothing outside the bundle is ever served
                self._send(404, b"not found", "text/plain")
                return
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self._send(200, (STATIC_DIR / name).read_bytes(), f"{ctype}; charset=utf-8")

        def _api(self, what: str, q: dict[str, str]) -> None:
            def num(key: str, default: int) -> int:
                return int(q.get(key, default))

            if what == "meta":
                self._json({**index.meta(), "mode": "server"})
            elif what == "search":
                self._json(index.search(q.get("q", ""), q.get("side", "top"), num("page", 0), num("size", 50)))
            elif what == "neuron":
                self._json(index.neuron(q.get("component", "backbone"), num("layer", 0), num("index", 0)))
            elif what == "heatmap":
                self._json(index.heatmap())
            elif what == "layer":
                self._json(index.layer_neurons(q.get("component", "backbone"), num("layer", 0), q["criterion"], num("page", 0)))
            elif what == "cluster":
                self._json(index.cluster(q["concept"], num("size", 20), q.get("method", "keyword"), q.get("pool", "full")))
            elif what == "direction":
                name = q.get("name", "browser_selection")
                text = index.direction_yaml(name, parse_selection(q.get("neurons", "")), float(q.get("alpha", 10.0)),
                                            q.get("mode", "override"))
                self._send(200, text.encode(), "application/x-yaml; charset=utf-8",
                           {"Content-Disposition": f'attachment; filename="{name}.yaml"'})
            else:
                self._json({"error": f"unknown API {what!r}"}, HTTPStatus.NOT_FOUND)

    return Handler


class BrowserServer:
    """A running browser server (thread); `url` to open, `close()` to stop. Port 0 picks a free one."""

    def __init__(self, index: NeuronIndex, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler(index))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="neuron-browser", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "BrowserServer":
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "BrowserServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
