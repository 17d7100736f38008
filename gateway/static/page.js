// The operator's page: reads the admin JSON API, flips routes with the operator's token.
// Every value from the server goes in through textContent, never as HTML.
"use strict";

const PREFIX = document.body.dataset.prefix;
const TOKEN_KEY = "gateway.adminToken";
const params = new URLSearchParams(location.search);
const REFRESH_SECONDS = Math.max(1, Number(params.get("refresh")) || 5);
const rows = new Map(); // route key -> {row, modeCell}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
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

function describe(route) {
  if (route.mode === "canary") return "canary " + route.percent + "% async";
  return route.mode;
}

function controls(route) {
  const form = el("form", { "data-route": route.key, "aria-label": "flip " + route.key });
  const mode = el("select", { name: "mode", "aria-label": "mode for " + route.key });
  for (const value of ["legacy", "async", "canary"]) {
    mode.append(el("option", { value }, value));
  }
  mode.value = route.mode;
  const percent = el("input", {
    name: "percent", type: "number", min: "0", max: "100", step: "any",
    "aria-label": "canary percent for " + route.key, placeholder: "%",
  });
  percent.value = route.mode === "canary" ? String(route.percent) : "";
  percent.disabled = route.mode !== "canary";
  mode.addEventListener("change", () => {
    percent.disabled = mode.value !== "canary";
  });
  const reason = el("input", {
    name: "reason", class: "reason", type: "text", maxlength: "1000",
    placeholder: "reason (for the history)", "aria-label": "reason for " + route.key,
  });
  const apply = el("button", { type: "submit", class: "apply" }, "Apply");
  form.append(mode, percent, reason, apply);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await flip(route.key, mode.value, percent.value, reason.value, apply)) reason.value = "";
  });
  return form;
}

async function flip(key, mode, percent, reason, button) {
  if (!token()) {
    say("Enter the admin token first: flips need one.", "error");
    return false;
  }
  const body = { mode, reason };
  body.percent = mode === "canary" ? Number(percent) : null;
  button.disabled = true;
  try {
    const result = await api("/routes/" + encodeURIComponent(key), {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (result.status === 200) {
      say(key + " now serves: " + (mode === "canary" ? "canary " + body.percent + "% async" : mode), "ok");
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

function renderRoutes(data) {
  const tbody = document.querySelector("#routes tbody");
  const seen = new Set();
  for (const route of data.routes) {
    seen.add(route.key);
    let entry = rows.get(route.key);
    if (!entry) {
      const row = el("tr", { "data-route": route.key });
      row.append(el("td", { class: "key" }, route.key));
      const impls = el("td", {}, route.implementations.join(" + "));
      impls.title = [route.legacy, route.async].filter(Boolean).join("\n");
      row.append(impls);
      const modeCell = el("td", { class: "mode" });
      row.append(modeCell);
      const flipCell = el("td");
      if (route.paired) flipCell.append(controls(route));
      else flipCell.append(el("span", { class: "sub" }, "only " + route.implementations[0]));
      row.append(flipCell);
      tbody.append(row);
      entry = { row, modeCell };
      rows.set(route.key, entry);
    }
    entry.modeCell.textContent = describe(route);
    entry.modeCell.className = "mode mode-" + route.mode;
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

function fmt(value, scale, digits) {
  if (value === null || value === undefined) return "–";
  return (value * scale).toFixed(digits);
}

function renderReport(report) {
  const tbody = document.querySelector("#ranking tbody");
  tbody.replaceChildren();
  report.candidates.forEach((c, index) => {
    const row = el("tr", { "data-route": c.key });
    row.append(
      el("td", { class: "num" }, String(index + 1)),
      el("td", { class: "key" }, c.key),
      el("td", { class: "num" }, fmt(c.rate_per_second, 1, 2)),
      el("td", { class: "num" }, fmt(c.blocked_thread_seconds_per_second, 1, 3)),
      el("td", { class: "num" }, fmt(c.p50_seconds, 1000, 1)),
      el("td", { class: "num" }, fmt(c.p95_seconds, 1000, 1)),
      el("td", { class: "num" }, fmt(c.mean_queue_wait_seconds, 1000, 2)),
      el("td", { class: "num" }, c.db_share === null ? "–" : fmt(c.db_share, 100, 0) + "%"),
      el("td", { class: "num" }, c.cpu_share === null ? "–" : fmt(c.cpu_share, 100, 0) + "%"),
      el("td", { class: "note" }, c.async_will_not_help ? "CPU-bound: async will not help" : ""),
    );
    tbody.append(row);
  });
  document.getElementById("ranking-state").textContent = report.candidates.length
    ? "Measured over the last " + Math.round(report.window_seconds) + " s; " + report.formula + "."
    : "No legacy traffic measured yet.";
  const list = document.getElementById("regressions");
  list.replaceChildren();
  for (const r of report.regressions) {
    list.append(el("li", {},
      r.key + " (" + r.implementation + "): blocked the loop " + r.loop_blocked_seconds.toFixed(3) +
      " s in " + r.requests_blocking + " requests" + (r.where ? " — " + r.where : "")));
  }
  if (!report.regressions.length) list.append(el("li", { class: "sub" }, "none seen"));
}

async function refresh() {
  try {
    const routes = await api("/routes");
    if (routes.status === 200) renderRoutes(routes.body);
    else say("Routes unavailable (" + routes.status + "): " + detail(routes.body), "error");
    const report = await api("/report");
    if (report.status === 200) renderReport(report.body);
    else document.getElementById("ranking-state").textContent =
      "Ranking unavailable (" + report.status + "): " + detail(report.body);
    document.getElementById("refreshed").textContent =
      "Refreshed " + new Date().toLocaleTimeString() + ", every " + REFRESH_SECONDS + " s.";
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

showTokenState();
refresh();
setInterval(refresh, REFRESH_SECONDS * 1000);
