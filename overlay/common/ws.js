// One WebSocket to the show, with reconnect, seq-gap resync, acks and like batching.
// docs/protocol.md is the contract; this module only moves frames.

import { CLOSE, DISCRETE_TYPES, FATAL_CLOSE_CODES, LIMITS, OFFLINE, SIDES } from "./protocol.js";

const BACKOFF_BASE_MS = 500; // phones: full jitter, doubling to 15 s (thousands come back at once)
const BACKOFF_MAX_MS = 15000;
const SCREEN_STEP_MS = 250; // overlays and consoles: a few screens, back within a second
const SCREEN_MAX_MS = 1000;
const SCREENS = new Set(["overlay", "console"]);
// After a 1012 (the server is restarting: back in seconds, not minutes) phones keep their
// jitter but never wait more than 2 s between tries for the first 30 s, so that a crowd is
// back within seconds of the new process listening (docs/performance.md, reconnect storm).
const RESTART_MAX_MS = 2000;
const RESTART_WINDOW_MS = 30000;
const ACK_TIMEOUT_MS = 15000;
const RESYNC_CLOSE_CODE = 4000; // ours: "I saw a gap in seq"
const LIKE_RETAIN_MAX = 1000; // per side, while offline

// Message ids must be unique per device (phones) or per show (consoles) across
// page loads: the server answers a repeated id with the first reply and does not
// apply it again. So: a random prefix per page load, then a counter.
const PAGE_ID = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => (b % 36).toString(36)).join("");

export class ProtocolError extends Error {
  // code: a server error code (protocol.js ERROR_CODES) or OFFLINE.
  // sent: false when the message never left this page (safe to retry).
  constructor(code, message, { frame = null, sent = true } = {}) {
    super(message || code);
    this.code = code;
    this.frame = frame;
    this.sent = sent;
    this.retryMs = frame && Number.isFinite(frame.retry_ms) ? frame.retry_ms : null;
  }
}

