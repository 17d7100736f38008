// The operator's page: reads the admin JSON API, flips routes with the operator's token.
// Every value from the server goes in through textContent, never as HTML.
"use strict";

const PREFIX = document.body.dataset.prefix;
const TOKEN_KEY = "gateway.adminToken";
const SVG = "http://www.w3.org/2000/svg";
const SIDES = ["legacy", "async"];
const HISTORY_LIMIT = 50;
const params = new URLSearchParams(location.search);
const REFRESH_SECONDS = Math.max(1, Number(params.get("refresh")) || 5);
const rows = new Map(); // route key -> {row, modeCell, changeCell, back}
// Newest change per route. A new change always reaches the newest-first history list,
// so a route looked up once (found or not) needs no second lookup.
const lastChange = new Map();
let searchText = "";

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(PREFIX + path, { ...options, headers, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  return { status: response.status, body };
}

function detail(body) {
  if (!body || body.detail === undefined) return "";
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  let text = String(body.detail);
  if (Array.isArray(body.suggestions) && body.suggestions.length) {
    text += " (closest: " + body.suggestions.join(", ") + ")";
  }
  return text;
}

function say(text, kind) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.className = kind || "";
}

// The modes and what each means, from the server (gateway.modes, the one list).
const MODES = JSON.parse(document.getElementById("modes").textContent);
const MODE_BY_NAME = new Map(MODES.map((m) => [m.mode, m]));
const WITH_PERCENT = new Set(MODES.filter((m) => m.percent_means).map((m) => m.mode));

function describe(route) {
  const mode = MODE_BY_NAME.get(route.mode);
  if (!mode) return route.mode;
  return mode.label.replace("{mode}", route.mode).replace("{percent}", route.percent);
}

function describeFlag(flag) {
  return WITH_PERCENT.has(flag.mode) ? flag.mode + " " + flag.percent + "%" : flag.mode;
}

// Times as the CLI prints them (UTC ISO, from the server); the local time on hover.
function when(iso) {
  return String(iso);
}

function local(iso) {
  const at = new Date(iso);
  return isNaN(at) ? "" : "local time: " + at.toLocaleString();
}

function utcNow() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

// -- search -------------------------------------------------------------------------

function matches(key) {
  return !searchText || key.toLowerCase().includes(searchText);
}

function applySearch() {
  for (const node of document.querySelectorAll("tr[data-route], li[data-route]")) {
    node.hidden = !matches(node.dataset.route);
  }
}

// -- flips --------------------------------------------------------------------------

function controls(route) {
  const form = el("form", { "data-route": route.key, "aria-label": "flip " + route.key });
  const mode = el("select", { name: "mode", "aria-label": "mode for " + route.key });
  for (const { mode: value, meaning } of MODES) {
    mode.append(el("option", { value, title: meaning }, value));
  }
  mode.value = route.mode;
  const percent = el("input", {
    name: "percent", type: "number", min: "0", max: "100", step: "any",
    "aria-label": "percent for " + route.key, placeholder: "%",
  });
  percent.value = WITH_PERCENT.has(route.mode) ? String(route.percent) : "";
  percent.disabled = !WITH_PERCENT.has(route.mode);
  mode.addEventListener("change", () => {
    percent.disabled = !WITH_PERCENT.has(mode.value);
    const chosen = MODE_BY_NAME.get(mode.value);
    if (chosen && chosen.percent_means && chosen.default_percent !== null && !percent.value) {
      percent.value = String(chosen.default_percent);
    }
  });
  const reason = el("input", {
    name: "reason", class: "reason", type: "text", maxlength: "500",
    placeholder: "reason", title: "why: kept in the history", "aria-label": "reason for " + route.key,
  });
  const apply = el("button", { type: "submit", class: "apply" }, "Apply");
  form.append(mode, percent, reason, apply);
  // The form follows the route's mode (a flip from elsewhere, a rollback) until edited.
  let edited = false;
  form.addEventListener("input", () => { edited = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await flip(route.key, mode.value, percent.value, reason.value, apply)) {
      reason.value = "";
      edited = false;
    }
  });
  const follow = (current) => {
    if (edited || form.contains(document.activeElement)) return;
    mode.value = current.mode;
    percent.value = WITH_PERCENT.has(current.mode) ? String(current.percent) : "";
    percent.disabled = !WITH_PERCENT.has(current.mode);
  };
  return { form, reason, follow };
}

