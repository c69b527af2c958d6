// The iscc-vdb page: plain JavaScript, no libraries, no network beyond this
// server (every request goes to a relative URL, and the server's
// Content-Security-Policy allows no other origin). It speaks iscc-search's
// API (/indexes/…), which both `serve --path` (one index, "default") and
// `serve --root` answer, plus this server's /explain/{iscc}.
//
// The address keeps the search: /?index=NAME&q=QUERY&count=N&exact=1 runs
// it on load, &entry=ISCC-ID opens an entry (links can be shared; the
// browser test uses them).
"use strict";

const KEY = "iscc-vdb-api-key";
const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null) continue;
    node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return node;
}

/** A call to this server; throws an Error with the server's message. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    throw new Error(`the server did not answer (${e.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message =
      (data && (data.detail || (data.error && data.error.message))) || response.statusText;
    throw new Error(`${response.status}: ${typeof message === "string" ? message : JSON.stringify(message)}`);
  }
  return data;
}

function showError(box, error) {
  box.textContent = error ? error.message || String(error) : "";
  box.hidden = !error;
}

function fixed(x, digits) {
  return typeof x === "number" ? x.toFixed(digits) : "–";
}

/** A bar for a value 0–1 with its number beside it. */
function meter(value, label, small) {
  const pct = Math.max(0, Math.min(1, value || 0)) * 100;
  const fill = el("span", { class: "fill" });
  // Set through the CSSOM: the page's Content-Security-Policy allows no
  // inline style attributes.
  fill.style.width = `${pct.toFixed(1)}%`;
  return el(
    "span",
    { class: small ? "meter small" : "meter", role: "img", "aria-label": `${label} ${fixed(value, 3)}` },
    el("span", { class: "track" }, fill),
    el("span", { class: "value" }, fixed(value, 3)),
  );
}

