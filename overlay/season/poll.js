// A season poll on a phone (/p/{poll}): one ballot per device, changeable while the poll
// is open. The device comes as on the live page (../audience/device.js: a small proof
// of work, or with the page on a venue network). One choice: a tap votes (a later tap
// changes it); several: tap to pick, then send. The numbers refresh now and then while
// the split is public. Every text goes in as text.

import { ensureDevice } from "../audience/device.js";
import { $, $$, createToast, setAttr, setText, show } from "../common/dom.js";
import { fmtInt, t } from "../common/i18n.js";

const REFRESH_MS = 5000;

const view = JSON.parse($("#lt-poll").textContent);
const toast = createToast($("#toast"));
const list = $("#options");
const submit = $("#poll-submit");
const multi = view.choices > 1;
let mine = new Set(view.mine || []);
let picked = new Set(mine);
let busy = false;

const label = (id) => (view.options.find((o) => o.id === id) || {}).label || id;
const isOpen = () => view.status === "open";

function render() {
  const revealed = view.options.every((o) => o.votes !== null);
  const max = revealed ? Math.max(1, ...view.options.map((o) => o.votes)) : 1;
  for (const li of $$(".option", list)) {
    const option = view.options.find((o) => o.id === li.dataset.id);
    if (!option) continue;
    const button = $("button.opt", li);
    const chosen = multi ? picked.has(option.id) : mine.has(option.id);
    li.classList.toggle("chosen", chosen);
    li.classList.toggle("mine", mine.has(option.id));
    button.setAttribute("aria-pressed", String(chosen));
    button.disabled = !isOpen() || busy;
    const votes = $(".opt-votes", li);
    setAttr(votes, "data-votes", revealed ? option.votes : "");
    setText(votes, revealed ? fmtInt(option.votes) : "");
    $(".opt-fill", li).style.transform = `scaleX(${revealed ? option.votes / max : 0})`;
  }
  list.classList.toggle("revealed", revealed);
  setText($("#poll-ballots"), t("poll.ballots", { n: fmtInt(view.ballots) }));
  setText($("#poll-status"), t(isOpen() ? "poll.state_open" : view.upcoming ? "poll.state_upcoming" : "poll.state_closed"));
  $("#poll-status").classList.toggle("live", isOpen());
  show($("#poll-closed"), !isOpen());
  setText($("#poll-closed"), t(view.upcoming ? "poll.upcoming" : "poll.closed"));
  document.body.dataset.status = view.status;
  if (submit) {
    const same = picked.size === mine.size && [...picked].every((id) => mine.has(id));
    submit.disabled = !isOpen() || busy || picked.size === 0 || same;
    setText(submit, t(busy ? "poll.sending" : mine.size ? "poll.change" : "poll.send"));
  }
}

function merge(fresh) {
  Object.assign(view, fresh);
  if (fresh.mine) {
    mine = new Set(fresh.mine);
    if (!busy && multi && picked.size === 0) picked = new Set(mine);
  }
}

async function refresh() {
  try {
    const r = await fetch(`/api/polls/${encodeURIComponent(view.slug)}`, { cache: "no-store", credentials: "same-origin" });
    if (r.ok) merge(await r.json());
  } catch {
    /* offline for a moment: the next refresh */
  }
  render();
}

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
  document.body.dataset.device = "yes";
}

async function post(options) {
  return fetch(`/api/polls/${encodeURIComponent(view.slug)}/vote`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(multi ? { options } : { option: options[0] }),
  });
}

async function vote(options) {
  if (busy || !isOpen()) return;
  busy = true;
  render();
  const changing = mine.size > 0;
  try {
    let r = await post(options);
    if (r.status === 401) {
      await getDevice(); // the cookie was gone: a new device, then once more
      r = await post(options);
    }
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      mine = new Set(body.options || options);
      picked = new Set(mine);
      const names = [...mine].map(label).join("、");
      toast(t(changing ? "poll.changed" : "poll.voted", { name: names }), { kind: "ok" });
    } else if (r.status === 409) {
      view.status = "closed";
      toast(t("poll.closed"), { kind: "warn", ms: 4000 });
    } else if (r.status === 429) {
      toast(t("poll.rate_limited"), { kind: "warn" });
    } else {
      toast(t("poll.error"), { kind: "error" });
    }
  } catch {
    toast(t("poll.offline"), { kind: "error" });
  } finally {
    busy = false;
    await refresh();
  }
}

list.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.opt");
  if (!button || button.disabled) return;
  const id = button.closest(".option").dataset.id;
  if (!multi) {
    if (!mine.has(id)) vote([id]);
    return;
  }
  if (picked.has(id)) picked.delete(id);
  else if (picked.size >= view.choices) toast(t("poll.max", { n: view.choices }), { kind: "warn" });
  else picked.add(id);
  render();
});

if (submit) submit.addEventListener("click", () => vote([...picked]));

async function start() {
  render();
  if (document.body.dataset.device !== "yes") {
    await getDevice();
    await refresh(); // this device's own ballot, if it had one
  }
  setInterval(() => {
    if (!document.hidden && !busy && (isOpen() || view.upcoming)) refresh();
  }, REFRESH_MS);
}

start();
