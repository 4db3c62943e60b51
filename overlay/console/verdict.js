// The console's verdict desk (issue 15): the stance phases before and after the debate,
// the live split of a sealed round, the swing and its conversion matrix, and the
// speaking clock (keys 1 / 2 / 3 give the floor to a side or the host, 0 stops it).
//
//   const desk = createVerdictDesk({ store, act, online: () => online });
//   desk.render(state); desk.tick(state); desk.sealed() -> the round.start's `sealed`

import { LIMITS } from "../common/protocol.js";
import { floorShowTotals, floorTotals, roundIsOpen, sealedNow } from "../common/store.js";
import { $, $$, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";

const KEYS = { 1: "a", 2: "b", 3: "host", 0: "" };
const WARN_MIN_MS = 10000; // no warning before the two sides have spoken this long in all

const pct = (share) => `${Math.round((Number(share) || 0) * 100)}%`;
const pts = (n) => `${n > 0 ? "+" : ""}${Number(n || 0).toFixed(1)}`;
const sideName = (state, side) => (state.show.sides[side] || {}).name || side;
const stanceName = (state, s) => (s === "u" ? t("host.undecided") : sideName(state, s));

function spoken(ms) {
  const s = Math.floor((Number(ms) || 0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function createVerdictDesk({ store, act, online }) {
  const floorPanel = $("#floor");
  const panel = $("#verdict");
  const sealedBox = $("#round-sealed");
  let busyFloor = null;
  const busyPhase = new Set();
  let sealedFor = -1; // the round index the checkbox's default was set for
  let sealedTouched = false; // the host changed it for that round

  // -- sealed rounds: on by default for the final planned round (the show's seal_final)

  function sealedDefault(state) {
    const plan = Array.isArray(state.show.plan) ? state.show.plan : [];
    return state.show.seal_final !== false && plan.length > 0 && state.show.round.index + 1 >= plan.length;
  }

  sealedBox.addEventListener("change", () => {
    sealedTouched = true;
  });

  function renderSealed(state) {
    const r = state.show.round;
    if (roundIsOpen(r)) {
      sealedBox.checked = Boolean(r.sealed); // the running round's, as started
      sealedBox.disabled = true;
    } else {
      if (r.index + 1 !== sealedFor) {
        sealedFor = r.index + 1;
        sealedTouched = false;
      }
      if (!sealedTouched) sealedBox.checked = sealedDefault(state);
      sealedBox.disabled = false;
    }
    // the console sees the live split always (a sealed round's too)
    const live = $("#round .live-split");
    const votes = state.show.tally.votes || {};
    show(live, roundIsOpen(r));
    const [a, b] = ["a", "b"].map((s) => sideName(state, s));
    setText(live, roundIsOpen(r) ? t("host.live_split", { a, b, va: fmtInt(votes.a || 0), vb: fmtInt(votes.b || 0) }) : "");
    const line = $("#round .sealed-live");
    const sealed = sealedNow(state);
    show(line, sealed);
    setText(line, sealed ? t("host.sealed_live", { n: fmtInt(state.show.tally.ballots || 0) }) : "");
    $("#round").classList.toggle("sealed", sealed);
  }

  // -- the speaking clock

  async function giveFloor(holder) {
    const state = store.state;
    if (busyFloor !== null || !online() || (state.show.floor.holder || "") === holder) return;
    busyFloor = holder;
    renderFloor(state);
    await act({ type: "floor.set", holder: holder || null });
    busyFloor = null;
    renderFloor(store.state);
  }

  floorPanel.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.floor-btn");
    if (button && !button.disabled) giveFloor(button.dataset.holder);
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || !(ev.key in KEYS)) return;
    if (ev.target.closest("input, textarea, select, [contenteditable]")) return; // typing a number
    ev.preventDefault();
    giveFloor(KEYS[ev.key]);
  });

  function renderFloor(state) {
    const holder = state.show.floor.holder || "";
    setAttr(floorPanel, "data-holder", holder);
    for (const button of $$("button.floor-btn", floorPanel)) {
      const who = button.dataset.holder;
      setText($(".label", button), who === "host" ? t("host.floor.host") : who ? sideName(state, who) : t("host.floor.none"));
      const on = who === holder;
      button.classList.toggle("on", on);
      button.setAttribute("aria-pressed", String(on));
      button.classList.toggle("busy", busyFloor === who);
      button.disabled = busyFloor !== null || (on && who === "");
    }
    for (const row of $$("tbody tr", floorPanel)) {
      const who = row.dataset.who;
      setText($(".who", row), who === "host" ? t("host.floor.host") : sideName(state, who));
    }
    tickFloor(state);
  }

  function tickFloor(state) {
    const round = floorTotals(state);
    const all = floorShowTotals(state);
    for (const row of $$("tbody tr", floorPanel)) {
      const who = row.dataset.who;
      row.classList.toggle("on", (state.show.floor.holder || "") === who);
      setText($(".round-ms", row), spoken(round[who]));
      setText($(".show-ms", row), spoken(all[who]));
      setAttr(row, "data-show-ms", Math.round(all[who] || 0));
    }
    // warn when one side has spoken more than the set share (of the two sides' time) over the show
    const sum = all.a + all.b;
    const lead = sum ? Math.abs(all.a - all.b) / sum : 0;
    const warn = sum >= WARN_MIN_MS && lead > LIMITS.floorWarnShare; // guard: floor warning
    const box = $(".floor-warn", floorPanel);
    show(box, warn);
    floorPanel.classList.toggle("warn", warn);
    const ahead = all.a > all.b ? "a" : "b";
    setText(box, warn ? t("host.floor_warn", { name: sideName(state, ahead), p: Math.round(lead * 100), max: Math.round(LIMITS.floorWarnShare * 100) }) : "");
  }

  // -- the stances, the swing and the conversion matrix

  panel.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-phase]");
    if (!button || button.disabled) return;
    const phase = button.dataset.phase;
    const action = store.state.show.stance_phases[phase] === "open" ? "close" : "open";
    busyPhase.add(phase);
    renderStances(store.state);
    await act({ type: `stance.${action}`, phase }, t(action === "open" ? "host.stance.opened" : "host.stance.closed_now"));
    busyPhase.delete(phase);
    renderStances(store.state);
  });

  function renderStances(state) {
    const { stance, stance_phases: phases } = state.show;
    for (const row of $$(".stance-row", panel)) {
      const phase = row.dataset.phase;
      const status = phases[phase] || "idle";
      setAttr(row, "data-state", status);
      setText($(".phase-state", row), t(`host.stance.${status}`));
      const c = stance[phase] || {};
      const [a, b] = ["a", "b"].map((s) => `${sideName(state, s)} ${fmtInt(c[s] || 0)}`);
      setText($(".phase-counts", row), t("host.stance.counts", { a, b, u: fmtInt(c.u || 0) }));
      const button = $("button", row);
      setText(button, t(status === "open" ? "host.stance.do_close" : "host.stance.do_open"));
      button.classList.toggle("busy", busyPhase.has(phase));
      button.disabled = busyPhase.has(phase);
    }
    const sw = stance.swing;
    const line = $(".swing-line", panel);
    setAttr(line, "data-winner", sw ? sw.winner || "" : "");
    if (sw) {
      const base = t("host.swing_line", { n: fmtInt(sw.devices), a: sideName(state, "a"), ga: pts(sw.gain.a), b: sideName(state, "b"), gb: pts(sw.gain.b) });
      setText(line, sw.winner ? `${base} · ${t("host.swing_won", { name: sideName(state, sw.winner) })}` : `${base} · ${t("round.tie")}`);
    } else {
      setText(line, t("host.swing_none"));
    }
    const post = stance.post_shares;
    const postLine = $(".post-line", panel);
    show(postLine, Boolean(post));
    setText(postLine, post ? t("host.post_shares", { a: sideName(state, "a"), pa: pct(post.a), b: sideName(state, "b"), pb: pct(post.b), pu: pct(post.u) }) : "");
    const matrix = stance.matrix || {};
    for (const s of ["a", "b", "u"]) {
      setText($(`#matrix th[data-col=${s}]`), stanceName(state, s));
      setText($(`#matrix th[data-row=${s}]`), stanceName(state, s));
      for (const p of ["a", "b", "u"]) setText($(`#matrix tr[data-pre=${s}] td[data-post=${p}]`), fmtInt((matrix[s] || {})[p] || 0));
    }
  }

  return {
    render(state) {
      renderSealed(state);
      renderFloor(state);
      renderStances(state);
    },
    tally(state) {
      renderSealed(state);
      renderStances(state);
    },
    tick(state) {
      if (state.show.floor.holder) tickFloor(state);
    },
    sealed: () => sealedBox.checked,
  };
}
