// The season poll on air (a widget of /overlay/{show}?widgets=…,poll&poll={slug}, or alone
// on /overlay/poll/{poll}). It reads GET /api/polls/{poll} every POLL_MS and shows the top
// N options ranked: rows slide to their new place, bars grow and numbers count up
// (transform and opacity only). While a "reveal at close" poll is open the server sends
// no split (`votes: null`): the widget shows the options and the number of ballots only.
// Like the rest of the overlay it never shows an error on air: a failed read keeps the
// last good picture and tries again later.

import { $, el, keyedList, setAttr, setText } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";

const POLL_MS = 2000;
const MAX_BACKOFF_MS = 15000;
const STAGE_W = 1920;
const STAGE_H = 1080;

const root = $("#poll");
const slug = root.dataset.poll;
const params = new URLSearchParams(location.search);
// Beside a show's widgets the panel keeps to 4 rows by default (clear of a two-line
// question in the lower third); alone it shows 5. `&top=N` chooses (1–10).
const alone = document.body.classList.contains("poll-only");
const top = Math.max(1, Math.min(10, Number(params.get("top")) || (alone ? 5 : 4)));
const rows = $(".pw-rows", root);
const qr = $(".pw-qr", root);
qr.addEventListener("error", () => qr.remove()); // never a broken image on air

// Alone on /overlay/poll/{poll}, the widget fits the 1920×1080 stage to the source itself
// (inside a show's overlay, overlay.js does).
if (alone) {
  const stage = $("#stage");
  const fit = () => {
    stage.style.transform = `scale(${Math.min(window.innerWidth / STAGE_W, window.innerHeight / STAGE_H) || 1})`;
  };
  window.addEventListener("resize", fit);
  fit();
}

function countUp(node) {
  let shown = 0;
  let raf = 0;
  return (value) => {
    cancelAnimationFrame(raf);
    const from = shown;
    const start = performance.now();
    const step = (now) => {
      const k = Math.min(1, (now - start) / 700);
      shown = Math.round(from + (value - from) * (1 - (1 - k) ** 3));
      setText(node, fmtInt(shown));
      raf = k < 1 ? requestAnimationFrame(step) : 0;
    };
    raf = requestAnimationFrame(step);
  };
}

const counters = new WeakMap();

function row(option) {
  const votes = el("span", { class: "pw-votes" });
  const li = el(
    "li",
    { class: "pw-row", data: { id: option.id } },
    el("span", { class: "pw-rank" }),
    el("span", { class: "pw-main" }, el("span", { class: "pw-label" }), el("span", { class: "pw-bar" }, el("span", { class: "pw-fill" }))),
    el("span", { class: "pw-num" }, votes, el("span", { class: "pw-pct" })),
  );
  counters.set(li, countUp(votes));
  return li;
}

function update(li, option, ctx) {
  setText($(".pw-rank", li), ctx.revealed && ctx.total ? String(ctx.rank(option)) : "");
  setText($(".pw-label", li), option.label);
  setAttr(li, "data-votes", option.votes == null ? "" : option.votes);
  li.classList.toggle("lead", ctx.revealed && ctx.rank(option) === 1 && option.votes > 0);
  const share = ctx.total ? (option.votes || 0) / ctx.total : 0;
  const width = ctx.max ? (option.votes || 0) / ctx.max : 0;
  $(".pw-fill", li).style.transform = `scaleX(${ctx.revealed && width ? Math.max(0.02, width) : 0})`;
  setText($(".pw-pct", li), ctx.revealed ? `${Math.round(share * 100)}%` : "");
  if (ctx.revealed && li.dataset.shown !== String(option.votes)) {
    li.dataset.shown = String(option.votes);
    counters.get(li)(option.votes);
  }
}

const render = keyedList(rows, { create: row, update });

// Rows that change places slide there (FLIP): measure, reorder, then play back the offset.
function renderSliding(items, ctx) {
  const before = new Map([...rows.children].map((n) => [n.dataset.id, n.getBoundingClientRect().top]));
  render(items, ctx);
  for (const node of rows.children) {
    const was = before.get(node.dataset.id);
    const now = node.getBoundingClientRect().top;
    if (was === undefined) {
      node.animate([{ opacity: 0, transform: "translateX(-24px)" }, { opacity: 1, transform: "none" }], { duration: 500, easing: "ease-out" });
    } else if (Math.abs(was - now) > 1) {
      const scale = rows.getBoundingClientRect().height / (rows.offsetHeight || 1) || 1;
      node.animate([{ transform: `translateY(${(was - now) / scale}px)` }, { transform: "none" }], { duration: 600, easing: "cubic-bezier(0.2, 0.7, 0.2, 1)" });
    }
  }
}

function paint(view) {
  const revealed = view.options.every((o) => o.votes !== null);
  const order = view.options.map((o) => o.id);
  const ranked = revealed ? [...view.options].sort((x, y) => y.votes - x.votes || order.indexOf(x.id) - order.indexOf(y.id)) : view.options;
  const shown = ranked.slice(0, top);
  const total = revealed ? view.options.reduce((n, o) => n + o.votes, 0) : 0;
  const max = revealed ? Math.max(0, ...view.options.map((o) => o.votes)) : 0;
  const rank = (option) => 1 + view.options.filter((o) => o.votes > option.votes).length;
  setText($(".pw-title", root), view.title);
  setText($(".pw-tag", root), t(view.status === "open" ? "poll.on_air_open" : "poll.on_air_closed"));
  setAttr(root, "data-status", view.status);
  setAttr(root, "data-revealed", String(revealed));
  renderSliding(shown, { revealed, total, max, rank });
  setText($(".pw-ballots", root), revealed ? t("poll.ballots", { n: fmtInt(view.ballots) }) : t("poll.sealed_on_air", { n: fmtInt(view.ballots) }));
  root.classList.add("live");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run() {
  let wait = POLL_MS;
  for (;;) {
    try {
      const r = await fetch(`/api/polls/${encodeURIComponent(slug)}`, { cache: "no-store", credentials: "omit" });
      if (r.ok) {
        paint(await r.json());
        wait = POLL_MS;
      } else {
        wait = Math.min(MAX_BACKOFF_MS, wait * 2);
      }
    } catch {
      wait = Math.min(MAX_BACKOFF_MS, wait * 2); // off the air for a moment: keep the last picture
    }
    await sleep(document.hidden ? Math.max(wait, 5000) : wait);
  }
}

run();
