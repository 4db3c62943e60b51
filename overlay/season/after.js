// After an episode: the live page's block #after (templates/audience.html), shown once
// the show is `ended`, below the page's own final result (#final, audience.js): what the
// server says comes next (GET /api/season/after/{show}: the next episode, the open season poll, the
// roster) and "请书记到你的单位来". Labels come from the block's data-* attributes (the
// page's language); every text goes in as text. Selectors: docs/pages.md.

import { $, setText, show } from "../common/dom.js";

let asked = false;

function fill(box, template, params) {
  return Object.entries(params).reduce((s, [k, v]) => s.replaceAll(`{${k}}`, String(v)), box.dataset[template] || "");
}

async function load(box) {
  for (let wait = 1000; ; wait = Math.min(wait * 2, 30000)) {
    try {
      const r = await fetch(box.dataset.src, { cache: "no-store", credentials: "same-origin" });
      if (r.ok) return r.json();
    } catch {
      /* flaky network: try again */
    }
    await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * 500));
  }
}

function renderNext(box, data) {
  const next = $(".after-next", box);
  show(next, Boolean(data.next));
  if (data.next) {
    setText($(".after-next-title", next), data.next.title);
    setText($(".after-next-when", next), data.next.date ? fill(box, "when", { date: data.next.date }) : "");
    const names = data.next.guests.map((g) => g.name).filter(Boolean);
    setText($(".after-next-guests", next), names.join(" VS "));
  }
  const poll = $(".after-poll", box);
  show(poll, Boolean(data.poll));
  if (data.poll) {
    poll.href = `/p/${encodeURIComponent(data.poll.slug)}${location.search}`;
    setText($(".after-poll-title", poll), data.poll.title);
  }
  setText($(".after-roster-count", box), data.guests ? fill(box, "count", { n: data.guests }) : "");
}

// Called by audience.js on every state change.
export function renderAfter(state) {
  const box = $("#after");
  if (!box) return;
  const ended = state.show.status === "ended";
  show(box, ended);
  document.body.classList.toggle("ended", ended);
  if (!ended) return;
  if (!asked) {
    asked = true;
    load(box).then((data) => renderNext(box, data));
  }
}
