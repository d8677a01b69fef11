"""Static export of the neuron browser: the same page plus data files, no server needed.

Data files are small JavaScript files (`VLA_DATA["key"] = {...};`) rather than JSON because a page
opened from disk (file://) may load scripts but not fetch() JSON. Layout under OUT/:

    index.html, app.js, app.css   the bundled page (index.html marked as a static export)
    data/meta.js, heatmap.js, vocab.js
    data/layer_<c>_<layer>.js     per layer: top/bottom ids and scores, criterion hits, signs
    data/search_<b>.js            inverted index bucket b: normalised token -> postings per side
    data/cluster_<concept>.js     the start page's keyword clusters

Search buckets: the sum of the normalised token's UTF-16 code units modulo `N_BUCKETS` (app.js
computes the same), so a query loads one file. Postings are sorted strongest first, like the server.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..errors import VlaSteerError
from ..interp.concepts import normalize_token
from ..interp.layer_report import ACTION
from .index import DEFAULT_CLUSTERS, SIDES, NeuronIndex
from .server import STATIC_DIR, STATIC_FILES

log = logging.getLogger(__name__)

N_BUCKETS = 256
STATIC_MARK = '<meta name="vla-static" content="1">'


def bucket_of(norm: str) -> int:
    """= app.js bucketOf: sum of UTF-16 code units of the normalised token, modulo N_BUCKETS."""
    units = norm.encode("utf-16-le")
    return sum(int.from_bytes(units[i: i + 2], "little") for i in range(0, len(units), 2)) % N_BUCKETS


def _write(out: Path, key: str, obj) -> None:
    text = f"VLA_DATA[{json.dumps(key)}] = {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))};\n"
    atomic_write_text(out / "data" / f"{key}.js", text)


def _rounded(t: torch.Tensor) -> list:
    return (t * 1e4).round().div(1e4).tolist()


def export_browser(index: NeuronIndex, out_dir: str | Path) -> Path:
    """Write the static browser for `index` into out_dir (created; existing data/ replaced)."""
    out = Path(out_dir)
    if (out / "data").exists():
        shutil.rmtree(out / "data")
    (out / "data").mkdir(parents=True)
    for name in STATIC_FILES:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        if name == "index.html":
            text = text.replace("<head>", "<head>\n" + STATIC_MARK, 1)
        atomic_write_text(out / name, text)
    proj = index.proj
    comps = proj.components
    _write(out, "meta", {**index.meta(), "mode": "static", "n_buckets": N_BUCKETS})
    _write(out, "heatmap", index.heatmap())
    _write(out, "vocab", proj.vocab)
    criteria = [ACTION, *index.report.category_names, "meaningful"]
    for comp, layer in tqdm(index.pairs, desc="exporting layers", unit="layer"):
        start = index._row_of[(comp, layer)]
        n = proj.get(comp, layer, "top_ids").shape[0]
        flags = index.report.flags[(comp, layer)]
        data = {
            "width": proj.width(comp, layer), "n_layers": int(proj.manifest["components"][comp]["n_layers"]),
            **{f"{s}_ids": proj.get(comp, layer, f"{s}_ids").tolist() for s in SIDES},
            **{f"{s}_scores": _rounded(proj.get(comp, layer, f"{s}_scores")) for s in SIDES},
            "flags": {c: torch.nonzero(flags[c]).flatten().tolist() for c in criteria},
            "sign": [index._suggested_sign(start + i) for i in range(n)],
        }
        if index.telemetry:
            from ..types import NeuronRef

            tel = {i: index.telemetry.for_neuron(NeuronRef(comp, layer, i)) for i in range(n)}
            data["telemetry"] = {i: v for i, v in tel.items() if v}
        _write(out, f"layer_{comps.index(comp)}_{layer}", data)
    buckets: list[dict] = [{} for _ in range(N_BUCKETS)]
    for norm, ids in tqdm(index._norm_to_ids.items(), desc="exporting search index", unit="word"):
        if not norm:
            continue
        entry = {"tokens": [proj.vocab[i] for i in ids]}
        for side in SIDES:
            entry[side] = [[comps.index(index._comp[r]), int(index._layer[r]), int(index._neuron[r]), rank, round(score, 4), m]
                           for r, rank, score, m in index.postings(ids, side)]
        if entry["top"] or entry["bottom"]:
            buckets[bucket_of(normalize_token(norm))][norm] = entry
    for b, content in enumerate(buckets):
        _write(out, f"search_{b}", content)
    for concept in DEFAULT_CLUSTERS:
        try:
            _write(out, f"cluster_{concept}", index.cluster(concept))
        except VlaSteerError as exc:  # e.g. no token of this vocabulary is a form of the concept
            _write(out, f"cluster_{concept}", {"concept": concept, "error": str(exc), "results": []})
    log.info("static browser written to %s", out)
    return out / "index.html"
