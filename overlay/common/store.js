// The page's copy of the show: one state object, changed only by server frames.
//
//   const store = createStore();
//   store.subscribe((state, frame) => render(state, frame));
//   connect({..., onFrame: store.apply});

import { DEFAULT_COLORS } from "./protocol.js";

const TALLY_FIELDS = ["likes", "votes", "ballots", "points", "viewers", "rounds_won", "peak_viewers", "unique_viewers", "overlays", "held", "held_reasons"];

function emptyTally() {
  return {
    likes: { a: 0, b: 0 },
    votes: { a: 0, b: 0 },
    points: { a: 0, b: 0 },
    viewers: 0,
    rounds_won: { a: 0, b: 0 },
    peak_viewers: 0,
    unique_viewers: 0,
    overlays: 0,
  };
}

function emptyShow() {
  return {
    slug: "",
    title: "",
    status: "draft",
    sides: { a: { name: "", guest: "", org: "", color: DEFAULT_COLORS.a }, b: { name: "", guest: "", org: "", color: DEFAULT_COLORS.b } },
    round: { index: 0, status: "idle", topic: "", duration_s: 0, remaining_ms: 0 },
    rounds: [],
    plan: [],
    featured: null,
    questions: [],
    tally: emptyTally(),
    stance: emptyStance(),
    stance_phases: { pre: "idle", post: "idle" },
    floor: { holder: null, totals: { a: 0, b: 0, host: 0 } },
  };
}

// The swing verdict's figures (docs/protocol.md, "Verdicts"): counts per phase, the swing
// of the devices that took both stances (null until one did), the raw post shares, the matrix.
function emptyStance() {
  return { phases: { pre: "idle", post: "idle" }, pre: { a: 0, b: 0, u: 0 }, post: { a: 0, b: 0, u: 0 }, swing: null, post_shares: null, matrix: null, both: 0 };
}

const byNewest = (x, y) => (y.created || 0) - (x.created || 0);

export function createStore() {
  const state = {
    ready: false, // a snapshot has been applied
    role: null,
    seq: 0,
    show: emptyShow(),
    you: null, // audience sockets only: {vote, upvoted: [], banned}
    desk: new Map(), // consoles only: moderator id -> {id, name, question, at, seen} (docs/protocol.md, desk)
    moderator: null, // consoles only: this console's own id in `desk` frames
    roundAt: 0, // performance.now() when round.remaining_ms was received
    floorAt: 0, // performance.now() when show.floor.totals was received
  };
  const listeners = new Set();

  function applySnapshot(frame) {
    const show = { ...emptyShow(), ...frame.show };
    show.tally = { ...emptyTally(), ...(frame.show && frame.show.tally) };
    show.questions = [...(show.questions || [])].sort(byNewest);
    show.stance = { ...emptyStance(), ...show.stance };
    show.stance_phases = { ...show.stance.phases }; // guard: verdict in snapshot
    state.show = show;
    state.floorAt = performance.now();
    state.role = frame.role || state.role;
    state.you = frame.you ? { vote: null, upvoted: [], banned: false, ...frame.you } : null;
    state.ready = true;
    state.roundAt = performance.now();
    state.desk = new Map();
    for (const m of Array.isArray(frame.desk) ? frame.desk : []) applyDesk(m);
    state.moderator = frame.moderator || null;
  }

  // Which card another moderator is on (the question desk); `left`: their console closed.
  function applyDesk(m) {
    if (!m || typeof m.id !== "string") return;
    if (m.left) state.desk.delete(m.id);
    else state.desk.set(m.id, { ...m, seen: performance.now() });
  }

  function applyQuestion(q) {
    if (!q || q.id == null) return;
    const list = state.show.questions.filter((x) => x.id !== q.id);
    // The redacted form ({id, status} without text) means "you may not see it".
    if (typeof q.text === "string") {
      const old = state.show.questions.find((x) => x.id === q.id);
      list.push(old && old.mine ? { mine: true, ...q } : q);
      list.sort(byNewest);
    }
    state.show.questions = list;
  }

  // Older questions fetched on demand (`questions.page`): added where missing (a
  // question already here is as fresh or fresher), and the cursor for the next page.
  function addOlder(questions, older) {
    const have = new Set(state.show.questions.map((q) => q.id));
    const fresh = (questions || []).filter((q) => q && !have.has(q.id) && typeof q.text === "string");
    state.show.questions = [...state.show.questions, ...fresh].sort(byNewest);
    state.show.questions_older = older ?? null;
    for (const fn of listeners) fn(state, { type: "local" });
  }

  function applyRound(frame) {
    const before = state.show.round;
    state.show.round = { ...frame.round };
    state.roundAt = performance.now();
    if (Array.isArray(frame.rounds)) state.show.rounds = frame.rounds;
    if (frame.rounds_won) state.show.tally.rounds_won = { ...frame.rounds_won };
    if (state.you && before && before.index !== frame.round.index) state.you.vote = null;
  }

  function apply(frame) {
    switch (frame.type) {
      case "snapshot":
        applySnapshot(frame);
        break;
      case "resumed": // back on the same stream: the frames it missed follow
        if (frame.tally) Object.assign(state.show.tally, frame.tally);
        if (state.you && frame.you) Object.assign(state.you, frame.you);
        if (frame.moderator) state.moderator = frame.moderator;
        state.ready = true;
        break;
      case "tally":
        for (const key of TALLY_FIELDS) {
          if (frame[key] !== undefined) state.show.tally[key] = frame[key];
        }
        if (frame.stance) {
          state.show.stance = { ...emptyStance(), ...frame.stance };
          state.show.stance_phases = { ...state.show.stance.phases };
        }
        if (frame.question_counts) state.show.question_counts = frame.question_counts;
        break;
      case "desk":
        applyDesk(frame.moderator);
        break;
      case "question":
      case "mine": // the asker's own not-yet-public question (no seq)
        applyQuestion(frame.question);
        break;
      case "round":
        applyRound(frame);
        break;
      case "show": {
        const { tally, questions, round, ...rest } = frame.show || {};
        Object.assign(state.show, rest);
        if (rest.stance_phases) state.show.stance = { ...state.show.stance, phases: { ...rest.stance_phases } };
        if (rest.floor) state.floorAt = performance.now();
        if (tally) Object.assign(state.show.tally, tally);
        if (round) applyRound({ round });
        if (questions) state.show.questions = [...questions].sort(byNewest);
        break;
      }
      case "points":
        state.show.tally.points = { ...frame.points };
        break;
      default:
        break; // reload, errors: the page handles them; listeners still hear them
    }
    if (Number.isFinite(frame.seq)) state.seq = Math.max(state.seq, frame.seq);
    for (const fn of listeners) fn(state, frame);
  }

  // Local bookkeeping by the page (e.g. after an ack), then a re-render.
  function update(mutate) {
    mutate(state);
    for (const fn of listeners) fn(state, { type: "local" });
  }

  function subscribe(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  }

  return { state, apply, update, subscribe, addOlder };
}

