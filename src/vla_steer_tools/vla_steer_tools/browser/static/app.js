// vla-steer neuron browser. No framework, no network beyond the page's own origin (server mode:
// the JSON API of browser/server.py; static export: data/*.js files written by browser/export.py,
// which also work when the page is opened from disk).
"use strict";

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const visible = (s) => String(s).replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\r/g, "\\r");
const tok = (s) => `<span class="tok">${esc(visible(s))}</span>`;
const refKey = (r) => `${r.component}:${r.layer}:${r.index}`;
const neuronLink = (r) => `<a class="neuron-link" href="#/neuron/${r.component}/${r.layer}/${r.index}">${r.component[0].toUpperCase()}/L${r.layer}/N${r.index}</a>`;

// ------------------------------------------------------------------ data sources
window.VLA_DATA = window.VLA_DATA || {};
const STATIC = !!document.querySelector('meta[name="vla-static"]');

function loadData(key) {  // static export: data/<key>.js sets VLA_DATA[key]
  if (key in VLA_DATA) return Promise.resolve(VLA_DATA[key]);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = `data/${key}.js`;
    s.onload = () => (key in VLA_DATA ? resolve(VLA_DATA[key]) : reject(new Error(`no data for ${key}`)));
    s.onerror = () => reject(new Error(`not in this export: ${key}`));
    document.head.appendChild(s);
  });
}

