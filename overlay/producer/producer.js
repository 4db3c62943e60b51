// Producer pages: sortable tables, the round-plan editor, the reset confirmation, print.
// Everything here is progressive: the pages work (less comfortably) without it.

import { $, $$ } from "../common/dom.js";

// -- sortable tables: <table class="sortable"> with <th data-sort="num|text"><button>
// Cells sort by their data-v attribute when present, else by their text.

const collator = new Intl.Collator(document.documentElement.lang || "zh-CN", { numeric: true });

function cellValue(row, index, kind) {
  const cell = row.cells[index];
  if (!cell) return kind === "num" ? -Infinity : "";
  const raw = cell.dataset.v ?? cell.textContent.trim();
  if (kind === "num") {
    const n = Number(String(raw).replace(/[^0-9.\-]/g, ""));
    return Number.isFinite(n) ? n : -Infinity;
  }
  return raw;
}

function sortBy(table, th) {
  const headers = $$("thead th", table);
  const index = headers.indexOf(th);
  const kind = th.dataset.sort;
  // numbers sort largest first on the first click, text A→Z
  const first = kind === "num" ? "descending" : "ascending";
  const next = th.getAttribute("aria-sort") === first
    ? (first === "ascending" ? "descending" : "ascending")
    : first;
  for (const h of headers) if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none");
  th.setAttribute("aria-sort", next);
  const dir = next === "ascending" ? 1 : -1;
  const body = table.tBodies[0];
  const rows = [...body.rows].map((row, i) => ({ row, i, v: cellValue(row, index, kind) }));
  rows.sort((x, y) => {
    const c = kind === "num" ? x.v - y.v : collator.compare(x.v, y.v);
    return c ? c * dir : x.i - y.i;
  });
  body.append(...rows.map((r) => r.row));
}

for (const table of $$("table.sortable")) {
  for (const th of $$("thead th[data-sort]", table)) {
    const button = $("button.sort", th) || th;
    button.addEventListener("click", () => sortBy(table, th));
  }
}

// -- the round plan: add and remove rows

const plan = $("#plan");
const template = $("#plan-row-template");
if (plan && template) {
  const body = plan.tBodies[0];
  $("[data-plan-add]")?.addEventListener("click", () => {
    const row = template.content.firstElementChild.cloneNode(true);
    body.append(row);
    $("input", row)?.focus();
  });
  plan.addEventListener("click", (event) => {
    const button = event.target.closest("[data-plan-remove]");
    if (!button) return;
    const row = button.closest("tr");
    if (body.rows.length > 1) {
      row.remove();
    } else {
      // keep one (empty) row so there is always somewhere to type
      for (const input of $$("input", row)) input.value = input.defaultValue = input.name === "plan_duration" ? "300" : "";
    }
  });
}

// -- colour inputs show their hex value, and their side's swatch follows

for (const input of $$('input[type="color"]')) {
  const out = input.parentElement && $("output", input.parentElement);
  const swatch = input.closest("fieldset")?.querySelector("legend .swatch rect");
  input.addEventListener("input", () => {
    if (out) out.textContent = input.value;
    swatch?.setAttribute("fill", input.value);
  });
}

// -- the rehearsal reset: enabled only once the slug is typed exactly

for (const form of $$("form.reset-form")) {
  const input = $('input[name="confirm"]', form);
  const button = $('button[type="submit"]', form);
  const update = () => { button.disabled = input.value.trim() !== form.dataset.slug; };
  input.addEventListener("input", update);
  update();
}

// -- print

for (const button of $$("[data-print]")) button.addEventListener("click", () => window.print());
