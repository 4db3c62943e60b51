// The wire's rules as the server states them (server/protocol.py `rules()`):
// every page embeds them as JSON in <script id="lt-rules">, so the browser never
// keeps its own copy of a type list, a limit or a default colour.

const RULES = JSON.parse(document.getElementById("lt-rules").textContent);

export const SERVER_TYPES = RULES.types.server;
export const CLIENT_TYPES = RULES.types.client;
// Which role may send what (overlays send nothing). Phones and consoles send
// `hello` as soon as the socket opens: a socket silent for a while is closed.
export const ROLE_TYPES = RULES.types.roles;
export const ERROR_CODES = RULES.errors;
// Frames that carry `seq`; the discrete ones advance it by exactly one.
export const STATE_TYPES = RULES.types.state;
export const DISCRETE_TYPES = RULES.types.discrete;

export const SIDES = RULES.sides;
export const DEFAULT_COLORS = RULES.colors;
export const ROUND_STATUSES = RULES.round_statuses;
export const QUESTION_STATUSES = RULES.question_statuses;

// Close codes the server may use. After the fatal ones a client stops reconnecting.
export const CLOSE = {
  POLICY: RULES.close.policy,
  TOO_LARGE: RULES.close.too_large,
  RESTART: RULES.close.restart,
  UNAUTHORIZED: RULES.close.unauthorized,
  FORBIDDEN: RULES.close.forbidden,
  NOT_FOUND: RULES.close.not_found,
};
export const FATAL_CLOSE_CODES = RULES.fatal_close;

// Limits a user can count on, with this server's settings.
export const LIMITS = RULES.limits;

// Not a server code: what a send() is rejected with when the socket is down.
export const OFFLINE = "offline";
