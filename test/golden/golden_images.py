"""Extra golden images (issue 13): what users send. Imported by make_golden.py.

* shapes: several sizes in one prompt, one far above max_pixels (a 640x480 RGBA screenshot), one below min_pixels;
* every PNG colour type and bit depth (grey 1/2/4/8/16, grey with a tRNS key, grey+alpha 8/16, RGB 16, RGB with a
  tRNS key, RGBA 16, palette 1/2/4/8 with and without tRNS), written by `write_png` below because Pillow cannot
  write most of them;
* JPEG baseline 4:2:0, progressive, 4:2:2, 4:4:4, greyscale and CMYK (Adobe, inverted), at an odd size so that
  the edge MCUs are partial;
* the first frame of a two-frame GIF with a transparent index; WebP lossy, lossless and lossy with alpha.

All are small (72x60 or so: 84x56 after smart_resize, 6 image tokens) except the shape images.
Deterministic: numpy PCG64 noise, Pillow's encoders (libjpeg-turbo, libwebp, zlib) with fixed settings.
"""

import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

FMT_W, FMT_H = 75, 61  # odd: partial JPEG MCUs, a non-trivial resize (-> 84x56)


def write_png(path, samples, color_type, bit_depth, palette=None, trns=None):
    """Minimal PNG encoder (no interlace, filter 0 on every row).
    samples: uint [h, w, channels] (channels 1 for grey/palette, 2 grey+alpha, 3 RGB, 4 RGBA), values < 2**bit_depth.
    palette: [[r, g, b], ...] for colour type 3; trns: bytes as stored in the tRNS chunk."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    assert int(samples.max()) < (1 << bit_depth)
    rows = []
    for y in range(h):
        row = samples[y].reshape(-1).astype(np.uint32)
        if bit_depth == 16:
            data = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:  # 1, 2, 4: pack MSB first, pad the row to a byte
            per = 8 // bit_depth
            padded = np.zeros(((len(row) + per - 1) // per) * per, np.uint32)
            padded[:len(row)] = row
            packed = np.zeros(len(padded) // per, np.uint32)
            for k in range(per):
                packed |= padded[k::per] << (8 - bit_depth * (k + 1))
            data = packed.astype(np.uint8).tobytes()
        rows.append(b"\x00" + data)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def _scene(w, h, seed):
    """A photo-like RGB uint8 scene: gradients, a sine texture, noise, a box and a disc."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.stack([xx * 255 / w, yy * 255 / h, 128 + 90 * np.sin(xx * 0.35 + yy * 0.2)], -1) + r.normal(0, 12, (h, w, 3))
    im = Image.fromarray(a.clip(0, 255).round().astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([w // 6, h // 6, w // 2, h // 2], fill=(210, 40, 40))
    d.ellipse([w // 2, h // 3, w - 4, h - 4], fill=(30, 70, 220))
    return np.asarray(im)


def _screenshot(w, h):
    """A 640x480 RGBA 'screenshot': flat UI panels, text-like bars, a transparent region whose hidden RGB is not
    white (dropping alpha and compositing differ there) and a half-transparent shadow."""
    im = Image.new("RGBA", (w, h), (245, 246, 248, 255))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, w - 1, 36], fill=(40, 44, 52, 255))
    d.rectangle([0, 37, 150, h - 1], fill=(33, 37, 43, 255))
    for i in range(14):
        d.rectangle([12, 50 + i * 28, 12 + 40 + (i * 37) % 90, 62 + i * 28], fill=(171, 178, 191, 255))
    for i in range(18):
        y = 60 + i * 22
        d.rectangle([170, y, 170 + 60 + (i * 53) % 380, y + 9], fill=((i * 40) % 255, 120, 200 - i * 8, 255))
    d.rectangle([420, 300, 600, 440], fill=(10, 120, 60, 0))       # fully transparent, hidden green
    d.rectangle([400, 60, 620, 200], fill=(0, 0, 0, 90))            # shadow-like translucent box
    d.ellipse([460, 90, 560, 170], fill=(230, 120, 30, 255))
    return im


def make_shape_images(img_dir):
    """Images for the several-shapes prompts. Returns {name: path}."""
    out = {}
    p = os.path.join(img_dir, "screen.png")
    _screenshot(640, 480).save(p, optimize=False, compress_level=9)
    out["screen"] = p                               # 640x480 RGBA -> 252x168 (max_pixels)
    p = os.path.join(img_dir, "tall.png")
    Image.fromarray(_scene(60, 250, 21), "RGB").save(p, compress_level=9)
    out["tall"] = p                                 # 60x250 -> 56x252
    p = os.path.join(img_dir, "tiny.png")
    Image.fromarray(_scene(30, 20, 22), "RGB").save(p, compress_level=9)
    out["tiny"] = p                                 # 30x20 -> 84x56 (min_pixels)
    return out


def make_format_images(img_dir):
    """One small image per file format variant. Returns {name: path}, grouped by name prefix (png_, jpeg_, ...)."""
    w, h = FMT_W, FMT_H
    rgb = _scene(w, h, 31)
    grey = (rgb.astype(np.uint32) @ np.array([299, 587, 114]) // 1000).astype(np.uint16)      # [h, w] 0..255
    alpha = np.tile(np.linspace(0, 255, w).round().astype(np.uint16)[None, :], (h, 1))
    alpha[5:20, 5:30] = 0
    r = np.random.default_rng(32)
    wide16 = lambda v8: (v8.astype(np.uint32) * 257 + r.integers(0, 257, v8.shape)).astype(np.uint16)  # low byte != 0
    out = {}

    def png(name, *args, **kw):
        p = os.path.join(img_dir, name + ".png")
        write_png(p, *args, **kw)
        out[name] = p

    png("png_grey1", (grey > 127).astype(np.uint16), 0, 1)
    png("png_grey2", grey >> 6, 0, 2)
    png("png_grey4", grey >> 4, 0, 4)
    png("png_grey8", grey, 0, 8)
    png("png_grey16", wide16(grey), 0, 16)
    png("png_grey8_trns", grey, 0, 8, trns=struct.pack(">H", int(grey[30, 40])))
    png("png_greyalpha8", np.stack([grey, alpha], -1), 4, 8)
    png("png_greyalpha16", np.stack([wide16(grey), wide16(alpha)], -1), 4, 16)
    png("png_rgb16", wide16(rgb), 2, 16)
    key = rgb[h // 3, w // 3]
    png("png_rgb8_trns", rgb, 2, 8, trns=struct.pack(">HHH", *[int(v) for v in key]))
    png("png_rgba16", np.concatenate([wide16(rgb), wide16(alpha)[:, :, None]], -1), 6, 16)
    for bits in (1, 2, 4, 8):
        q = Image.fromarray(rgb, "RGB").quantize(colors=1 << bits, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        idx = np.asarray(q).astype(np.uint16)
        pal = np.asarray(q.getpalette()[:3 * (1 << bits)], np.uint8).reshape(-1, 3)
        pal = np.concatenate([pal, np.zeros(((1 << bits) - len(pal), 3), np.uint8)]) if len(pal) < (1 << bits) else pal
        png(f"png_palette{bits}", idx, 3, bits, palette=pal)
        if bits in (4, 8):  # tRNS: index 1 fully transparent, index 2 half, the rest opaque (shorter than PLTE)
            png(f"png_palette{bits}_trns", idx, 3, bits, palette=pal, trns=bytes([255, 0, 128]))

    im = Image.fromarray(rgb, "RGB")
    for name, kw in [("jpeg_baseline420", dict(quality=85, subsampling=2)),
                     ("jpeg_progressive", dict(quality=85, subsampling=2, progressive=True)),
                     ("jpeg_422", dict(quality=90, subsampling=1)),
                     ("jpeg_444", dict(quality=90, subsampling=0))]:
        p = os.path.join(img_dir, name + ".jpg")
        im.save(p, format="JPEG", optimize=False, **kw)
        out[name] = p
    p = os.path.join(img_dir, "jpeg_grey.jpg")
    Image.fromarray(grey.astype(np.uint8), "L").save(p, format="JPEG", quality=85)
    out["jpeg_grey"] = p
    p = os.path.join(img_dir, "jpeg_cmyk.jpg")
    im.convert("CMYK").save(p, format="JPEG", quality=90)
    out["jpeg_cmyk"] = p

    # GIF: two frames, the first with a transparent index; the processor sees frame 0 only.
    f0 = im.quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    f1 = Image.fromarray(rgb[::-1].copy(), "RGB").quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    p = os.path.join(img_dir, "gif_two_frames.gif")
    f0.save(p, format="GIF", save_all=True, append_images=[f1], duration=100, loop=0, transparency=3, disposal=2)
    out["gif_two_frames"] = p

    rgba = Image.fromarray(np.concatenate([rgb, alpha.astype(np.uint8)[:, :, None]], -1), "RGBA")
    for name, src, kw in [("webp_lossy", im, dict(quality=80, method=4)),
                          ("webp_lossless", im, dict(lossless=True, method=4)),
                          ("webp_alpha", rgba, dict(quality=80, method=4))]:
        p = os.path.join(img_dir, name + ".webp")
        src.save(p, format="WEBP", **kw)
        out[name] = p
    return out
