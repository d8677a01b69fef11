"""`vla-steer browse PROJ_DIR [--port 8765 | --export DIR]`: a local neuron browser."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "browse", help="neuron browser in the web browser: token search, neuron pages, heat map, clusters, direction download",
        description="Index a projection and serve a local web page (127.0.0.1, every asset bundled, no internet): "
        "search a token to see the neurons promoting it, open a neuron (top/bottom tokens with scores, layer, sign, "
        "a run's concept activations), a per-layer heat map, concept clusters, and download the selected neurons as "
        "a direction YAML. --export writes the same page as static files instead (open DIR/index.html from disk).",
    )
    p.add_argument("projection", type=Path, help="directory written by `vla-steer project`")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 to serve on (default 8765; 0: any free)")
    g.add_argument("--export", type=Path, default=None, help="write a static browser into this directory instead")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default localhost only)")
    p.add_argument("--categories", type=Path, default=None, help="token category word lists (default config/token_categories.yaml)")
    p.add_argument("--telemetry", type=Path, default=None, help="a recorded run (bag) with /vla/concept_activations")
    p.add_argument("--directions", type=Path, action="append", default=[],
                   help="direction folder(s) naming the telemetry's concepts' neurons (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..browser.index import NeuronIndex, Telemetry
    from ..errors import ConfigError
    from ..interp.projection import Projection
    from ..interp.token_categories import load_categories

    proj = Projection.load(args.projection)
    if args.telemetry and not args.directions:
        raise ConfigError("--telemetry needs --directions DIR (which neurons each recorded concept steered)")
    telemetry = Telemetry.from_bag(args.telemetry, args.directions) if args.telemetry else None
    started = time.perf_counter()
    index = NeuronIndex(proj, load_categories(args.categories), telemetry)
    print(f"indexed {index.n_neurons} neurons of {proj.model_id} in {time.perf_counter() - started:.1f} s")
    if args.export:
        from ..browser.export import export_browser

        page = export_browser(index, args.export)
        print(f"static browser written: open {page}")
        return 0
    from ..browser.server import BrowserServer

    server = BrowserServer(index, args.host, args.port).start()
    print(f"neuron browser at {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.close()
