// Audience phone page: hearts, vote, ask, upvote. Optimistic where it is safe,
// patient on flaky networks, and every user string goes in as text.

import { connect } from "../common/ws.js";
import { LIMITS, OFFLINE } from "../common/protocol.js";
import { createStore, openPhase, remainingMs, roundIsOpen, sealedNow, showWinner, sideColor, swingFinal } from "../common/store.js";
import { $, $$, createToast, el, fmtClock, heart, keyedList, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";
import { ensureDevice } from "./device.js";
import { fitText } from "../common/fit.js";
import { renderAfter } from "../season/after.js";
import { pct, signed, stanceLabel, swingView, vt } from "../common/verdict.js";

const SIDES = ["a", "b"];
const NAME_KEY = "leitai.name";
const TAPS_KEY = `leitai.taps.${document.body.dataset.slug}`; // this phone's taps on this show
const COMBO_GAP_MS = 800; // taps closer than this make a combo
const RETRY_LIMIT = 3;

const slug = document.body.dataset.slug;
const toast = createToast($("#toast"));
const store = createStore();
const mine = new Set(); // ids of questions this phone asked (besides `mine: true` from the server)
const busy = { vote: null, stance: null, ask: false, upvote: new Set() };
const shownLikes = { a: 0, b: 0 }; // never goes down: server count, plus taps not yet counted

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the device, then the connection; friendly errors

let conn = null;
let voteOpensAt = 0; // performance.now() when this device may vote (it watches a little first)

async function getDevice() {
  const box = $("#entering");
  show(box, true);
  await ensureDevice({
    onWait({ attempt, retryMs, insecure }) {
      if (insecure) setText($(".entering-text", box), t("device.insecure"));
      else if (retryMs) setText($(".entering-text", box), t("device.retry", { s: Math.ceil(retryMs / 1000) }));
      else setText($(".entering-text", box), t(attempt ? "device.again" : "device.entering"));
    },
  });
  show(box, false);
}

async function start() {
  if (document.body.dataset.device !== "yes") await getDevice();
  conn = connect({ role: "audience", slug, onFrame, onStatus });
}

function onFrame(frame) {
  if (frame.type === "error") return; // a like that was refused: nothing to tell the user
  if (frame.type === "snapshot") voteOpensAt = performance.now() + ((frame.you && frame.you.vote_after_ms) || 0);
  store.apply(frame);
}

function onStatus({ state, code, restarting }) {
  const bar = $("#conn");
  const action = $(".conn-action", bar);
  show(action, false);
  if (state === "open" || state === "connecting") {
    show(bar, false);
    return;
  }
  bar.dataset.state = state;
  if (state === "stopped" && code === 4401) {
    // the device cookie is gone or no longer valid: get a new device, then reconnect
    document.body.dataset.device = "no";
    show(bar, false);
    start();
    return;
  }
  if (state === "stopped") {
    const key = code === 4401 ? "status.4401.audience" : code === 4404 ? "status.4404" : code === 4403 ? "status.4403" : "status.stopped";
    setText($(".conn-text", bar), t(key));
    if (code === 4401 || code === 4403) {
      setText(action, t("action.reload"));
      action.href = location.pathname + location.search;
      show(action, true);
    }
  } else {
    // a 1012 close is the server restarting: not this phone's network
    setText($(".conn-text", bar), t(restarting ? "status.restarting" : "status.reconnecting"));
    bar.dataset.restarting = String(Boolean(restarting));
  }
  show(bar, true);
}

// A `forbidden` answer means this device was banned: stop offering what it can't do.
function noteForbidden(err) {
  if (err.code !== "forbidden") return;
  store.update((state) => {
    if (!state.you) state.you = { vote: null, upvoted: [], banned: false };
    state.you.banned = true;
  });
}

function errorText(err, context) {
  switch (err.code) {
    case "rate_limited":
      return err.retryMs ? t("err.rate_limited", { s: Math.max(1, Math.ceil(err.retryMs / 1000)) }) : t("err.rate_limited_plain");
    case "too_large":
      return t("err.too_large", { q: LIMITS.questionChars, n: LIMITS.nameChars });
    case "conflict":
      return t(context === "vote" ? "err.conflict_vote" : context === "upvote" ? "err.conflict_upvote" : "err.conflict");
    case "invalid":
    case "forbidden":
    case "not_found":
    case "unavailable":
    case "ended":
      return t(`err.${err.code}`);
    case OFFLINE:
      return context === "ask" && err.sent ? t("err.offline_ask") : t("err.offline");
    default:
      return t("err.invalid");
  }
}

// Send, retrying a few times when the server recorded nothing (`unavailable`) or the
// connection dropped. Every try carries the same id, and the server applies an id
// once, so a retry can never ask the same question twice.
async function sendWithRetry(msg) {
  while (!conn) await sleep(250); // still getting this phone's device
  const once = { ...msg, id: conn.newId() };
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await conn.send(once);
    } catch (err) {
      const retryable = err.code === "unavailable" || err.code === OFFLINE;
      if (!retryable || attempt >= RETRY_LIMIT) throw err;
      toast(t("err.unavailable"), { kind: "warn" });
      await sleep(1000 * 2 ** attempt + Math.random() * 500);
      if (err.code === OFFLINE) await waitOpen(15000);
    }
  }
}

