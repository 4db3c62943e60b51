// Host console: moderate questions, run rounds, set points, watch the numbers.
// Every action button waits for its ack (class `busy`, disabled); errors go to the toast.

import { connect } from "../common/ws.js";
import { LIMITS, OFFLINE } from "../common/protocol.js";
import { createStore, remainingMs, roundIsOpen, sideColor } from "../common/store.js";
import { $, $$, createToast, el, fmtClock, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, lang, t } from "../common/i18n.js";
import { createEditor } from "./edit.js";
import { createDesk } from "./desk.js";
import { createVerdictDesk } from "./verdict.js";

const SIDES = ["a", "b"];
const ACTIONS_BY_STATUS = {
  pending: ["approve", "feature", "reject"],
  approved: ["feature", "answered", "reject"],
  featured: ["unfeature", "answered", "reject"],
  answered: ["feature", "reject"],
  rejected: ["approve"],
};

const slug = document.body.dataset.slug;
const toast = createToast($("#toast"));
const store = createStore();
let busyRound = null; // round action in flight
const busyPoints = new Set();
const pointsDirty = new Set();
let online = false; // the socket is open and its snapshot arrived: actions can go out

// --- connection

// the moderator's name (desk.js keeps it) goes with every hello, so the others see who is who
const conn = connect({ role: "console", slug, onFrame, onStatus, hello: () => (desk && desk.name() ? { name: desk.name() } : {}) });

function onFrame(frame) {
  if (frame.type === "error") {
    toast(errorText(frame.code, frame), { kind: "error" });
    return;
  }
  if (frame.type === "notice") {
    renderNotice(frame);
    return;
  }
  if (frame.type === "snapshot") renderNotice(frame.notice);
  store.apply(frame);
}

// The server found the show's stored state lost (Redis wiped or foreign): nothing is
// saved any more until the operator acts. A banner says so for as long as it lasts.
function renderNotice(notice) {
  const box = $("#store-lost");
  const lost = notice?.kind === "store_lost";
  if (lost) {
    setText($(".expired-text", box), t("status.store_lost"));
    setText($(".detail", box), notice.message || "");
  }
  show(box, lost);
}

function onStatus({ state, code, restarting }) {
  const node = $("#conn-status");
  node.dataset.state = state;
  document.body.classList.toggle("stopped", state === "stopped");
  setText(node, t(state === "reconnecting" && restarting ? "status.restarting" : `status.${state}`));
  online = state === "open";
  renderOnline();
  if (state === "stopped") {
    const key = code === 4401 ? "status.4401.console" : code === 4404 ? "status.4404" : code === 4403 ? "status.4403" : "status.stopped";
    const box = $("#expired");
    setText($(".expired-text", box), t(key));
    const link = $("a", box);
    setText(link, t("action.login"));
    show(link, code === 4401 || code === 4403);
    show(box, true);
  }
}

function errorText(code, err = {}) {
  const retryMs = err.retryMs ?? err.retry_ms;
  switch (code) {
    case "rate_limited":
      return retryMs ? t("err.rate_limited", { s: Math.max(1, Math.ceil(retryMs / 1000)) }) : t("err.rate_limited_plain");
    case "too_large":
      return t("err.too_large_topic", { n: LIMITS.topicChars });
    case OFFLINE:
      return t("err.offline");
    case "invalid":
    case "forbidden":
    case "not_found":
    case "conflict":
    case "unavailable":
      // The server's message is English developer text: a useful detail only in the English UI.
      return err.message && lang === "en" ? `${t(`err.${code}`)} (${err.message})` : t(`err.${code}`);
    default:
      return t("err.invalid");
  }
}

// Send one action; `busy` bookkeeping is the caller's. Resolves true on ack.
async function act(msg, okText) {
  try {
    const ack = await conn.send(msg);
    if (okText) toast(okText, { kind: "ok" });
    return ack || true;
  } catch (err) {
    toast(errorText(err.code, err), { kind: "error", ms: 4200 });
    return false;
  }
}

// --- header

$(".bar [data-action='overlay.reload']").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  setBusy(button, true);
  await act({ type: "overlay.reload" }, t("host.reloaded"));
  setBusy(button, false);
});