// One click, then a confirmation in place: a rollback is the one flip that must be fast.
function backToLegacy(key, reasonInput) {
  const box = el("span", { class: "back", "data-route": key });
  const start = el("button", { type: "button", class: "back-start" }, "Back to legacy");
  const ask = el("span", { class: "confirm", role: "group", "aria-label": "confirm back to legacy" });
  ask.hidden = true;
  const yes = el("button", { type: "button", class: "back-confirm danger" }, "Yes, back to legacy");
  const no = el("button", { type: "button", class: "back-cancel" }, "Cancel");
  ask.append(el("span", {}, "Send every request of " + key + " to legacy? "), yes, no);
  start.addEventListener("click", () => {
    start.hidden = true;
    ask.hidden = false;
    yes.focus();
  });
  no.addEventListener("click", () => {
    ask.hidden = true;
    start.hidden = false;
  });
  yes.addEventListener("click", async () => {
    const reason = reasonInput.value.trim() || "back to legacy from the operator's page";
    await flip(key, "legacy", "", reason, yes);
    ask.hidden = true;
    start.hidden = false;
  });
  box.append(start, ask);
  return box;
}

async function flip(key, mode, percent, reason, button) {
  if (!token()) {
    say("Enter the admin token first: flips need one.", "error");
    return false;
  }
  const body = { mode, reason };
  body.percent = WITH_PERCENT.has(mode) && percent !== "" ? Number(percent) : null;
  button.disabled = true;
  try {
    const result = await api("/routes/" + encodeURIComponent(key), {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (result.status === 200) {
      say(key + " now serves: " + describe({ mode, percent: body.percent === null ? 100 : body.percent }), "ok");
      return true;
    } else if (result.status === 401) {
      say("The token was rejected (401): " + detail(result.body), "error");
    } else {
      say("Not changed (" + result.status + "): " + detail(result.body), "error");
    }
  } catch (error) {
    say("Not changed: the gateway did not answer (" + error + ")", "error");
  } finally {
    button.disabled = false;
    refresh();
  }
  return false;
}

// -- routes -------------------------------------------------------------------------

// A twin that differs from its legacy route (gateway.routing.contract): flagged, listed.
function contractFlag(contract) {
  if (!contract || contract.status === "same") return null;
  const count = contract.differences.length;
  const box = el("details", { class: "contract sub" });
  box.append(el("summary", {}, contract.accepted
    ? "differs from legacy, accepted: " + contract.accepted
    : count + (count === 1 ? " difference" : " differences") + " from legacy"));
  const list = el("ul");
  for (const d of contract.differences) {
    list.append(el("li", {}, d.message + (d.fix ? " (fix: " + d.fix + ")" : "")));
  }
  box.append(list);
  return box;
}

function renderRoutes(data) {
  const tbody = document.querySelector("#routes tbody");
  if (!rows.size) tbody.replaceChildren(); // the server's first rows, drawn without controls
  const seen = new Set();
  for (const route of data.routes) {
    seen.add(route.key);
    let entry = rows.get(route.key);
    if (!entry) {
      const row = el("tr", { "data-route": route.key });
      const keyCell = el("td", { class: "key" }, route.key);
      const flag = contractFlag(route.contract);
      if (flag) keyCell.append(flag);
      row.append(keyCell);
      const impls = el("td", {}, route.implementations.join(" + "));
      impls.title = [route.legacy, route.async].filter(Boolean).join("\n");
      row.append(impls);
      const modeCell = el("td", { class: "mode" });
      const changeCell = el("td", { class: "change" });
      const flipCell = el("td", { class: "flip" });
      let back = null, follow = null;
      if (route.paired) {
        const made = controls(route);
        follow = made.follow;
        back = backToLegacy(route.key, made.reason);
        flipCell.append(made.form, back);
      } else {
        flipCell.append(el("span", { class: "sub" }, "only " + route.implementations[0]));
        changeCell.append(el("span", { class: "sub" }, "no flag"));
      }
      row.append(modeCell, changeCell, flipCell);
      tbody.append(row);
      entry = { row, modeCell, changeCell, back, follow, paired: route.paired };
      rows.set(route.key, entry);
    }
    entry.modeCell.replaceChildren(el("span", { class: "mode-name" }, describe(route)));
    entry.modeCell.className = "mode mode-" + route.mode;
    for (const [side, names] of Object.entries(route.blocks_loop || {})) {
      entry.modeCell.append(el("div", { class: "blocks-loop" }, "blocks the event loop (" + side +
        "): " + names.join(", ") + " is async def with a sync Session"));
    }
    // The canary judge's state: judged, rolling out (step and why it waits), rolled back.
    const canary = route.canary;
    if (canary && canary.status && canary.status !== "stopped") {
      entry.modeCell.append(el("div", { class: "judge sub" },
        "judge: " + canary.status + (canary.note ? ": " + canary.note : "")));
    }
    if (entry.back) entry.back.hidden = route.mode === "legacy";
    if (entry.follow) entry.follow(route);
  }
  for (const [key, entry] of rows) {
    if (!seen.has(key)) {
      entry.row.remove();
      rows.delete(key);
    }
  }
  const store = data.store;
  document.getElementById("store").textContent = store
    ? "Flag store: " + store.backend + (store.up ? ", reachable" : ", UNREACHABLE (serving the last known flags)") +
      "; flags from " + store.flags_from + "."
    : "";
}

function renderLastChanges() {
  for (const [key, entry] of rows) {
    if (!entry.paired) continue;
    const change = lastChange.get(key);
    if (change === undefined) continue;
    entry.changeCell.replaceChildren();
    if (change === null) {
      entry.changeCell.append(el("span", { class: "sub" }, "never changed"));
      continue;
    }
    entry.changeCell.append(
      el("span", { class: "who" }, change.by),
      el("span", { class: "sub", title: local(change.at) }, " " + when(change.at) + ": " + describeFlag(change.old) + " → " + describeFlag(change.new)),
    );
    if (change.reason) entry.changeCell.append(el("div", { class: "why" }, change.reason));
  }
}

// -- history ------------------------------------------------------------------------

async function refreshHistory() {
  const result = await api("/history?limit=" + HISTORY_LIMIT);
  const state = document.getElementById("history-state");
  if (result.status !== 200) {
    state.textContent = "History unavailable (" + result.status + "): " + detail(result.body);
    return;
  }
  const history = result.body.history;
  for (const change of [...history].reverse()) lastChange.set(change.route, change);
  const tbody = document.querySelector("#history tbody");
  tbody.replaceChildren();
  for (const change of history) {
    const row = el("tr", { "data-route": change.route });
    row.append(
      el("td", { class: "when", title: local(change.at) }, when(change.at)),
      el("td", { class: "key" }, change.route),
      el("td", {}, describeFlag(change.old) + " → " + describeFlag(change.new)),
      el("td", {}, change.by),
      el("td", { class: "why" }, change.reason),
    );
    tbody.append(row);
  }
  state.textContent = history.length
    ? "Newest first; the last " + HISTORY_LIMIT + " changes at most."
    : "No flag has been changed yet.";
  const unknown = [...rows].filter(([key, entry]) => entry.paired && !lastChange.has(key));
  for (const [key] of unknown) {
    const older = await api("/history?limit=1&route=" + encodeURIComponent(key));
    if (older.status === 200) lastChange.set(key, older.body.history[0] || null);
  }
  renderLastChanges();
}

// -- side by side -------------------------------------------------------------------

function fmt(value, scale, digits) {
  if (value === null || value === undefined) return "–";
  return (value * scale).toFixed(digits);
}

function percentText(value) {
  return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
}

// A step chart of both sides: each step of the window drawn flat over its own span.
function chart(key, series, field, scale, unit, start, end) {
  const width = 220, height = 40, top = 13;
  const values = SIDES.flatMap((side) => series[field][side]).filter((v) => v !== null);
  const most = Math.max(...values, 0);
  const box = svg("svg", {
    class: "chart", viewBox: "0 0 " + width + " " + (height + top), width, height: height + top,
    role: "img", "data-route": key, "data-field": field,
    "aria-label": field + " of " + key + ", highest " + (most * scale).toFixed(1) + " " + unit,
  });
  box.append(svg("line", { class: "axis", x1: 0, y1: height + top - 0.5, x2: width, y2: height + top - 0.5 }));
  const span = Math.max(end - start, 1e-3);
  const x = (t) => ((t - start) / span) * width;
  const y = (v) => top + height - (most > 0 ? (v / most) * (height - 2) : 0);
  for (const side of SIDES) {
    let d = "", from = start, drawing = false;
    series.at.forEach((at, i) => {
      const value = series[field][side][i];
      if (value === null) {
        drawing = false;
      } else {
        d += (drawing ? " L" : " M") + x(from).toFixed(1) + " " + y(value).toFixed(1);
        d += " L" + x(at).toFixed(1) + " " + y(value).toFixed(1);
        drawing = true;
      }
      from = at;
    });
    if (d) box.append(svg("path", { class: "line " + side, d: d.trim() }));
  }
  box.append(svg("text", { class: "label", x: 3, y: 10 }, "max " + (most * scale).toFixed(most * scale < 10 ? 2 : 0) + " " + unit));
  return box;
}

function renderPairs(report) {
  const tbody = document.querySelector("#pairs tbody");
  tbody.replaceChildren();
  for (const pair of report.pairs) {
    SIDES.forEach((side, index) => {
      const numbers = pair.sides[side];
      const row = el("tr", { "data-route": pair.key, "data-side": side, class: "side-" + side });
      if (index === 0) {
        row.append(el("td", { class: "key", rowspan: "2" }, pair.key));
        row.append(el("td", { class: "mode mode-" + pair.mode.split(" ")[0], rowspan: "2" }, pair.mode));
      }
      row.append(
        el("td", { class: "side" }, side),
        el("td", { class: "num requests" }, String(numbers.requests)),
        el("td", { class: "num rate" }, fmt(numbers.rate_per_second, 1, 2)),
        el("td", { class: "num errors" + (numbers.errors > 0 ? " bad" : "") }, percentText(numbers.error_share)),
        el("td", { class: "num" }, fmt(numbers.p50_seconds, 1000, 1)),
        el("td", { class: "num" }, fmt(numbers.p95_seconds, 1000, 1)),
      );
      if (index === 0) {
        const start = report.window_start, end = report.window_end;
        const rate = el("td", { rowspan: "2", class: "chart-cell" });
        rate.append(chart(pair.key, pair.series, "rate_per_second", 1, "req/s", start, end));
        const p95 = el("td", { rowspan: "2", class: "chart-cell" });
        p95.append(chart(pair.key, pair.series, "p95_seconds", 1000, "ms", start, end));
        row.append(rate, p95);
      }
      tbody.append(row);
    });
  }
  document.getElementById("pairs-state").textContent = report.pairs.length
    ? "Charts: one step every snapshot (10 s) over the window; 5xx is the share of a side's requests."
    : "No paired routes: mount an async twin of a legacy route to compare them.";
}

// -- ranking ------------------------------------------------------------------------

function renderReport(report) {
  const tbody = document.querySelector("#ranking tbody");
  tbody.replaceChildren();
  report.candidates.forEach((c, index) => {
    const row = el("tr", { "data-route": c.key });
    row.append(
      el("td", { class: "num" }, String(index + 1)),
      el("td", { class: "key" }, c.key),
      el("td", { class: "mode" }, c.mode),
      el("td", { class: "num" }, fmt(c.rate_per_second, 1, 2)),
      el("td", { class: "num" }, fmt(c.blocked_thread_seconds_per_second, 1, 3)),
      el("td", { class: "num" }, fmt(c.p50_seconds, 1000, 1)),
      el("td", { class: "num" }, fmt(c.p95_seconds, 1000, 1)),
      el("td", { class: "num" }, fmt(c.mean_queue_wait_seconds, 1000, 2)),
      el("td", { class: "num" }, c.db_share === null ? "–" : fmt(c.db_share, 100, 0) + "%"),
      el("td", { class: "num" }, c.cpu_share === null ? "–" : fmt(c.cpu_share, 100, 0) + "%"),
      el("td", { class: "note" }, c.loop_blocked_seconds_per_second > 0
        ? "blocks the event loop: stalls every request of the worker"
        : c.async_will_not_help ? "CPU-bound: async will not help" : ""),
    );
    tbody.append(row);
  });
  document.getElementById("ranking-state").textContent = report.candidates.length
    ? report.formula + ". The CPU-bound note needs CPU ≥ 50% over at least " +
      report.cpu_bound_min_requests + " thread-timed requests in the window."
    : "No legacy traffic in the window.";
  const migrated = document.getElementById("migrated");
  migrated.replaceChildren();
  for (const m of report.migrated) {
    migrated.append(el("li", { "data-route": m.key },
      m.key + ": " + fmt(m.rate_per_second, 1, 2) + " req/s, 5xx " + percentText(m.error_share) +
      ", p95 " + fmt(m.p95_seconds, 1000, 1) + " ms"));
  }
  if (!report.migrated.length) migrated.append(el("li", { class: "sub" }, "none yet"));
  const list = document.getElementById("regressions");
  list.replaceChildren();
  for (const r of report.regressions) {
    list.append(el("li", { "data-route": r.key },
      r.key + " (" + r.implementation + "): blocked the loop " + r.loop_blocked_seconds.toFixed(3) +
      " s in " + r.requests_blocking + " requests" + (r.where ? " — " + r.where : "")));
  }
  if (!report.regressions.length) list.append(el("li", { class: "sub" }, "none seen"));
  const covered = Math.round(report.window_seconds);
  document.getElementById("window-state").textContent = report.window_filled
    ? "covering the last " + covered + " s"
    : "covering only the last " + covered + " s (asked for " + Math.round(report.requested_window_seconds) +
      " s): the gateway has not run that long";
}

// -- shadow -------------------------------------------------------------------------

function renderShadow(found) {
  const tbody = document.querySelector("#shadow tbody");
  const list = document.getElementById("shadow-examples");
  tbody.replaceChildren();
  list.replaceChildren();
  for (const row of found.routes) {
    const tr = el("tr", { "data-route": row.route });
    tr.append(el("td", {}, row.route));
    for (const [value, alarm] of [[row.compared, false], [row.same, false],
      [row.different, row.different > 0], [row.candidate_errors, row.candidate_errors > 0],
      [row.skipped, false]]) {
      tr.append(el("td", { class: alarm ? "num bad" : "num" }, String(value)));
    }
    tr.append(el("td", {}, (row.noise || []).join(", ") || "-"));
    tbody.append(tr);
    for (const example of (row.examples || []).slice(0, 3)) {
      if (example.outcome === "same") continue;
      const found = example.detail || {};
      const parts = [].concat(found.fields || [], found.writes || [], found.work || []);
      if (found.status) parts.push("status legacy " + found.status.legacy + ", async " + found.status.async);
      const failures = found.failure ? { async: found.failure } : (found.failures || {});
      for (const [side, failure] of Object.entries(failures)) {
        parts.push(side + " raised " + failure.type + (failure.where ? " at " + failure.where : ""));
      }
      if (found.error && !found.failure) parts.push(found.error);
      const item = el("li", { "data-route": row.route });
      item.append(el("span", { class: "when", title: local(example.at) }, when(example.at)), " ",
        el("code", {}, example.method + " " + example.path), ": " + parts.join("; "));
      // The whole message, as text: it may span lines (a validation error's details).
      for (const failure of Object.values(failures)) {
        item.append(el("pre", { class: "failure" }, failure.message));
      }
      list.append(item);
    }
  }
  document.getElementById("shadow-state").textContent = found.routes.length
    ? "Counts from " + (found.scope || "this worker") + "."
    : "No route has been shadowed yet: choose shadow as a route's mode.";
}

async function refresh() {
  try {
    const routes = await api("/routes");
    if (routes.status === 200) renderRoutes(routes.body);
    else say("Routes unavailable (" + routes.status + "): " + detail(routes.body), "error");
    const windowValue = document.getElementById("window").value;
    const report = await api("/report?window=" + encodeURIComponent(windowValue));
    if (report.status === 200) {
      renderReport(report.body);
      renderPairs(report.body);
    } else {
      document.getElementById("ranking-state").textContent =
        "Report unavailable (" + report.status + "): " + detail(report.body);
    }
    // Shadow results tell what requests did: only an operator with a token sees them.
    const shadow = token() ? await api("/shadow") : { status: 401, body: null };
    if (shadow.status === 200) renderShadow(shadow.body);
    else if (shadow.status === 401 || shadow.status === 403) {
      document.querySelector("#shadow tbody").replaceChildren();
      document.getElementById("shadow-examples").replaceChildren();
      document.getElementById("shadow-state").textContent =
        "Shadow results need the admin token: enter it above." +
        (shadow.body ? " (" + detail(shadow.body) + ")" : "");
    } else document.getElementById("shadow-state").textContent =
      "Shadow results unavailable (" + shadow.status + "): " + detail(shadow.body);
    await refreshHistory();
    applySearch();
    document.getElementById("refreshed").textContent =
      "Refreshed " + utcNow() + ", every " + REFRESH_SECONDS + " s.";
  } catch (error) {
    document.getElementById("refreshed").textContent = "Gateway unreachable: " + error;
  }
}

function showTokenState() {
  document.getElementById("token-state").textContent = token()
    ? "token set for this tab"
    : "no token: read-only";
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  const value = input.value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  input.value = "";
  showTokenState();
  refresh();
});
document.getElementById("token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showTokenState();
});
document.getElementById("view").addEventListener("submit", (event) => event.preventDefault());
document.getElementById("search").addEventListener("input", (event) => {
  searchText = event.target.value.trim().toLowerCase();
  applySearch();
});
const windowSelect = document.getElementById("window");
if (params.get("window")) {
  const wanted = params.get("window");
  if (![...windowSelect.options].some((o) => o.value === wanted)) windowSelect.append(el("option", { value: wanted }, wanted));
  windowSelect.value = wanted;
}
windowSelect.addEventListener("change", refresh);

showTokenState();
refresh();
setInterval(refresh, REFRESH_SECONDS * 1000);
