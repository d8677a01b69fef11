"""`vla-steer browse`: the neuron index (search, pages, directions) and the page itself, end to end
in a real headless Chromium (Debian `chromium`, driven by Playwright against the system browser).

The browser tests skip only when no Chromium executable exists (`make test` / tools/setup.sh
installs it); Playwright itself is a pinned dependency, so its absence is a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core_synthetic import synthetic_adapter
from vla_steer_tools.browser.export import bucket_of, export_browser
from vla_steer_tools.browser.index import NeuronIndex, Telemetry, parse_selection
from vla_steer_tools.browser.server import BrowserServer
from vla_steer_tools.errors import ConfigError, DirectionError
from vla_steer_tools.interp.projection import Projection, ProjectionOptions, project
from vla_steer_tools.steering.directions import load_direction
from vla_steer_tools.types import NeuronRef

CHROMIUM = next((p for p in (os.environ.get("VLA_STEER_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).is_file()), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium executable (apt-get install -y chromium; tools/setup.sh does this)")
#: Flags for a closed network: no background requests (they would be refused, many at a time).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = os.environ.get("VLA_STEER_SCREENSHOTS")  # set to docs/ to refresh the README's screenshots


@pytest.fixture(scope="module")
def synth_index(tmp_path_factory):
    out = tmp_path_factory.mktemp("browse") / "synthetic"
    return NeuronIndex(Projection.load(project(synthetic_adapter(), out, ProjectionOptions(top_k=5))))


@pytest.fixture(scope="module")
def smol_index(smollm2_projection):
    return NeuronIndex(smollm2_projection)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_search_pages_and_dedupes(synth_index):
    r = synth_index.search("FAST", "top")  # case and space markers do not matter
    assert set(r["tokens"]) == {"Ġfast", "ĠFast"}
    refs = [(x["layer"], x["index"]) for x in r["results"]]
    assert (1, 5) in refs and len(refs) == len(set(refs))  # one row per neuron
    assert [x["score"] for x in r["results"]] == sorted((x["score"] for x in r["results"]), reverse=True)
    bottom = synth_index.search("fast", "bottom")
    assert bottom["results"][0]["layer"] == 3 and bottom["results"][0]["index"] == 7 and bottom["results"][0]["sign"] == -1
    p0, p1 = synth_index.search("fast", "top", 0, 1), synth_index.search("fast", "top", 1, 1)
    assert p0["total"] == r["total"] and p0["results"][0] != p1["results"][0] and p0["pages"] == r["total"]
    assert synth_index.search("nosuchword", "top")["total"] == 0
    with pytest.raises(ConfigError, match="unknown side"):
        synth_index.search("fast", "middle")


def test_neuron_page_direction_and_telemetry(synth_index, tmp_path):
    page = synth_index.neuron("backbone", 3, 7)
    assert page["sign"] == -1 and page["bottom"][0]["text"] in ("Ġfast", "ĠFast") and "speed" in page["categories"]
    assert page["flat_index"] == 3 * 24 + 7
    with pytest.raises(ConfigError, match="out of range"):
        synth_index.neuron("backbone", 3, 24)
    text = synth_index.direction_yaml("picked", parse_selection("backbone:3:7:-1,backbone:1:5"), alpha=6)
    (tmp_path / "picked.yaml").write_text(text)
    d = load_direction(tmp_path / "picked.yaml")
    assert d.neurons == (NeuronRef("backbone", 3, 7), NeuronRef("backbone", 1, 5)) and d.signs == (-1.0, 1.0) and d.alpha == 6
    with pytest.raises(DirectionError):
        synth_index.direction_yaml("../evil", parse_selection("backbone:1:5"))
    with pytest.raises(ConfigError, match="bad neuron"):
        parse_selection("backbone:1")
    tel = Telemetry([0.0, 0.5, 1.0], ["fast"], [[0.1], [0.7], [0.2]], {"fast": frozenset({NeuronRef("backbone", 1, 5)})})
    idx = NeuronIndex(synth_index.proj, telemetry=tel)
    assert idx.neuron("backbone", 1, 5)["telemetry"] == [{"concept": "fast", "t_s": [0.0, 0.5, 1.0], "mean": [0.1, 0.7, 0.2]}]
    assert idx.neuron("backbone", 1, 6)["telemetry"] == []


@pytest.mark.slow
def test_smollm2_index(smol_index):
    r = smol_index.search("fast", "bottom", 0, 5)
    assert (r["results"][0]["layer"], r["results"][0]["index"]) == (25, 1187)
    assert smol_index.neuron("backbone", 25, 1187)["sign"] == -1
    cluster = smol_index.cluster("fast", size=10)
    assert {"layer": 25, "index": 1187, "sign": -1} in [{k: x[k] for k in ("layer", "index", "sign")} for x in cluster["results"]]


def _selection_download(page, tmp_path) -> Path:
    with page.expect_download() as dl:
        page.click("#download-direction")
    path = tmp_path / "download.yaml"
    dl.value.save_as(path)
    return path


@pytest.mark.slow
@needs_chromium
def test_browser_end_to_end_on_smollm2(smol_index, browser, tmp_path):
    errors: list[str] = []
    with BrowserServer(smol_index, port=0) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.on("request", lambda r: r.url.startswith(server.url) or r.url.startswith("data:") or errors.append(f"off-site request: {r.url}"))
        page.goto(server.url)
        page.wait_for_selector("#heatmap")
        # search a token through the form: the expected neuron is the first result
        page.fill("#search-input", "fast")
        page.select_option("#search-side", "bottom")
        page.click("#search-button")
        page.wait_for_selector("#results tr.result")
        assert page.locator("#results tr.result").first.get_attribute("data-ref") == "backbone:25:1187"
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / "browser_search.png"))
        # the neuron page shows its tokens with scores
        page.locator("#results tr.result").first.locator("a.neuron-link").click()
        page.wait_for_selector("#neuron-title")
        assert page.inner_text("#neuron-title") == "backbone layer 25, neuron 1187"
        bottom = page.inner_text("#bottom-tokens")
        assert "fast" in bottom and "faster" in bottom and "-4." in bottom
        assert "sign -1" in page.inner_text("#neuron-sign")
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / "browser_neuron.png"), full_page=True)
        page.click("button.select-neuron")
        # a cluster: select it all, then download the selection as a direction file
        page.goto(server.url + "#/cluster/up")
        page.wait_for_selector("#select-cluster")
        page.click("#select-cluster")
        page.wait_for_selector("#download-direction")
        page.fill("#dir-name", "browser_up")
        path = _selection_download(page, tmp_path)
        d = load_direction(path)
        assert d.name == "browser_up" and NeuronRef("backbone", 25, 1187) in d.neurons
        assert d.signs[d.neurons.index(NeuronRef("backbone", 25, 1187))] == -1.0
        assert set(d.neurons[1:]) == {NeuronRef(x["component"], x["layer"], x["index"]) for x in smol_index.cluster("up")["results"]}
        assert d.model_shapes == (("backbone", 30, 1536),)
        # the heat map: a click opens that layer's neurons
        page.goto(server.url + "#/heatmap")
        page.wait_for_selector("#heatmap td.cell")
        page.locator("#heatmap tr:has(th:text-is('speed')) td.cell").nth(15).click()  # layer 25 (10 + 15)
        page.wait_for_selector("#results")
        assert "speed neurons in backbone layer 25" in page.inner_text("h1")
        assert "backbone:25:1187" in [r.get_attribute("data-ref") for r in page.locator("#results tr.result").all()]
        page.close()
    assert errors == []


@needs_chromium
def test_static_export_works_from_disk(synth_index, browser, tmp_path):
    index_html = export_browser(synth_index, tmp_path / "export")
    assert bucket_of("fast") == sum(map(ord, "fast")) % 256
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(index_html.as_uri() + "#/search/bottom/0/fast")
    page.wait_for_selector("#results tr.result")
    assert page.locator("#results tr.result").first.get_attribute("data-ref") == "backbone:3:7"
    page.goto(index_html.as_uri() + "#/neuron/backbone/1/5")
    page.wait_for_selector("#neuron-title")
    assert "fast" in page.inner_text("#top-tokens")
    page.click("button.select-neuron")
    page.goto(index_html.as_uri() + "#/search/bottom/0/fast")
    page.wait_for_selector("#results tr.result")
    page.locator("#results tr.result").first.locator("button.select-neuron").click()
    page.goto(index_html.as_uri() + "#/selection")
    page.wait_for_selector("#download-direction")
    d = load_direction(_selection_download(page, tmp_path))
    assert d.neurons == (NeuronRef("backbone", 1, 5), NeuronRef("backbone", 3, 7)) and d.signs == (1.0, -1.0)
    assert d.model_shapes == (("backbone", 4, 24),)
    page.close()
    assert errors == []
