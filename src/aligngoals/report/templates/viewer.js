// The sample viewer of report.html and compare.html.
// Hand-written because no library renders a paged, filtered list of 20,000 samples from JSON
// embedded in one file with no network and no build step; it is kept small and vanilla.
// Safety: every text from a run reaches the page through textContent or a text node, never
// innerHTML, and listeners are attached with addEventListener (no inline handlers).
"use strict";
(function () {
  const PAGE = 50, LONG_CHARS = 700, LONG_LINES = 14;
  const root = document.getElementById("viewer");
  if (!root) return;
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v === null || v === undefined ? "–" : String(v));

  async function decode() {
    const node = document.getElementById("viewer-data");
    const b64 = node.textContent.trim();
    let bytes;
    if (Uint8Array.fromBase64) {
      bytes = Uint8Array.fromBase64(b64);  // native, about 6x faster than the loop below
    } else {
      const raw = atob(b64);
      bytes = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    }
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  // A text block; long ones start collapsed with a button to expand.
  function textBlock(text) {
    const pre = el("pre", "txt", text);
    const s = String(text);
    if (s.length > LONG_CHARS || s.split("\n").length > LONG_LINES) {
      pre.classList.add("collapsed");
      const wrap = el("div", "long");
      const btn = el("button", "more", "show all (" + s.length + " characters)");
      btn.type = "button";
      btn.addEventListener("click", () => {
        const c = pre.classList.toggle("collapsed");
        btn.textContent = c ? "show all (" + s.length + " characters)" : "collapse";
      });
      wrap.append(pre, btn);
      return wrap;
    }
    return pre;
  }

  function field(parent, label, value) {
    if (value === null || value === undefined || value === "") return;
    const d = el("div", "field");
    d.append(el("div", "label", label));
    if (Array.isArray(value) && value.length && typeof value[0] === "object" && value[0] && "role" in value[0]) {
      for (const m of value) {
        const msg = el("div", "msg");
        msg.append(el("span", "role", m.role), textBlock(m.content));
        d.append(msg);
      }
    } else if (typeof value === "string") {
      d.append(textBlock(value));
    } else {
      d.append(textBlock(JSON.stringify(value, null, 1)));
    }
    parent.append(d);
  }

  function choicesTable(parent, choices) {
    const t = el("table", "choices");
    const head = el("tr");
    for (const h of ["", "choice", "log-likelihood"]) head.append(el("th", null, h));
    t.append(head);
    for (const c of choices) {
      const tr = el("tr", (c.picked ? "picked " : "") + (c.gold ? "gold" : ""));
      tr.append(el("td", "mark", (c.picked ? "▶ picked" : "") + (c.gold ? " ★ gold" : "")),
                el("td", null, c.text), el("td", "num", fmt(c.logprob)));
      t.append(tr);
    }
    const d = el("div", "field");
    d.append(el("div", "label", "choices"), t);
    parent.append(d);
  }

  function sampleBody(s) {
    const body = el("div", "sample-body");
    field(body, "input", s.input);
    if (s.choices) choicesTable(body, s.choices);
    field(body, s.choices ? "picked" : "output", s.output);
    field(body, "reference", s.reference);
    for (const [label, text] of s.fields || []) field(body, label, text);
    const sc = Object.entries(s.scores || {}).map(([k, v]) => k + " " + fmt(v));
    if (s.confidence !== null && s.confidence !== undefined) sc.push("confidence " + fmt(s.confidence));
    if (sc.length) field(body, "scores", sc.join(" · "));
    const g = Object.entries(s.groups || {}).map(([k, v]) => k + "=" + v);
    if (g.length) field(body, "groups", g.join(" · "));
    return body;
  }

  function badge(correct) {
    if (correct === true) return el("span", "badge ok", "correct");
    if (correct === false) return el("span", "badge bad", "incorrect");
    return el("span", "badge na", "unscored");
  }

  function snippet(v) {
    if (v === null || v === undefined) return "";
    const s = typeof v === "string" ? v : Array.isArray(v) && v.length && v[v.length - 1].content ? v[v.length - 1].content : JSON.stringify(v);
    return s.length > 110 ? s.slice(0, 110) + "…" : s;
  }

  function main(data) {
    const compare = data.mode === "compare";
    const rows = compare ? data.pairs : data.samples;
    const first = (r) => (compare ? r.a : r);
    const tasks = [...new Set(rows.map((r) => r.task))].sort();
    const groups = new Set();
    for (const r of rows) for (const [k, v] of Object.entries(first(r).groups || {})) groups.add(k + "=" + v);
    const controls = el("div", "controls");
    const select = (id, label, options) => {
      const s = el("select");
      s.id = id;
      s.setAttribute("aria-label", label);
      for (const [v, t] of options) { const o = el("option", null, t); o.value = v; s.append(o); }
      controls.append(s);
      return s;
    };
    const fTask = select("f-task", "task", [["", "all tasks (" + tasks.length + ")"], ...tasks.map((t) => [t, t])]);
    const outcomes = compare
      ? [["", "all changes"], ["a_only", data.runs[0] + " right, " + data.runs[1] + " wrong"],
         ["b_only", data.runs[0] + " wrong, " + data.runs[1] + " right"], ["score", "score changed"]]
      : [["", "all outcomes"], ["correct", "correct"], ["incorrect", "incorrect"], ["unscored", "unscored"]];
    const fOut = select("f-outcome", "outcome", outcomes);
    const fGroup = select("f-group", "group", [["", "all groups"], ...[...groups].sort().map((g) => [g, g])]);
    const num = (id, ph) => { const i = el("input"); i.id = id; i.type = "number"; i.step = "any"; i.placeholder = ph; i.setAttribute("aria-label", ph); controls.append(i); return i; };
    const fMin = num("f-min", "score ≥"), fMax = num("f-max", "score ≤");
    const fSearch = el("input");
    fSearch.id = "f-search"; fSearch.type = "search"; fSearch.placeholder = "search all text"; fSearch.setAttribute("aria-label", "search");
    controls.append(fSearch);
    const count = el("span", "count"); count.id = "v-count";
    const pager = el("div", "pager");
    const prev = el("button", null, "‹ previous"), next = el("button", null, "next ›"), pageLabel = el("span", "page");
    prev.id = "v-prev"; next.id = "v-next"; pageLabel.id = "v-page"; prev.type = next.type = "button";
    pager.append(prev, pageLabel, next, count);
    const list = el("div", "samples"); list.id = "v-list";
    root.replaceChildren(controls, pager, list);

    // Lower-cased text of every row for search: built in small slices after the first page is
    // drawn (so opening stays fast), and finished at once if a search comes first.
    const haystack = new Array(rows.length);
    let built = 0;
    const buildTo = (n) => { for (; built < n; built++) haystack[built] = JSON.stringify(rows[built]).toLowerCase(); };
    const warm = () => { buildTo(Math.min(rows.length, built + 500)); if (built < rows.length) setTimeout(warm, 0); };
    let shown = rows, page = 0;
    const scoreOf = (r) => (compare ? (r.b.score ?? 0) - (r.a.score ?? 0) : r.score);
    function apply() {
      const task = fTask.value, out = fOut.value, group = fGroup.value, q = fSearch.value.trim().toLowerCase();
      const lo = fMin.value === "" ? null : Number(fMin.value), hi = fMax.value === "" ? null : Number(fMax.value);
      if (q) buildTo(rows.length);
      const [gk, gv] = group ? [group.slice(0, group.indexOf("=")), group.slice(group.indexOf("=") + 1)] : [null, null];
      shown = [];
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i], s = first(r);
        if (task && r.task !== task) continue;
        if (out) {
          if (compare ? r.change !== out : out === "unscored" ? s.correct !== null && s.correct !== undefined : s.correct !== (out === "correct")) continue;
        }
        if (gk !== null && (s.groups || {})[gk] !== gv) continue;
        const sc = scoreOf(r);
        if ((lo !== null || hi !== null) && (typeof sc !== "number" || (lo !== null && sc < lo) || (hi !== null && sc > hi))) continue;
        if (q && !haystack[i].includes(q)) continue;
        shown.push(r);
      }
      page = 0;
      render();
    }
    function render() {
      const pages = Math.max(1, Math.ceil(shown.length / PAGE));
      page = Math.min(Math.max(page, 0), pages - 1);
      count.textContent = shown.length + " of " + rows.length + (compare ? " changed items" : " samples");
      pageLabel.textContent = "page " + (page + 1) + " / " + pages;
      prev.disabled = page === 0; next.disabled = page >= pages - 1;
      const frag = document.createDocumentFragment();
      for (const r of shown.slice(page * PAGE, page * PAGE + PAGE)) frag.append(compare ? pairRow(r) : sampleRow(r));
      list.replaceChildren(frag);
    }
    function sampleRow(s) {
      const d = el("details", "sample");
      const sum = el("summary");
      sum.append(badge(s.correct), el("span", "task", s.task), el("span", "sid", s.id),
                 el("span", "score", s.metric ? s.metric + " " + fmt(s.score) : ""), el("span", "snip", snippet(s.output ?? s.input)));
      d.append(sum);
      d.addEventListener("toggle", () => { if (d.open && d.childElementCount === 1) d.append(sampleBody(s)); });
      return d;
    }
    function pairRow(p) {
      const d = el("details", "sample pair");
      const sum = el("summary");
      sum.append(badge(p.a.correct), el("span", "arrow", "→"), badge(p.b.correct), el("span", "task", p.task), el("span", "sid", p.id),
                 el("span", "score", (p.a.metric || "") + " " + fmt(p.a.score) + " → " + fmt(p.b.score)));
      d.append(sum);
      d.addEventListener("toggle", () => {
        if (!d.open || d.childElementCount > 1) return;
        const cols = el("div", "side-by-side");
        for (const [label, s] of [[data.runs[0], p.a], [data.runs[1], p.b]]) {
          const c = el("div", "col");
          c.append(el("h4", null, label), sampleBody(s));
          cols.append(c);
        }
        d.append(cols);
      });
      return d;
    }
    for (const c of [fTask, fOut, fGroup]) c.addEventListener("change", apply);
    for (const c of [fMin, fMax, fSearch]) c.addEventListener("input", apply);
    prev.addEventListener("click", () => { page--; render(); });
    next.addEventListener("click", () => { page++; render(); });
    apply();
    setTimeout(warm, 300);  // after the first page is painted
  }

  decode().then(main).then(() => {
    document.documentElement.dataset.viewer = "ready";
    document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
  })
    .catch((e) => { root.replaceChildren(el("p", "error", "Could not read the embedded samples: " + e)); document.documentElement.dataset.viewer = "error"; });
})();
