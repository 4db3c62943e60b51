"""A studio for looking at the overlay: safe areas (EBU R 95), every widget's and every
text's box as Chromium lays them out, and screenshots composited over a busy studio
picture with the safe areas drawn (test-only; the overlay itself stays transparent)."""

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

SIZES = {"landscape": (1920, 1080), "vertical": (1080, 1920)}


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    def inside(self, other: "Box", slack: float = 0.5) -> bool:
        return (
            self.x >= other.x - slack
            and self.y >= other.y - slack
            and self.right <= other.right + slack
            and self.bottom <= other.bottom + slack
        )

    def overlaps(self, other: "Box") -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom


def safe_boxes(width: float, height: float) -> dict[str, Box]:
    """The action-safe (90 %) and title-safe (80 %) boxes of a picture, centred."""

    def keep(share: float) -> Box:
        w, h = width * share, height * share
        return Box((width - w) / 2, (height - h) / 2, w, h)

    return {"action": keep(0.9), "title": keep(0.8)}


# Every visible widget of the stage, every visible text run (a Range over each text node,
# one rectangle per line) with its computed font size in stage pixels, and the floating
# hearts. "Visible": rendered and not faded out (opacity along the ancestors > 0.05).
MEASURE = """() => {
  const stage = document.getElementById("stage");
  const fit = stage.getBoundingClientRect().width / stage.offsetWidth;
  const alpha = (el) => { let a = 1; for (let n = el; n && n !== document.body; n = n.parentElement) {
      const s = getComputedStyle(n); if (s.display === "none" || s.visibility === "hidden") return 0;
      a *= Number(s.opacity); } return a; };
  const rect = (r) => ({ x: r.x, y: r.y, w: r.width, h: r.height });
  const widgets = [...stage.querySelectorAll(".widget")].filter((w) => alpha(w) > 0.05)
    .map((w) => ({ id: w.id, ...rect(w.getBoundingClientRect()) })).filter((b) => b.w > 0 && b.h > 0);
  const texts = [];
  const walker = document.createTreeWalker(stage, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || alpha(el) <= 0.05) continue;
    const range = document.createRange(); range.selectNodeContents(n);
    const size = Number.parseFloat(getComputedStyle(el).fontSize);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0)
      texts.push({ text: n.textContent.trim().slice(0, 40), cls: el.className, size, ...rect(r) });
  }
  const hearts = [...stage.querySelectorAll(".fh")].filter((h) => Number(getComputedStyle(h).opacity) > 0.05)
    .map((h) => rect(h.getBoundingClientRect()));
  const ellipsis = [...stage.querySelectorAll("*")].filter((el) => getComputedStyle(el).textOverflow === "ellipsis"
    || getComputedStyle(el).webkitLineClamp !== "none").map((el) => el.className);
  return { fit, scale: Number(getComputedStyle(stage).getPropertyValue("--ui-scale")) || 1,
           widgets, texts, hearts, ellipsis };
}"""


