// The host rewords a question for the screens (shortened, corrected), in place in the
// queue, before or while it is on air: `question.edit`. The words as asked stay in the
// record and on the console (`original`); "restore" puts them back on the screens.
//
//   const editor = createEditor(queue, { send, toast, errorText });
//   editor.render(li, q);   // from the queue's update: the edit button, the original, the form

import { LIMITS } from "../common/protocol.js";
import { $, el, setText, show } from "../common/dom.js";
import { t } from "../common/i18n.js";

const EDITABLE = new Set(["pending", "approved", "featured", "answered"]);

export function createEditor(queue, { send, toast, errorText }) {
  const open = new Map(); // question id -> the text being edited (kept across re-renders)
  const busy = new Set();

  function form(li) {
    let box = $(".qi-edit", li);
    if (box) return box;
    const area = el("textarea", { class: "qi-edit-text", rows: 3, maxlength: LIMITS.questionChars });
    box = el(
      "div",
      { class: "qi-edit", hidden: true },
      area,
      el(
        "div",
        { class: "qi-edit-row" },
        el("span", { class: "qi-edit-count" }),
        el("button", { class: "btn tiny ghost", type: "button", data: { action: "edit.restore" }, text: t("host.edit_restore") }),
        el("button", { class: "btn small ghost", type: "button", data: { action: "edit.cancel" }, text: t("host.edit_cancel") }),
        el("button", { class: "btn small primary", type: "button", data: { action: "edit.save" }, text: t("host.edit_save") }),
      ),
    );
    area.addEventListener("input", () => {
      open.set(li.dataset.id, area.value);
      count(box);
    });
    $(".qi-main", li).append(box);
    return box;
  }

  function count(box) {
    const n = [...$(".qi-edit-text", box).value].length;
    const node = $(".qi-edit-count", box);
    setText(node, t("host.edit_count", { n, max: LIMITS.questionChars }));
    node.classList.toggle("over", n > LIMITS.questionChars);
  }

  function render(li, q) {
    const editing = open.has(q.id) && EDITABLE.has(q.status);
    if (!EDITABLE.has(q.status)) open.delete(q.id);
    const button = $(".act-edit", li);
    show(button, EDITABLE.has(q.status) && !editing);
    setText(button, t("host.edit"));
    li.classList.toggle("edited", Boolean(q.original));
    const original = $(".qi-original", li);
    setText(original, q.original ? t("host.original", { text: q.original }) : "");
    show(original, Boolean(q.original));
    show($(".qi-text", li), !editing);
    if (!editing && !$(".qi-edit", li)) return;
    const box = form(li);
    show(box, editing);
    if (!editing) return;
    const area = $(".qi-edit-text", box);
    if (area.value !== open.get(q.id)) area.value = open.get(q.id);
    show($("[data-action='edit.restore']", box), Boolean(q.original));
    for (const b of box.querySelectorAll("button")) b.disabled = busy.has(q.id);
    count(box);
  }

  async function save(li, id, text) {
    busy.add(id);
    li.dispatchEvent(new CustomEvent("lt-rerender", { bubbles: true }));
    try {
      await send({ type: "question.edit", question: id, text });
      open.delete(id);
      toast(t(text ? "host.edit_saved" : "host.edit_restored"), { kind: "ok" });
    } catch (err) {
      toast(errorText(err.code, err), { kind: "error", ms: 4200 });
    } finally {
      busy.delete(id);
      li.dispatchEvent(new CustomEvent("lt-rerender", { bubbles: true }));
    }
  }

  queue.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action^='edit']");
    if (!button || button.disabled) return;
    const li = button.closest("li");
    const id = li.dataset.id;
    const action = button.dataset.action;
    if (action === "edit") {
      open.set(id, $(".qi-text", li).textContent); // what the screens show now
      li.dispatchEvent(new CustomEvent("lt-rerender", { bubbles: true }));
      const area = $(".qi-edit-text", li);
      if (area) area.focus();
    } else if (action === "edit.cancel") {
      open.delete(id);
      li.dispatchEvent(new CustomEvent("lt-rerender", { bubbles: true }));
    } else if (action === "edit.restore") {
      save(li, id, "");
    } else if (action === "edit.save") {
      const text = (open.get(id) || "").trim();
      if (!text) {
        toast(t("host.edit_empty"), { kind: "warn" });
        return;
      }
      save(li, id, text);
    }
  });

  return { render, isEditing: (id) => open.has(id) };
}