async function waitOpen(ms) {
  const until = Date.now() + ms;
  while (!(conn && conn.isOpen()) && Date.now() < until) await sleep(250);
}

// --- hearts

const burstPool = [];

function burst(button, x, y) {
  if (document.hidden) return;
  const layer = $(".burst", button);
  let node = burstPool.find((n) => !n.busy && n.layer === layer);
  if (!node) {
    if (burstPool.length >= 24) return;
    const svg = heart("mini-heart");
    layer.append(svg);
    node = { svg, layer, busy: false };
    burstPool.push(node);
  }
  node.busy = true;
  const dx = (Math.random() - 0.5) * 80;
  const rise = 110 + Math.random() * 70;
  node.svg.style.left = `${x}px`;
  node.svg.style.top = `${y}px`;
  const anim = node.svg.animate(
    [
      { transform: "translate(-50%, -50%) scale(0.5)", opacity: 1 },
      { transform: `translate(calc(-50% + ${dx}px), calc(-50% - ${rise}px)) scale(1.15)`, opacity: 0 },
    ],
    { duration: 700 + Math.random() * 300, easing: "cubic-bezier(0.2, 0.7, 0.3, 1)" },
  );
  anim.onfinish = () => {
    node.busy = false;
  };
  button.animate([{ transform: "scale(0.96)" }, { transform: "scale(1)" }], { duration: 160, easing: "ease-out" });
}

// --- this phone's own taps: a running total and a combo while the taps keep coming

const myTaps = { total: 0, combo: 0, last: 0, timer: 0 };
try {
  myTaps.total = Number(localStorage.getItem(TAPS_KEY)) || 0;
} catch {
  /* storage may be off in some webviews */
}

function countTap() {
  const now = performance.now();
  myTaps.total += 1;
  myTaps.combo = now - myTaps.last < COMBO_GAP_MS ? myTaps.combo + 1 : 1;
  myTaps.last = now;
  try {
    localStorage.setItem(TAPS_KEY, String(myTaps.total));
  } catch {
    /* ignore */
  }
  clearTimeout(myTaps.timer);
  myTaps.timer = setTimeout(() => {
    myTaps.combo = 0;
    renderMyTaps();
  }, COMBO_GAP_MS * 1.5);
  renderMyTaps(true);
}

function renderMyTaps(popped = false) {
  const box = $("#my-taps");
  show(box, myTaps.total > 0);
  setText($(".my-total", box), t("pk.my_taps", { n: fmtInt(myTaps.total) }));
  const combo = $(".combo", box);
  const on = myTaps.combo >= 3;
  combo.classList.toggle("on", on);
  setText(combo, on ? t("pk.combo", { n: myTaps.combo }) : "");
  if (popped && on && !document.hidden) {
    combo.animate([{ transform: "scale(1.25)" }, { transform: "scale(1)" }], { duration: 180, easing: "ease-out" });
  }
}

