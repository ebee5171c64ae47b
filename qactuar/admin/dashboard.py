"""The dashboard page at `/` of the admin plane: one self-contained HTML document.

No request leaves the machine: the script and styles are inline, the charts are
drawn on canvases by that script, and every number comes from the admin API of
the page's own origin (so the Host/Origin checks and the Bearer token apply as to
any client; the token, when one is needed, is kept in the tab's sessionStorage).
"""

from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>qactuar admin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 18px; display: flex;
           gap: 18px; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 17px; margin: 0; }
  header .facts span { margin-right: 14px; opacity: .85; }
  main { padding: 14px 18px; display: grid; gap: 14px;
         grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  section { background: #fff; border-radius: 6px; padding: 10px 14px;
            box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 2px 0 8px; color: #4a5368; }
  canvas { width: 100%; height: 150px; display: block; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid #eceef2; }
  th:nth-child(2), td:nth-child(2), .left { text-align: left; }
  button { font: inherit; padding: 4px 10px; border-radius: 4px; border: 1px solid #9aa3b5;
           background: #fff; cursor: pointer; }
  button:hover { background: #e8ebf2; }
  .legend span { margin-right: 12px; font-size: 12px; }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
  #message { margin-left: auto; font-size: 13px; }
  #message.error { color: #ffb4b4; }
  pre { max-height: 260px; overflow: auto; font-size: 12px; background: #f7f8fa; padding: 8px; }
  #login { display: none; }
</style>
</head>
<body>
<header>
  <h1>qactuar</h1>
  <div class="facts"><span id="server">connecting…</span>
    <span>requests <b id="total-requests">0</b></span>
    <span>req/s <b id="rate">0</b></span>
    <span>connections <b id="connections">0</b></span>
    <span>restarts <b id="restarts">0</b></span></div>
  <button id="reload">Reload workers</button>
  <span>workers <button id="workers-down">&minus;</button> <b id="workers">-</b>
    <button id="workers-up">+</button></span>
  <form id="login"><input id="token" type="password" placeholder="admin token">
    <button>Use token</button></form>
  <span id="message"></span>
</header>
<main>
  <section><h2>Requests per second</h2><canvas id="chart-rate"></canvas>
    <div class="legend" id="legend-rate"></div></section>
  <section><h2>Latency percentiles (ms, upper bucket bound)</h2>
    <canvas id="chart-latency"></canvas><div class="legend" id="legend-latency"></div></section>
  <section><h2>Responses per second by status</h2><canvas id="chart-status"></canvas>
    <div class="legend" id="legend-status"></div></section>
  <section><h2>Connections</h2><canvas id="chart-connections"></canvas>
    <div class="legend" id="legend-connections"></div></section>
  <section class="wide"><h2>Processes</h2><table id="processes"><thead><tr>
    <th>pid</th><th>role</th><th>uptime s</th><th>requests</th><th>req/s</th>
    <th>connections</th><th>in flight</th><th>RSS MB</th><th>CPU %</th></tr></thead>
    <tbody></tbody></table></section>
  <section><h2>Apps</h2><table id="apps"><thead><tr><th class="left">route</th>
    <th>app</th><th class="left">source</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide" id="pod" hidden><h2>Pod: background beans</h2><table id="beans"><thead>
    <tr><th>pid</th><th>role</th><th>id</th><th class="left">label</th><th class="left">core</th>
    <th class="left">state</th><th>restarts</th><th class="left">last error</th><th></th></tr>
    </thead><tbody></tbody></table></section>
  <section><h2>Configuration</h2><pre id="config"></pre></section>
</main>
<script>
"use strict";
const $ = (selector) => document.querySelector(selector);
let token = sessionStorage.getItem("qactuar-admin-token") || "";
const POINTS = 120;

async function api(method, path, body) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {method, headers,
    body: body === undefined ? undefined : JSON.stringify(body)});
  const type = response.headers.get("content-type") || "";
  const data = type.startsWith("application/json") ? await response.json()
                                                    : await response.text();
  if (response.status === 401) $("#login").style.display = "inline";
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

function say(text, error) {
  const message = $("#message");
  message.textContent = text;
  message.className = error ? "error" : "";
}

class Chart {
  constructor(id, names, colours) {
    this.canvas = $("#chart-" + id);
    this.names = names;
    this.colours = colours;
    this.series = names.map(() => []);
    $("#legend-" + id).innerHTML = names.map((name, i) =>
      `<span><i style="background:${colours[i]}"></i>${name}</span>`).join("");
  }
  push(values) {
    values.forEach((value, i) => {
      this.series[i].push(value);
      if (this.series[i].length > POINTS) this.series[i].shift();
    });
    this.draw();
  }
  draw() {
    const canvas = this.canvas, ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.clientWidth * ratio;
    canvas.height = canvas.clientHeight * ratio;
    const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    g.clearRect(0, 0, w, h);
    const finite = this.series.flat().filter((v) => v !== null && isFinite(v));
    const top = Math.max(1, ...finite) * 1.1;
    g.strokeStyle = "#e3e6ec";
    g.fillStyle = "#6b7488";
    g.font = `${11 * ratio}px system-ui`;
    for (let i = 0; i <= 4; i++) {
      const y = h - (h - 12 * ratio) * i / 4 - 1;
      g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
      g.fillText((top * i / 4).toPrecision(3), 4, y - 3);
    }
    this.series.forEach((points, s) => {
      g.strokeStyle = this.colours[s];
      g.lineWidth = 2 * ratio;
      g.beginPath();
      let started = false;
      points.forEach((value, i) => {
        if (value === null || !isFinite(value)) { started = false; return; }
        const x = w - (points.length - 1 - i) * w / (POINTS - 1);
        const y = h - (h - 12 * ratio) * value / top - 1;
        if (started) g.lineTo(x, y); else g.moveTo(x, y);
        started = true;
      });
      g.stroke();
    });
  }
}

const charts = {
  rate: new Chart("rate", ["requests/s"], ["#2f6fde"]),
  latency: new Chart("latency", ["p50", "p90", "p99"], ["#2a9d5c", "#e0a326", "#d64545"]),
  status: new Chart("status", ["2xx", "3xx", "4xx", "5xx"],
                    ["#2a9d5c", "#2f6fde", "#e0a326", "#d64545"]),
  connections: new Chart("connections", ["open", "in flight"], ["#7a4fd6", "#d64592"]),
};

function percentile(counts, bounds, fraction) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= fraction * total) return i < bounds.length ? bounds[i] * 1000 : null;
  }
  return null;
}

function byClass(requests) {
  const classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0};
  for (const [key, count] of Object.entries(requests)) {
    const name = key.split(" ")[1];
    if (name in classes) classes[name] += count;
  }
  return classes;
}

let previous = null;
const processRequests = {};

function render(status, now) {
  const server = status.server, totals = status.totals;
  $("#server").textContent = `${server.version} · ${server.model} · ` +
    `up ${Math.round(server.uptime)} s · ${server.binds.join(", ")}`;
  $("#total-requests").textContent = totals.requests;
  $("#connections").textContent = totals.connections;
  $("#restarts").textContent = totals.restarts;
  const supervisor = status.processes.find((p) => p.role === "supervisor");
  $("#workers").textContent = supervisor ? supervisor.workers : "-";
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    const rate = (totals.requests - previous.status.totals.requests) / seconds;
    $("#rate").textContent = rate.toFixed(0);
    charts.rate.push([rate]);
    const delta = status.buckets.map((c, i) => c - previous.status.buckets[i]);
    charts.latency.push([0.5, 0.9, 0.99].map((f) =>
      percentile(delta, status.bucket_bounds, f)));
    const before = byClass(previous.status.requests), after = byClass(status.requests);
    charts.status.push(["2xx", "3xx", "4xx", "5xx"].map((c) =>
      (after[c] - before[c]) / seconds));
  }
  charts.connections.push([totals.connections, totals.in_flight]);
  const rows = status.processes.map((p) => {
    const earlier = processRequests[p.pid];
    let rate = "-";
    if (earlier && p.requests !== null && p.requests !== undefined)
      rate = ((p.requests - earlier.requests) * 1000 / (now - earlier.at)).toFixed(0);
    if (p.requests !== null && p.requests !== undefined)
      processRequests[p.pid] = {requests: p.requests, at: now};
    const cell = (v) => (v === null || v === undefined) ? "-" : v;
    return `<tr><td>${p.pid}</td><td>${p.role}${p.stopping ? " (stopping)" : ""}</td>` +
      `<td>${Math.round(p.uptime || 0)}</td><td>${cell(p.requests)}</td><td>${rate}</td>` +
      `<td>${cell(p.connections)}</td><td>${cell(p.in_flight)}</td>` +
      `<td>${p.rss_bytes ? (p.rss_bytes / 1e6).toFixed(1) : "-"}</td>` +
      `<td>${cell(p.cpu_percent)}</td></tr>`;
  });
  $("#processes tbody").innerHTML = rows.join("");
  previous = {status, at: now};
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}

