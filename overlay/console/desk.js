// The question desk (issue 16, docs/question-desk.md): the queue as cluster cards ordered by
// how many people want each asked, a side filter and a view balanced between the sides, the
// live "answered on air" count per side, a keyboard shortcut for every action (a host moderates
// without the mouse), the other moderators on the cards they are on, who did what, and undo.
//
//   const desk = createDesk({ conn, store, act, toast, errorText, editor, actions, isBanned, online });
//   desk.render(state);   // after every state frame

import { $, $$, el, fmtTime, keyedList, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";

const GROUP_ORDER = ["pending", "featured", "approved", "answered", "rejected"];
const NAME_KEY = "leitai.moderator"; // this console's moderator name, kept by the browser
const FOCUS_DEBOUNCE_MS = 150; // "I am on this card": sent once the cursor rests
const FOCUS_REFRESH_MS = 60_000; // said again while resting (the server forgets after two minutes)
const PRESENCE_TTL_MS = 120_000; // another moderator silent this long is no longer on a card
// key -> what it does. Shown on the buttons (data-key) and in the legend (#desk-keys).
const KEYS = { a: "approve", r: "reject", f: "feature", o: "unfeature", d: "answered", m: "merge", s: "split", u: "undo" };
const ACTION_KEY = Object.fromEntries(Object.entries(KEYS).map(([k, a]) => [a, k.toUpperCase()]));
const SIDE_FILTERS = ["all", "a", "b", "both", "balanced"]; // V goes round them (0–3 are the floor's: verdict.js)
const ADVANCE = new Set(["approve", "reject"]); // done with this card: the cursor moves on
const UNDO_PRESSES = 20; // = the server's undo depth per moderator

export function createDesk({ conn, store, act, toast, errorText, editor, actions, isBanned, online }) {
  const queue = $("#queue");
  const busy = new Map(); // question id -> action in flight
  const expanded = new Set(); // leaders whose originals are shown
  const confirmingBan = new Map(); // question id -> timer (a ban takes two presses)
  let filter = "all";
  const PAGED_FILTERS = ["all", "answered", "rejected"]; // the statuses a snapshot carries only the newest of
  let sideFilter = "all";
  let cursor = null; // the question id the keys act on (a card's leader, or an original in it)
  let cursorIndex = 0; // where it was, for when its card leaves the view
  let mergeFrom = null; // a card picked to merge (M), waiting for its target
  let order = []; // the rows the cursor walks, in display order
  let myName = (localStorage.getItem(NAME_KEY) || "").slice(0, 20);
  let myId = null; // this console's moderator id, learnt from the echo of its own focus
  let sentFocus = null;
  let focusTimer = 0;
  let pressedAt = 0; // the keydown's time (event.timeStamp) of the press being handled
  let done = 0; // acknowledged actions (#desk-status data-done, for the tests)
  const presses = []; // how many server actions each of this console's last presses made (for U)

  // --- the moderator's name, said in every hello and now

  const nameInput = $("#desk-name");
  nameInput.value = myName;
  nameInput.addEventListener("change", () => {
    myName = nameInput.value.trim().slice(0, 20);
    nameInput.value = myName;
    localStorage.setItem(NAME_KEY, myName);
    myId = null;
    if (myName) conn.send({ type: "hello", name: myName }).catch(() => {});
    sendFocus(true);
  });
  nameInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") nameInput.blur();
  });

  // --- clusters

  function cards(questions) {
    const byLeader = new Map();
    for (const q of questions) {
      const key = q.cluster || q.id;
      if (!byLeader.has(key)) byLeader.set(key, []);
      byLeader.get(key).push(q);
    }
    const out = [];
    for (const [key, group] of byLeader) {
      group.sort((x, y) => (x.id !== key) - (y.id !== key) || (x.created || 0) - (y.created || 0));
      const lead = group[0];
      const counted = group.filter((q) => q.status !== "rejected");
      const weight = counted.length + counted.reduce((n, q) => n + (q.upvotes || 0), 0);
      // an approved card with questions waiting is back with those waiting (A approves them)
      const waiting = group.filter((q) => q.status === "pending").length;
      const status = lead.status === "approved" && waiting ? "pending" : lead.status;
      out.push({ id: lead.id, lead, members: group, weight, waiting, status, side: lead.side || null });
    }
    return out;
  }

  const byWeight = (x, y) => y.weight - x.weight || (y.lead.created || 0) - (x.lead.created || 0);

  // Balanced: within each status, the side that has answered fewer on air first, then the
  // other, then "both", round and round, each lane by weight.
  function balance(list, state) {
    const answered = (state.show.question_counts || {}).answered_by_side || {};
    const sides = ["a", "b"].sort((x, y) => (answered[x] || 0) - (answered[y] || 0));
    const lanes = [...sides, null].map((s) => list.filter((c) => c.side === s));
    const out = [];
    for (let i = 0; out.length < list.length; i++) for (const lane of lanes) if (lane[i]) out.push(lane[i]);
    return out;
  }

  function arrange(state) {
    const all = cards(state.show.questions);
    const groups = GROUP_ORDER.map((status) => all.filter((c) => c.status === status).sort(byWeight));
    return groups.flatMap((g) => (sideFilter === "balanced" ? balance(g, state) : g));
  }

  const sideShown = (c) => sideFilter === "all" || sideFilter === "balanced" || (sideFilter === "both" ? c.side === null : c.side === sideFilter);
  const isShown = (c) => (filter === "all" || filter === c.status) && sideShown(c);

  // --- presence: who else is on which card

  function others(state) {
    const now = performance.now();
    const at = new Map(); // question id -> [names]
    for (const m of state.desk.values()) {
      if (!m.question || now - m.seen > PRESENCE_TTL_MS) continue;
      if (m.id === (state.moderator || myId)) continue; // this console (older servers: its own echo)
      if (myId === null && m.name === myName && m.question === sentFocus) myId = m.id;
      if (!at.has(m.question)) at.set(m.question, []);
      at.get(m.question).push(m.name || "?");
    }
    return at;
  }

  function sendFocus(now = false) {
    clearTimeout(focusTimer);
    focusTimer = setTimeout(
      () => {
        if (!online()) return;
        sentFocus = cursor;
        conn.send({ type: "desk.focus", question: cursor }).catch(() => {});
      },
      now ? 0 : FOCUS_DEBOUNCE_MS,
    );
  }
  setInterval(() => {
    if (cursor && online()) sendFocus(true);
  }, FOCUS_REFRESH_MS);

  // --- rows

  function actionButtons(box, q) {
    const list = actions[q.status] || [];
    if (box.dataset.for !== list.join()) {
      box.replaceChildren(
        ...list.map((a) =>
          el("button", {
            class: `btn small act-${a}`,
            type: "button",
            data: { action: a, key: ACTION_KEY[a] || "" },
            "aria-keyshortcuts": ACTION_KEY[a] || null,
            text: t(`action.${a}`),
          }),
        ),
      );
      box.dataset.for = list.join();
    }
    const inFlight = busy.get(q.id);
    for (const button of $$("button", box)) {
      button.disabled = Boolean(inFlight);
      button.classList.toggle("busy", inFlight === button.dataset.action);
    }
  }

  function cardItem(id) {
    return el(
      "li",
      { class: "qi", data: { id } },
      el(
        "div",
        { class: "qi-main" },
        el(
          "div",
          { class: "qi-meta" },
          el("span", { class: "chip" }),
          el("span", { class: "qi-side" }),
          el("span", { class: "flag", text: t("q.flagged"), hidden: true }),
          el("span", { class: "qi-name" }),
          el("span", { class: "qi-time" }),
          el("span", { class: "qi-want" }),
          el("span", { class: "qi-waiting" }),
          el("span", { class: "qi-by" }),
          el("span", { class: "qi-here" }),
          el("span", { class: "qi-device" }),
          el("button", { class: "btn tiny act-ban", type: "button", data: { action: "ban" }, hidden: true }),
          el("button", { class: "btn tiny act-edit", type: "button", data: { action: "edit" }, hidden: true }),
        ),
        el("p", { class: "qi-text" }),
        el("p", { class: "qi-original", hidden: true }),
        el("button", { class: "qi-more", type: "button", data: { action: "expand", key: "X" }, "aria-keyshortcuts": "X", hidden: true }),
        el("div", { class: "qi-members", hidden: true }),
      ),
      el("div", { class: "qi-actions" }),
    );
  }

  function memberRow(q) {
    return el(
      "div",
      { class: "qm", data: { id: q.id } },
      el(
        "div",
        { class: "qm-main" },
        el("span", { class: "chip" }),
        el("span", { class: "qm-name" }),
        el("span", { class: "qi-by" }),
        el("span", { class: "qi-here" }),
        el("p", { class: "qm-text" }),
      ),
      el(
        "div",
        { class: "qm-actions" },
        el("button", {
          class: "btn tiny act-split",
          type: "button",
          data: { action: "split", key: "S" },
          "aria-keyshortcuts": "S",
          text: t("host.desk.split"),
        }),
        el("div", { class: "qm-mod" }),
      ),
    );
  }

  function sideLabel(state, side) {
    if (!side) return t("host.desk.to_both");
    const info = state.show.sides[side] || {};
    return t("host.desk.to_side", { name: info.name || side });
  }

  function renderHere(node, names) {
    setText(node, names.length ? t("host.desk.here", { names: names.join("、") }) : "");
    show(node, names.length > 0);
  }

  // who acted on it: a question's moderator; on a card, every moderator of its questions
  function renderBy(node, ...qs) {
    const names = [...new Set(qs.map((q) => q.by).filter(Boolean))];
    setText(node, names.length ? t("host.desk.by", { name: names.join("、") }) : "");
    show(node, names.length > 0);
  }

  function updateMember(row, q, ctx) {
    setAttr(row, "data-status", q.status);
    row.classList.toggle("cursor", cursor === q.id);
    setText($(".chip", row), t(`q.${q.status}`));
    setText($(".qm-name", row), (q.name || "").trim() || t("q.anonymous"));
    setText($(".qm-text", row), q.text || "");
    renderBy($(".qi-by", row), q);
    renderHere($(".qi-here", row), ctx.here.get(q.id) || []);
    const split = $(".act-split", row);
    split.disabled = busy.has(q.id);
    actionButtons($(".qm-mod", row), q);
  }

  // What a card shows, as one string: a card whose string has not changed is not touched
  // (thousands of cards, a render on every frame).
  function signature(c, ctx) {
    const q = c.lead;
    const members = c.members.map((m) => [m.id, m.status, m.by, m.text, m.name, m.upvotes, busy.get(m.id), (ctx.here.get(m.id) || []).join()]);
    return JSON.stringify([
      q.original, q.flagged, q.created, q.device, q.device && isBanned(ctx.state, q.device), confirmingBan.has(q.id),
      sideLabel(ctx.state, c.side), c.weight, c.waiting, c.status, members, isShown(c), expanded.has(c.id),
      mergeFrom === c.id, c.members.some((m) => m.id === cursor) ? cursor : "", editor.isEditing(q.id),
    ]);
  }

  function updateCard(li, c, ctx) {
    const sig = signature(c, ctx);
    if (li._sig === sig) return;
    li._sig = sig;
    const { state, here } = ctx;
    const q = c.lead;
    li.dataset.status = q.status;
    setAttr(li, "data-side", c.side || "both");
    setAttr(li, "data-weight", c.weight);
    setAttr(li, "data-members", c.members.length);
    li.classList.toggle("flagged", Boolean(q.flagged));
    li.classList.toggle("cursor", cursor === q.id);
    li.classList.toggle("merge-from", mergeFrom === q.id);
    setText($(".chip", li), t(`q.${q.status}`));
    setText($(".qi-side", li), sideLabel(state, c.side));
    show($(".flag", li), Boolean(q.flagged));
    setText($(".qi-name", li), (q.name || "").trim() || t("q.anonymous"));
    setText($(".qi-time", li), fmtTime(q.created, true));
    const want = $(".qi-want", li);
    setText(want, t("host.desk.want", { n: fmtInt(c.weight) }));
    show(want, c.weight > 1);
    const waiting = $(".qi-waiting", li);
    setText(waiting, t("host.desk.waiting", { n: fmtInt(c.waiting) }));
    show(waiting, c.waiting > 0 && q.status !== "pending"); // an aired or approved card that new ones joined
    renderBy($(".qi-by", li), q, ...c.members.slice(1));
    const names = c.members.flatMap((m) => here.get(m.id) || []);
    renderHere($(".qi-here", li), names);
    li.classList.toggle("others-here", names.length > 0);
    setText($(".qi-device", li), q.device ? t("host.device", { id: q.device }) : "");
    setText($(".qi-text", li), q.text || "");
    editor.render(li, q);
    actionButtons($(".qi-actions", li), q);
    // ban / unban the device that asked (two presses to ban)
    const ban = $(".act-ban", li);
    show(ban, Boolean(q.device));
    if (q.device) {
      const action = isBanned(state, q.device) ? "unban" : "ban";
      const confirm = action === "ban" && confirmingBan.has(q.id);
      ban.dataset.action = action;
      setText(ban, t(confirm ? "action.ban_confirm" : `action.${action}`));
      ban.classList.toggle("confirm", confirm);
      ban.disabled = busy.has(q.id);
    }
    // the originals, one press away
    const rest = c.members.slice(1);
    const open = expanded.has(c.id) && rest.length > 0;
    const more = $(".qi-more", li);
    show(more, rest.length > 0);
    setText(more, open ? t("host.desk.collapse") : t("host.desk.expand", { n: rest.length }));
    more.setAttribute("aria-expanded", String(open));
    const box = $(".qi-members", li);
    show(box, open);
    if (open || box.childElementCount) {
      if (!box._render) box._render = keyedList(box, { create: memberRow, update: updateMember });
      box._render(open ? rest : [], ctx);
    }
    show(li, isShown(c));
  }

  const renderCards = keyedList(queue, { create: (c) => cardItem(c.id), update: updateCard });

  // Frames re-render once per animation frame at most; the desk's own moves at once.
  let scheduled = false;
  function render() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      renderNow(store.state);
    });
  }

  function renderNow(state) {
    const list = arrange(state);
    const counts = { all: 0 };
    for (const c of list) {
      if (!sideShown(c)) continue;
      counts.all += 1;
      counts[c.status] = (counts[c.status] || 0) + 1;
    }
    // Older answered and rejected questions not loaded yet (questions.page): those counts are "at least".
    const partial = state.show.questions_older ? PAGED_FILTERS : [];
    for (const button of $$("#filters button")) {
      const f = button.dataset.filter;
      setText($(".n", button), `${counts[f] || 0}${partial.includes(f) ? "+" : ""}`);
    }
    const shown = list.filter(isShown);
    order = shown.flatMap((c) => [c.id, ...(expanded.has(c.id) ? c.members.slice(1).map((m) => m.id) : [])]);
    if (cursor !== null && !order.includes(cursor)) cursor = null;
    if (cursor === null && order.length) {
      cursor = order[Math.min(cursorIndex, order.length - 1)];
      sendFocus();
    }
    if (cursor !== null) cursorIndex = order.indexOf(cursor);
    if (mergeFrom !== null && !state.show.questions.some((q) => q.id === mergeFrom)) mergeFrom = null;
    renderCards(list, { state, here: others(state) });
    show($(".queue-panel .empty"), shown.length === 0);
    renderSides(state);
    renderMerge();
  }

  // Answered on air, per side, live (question_counts.answered_by_side).
  function renderSides(state) {
    const counts = state.show.question_counts || {};
    const by = counts.answered_by_side || {};
    for (const side of ["a", "b", "both"]) {
      const node = $(`#desk-answered [data-side=${side}]`);
      setText($(".name", node), side === "both" ? t("host.desk.both") : (state.show.sides[side] || {}).name || side);
      setText($(".n", node), fmtInt(by[side] || 0));
    }
    for (const side of ["a", "b"]) {
      const name = (state.show.sides[side] || {}).name;
      if (name) setText($(`#side-filters [data-side=${side}]`), t("host.desk.to_side", { name }));
    }
    setText($("#desk-received"), t("host.desk.received", { n: fmtInt(counts.received || 0), m: fmtInt(counts.on_air || 0) }));
  }

  function renderMerge() {
    const bar = $("#desk-merge");
    show(bar, mergeFrom !== null);
    if (mergeFrom === null) return;
    const q = store.state.show.questions.find((x) => x.id === mergeFrom);
    setText($(".text", bar), t("host.desk.merge_pick", { text: q ? q.text.slice(0, 24) : mergeFrom }));
  }

  // --- moving

  function rowOf(id) {
    return id ? queue.querySelector(`[data-id="${CSS.escape(id)}"]`) : null;
  }

  function moveTo(id, { scroll = true } = {}) {
    if (id === null || id === undefined) return;
    cursor = id;
    cursorIndex = order.indexOf(id);
    renderNow(store.state);
    const row = rowOf(id);
    if (scroll && row) row.scrollIntoView({ block: "nearest" });
    sendFocus();
  }

  function step(delta) {
    if (!order.length) return;
    const i = cursor === null ? -1 : order.indexOf(cursor);
    moveTo(order[Math.max(0, Math.min(order.length - 1, i + delta))]);
  }

  const leaderOf = (id) => {
    const q = store.state.show.questions.find((x) => x.id === id);
    return q ? q.cluster || q.id : id;
  };

  // --- acting

  function status(text, kind) {
    const node = $("#desk-status");
    setText(node, text);
    node.dataset.kind = kind;
    node.dataset.done = String(done);
  }

  // The server's `conflict` says what stood in the way; the console says it in the host's words.
  function conflictText(action, id, err) {
    const message = err.message || "";
    if (action === "undo") return t(/nothing/.test(message) ? "host.desk.undo_none" : "host.desk.undo_stale");
    if (action === "merge") return t("host.desk.merge_same");
    if (action === "split") return t("host.desk.split_alone");
    const q = store.state.show.questions.find((x) => x.id === id);
    const name = (/\(([^()]+)\)\s*$/.exec(message) || [])[1] || (q && q.by) || "";
    const was = (/that is (\w+)/.exec(message) || [])[1] || (q && q.status) || "";
    const statusText = was ? t(`q.${was}`) : "";
    return name ? t("host.desk.taken", { name, status: statusText }) : t("host.desk.taken_plain", { status: statusText });
  }

  // One action: its messages one after the other (a card's approval is its questions'),
  // each acknowledged before the next. How many went through is kept, so that U takes
  // back the whole press (the server keeps each moderator's last actions: `question.undo`).
  async function run(action, id, msgs) {
    const started = pressedAt || performance.now(); // from the key, when a key did it
    pressedAt = 0;
    if (id && busy.has(id)) return false;
    if (id) busy.set(id, action);
    renderNow(store.state);
    let applied = 0;
    try {
      for (const msg of msgs) {
        await conn.send(msg);
        applied += 1;
      }
      done += 1;
      const ms = Math.round(performance.now() - started);
      status(t("host.desk.done", { action: actionLabel(action), ms }), "ok");
      $("#desk-status").dataset.ms = String(ms);
    } catch (err) {
      const text = err.code === "conflict" ? conflictText(action, id, err) : errorText(err.code, err);
      status(text, err.code === "conflict" ? "conflict" : "error");
      toast(text, { kind: "error", ms: 5000 });
    } finally {
      if (id) busy.delete(id);
      if (action === "undo") {
        const left = (presses.pop() || 1) - applied;
        if (left > 0 && applied > 0) presses.push(left);
      } else if (applied > 0) presses.push(applied);
      while (presses.length > UNDO_PRESSES) presses.shift();
      renderNow(store.state);
    }
    return applied === msgs.length;
  }

  function undo() {
    const n = presses.length ? presses[presses.length - 1] : 1;
    return run("undo", null, Array.from({ length: n }, () => ({ type: "question.undo" })));
  }

  const actionLabel = (action) => (["merge", "split", "undo"].includes(action) ? t(`host.desk.${action}`) : t(`action.${action}`));

  // On a card, approve and reject take its questions still waiting too, and "answered"
  // its approved ones: one press for the whole cluster. On an original, that one only.
  function targets(action, id) {
    const cluster = store.state.show.questions.filter((q) => (q.cluster || q.id) === id && q.id !== id);
    const also = { approve: ["pending"], reject: ["pending"], answered: ["approved"] }[action] || [];
    return [id, ...cluster.filter((q) => also.includes(q.status) && !busy.has(q.id)).map((q) => q.id)];
  }

  function moderate(action, id) {
    if (!id) return;
    if (ADVANCE.has(action)) {
      const i = order.indexOf(id);
      const next = order.slice(i + 1).find((x) => leaderOf(x) !== leaderOf(id)) ?? order.slice(0, i).reverse().find((x) => leaderOf(x) !== leaderOf(id));
      if (next) moveTo(next);
    }
    let ids = targets(action, id);
    const lead = store.state.show.questions.find((q) => q.id === id);
    // an approved card with new questions waiting: A approves those
    if (lead && ids.length > 1 && action === "approve" && lead.status !== "pending" && lead.status !== "rejected") ids = ids.slice(1);
    run(action, id, ids.map((q) => ({ type: `question.${action}`, question: q })));
  }

  function pickMerge(id) {
    if (!id) return;
    if (mergeFrom === null) {
      mergeFrom = leaderOf(id);
      renderNow(store.state);
      return;
    }
    const from = mergeFrom;
    mergeFrom = null;
    if (leaderOf(id) === from) {
      renderNow(store.state);
      return;
    }
    run("merge", from, [{ type: "question.merge", question: from, into: id }]);
  }

  function split(id) {
    if (!id) return;
    if (leaderOf(id) === id) {
      // on a card: open it and go to its first original (S again splits that one)
      const q = store.state.show.questions.filter((x) => (x.cluster || x.id) === id && x.id !== id);
      if (!q.length) {
        status(t("host.desk.split_alone"), "conflict");
        return;
      }
      expanded.add(id);
      renderNow(store.state);
      step(1);
      return;
    }
    run("split", id, [{ type: "question.split", question: id }]);
  }

  function toggle(id) {
    const leader = leaderOf(id);
    if (expanded.has(leader)) expanded.delete(leader);
    else expanded.add(leader);
    moveTo(leader);
  }

  function setSideFilter(value) {
    sideFilter = value;
    for (const b of $$("#side-filters button")) {
      b.classList.toggle("on", b.dataset.side === value);
      b.setAttribute("aria-pressed", String(b.dataset.side === value));
    }
    renderNow(store.state);
  }

  // --- the keyboard: every action, no mouse needed

  const typing = (node) => node && (node.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(node.tagName));

  document.addEventListener("keydown", (ev) => {
    if (typing(ev.target) || ev.altKey || ev.metaKey) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (ev.ctrlKey && key !== "z") return;
    if (key === "Enter" && ev.target.closest && ev.target.closest("button, a")) return; // Enter presses the focused button
    if (!online()) return;
    pressedAt = ev.timeStamp;
    let handled = true;
    if (key === "j" || key === "ArrowDown") step(1);
    else if (key === "k" || key === "ArrowUp") step(-1);
    else if (key === "z" && ev.ctrlKey) undo();
    else if (key === "Escape") {
      mergeFrom = null;
      renderNow(store.state);
    } else if (key === "Enter") {
      if (mergeFrom !== null) pickMerge(cursor);
      else if (cursor) toggle(cursor);
    } else if (key === "x") {
      if (cursor) toggle(cursor);
    } else if (key === "v") setSideFilter(SIDE_FILTERS[(SIDE_FILTERS.indexOf(sideFilter) + 1) % SIDE_FILTERS.length]);
    else if (KEYS[key]) {
      const action = KEYS[key];
      if (action === "undo") undo();
      else if (action === "merge") pickMerge(cursor);
      else if (action === "split") split(cursor);
      else moderate(action, cursor);
    } else handled = false;
    pressedAt = 0;
    if (handled) ev.preventDefault();
  });

  // --- the mouse: the same actions

  function armBan(id) {
    confirmingBan.set(
      id,
      setTimeout(() => {
        confirmingBan.delete(id);
        renderNow(store.state);
      }, 4000),
    );
    renderNow(store.state);
  }

  queue.addEventListener("click", async (ev) => {
    const row = ev.target.closest("[data-id]");
    if (!row) return;
    const id = row.dataset.id;
    const button = ev.target.closest("button[data-action]");
    if (!button) {
      if (!ev.target.closest("textarea, input") && cursor !== id) moveTo(id, { scroll: false });
      return;
    }
    if (button.disabled || button.dataset.action.startsWith("edit")) return; // edit.js
    const action = button.dataset.action;
    const q = store.state.show.questions.find((x) => x.id === id);
    if (!q || busy.has(id)) return;
    if (action === "expand") return toggle(id);
    if (action === "split") return run("split", id, [{ type: "question.split", question: id }]);
    if (action === "ban" && !confirmingBan.has(id)) return armBan(id);
    clearTimeout(confirmingBan.get(id));
    confirmingBan.delete(id);
    if (action === "ban" || action === "unban") {
      busy.set(id, action);
      renderNow(store.state);
      await act({ type: `device.${action}`, device: q.device }, t(action === "ban" ? "host.banned" : "host.unbanned"));
      busy.delete(id);
      renderNow(store.state);
      return;
    }
    cursor = id;
    if (row.classList.contains("qm")) run(action, id, [{ type: `question.${action}`, question: id }]);
    else moderate(action, id);
  });
  queue.addEventListener("lt-rerender", (ev) => {
    const li = ev.target.closest("li");
    if (li) li._sig = null; // edit.js changed what it shows
    renderNow(store.state);
  });

  $("#filters").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-filter]");
    if (!button) return;
    filter = button.dataset.filter;
    for (const b of $$("#filters button")) {
      b.classList.toggle("on", b === button);
      b.setAttribute("aria-pressed", String(b === button));
    }
    renderNow(store.state);
  });
  $("#side-filters").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-side]");
    if (button) setSideFilter(button.dataset.side);
  });
  $("#desk-merge").addEventListener("click", (ev) => {
    if (ev.target.closest("button")) {
      mergeFrom = null;
      renderNow(store.state);
    }
  });
  $("#desk-undo").addEventListener("click", () => undo());
  // presence fades on its own: look again now and then
  setInterval(() => {
    if (store.state.ready) render();
  }, 15_000);

  // another part of the console (edit.js) did one undoable question action
  const noted = () => {
    presses.push(1);
    while (presses.length > UNDO_PRESSES) presses.shift();
  };

  return { render, noted, counts: renderSides, name: () => myName, filter: () => filter };
}
