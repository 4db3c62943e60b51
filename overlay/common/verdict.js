// The verdict as the phone and the overlay show it: the swing of the room (before → after,
// only devices that answered both), the raw shares after, and the words for it.
//
// The words come from templates/verdict_words.html (data attributes on #verdict-words),
// not from the embedded catalog, so the phone page's strings stay small.

const words = (document.getElementById("verdict-words") || { dataset: {} }).dataset;

// vt("for", {name: "红方"}) -> "支持红方"; an unknown word returns its name.
export function vt(name, params = {}) {
  const s = words[name] ?? name;
  return s.replace(/\{(\w+)\}/g, (m, key) => (key in params ? String(params[key]) : m));
}

export const pct = (share) => `${Math.round((Number(share) || 0) * 100)}%`;

// Percentage points with a sign: +9.1, −3, 0.
export function signed(points) {
  const n = Number(points) || 0;
  const text = Number.isInteger(n) ? String(Math.abs(n)) : Math.abs(n).toFixed(1);
  return n > 0 ? `+${text}` : n < 0 ? `−${text}` : text;
}

export const sideName = (state, side) => (state.show.sides[side] || {}).name || side;

// What a stance button says: "支持红方", "还没想好".
export const stanceLabel = (state, stance) => (stance === "u" ? vt("undecided") : vt("for", { name: sideName(state, stance) }));

// The swing as rows to draw: each side's share before and after and its gain.
export function swingView(state) {
  const { swing, post_shares: post } = state.show.stance || {};
  if (!swing) return null;
  const rows = ["a", "b"].map((side) => ({
    side,
    name: sideName(state, side),
    before: swing.before[side] || 0,
    after: swing.after[side] || 0,
    gain: swing.gain[side] || 0,
  }));
  const winner = swing.winner;
  return {
    winner: winner || "",
    headline: winner ? vt("won", { name: sideName(state, winner) }) : vt("tie"),
    rows,
    devices: swing.devices,
    post: post || { a: 0, b: 0, u: 0 },
    postLine: vt("post", { shares: ["a", "b", "u"].map((s) => `${s === "u" ? vt("undecided") : sideName(state, s)} ${pct((post || {})[s])}`).join(" · ") }),
    note: vt("note", { n: swing.devices }),
  };
}