export function socketUrl(role, slug, query = "") {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/${role}/${encodeURIComponent(slug)}${query ? `?${query}` : ""}`;
}

// Phones: full jitter, a random delay in [0, min(max, base * 2^attempt)), so that a
// crowd's reconnects spread out. Screens (the studio's overlays, the host's consoles) are
// few and must be back on air at once: 250 ms steps, never more than 1 s.
export function backoffDelay(attempt, role = "audience", restartingForMs = null) {
  if (SCREENS.has(role)) return Math.min(SCREEN_MAX_MS, SCREEN_STEP_MS * (attempt + 1)); // guard: screens back at once
  const restart = restartingForMs !== null && restartingForMs < RESTART_WINDOW_MS;
  const cap = Math.min(restart ? RESTART_MAX_MS : BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.random() * cap;
}

/**
 * connect({role, slug, onFrame, onStatus}) -> {send, close, isOpen, newId}
 *
 * hello(): extra fields of the `hello` sent on every (re)connect (a console's `name`).
 * onFrame(frame): every state frame (a snapshot, or `resumed` when it came back with
 *   its last seq and the server still had what it missed), `reload`, and `error`s
 *   that answer no pending message (e.g. a rate-limited like).
 * onStatus({state, code, delayMs, attempt, restarting}): state is "connecting",
 *   "open" (snapshot received), "reconnecting" or "stopped" (after 4401/4403/4404);
 *   `restarting` is true from a 1012 close (the server is restarting, not the
 *   viewer's network failing) until the next snapshot.
 * send(msg): returns a Promise resolved with the `ack` frame, or rejected with
 *   a ProtocolError (the `error` frame's code, or OFFLINE). An `id` is added
 *   unless msg has one: to retry a message safely, give every try the same id
 *   from newId() (the server applies an id once). `like` messages are
 *   merged per side, paced (one frame per side per 250 ms, count <= 50) and kept
 *   while offline; their Promise resolves at once.
 */
export function connect({ role, slug, query = "", hello = () => ({}), onFrame, onStatus = () => {} }) {
  const pending = new Map(); // id -> {resolve, reject, timer}
  const likes = Object.fromEntries(SIDES.map((s) => [s, 0]));
  const likeTimers = Object.fromEntries(SIDES.map((s) => [s, null]));
  const likeLastSent = Object.fromEntries(SIDES.map((s) => [s, 0]));
  let likesPausedUntil = 0;
  let ws = null;
  let lastSeq = null; // null until this socket's snapshot
  let known = null; // {seq, epoch}: where this page is in the show's stream (to resume from)
  let attempt = 0;
  let retryTimer = null;
  let lastResyncAt = 0;
  let stopped = false;
  let restarting = false; // closed with 1012: the server restarts; until the next snapshot
  let restartAt = 0; // when that 1012 came
  let counter = 0;
  const newId = () => `m${++counter}-${PAGE_ID}`;

  const status = (state, extra = {}) => onStatus({ state, restarting, ...extra });
  const isOpen = () => ws !== null && ws.readyState === WebSocket.OPEN && lastSeq !== null;

  function open() {
    retryTimer = null;
    lastSeq = null;
    status(attempt === 0 ? "connecting" : "reconnecting", { attempt });
    // Back after a drop: ask to resume from the last seq this page applied (docs/protocol.md)
    const resume = known ? `since=${known.seq}&epoch=${encodeURIComponent(known.epoch)}` : "";
    const url = socketUrl(role, slug, [query, resume].filter(Boolean).join("&"));
    let sock;
    try {
      sock = new WebSocket(url);
    } catch {
      scheduleReconnect(null);
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (role !== "overlay") sock.send(JSON.stringify({ ...hello(), type: "hello" })); // a console's moderator name
    };
    sock.onmessage = (ev) => onMessage(sock, ev);
    sock.onclose = (ev) => onClose(sock, ev);
  }

  function scheduleReconnect(code, delay = null) {
    if (code === CLOSE.RESTART && !restarting) {
      restarting = true;
      restartAt = Date.now();
    }
    const delayMs = delay ?? backoffDelay(attempt, role, restarting ? Date.now() - restartAt : null);
    attempt += 1;
    status("reconnecting", { code, delayMs, attempt });
    retryTimer = setTimeout(open, delayMs);
  }

  function reconnectNow() {
    if (retryTimer !== null && !stopped) {
      clearTimeout(retryTimer);
      open();
    }
  }

  function dropSocket(sock, code, reason) {
    sock.onopen = null;
    sock.onmessage = null;
    sock.onclose = null;
    try {
      sock.close(code, reason);
    } catch {
      /* already closing */
    }
    if (ws === sock) ws = null;
    failPending();
  }

  // A gap in seq: drop this socket; the next one starts with a fresh snapshot.
  function resync(sock) {
    known = null; // the stream had a hole: start again from a snapshot
    dropSocket(sock, RESYNC_CLOSE_CODE, "resync");
    const now = Date.now();
    const quick = now - lastResyncAt > 5000;
    lastResyncAt = now;
    if (quick) attempt = 0;
    scheduleReconnect(RESYNC_CLOSE_CODE, quick ? Math.random() * 250 : backoffDelay(attempt, role));
  }

  function onClose(sock, ev) {
    if (sock !== ws) return;
    ws = null;
    failPending();
    if (FATAL_CLOSE_CODES.includes(ev.code)) {
      stopped = true;
      status("stopped", { code: ev.code });
      return;
    }
    scheduleReconnect(ev.code);
  }

  function onMessage(sock, ev) {
    if (sock !== ws || typeof ev.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    const { type } = frame;

    if (type === "ack" || type === "error") {
      const waiter = frame.id != null ? pending.get(frame.id) : undefined;
      if (waiter) {
        settle(frame.id);
        if (type === "ack") waiter.resolve(frame);
        else waiter.reject(new ProtocolError(frame.code, frame.message, { frame }));
      } else if (type === "error") {
        if (frame.code === "rate_limited" && frame.retry_ms) {
          likesPausedUntil = Date.now() + frame.retry_ms;
        }
        onFrame(frame);
      }
      return;
    }

    if (type === "snapshot" || type === "resumed") {
      if (type === "resumed" && (known === null || Number(frame.since) !== known.seq)) return resync(sock);
      // resumed: the frames it missed follow, from the seq after the one it had
      lastSeq = Number(type === "resumed" ? frame.since : frame.seq);
      known = typeof frame.epoch === "string" ? { seq: lastSeq, epoch: frame.epoch } : null;
      attempt = 0;
      restarting = false;
      status("open");
      onFrame(frame);
      SIDES.forEach(scheduleLikes);
      return;
    }

    // `mine` (the asker's own pending question) is outside the show's stream: no gap check.
    if (type === "tally" || DISCRETE_TYPES.includes(type)) {
      if (lastSeq === null) return resync(sock);
      const seq = Number(frame.seq);
      if (type === "tally") {
        if (!(seq <= lastSeq)) return resync(sock);
      } else {
        if (seq !== lastSeq + 1) return resync(sock);
        lastSeq = seq;
        if (known) known.seq = seq;
      }
    }
    onFrame(frame);
  }

  function settle(id) {
    const waiter = pending.get(id);
    if (waiter) clearTimeout(waiter.timer);
    pending.delete(id);
  }

  function failPending() {
    for (const [id, waiter] of [...pending]) {
      settle(id);
      waiter.reject(new ProtocolError(OFFLINE, "connection lost", { sent: true }));
    }
  }

  // --- likes: merged per side, one frame per side per interval, kept while offline
  function addLikes(side, count) {
    if (!SIDES.includes(side)) return;
    const n = Math.max(0, Math.floor(Number(count) || 0));
    likes[side] = Math.min(LIKE_RETAIN_MAX, likes[side] + n);
    scheduleLikes(side);
  }

  function scheduleLikes(side) {
    if (likeTimers[side] !== null || likes[side] === 0) return;
    const now = Date.now();
    const wait = Math.max(0, likeLastSent[side] + LIMITS.likeIntervalMs - now, likesPausedUntil - now);
    likeTimers[side] = setTimeout(() => flushLikes(side), wait);
  }

  function flushLikes(side) {
    likeTimers[side] = null;
    if (!isOpen() || likes[side] === 0) return; // retained; flushed after the next snapshot
    if (Date.now() < likesPausedUntil) return scheduleLikes(side);
    const count = Math.min(LIMITS.likeBatchMax, likes[side]);
    likes[side] -= count;
    likeLastSent[side] = Date.now();
    ws.send(JSON.stringify({ type: "like", side, count }));
    scheduleLikes(side);
  }

  function send(msg) {
    if (msg.type === "like") {
      addLikes(msg.side, msg.count);
      return Promise.resolve(null);
    }
    if (!isOpen()) {
      return Promise.reject(new ProtocolError(OFFLINE, "offline", { sent: false }));
    }
    const id = msg.id != null ? String(msg.id) : newId();
    ws.send(JSON.stringify({ ...msg, id }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new ProtocolError(OFFLINE, "no answer", { sent: true }));
      }, ACK_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
    });
  }

  function close() {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) dropSocket(ws, 1000, "bye");
  }

  // A phone coming back online or to the foreground should not wait out a long backoff.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });

  open();
  return { send, close, isOpen, newId };
}
