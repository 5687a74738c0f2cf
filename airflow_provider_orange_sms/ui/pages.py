"""
The pages' HTML: static shells whose inline script fetches the JSON next to them and renders it
with ``textContent`` (no data is interpolated into markup, no external script or stylesheet: the
pages work on a closed network). The usage chart is SVG built by the server from numbers only.
"""

from __future__ import annotations

#: Seconds between two refreshes while SMS of the run still wait for receipts.
POLL_SECONDS = 5

_STYLE = """
:root { color-scheme: light dark; --fg: #1a1a1a; --muted: #666; --line: #ddd; --card: #fafafa;
  --ok: #2e7d32; --bad: #c62828; --warn: #b26a00; --accent: #ff7900; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --muted: #aaa; --line: #444; --card: #222; } }
body { font: 14px/1.4 system-ui, sans-serif; color: var(--fg); margin: 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 8px; }
.muted { color: var(--muted); } .live { color: var(--accent); }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.tile { border: 1px solid var(--line); background: var(--card); border-radius: 6px; padding: 6px 12px; min-width: 90px; }
.tile b { display: block; font-size: 20px; } .tile.ok b { color: var(--ok); } .tile.bad b { color: var(--bad); }
.tile.warn b { color: var(--warn); }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { border-bottom: 1px solid var(--line);
  padding: 4px 10px; text-align: right; } th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; } .card { border: 1px solid var(--line); border-radius: 8px; padding: 12px; margin: 12px 0; }
a.button { display: inline-block; border: 1px solid var(--accent); color: var(--accent); border-radius: 4px;
  padding: 3px 10px; text-decoration: none; margin-left: 8px; }
svg.chart { max-width: 760px; width: 100%; } svg .axis, svg .legend { font-size: 11px; fill: var(--muted); }
svg .base { stroke: var(--line); }
"""

_HELPERS = """
function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of [].concat(children ?? [])) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}
function tile(label, value, kind) {
  return el("div", {class: "tile " + (kind || ""), "data-tile": label}, [el("b", {}, value), label]);
}
function table(headers, rows, name) {
  return el("table", {"data-table": name}, [
    el("thead", {}, el("tr", {}, headers.map(h => el("th", {}, h)))),
    el("tbody", {}, rows.map(r => el("tr", {}, r.map(c => el("td", {}, c))))),
  ]);
}
async function getJSON(url) {
  const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
  if (!response.ok) throw new Error(response.status + " " + (await response.text()).slice(0, 200));
  return response.json();
}
"""

_DELIVERY_SCRIPT = """
const query = window.location.search;
const root = document.getElementById("root");
const LABELS = {planned: "Planned", sent: "Sent", failed: "Failed", uncertain: "Uncertain",
  opted_out: "Opted out", in_flight: "In flight", delivered: "Delivered", network: "To network only",
  impossible: "Impossible", receipt_uncertain: "Receipt uncertain", waiting: "Still waiting"};
const KIND = {sent: "ok", delivered: "ok", failed: "bad", impossible: "bad", uncertain: "warn",
  receipt_uncertain: "warn", waiting: "warn", in_flight: "warn"};
function waitingFor(waiting) {
  if (waiting && waiting.for === "send_window")
    return "waits for its send window" + (waiting.until ? " until " + waiting.until : "");
  if (waiting && waiting.for === "balance") return "waits for the balance to be topped up";
  return "waits for its trigger";
}
function render(view) {
  const head = el("div", {}, [
    el("h1", {}, "SMS delivery"),
    el("span", {class: "muted"}, view.dag_id + " / " + view.run_id + " — run " + (view.run_state || "?")),
    el("a", {class: "button", href: "api/delivery.csv" + query, download: ""}, "Export CSV"),
    view.live ? el("span", {class: "live", id: "live"}, "  ● updating every __POLL__ s") : "",
  ]);
  const parts = [head];
  if (!view.tasks.length) parts.push(view.run_finished
    ? el("p", {id: "empty"}, "No SMS send task in this run (no sms_plan XCom).")
    : el("p", {id: "not-started"}, "The SMS send has not started yet (run " + (view.run_state || "?") +
      "): this view shows it once it does."));
  for (const task of view.tasks) {
    const t = task.totals;
    const title = task.task_id + (task.map_index >= 0 ? " [" + task.map_index + "]" : "");
    const sendKeys = ["planned", "sent", "failed", "uncertain", "opted_out"]
      .concat(task.reported ? [] : ["in_flight"]);
    const deliveryKeys = ["delivered", "network", "impossible", "receipt_uncertain", "waiting"];
    const encodings = Object.entries(task.encodings).map(([e, n]) => n + " " + e).join(", ");
    const groupKeys = ["planned", "sent", "failed", "uncertain", "opted_out", "in_flight", "delivered", "network",
      "impossible", "receipt_uncertain", "waiting"];
    const shown = groupKeys.filter(k => k === "planned" || task.by_country_encoding.some(g => g.sms[k]));
    const handled = task.progress ? task.progress.handled : 0;
    const handledSoFar = handled + " of " + t.planned + " recipient(s) handled so far (sent ledger)";
    const status = task.reported ? "" : task.state === "deferred" ? " — " + waitingFor(task.waiting) +
        (handled ? "; " + handledSoFar : "")
      : handled ? " — sending: " + handledSoFar
      : task.state === "running" ? " — sending, nothing recorded yet" : " — nothing sent yet";
    parts.push(el("div", {class: "card", "data-task": task.task_id}, [
      el("h2", {}, [title, el("span", {class: "muted", "data-progress": task.reported ? "reported" : "sending"},
        "  " + (task.state || "not started") + status)]),
      el("div", {class: "tiles"}, sendKeys.map(k => tile(LABELS[k], t[k], KIND[k]))),
      el("div", {class: "tiles"}, deliveryKeys.map(k => tile(LABELS[k], t[k], KIND[k]))),
      el("p", {class: "muted", "data-cost": ""}, "Cost: " + t.segments + " segment(s) planned" +
        (encodings ? " (" + encodings + ")" : "") + ", " + task.segments.sent + " sent"),
      el("p", {class: "muted"}, "Per country and encoding: SMS (segments)."),
      table(["Country", "Encoding"].concat(shown.map(k => LABELS[k])),
        task.by_country_encoding.map(g => [g.country, g.encoding].concat(
          shown.map(k => g.sms[k] + " (" + g.segments[k] + ")"))), "by-country-encoding"),
      el("h2", {}, "Not delivered (" + task.undelivered_count + ")"),
      task.undelivered.length ? table(["Recipient", "Country", "Encoding", "Send", "Delivery", "Last receipt",
        "Received"], task.undelivered.map(r => [r.recipient, r.country, r.encoding, r.status, r.delivery || "—",
          r.receipt_status || "—", r.received_at || "—"]), "undelivered")
        : el("p", {class: "muted"}, "None."),
      task.undelivered_count > task.undelivered.length
        ? el("p", {class: "muted"}, "The first " + task.undelivered.length + " are listed; the CSV has all.") : "",
    ]));
  }
  root.replaceChildren(...parts);
  document.body.dataset.loaded = "true";
  if (view.live) setTimeout(load, __POLL__ * 1000);
}
async function load() {
  try { render(await getJSON("api/delivery" + query)); }
  catch (error) { root.replaceChildren(el("p", {class: "error"}, "Cannot load the delivery view: " + error.message)); }
}
load();
""".replace("__POLL__", str(POLL_SECONDS))

