const query = window.location.search;
const POLL_SECONDS = Number(document.body.dataset.pollSeconds);
const root = document.getElementById("root");
const LABELS = {planned: "Planned", sent: "Sent", failed: "Failed", uncertain: "Uncertain",
  opted_out: "Opted out", in_flight: "In flight", released: "Released to resend", delivered: "Delivered", network: "To network only",
  impossible: "Impossible", receipt_uncertain: "Receipt uncertain", waiting: "Still waiting"};
const KIND = {sent: "ok", delivered: "ok", failed: "bad", impossible: "bad", uncertain: "warn",
  receipt_uncertain: "warn", waiting: "warn", in_flight: "warn", released: "warn"};
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
    view.live ? el("span", {class: "live", id: "live"}, "  ● updating every " + POLL_SECONDS + " s") : "",
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
      .concat(task.reported ? [] : ["in_flight"]).concat(task.reported && !t.released ? [] : ["released"]);
    const deliveryKeys = ["delivered", "network", "impossible", "receipt_uncertain", "waiting"];
    const encodings = Object.entries(task.encodings).map(([e, n]) => n + " " + e).join(", ");
    const groupKeys = ["planned", "sent", "failed", "uncertain", "opted_out", "in_flight", "released", "delivered",
      "network", "impossible", "receipt_uncertain", "waiting"];
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
  if (view.live) setTimeout(load, POLL_SECONDS * 1000);
}
async function load() {
  try { render(await getJSON("api/delivery" + query)); }
  catch (error) { root.replaceChildren(el("p", {class: "error"}, "Cannot load the delivery view: " + error.message)); }
}
load();