function tap(button, ev) {
  const side = button.dataset.side;
  if (store.state.show.status === "ended") return; // the show is over: taps no longer count
  if (conn) conn.send({ type: "like", side, count: 1 });
  shownLikes[side] += 1;
  countTap();
  renderLikes(store.state);
  const rect = button.getBoundingClientRect();
  const x = ev && ev.clientX ? ev.clientX - rect.left : rect.width / 2;
  const y = ev && ev.clientY ? ev.clientY - rect.top : rect.height / 2;
  burst(button, x, y);
  if (navigator.vibrate && Math.random() < 0.2) navigator.vibrate(8);
}

for (const button of $$("button.heart")) {
  // pointerdown: every finger counts at once; click with detail 0: keyboard.
  button.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    tap(button, ev);
  });
  button.addEventListener("click", (ev) => {
    if (ev.detail === 0) tap(button, null);
  });
  button.addEventListener("contextmenu", (ev) => ev.preventDefault());
}

// --- vote

async function vote(side) {
  if (busy.vote) return;
  busy.vote = side;
  renderVote(store.state);
  try {
    await sendWithRetry({ type: "vote", side });
    store.update((state) => {
      if (state.you) state.you.vote = side;
    });
    const info = store.state.show.sides[side] || {};
    toast(t("toast.vote_ok", { name: info.guest || info.name || side }), { kind: "ok" });
  } catch (err) {
    noteForbidden(err);
    toast(errorText(err, "vote"), { kind: "error" });
  } finally {
    busy.vote = null;
    renderVote(store.state);
  }
}

for (const button of $$("button.vote")) {
  button.addEventListener("click", () => vote(button.dataset.side));
}

// --- stance: before and after the debate (one per phase, changeable while it is open)

async function takeStance(phase, side) {
  if (busy.stance) return;
  busy.stance = side;
  renderStance(store.state);
  try {
    await sendWithRetry({ type: "stance", phase, side });
    store.update((state) => {
      if (!state.you) state.you = { vote: null, upvoted: [], banned: false };
      state.you.stance = { ...state.you.stance, [phase]: side };
    });
    toast(vt("saved"), { kind: "ok" });
  } catch (err) {
    noteForbidden(err);
    toast(errorText(err, "vote"), { kind: "error" });
  } finally {
    busy.stance = null;
    renderStance(store.state);
  }
}

$("#stance").addEventListener("click", (ev) => {
  const button = ev.target.closest("button.stance");
  const phase = openPhase(store.state);
  if (button && !button.disabled && phase) takeStance(phase, button.dataset.stance);
});

function renderStance(state) {
  const phase = state.show.status === "ended" ? null : openPhase(state);
  const card = $("#stance");
  show(card, Boolean(phase));
  if (!phase) return;
  setAttr(card, "data-phase", phase);
  setText($(".stance-title", card), vt(phase === "pre" ? "stancePre" : "stancePost"));
  const chosen = ((state.you && state.you.stance) || {})[phase] || null;
  const waitMs = voteOpensAt - performance.now(); // the same watch time as a vote
  for (const button of $$("button.stance", card)) {
    const side = button.dataset.stance;
    const info = state.show.sides[side] || {};
    button.disabled = busy.stance !== null || waitMs > 0 || Boolean(state.you && state.you.banned);
    button.classList.toggle("chosen", chosen === side);
    button.classList.toggle("busy", busy.stance === side);
    button.setAttribute("aria-pressed", String(chosen === side));
    setText($(".label", button), stanceLabel(state, side));
    const wait = waitMs > 0 && chosen !== side ? t("vote.wait", { s: Math.ceil(waitMs / 1000) }) : "";
    setText($(".sub", button), wait || (side === "u" ? "" : info.guest || ""));
  }
}

// The swing verdict, once the post-debate stance has closed: before -> after of the
// devices that answered both, who gained more, and the raw shares after.
let swingShown = ""; // the figures on the card: a tally with the same ones rebuilds nothing

