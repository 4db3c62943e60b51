// Text that fits its box: shrink first, then wrap; never cut, never an ellipsis.
//
//   fitText(node, { max: 44, min: 30, lines: 2 });
//
// The node needs a definite width (a block, or a flex item with min-width: 0). Its
// font size goes down from `max` until the text fits on one line; if it does not fit
// at `min`, the text wraps between words, at the largest size (from `max` down) that
// needs no more than `lines` lines; past that it stays at `min`, breaks where it must
// and takes the lines it needs: a long name or question is always shown whole. Sizes
// are layout pixels (a scaled stage scales them with everything else). A node is
// fitted again only when its text or its width changed (or on refitAll()).

const fitted = new Map(); // node -> {key, opts}

const fits = (node) => node.scrollWidth <= node.clientWidth + 0.5;

function lineCount(node) {
  const style = getComputedStyle(node);
  const size = Number.parseFloat(style.fontSize) || 16;
  const line = Number.parseFloat(style.lineHeight) || size * 1.2;
  return Math.round(node.scrollHeight / line);
}

// The largest integer size in [lo, hi] at which ok() holds (ok is true for small
// sizes and false past some size), or null.
function largest(node, lo, hi, ok) {
  let best = null;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    node.style.fontSize = `${mid}px`;
    if (ok()) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

function fit(node, { max, min, lines }) {
  node.dataset.fit = "line";
  node.style.whiteSpace = "nowrap";
  node.style.overflowWrap = "normal";
  node.style.fontSize = `${max}px`;
  if (fits(node)) return;
  const one = largest(node, min, max - 1, () => fits(node));
  if (one !== null) {
    node.style.fontSize = `${one}px`;
    return;
  }
  node.dataset.fit = "wrap";
  node.style.whiteSpace = "normal";
  const wrapped = largest(node, min, max, () => fits(node) && lineCount(node) <= lines);
  if (wrapped !== null) {
    node.style.fontSize = `${wrapped}px`;
    return;
  }
  node.dataset.fit = "break"; // a word longer than the line: break it rather than cut it
  node.style.overflowWrap = "anywhere";
  node.style.fontSize = `${min}px`;
}

export function fitText(node, { max, min, lines = 2 }) {
  if (!node) return;
  const opts = { max, min, lines };
  const key = `${node.textContent}|${node.clientWidth}|${max}|${min}|${lines}`;
  const last = fitted.get(node);
  fitted.set(node, { key, opts });
  if ((last && last.key === key) || node.clientWidth === 0) return;
  fit(node, opts);
}

// Fit every node again (e.g. once the page's fonts are ready).
export function refitAll() {
  for (const [node, entry] of fitted) {
    if (!node.isConnected) fitted.delete(node);
    else if (node.clientWidth > 0) fit(node, entry.opts);
  }
}

if (document.fonts && document.fonts.ready) document.fonts.ready.then(refitAll);