function setBusy(button, on) {
  button.classList.toggle("busy", on);
  button.disabled = on || !online;
}

// While the console is not connected nothing it shows is live and nothing it sends
// would arrive: every action is disabled (the .desk fieldsets) and the live figures are
// marked stale ("数据未更新"); "screens on air" does not stay green on an old count.
function renderOnline() {
  document.body.classList.toggle("offline", !online);
  for (const desk of $$(".desk")) desk.disabled = !online; // guard: offline console
  const reload = $(".bar [data-action='overlay.reload']");
  if (!reload.classList.contains("busy")) reload.disabled = !online;
  if (!online) {
    const screens = $("#overlay-status");
    screens.dataset.state = "unknown";
    setText($(".n", screens), "–");
  }
}

function renderHeader(state) {
  const s = state.show;
  if (s.title) setText($(".show-title"), s.title);
  const status = $(".show-status");
  setAttr(status, "data-status", s.status);
  setText(status, t(`show.${s.status}`));
  for (const side of SIDES) document.body.style.setProperty(`--${side}`, sideColor(state, side));
}

// --- question queue: the desk (desk.js)

// an edit is a question action U can take back: the desk counts it
const editor = createEditor($("#queue"), { send: (msg) => conn.send(msg).then((ack) => (desk.noted(), ack)), toast, errorText });

// `banned` (device hashes) reaches consoles in `show` frames.
const isBanned = (state, device) => Array.isArray(state.show.banned) && state.show.banned.includes(device);

const desk = createDesk({ conn, store, act, toast, errorText, editor, actions: ACTIONS_BY_STATUS, isBanned, online: () => online });

// Older answered and rejected questions than the snapshot's, a page at a time (questions.page).
let paging = false;
const older = $(".queue-panel .more-questions");

function renderQueue(state) {
  desk.render(state);
  show(older, Boolean(state.show.questions_older) && ["all", "answered", "rejected"].includes(desk.filter()));
  older.disabled = paging;
}

$("#filters").addEventListener("click", () => renderQueue(store.state)); // after the desk's own handler

older.addEventListener("click", async () => {
  const before = store.state.show.questions_older;
  if (paging || !before) return;
  paging = true;
  renderQueue(store.state);
  const ack = await act({ type: "questions.page", before });
  paging = false;
  if (ack && ack.questions) store.addOlder(ack.questions, ack.older);
  else renderQueue(store.state);
});

// --- rounds

const roundPanel = $("#round");
const topicInput = $("#round-topic");
const durationInput = $("#round-duration");

function nextPlan(state) {
  const plan = Array.isArray(state.show.plan) ? state.show.plan : [];
  return plan[state.show.round.index] || null;
}

// The next round's topic follows the plan on every console: a topic this page filled in
// from the plan (and the host has not typed over) moves on with the rounds, whichever
// console started them; one the host typed stays.
let planTopic = null; // the topic this page last filled in from the plan

function fillFromPlan(state, { onlyIfEmpty }) {
  const item = nextPlan(state);
  const typed = topicInput.value.trim() !== "" && topicInput.value !== planTopic; // guard: plan follows
  if (onlyIfEmpty && (typed || document.activeElement === topicInput)) return false;
  if (!item) {
    if (topicInput.value === planTopic) topicInput.value = ""; // past the plan: no stale topic
    planTopic = null;
    return false;
  }
  topicInput.value = item.topic || "";
  planTopic = topicInput.value;
  if (item.duration_s) durationInput.value = String(item.duration_s);
  return true;
}

function renderRoundButtons(state) {
  const status = state.show.round.status;
  const ended = state.show.status === "ended";
  const allowed = {
    "round.start": !roundIsOpen(state.show.round) && !ended,
    "round.pause": status === "running",
    "round.resume": status === "paused",
    "round.end": roundIsOpen(state.show.round),
  };
  for (const button of $$(".round-buttons button", roundPanel)) {
    const action = button.dataset.action;
    button.disabled = busyRound !== null || !allowed[action];
    button.classList.toggle("busy", busyRound === action);
  }
  const end = $("[data-action='show.end']", roundPanel);
  end.disabled = busyRound !== null || ended;
  end.classList.toggle("busy", busyRound === "show.end");
  end.classList.toggle("confirm", endArmed !== 0);
  if (!end.dataset.label) end.dataset.label = end.textContent.trim();
  setText(end, endArmed ? t("host.end_confirm") : end.dataset.label);
}