function renderSwing(state) {
  const card = $("#swing");
  const view = swingFinal(state) ? swingView(state) : null;
  show(card, Boolean(view));
  const sig = view ? JSON.stringify(view) : "";
  if (!view || sig === swingShown) return;
  swingShown = sig;
  setAttr(card, "data-winner", view.winner);
  setText($(".swing-title", card), vt("title"));
  setText($(".swing-headline", card), view.headline);
  $(".swing-rows", card).replaceChildren(
    ...view.rows.map((r) => {
      const before = el("span", { class: "sw-fill sw-before" });
      const after = el("span", { class: "sw-fill sw-after" });
      before.style.transform = `scaleX(${r.before.toFixed(4)})`;
      after.style.transform = `scaleX(${r.after.toFixed(4)})`;
      return el(
        "div",
        { class: "sw-row", data: { side: r.side, gain: r.gain } },
        el("span", { class: "sw-name", text: r.name }),
        el("span", { class: "sw-shares", text: `${vt("before")} ${pct(r.before)} → ${vt("after")} ${pct(r.after)}` }),
        el("span", { class: "sw-gain", text: vt("gain", { n: signed(r.gain) }) }),
        el("span", { class: "sw-bar" }, before, after), // faint: before; solid: after
      );
    }),
  );
  setText($(".swing-post", card), view.postLine);
  setText($(".swing-note", card), view.note);
}

// --- ask

const form = $("#ask");
const textInput = form.elements.namedItem("text");
const nameInput = form.elements.namedItem("name");
const counter = $(".counter", form);
const submit = $(".submit", form);

const charCount = (s) => [...s].length;

function renderCounter() {
  const n = charCount(textInput.value);
  setText(counter, t("ask.counter", { n, max: LIMITS.questionChars }));
  counter.classList.toggle("over", n > LIMITS.questionChars);
  counter.classList.toggle("near", n > LIMITS.questionChars - 20 && n <= LIMITS.questionChars);
}

try {
  nameInput.value = localStorage.getItem(NAME_KEY) || "";
} catch {
  /* storage may be off in some webviews */
}
textInput.addEventListener("input", renderCounter);
renderCounter();

submit.dataset.label = submit.textContent.trim();

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (busy.ask) return;
  const text = textInput.value.trim();
  const name = nameInput.value.trim();
  if (!text) {
    toast(t("ask.empty"), { kind: "warn" });
    textInput.focus();
    return;
  }
  if (charCount(text) > LIMITS.questionChars || charCount(name) > LIMITS.nameChars) {
    toast(t("err.too_large", { q: LIMITS.questionChars, n: LIMITS.nameChars }), { kind: "error" });
    return;
  }
  busy.ask = true;
  form.classList.add("pending");
  submit.disabled = true;
  setText(submit, t("ask.sending"));
  try {
    const side = form.elements.namedItem("side").value; // "a", "b", or "" (both)
    const ack = await sendWithRetry({ type: "ask", text, name, ...(side ? { side } : {}) });
    if (ack && ack.question) mine.add(ack.question);
    textInput.value = "";
    renderCounter();
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      /* ignore */
    }
    toast(t("toast.ask_ok"), { kind: "ok", ms: 3600 });
    renderQuestions(store.state);
  } catch (err) {
    noteForbidden(err);
    toast(errorText(err, "ask"), { kind: "error", ms: 4200 });
  } finally {
    busy.ask = false;
    form.classList.remove("pending");
    submit.disabled = Boolean(store.state.you && store.state.you.banned);
    setText(submit, submit.dataset.label);
  }
});

// --- questions

async function upvote(id) {
  if (busy.upvote.has(id)) return;
  busy.upvote.add(id);
  renderQuestions(store.state);
  try {
    await sendWithRetry({ type: "upvote", question: id });
    markUpvoted(id);
  } catch (err) {
    if (err.code === "conflict" && isUpvoted(id)) return;
    noteForbidden(err);
    toast(errorText(err, "upvote"), { kind: "error" });
  } finally {
    busy.upvote.delete(id);
    renderQuestions(store.state);
  }
}

function isUpvoted(id) {
  const you = store.state.you;
  return Boolean(you && you.upvoted && you.upvoted.includes(id));
}

function markUpvoted(id) {
  store.update((state) => {
    if (!state.you) state.you = { vote: null, upvoted: [], banned: false };
    if (!state.you.upvoted.includes(id)) state.you.upvoted = [...state.you.upvoted, id];
  });
}

