// This phone's device: the server sets its cookie after a small proof of work
// (ALTCHA, solved in Web Workers with the browser's own crypto), or with the page
// on a declared venue network. Never asks the person to reload: it waits, says
// so, and tries again by itself. See server/web/devices.py.

import { solveChallengeWorkers } from "../vendor/altcha/altcha-lib.js";

const MEMORY_KEY = "leitai.device";
const WORKER_URL = new URL("../vendor/altcha/pbkdf2-worker.js", import.meta.url);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function remembered() {
  try {
    return localStorage.getItem(MEMORY_KEY) || "";
  } catch {
    return ""; // storage may be off in some webviews
  }
}

function remember(token) {
  try {
    localStorage.setItem(MEMORY_KEY, token);
  } catch {
    /* nothing to keep it in */
  }
}

async function once() {
  const r = await fetch("/api/device/challenge", { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw Object.assign(new Error("challenge"), { retryMs: 2000 });
  const challenge = await r.json();
  const workers = Math.min(4, Math.max(1, navigator.hardwareConcurrency || 2));
  const solution = await solveChallengeWorkers({
    challenge,
    concurrency: workers,
    createWorker: () => new Worker(WORKER_URL),
  });
  if (!solution) throw Object.assign(new Error("unsolved"), { retryMs: 1000 });
  const payload = btoa(JSON.stringify({ challenge, solution }));
  const res = await fetch("/api/device", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ payload, previous: remembered() }),
  });
  if (res.ok) {
    const { memory } = await res.json();
    if (memory) remember(memory);
    return;
  }
  const body = await res.json().catch(() => ({}));
  throw Object.assign(new Error(body.error || String(res.status)), { retryMs: body.retry_ms || 1500 });
}

// Resolves once the device cookie is set. onWait({attempt, retryMs}) says how it goes.
export async function ensureDevice({ onWait = () => {} } = {}) {
  if (!globalThis.crypto || !crypto.subtle) {
    onWait({ attempt: 0, insecure: true }); // WebCrypto needs https (or localhost)
  }
  for (let attempt = 0; ; attempt += 1) {
    onWait({ attempt, retryMs: 0 });
    try {
      await once();
      return;
    } catch (err) {
      const retryMs = Math.min(15000, (err.retryMs || 1500) * 1.5 ** Math.min(attempt, 6));
      onWait({ attempt, retryMs });
      await sleep(retryMs + Math.random() * 500);
    }
  }
}
