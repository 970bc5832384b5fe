// The mediagen gallery. Data come from data/index.js and data/<group>-<n>.js, which call
// mediagenGallery.index(...) and mediagenGallery.page(...). Every value from the table is
// user or provider text: it is only ever inserted with textContent or as an attribute
// value set through the DOM, never parsed as HTML.
(function () {
  "use strict";

  const FILTERS = ["status", "provider", "run"];
  const loaded = new Map(); // page name -> rows
  const loading = new Map(); // page name -> Promise<rows>
  let index = null;
  let rendering = Promise.resolve();
  let shown = []; // rows on screen

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function stateFromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const state = { page: Math.max(1, parseInt(params.get("page") || "1", 10) || 1) };
    for (const name of FILTERS) state[name] = params.get(name) || "";
    return state;
  }

  function setHash(state) {
    const params = new URLSearchParams();
    for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
    if (state.page > 1) params.set("page", String(state.page));
    // pushState fires no hashchange: render now, so ready() covers this view at once
    history.pushState(null, "", "#" + params.toString());
    render();
  }

  function matching(state) {
    return index.groups.filter((g) => FILTERS.every((name) => !state[name] || g[name] === state[name]));
  }

  function loadPage(name) {
    if (loaded.has(name)) return Promise.resolve(loaded.get(name));
    if (!loading.has(name)) {
      loading.set(name, new Promise((resolve, reject) => {
        const script = el("script", { src: "data/" + encodeURIComponent(name) + ".js" });
        script.onload = () => (loaded.has(name) ? resolve(loaded.get(name)) : reject(new Error("data/" + name + ".js holds no rows")));
        script.onerror = () => reject(new Error("cannot load data/" + name + ".js"));
        document.head.append(script);
      }).finally(() => loading.delete(name)));
    }
    return loading.get(name);
  }

  // Rows [start, end) of the view made of `groups` in order, loading only the page files they span.
  async function slice(groups, start, end) {
    const size = index.page_rows;
    const parts = [];
    let offset = 0;
    for (const group of groups) {
      const from = Math.max(start, offset) - offset;
      const to = Math.min(end, offset + group.count) - offset;
      offset += group.count;
      if (from >= to) continue;
      for (let page = Math.floor(from / size); page <= Math.floor((to - 1) / size); page++) {
        const name = group.id + "-" + String(page + 1).padStart(5, "0");
        parts.push(loadPage(name).then((rows) => rows.slice(Math.max(from - page * size, 0), to - page * size)));
      }
    }
    return (await Promise.all(parts)).flat();
  }

  function fillSelect(name, state) {
    const select = $("filter-" + name);
    const counts = new Map();
    const others = Object.assign({}, state, { [name]: "" });
    for (const group of matching(others)) counts.set(group[name], (counts.get(group[name]) || 0) + group.count);
    for (const group of index.groups) if (!counts.has(group[name])) counts.set(group[name], 0);
    const values = [...counts.keys()];
    if (name !== "run") values.sort();
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    select.replaceChildren(el("option", { value: "" }, "all (" + total + ")"));
    for (const value of values) {
      select.append(el("option", { value: value, selected: value === state[name] }, (value || "(none)") + " (" + counts.get(value) + ")"));
    }
    select.value = state[name];
  }

  function render() {
    const state = stateFromHash();
    rendering = rendering.then(() => draw(state)).catch(fail);
    return rendering;
  }

  async function draw(state) {
    for (const name of FILTERS) fillSelect(name, state);
    const groups = matching(state);
    const total = groups.reduce((sum, g) => sum + g.count, 0);
    const pages = Math.max(1, Math.ceil(total / index.page_rows));
    const page = Math.min(state.page, pages);
    const start = (page - 1) * index.page_rows;
    const end = Math.min(start + index.page_rows, total);
    shown = await slice(groups, start, end);
    const grid = $("grid");
    grid.replaceChildren(...shown.map(card));
    grid.dataset.page = String(page);
    $("summary").textContent = total
      ? "rows " + (start + 1) + "\u2013" + end + " of " + total + " \u00b7 page " + page + " of " + pages
      : "no rows match";
    $("summary").dataset.total = String(total);
    $("prev").disabled = page <= 1;
    $("next").disabled = page >= pages;
    $("prev").onclick = () => setHash(Object.assign({}, state, { page: page - 1 }));
    $("next").onclick = () => setHash(Object.assign({}, state, { page: page + 1 }));
    document.body.dataset.state = "ready";
  }

  function fail(error) {
    console.error(error);
    const message = $("message");
    message.hidden = false;
    message.textContent = "The gallery could not load its data: " + error.message;
    document.body.dataset.state = "error";
  }

  function seconds(value) {
    return typeof value === "number" ? value.toFixed(1) + " s" : "";
  }

  function cost(value) {
    if (typeof value !== "number") return "unknown";
    return value === 0 ? "$0" : "$" + value.toFixed(value < 1 ? 4 : 2);
  }

  function thumb(row) {
    const media = row.media[0];
    const box = el("div", { className: "thumb" });
    if (!media || !media.href) {
      box.append(el("span", { className: "none" }, row.error_type || row.status || "no media"));
    } else if (media.type.startsWith("image/")) {
      box.append(el("img", { src: media.poster || media.href, alt: "", loading: "lazy" }));
    } else if (media.type.startsWith("video/")) {
      if (media.poster) box.append(el("img", { src: media.poster, alt: "", loading: "lazy" }));
      else box.append(el("span", { className: "none" }, "video"));
      box.append(el("span", { className: "badge" }, "\u25b6 video"));
    } else if (media.type.startsWith("audio/")) {
      const audio = el("audio", { controls: true, preload: "none", src: media.href });
      audio.addEventListener("click", (event) => event.stopPropagation());
      box.append(audio);
    } else {
      box.append(el("a", { href: media.href }, media.type || "file"));
    }
    if (row.media.length > 1) box.append(el("span", { className: "badge" }, row.media.length + " outputs"));
    return box;
  }

  function card(row, position) {
    const node = el("article", { className: "card", tabindex: 0, "data-row": position, "data-status": row.status },
      thumb(row),
      el("div", { className: "meta" },
        el("div", { className: "line" },
          el("span", { className: "status status-" + row.status }, row.status),
          row.reused ? el("span", { className: "flag" }, "reused") : null,
          row.placeholder ? el("span", { className: "flag" }, "placeholder") : row.mock ? el("span", { className: "flag" }, "mock") : null,
          index.has_cost && row.cost > 0 ? el("span", { className: "flag cost" }, cost(row.cost)) : null),
        el("div", { className: "muted" }, [row.provider, row.model].filter(Boolean).join(" / ") || "no provider"),
        el("div", { className: "prompt" }, row.prompt),
        row.error_type ? el("div", { className: "error" }, row.error_type) : null));
    node.addEventListener("click", () => openDetail(row));
    node.addEventListener("keydown", (event) => { if (event.key === "Enter") openDetail(row); });
    return node;
  }

  function player(media) {
    if (!media.href) return el("p", { className: "muted" }, media.uri);
    if (media.type.startsWith("video/")) return el("video", { controls: true, preload: "metadata", src: media.href, poster: media.poster });
    if (media.type.startsWith("image/")) return el("img", { src: media.href, alt: "" });
    if (media.type.startsWith("audio/")) return el("audio", { controls: true, preload: "metadata", src: media.href });
    return el("a", { href: media.href }, media.uri);
  }

  function openDetail(row) {
    const dialog = $("detail");
    $("detail-title").textContent = row.id;
    const facts = [
      ["status", row.status + (row.reused ? " (reused)" : "") + (row.placeholder ? " (mock placeholder for a real provider)" : row.mock ? " (mock)" : "")],
      ["provider / model", [row.provider, row.model].filter(Boolean).join(" / ")],
      ["config", row.config], ["modality", row.modality], ["run", row.run], ["finished", row.finished],
      ["cost", index.has_cost && "cost" in row ? cost(row.cost) + (row.cost_source ? " (" + row.cost_source + ")" : "") : ""],
      ["error", row.error_type ? row.error_type + ": " + row.error : ""],
      ["prompt", row.prompt],
    ].concat(row.media.map((m, i) => ["output " + (i + 1), m.uri + (m.type ? " (" + m.type + ")" : "")]));
    const list = el("dl");
    for (const [name, value] of facts) if (value) list.append(el("dt", {}, name), el("dd", {}, value));
    const attempts = el("table", { className: "attempts" },
      el("thead", {}, el("tr", {}, ...["#", "try", "provider / model", "status", "error", "time", "started"]
        .concat(index.has_cost ? ["cost"] : []).map((h) => el("th", {}, h)))),
      el("tbody", {}, ...row.attempts.map((a) => el("tr", {},
        el("td", {}, a.n), el("td", {}, a.try), el("td", {}, [a.provider, a.model].filter(Boolean).join(" / ") + (a.mock ? " (mock)" : "")),
        el("td", {}, a.status), el("td", {}, a.error_type ? a.error_type + ": " + a.error : ""),
        el("td", {}, seconds(a.seconds)), el("td", {}, a.started),
        index.has_cost ? el("td", {}, "cost" in a ? cost(a.cost) : "") : null))));
    $("detail-body").replaceChildren(...row.media.map(player), list,
      el("h3", {}, "Attempts (" + row.attempts.length + ")"),
      row.attempts.length ? attempts : el("p", { className: "muted" }, "no provider was called for this row"));
    dialog.showModal();
  }

  function start(data) {
    index = data;
    $("root").textContent = index.root + " \u00b7 " + index.total + " rows \u00b7 built " + index.generated_at;
    if (index.note) { $("note").hidden = false; $("note").textContent = index.note; }
    for (const name of FILTERS) {
      $("filter-" + name).addEventListener("change", () => {
        const state = stateFromHash();
        state[name] = $("filter-" + name).value;
        state.page = 1;
        setHash(state);
      });
    }
    $("detail").addEventListener("close", () => {
      for (const media of $("detail-body").querySelectorAll("video, audio")) media.pause();
    });
    window.addEventListener("hashchange", render);
    render();
  }

  window.mediagenGallery = {
    index: start,
    page(name, rows) { loaded.set(name, rows); },
    // Resolves once the latest requested view is on screen (for tests and scripts).
    async ready() {
      let settled;
      do { settled = rendering; await settled; } while (settled !== rendering);
      return document.body.dataset.state;
    },
  };
})();
