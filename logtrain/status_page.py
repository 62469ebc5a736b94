"""The status page's HTML: one small file with its style and script inline,
no external assets (its Content-Security-Policy allows nothing else). It reads
/status.json every two seconds and follows a live tail through /tail as
Server-Sent Events. Everything from outside (hostnames, drain names, log
lines) is put in the page with textContent, never parsed as markup."""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>logtrain</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0}h2{font-size:1.1em;margin:1.2em 0 .4em}h3{font-size:1em;margin:.6em 0 .2em}
table{border-collapse:collapse;background:#fff;margin-bottom:.5em}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left;font-variant-numeric:tabular-nums}
th{background:#eee}.muted{color:#777}.err{color:#b00}
.connected{color:#070}.failing,.paused{color:#b00;font-weight:bold}.idle{color:#777}
#tailbox{height:22em;overflow:auto;background:#111;color:#ddd;padding:4px 8px;
font:12px/1.35 ui-monospace,monospace;white-space:pre-wrap}
#tailbox .drop{color:#fb0}
</style></head>
<body>
<h1>logtrain <span id="state" class="muted">loading</span></h1>
<form id="login" hidden>
<p>This agent needs its API token. It is asked for once: the agent keeps a session in a
cookie scripts cannot read.</p>
<input id="token" type="password" autocomplete="off" placeholder="API_TOKEN" size="40">
<button id="loginbtn" type="submit">Open</button> <span id="loginerr" class="err"></span>
</form>
<div id="main" hidden>
<p id="totals" class="muted"></p>
<h2>Inputs</h2><table id="inputs"></table>
<h2>Drains</h2><table id="drains"></table>
<h2>Routes by datasource</h2><div id="routes"></div>
<div id="tailpart">
<h2>Live tail</h2>
<form id="tailform">
<input id="glob" placeholder="hostname glob, e.g. *.prod (several: space-separated)" size="50">
<button id="tailbtn" type="submit">Follow</button>
<button id="tailclear" type="button">Clear</button>
<span id="tailstate" class="muted"></span>
</form>
<div id="tailbox"></div>
<h3>Tails attached</h3><table id="tails"></table>
</div>
<p><button id="logout" type="button" hidden>Forget the token</button></p>
</div>
<script>
"use strict";
const TOKEN = __TOKEN__, TAILS = __TAILS__;
const $ = s => document.querySelector(s);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function num(n) { return n === null || n === undefined ? "" : Number(n).toLocaleString(); }
function table(sel, head, rows, stateCol) {
  const t = $(sel);
  t.replaceChildren();
  const tr = el("tr");
  head.forEach(h => tr.append(el("th", h)));
  t.append(tr);
  if (!rows.length) { const r = el("tr"); const d = el("td", "none", "muted"); d.colSpan = head.length; r.append(d); t.append(r); }
  rows.forEach(row => {
    const r = el("tr");
    row.forEach((c, i) => r.append(el("td", c, i === stateCol ? String(c) : "")));
    t.append(r);
  });
}
function showLogin() { $("#main").hidden = true; $("#login").hidden = false; $("#state").textContent = ""; $("#token").focus(); }
async function refresh() {
  let r;
  try { r = await fetch("/status.json", {credentials: "same-origin", cache: "no-store"}); }
  catch (e) { $("#state").textContent = "agent unreachable, retrying"; return; }
  if (r.status === 401) { showLogin(); return; }
  if (!r.ok) { $("#state").textContent = "status: HTTP " + r.status; return; }
  const s = await r.json();
  $("#login").hidden = true; $("#main").hidden = false; $("#logout").hidden = !TOKEN;
  $("#state").textContent = "v" + s.version + ", up " + num(s.uptime_seconds) + " s, updated " + new Date().toLocaleTimeString();
  $("#totals").textContent = num(s.received) + " frames received, " + num(s.dead_packets) + " dead packets (no route), " + num(s.routes) + " routes";
  table("#inputs", ["input", "frames", "rejected", "connections"],
        s.inputs.map(i => [i.describe, num(i.frames), num(i.rejected), num(i.connections)]));
  table("#drains", ["drain", "state", "connections", "buffered bytes", "spooled bytes", "sent", "dropped", "errors"],
        s.drains.map(d => [d.drain, d.state, num(d.connections), num(d.buffered_bytes), num(d.spooled_bytes), num(d.sent), num(d.dropped), num(d.errors)]), 1);
  const box = $("#routes");
  box.replaceChildren();
  s.datasources.forEach((ds, i) => {
    box.append(el("h3", ds.datasource + " (" + num(ds.count) + " routes" + (ds.count > ds.routes.length ? ", " + ds.routes.length + " shown" : "") + ")"));
    const t = el("table"); t.id = "routes" + i; box.append(t);
    table("#routes" + i, ["hostname", "drain"], ds.routes.map(x => [x.hostname || "",
      (x.endpoint || "") + (x.error ? (x.endpoint ? " (refused: " + x.error + ")" : x.error) : "")]));
  });
  if (s.tails) table("#tails", ["hostname", "format", "client", "queued bytes", "dropped lines"],
        s.tails.map(x => [x.hostname.join(" "), x.format, x.peer, num(x.queued_bytes), num(x.dropped)]));
}
$("#login").addEventListener("submit", async ev => {
  ev.preventDefault();
  const r = await fetch("/session", {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: $("#token").value})});
  $("#token").value = "";
  if (r.status === 204) { $("#loginerr").textContent = ""; refresh(); }
  else $("#loginerr").textContent = "wrong token";
});
$("#logout").addEventListener("click", async () => {
  await fetch("/session", {method: "DELETE", credentials: "same-origin"});
  stopTail(); showLogin();
});
let es = null;
function addLine(text, cls) {
  const box = $("#tailbox");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.append(el("div", text, cls));
  while (box.childElementCount > 1000) box.firstChild.remove();
  if (atEnd) box.scrollTop = box.scrollHeight;
}
function stopTail() {
  if (es) { es.close(); es = null; }
  $("#tailbtn").textContent = "Follow"; $("#tailstate").textContent = "";
}
$("#tailform").addEventListener("submit", ev => {
  ev.preventDefault();
  if (es) { stopTail(); return; }
  const globs = $("#glob").value.split(/[\\s,]+/).filter(Boolean);
  if (!globs.length) return;
  es = new EventSource("/tail?" + globs.map(g => "hostname=" + encodeURIComponent(g)).join("&"));
  $("#tailbtn").textContent = "Stop"; $("#tailstate").textContent = "connecting";
  es.onopen = () => { $("#tailstate").textContent = "following " + globs.join(" "); };
  es.onmessage = m => {
    const p = JSON.parse(m.data);
    addLine(p.time + " " + p.hostname + " " + p.tag + ": " + p.message);
  };
  es.addEventListener("dropped", m => addLine("-- " + JSON.parse(m.data).message + " --", "drop"));
  es.onerror = () => {
    $("#tailstate").textContent = es && es.readyState === EventSource.CLOSED
      ? "refused or ended (too many tails?)" : "connection lost, reconnecting";
  };
});
$("#tailclear").addEventListener("click", () => $("#tailbox").replaceChildren());
if (!TAILS) $("#tailpart").hidden = true;
refresh();
setInterval(refresh, 2000);
</script>
</body></html>
"""

_rendered: dict[tuple[bool, bool], bytes] = {}


def render(token: bool, tails: bool) -> bytes:
    """The page; ``token``: the agent has API_TOKEN; ``tails``: /tail is served."""
    key = (token, tails)
    page = _rendered.get(key)
    if page is None:
        page = _rendered[key] = PAGE.replace("__TOKEN__", "true" if token else "false") \
            .replace("__TAILS__", "true" if tails else "false").encode()
    return page
