// OBS overlay: renders the show's state; sends nothing; never shows an error on air.

import { connect } from "../common/ws.js";
import { DEFAULT_COLORS } from "../common/protocol.js";
import { createStore, pkMetric, remainingMs, shareOfA, sideColor } from "../common/store.js";
import { $, fmtClock, heart, setAttr, setText } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";

const STAGE_W = 1920;
const STAGE_H = 1080;
const SIDES = ["a", "b"];

const body = document.body;
const config = {
  slug: body.dataset.slug,
  debug: body.dataset.debug === "true",
  scale: Number.parseFloat(body.dataset.scale) > 0 ? Number.parseFloat(body.dataset.scale) : 1,
};
const stage = $("#stage");

// --- the 1920×1080 stage, fitted to the browser source; data-scale sizes the widgets

function fitStage() {
  const fit = Math.min(window.innerWidth / STAGE_W, window.innerHeight / STAGE_H) || 1;
  stage.style.transform = `scale(${fit})`;
  stage.style.setProperty("--ui-scale", String(config.scale));
}

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
    if (value === target && !raf) return;
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

// --- widgets: each renders from the state; `tick` runs 4×/s for the clock

function pkWidget(root) {
  const fillA = $(".fill-a", root);
  const split = $(".split", root);
  const metricLabel = $(".metric", root);
  const nums = Object.fromEntries(SIDES.map((s) => [s, $(`.num[data-side=${s}]`, root)]));
  const counters = Object.fromEntries(SIDES.map((s) => [s, counter(nums[s])]));
  let lastKind = null;

  return {
    render(state) {
      const { sides, tally } = state.show;
      for (const s of SIDES) {
        const side = $(`.pk-side[data-side=${s}]`, root);
        const info = sides[s] || {};
        setText($(".side-name", side), info.name || "");
        setText($(".guest", side), info.guest || info.name || "");
        setText($(".org", side), info.org || "");
        setText($(".points", side), fmtInt((tally.points && tally.points[s]) || 0));
        const won = (tally.rounds_won && tally.rounds_won[s]) || 0;
        setText($(".won", side), won > 0 ? t("pk.rounds_won", { n: won }) : "");
      }
      const metric = pkMetric(state);
      const share = shareOfA(metric);
      // Keep a sliver of each colour on screen so the bar always reads as a contest.
      const shown = Math.min(0.96, Math.max(0.04, share));
      fillA.style.transform = `scaleX(${shown})`;
      split.style.transform = `translateX(${(root.offsetWidth || 1180) * shown}px)`;
      setAttr(root, "data-share", share.toFixed(4));
      setAttr(root, "data-metric", metric.kind);
      setText(metricLabel, t(metric.kind === "votes" ? "pk.votes" : "pk.likes"));
      const instant = metric.kind !== lastKind;
      lastKind = metric.kind;
      for (const s of SIDES) {
        setAttr(nums[s], "data-value", metric[s]);
        counters[s](metric[s], instant);
      }
      root.classList.add("live");
    },
  };
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
    let status = r.status;
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
      const started = r.index > 0 && r.status !== "idle";
      setText(roundNo, started ? t("round.n", { n: r.index }) : "");
      setText(topic, started ? r.topic || "" : "");
      paint();
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
      root.classList.add("live");
    },
  };
}

function questionWidget(root) {
  const text = $(".q-text", root);
  const name = $(".q-name", root);
  let currentId = null;
  let swapTimer = 0;

  function fill(q) {
    const len = [...q.text].length;
    text.className = `q-text${len > 150 ? " len-xl" : len > 90 ? " len-l" : len > 44 ? " len-m" : ""}`;
    setText(text, q.text);
    setText(name, (q.name || "").trim() || t("q.anonymous"));
    setAttr(root, "data-id", q.id);
  }

  return {
    render(state) {
      const { featured, questions } = state.show;
      const q = featured ? questions.find((x) => x.id === featured && typeof x.text === "string") : null;
      root.classList.add("live");
      if (!q) {
        clearTimeout(swapTimer);
        currentId = null;
        root.classList.remove("on");
        root.removeAttribute("data-id");
        return;
      }
      if (q.id === currentId) {
        fill(q); // edits or upvotes: update in place
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

// Floating hearts: spawn rate follows the like rate of the last second, capped.
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
    if (alive >= MAX_ALIVE) return;
    const item = take();
    item.busy = true;
    alive += 1;
    item.node.style.color = colors[side];
    const drift = (Math.random() - 0.5) * 160;
    const sway = (Math.random() - 0.5) * 70;
    const rise = 420 + Math.random() * 220;
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
      root.classList.add("live");
    },
    // Called ~12×/s: spend the per-second budget on hearts.
    spawnTick() {
      const now = performance.now();
      const dt = Math.min(0.5, (now - lastSpawnTick) / 1000);
      lastSpawnTick = now;
      if (document.hidden) return;
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

// --- wiring

const factories = { pk: pkWidget, timer: timerWidget, viewers: viewersWidget, question: questionWidget, likes: likesWidget, qr: qrWidget };
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

fitStage();
window.addEventListener("resize", fitStage);
setInterval(() => {
  for (const w of widgets) if (w.tick) w.tick();
}, 250);
setInterval(() => {
  for (const w of widgets) if (w.spawnTick) w.spawnTick();
}, 1000 / 12);