$("#questions").addEventListener("click", (ev) => {
  const button = ev.target.closest("button.upvote");
  if (!button || button.disabled) return;
  upvote(button.closest("li").dataset.id);
});

const isMine = (q) => Boolean(q.mine) || mine.has(q.id);
const VISIBLE = new Set(["approved", "featured", "answered"]);

function questionRank(q) {
  if (q.status === "featured") return 0;
  if (q.status === "pending") return 1;
  if (q.status === "approved") return 2;
  return 3; // answered
}

// A cluster is one card: its leader's words (or its first question this phone may see),
// and how many want it asked: its questions and every "我也想问" on them.
function clusters(questions) {
  const groups = new Map();
  for (const q of questions) {
    const key = q.status === "pending" ? `mine:${q.id}` : q.cluster || q.id; // guard: one card per cluster
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(q);
  }
  return [...groups].map(([key, members]) => {
    members.sort((x, y) => (x.id !== key) - (y.id !== key) || (x.created || 0) - (y.created || 0));
    const want = members.length + members.reduce((n, q) => n + (q.upvotes || 0), 0);
    return { key, q: members[0], members, want };
  });
}

function questionItem(key) {
  return el(
    "li",
    { class: "q", data: { cluster: key } },
    el("div", { class: "q-head" }, el("span", { class: "q-name" }), el("span", { class: "tag" })),
    el("p", { class: "q-text" }),
    el(
      "div",
      { class: "q-foot" },
      el("span", { class: "q-mine" }),
      el("button", { class: "upvote", type: "button" }, el("span", { class: "label" }), el("span", { class: "n" })),
    ),
  );
}

function updateQuestion(li, c) {
  const { q, members, want } = c;
  li.dataset.id = q.id;
  li.dataset.status = q.status;
  setAttr(li, "data-upvotes", q.upvotes || 0);
  setAttr(li, "data-want", want);
  const ours = members.some(isMine);
  li.classList.toggle("mine", ours);
  setText($(".q-name", li), (q.name || "").trim() || t("q.anonymous"));
  setText($(".q-text", li), q.text);
  const tagKey = { pending: "q.pending", featured: "q.featured", answered: "q.answered" }[q.status];
  setText($(".tag", li), tagKey ? t(tagKey) : "");
  const to = q.side && store.state.show.sides[q.side] ? t("ask.to", { name: store.state.show.sides[q.side].name || q.side }) : t("ask.to_both");
  setText($(".q-mine", li), ours ? t("q.mine") : to); // whom it is for
  setAttr(li, "data-side", q.side || "both");
  const button = $("button.upvote", li);
  const done = members.some((m) => isUpvoted(m.id)); // guard: one me-too per card
  button.disabled = done || ours || q.status === "pending" || busy.upvote.has(q.id) || store.state.show.status === "ended";
  button.classList.toggle("done", done);
  button.classList.toggle("busy", busy.upvote.has(q.id));
  button.setAttribute("aria-pressed", String(done));
  setText($(".label", button), t(done ? "q.metoo_done" : "q.metoo"));
  setText($(".n", button), fmtInt(want));
}

const renderQuestionList = keyedList($("#questions"), { key: (c) => c.key, create: (c) => questionItem(c.key), update: updateQuestion });

// Older questions: the snapshot has the newest page; "more" fetches the next one.
let paging = false;
$(".more-questions").addEventListener("click", async () => {
  const before = store.state.show.questions_older;
  if (paging || !before) return;
  paging = true;
  renderQuestions(store.state);
  try {
    const ack = await sendWithRetry({ type: "questions.page", before });
    store.addOlder(ack.questions, ack.older);
  } catch (err) {
    toast(errorText(err, "page"), { kind: "error" });
  } finally {
    paging = false;
    renderQuestions(store.state);
  }
});

function renderQuestions(state) {
  const visible = clusters(state.show.questions.filter((q) => VISIBLE.has(q.status) || (q.status === "pending" && isMine(q))))
    .sort((x, y) => questionRank(x.q) - questionRank(y.q) || y.want - x.want || (y.q.created || 0) - (x.q.created || 0));
  renderQuestionList(visible);
  show($(".q-card .empty"), visible.length === 0);
  const more = $(".more-questions");
  show(more, Boolean(state.show.questions_older));
  more.disabled = paging;
}