async function refreshApps() {
  const answer = await api("GET", "/apps");
  $("#apps tbody").innerHTML = answer.apps.map((a, i) =>
    `<tr><td class="left">${escapeHtml(a.route)}</td><td>${escapeHtml(a.app)}</td>` +
    `<td class="left">${a.git ? escapeHtml(a.git + " " + (a.ref || "HEAD")) : "-"}</td>` +
    `<td><button data-app="${i}">Reload app</button></td></tr>`).join("");
  $("#apps tbody").querySelectorAll("button").forEach((button) => {
    button.onclick = () => act(() => {
      const a = answer.apps[Number(button.dataset.app)];
      const body = {route: a.route, app: a.app};
      if (a.git) { body.git = a.git; if (a.ref) body.ref = a.ref; }
      return api("POST", "/apps", body);
    }, "app reloaded");
  });
}

// The pod's beans, per process; the panel stays hidden while no process runs a pod.
async function refreshPod() {
  const answer = await api("GET", "/pod");
  const beans = answer.processes.flatMap((p) =>
    p.beans.map((b) => ({...b, pid: p.pid, role: p.role})));
  $("#pod").hidden = !answer.processes.some((p) => p.pod);
  $("#beans tbody").innerHTML = beans.map((b, i) =>
    `<tr><td>${b.pid}</td><td>${escapeHtml(b.role)}</td><td>${b.id}</td>` +
    `<td class="left">${escapeHtml(b.label || "-")}</td>` +
    `<td class="left">${escapeHtml(b.core)}</td><td class="left">${escapeHtml(b.state)}</td>` +
    `<td>${b.restarts}</td><td class="left">${escapeHtml(b.last_error || "")}</td>` +
    `<td><button data-bean="${i}" data-action="restart">Restart</button> ` +
    `<button data-bean="${i}" data-action="cancel">Cancel</button></td></tr>`).join("");
  $("#beans tbody").querySelectorAll("button").forEach((button) => {
    const bean = beans[Number(button.dataset.bean)], action = button.dataset.action;
    button.onclick = () => act(() => api("POST", "/pod/" + action, {id: bean.id, pid: bean.pid}),
                               `bean ${bean.id} in pid ${bean.pid}: ${action} done`);
  });
}

