// Moments: a result that takes the lower third's place for a while — a round's result
// when it ends, the final result when the show ends (which stays) and, later, other
// reveals. One at a time, in order; the featured question steps aside (class `held`)
// and comes back after.
//
//   const moments = createMoments($("#moment"), { onChange(playing) {...} });
//   moments.play(roundResult(state, round));      // {kind, title, winner, name, verdict, rows, ms}
//   moments.play({ kind: "reveal", title: "…", rows: [...], ms: 8000 });   // a new kind
//
// A moment with `ms: 0` stays until another one replaces it (the final result).

import { el, setAttr, setText } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";
import { showWinner, swingFinal } from "../common/store.js";
import { fitText } from "../common/fit.js";
import { pct, signed, swingView, vt } from "../common/verdict.js";

export const ROUND_RESULT_MS = 9000;
export const REVEAL_MS = 12000; // a sealed round's result stays a little longer: it is news

const sideLabel = (state, side) => (state.show.sides[side] || {}).name || side;
const guestName = (state, side) => {
  const info = state.show.sides[side] || {};
  return info.guest || info.name || side;
};

// One row of figures: label, a's number, a bar, b's number.
function row(label, a, b) {
  const total = a + b;
  const share = total > 0 ? a / total : 0.5;
  const fill = el("span");
  fill.style.transform = `scaleX(${share.toFixed(4)})`;
  return el(
    "div",
    { class: "mo-row" },
    el("span", { class: "mo-label", text: label }),
    el("span", { class: "mo-num", data: { side: "a" }, text: fmtInt(a) }),
    el("span", { class: "mo-bar" }, fill),
    el("span", { class: "mo-num", data: { side: "b" }, text: fmtInt(b) }),
  );
}

// The result of a finished round (`result` is its entry in show.rounds); a sealed round's
// is its reveal (data-kind="reveal": the split arrives with round.end and is animated in).
export function roundResult(state, result) {
  const votes = result.votes || {};
  const a = votes.a || 0;
  const b = votes.b || 0;
  const win = result.winner;
  return {
    kind: result.sealed ? "reveal" : "round",
    key: `round-${result.index}`,
    title: result.sealed ? vt("reveal", { n: result.index }) : t("round.result", { n: result.index }),
    winner: win || "",
    side: win ? sideLabel(state, win) : "",
    name: win ? guestName(state, win) : a + b > 0 ? t("round.tie") : t("round.no_votes"),
    verdict: win ? t("round.winner") : "",
    rows: a + b > 0 ? [[t("pk.votes"), a, b]] : [],
    ms: result.sealed ? REVEAL_MS : ROUND_RESULT_MS,
  };
}

// The swing verdict: before -> after of the devices that answered both, and the raw
// shares after the debate. Stays until the show ends (then the final result carries it).
export function swingResult(state) {
  const view = swingView(state);
  return {
    kind: "swing",
    key: "swing",
    title: vt("title"),
    winner: view.winner,
    side: "",
    name: view.headline,
    verdict: "",
    rows: [],
    swing: view,
    ms: 0,
  };
}

// The show's final result: rounds won, then the judges' points decide (store.showWinner).
export function finalResult(state) {
  const { tally } = state.show;
  const won = tally.rounds_won || {};
  const points = tally.points || {};
  const likes = tally.likes || {};
  const win = showWinner(state);
  const rows = [];
  if ((state.show.rounds || []).length) rows.push([t("pk.rounds"), won.a || 0, won.b || 0]);
  if ((points.a || 0) + (points.b || 0) > 0) rows.push([t("pk.points"), points.a || 0, points.b || 0]);
  if ((likes.a || 0) + (likes.b || 0) > 0) rows.push([t("pk.likes"), likes.a || 0, likes.b || 0]);
  return {
    kind: "final",
    key: "final",
    title: t("show.final"),
    winner: win || "",
    side: win ? sideLabel(state, win) : "",
    name: win ? guestName(state, win) : t("show.draw"),
    verdict: win ? t("show.winner") : "",
    rows,
    swing: swingFinal(state) ? swingView(state) : null,
    ms: 0,
  };
}

