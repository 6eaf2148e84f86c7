#!/usr/bin/env python3
"""Procedural images developers ask about, each with question/answer pairs that follow from the drawing.

Four kinds, drawn with PIL only (Pillow's default font, scaled; Pillow >= 10.1 for sized default fonts):
  diagram  2-5 labelled, coloured boxes and 0-4 arrows between them
  ui       a window mockup: coloured header with a title, 1-3 labelled input fields, 1-3 coloured buttons
  chart    a bar chart of 3-6 labelled bars (one colour or one colour per bar)
  labels   1-4 coloured words scattered on a background

Every answer is one word or number (exact match is meaningful). `sample(seed)` is a pure function of its seed:
training draws seeds from [0, 1e9), the held-out eval set from [EVAL_SEED0, ...) — disjoint seeds, so held-out
layouts. Image sides 224-392 px (~64-196 image tokens after Qwen2-VL's 28-px merge).

Write the held-out eval set (PNG images + eval.jsonl with image, question, answer, qtype, kind, variant):
    python3 test/reference/synthetic.py --eval-out test/reference/eval --n 160
Preview a few training samples:
    python3 test/reference/synthetic.py --preview /tmp/preview --n 8
"""

import argparse
import json
import math
import os
import random

from PIL import Image, ImageDraw, ImageFont

EVAL_SEED0 = 2_000_000_000  # eval seeds start here; training seeds are < 1e9
DEMO_SEED = EVAL_SEED0 + 900_006

COLOURS = {
    "red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 90, 225), "orange": (245, 140, 25),
    "purple": (140, 60, 190), "yellow": (235, 205, 35), "gray": (128, 128, 128), "pink": (240, 120, 185),
}
BOX_LABELS = ["API", "Web", "Auth", "DB", "Cache", "Queue", "Worker", "Model", "Daemon", "Client", "Server",
              "Store", "Proxy", "Search", "Mail", "Log", "CDN", "Admin", "VS Code", "KV cache"]
