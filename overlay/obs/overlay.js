// OBS overlay: renders the show's state; sends nothing; never shows an error on air.
// The canvas and its safe areas: layout.js. Results: moments.js. Fitting text: fit.js.

import { connect } from "../common/ws.js";
import { DEFAULT_COLORS } from "../common/protocol.js";
import { beforeShow, createStore, floorShowTotals, openPhase, remainingMs, roundIsOpen, sealedNow, shareOfA, sideColor, swingFinal } from "../common/store.js";
import { $, fmtClock, heart, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";
import { fitText } from "../common/fit.js";
import { createLayout } from "./layout.js";
import { createMoments, finalResult, roundResult, swingResult } from "./moments.js";
import { sideName, vt } from "../common/verdict.js";

const SIDES = ["a", "b"];

const body = document.body;
const config = {
  slug: body.dataset.slug,
  debug: body.dataset.debug === "true",
};
const stage = $("#stage");
const layout = createLayout(stage, { layout: body.dataset.layout, scale: body.dataset.scale });

// --- numbers that count up instead of jumping

function counter(node) {
  let shown = 0;
  let target = 0;
  let from = 0;
  let start = 0;
  let raf = 0;
  const DURATION = 600;
  const step = (now) => {
    const k = Math.min(1, (now - start) / DURATION);
    shown = Math.round(from + (target - from) * (1 - (1 - k) ** 3));
    setText(node, fmtInt(shown));
    raf = k < 1 ? requestAnimationFrame(step) : 0;
  };
  return (value, instant = false) => {
    if (value === target && !raf && node.textContent !== "") return;
    target = value;
    if (instant || document.hidden) {
      cancelAnimationFrame(raf);
      raf = 0;
      shown = value;
      setText(node, fmtInt(value));
      return;
    }
    from = shown;
    start = performance.now();
    if (!raf) raf = requestAnimationFrame(step);
  };
}

// Show a widget that was `hidden`: unhide, then fade in on the next frame.
function reveal(root, on) {
  if (!on) {
    root.hidden = true;
    root.classList.remove("live");
    return;
  }
  if (root.hidden) {
    root.hidden = false;
    requestAnimationFrame(() => root.classList.add("live"));
  } else {
    root.classList.add("live");
  }
}

// --- widgets: each renders from the state; `tick` runs 4×/s for the clock

// The score bar: ONE figure, the whole show's likes per side, and it says so.
function pkWidget(root) {
  const bar = $(".pk-bar", root);
  const fillA = $(".fill-a", root);
  const mark = $(".split-mark", root);
  const nums = Object.fromEntries(SIDES.map((s) => [s, $(`.num[data-side=${s}]`, root)]));
  const counters = Object.fromEntries(SIDES.map((s) => [s, counter(nums[s])]));
  setText($(".bar-soon", root), t("pk.soon"));
  setText($(".metric-text", root), t("pk.likes_show"));

  function renderSide(state, s) {
    const side = $(`.pk-side[data-side=${s}]`, root);
    const info = state.show.sides[s] || {};
    const { points = {}, rounds_won: won = {} } = state.show.tally;
    setText($(".side-name", side), info.name || "");
    setText($(".guest", side), info.guest || info.name || "");
    setText($(".org", side), info.org || "");
    setText($(".points", side), fmtInt(points[s] || 0));
    setText($(".won", side), (won[s] || 0) > 0 ? t("pk.rounds_won", { n: won[s] }) : "");
    fitText($(".guest", side), { max: 44, min: 28, lines: 2 });
    fitText($(".org", side), { max: 26, min: 24, lines: 2 });
  }

  return {
    render(state) {
      setAttr(root, "data-state", beforeShow(state) ? "soon" : "live");
      for (const s of SIDES) renderSide(state, s);
      const likes = { a: state.show.tally.likes.a || 0, b: state.show.tally.likes.b || 0 };
      const share = shareOfA(likes);
      // Keep a sliver of each colour on screen so the bar always reads as a contest.
      const shown = Math.min(0.96, Math.max(0.04, share));
      fillA.style.transform = `scaleX(${shown})`;
      mark.style.transform = `translateX(${(bar.offsetWidth || 1020) * shown}px)`;
      setAttr(root, "data-share", share.toFixed(4));
      setAttr(root, "data-metric", "likes");
      for (const s of SIDES) {
        setAttr(nums[s], "data-value", likes[s]);
        counters[s](likes[s]);
      }
      root.classList.add("live");
    },
  };
}

// The round's vote split, apart from the score bar, while a round is open. A sealed
// round shows only how many have voted (data-state="sealed": the server sends no split);
// with no round open, an open stance phase shows how many have answered ("stance").
function splitWidget(root) {
  const label = $(".split-label", root);
  const fill = $(".split-fill", root);
  const wait = $(".split-wait", root);
  const nums = Object.fromEntries(SIDES.map((s) => [s, $(`.split-num[data-side=${s}]`, root)]));
  return {
    render(state) {
      const { round, tally, status, stance } = state.show;
      const ended = status === "ended";
      const open = roundIsOpen(round) && !ended;
      const phase = !open && !ended ? openPhase(state) : null;
      reveal(root, open || Boolean(phase));
      if (phase) {
        const n = Object.values(stance[phase] || {}).reduce((x, y) => x + (Number(y) || 0), 0);
        setAttr(root, "data-state", "stance");
        setText(label, vt(phase === "pre" ? "phasePre" : "phasePost"));
        setText(wait, n > 0 ? `${vt("stances", { n: fmtInt(n) })} · ${vt("stanceNow")}` : vt("stanceNow"));
        return;
      }
      if (!open) {
        setAttr(root, "data-state", "idle");
        return;
      }
      setText(label, t("pk.round_votes", { n: round.index }));
      if (sealedNow(state)) { // guard: sealed on air
        setAttr(root, "data-state", "sealed");
        setText(wait, `${vt("ballots", { n: fmtInt(tally.ballots || 0) })} · ${vt("sealed")}`);
        for (const s of SIDES) {
          nums[s].removeAttribute("data-value");
          setText(nums[s], "");
        }
        fill.style.transform = "scaleX(0.5)";
        return;
      }
      const votes = { a: (tally.votes || {}).a || 0, b: (tally.votes || {}).b || 0 };
      setText(wait, t("pk.vote_now"));
      setAttr(root, "data-state", votes.a + votes.b > 0 ? "live" : "waiting");
      for (const s of SIDES) {
        setAttr(nums[s], "data-value", votes[s]);
        setText(nums[s], fmtInt(votes[s]));
      }
      fill.style.transform = `scaleX(${shareOfA(votes).toFixed(4)})`;
    },
  };
}

// The speaking clock: each side's (and the host's) time over the show, the holder's
// running on locally; the one who has the floor is marked.
function floorWidget(root) {
  let store = null;
  setText($(".floor-title", root), vt("floor"));
  const rows = Object.fromEntries(["a", "b", "host"].map((who) => [who, $(`.floor-row[data-who=${who}]`, root)]));

  function paint() {
    const totals = floorShowTotals(store);
    const holder = store.show.floor.holder || "";
    setAttr(root, "data-holder", holder);
    for (const [who, row] of Object.entries(rows)) {
      row.classList.toggle("on", holder === who);
      setAttr(row, "data-ms", Math.round(totals[who] || 0));
      setText($(".floor-time", row), fmtSpoken(totals[who]));
      show(row, who !== "host" || totals.host > 0 || holder === "host");
    }
  }

  return {
    render(state) {
      store = state;
      for (const who of SIDES) setText($(".floor-name", rows[who]), sideName(state, who));
      setText($(".floor-name", rows.host), vt("host"));
      paint();
      const totals = floorShowTotals(state);
      root.classList.toggle("live", state.show.status !== "ended" && (Boolean(state.show.floor.holder) || totals.a + totals.b + totals.host > 0));
    },
    tick() {
      if (store && store.show.floor.holder) paint();
    },
  };
}

// "m:ss" of speaking time (minutes may pass 59: a debate's side rarely speaks an hour).
function fmtSpoken(ms) {
  const s = Math.floor((Number(ms) || 0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function timerWidget(root) {
  const roundNo = $(".round-no", root);
  const topic = $(".topic", root);
  const stateLabel = $(".state", root);
  const time = $(".time", root);
  let store = null;

  function paint() {
    const state = store;
    const r = state.show.round;
    const ms = remainingMs(state);
    let status = state.show.status === "ended" || r.index === 0 ? "idle" : r.status;
    if (status === "running" && ms <= 0) status = "timeup";
    setAttr(root, "data-status", status);
    root.classList.toggle("warn", status === "running" && ms <= 30000);
    setText(time, fmtClock(ms));
    const labels = { paused: "round.paused", timeup: "round.timeup", finished: "round.finished" };
    setText(stateLabel, labels[status] ? t(labels[status]) : "");
  }

  return {
    render(state) {
      store = state;
      const r = state.show.round;
      const started = r.index > 0 && r.status !== "idle" && state.show.status !== "ended";
      setText(roundNo, started ? t("round.n", { n: r.index }) : "");
      setText(topic, started ? r.topic || "" : "");
      paint();
      fitText(topic, { max: 32, min: 24, lines: 2 });
      root.classList.toggle("live", started);
    },
    tick() {
      if (store && store.show.round.status === "running") paint();
    },
  };
}

function viewersWidget(root) {
  const count = counter($(".count", root));
  const live = $(".live-tag", root);
  return {
    render(state) {
      const n = Number(state.show.tally.viewers) || 0;
      setAttr(root, "data-count", n);
      count(n);
      setText(live, state.show.status === "live" ? t("show.live") : "");
      root.classList.toggle("live", n > 0); // no "0 watching"
    },
  };
}

function questionWidget(root) {
  const text = $(".q-text", root);
  const name = $(".q-name", root);
  let currentId = null;
  let swapTimer = 0;

  function fill(q) {
    setText(text, q.text);
    setText(name, (q.name || "").trim() || t("q.anonymous"));
    setAttr(root, "data-id", q.id);
    fitText(text, { max: 40, min: 24, lines: 3 }); // the whole question, never cut
  }

  return {
    render(state) {
      const { featured, questions } = state.show;
      const q = featured ? questions.find((x) => x.id === featured && typeof x.text === "string") : null;
      root.classList.toggle("live", Boolean(q)); // on screen only with a question on air
      if (!q) {
        clearTimeout(swapTimer);
        currentId = null;
        root.classList.remove("on");
        root.removeAttribute("data-id");
        return;
      }
      if (q.id === currentId) {
        fill(q); // the host's edit, or upvotes: update in place
        return;
      }
      const wasOn = root.classList.contains("on");
      currentId = q.id;
      clearTimeout(swapTimer);
      if (!wasOn) {
        fill(q);
        root.classList.add("on");
        return;
      }
      // Another question replaces the one on air: out, swap, in.
      root.classList.remove("on");
      swapTimer = setTimeout(() => {
        fill(q);
        root.classList.add("on");
      }, 380);
    },
  };
}

// Floating hearts: spawn rate follows the like rate of the last second, capped; they
// rise no higher than the action-safe area allows.
function likesWidget(root) {
  const MAX_PER_S = 12;
  const MAX_ALIVE = 40;
  const layer = $(".float-layer", root);
  const bigHeart = $(".big-heart", root);
  const total = counter($(".total", root));
  const pool = [];
  const events = []; // [time, side, count]
  let alive = 0;
  let last = null;
  let colors = { ...DEFAULT_COLORS };
  let budget = 0;
  let lastSpawnTick = performance.now();
  let lastPulse = 0;

  function take() {
    const free = pool.find((n) => !n.busy);
    if (free) return free;
    const svg = heart("fh");
    layer.append(svg);
    const item = { node: svg, busy: false };
    pool.push(item);
    return item;
  }

  function spawn(side) {
    const room = layout.roomAbove(layer);
    if (alive >= MAX_ALIVE || room < 80) return;
    const item = take();
    item.busy = true;
    alive += 1;
    item.node.style.color = colors[side];
    const drift = (Math.random() - 0.5) * 120;
    const sway = (Math.random() - 0.5) * 60;
    const rise = Math.min(room, 380 + Math.random() * 240);
    const size = 0.65 + Math.random() * 0.6;
    const tilt = (Math.random() - 0.5) * 40;
    const anim = item.node.animate(
      [
        { transform: `translate(0px, 0px) scale(${size * 0.4}) rotate(0deg)`, opacity: 0 },
        { transform: `translate(${sway}px, ${-rise * 0.3}px) scale(${size}) rotate(${tilt / 2}deg)`, opacity: 1, offset: 0.22 },
        { transform: `translate(${drift}px, ${-rise}px) scale(${size * 0.9}) rotate(${tilt}deg)`, opacity: 0 },
      ],
      { duration: 2200 + Math.random() * 1200, easing: "cubic-bezier(0.3, 0.6, 0.4, 1)" },
    );
    anim.onfinish = () => {
      item.busy = false;
      alive -= 1;
    };
  }

  function pulse() {
    const now = performance.now();
    if (now - lastPulse < 350 || document.hidden) return;
    lastPulse = now;
    bigHeart.animate([{ transform: "scale(1)" }, { transform: "scale(1.12)" }, { transform: "scale(1)" }], {
      duration: 320,
      easing: "ease-out",
    });
  }

  function ratePerSide(now) {
    while (events.length && now - events[0][0] > 1000) events.shift();
    const rate = { a: 0, b: 0 };
    for (const [, side, n] of events) rate[side] += n;
    return rate;
  }

  return {
    render(state, frame) {
      const likes = state.show.tally.likes || {};
      const a = Number(likes.a) || 0;
      const b = Number(likes.b) || 0;
      colors = { a: sideColor(state, "a"), b: sideColor(state, "b") };
      setAttr(root, "data-total", a + b);
      const fresh = last === null || frame.type === "snapshot";
      total(a + b, fresh);
      if (!fresh) {
        const now = performance.now();
        const da = a - last.a;
        const db = b - last.b;
        if (da > 0) events.push([now, "a", da]);
        if (db > 0) events.push([now, "b", db]);
        if (da > 0 || db > 0) pulse();
      }
      last = { a, b };
      root.classList.toggle("live", a + b > 0); // no "0 likes"
    },
    // Called ~12×/s: spend the per-second budget on hearts.
    spawnTick() {
      const now = performance.now();
      const dt = Math.min(0.5, (now - lastSpawnTick) / 1000);
      lastSpawnTick = now;
      if (document.hidden || !root.classList.contains("live")) return;
      const rate = ratePerSide(now);
      const sum = rate.a + rate.b;
      if (sum === 0) {
        budget = 0;
        return;
      }
      budget = Math.min(3, budget + Math.min(MAX_PER_S, sum) * dt);
      while (budget >= 1) {
        budget -= 1;
        spawn(Math.random() * sum < rate.a ? "a" : "b");
      }
    },
  };
}

function qrWidget(root) {
  const img = $(".qr-img", root);
  let failed = false;
  img.addEventListener("error", () => {
    failed = true;
    root.hidden = true; // no broken image on air, and no empty slot in the column
  });
  return {
    render() {
      if (!failed && img.complete && img.naturalWidth > 0) root.classList.add("live");
      else if (!failed) img.addEventListener("load", () => root.classList.add("live"), { once: true });
    },
  };
}

// Round results (a sealed round's is its on-air reveal), the swing verdict once the
// post-debate stance has closed, and the final result, in the lower third's place (moments.js).
function momentsWidget(root) {
  const question = $("#question");
  const moments = createMoments(root, {
    onChange(playing) {
      if (question) question.classList.toggle("held", Boolean(playing));
    },
  });
  let round = null; // {index, status} as last rendered
  return {
    render(state, frame) {
      const { show } = state;
      const r = show.round;
      const justEnded = frame.type === "round" && round && round.index === r.index && round.status !== "finished";
      if (justEnded && r.status === "finished") {
        const result = (show.rounds || []).find((x) => x.index === r.index);
        if (result) moments.play(roundResult(state, result));
      }
      round = { index: r.index, status: r.status };
      // The swing stays once final (a reconnecting overlay shows it at once from its snapshot).
      if (swingFinal(state) && show.status !== "ended") moments.play(swingResult(state));
      else moments.clear("swing");
      if (show.status === "ended") moments.play(finalResult(state));
      else moments.clear("final");
    },
  };
}

// --- wiring

const factories = {
  pk: pkWidget,
  split: splitWidget,
  timer: timerWidget,
  viewers: viewersWidget,
  question: questionWidget,
  likes: likesWidget,
  qr: qrWidget,
  moment: momentsWidget,
  floor: floorWidget,
};
const widgets = Object.entries(factories)
  .map(([id, make]) => {
    const node = document.getElementById(id);
    return node ? make(node) : null;
  })
  .filter(Boolean);

const store = createStore();
store.subscribe((state, frame) => {
  if (!state.ready) return;
  stage.style.setProperty("--a", sideColor(state, "a"));
  stage.style.setProperty("--b", sideColor(state, "b"));
  for (const w of widgets) w.render(state, frame);
});

const statusDot = config.debug ? $("#status") : null;

// The show's overlay key (from the console's "copy the overlay address"): with it this
// page counts as one of the studio's screens.
const key = new URLSearchParams(location.search).get("key");

connect({
  role: "overlay",
  slug: config.slug,
  query: key ? `key=${encodeURIComponent(key)}` : "",
  onFrame(frame) {
    if (frame.type === "reload") {
      location.reload();
      return;
    }
    if (frame.type === "error") return; // nothing to say on air
    store.apply(frame);
  },
  onStatus({ state, code }) {
    if (!statusDot) return;
    statusDot.dataset.state = state;
    statusDot.title = code ? `${state} (${code})` : state;
  },
});

setInterval(() => {
  for (const w of widgets) if (w.tick) w.tick();
}, 250);
setInterval(() => {
  for (const w of widgets) if (w.spawnTick) w.spawnTick();
}, 1000 / 12);