// The swing's rows: each side's share before (faint) and after (animated from before).
function swingBlock(view) {
  const rows = view.rows.map((r) => {
    const before = el("span", { class: "msw-before" });
    const after = el("span", { class: "msw-after" });
    before.style.transform = `scaleX(${r.before.toFixed(4)})`;
    after.style.transform = `scaleX(${r.after.toFixed(4)})`;
    after.dataset.from = r.before.toFixed(4);
    after.dataset.to = r.after.toFixed(4);
    return el(
      "div",
      { class: "msw-row", data: { side: r.side, gain: r.gain } },
      el("span", { class: "msw-name", text: r.name }),
      el("span", { class: "msw-bar" }, before, after),
      el("span", { class: "msw-fig", text: `${pct(r.before)} → ${pct(r.after)}` }),
      el("span", { class: "msw-gain", text: vt("gain", { n: signed(r.gain) }) }),
    );
  });
  return [...rows, el("p", { class: "msw-post", text: view.postLine }), el("p", { class: "msw-note", text: view.note })];
}

// Bars grow from where they were to the new figure (transform only).
function animateIn(root, kind) {
  if (document.hidden) return;
  const spring = { duration: 1600, delay: 350, easing: "cubic-bezier(0.2, 0.8, 0.2, 1)", fill: "backwards" };
  for (const bar of root.querySelectorAll(".msw-after")) {
    bar.animate([{ transform: `scaleX(${bar.dataset.from})` }, { transform: `scaleX(${bar.dataset.to})` }], spring);
  }
  if (kind === "reveal") {
    for (const bar of root.querySelectorAll(".mo-bar > span")) {
      bar.animate([{ transform: "scaleX(0.5)" }, { transform: bar.style.transform }], { ...spring, delay: 700 });
    }
  }
}

export function createMoments(root, { onChange = () => {} } = {}) {
  const queue = [];
  let current = null;
  let timer = 0;
  const title = root.querySelector(".mo-title");
  const side = root.querySelector(".mo-side");
  const name = root.querySelector(".mo-name");
  const verdict = root.querySelector(".mo-verdict");
  const rows = root.querySelector(".mo-rows");
  const swing = root.querySelector(".mo-swing");
  let shown = ""; // the figures on screen, so that a refresh with the same ones does not replay

  function fill(m) {
    const sig = JSON.stringify([m.kind, m.title, m.name, m.rows, m.swing]);
    if (sig === shown) return;
    shown = sig;
    setAttr(root, "data-kind", m.kind);
    setAttr(root, "data-winner", m.winner || "");
    setText(title, m.title);
    setText(side, m.side || "");
    setText(name, m.name || "");
    setText(verdict, m.verdict || "");
    rows.replaceChildren(...(m.rows || []).map(([label, a, b]) => row(label, a, b)));
    if (swing) {
      swing.replaceChildren(...(m.swing ? swingBlock(m.swing) : []));
      swing.hidden = !m.swing;
    }
    root.classList.add("live");
    fitText(name, { max: m.swing ? 44 : 52, min: 30, lines: 2 });
    animateIn(root, m.kind);
  }

  function next() {
    clearTimeout(timer);
    current = queue.shift() || null;
    if (!current) {
      shown = "";
      root.classList.remove("on");
      onChange(null);
      return;
    }
    fill(current);
    root.classList.add("on");
    onChange(current);
    if (current.ms > 0) timer = setTimeout(next, current.ms);
  }

  return {
    // Show a moment after those already waiting (a lasting one gives way at once).
    play(moment) {
      if (current && current.key === moment.key) {
        current = moment; // the same moment, new figures: refresh in place
        fill(moment);
        return;
      }
      if (queue.some((m) => m.key === moment.key)) return;
      queue.push(moment);
      if (!current || current.ms === 0) next();
    },
    // Take moments of a kind away (e.g. the final result when a show goes live again).
    clear(kind) {
      for (let i = queue.length - 1; i >= 0; i -= 1) if (queue[i].kind === kind) queue.splice(i, 1);
      if (current && current.kind === kind) next();
    },
    get current() {
      return current;
    },
  };
}