def studio_background(width: int, height: int, seed: int = 13) -> Image.Image:
    """A busy studio-like picture: a lit backdrop, LED panels, two guests at desks,
    bright and dark patches where graphics must stay readable."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height))
    px = ImageDraw.Draw(img)
    for y in range(height):  # a warm-to-cold backdrop
        k = y / height
        px.line([(0, y), (width, y)], fill=(int(40 + 120 * (1 - k)), int(30 + 60 * k), int(70 + 110 * k)))
    for _ in range(90):  # LED wall panels and lights
        w, h = rnd.randint(40, 260), rnd.randint(30, 200)
        x, y = rnd.randint(-40, width), rnd.randint(-40, height)
        color = rnd.choice(
            [
                (255, 220, 120),
                (240, 240, 255),
                (30, 30, 40),
                (200, 40, 60),
                (40, 110, 220),
                (255, 255, 255),
                (10, 10, 10),
                (120, 200, 255),
            ]
        )
        px.rectangle([x, y, x + w, y + h], fill=color)
    for _ in range(40):
        r = rnd.randint(10, 70)
        x, y = rnd.randint(0, width), rnd.randint(0, height)
        px.ellipse([x - r, y - r, x + r, y + r], fill=(255, 250, 230))
    img = img.filter(ImageFilter.GaussianBlur(3))
    px = ImageDraw.Draw(img)
    for cx in (width * 0.3, width * 0.7):  # two guests at their desks
        head = width * 0.045 if width > height else width * 0.09
        cy = height * 0.42
        px.ellipse([cx - head, cy - head * 1.25, cx + head, cy + head * 1.25], fill=(226, 183, 150))
        px.rounded_rectangle([cx - head * 2.4, cy + head * 1.3, cx + head * 2.4, cy + head * 6], 40, fill=(28, 32, 48))
        px.rectangle([cx - head * 3.2, cy + head * 4.2, cx + head * 3.2, cy + head * 6.5], fill=(180, 120, 60))
    for x in range(0, width, 8):  # fine stripes: a busy texture
        if rnd.random() < 0.2:
            px.line([(x, 0), (x, height)], fill=(255, 255, 255), width=1)
    return img


def composite(png: bytes, layout: str = "landscape", boxes: bool = True) -> Image.Image:
    """The overlay's transparent screenshot over the studio picture, the safe areas drawn
    (action-safe dashed yellow, title-safe cyan), at the screenshot's own size."""
    over = Image.open(io.BytesIO(png)).convert("RGBA")
    w, h = over.size
    base = studio_background(*SIZES[layout]).resize((w, h)).convert("RGBA")
    out = Image.alpha_composite(base, over)
    if boxes:
        draw = ImageDraw.Draw(out)
        safe = safe_boxes(w, h)
        for name, color in (("action", (255, 230, 0, 255)), ("title", (0, 230, 255, 255))):
            b = safe[name]
            draw.rectangle([b.x, b.y, b.right - 1, b.bottom - 1], outline=color, width=2)
    return out.convert("RGB")


def check_safe(measured: dict, width: float, height: float, min_text: float | None = 24) -> list[str]:
    """Every widget (and floating heart) inside the action-safe box, every text inside the
    title-safe box and (at scale 1) no text under `min_text` stage pixels; widgets do not
    overlap one another; no ellipsis or line clamp anywhere. Returns the problems."""
    safe = safe_boxes(width, height)
    problems = []
    for w in measured["widgets"]:
        box = Box(w["x"], w["y"], w["w"], w["h"])
        if not box.inside(safe["action"]):
            problems.append(f"widget #{w['id']} {box} outside action-safe {safe['action']}")
    for t in measured["texts"]:
        box = Box(t["x"], t["y"], t["w"], t["h"])
        if not box.inside(safe["title"]):
            problems.append(f"text {t['text']!r} ({t['cls']}) {box} outside title-safe {safe['title']}")
        shown = t["size"] * measured["scale"]  # in stage pixels (the stage fit is the picture's)
        if min_text and measured["scale"] == 1 and shown < min_text - 0.01:
            problems.append(f"text {t['text']!r} ({t['cls']}) is {shown:.1f} px")
    for h in measured["hearts"]:
        if not Box(h["x"], h["y"], h["w"], h["h"]).inside(safe["action"]):
            problems.append(f"a floating heart {h} outside action-safe")
    ws = measured["widgets"]
    for i, a in enumerate(ws):
        for b in ws[i + 1 :]:
            if {a["id"], b["id"]} == {"moment", "question"}:
                continue  # one holds the other's place (the question steps aside)
            if Box(a["x"], a["y"], a["w"], a["h"]).overlaps(Box(b["x"], b["y"], b["w"], b["h"])):
                problems.append(f"#{a['id']} overlaps #{b['id']}")
    if measured["ellipsis"]:
        problems.append(f"ellipsis or line clamp on {measured['ellipsis']}")
    return problems