// Ending the show takes two clicks: the first arms the button for a few seconds.
let endArmed = 0;

function armEnd() {
  endArmed = setTimeout(() => {
    endArmed = 0;
    renderRoundButtons(store.state);
  }, 4000);
  renderRoundButtons(store.state);
}

function renderRoundClock(state) {
  const r = state.show.round;
  const ms = remainingMs(state);
  let status = r.status;
  if (status === "running" && ms <= 0) status = "timeup";
  setAttr(roundPanel, "data-status", status);
  setText($(".round-time", roundPanel), r.index > 0 ? fmtClock(ms) : "--:--");
  setText($(".round-status", roundPanel), t(status === "timeup" ? "round.timeup" : `round.${r.status}`));
}

function renderRound(state) {
  const r = state.show.round;
  setText($(".round-no", roundPanel), r.index > 0 ? t("round.n", { n: r.index }) : "");
  setText($(".round-topic", roundPanel), r.index > 0 ? r.topic || "" : "");
  renderRoundClock(state);
  renderRoundButtons(state);
  const item = nextPlan(state);
  const minutes = item && item.duration_s ? t(item.duration_s % 60 ? "host.seconds" : "host.minutes", { n: item.duration_s % 60 ? item.duration_s : item.duration_s / 60 }) : "";
  setText($(".plan-next", roundPanel), item ? t("host.plan_next", { topic: item.topic || "", min: minutes }) : t("host.plan_none"));
  $("[data-action='plan.fill']", roundPanel).disabled = !item;
  fillFromPlan(state, { onlyIfEmpty: true });
}

function roundMessage(action) {
  if (action !== "round.start") return { type: action };
  const topic = topicInput.value.trim();
  const duration = Number(durationInput.value);
  if (!topic) {
    toast(t("host.topic_required"), { kind: "warn" });
    topicInput.focus();
    return null;
  }
  if ([...topic].length > LIMITS.topicChars) {
    toast(t("err.too_large_topic", { n: LIMITS.topicChars }), { kind: "warn" });
    return null;
  }
  if (!Number.isInteger(duration) || duration < LIMITS.durationMin || duration > LIMITS.durationMax) {
    toast(t("host.duration_range", { lo: LIMITS.durationMin, hi: LIMITS.durationMax }), { kind: "warn" });
    durationInput.focus();
    return null;
  }
  // The plan's topic as this page shows it: sent empty, so the server takes its own plan's
  // topic for the round it starts (never a topic this page filled in a round ago).
  const fromPlan = planTopic !== null && topicInput.value === planTopic;
  return { type: "round.start", topic: fromPlan ? "" : topic, duration_s: duration, sealed: verdict.sealed() };
}

roundPanel.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const action = button.dataset.action;
  if (action === "plan.fill") {
    fillFromPlan(store.state, { onlyIfEmpty: false });
    return;
  }
  if (busyRound) return;
  if (action === "show.end" && !endArmed) {
    armEnd();
    return;
  }
  clearTimeout(endArmed);
  endArmed = 0;
  const msg = roundMessage(action);
  if (!msg) return;
  busyRound = action;
  renderRoundButtons(store.state);
  const ok = await act(msg, action === "show.end" ? t("host.show_ended") : "");
  busyRound = null;
  if (ok && action === "round.start") {
    topicInput.value = "";
    planTopic = null;
    toast(t("host.round_started", { n: store.state.show.round.index }), { kind: "ok" });
  }
  renderRound(store.state);
});

