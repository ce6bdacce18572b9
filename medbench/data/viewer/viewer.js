// medbench transcript viewer: plain JavaScript, no library, works from file:// with no server.
// Pages opened from disk may not fetch(), so data comes as <script> files that call
// MedbenchViewer.receive(key, data): one small index per model, loaded when that model is shown,
// and one file per attempt, loaded when its transcript is opened and dropped when it is closed.
"use strict";
(function () {
  const manifest = JSON.parse(document.getElementById("manifest").textContent);
  const models = manifest.models;
  const bySlug = new Map(models.map((m) => [m.slug, m]));
  const indexes = new Map();      // model dir -> rows of that model (loaded once)
  const pending = new Map();      // data key -> {resolve, reject}
  const opened = new Set();       // row ids whose transcript is expanded
  const state = {models: [], category: "", status: "", verdict: "", q: "", reason: null, order: "model",
                 page: 0, compare: null, compareWith: []};
  const $ = (id) => document.getElementById(id);

  window.MedbenchViewer = {
    receive(key, data) {
      const waiting = pending.get(key);
      if (waiting) { pending.delete(key); waiting.resolve(data); }
    },
  };

  function load(key) {
    if (pending.has(key)) return pending.get(key).promise;
    let entry;
    const promise = new Promise((resolve, reject) => { entry = {resolve, reject}; });
    entry.promise = promise;
    pending.set(key, entry);
    const script = document.createElement("script");
    script.src = manifest.dataDir + "/" + key + ".js";
    script.onerror = () => {
      pending.delete(key);
      entry.reject(new Error("could not load " + script.src + ": keep the " + manifest.dataDir + "/ folder next to this page"));
    };
    const cleanup = () => script.remove();
    promise.then(cleanup, cleanup);
    document.head.appendChild(script);
    return promise;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const fmt = (value, digits) => (value === null || value === undefined ? "" :
    digits === undefined ? value.toLocaleString("en") : Number(value).toFixed(digits));
  const tokens = (row) => (row.pt === null && row.ct === null ? "" : fmt(row.pt || 0) + " + " + fmt(row.ct || 0));
  const rowId = (model, row) => model.slug + "|" + row.t + "|" + row.a;

  // --- state <-> URL hash: links from report.html land on a filtered view -------------------------
  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    state.models = params.getAll("model").filter((slug) => bySlug.has(slug));
    state.category = params.get("category") || "";
    state.status = params.get("status") || "";
    state.verdict = params.get("verdict") || "";
    state.q = params.get("q") || "";
    state.reason = params.has("reason") ? params.get("reason") : null;
    state.order = params.get("order") === "task" ? "task" : "model";
    state.compare = params.get("compare") || null;
    state.compareWith = params.getAll("with").filter((slug) => bySlug.has(slug));
    state.page = 0;
  }

  function writeHash() {
    const params = new URLSearchParams();
    state.models.forEach((slug) => params.append("model", slug));
    for (const key of ["category", "status", "verdict", "q"]) if (state[key]) params.set(key, state[key]);
    if (state.reason !== null) params.set("reason", state.reason);
    if (state.order !== "model") params.set("order", state.order);
    if (state.compare) {
      params.set("compare", state.compare);
      state.compareWith.forEach((slug) => params.append("with", slug));
    }
    const hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname);
  }

  // --- filters ------------------------------------------------------------------------------------
  function setUpControls() {
    $("about").textContent = manifest.about;
    for (const model of models) {
      const box = el("input", {type: "checkbox", value: model.slug, "data-slug": model.slug});
      box.addEventListener("change", () => {
        state.models = [...$("model-list").querySelectorAll("input:checked")].map((b) => b.value);
        changed();
      });
      const label = model.name + " (" + model.correct + "/" + model.attempts + " correct" +
        (model.transcripts ? "" : ", no transcripts recorded") + ")";
      const only = el("button", {type: "button", class: "only", title: "show only this model",
        onclick: () => { state.models = [model.slug]; changed(); }}, "only");
      $("model-list").append(el("label", {}, box, " ", label, " ", only));
    }
    for (const category of manifest.categories) {
      $("category").append(el("option", {value: category.id}, category.label ? category.id + " " + category.label : category.id));
    }
    for (const status of manifest.statuses) $("status").append(el("option", {value: status}, status));
    $("models-all").addEventListener("click", () => { state.models = []; changed(); });
    for (const id of ["category", "status", "verdict", "order"]) {
      $(id).addEventListener("change", () => { state[id] = $(id).value; changed(); });
    }
    let timer = null;
    $("search").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { state.q = $("search").value; changed(); }, 200);
    });
    window.addEventListener("hashchange", () => { readHash(); showControls(); refresh(); });
  }

  function showControls() {
    const chosen = new Set(state.models);
    for (const box of $("model-list").querySelectorAll("input")) box.checked = chosen.has(box.value);
    $("model-choice").textContent = state.models.length === 0 ? "all" :
      state.models.filter((s) => bySlug.has(s)).map((s) => bySlug.get(s).name).join(", ") || "none";
    $("category").value = state.category;
    $("status").value = state.status;
    $("verdict").value = state.verdict;
    $("order").value = state.order;
    if ($("search").value !== state.q) $("search").value = state.q;
    const chips = $("chips");
    chips.replaceChildren();
    if (state.reason !== null) {
      chips.append(el("span", {class: "chip", id: "reason-chip"}, "grader's reason: " + (state.reason || "(none)") + " ",
        el("button", {type: "button", title: "remove this filter", onclick: () => { state.reason = null; changed(); }}, "\u00d7")));
    }
  }

  function changed() {
    state.page = 0;
    writeHash();
    showControls();
    refresh();
  }

  const shownModels = () => (state.models.length ? models.filter((m) => state.models.includes(m.slug)) : models);

  function matches(model, row, needle) {
    if (state.category && row.c !== state.category) return false;
    if (state.status && row.s !== state.status) return false;
    if (state.verdict === "correct" && !row.ok) return false;
    if (state.verdict === "incorrect" && row.ok) return false;
    if (state.reason !== null && (row.r || "") !== state.reason) return false;
    if (!needle) return true;
    if (row._text === undefined) {
      row._text = [row.t, row.c, row.s, row.r, row.e, row.res, row.q, row.x].filter(Boolean).join("\n").toLowerCase();
    }
    return row._text.includes(needle) || model.name.toLowerCase().includes(needle);
  }

  // body[data-ready="1"] says the list matches the filters (the browser tests wait on it).
  async function refresh() {
    document.body.dataset.ready = "0";
    const chosen = shownModels();
    const missing = chosen.filter((m) => !indexes.has(m.dir));
    if (missing.length) {
      $("count").textContent = "Loading the index of " + missing.length + " model(s)...";
      try {
        const loaded = await Promise.all(missing.map((m) => load(m.dir + "/index")));
        missing.forEach((m, i) => indexes.set(m.dir, loaded[i]));
      } catch (error) {
        $("count").replaceChildren(el("span", {class: "error"}, error.message));
        return;
      }
    }
    renderRows(chosen);
    renderCompare();
    window.medbenchReadyAt = performance.now();  // for scripts/bench_viewer.py
    document.body.dataset.ready = "1";
  }

  // --- the list of attempts ------------------------------------------------------------------------
  function selectedRows(chosen) {
    const needle = state.q.trim().toLowerCase();
    const rows = [];
    chosen.forEach((model, order) => {
      for (const row of indexes.get(model.dir) || []) if (matches(model, row, needle)) rows.push({model, row, order});
    });
    if (state.order === "task") rows.sort((a, b) => a.row.i - b.row.i || a.order - b.order);
    return rows;
  }

  function renderRows(chosen) {
    const rows = selectedRows(chosen);
    const size = manifest.pageSize;
    const pages = Math.max(1, Math.ceil(rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    const first = state.page * size;
    const shown = rows.slice(first, first + size);
    const total = chosen.reduce((sum, m) => sum + (indexes.get(m.dir) || []).length, 0);
    $("count").textContent = rows.length
      ? "Attempts " + fmt(first + 1) + "-" + fmt(first + shown.length) + " of " + fmt(rows.length) + " matching (" + fmt(total) + " in the chosen models). Click a row to open its transcript."
      : "No attempt matches these filters (" + fmt(total) + " in the chosen models).";
    for (const pager of [$("pager-top"), $("pager-bottom")]) {
      pager.replaceChildren();
      if (pages > 1) {
        pager.append(
          el("button", {type: "button", disabled: state.page === 0, onclick: () => { state.page--; renderRows(shownModels()); }}, "previous"),
          el("button", {type: "button", disabled: state.page >= pages - 1, onclick: () => { state.page++; renderRows(shownModels()); }}, "next"),
          "page " + (state.page + 1) + " of " + pages);
      }
    }
    const body = $("results").tBodies[0];
    body.replaceChildren();
    for (const {model, row} of shown) {
      const id = rowId(model, row);
      const tr = el("tr", {class: "attempt", "data-row": id, "data-task": row.t, "data-model": model.slug},
        el("td", {}, model.name), el("td", {}, row.t), el("td", {class: "num"}, row.a), el("td", {}, row.s),
        el("td", {class: row.ok ? "ok" : "bad"}, row.ok ? "correct" : "incorrect"),
        el("td", {class: "reason"}, row.r || ""), el("td", {class: "num"}, row.n ?? ""),
        el("td", {class: "num"}, tokens(row)), el("td", {class: "num"}, fmt(row.lat, 2)));
      tr.addEventListener("click", () => toggle(model, row, tr));
      body.append(tr);
      if (opened.has(id)) toggle(model, row, tr, true);
    }
  }

  async function toggle(model, row, tr, reopen) {
    const id = rowId(model, row);
    const next = tr.nextElementSibling;
    if (!reopen && next && next.classList.contains("detail")) {
      next.remove();
      tr.classList.remove("open");
      opened.delete(id);
      return;
    }
    opened.add(id);
    tr.classList.add("open");
    const cell = el("td", {colspan: 9}, "Loading the transcript...");
    tr.after(el("tr", {class: "detail", "data-row": id}, cell));
    cell.replaceChildren(await transcriptView(model, row, true));
  }

  // Not cached: a closed transcript leaves nothing behind, and reading one file from disk is quick.
  const transcriptData = (model, row) => (row.f ? load(model.dir + "/" + row.f) : Promise.resolve(null));

  // --- one transcript ------------------------------------------------------------------------------
  async function transcriptView(model, row, withCompare) {
    const box = el("div", {class: "transcript", "data-model": model.slug, "data-task": row.t});
    box.append(el("div", {class: "verdict " + (row.ok ? "ok" : "bad")},
      el("strong", {}, model.name + " \u00b7 " + row.t + (row.a > 1 ? " attempt " + row.a : "") + ": " + (row.ok ? "correct" : "incorrect")),
      row.ok ? "" : el("div", {class: "grader-reason"}, "Grader's reason: " + (row.r || "(none given)"))));
    const facts = el("dl", {class: "facts"});
    const fact = (name, value) => { if (value !== null && value !== undefined && value !== "") facts.append(el("dt", {}, name), el("dd", {}, value)); };
    fact("question", row.q);
    fact("status", row.s);
    fact("answer (FINISH)", row.res);
    fact("error", row.e);
    fact("agent turns", row.n);
    fact("tokens (prompt + completion)", tokens(row));
    fact("model latency (s)", fmt(row.lat, 3));
    box.append(facts);
    if (withCompare && models.length > 1) {
      const others = models.filter((m) => m !== model);
      const pick = el("select", {class: "compare-with"}, el("option", {value: ""}, "side by side with..."),
        others.map((m) => el("option", {value: m.slug}, m.name)));
      pick.addEventListener("change", () => {
        if (!pick.value) return;
        state.compare = row.t;
        state.compareWith = [model.slug, pick.value];
        writeHash();
        renderCompare();
        $("compare").scrollIntoView();
      });
      box.append(el("div", {class: "controls"}, pick));
    }
    let data;
    try {
      data = await transcriptData(model, row);
    } catch (error) {
      box.append(el("p", {class: "error"}, error.message));
      return box;
    }
    if (!data) {
      box.append(el("p", {class: "note"}, "No transcript was recorded for this attempt."));
      return box;
    }
    let agentTurn = 0;
    for (const turn of data.turns) {
      if (turn.kind === "prompt") box.append(folded("Prompt (" + fmt(turn.text.length) + " characters)", turn.text, "turn prompt"));
      else if (turn.kind === "agent") box.append(agentView(turn, ++agentTurn));
      else if (turn.kind === "fhir") {
        const failed = !(turn.status === "OK" || turn.status === "accepted");
        box.append(folded(turn.method + (turn.url ? " " + turn.url : "") + " \u2192 " + turn.status + " \u00b7 " + fmt(turn.body.length) + " characters", turn.body,
          "turn fhir" + (failed ? " failed" : "")));
      } else box.append(el("div", {class: "turn user"}, el("div", {class: "turn-head"}, "user"), el("pre", {}, turn.text)));
    }
    return box;
  }

  function agentView(turn, number) {
    const head = ["Agent turn " + number, turn.action];
    if (turn.prompt_tokens !== undefined && turn.prompt_tokens !== null) head.push(fmt(turn.prompt_tokens) + " + " + fmt(turn.completion_tokens || 0) + " tokens");
    if (turn.latency_s !== undefined && turn.latency_s !== null) head.push(fmt(turn.latency_s, 2) + " s");
    const node = el("div", {class: "turn agent"}, el("div", {class: "turn-head"}, head.join(" \u00b7 ")), el("pre", {}, turn.text));
    if (turn.action === "POST") {
      node.append(turn.payload === null ? el("p", {class: "error"}, "POST payload is not valid JSON")
        : el("details", {open: true}, el("summary", {}, "POST payload to " + turn.url), el("pre", {}, turn.payload)));
    }
    if (turn.action === "invalid") node.append(el("p", {class: "error"}, "Not an action: " + turn.why));
    return node;
  }

  // Large bodies go into the page only when their fold is opened.
  function folded(title, text, cls) {
    const pre = el("pre");
    const node = el("details", {class: cls}, el("summary", {}, title), pre);
    node.addEventListener("toggle", () => { pre.textContent = node.open ? text : ""; });
    return node;
  }

  // --- side by side --------------------------------------------------------------------------------
  async function renderCompare() {
    const panel = $("compare");
    if (!state.compare || state.compareWith.length < 2) { panel.hidden = true; panel.replaceChildren(); return; }
    panel.hidden = false;
    const task = state.compare;
    const close = el("button", {type: "button", onclick: () => { state.compare = null; state.compareWith = []; writeHash(); renderCompare(); }}, "close");
    const pickers = state.compareWith.slice(0, 2).map((slug, side) => {
      const select = el("select", {class: "compare-model"}, models.map((m) => el("option", {value: m.slug, selected: m.slug === slug}, m.name)));
      select.addEventListener("change", () => { state.compareWith[side] = select.value; writeHash(); renderCompare(); });
      return select;
    });
    panel.replaceChildren(el("h2", {}, "Side by side: " + task), el("div", {class: "controls"}, pickers[0], " vs ", pickers[1], " ", close));
    const columns = el("div", {class: "columns"});
    panel.append(columns);
    for (const slug of state.compareWith.slice(0, 2)) {
      const model = bySlug.get(slug);
      const column = el("div", {}, "Loading...");
      columns.append(column);
      try {
        if (!indexes.has(model.dir)) indexes.set(model.dir, await load(model.dir + "/index"));
        const row = indexes.get(model.dir).find((r) => r.t === task);
        column.replaceChildren(row ? await transcriptView(model, row, false) : el("p", {class: "note"}, model.name + " has no attempt at " + task + "."));
      } catch (error) {
        column.replaceChildren(el("p", {class: "error"}, error.message));
      }
    }
  }

  setUpControls();
  readHash();
  showControls();
  refresh();
})();