async function refreshConfig() {
  $("#config").textContent = JSON.stringify(await api("GET", "/config"), null, 1);
}

async function tick() {
  try {
    render(await api("GET", "/status"), performance.now());
  } catch (error) {
    say(error.message, true);
  }
}

async function act(action, done) {
  say("working…");
  try {
    await action();
    say(done);
    await refreshApps();
    await refreshPod();
  } catch (error) {
    say(error.message, true);
  }
}

$("#reload").onclick = () => act(() => api("POST", "/reload"), "reloaded: new workers serve");
$("#workers-up").onclick = () => act(() => api("POST", "/workers", {delta: 1}), "worker added");
$("#workers-down").onclick = () => act(() => api("POST", "/workers", {delta: -1}),
                                       "worker removed");
$("#login").onsubmit = (event) => {
  event.preventDefault();
  token = $("#token").value;
  sessionStorage.setItem("qactuar-admin-token", token);
  $("#login").style.display = "none";
  start();
};

function start() {
  tick();
  refreshApps().catch((error) => say(error.message, true));
  refreshConfig().catch(() => {});
  refreshPod().catch(() => {});
}
start();
setInterval(tick, 1000);
setInterval(() => refreshConfig().catch(() => {}), 5000);
setInterval(() => refreshPod().catch(() => {}), 2000);
</script>
</body>
</html>
"""


def page() -> bytes:
    return PAGE.encode()
