// The overlay's canvas and its broadcast-safe areas (EBU R 95).
//
// The stage is a fixed coordinate space, 1920×1080 (`layout=landscape`, 16:9) or
// 1080×1920 (`layout=vertical`, 9:16), fitted to the browser source whatever its size
// (1280×720 is the same picture, scaled). Inside it:
//
//   action-safe: 90 % of each side, centred: every graphic stays inside it;
//   title-safe:  80 %, centred: every text stays inside it.
//
// `.safe` (overlay.css) is the title-safe box; widgets live in its regions, each anchored
// to an edge or corner of the box. `scale` (0.5..1) shrinks each region toward its
// anchor, so a smaller graphic moves further into the safe area, never out of it.
// docs/pages.md ("Overlay layout") says how to place a new widget.

export const LAYOUTS = {
  landscape: { width: 1920, height: 1080 },
  vertical: { width: 1080, height: 1920 },
};

const ACTION = 0.9;
const TITLE = 0.8;

// {x, y, width, height} of the box that keeps `share` of each side, in stage pixels.
function centred(size, share) {
  const width = size.width * share;
  const height = size.height * share;
  return { x: (size.width - width) / 2, y: (size.height - height) / 2, width, height };
}

export function safeAreas(layout) {
  const size = LAYOUTS[layout] || LAYOUTS.landscape;
  return { stage: { x: 0, y: 0, ...size }, action: centred(size, ACTION), title: centred(size, TITLE) };
}

export function createLayout(stage, { layout, scale }) {
  const name = LAYOUTS[layout] ? layout : "landscape";
  const size = LAYOUTS[name];
  const areas = safeAreas(name);
  const ui = Math.min(1, Math.max(0.5, Number(scale) || 1));
  let fit = 1;

  stage.dataset.layout = name;
  stage.style.width = `${size.width}px`;
  stage.style.height = `${size.height}px`;
  // The title-safe box, where the regions are anchored:
  // guard: safe area
  stage.style.setProperty("--safe-x", `${areas.title.x}px`);
  stage.style.setProperty("--safe-y", `${areas.title.y}px`);
  stage.style.setProperty("--ui-scale", String(ui));

  // The stage fitted (and centred) in the window: 1280×720 shows the same picture.
  function fitStage() {
    fit = Math.min(window.innerWidth / size.width, window.innerHeight / size.height) || 1;
    const dx = (window.innerWidth - size.width * fit) / 2;
    const dy = (window.innerHeight - size.height * fit) / 2;
    stage.style.transform = `translate(${dx}px, ${dy}px) scale(${fit})`;
  }

  // How far (in the node's own pixels) something may rise above the node's centre and
  // stay inside the action-safe area, with `margin` stage pixels to spare.
  function roomAbove(node, margin = 40) {
    const box = node.getBoundingClientRect();
    const top = stage.getBoundingClientRect().top;
    const centre = (box.top + box.height / 2 - top) / fit; // stage pixels
    return Math.max(0, (centre - areas.action.y - margin) / ui);
  }

  fitStage();
  window.addEventListener("resize", fitStage);
  return { name, size, areas, scale: ui, roomAbove };
}