function bytes(n) {
  if (typeof n !== "number") return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ---------------------------------------------------------------- indexes

let indexes = [];

function currentIndex() {
  return $("index").value;
}

function renderFigures() {
  const box = $("index-figures");
  box.replaceChildren();
  const ix = indexes.find((i) => i.name === currentIndex());
  if (!ix) return;
  const dl = el(
    "dl",
    {},
    el("dt", {}, "Entries"), el("dd", { id: "fig-assets" }, String(ix.assets)),
    el("dt", {}, "On disk"), el("dd", {}, bytes(ix.bytes)),
    el("dt", {}, "Realm"), el("dd", {}, ix.realm === null || ix.realm === undefined ? "not fixed yet" : String(ix.realm)),
    el("dt", {}, "Read-only"), el("dd", {}, ix.read_only ? "yes" : "no"),
  );
  box.append(dl);
  const units = Object.entries(ix.unit_types || {});
  if (units.length) {
    box.append(
      el("table", { id: "fig-units" },
        el("thead", {}, el("tr", {}, el("th", {}, "Unit type"), el("th", { class: "num" }, "Rows"), el("th", { class: "num" }, "Bytes"))),
        el("tbody", {}, units.map(([t, u]) =>
          el("tr", {}, el("td", { class: "mono" }, t), el("td", { class: "num" }, String(u.rows)), el("td", { class: "num" }, bytes(u.bytes))))),
      ),
    );
  }
  const sims = Object.entries(ix.simprint_types || {});
  if (sims.length) {
    box.append(
      el("table", { id: "fig-simprints" },
        el("thead", {}, el("tr", {}, el("th", {}, "Simprint type"), el("th", { class: "num" }, "Bits"), el("th", { class: "num" }, "Chunks"))),
        el("tbody", {}, sims.map(([t, s]) =>
          el("tr", {}, el("td", { class: "mono" }, t), el("td", { class: "num" }, String(s.bits)), el("td", { class: "num" }, String(s.chunks))))),
      ),
    );
  }
}

async function loadIndexes(wanted) {
  try {
    indexes = await api("GET", "/indexes");
    showError($("error"), null);
  } catch (e) {
    indexes = [];
    showError($("error"), e);
  }
  const select = $("index");
  const keep = wanted || select.value;
  select.replaceChildren(
    ...indexes.map((i) => el("option", { value: i.name }, `${i.name} (${i.assets} entries)`)),
  );
  if (indexes.some((i) => i.name === keep)) select.value = keep;
  renderFigures();
}

// ----------------------------------------------------------------- search

const ID_HEADERS = ["MAI", "MEI"];

function prefixed(token) {
  return /^iscc:/i.test(token) ? "ISCC:" + token.slice(5).toUpperCase() : "ISCC:" + token.toUpperCase();
}

/** Simprints by type from the ISCC tools' `features` list. */
function simprintsOfFeatures(features) {
  const out = {};
  for (const f of features || []) {
    if (!f || !Array.isArray(f.simprints) || !f.simprints.length) continue;
    const name = `${f.maintype}_${f.subtype}_V${f.version || 0}`.toUpperCase();
    out[name] = f.simprints.map((s) => (typeof s === "string" ? s : s.simprint));
  }
  return Object.keys(out).length ? out : undefined;
}

/** The query body of what was typed or pasted. */
function parseQuery(text) {
  const t = text.trim();
  if (!t) throw new Error("type an ISCC-CODE, an ISCC-ID, ISCC-UNITs or paste an .iscc.json");
  if (t.startsWith("{")) {
    let doc;
    try {
      doc = JSON.parse(t);
    } catch (e) {
      throw new Error(`the pasted JSON does not parse: ${e.message}`);
    }
    const code = doc.iscc_code || doc.iscc;
    const units = Array.isArray(doc.units) ? doc.units.map((u) => (typeof u === "string" ? u : u.iscc || u.unit)) : undefined;
    const simprints = doc.simprints || simprintsOfFeatures(doc.features);
    if (!code && !units && !simprints) {
      if (doc.iscc_id) return { iscc_id: doc.iscc_id };
      throw new Error("the pasted JSON has no iscc, iscc_code, units or features");
    }
    const query = {};
    if (code) query.iscc_code = code;
    if (units && units.length) query.units = units;
    if (simprints) query.simprints = simprints;
    return query;
  }
  const tokens = t.split(/[\s,;]+/).filter(Boolean).map(prefixed);
  if (tokens.length > 1) return { units: tokens };
  const body = tokens[0].slice(5);
  if (body.length === 16 && ID_HEADERS.includes(body.slice(0, 3))) return { iscc_id: tokens[0] };
  return { iscc_code: tokens[0] };
}

function matchCard(m, rank) {
  const types = Object.entries(m.types || {});
  const title = m.metadata && (m.metadata.name || m.metadata.title);
  return el(
    "li",
    { class: "card match", "data-iscc-id": m.iscc_id, "data-score": m.score },
    el("div", { class: "head" },
      el("span", { class: "rank" }, `${rank}.`),
      el("button", { type: "button", class: "id", onclick: () => openEntry(m.iscc_id) }, m.iscc_id),
      meter(m.score, "score"),
      m.types && m.types.INSTANCE_NONE_V0 === 1 ? el("span", { class: "badge instance" }, "INSTANCE match") : null,
      title ? el("span", { class: "title" }, String(title)) : null,
    ),
    el("div", { class: "types" },
      types.map(([t, s]) => [
        el("span", { class: "name" }, t),
        meter(s, t, true),
        el("span", { class: "distance" },
          m.distances && t in m.distances ? `distance ${fixed(m.distances[t], 3)}` : t.startsWith("INSTANCE") ? "identical prefix" : ""),
      ]),
    ),
  );
}

function chunkCard(m, rank) {
  return el(
    "li",
    { class: "card chunk-match", "data-iscc-id": m.iscc_id, "data-score": m.score },
    el("div", { class: "head" },
      el("span", { class: "rank" }, `${rank}.`),
      el("button", { type: "button", class: "id", onclick: () => openEntry(m.iscc_id) }, m.iscc_id),
      meter(m.score, "chunk score"),
    ),
    Object.entries(m.types || {}).map(([t, s]) =>
      el("div", { class: "chunk-type" },
        el("div", {}, el("span", { class: "name" }, t), ` ${s.matches} of ${s.queried} query chunks matched, score ${fixed(s.score, 3)}`),
        s.chunks && s.chunks.length
          ? el("table", { class: "segments" },
              el("thead", {}, el("tr", {},
                el("th", { class: "num" }, "Offset"), el("th", { class: "num" }, "Size"),
                el("th", { class: "num" }, "Score"), el("th", { class: "num" }, "Freq"), el("th", {}, "Simprint"))),
              el("tbody", {}, s.chunks.map((c) =>
                el("tr", { class: "segment" },
                  el("td", { class: "num offset" }, String(c.offset)), el("td", { class: "num size" }, String(c.size)),
                  el("td", { class: "num" }, fixed(c.score, 3)), el("td", { class: "num" }, String(c.freq)),
                  el("td", { class: "mono" }, c.match))))) : null,
      )),
  );
}

async function runSearch() {
  const name = currentIndex();
  $("results").replaceChildren();
  $("chunks").replaceChildren();
  $("chunks-title").hidden = true;
  $("summary").textContent = "";
  let query;
  try {
    if (!name) throw new Error("no index to search (create one with POST /indexes)");
    query = parseQuery($("q").value);
  } catch (e) {
    showError($("error"), e);
    return;
  }
  const count = Math.max(1, parseInt($("count").value, 10) || 10);
  const exact = $("exact").checked;
  const params = new URLSearchParams({ index: name, q: $("q").value.trim(), count: String(count) });
  if (exact) params.set("exact", "1");
  history.replaceState(null, "", `/?${params}`);
  $("summary").textContent = "Searching…";
  const started = performance.now();
  try {
    const path = `/indexes/${encodeURIComponent(name)}/search?limit=${count}&exact=${exact}`;
    const answer = await api("POST", path, query);
    showError($("error"), null);
    const ms = performance.now() - started;
    const global = answer.global_matches || [];
    const chunks = answer.chunk_matches || [];
    $("summary").textContent =
      `${global.length} match${global.length === 1 ? "" : "es"}` +
      (chunks.length ? `, ${chunks.length} chunk match${chunks.length === 1 ? "" : "es"}` : "") +
      ` in ${ms.toFixed(0)} ms`;
    $("results").replaceChildren(...global.map((m, i) => matchCard(m, i + 1)));
    $("chunks").replaceChildren(...chunks.map((m, i) => chunkCard(m, i + 1)));
    $("chunks-title").hidden = chunks.length === 0;
  } catch (e) {
    $("summary").textContent = "";
    showError($("error"), e);
  }
}

// ------------------------------------------------------------------ entry

async function explainRows(units) {
  const rows = [];
  for (const u of units) {
    try {
      const x = await api("GET", `/explain/${encodeURIComponent(u)}`);
      const d = x.data || x;
      rows.push(el("tr", {}, el("td", { class: "mono" }, u), el("td", { class: "mono" }, d.unit_type || d.maintype_name || ""), el("td", { class: "num" }, String(d.bit_length ?? ""))));
    } catch (e) {
      rows.push(el("tr", {}, el("td", { class: "mono" }, u), el("td", { colspan: "2" }, e.message)));
    }
  }
  return rows;
}

async function openEntry(id) {
  const params = new URLSearchParams(location.search);
  params.set("index", currentIndex());
  params.set("entry", id);
  history.replaceState(null, "", `/?${params}`);
  const dialog = $("entry");
  $("entry-title").textContent = id;
  $("entry-json").textContent = "";
  $("entry-explain").textContent = "";
  $("entry-units").tBodies[0].replaceChildren();
  showError($("entry-error"), null);
  if (!dialog.open) dialog.showModal();
  try {
    const entry = await api("GET", `/indexes/${encodeURIComponent(currentIndex())}/assets/${encodeURIComponent(id)}`);
    $("entry-json").textContent = JSON.stringify(entry, null, 2);
    if (entry.iscc_code) {
      const x = await api("GET", `/explain/${encodeURIComponent(entry.iscc_code)}`);
      const d = x.data || x;
      $("entry-explain").textContent = `${d.explain || ""}\n${d.type_id || ""}\n\n` + JSON.stringify(d, null, 2);
    } else {
      $("entry-explain").textContent = "(no ISCC-CODE stored: the entry was added by its units)";
    }
    $("entry-units").tBodies[0].replaceChildren(...(await explainRows(entry.units || [])));
  } catch (e) {
    showError($("entry-error"), e);
  }
}

// ------------------------------------------------------------------ start

function start() {
  $("apikey").value = sessionStorage.getItem(KEY) || "";
  $("keyform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("apikey").value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
    loadIndexes();
  });
  $("forgetkey").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("apikey").value = "";
    loadIndexes();
  });
  $("index").addEventListener("change", renderFigures);
  $("entry").addEventListener("close", () => {
    const params = new URLSearchParams(location.search);
    params.delete("entry");
    history.replaceState(null, "", `/?${params}`);
  });
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    runSearch();
  });
  $("q").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      runSearch();
    }
  });
  const params = new URLSearchParams(location.search);
  if (params.get("q")) $("q").value = params.get("q");
  if (params.get("count")) $("count").value = params.get("count");
  $("exact").checked = params.get("exact") === "1";
  loadIndexes(params.get("index")).then(async () => {
    if (params.get("q")) await runSearch();
    if (params.get("entry")) await openEntry(params.get("entry"));
  });
}

start();
