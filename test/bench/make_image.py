"""A deterministic diagram-like test image of a given size (PIL), for benchmarks."""
import argparse

from PIL import Image, ImageDraw

ap = argparse.ArgumentParser()
ap.add_argument("--size", type=int, default=1344)
ap.add_argument("--out", required=True)
a = ap.parse_args()
s = a.size
img = Image.new("RGB", (s, s), (250, 250, 245))
d = ImageDraw.Draw(img)
for i in range(12):
    x0, y0 = (i % 4) * s // 4 + s // 32, (i // 4) * s // 3 + s // 24
    d.rectangle([x0, y0, x0 + s // 6, y0 + s // 8], outline=(20, 40, 90), width=max(1, s // 400),
                fill=((37 * i) % 255, (91 * i) % 255, (53 * i) % 255))
    d.text((x0 + 10, y0 + 10), f"service {i}", fill=(0, 0, 0))
    if i % 4:
        d.line([x0 - s // 12, y0 + s // 16, x0, y0 + s // 16], fill=(0, 0, 0), width=max(1, s // 300))
img.save(a.out)
print(f"wrote {a.out} {s}x{s}")