function renderRoundsTable(state) {
  const rounds = Array.isArray(state.show.rounds) ? state.show.rounds : [];
  const sides = state.show.sides;
  const rows = rounds.map((r) => {
    const votes = r.votes || {};
    const winner = r.winner && sides[r.winner] ? sides[r.winner].guest || sides[r.winner].name : t("round.tie");
    return el(
      "tr",
      { data: { winner: r.winner || "tie" } },
      el("td", { text: t("round.n", { n: r.index }) }),
      el("td", { class: "topic", text: r.topic || "" }),
      el("td", { class: "votes", text: `${fmtInt(votes.a || 0)} : ${fmtInt(votes.b || 0)}` }),
      el("td", { class: "winner", text: winner }),
    );
  });
  $("#rounds-table tbody").replaceChildren(...rows);
  show($("#rounds .empty"), rows.length === 0);
  show($("#rounds-table"), rows.length > 0);
}

// --- points

const pointsPanel = $("#points");
const pointsInput = (side) => $(`input[data-points=${side}]`, pointsPanel);

function readPoints(side) {
  const n = Number(pointsInput(side).value);
  return Number.isInteger(n) && n >= 0 && n <= LIMITS.pointsMax ? n : null;
}

function renderPoints(state) {
  for (const side of SIDES) {
    const row = $(`.pts[data-side=${side}]`, pointsPanel);
    const info = state.show.sides[side] || {};
    setText($(".who", row), [info.name, info.guest].filter(Boolean).join(" · ") || side);
    const input = pointsInput(side);
    const server = (state.show.tally.points && state.show.tally.points[side]) || 0;
    if (!pointsDirty.has(side) && document.activeElement !== input) input.value = String(server);
    row.classList.toggle("dirty", pointsDirty.has(side) && readPoints(side) !== server);
    const set = $("button[data-action='points.set']", row);
    set.disabled = busyPoints.has(side);
    set.classList.toggle("busy", busyPoints.has(side));
  }
}

pointsPanel.addEventListener("input", (ev) => {
  const side = ev.target.dataset.points;
  if (side) {
    pointsDirty.add(side);
    renderPoints(store.state);
  }
});

pointsPanel.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button");
  if (!button) return;
  const side = button.dataset.side;
  if (button.dataset.step) {
    const input = pointsInput(side);
    const n = (readPoints(side) ?? 0) + Number(button.dataset.step);
    input.value = String(Math.min(LIMITS.pointsMax, Math.max(0, n)));
    pointsDirty.add(side);
    renderPoints(store.state);
    return;
  }
  if (button.dataset.action !== "points.set" || busyPoints.has(side)) return;
  const points = readPoints(side);
  if (points === null) {
    toast(t("host.points_range", { max: LIMITS.pointsMax }), { kind: "warn" });
    return;
  }
  busyPoints.add(side);
  renderPoints(store.state);
  const info = store.state.show.sides[side] || {};
  const ok = await act({ type: "points.set", side, points }, t("host.points_set", { side: info.guest || info.name || side, n: points }));
  busyPoints.delete(side);
  if (ok) pointsDirty.delete(side);
  renderPoints(store.state);
});

// --- live stats

const likeSamples = []; // [time, total likes]

function totalLikes(state) {
  const likes = state.show.tally.likes || {};
  return (Number(likes.a) || 0) + (Number(likes.b) || 0);
}

function sampleLikes() {
  if (!store.state.ready) return;
  const now = performance.now();
  likeSamples.push([now, totalLikes(store.state)]);
  while (likeSamples.length > 2 && now - likeSamples[1][0] >= 3000) likeSamples.shift();
  const [t0, v0] = likeSamples[0];
  const span = (now - t0) / 1000;
  const lps = span > 0.2 ? Math.max(0, (likeSamples[likeSamples.length - 1][1] - v0) / span) : 0;
  setText($("#stat-lps"), lps >= 10 ? fmtInt(lps) : lps.toFixed(1));
}