// --- derived values, shared by the pages

// Milliseconds left in the round, counted down locally from the server's number.
export function remainingMs(state, now = performance.now()) {
  const r = state.show.round;
  const base = Number(r.remaining_ms) || 0;
  if (r.status !== "running") return base;
  return Math.max(0, base - (now - state.roundAt));
}

// Each holder's speaking time (ms) in the current round, the holder's clock run on
// locally from the server's figures (like remainingMs).
export function floorTotals(state, now = performance.now()) {
  const floor = state.show.floor || {};
  const totals = { a: 0, b: 0, host: 0, ...floor.totals };
  if (floor.holder && floor.holder in totals) totals[floor.holder] += Math.max(0, now - state.floorAt);
  return totals;
}

// The whole show's speaking time: the finished rounds' and the current clock's.
export function floorShowTotals(state, now = performance.now()) {
  const totals = floorTotals(state, now);
  for (const r of state.show.rounds || []) {
    for (const who of Object.keys(totals)) totals[who] += Number((r.floor || {})[who]) || 0;
  }
  return totals;
}

// The stance phase open on the phones now ("pre", "post" or null).
export function openPhase(state) {
  const phases = state.show.stance_phases || {};
  return phases.post === "open" ? "post" : phases.pre === "open" ? "pre" : null;
}

// The swing is final once the post stance has closed (or the show has ended after one).
export function swingFinal(state) {
  const { stance, stance_phases: phases = {}, status } = state.show;
  return Boolean(stance && stance.swing) && (phases.post === "closed" || (status === "ended" && phases.post !== "open"));
}

// A round's split as the public may see it: null while a sealed round runs.
export const sealedNow = (state) => Boolean(state.show.round.sealed) && roundIsOpen(state.show.round);

export const roundIsOpen = (round) => round.status === "running" || round.status === "paused";

export function shareOfA({ a, b }) {
  return a + b > 0 ? a / (a + b) : 0.5;
}

// Nothing to count yet: no round has started and nobody has tapped (pages show
// "starting soon", never a row of zeros).
export function beforeShow(state) {
  const { round, tally, status } = state.show;
  const likes = (tally.likes.a || 0) + (tally.likes.b || 0);
  return status !== "ended" && round.index === 0 && likes === 0;
}

// Who won the show: more rounds won, then more judges' points; else a draw (null).
export function showWinner(state) {
  const { rounds_won: won = {}, points = {} } = state.show.tally;
  for (const figures of [won, points]) {
    const a = figures.a || 0;
    const b = figures.b || 0;
    if (a !== b) return a > b ? "a" : "b";
  }
  return null;
}

export function sideColor(state, side) {
  const c = state.show.sides[side] && state.show.sides[side].color;
  return /^#[0-9a-fA-F]{3,8}$/.test(c || "") ? c : DEFAULT_COLORS[side];
}
