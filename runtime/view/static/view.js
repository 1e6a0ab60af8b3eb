// hud view: table sorting and filtering, and live pages. No markup is built from data here:
// live updates swap in the server's own (escaped) page, parsed inertly by DOMParser.
"use strict";

function cellValue(row, column, numeric) {
  const cell = row.cells[column];
  if (!cell) return numeric ? -Infinity : "";
  const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const value = parseFloat(raw);
  return Number.isNaN(value) ? -Infinity : value;
}

function sortBy(table, th) {
  const column = Array.from(th.parentNode.children).indexOf(th);
  const numeric = th.dataset.type === "num";
  const ascending = !th.classList.contains("sorted-asc");
  th.parentNode.querySelectorAll("th").forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, column, numeric);
    const y = cellValue(b, column, numeric);
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
  });
  rows.forEach((row) => body.appendChild(row));
}

function applyFilters(tableId) {
  const table = document.getElementById(tableId);
  if (!table) return;
  const text = document.querySelector(`.filter-text[data-table="${tableId}"]`);
  const needle = text ? text.value.trim().toLowerCase() : "";
  const selects = document.querySelectorAll(`.filter-select[data-table="${tableId}"]`);
  let shown = 0;
  const rows = Array.from(table.tBodies[0].rows);
  rows.forEach((row) => {
    let visible = !needle || (row.dataset.text || row.textContent.toLowerCase()).includes(needle);
    selects.forEach((select) => {
      if (select.value && row.dataset[select.dataset.key] !== select.value) visible = false;
    });
    row.hidden = !visible;
    if (visible) shown += 1;
  });
  const count = document.querySelector(`[data-count="${tableId}"]`);
  if (count) count.textContent = `${shown} of ${rows.length}`;
}

function wire(root) {
  root.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("thead th:not(.nosort)").forEach((th) => {
      th.addEventListener("click", () => sortBy(table, th));
    });
  });
  root.querySelectorAll(".filter-text, .filter-select").forEach((input) => {
    const run = () => applyFilters(input.dataset.table);
    input.addEventListener("input", run);
    input.addEventListener("change", run);
    run();
  });
}

// Live pages: poll a small stamp; when it changes, fetch this page again and swap <main>,
// keeping the filters as the reader left them. The body's data-live goes away when the
// job is over, and the polling with it.
function live() {
  let url = document.body.dataset.live;
  if (!url) return;
  const badge = document.getElementById("livebadge");
  if (badge) badge.hidden = false;
  let last = null;
  async function tick() {
    try {
      const stamp = (await (await fetch(url, { cache: "no-store" })).json()).stamp;
      if (last !== null && stamp !== last) await refresh();
      last = stamp;
    } catch (error) {
      // the viewer was stopped or restarted: keep trying, quietly
    }
    url = document.body.dataset.live;
    if (url) setTimeout(tick, 1500);
    else if (badge) badge.hidden = true;
  }
  tick();
}

async function refresh() {
  const response = await fetch(location.href, { cache: "no-store" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("main");
  const current = document.getElementById("main");
  if (!fresh || !current) return;
  const kept = {};
  current.querySelectorAll(".filter-text, .filter-select").forEach((input) => {
    kept[input.dataset.table + "/" + (input.dataset.key || "text")] = input.value;
  });
  const adopted = document.adoptNode(fresh);
  current.replaceWith(adopted);
  adopted.querySelectorAll(".filter-text, .filter-select").forEach((input) => {
    const value = kept[input.dataset.table + "/" + (input.dataset.key || "text")];
    if (value !== undefined) input.value = value;
  });
  wire(adopted);
  if (page.body.dataset.live) document.body.dataset.live = page.body.dataset.live;
  else delete document.body.dataset.live;
}

document.addEventListener("DOMContentLoaded", () => {
  wire(document);
  live();
});
