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