_ACCOUNT_SCRIPT = """
const root = document.getElementById("root");
function section(title, part, render) {
  const body = part == null ? el("p", {class: "muted"}, "—")
    : part.forbidden ? el("p", {class: "muted"}, "Not shown: " + part.forbidden)
    : part.error ? el("p", {class: "error"}, "Orange's API did not answer: " + part.error)
    : render(part);
  return el("div", {class: "card", "data-section": title}, [el("h2", {}, title), body]);
}
function render(view) {
  const receiver = view.receiver;
  const sub = view.subscription || {};
  const chart = document.createElement("div");
  chart.innerHTML = view.usage.chart;  // server-built SVG of numbers and country codes only
  root.replaceChildren(
    el("h1", {}, "Orange SMS"),
    el("p", {class: "muted"}, "Connection " + view.conn_id + " — Orange's answers are kept " +
      view.cache_seconds + " s"),
    section("Balance", view.balance, p => table(["Country", "Units left", "Expires", "Contract"],
      p.rows.map(r => [r.country, r.units, r.expires || "—", r.description || ""]), "balance")),
    section("Usage this month (" + view.usage.month + ")", view.usage, () => el("div", {}, [chart,
      el("p", {class: "muted"}, "SMS sent per day and recipient country by this Airflow's send tasks.")])),
    section("Orange's usage count", view.orange_usage, p => table(["Country", "SMS (all applications)"],
      p.rows.map(r => [r.country, r.usage]), "orange-usage")),
    section("Delivery receipts", sub, s => el("div", {}, [
      table(["", ""], [
        ["Receiver secret ([orange_sms] delivery_receipts_secret)", receiver.secret_configured ? "configured" : "NOT configured"],
        ["Public URL (Variable orange_sms_receipts_public_url)", receiver.public_url || "not set"],
        ["Subscription", s.id ? s.id + " (" + s.source + ")" : "none found (" + s.source + ")"],
        ["Sender", s.sender_address ? s.sender_address + (s.country ? " (" + s.country + ")" : "") : null],
        ["Recorded", s.recorded_at ? s.recorded_at + (s.recorded_by ? " by " + s.recorded_by : "") : null],
        ["Orange posts receipts to", s.notify_url || (s.error ? "unknown: " + s.error +
          (s.recorded_notify_url ? " (recorded: " + s.recorded_notify_url + ")" : "") : "—")],
      ].filter(row => row[1] != null), "receiver")])),
    section("Latest receipts", view.receipts, p => p.rows.length ? table(["Received", "Recipient", "Status", "Resource id"],
      p.rows.map(r => [r.time, r.recipient, r.status, r.resource_id || "—"]), "receipts") : el("p", {}, "None yet.")),
    section("Latest replies", view.replies, p => p.rows.length ? table(["Received", "From", "Message"],
      p.rows.map(r => [r.time, r.sender, r.message]), "replies") : el("p", {}, "None yet.")),
  );
  document.body.dataset.loaded = "true";
}
async function load() {
  try { render(await getJSON("api/account" + window.location.search)); }
  catch (error) { root.replaceChildren(el("p", {class: "error"}, "Cannot load the page: " + error.message)); }
}
load();
setInterval(load, 60000);
"""


def _page(title: str, script: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><div id='root'><p class='muted'>Loading…</p></div>"
        f"<script>{_HELPERS}{script}</script></body></html>"
    )


def delivery_page() -> str:
    """The delivery view's HTML shell."""
    return _page("SMS delivery", _DELIVERY_SCRIPT)


def account_page() -> str:
    """The "Orange SMS" page's HTML shell."""
    return _page("Orange SMS", _ACCOUNT_SCRIPT)