TITLES = ["Settings", "Profile", "Dashboard", "Login", "Orders", "Inbox", "Home", "Billing", "Users", "Reports"]
FIELDS = ["Name", "Email", "Password", "User", "Phone", "City", "Code", "Title"]
BUTTONS = ["OK", "Cancel", "Save", "Login", "Send", "Next", "Back", "Submit", "Delete", "Search"]
BAR_SETS = [["A", "B", "C", "D", "E", "F"], ["Jan", "Feb", "Mar", "Apr", "May", "Jun"],
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"], ["North", "South", "East", "West", "Core", "Edge"]]
WORDS = ["build", "test", "deploy", "error", "warning", "cache", "merge", "debug", "release", "stable", "todo",
         "done", "fixme", "draft", "review", "urgent"]
NUM = ["zero", "one", "two", "three", "four", "five", "six"]  # not used as answers: answers are digits

_FONTS = {}


def font(size):
    """Pillow's default font at `size` px (FreeType, Pillow >= 10.1); older Pillow: DejaVu or the bitmap font."""
    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except TypeError:
            try:
                _FONTS[size] = ImageFont.truetype("DejaVuSans.ttf", size)
            except OSError:
                _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


def jitter(rng, rgb, d=14):
    return tuple(max(0, min(255, c + rng.randint(-d, d))) for c in rgb)


def background(rng):
    base = rng.choice([(255, 255, 255), (248, 248, 244), (240, 244, 250), (250, 246, 238), (236, 236, 236)])
    return jitter(rng, base, 6)


def text_size(d, s, f):
    x0, y0, x1, y1 = d.textbbox((0, 0), s, font=f)
    return x1 - x0, y1 - y0


def centred_text(d, box, s, f, fill):
    x0, y0, x1, y1 = box
    tw, th = text_size(d, s, f)
    bx0, by0, _, _ = d.textbbox((0, 0), s, font=f)
    d.text(((x0 + x1 - tw) / 2 - bx0, (y0 + y1 - th) / 2 - by0), s, font=f, fill=fill)


def ink_for(rgb):
    """Dark text on light fills, white on dark ones."""
    return (255, 255, 255) if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140 else (20, 20, 20)


def canvas_size(rng, lo=224, hi=392):
    """Sides in [lo, hi]; 70% multiples of 28 (no resampling by the processor), 30% arbitrary."""
    if rng.random() < 0.7:
        return rng.randrange(lo, hi + 1, 28), rng.randrange(lo, hi + 1, 28)
    return rng.randint(lo, hi), rng.randint(lo, hi)


def colour_pick(rng, k):
    """k colour names, repeats allowed (so 'which box is red' is asked only when unique)."""
    names = list(COLOURS)
    if rng.random() < 0.6:
        return rng.sample(names, k)
    return [rng.choice(names) for _ in range(k)]


def unique_of(values, v):
    return sum(1 for x in values if x == v) == 1


# ----------------------------------------------------------------------------------------------------------------
# diagram


def _border_point(b, tx, ty):
    """Where the segment from box b's centre towards (tx, ty) leaves b."""
    x0, y0, x1, y1 = b
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    sx = (x1 - x0) / 2 / abs(dx) if dx else math.inf
    sy = (y1 - y0) / 2 / abs(dy) if dy else math.inf
    s = min(sx, sy)
    return cx + dx * s, cy + dy * s


def _crosses(p0, p1, b, pad=4):
    """Whether the segment p0-p1 passes through box b (grown by pad), sampled at 64 points."""
    for k in range(65):
        t = k / 64
        x, y = p0[0] + (p1[0] - p0[0]) * t, p0[1] + (p1[1] - p0[1]) * t
        if b[0] - pad <= x <= b[2] + pad and b[1] - pad <= y <= b[3] + pad:
            return True
    return False


def arrow(d, p0, p1, fill, width):
    d.line([p0, p1], fill=fill, width=width)
    ang = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    head = 7 + 2 * width
    pts = [p1]
    for s in (-1, 1):
        a = ang + math.pi - s * 0.45
        pts.append((p1[0] + head * math.cos(a), p1[1] + head * math.sin(a)))
    d.polygon(pts, fill=fill)


def diagram(rng, w, h):
    im = Image.new("RGB", (w, h), background(rng))
    d = ImageDraw.Draw(im)
    n = rng.randint(2, 5)
    cols, rows = rng.choice([(3, 2), (2, 3), (3, 3), (2, 2) if n <= 4 else (3, 2)])
    cells = rng.sample([(c, r) for c in range(cols) for r in range(rows)], n)
    labels = rng.sample(BOX_LABELS, n)
    cnames = colour_pick(rng, n)
    cw, ch = w / cols, h / rows
    fsize = rng.randint(11, 16)
    f = font(fsize)
    boxes = []
    for (c, r), lab in zip(cells, labels):
        tw, th = text_size(d, lab, f)
        bw = min(cw - 16, max(tw + 16, cw * rng.uniform(0.5, 0.8)))
        bh = min(ch - 20, max(th + 14, ch * rng.uniform(0.3, 0.5)))
        x0 = c * cw + rng.uniform(6, max(6.5, cw - bw - 6))
        y0 = r * ch + rng.uniform(8, max(8.5, ch - bh - 8))
        boxes.append((x0, y0, x0 + bw, y0 + bh))
    outline = jitter(rng, (40, 40, 40), 20)
    rounded = rng.random() < 0.4
    for b, lab, cn in zip(boxes, labels, cnames):
        fill = jitter(rng, COLOURS[cn])
        if rounded:
            d.rounded_rectangle(b, radius=6, fill=fill, outline=outline, width=2)
        else:
            d.rectangle(b, fill=fill, outline=outline, width=2)
        centred_text(d, b, lab, f, ink_for(fill))
    centre = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes]
    # Only arrows whose straight segment crosses no third box (an arrow through a box is ambiguous).
    pairs = [(a, b) for a in range(n) for b in range(n) if a < b and not any(
        _crosses(centre[a], centre[b], boxes[k]) for k in range(n) if k not in (a, b))
        and math.dist(_border_point(boxes[a], *centre[b]), _border_point(boxes[b], *centre[a])) >= 22]
    rng.shuffle(pairs)
    m = rng.randint(0, min(4, len(pairs)))
    edges = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in pairs[:m]]
    acol = jitter(rng, (50, 50, 50), 30)
    aw = rng.choice([1, 2, 2, 3])
    for a, b in edges:
        ba, bb = boxes[a], boxes[b]
        ca = ((ba[0] + ba[2]) / 2, (ba[1] + ba[3]) / 2)
        cb = ((bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2)
        arrow(d, _border_point(ba, *cb), _border_point(bb, *ca), acol, aw)

    qa = [("count_boxes", rng.choice(["How many boxes are there?", "How many boxes does the diagram have?",
                                      "Count the boxes."]), str(n)),
          ("count_arrows", rng.choice(["How many arrows are there?", "How many arrows does the diagram have?"]),
           str(m))]
    i = rng.randrange(n)
    qa.append(("box_colour", rng.choice([f"What colour is the {labels[i]} box?",
                                         f"Which colour does the {labels[i]} box have?"]), cnames[i]))
    uniq = [j for j in range(n) if unique_of(cnames, cnames[j])]
    if uniq:
        j = rng.choice(uniq)
        qa.append(("box_of_colour", rng.choice([f"Which box is {cnames[j]}?", f"What is the label of the {cnames[j]} box?"]),
                   labels[j]))
    outs = [a for a in range(n) if sum(1 for e in edges if e[0] == a) == 1]
    if outs:
        a = rng.choice(outs)
        tgt = next(e[1] for e in edges if e[0] == a)
        qa.append(("arrow_target", rng.choice([f"Where does the arrow from {labels[a]} point?",
                                               f"Which box does the arrow from {labels[a]} point to?"]), labels[tgt]))
    ins = [b for b in range(n) if sum(1 for e in edges if e[1] == b) == 1]
    if ins:
        b = rng.choice(ins)
        src = next(e[0] for e in edges if e[1] == b)
        qa.append(("arrow_source", f"Which box has an arrow to {labels[b]}?", labels[src]))
    return im, qa


# ----------------------------------------------------------------------------------------------------------------
# ui mockup


def ui(rng, w, h):
    im = Image.new("RGB", (w, h), background(rng))
    d = ImageDraw.Draw(im)
    m = rng.randint(4, 14)
    win = (m, m, w - m, h - m)
    d.rectangle(win, fill=jitter(rng, (252, 252, 252), 4), outline=jitter(rng, (150, 150, 150), 20), width=1)
    hh = rng.randint(30, 46)
    hcol_name = rng.choice(list(COLOURS))
    hcol = jitter(rng, COLOURS[hcol_name])
    d.rectangle((win[0], win[1], win[2], win[1] + hh), fill=hcol)
    title = rng.choice(TITLES)
    tf = font(rng.randint(14, 20))
    tw, th = text_size(d, title, tf)
    if rng.random() < 0.5:
        tx = win[0] + 10
    else:
        tx = (win[0] + win[2] - tw) / 2
    bx0, by0, _, _ = d.textbbox((0, 0), title, font=tf)
    d.text((tx - bx0, win[1] + (hh - th) / 2 - by0), title, font=tf, fill=ink_for(hcol))
    nf = rng.randint(1, 3)
    fields = rng.sample(FIELDS, nf)
    ff = font(rng.randint(11, 14))
    y = win[1] + hh + rng.randint(12, 22)
    fh = rng.randint(20, 26)
    gap = rng.randint(8, 16)
    lab_w = max(text_size(d, s, ff)[0] for s in fields) + 12
    for s in fields:
        d.text((win[0] + 12, y + 4), s, font=ff, fill=(40, 40, 40))
        d.rectangle((win[0] + 12 + lab_w, y, win[2] - 14, y + fh), fill=(255, 255, 255),
                    outline=jitter(rng, (160, 160, 160), 20), width=1)
        y += fh + gap
    nb = rng.randint(1, 3)
    btexts = rng.sample(BUTTONS, nb)
    bcols = colour_pick(rng, nb)
    bf = font(rng.randint(11, 15))
    widths = [text_size(d, s, bf)[0] + rng.randint(18, 28) for s in btexts]
    bh = rng.randint(22, 30)
    total = sum(widths) + 10 * (nb - 1)
    by = min(win[3] - bh - 10, y + rng.randint(6, 20))
    bx = win[2] - 14 - total if rng.random() < 0.5 else win[0] + 12
    for s, cn, bw in zip(btexts, bcols, widths):
        fill = jitter(rng, COLOURS[cn])
        d.rounded_rectangle((bx, by, bx + bw, by + bh), radius=rng.randint(2, 8), fill=fill)
        centred_text(d, (bx, by, bx + bw, by + bh), s, bf, ink_for(fill))
        bx += bw + 10

    qa = [("ui_title", rng.choice(["What is the title in the header?", "What text is in the header?",
                                   "What is the window title?"]), title),
          ("ui_header_colour", "What colour is the header?", hcol_name),
          ("ui_count_buttons", rng.choice(["How many buttons are there?", "Count the buttons."]), str(nb)),
          ("ui_count_fields", rng.choice(["How many input fields are there?", "How many text fields are there?"]),
           str(nf))]
    i = rng.randrange(nb)
    qa.append(("ui_button_colour", f"What colour is the {btexts[i]} button?", bcols[i]))
    uniq = [j for j in range(nb) if unique_of(bcols, bcols[j])]
    if uniq:
        j = rng.choice(uniq)
        qa.append(("ui_button_text", rng.choice([f"What does the {bcols[j]} button say?",
                                                  f"What is the text of the {bcols[j]} button?"]), btexts[j]))
    qa.append(("ui_first_field", "What is the label of the first field?", fields[0]))
    return im, qa


# ----------------------------------------------------------------------------------------------------------------
# bar chart


def chart(rng, w, h):
    im = Image.new("RGB", (w, h), background(rng))
    d = ImageDraw.Draw(im)
    n = rng.randint(3, 6)
    labels = rng.choice(BAR_SETS)[:n]
    if rng.random() < 0.5:
        labels = rng.sample(labels, n)
    # Distinct heights with a clear tallest and shortest (>= 12% of the axis apart from the runner-up).
    while True:
        vals = [rng.uniform(0.12, 1.0) for _ in range(n)]
        s = sorted(vals)
        if s[-1] - s[-2] >= 0.12 and s[1] - s[0] >= 0.12:
            break
    lf = font(rng.randint(10, 14))
    left, bottom = rng.randint(24, 40), h - rng.randint(26, 36)
    top = rng.randint(16, 40)
    right = w - rng.randint(10, 24)
    axis = jitter(rng, (60, 60, 60), 20)
    d.line([(left, top), (left, bottom), (right, bottom)], fill=axis, width=2)
    if rng.random() < 0.5:
        for k in range(1, 4):
            yy = bottom - (bottom - top) * k / 4
            d.line([(left + 2, yy), (right, yy)], fill=(215, 215, 215), width=1)
    single = rng.random() < 0.6
    cnames = [rng.choice(list(COLOURS))] * n if single else colour_pick(rng, n)
    slot = (right - left) / n
    bw = slot * rng.uniform(0.45, 0.75)
    for i, (lab, v, cn) in enumerate(zip(labels, vals, cnames)):
        x0 = left + slot * i + (slot - bw) / 2
        d.rectangle((x0, bottom - (bottom - top) * v, x0 + bw, bottom - 1), fill=jitter(rng, COLOURS[cn], 12))
        centred_text(d, (x0 - 10, bottom + 3, x0 + bw + 10, bottom + 3 + 16), lab, lf, (30, 30, 30))
    tallest = labels[max(range(n), key=lambda i: vals[i])]
    shortest = labels[min(range(n), key=lambda i: vals[i])]
    qa = [("chart_tallest", rng.choice(["Which bar is the tallest?", "Which bar is highest?"]), tallest),
          ("chart_shortest", rng.choice(["Which bar is the shortest?", "Which bar is lowest?"]), shortest),
          ("chart_count", rng.choice(["How many bars are there?", "How many bars does the chart have?"]), str(n))]
    if single:
        qa.append(("chart_colour", "What colour are the bars?", cnames[0]))
    else:
        i = rng.randrange(n)
        qa.append(("chart_bar_colour", f"What colour is the {labels[i]} bar?", cnames[i]))
    return im, qa


# ----------------------------------------------------------------------------------------------------------------
# coloured words


def labels_img(rng, w, h):
    im = Image.new("RGB", (w, h), background(rng))
    d = ImageDraw.Draw(im)
    n = rng.randint(1, 4)
    words = rng.sample(WORDS, n)
    cnames = colour_pick(rng, n)
    pill = rng.random() < 0.5
    placed = []
    for wd, cn in zip(words, cnames):
        f = font(rng.randint(14, 24))
        tw, th = text_size(d, wd, f)
        for _ in range(50):
            x = rng.uniform(8, max(9, w - tw - 20))
            y = rng.uniform(8, max(9, h - th - 20))
            r = (x - 6, y - 6, x + tw + 6, y + th + 8)
            if all(r[2] < q[0] or r[0] > q[2] or r[3] < q[1] or r[1] > q[3] for q in placed):
                break
        placed.append(r)
        bx0, by0, _, _ = d.textbbox((0, 0), wd, font=f)
        col = jitter(rng, COLOURS[cn])
        if pill:
            d.rounded_rectangle(r, radius=8, fill=col)
            d.text((x - bx0, y - by0), wd, font=f, fill=ink_for(col))
        else:
            d.text((x - bx0, y - by0), wd, font=f, fill=col)
    qa = [("labels_count", rng.choice(["How many words are there?", "How many labels are there?"]), str(n))]
    uniq = [j for j in range(n) if unique_of(cnames, cnames[j])]
    if uniq:
        j = rng.choice(uniq)
        qa.append(("labels_word_of_colour", rng.choice([f"Which word is {cnames[j]}?",
                                                         f"What does the {cnames[j]} label say?"]), words[j]))
    i = rng.randrange(n)
    qa.append(("labels_colour_of_word", f"What colour is the word {words[i]}?", cnames[i]))
    return im, qa


KINDS = {"diagram": diagram, "ui": ui, "chart": chart, "labels": labels_img}


def sample(seed, kind=None, size=None):
    """(kind, PIL RGB image, [(qtype, question, answer)]) — a pure function of the arguments."""
    rng = random.Random(seed)
    kind = kind or rng.choice(list(KINDS))
    w, h = size or canvas_size(rng)
    im, qa = KINDS[kind](rng, w, h)
    return kind, im, qa


def distractor(seed):
    """A smaller image of any kind, placed before the subject image."""
    rng = random.Random(seed ^ 0x5EED)
    return sample(seed, size=canvas_size(rng, 168, 280))[1]


# ----------------------------------------------------------------------------------------------------------------
# held-out eval set

# Contexts an eval question is asked in (the image's KV is cached under the reference context: the image alone,
# first, with the default system prompt). Mirrors planner/fidelity.ts defaultVariants.
EVAL_VARIANTS = ["short system prompt", "long system prompt", "another image first", "earlier turns"]


def write_eval(out, n):
    os.makedirs(out, exist_ok=True)
    kinds = list(KINDS)
    rows = []
    for i in range(n):
        seed = EVAL_SEED0 + i
        kind, im, qa = sample(seed, kind=kinds[i % len(kinds)])
        rng = random.Random(seed + 7)
        qtype, q, a = rng.choice(qa)
        name = f"{i:03d}-{kind}.png"
        im.save(os.path.join(out, name), format="PNG", optimize=True)
        rows.append({"id": i, "image": name, "kind": kind, "qtype": qtype, "question": q, "answer": a,
                     "variant": EVAL_VARIANTS[i % len(EVAL_VARIANTS)], "width": im.width, "height": im.height})
    with open(os.path.join(out, "eval.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-out", help="write the held-out eval set (images + eval.jsonl) here")
    ap.add_argument("--preview", help="write a few training samples (png + txt) here")
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--demo-diagram", help="write the demo's sample diagram (media/samples/diagram.png) here")
    a = ap.parse_args()
    if a.demo_diagram:
        # A held-out diagram (eval seed space, past the eval set), 392x308: 4 boxes, 3 arrows (fixed before training
        # results were seen; the demo asks "How many boxes are there?").
        kind, im, qa = sample(DEMO_SEED, kind="diagram", size=(392, 308))
        im.save(a.demo_diagram, format="PNG", optimize=True)
        print(f"demo diagram {a.demo_diagram}: " + "; ".join(f"{q} {ans}" for _, q, ans in qa))
    if a.eval_out:
        rows = write_eval(a.eval_out, a.n)
        size = sum(os.path.getsize(os.path.join(a.eval_out, f)) for f in os.listdir(a.eval_out))
        print(f"{len(rows)} eval items, {size / 1e6:.2f} MB in {a.eval_out}")
    if a.preview:
        os.makedirs(a.preview, exist_ok=True)
        for s in range(a.n):
            kind, im, qa = sample(s)
            im.save(os.path.join(a.preview, f"{s}-{kind}.png"))
            with open(os.path.join(a.preview, f"{s}-{kind}.txt"), "w") as f:
                f.write("\n".join(f"{t}\t{q}\t{ans}" for t, q, ans in qa) + "\n")


if __name__ == "__main__":
    main()
