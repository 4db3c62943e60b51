// Tiny DOM helpers. Text only: nothing here ever parses HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// el("li", {class: "q", data: {id: "q1"}, text: "…"}, child, …)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Write only when different, so steady frames cost no layout.
export function setText(node, text) {
  const s = String(text ?? "");
  if (node && node.textContent !== s) node.textContent = s; // guard: textContent
}

export function setAttr(node, name, value) {
  const s = String(value);
  if (node && node.getAttribute(name) !== s) node.setAttribute(name, s);
}

export function show(node, visible) {
  if (node && node.hidden === Boolean(visible)) node.hidden = !visible;
}

const SVG_NS = "http://www.w3.org/2000/svg";

// <svg><use href="#id"/></svg> for symbols defined in the page (base.html's sprite).
// `viewBox` for an svg that CSS sizes and animates on its own.
export function icon(id, className = "", { viewBox } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  if (className) svg.setAttribute("class", className);
  if (viewBox) svg.setAttribute("viewBox", viewBox);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `#${id}`);
  svg.append(use);
  return svg;
}

// One heart (#i-heart) to float or burst: the overlay's likes, the phone's taps.
export const heart = (className) => icon("i-heart", className, { viewBox: "0 0 24 24" });

// A list that follows an array by key, touching only what changed:
//   const render = keyedList(ul, {key: (q) => q.id, create: (q) => li, update: (li, q, ctx) => …});
//   render(items, ctx);
// Nodes whose key is gone are removed, new keys get create(item), every node gets
// update(node, item, ctx), and the container's children end up in the items' order
// (a node moves only when it is out of place, so focus and animations survive).
// The container holds these nodes only. Returns the Map key -> node.
export function keyedList(container, { key = (item) => item.id, create, update }) {
  const nodes = new Map();
  return function render(items, ctx) {
    const keep = new Set(items.map(key));
    for (const [k, node] of nodes) {
      if (!keep.has(k)) {
        node.remove();
        nodes.delete(k);
      }
    }
    items.forEach((item, index) => {
      const k = key(item);
      let node = nodes.get(k);
      if (!node) {
        node = create(item);
        nodes.set(k, node);
      }
      update(node, item, ctx);
      if (container.children[index] !== node) container.insertBefore(node, container.children[index] || null);
    });
    return nodes;
  };
}

// "mm:ss" from milliseconds, rounding up so a fresh 300 s round shows 05:00
// and 00:00 appears only when the time is really up.
export function fmtClock(ms) {
  const total = Math.max(0, Math.ceil((Number(ms) || 0) / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

// "HH:MM" (or with seconds) in local time from an epoch-ms timestamp.
export function fmtTime(ms, withSeconds = false) {
  if (!ms) return "";
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

// A toast: one line of text that fades after a while. Role "status" so screen readers say it.
export function createToast(node) {
  let timer = null;
  return function toast(text, { kind = "info", ms = 2800 } = {}) {
    clearTimeout(timer);
    node.textContent = text;
    node.dataset.kind = kind;
    node.classList.add("on");
    timer = setTimeout(() => node.classList.remove("on"), ms);
  };
}