async function apiGet(what, params) {
  const r = await fetch(`/api/${what}?` + new URLSearchParams(params));
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function normalize(text) {  // = concepts.normalize_token: space markers and case removed
  return text.trim().replace(/^[\u2581\u0120 ]+/, "").trim().toLowerCase();
}
function bucketOf(norm) {  // = export.bucket_of: sum of UTF-16 code units
  let s = 0; for (let i = 0; i < norm.length; i++) s += norm.charCodeAt(i);
  return s % VLA_DATA.meta.n_buckets;
}

const api = STATIC ? {
  meta: () => loadData("meta"),
  heatmap: () => loadData("heatmap"),
  async search(q, side, page, size = 50) {
    const norm = normalize(q);
    if (!norm) throw new Error("empty search");
    const bucket = await loadData(`search_${bucketOf(norm)}`);
    const entry = bucket[norm] || { tokens: [], top: [], bottom: [] };
    const all = entry[side] || [];
    const vocab = await loadData("vocab");
    const results = [];
    for (const [ci, layer, index, rank, score, matches] of all.slice(page * size, (page + 1) * size)) {
      const L = await loadData(`layer_${ci}_${layer}`);
      const ids = L[`${side}_ids`][index];
      results.push({ component: VLA_DATA.meta.components[ci], layer, index, rank, score, matches, token: vocab[ids[rank]],
        sign: side === "top" ? 1 : -1, tokens: ids.slice(0, 6).map((i) => vocab[i]) });
    }
    return { query: q, side, tokens: entry.tokens, total: all.length, page, size, pages: Math.max(1, Math.ceil(all.length / size)), results };
  },
  async neuron(component, layer, index) {
    const ci = VLA_DATA.meta.components.indexOf(component);
    const L = await loadData(`layer_${ci}_${layer}`);
    const vocab = await loadData("vocab");
    if (!(index >= 0 && index < L.top_ids.length)) throw new Error(`neuron ${index} out of range (${L.top_ids.length} in layer ${layer})`);
    const side = (s) => L[`${s}_ids`][index].map((id, j) => ({ id, text: vocab[id], score: L[`${s}_scores`][index][j] }));
    const cats = Object.keys(L.flags).filter((c) => L.flags[c].includes(index) && c !== "meaningful");
    return { component, layer, index, flat_index: layer * L.width + index, width: L.width, n_layers: L.n_layers,
      top: side("top"), bottom: side("bottom"), sign: L.sign[index], sign_reason: L.sign[index] < 0 ? "its pattern is in the bottom tokens" : "its top tokens carry its pattern (or neither side does)",
      categories: cats, meaningful: L.flags.meaningful.includes(index), telemetry: (L.telemetry || {})[index] || [] };
  },
  async layer(component, layer, criterion, page, size = 50) {
    const ci = VLA_DATA.meta.components.indexOf(component);
    const L = await loadData(`layer_${ci}_${layer}`);
    const vocab = await loadData("vocab");
    const hits = L.flags[criterion] || [];
    const results = hits.slice(page * size, (page + 1) * size).map((index) => ({ component, layer, index, sign: L.sign[index], tokens: L.top_ids[index].slice(0, 6).map((i) => vocab[i]) }));
    return { component, layer, criterion, total: hits.length, page, size, pages: Math.max(1, Math.ceil(hits.length / size)), results };
  },
  cluster: (concept) => loadData(`cluster_${concept}`),
} : {
  meta: () => apiGet("meta", {}),
  heatmap: () => apiGet("heatmap", {}),
  search: (q, side, page, size = 50) => apiGet("search", { q, side, page, size }),
  neuron: (component, layer, index) => apiGet("neuron", { component, layer, index }),
  layer: (component, layer, criterion, page) => apiGet("layer", { component, layer, criterion, page }),
  cluster: (concept) => apiGet("cluster", { concept, size: 20 }),
};

// ------------------------------------------------------------------ selection (kept across pages)
const selection = new Map();  // refKey -> {component, layer, index, sign}
function select(r, sign) {
  selection.set(refKey(r), { component: r.component, layer: r.layer, index: r.index, sign: sign ?? r.sign ?? 1 });
  $("#selection-link").textContent = `Selection (${selection.size})`;
}
function selectButton(r) {
  return `<button class="small select-neuron" data-ref="${refKey(r)}" data-sign="${r.sign ?? 1}">+ select</button>`;
}
document.addEventListener("click", (ev) => {
  const b = ev.target.closest(".select-neuron");
  if (!b) return;
  const [component, layer, index] = b.dataset.ref.split(":");
  select({ component, layer: +layer, index: +index }, +b.dataset.sign);
  b.textContent = "selected";
});

function directionYaml(name, alpha, mode) {  // static export: the same layout as save_direction
  const m = VLA_DATA.meta, items = [...selection.values()];
  const layers = items.map((n) => n.layer).sort((a, b) => a - b);
  const shapes = Object.entries(m.model_shapes).map(([c, [n, w]]) => `  ${c}: [${n}, ${w}]`).join("\n");
  return `name: ${name}\nalpha: ${Number(alpha).toFixed(1)}\nmode: ${mode}\nmodel_id: ${JSON.stringify(m.model_id)}\n` +
    `description: ${JSON.stringify(`${items.length} neurons in layers ${layers[0]}-${layers[layers.length - 1]}`)}\n` +
    `provenance: ${JSON.stringify(`picked in the neuron browser (static export); projection ${m.projection_id}`)}\n` +
    (shapes ? `model_shapes:\n${shapes}\n` : "") + "neurons:\n" +
    items.map((n) => `  - {component: ${n.component}, layer: ${n.layer}, index: ${n.index}, sign: ${n.sign}}\n`).join("");
}

// ------------------------------------------------------------------ views
const view = () => $("#view");
function pager(d, hrefOf) {
  return `<div class="pager">${d.page > 0 ? `<a id="prev-page" href="${hrefOf(d.page - 1)}">&larr; previous</a>` : ""}
    <span>page ${d.page + 1} of ${d.pages} (${d.total} neurons)</span>
    ${d.page + 1 < d.pages ? `<a id="next-page" href="${hrefOf(d.page + 1)}">next &rarr;</a>` : ""}</div>`;
}
function neuronRows(results, extra) {
  return results.map((r) => `<tr class="result" data-ref="${refKey(r)}"><td>${neuronLink(r)}</td>${extra(r)}
    <td>${r.tokens.map(tok).join(" ")}</td><td>${selectButton(r)}</td></tr>`).join("");
}

async function showSearch(q, side, page) {
  $("#search-input").value = q; $("#search-side").value = side;
  const m = q.match(/^\s*L?(\d+)\s*[/: ]\s*N?(\d+)\s*$/i);
  if (m) { location.hash = `#/neuron/${META.components[0]}/${m[1]}/${m[2]}`; return; }
  const d = await api.search(q, side, page);
  const href = (p) => `#/search/${side}/${p}/${encodeURIComponent(q)}`;
  view().innerHTML = `<h1>Neurons whose ${side} tokens include ${tok(q)}</h1>
    <p>matching tokens: ${d.tokens.length ? d.tokens.map(tok).join(" ") : "<em>none in this vocabulary</em>"}</p>
    ${pager(d, href)}
    <table id="results"><thead><tr><th>neuron</th><th>best match</th><th>rank</th><th>score</th><th>matches</th><th>${side} tokens</th><th></th></tr></thead>
    <tbody>${neuronRows(d.results, (r) => `<td>${tok(r.token)}</td><td class="num">${r.rank + 1}</td><td class="num ${r.score < 0 ? "neg" : "pos"}">${r.score.toFixed(3)}</td><td class="num">${r.matches}</td>`)}</tbody></table>`;
}

function sparkline(series) {
  const W = 420, H = 80, t = series.t_s, y = series.mean;
  if (!t.length) return "";
  const t0 = t[0], t1 = t[t.length - 1] || 1, lo = Math.min(...y), hi = Math.max(...y);
  const pts = t.map((ti, i) => `${((ti - t0) / ((t1 - t0) || 1) * (W - 10) + 5).toFixed(1)},${(H - 5 - (y[i] - lo) / ((hi - lo) || 1) * (H - 10)).toFixed(1)}`).join(" ");
  return `<div><b>${esc(series.concept)}</b> mean activation ${lo.toFixed(3)}..${hi.toFixed(3)} over ${(t1 - t0).toFixed(1)} s
    <br><svg class="spark" width="${W}" height="${H}"><polyline fill="none" stroke="#457b9d" stroke-width="1.5" points="${pts}"/></svg></div>`;
}

async function showNeuron(component, layer, index) {
  const n = await api.neuron(component, +layer, +index);
  const table = (id, rows) => `<table id="${id}"><thead><tr><th>#</th><th>token</th><th>score</th></tr></thead><tbody>
    ${rows.map((t, i) => `<tr><td class="num">${i + 1}</td><td>${tok(t.text)}</td><td class="num ${t.score < 0 ? "neg" : "pos"}">${t.score.toFixed(3)}</td></tr>`).join("")}</tbody></table>`;
  view().innerHTML = `<h1 id="neuron-title">${esc(n.component)} layer ${n.layer}, neuron ${n.index}</h1>
    <p class="facts"><span>flat index <b>${n.flat_index}</b> (layer &times; ${n.width} + neuron)</span>
    <span>layer ${n.layer} of ${n.n_layers}</span>
    <span id="neuron-sign">sign <b>${n.sign > 0 ? "+1" : "-1"}</b> (${esc(n.sign_reason)})</span>
    <span>${n.meaningful ? "meaningful" : "no shared pattern"}</span>
    ${n.categories.map((c) => `<span class="chip">${esc(c)}</span>`).join("")}</p>
    <p>${selectButton(n)}</p>
    <div class="cols"><div><h2>Top tokens (promoted by a positive activation)</h2>${table("top-tokens", n.top)}</div>
    <div><h2>Bottom tokens (promoted by a negative activation)</h2>${table("bottom-tokens", n.bottom)}</div></div>
    <h2>Concept activations in a run</h2>
    <div id="telemetry">${n.telemetry.length ? n.telemetry.map(sparkline).join("") : "<em>no telemetry loaded for this neuron (browse --telemetry BAG --directions DIR)</em>"}</div>`;
}

function heatColor(v) {  // 0 -> pale, 1 -> dark blue
  const a = Math.min(1, Math.max(0, v));
  return `rgb(${Math.round(240 - 211 * a)},${Math.round(244 - 191 * a)},${Math.round(248 - 161 * a)})`;
}
async function showHeatmap() {
  const h = await api.heatmap();
  const head = h.columns.map(([c, l]) => `<th>${l}</th>`).join("");
  const rows = h.rows.map((name, i) => `<tr><th>${esc(name)}</th>${h.values[i].map((v, j) => {
    const [c, l] = h.columns[j], top = Math.max(...h.values[i]) || 1;
    return `<td class="cell" title="${esc(name)} L${l}: ${(v * 100).toFixed(2)}%" style="background:${heatColor(v / top)}"
      onclick="location.hash='#/layer/${c}/${l}/${name}/0'"></td>`;
  }).join("")}</tr>`).join("");
  view().innerHTML = `<h1>Share of neurons per layer</h1><table class="heat" id="heatmap"><thead><tr><th></th>${head}</tr></thead><tbody>${rows}</tbody></table>
    <p class="legend">Each row is coloured relative to its own largest share (row maxima: ${h.rows.map((n, i) => `${esc(n)} ${(Math.max(...h.values[i]) * 100).toFixed(1)}%`).join(", ")}); hover for the number, click for the neurons.
    Criteria: ${Object.entries(h.criteria).map(([k, v]) => `<b>${esc(k)}</b>: ${esc(v)}`).join("; ")}</p>`;
}

async function showLayer(component, layer, criterion, page) {
  const d = await api.layer(component, +layer, criterion, +page);
  view().innerHTML = `<h1>${esc(criterion)} neurons in ${esc(component)} layer ${layer}</h1>
    ${pager(d, (p) => `#/layer/${component}/${layer}/${criterion}/${p}`)}
    <table id="results"><thead><tr><th>neuron</th><th>sign</th><th>top tokens</th><th></th></tr></thead>
    <tbody>${neuronRows(d.results, (r) => `<td>${r.sign > 0 ? "+1" : "-1"}</td>`)}</tbody></table>`;
}

async function showClusters() {
  view().innerHTML = `<h1>Concept clusters</h1><p>Keyword clusters (concept word forms among a neuron's top or bottom tokens; see <code>vla-steer concepts find</code>):</p>
    <ul>${META.clusters.map((c) => `<li><a href="#/cluster/${c}">${esc(c)}</a></li>`).join("")}</ul>`;
}
async function showCluster(concept) {
  const d = await api.cluster(concept);
  if (d.error) throw new Error(d.error);
  view().innerHTML = `<h1>Cluster: ${esc(concept)} (${esc(d.method)}, ${d.results.length} neurons)</h1>
    <p><button id="select-cluster">select all ${d.results.length}</button></p>
    <table id="results"><thead><tr><th>neuron</th><th>sign</th><th>score</th><th>tokens of the deciding side</th><th></th></tr></thead>
    <tbody>${neuronRows(d.results, (r) => `<td>${r.sign > 0 ? "+1" : "-1"}</td><td class="num">${r.score.toFixed(2)}</td>`)}</tbody></table>`;
  $("#select-cluster").onclick = () => { d.results.forEach((r) => select(r, r.sign)); showSelection(concept); };
}

function showSelection(name) {
  const items = [...selection.values()];
  view().innerHTML = `<h1>Selection: ${items.length} neurons</h1>
    <table id="selection"><thead><tr><th>neuron</th><th>sign</th><th></th></tr></thead><tbody>
    ${items.map((n) => `<tr data-ref="${refKey(n)}"><td>${neuronLink(n)}</td><td><button class="small secondary flip">${n.sign > 0 ? "+1" : "-1"}</button></td>
      <td><button class="small secondary drop">remove</button></td></tr>`).join("")}</tbody></table>
    <h2>Download as a direction file</h2>
    <p>name <input id="dir-name" value="${esc(name || "browser_selection")}"> alpha <input id="dir-alpha" type="number" value="10" step="0.5" style="width:6em">
    mode <select id="dir-mode">${META.modes.map((m) => `<option>${m}</option>`).join("")}</select>
    <button id="download-direction" ${items.length ? "" : "disabled"}>Download YAML</button></p>
    <p class="legend">Loads with <code>load_direction</code>; steer with <code>vla-steer steer-text --directions FILE</code> or the policy node.</p>`;
  view().querySelectorAll("button.flip").forEach((b) => b.onclick = () => {
    const n = selection.get(b.closest("tr").dataset.ref); n.sign = -n.sign; b.textContent = n.sign > 0 ? "+1" : "-1";
  });
  view().querySelectorAll("button.drop").forEach((b) => b.onclick = () => {
    selection.delete(b.closest("tr").dataset.ref); $("#selection-link").textContent = `Selection (${selection.size})`; showSelection($("#dir-name").value);
  });
  $("#download-direction").onclick = () => {
    const nm = $("#dir-name").value.trim(), alpha = $("#dir-alpha").value, mode = $("#dir-mode").value;
    const a = document.createElement("a");
    if (STATIC) {
      a.href = URL.createObjectURL(new Blob([directionYaml(nm, alpha, mode)], { type: "application/x-yaml" }));
    } else {
      const neurons = [...selection.values()].map((n) => `${n.component}:${n.layer}:${n.index}:${n.sign}`).join(",");
      a.href = "/api/direction?" + new URLSearchParams({ name: nm, alpha, mode, neurons });
    }
    a.download = `${nm}.yaml`; document.body.appendChild(a); a.click(); a.remove();
  };
}

// ------------------------------------------------------------------ routing
let META = null;
async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "search") await showSearch(parts.slice(3).join("/"), parts[1], +parts[2]);
    else if (parts[0] === "neuron") await showNeuron(parts[1], parts[2], parts[3]);
    else if (parts[0] === "heatmap") await showHeatmap();
    else if (parts[0] === "layer") await showLayer(parts[1], parts[2], parts[3], parts[4] || 0);
    else if (parts[0] === "clusters") await showClusters();
    else if (parts[0] === "cluster") await showCluster(parts[1]);
    else if (parts[0] === "selection") showSelection();
    else await showHeatmap();
  } catch (e) {
    view().innerHTML = `<p class="error" id="error">${esc(e.message)}</p>`;
  }
  document.body.dataset.ready = location.hash || "#/";
}

async function start() {
  META = await api.meta();
  $("#model").textContent = `${META.model_id} · ${META.n_neurons.toLocaleString()} neurons · top-${META.top_k}`;
  $("#random-banner").hidden = !META.random_weights;
  $("#footer").textContent = `projection ${META.projection_id} · ${STATIC ? "static export" : "served locally"}`;
  $("#search-form").onsubmit = (ev) => {
    ev.preventDefault();
    location.hash = `#/search/${$("#search-side").value}/0/${encodeURIComponent($("#search-input").value)}`;
  };
  window.addEventListener("hashchange", route);
  await route();
}
start();
