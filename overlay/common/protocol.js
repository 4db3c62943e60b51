// The browser's copy of the wire protocol (docs/protocol.md).
// tests/test_protocol_sync.py keeps these lists in step with server/protocol.py,
// so keep every list on one line, as plain double-quoted strings.

export const SERVER_TYPES = ["snapshot", "tally", "question", "round", "show", "points", "mine", "ack", "error", "reload"];

export const CLIENT_TYPES = ["hello", "like", "vote", "ask", "upvote", "question.approve", "question.reject", "question.feature", "question.unfeature", "question.answered", "round.start", "round.pause", "round.resume", "round.end", "points.set", "device.ban", "device.unban", "overlay.reload"];

// Which role may send what (overlays send nothing). Phones and consoles send
// `hello` as soon as the socket opens: a socket silent for 10 s is closed.
export const ROLE_TYPES = {
  audience: ["hello", "like", "vote", "ask", "upvote"],
  console: ["hello", "question.approve", "question.reject", "question.feature", "question.unfeature", "question.answered", "round.start", "round.pause", "round.resume", "round.end", "points.set", "device.ban", "device.unban", "overlay.reload"],
  overlay: [],
};

export const ERROR_CODES = ["invalid", "rate_limited", "forbidden", "not_found", "conflict", "too_large", "unavailable"];

// Frames that carry `seq`; the discrete ones advance it by exactly one.
export const STATE_TYPES = ["snapshot", "tally", "question", "round", "show", "points"];
export const DISCRETE_TYPES = ["question", "round", "show", "points"];

export const SIDES = ["a", "b"];
export const ROUND_STATUSES = ["idle", "running", "paused", "finished"];
export const QUESTION_STATUSES = ["pending", "approved", "featured", "answered", "rejected"];

// Close codes the server may use. After the fatal ones a client stops reconnecting.
export const CLOSE = {
  POLICY: 1008,
  TOO_LARGE: 1009,
  RESTART: 1012,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
};
export const FATAL_CLOSE_CODES = [4401, 4403, 4404];

// Limits a user can count on (SPEC "Limits").
export const LIMITS = {
  questionChars: 280,
  nameChars: 40,
  topicChars: 120,
  likeBatchMax: 50,
  likeIntervalMs: 250,
  durationMin: 10,
  durationMax: 7200,
  pointsMax: 9999,
};

// Not a server code: what a send() is rejected with when the socket is down.
export const OFFLINE = "offline";