// Moderation in the open: "已收到 N 条，已上屏 M 条，已回答 K 条" (show.question_counts).
function renderCounts(state) {
  const c = state.show.question_counts || {};
  setText($("#q-counts"), t("q.counts", { n: fmtInt(c.received || 0), m: fmtInt(c.on_air || 0), k: fmtInt(c.answered || 0) }));
}

// --- render

function renderHeader(state) {
  const { show: s } = state;
  setText($(".show-title"), s.title || t("round.idle"));
  show($(".live-pill"), s.status === "live");
  const viewers = Number(s.tally.viewers) || 0;
  setAttr($("#viewers"), "data-count", viewers);
  setText($("#viewers .count"), fmtInt(viewers));
}

function renderRound(state) {
  const r = state.show.round;
  const card = $("#round");
  const started = r.index > 0 && r.status !== "idle";
  let status = r.status;
  const ms = remainingMs(state);
  if (status === "running" && ms <= 0) status = "timeup";
  setAttr(card, "data-status", status);
  setText($(".round-no", card), started ? t("round.n", { n: r.index }) : "");
  setText($(".topic", card), started ? r.topic || "" : t("round.idle"));
  const time = $(".time", card);
  show(time, started);
  const label = { paused: t("round.paused"), timeup: t("round.timeup"), finished: t("round.finished") }[status];
  setText(time, label ? (status === "paused" ? `${label} ${fmtClock(ms)}` : label) : fmtClock(ms));
  // The finished round's result (a sealed one's appears here at its reveal, not before).
  const last = r.status === "finished" ? (state.show.rounds || []).find((x) => x.index === r.index) : null;
  const result = $(".round-result", card);
  show(result, Boolean(last));
  if (last) {
    const v = last.votes || {};
    const win = last.winner ? (state.show.sides[last.winner] || {}).guest || last.winner : t("round.tie");
    const parts = [t("round.result", { n: last.index }), `${fmtInt(v.a || 0)} : ${fmtInt(v.b || 0)}`, win];
    if (last.sealed) parts.push(vt("revealed"));
    if (result.textContent !== parts.join(" · ")) {
      // each part whole on its line: the line breaks at the dots only
      result.replaceChildren(...parts.flatMap((part, i) => [i ? " · " : "", el("span", { class: "part", text: part })]));
    }
    setAttr(result, "data-winner", last.winner || "");
  }
}

function renderLikes(state) {
  const likes = state.show.tally.likes || {};
  for (const side of SIDES) {
    shownLikes[side] = Math.max(shownLikes[side], Number(likes[side]) || 0);
    const node = $(`button.heart[data-side=${side}] .likes`);
    setAttr(node, "data-value", shownLikes[side]);
    setText(node, fmtInt(shownLikes[side]));
  }
  const total = shownLikes.a + shownLikes.b;
  const share = total > 0 ? shownLikes.a / total : 0.5;
  $("#pk .fill-a").style.transform = `scaleX(${Math.min(0.97, Math.max(0.03, share))})`;
}

function renderSides(state) {
  const ended = state.show.status === "ended";
  for (const side of SIDES) {
    const info = state.show.sides[side] || {};
    const button = $(`button.heart[data-side=${side}]`);
    button.disabled = ended;
    setText($(".side-name", button), info.name || "");
    setText($(".guest", button), info.guest || info.name || "");
    setText($(".org", button), info.org || "");
    fitText($(".guest", button), { max: 24, min: 17, lines: 2 }); // a long name shrinks, then wraps
    button.setAttribute("aria-label", `${info.name || ""} ${info.guest || ""}`.trim() || side);
    setText($(`.ask-to [data-side=${side}] .to-label`), t("ask.to", { name: info.name || info.guest || side }));
    document.body.style.setProperty(`--${side}`, sideColor(state, side));
  }
}

