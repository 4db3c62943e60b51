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
import { showWinner } from "../common/store.js";
import { fitText } from "../common/fit.js";

export const ROUND_RESULT_MS = 9000;

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

// The result of a finished round (`result` is its entry in show.rounds).
export function roundResult(state, result) {
  const votes = result.votes || {};
  const a = votes.a || 0;
  const b = votes.b || 0;
  const win = result.winner;
  return {
    kind: "round",
    key: `round-${result.index}`,
    title: t("round.result", { n: result.index }),
    winner: win || "",
    side: win ? sideLabel(state, win) : "",
    name: win ? guestName(state, win) : a + b > 0 ? t("round.tie") : t("round.no_votes"),
    verdict: win ? t("round.winner") : "",
    rows: a + b > 0 ? [[t("pk.votes"), a, b]] : [],
    ms: ROUND_RESULT_MS,
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
    ms: 0,
  };
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

  function fill(m) {
    setAttr(root, "data-kind", m.kind);
    setAttr(root, "data-winner", m.winner || "");
    setText(title, m.title);
    setText(side, m.side || "");
    setText(name, m.name || "");
    setText(verdict, m.verdict || "");
    rows.replaceChildren(...(m.rows || []).map(([label, a, b]) => row(label, a, b)));
    root.classList.add("live");
    fitText(name, { max: 52, min: 30, lines: 2 });
  }

  function next() {
    clearTimeout(timer);
    current = queue.shift() || null;
    if (!current) {
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