// Votes counted and held back (docs/reliability.md, "Integrity"): the console sees both.
function renderIntegrity(state) {
  const tally = state.show.tally;
  const held = tally.held || {};
  const n = (held.a || 0) + (held.b || 0);
  const reasons = tally.held_reasons || {};
  const box = $("#integrity");
  setAttr(box, "data-held", n);
  const detail = Object.entries(reasons)
    .filter(([, count]) => count > 0)
    .map(([reason, count]) => t(`host.held.${reason}`, { n: fmtInt(count) }))
    .join(" · ");
  setText($(".integrity-text", box), n ? t("host.held", { n: fmtInt(n), detail }) : t("host.held_none"));
  show($("[data-action='votes.release']", box), n > 0 && roundIsOpen(state.show.round));
}

function renderVenues(state) {
  const venues = Array.isArray(state.show.venues) ? state.show.venues : [];
  $("#venues").replaceChildren(
    ...venues.map((net) =>
      el("li", { data: { network: net } }, el("span", { class: "mono", text: net }),
        el("button", { class: "btn tiny ghost", type: "button", data: { action: "venue.remove", network: net }, text: t("host.venue_remove") })),
    ),
  );
}

function overlayUrl(state) {
  const key = state.show.overlay_key;
  if (!key) return "";
  const base = document.body.dataset.publicUrl || location.origin;
  return `${base}/overlay/${encodeURIComponent(slug)}?key=${encodeURIComponent(key)}`;
}

function renderScreens(state) {
  const input = $("#overlay-url");
  if (input.value !== overlayUrl(state)) input.value = overlayUrl(state);
}

async function onPanelAction(ev) {
  const button = ev.target.closest("button[data-action]");
  if (!button || button.disabled) return;
  const action = button.dataset.action;
  if (action === "overlay.copy") {
    const input = $("#overlay-url");
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      document.execCommand("copy");
    }
    toast(t("host.copied"), { kind: "ok" });
    return;
  }
  let msg = null;
  if (action === "votes.release") msg = { type: "votes.release", reason: "" };
  else if (action === "venue.here") msg = { type: "venue.add", network: "here" };
  else if (action === "venue.add") msg = { type: "venue.add", network: $("#venue-network").value.trim() };
  else if (action === "venue.remove") msg = { type: "venue.remove", network: button.dataset.network };
  else if (action === "overlay.rekey") msg = { type: "overlay.rekey" };
  if (!msg) return;
  setBusy(button, true);
  const ok = await act(msg, t(`host.done.${action}`));
  setBusy(button, false);
  if (ok && action === "venue.add") $("#venue-network").value = "";
}

for (const id of ["#integrity", "#venue", "#screens"]) $(id).addEventListener("click", onPanelAction);

function renderStats(state) {
  renderIntegrity(state);
  const tally = state.show.tally;
  setText($("#stat-viewers"), fmtInt(tally.viewers));
  setText($("#stat-peak"), fmtInt(tally.peak_viewers));
  setText($("#stat-unique"), fmtInt(tally.unique_viewers));
  setText($("#stat-votes"), `${fmtInt(tally.votes.a || 0)} : ${fmtInt(tally.votes.b || 0)}`);
  setText($("#stat-likes"), fmtInt(totalLikes(state)));
  const overlays = tally.overlays || 0;
  const overlayStatus = $("#overlay-status");
  if (overlayStatus) {
    setText(overlayStatus.querySelector(".n"), fmtInt(overlays));
    overlayStatus.dataset.state = overlays > 0 ? "open" : "stopped";
  }
}

// --- verdicts: stances, sealed rounds, the speaking clock (verdict.js)

const verdict = createVerdictDesk({ store, act, online: () => online });

// --- wiring

store.subscribe((state, frame) => {
  if (!state.ready) return;
  if (frame.type === "tally") {
    renderStats(state);
    renderPoints(state);
    desk.counts(state); // question_counts: answered on air per side
    verdict.tally(state);
    return;
  }
  if (frame.type === "snapshot") likeSamples.length = 0;
  renderHeader(state);
  renderQueue(state);
  renderRound(state);
  renderRoundsTable(state);
  renderPoints(state);
  renderStats(state);
  renderVenues(state);
  renderScreens(state);
  verdict.render(state);
});

setInterval(() => {
  if (!store.state.ready) return;
  renderRoundClock(store.state);
  verdict.tick(store.state);
}, 250);
setInterval(sampleLikes, 500);
