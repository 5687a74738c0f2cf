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