function renderVote(state) {
  const r = state.show.round;
  const open = roundIsOpen(r);
  show($("#vote"), open);
  setText($("#vote .vote-topic"), open ? `${t("round.n", { n: r.index })} · ${r.topic || ""}` : "");
  renderSealed(state);
  const chosen = state.you ? state.you.vote : null;
  const waitMs = voteOpensAt - performance.now(); // a device watches a little before it votes
  for (const button of $$("button.vote")) {
    const side = button.dataset.side;
    const info = state.show.sides[side] || {};
    const name = info.guest || info.name || side;
    button.disabled = !open || waitMs > 0 || busy.vote !== null || Boolean(state.you && state.you.banned);
    button.classList.toggle("chosen", chosen === side);
    button.classList.toggle("busy", busy.vote === side);
    button.setAttribute("aria-pressed", String(chosen === side));
    const label = waitMs > 0 && chosen !== side ? t("vote.wait", { s: Math.ceil(waitMs / 1000) }) : "";
    setText($(".label", button), label || t(chosen === side ? "vote.chosen" : "vote.for", { name }));
  }
}

// A sealed round: the number of ballots only (the server sends no split until round.end).
function renderSealed(state) {
  const sealed = sealedNow(state);
  const box = $("#vote .vote-sealed");
  show(box, sealed);
  setText($(".ballots", box), sealed ? vt("ballots", { n: fmtInt(state.show.tally.ballots || 0) }) : "");
  setText($(".sealed-note", box), sealed ? vt("sealed") : "");
}

// The show is over: thanks, the final result (this element is the page's own; the
// season's "what is next" goes beside it in #ended-next), and nothing left to tap.
function renderEnded(state) {
  const ended = state.show.status === "ended";
  document.body.classList.toggle("ended", ended);
  show($("#ended"), ended);
  show($(".ask-card"), !ended);
  show($("#round"), !ended); // the last round is history: the result says how it went
  if (!ended) return;
  const box = $("#final");
  const { tally, sides } = state.show;
  const win = showWinner(state);
  const info = (win && sides[win]) || {};
  box.dataset.winner = win || "";
  setText($(".final-title", box), t("show.final"));
  setText($(".final-side", box), win ? info.name || "" : "");
  setText($(".final-name", box), win ? info.guest || info.name || win : t("show.draw"));
  setText($(".final-verdict", box), win ? t("show.winner") : "");
  const rows = [];
  if ((state.show.rounds || []).length) rows.push([t("pk.rounds"), tally.rounds_won]);
  if ((tally.points.a || 0) + (tally.points.b || 0) > 0) rows.push([t("pk.points"), tally.points]);
  rows.push([t("pk.likes"), tally.likes]);
  $(".final-rows", box).replaceChildren(
    ...rows.map(([label, v]) =>
      el("div", { class: "final-row" }, el("dt", { text: label }),
        el("dd", {}, el("span", { class: "a", text: fmtInt(v.a || 0) }), " : ", el("span", { class: "b", text: fmtInt(v.b || 0) }))),
    ),
  );
}

function renderBanned(state) {
  const banned = Boolean(state.you && state.you.banned);
  form.classList.toggle("banned", banned);
  if (!busy.ask) submit.disabled = banned;
  textInput.disabled = banned;
  nameInput.disabled = banned;
  setText($(".note", form), banned ? t("err.forbidden") : form.dataset.note);
}
form.dataset.note = $(".note", form).textContent.trim();

store.subscribe((state, frame) => {
  if (!state.ready) return;
  if (frame.type === "tally") {
    renderHeader(state);
    renderLikes(state);
    renderCounts(state);
    renderSealed(state);
    if (frame.stance) renderSwing(state);
    return;
  }
  renderCounts(state);
  renderSides(state);
  renderHeader(state);
  renderRound(state);
  renderLikes(state);
  renderVote(state);
  renderStance(state);
  renderSwing(state);
  renderQuestions(state);
  renderBanned(state);
  renderEnded(state);
  renderAfter(state); // the ended episode's block (season/after.js)
});
renderMyTaps();

setInterval(() => {
  if (!store.state.ready) return;
  if (store.state.show.round.status === "running") renderRound(store.state);
  if (voteOpensAt > performance.now() - 1000) {
    renderVote(store.state); // the countdown to voting
    renderStance(store.state);
  }
}, 250);

start();
