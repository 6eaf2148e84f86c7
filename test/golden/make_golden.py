#!/usr/bin/env python3
"""Golden fixtures for the TypeScript Qwen2-VL / Qwen2.5-VL engine.

Makes, deterministically:
  * a small byte-level BPE tokenizer built like Qwen2's tokenizer.json (NFC, Qwen2 split regex,
    ByteLevel, Qwen's special tokens) plus tokenizer_config.json with the Qwen2-VL-Instruct chat template;
  * test images and their exact preprocessing (Qwen2VLImageProcessorPil): the base PNGs here, plus (golden_images.py)
    several-shape prompts and every PNG colour type / bit depth, JPEG kind, GIF and WebP variant;
  * tiny random-init checkpoints: qwen2vl-tiny (tied, one file), qwen25vl-tiny (untied, sharded), and the
    built-in demo model (media/model);
  * float32 reference outputs of transformers (eager attention, CPU) on the bf16-rounded weights:
    vision embeddings, 3D positions, hidden states, logits, greedy tokens, per-step logits, K/V.

See README.md next to this file for the layout and the exact regenerate command.
Needs: torch, transformers 5.x, tokenizers, safetensors, pillow, numpy.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
import unicodedata

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_images import make_format_images, make_shape_images  # noqa: E402

# ----------------------------------------------------------------------------------------------------------------
# Constants

# Qwen2-VL-Instruct chat template, verbatim. Source: openvinotoolkit/openvino.genai src/cpp/src/tokenizer.cpp
# @0115b44d3782d546374d38a81eebab81a449c711 (chat_template_fallback_map, entry labelled
# "Qwen2-VL-2B-Instruct (tokenizer_config.json)"); identical to the template in huggingface/transformers
# tests/models/qwen2_vl/test_processing_qwen2_vl.py (prepare_processor_dict).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split regex (transformers models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX).
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Same names and order as Qwen2-VL (151643..151656 there).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

BPE_TOTAL_VOCAB = 1000  # 256 byte symbols + merges + 14 specials

IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
MIN_PIXELS = 56 * 56          # 3136
MAX_PIXELS = 112 * 112 * 4    # 50176: big.png (300x200) is downscaled

GEN_STEPS = 12

# A small English + code corpus for BPE training (written for this project).
CORPUS = r'''
The quick brown fox jumps over the lazy dog. A picture is worth a thousand words, and a diagram is worth a
thousand pictures when you are trying to understand how a system fits together. This image shows a box, an
arrow and a circle. The box is red, the circle is blue, and the arrow points from the left to the right.
What is shown in this image? Describe the colors and the shapes. Explain the diagram in one sentence.
Compare the two images. Is there any transparent area in the picture? Where is the button on the screen?
The user asked a question about a screenshot. The assistant answered with a short description of the layout:
a header at the top, a sidebar on the left, a list of items in the middle and a footer at the bottom.
Caching makes repeated questions fast. When the same image comes back, the model reuses the keys and values it
computed before, and only the new words of the question have to be processed again. The first token arrives
sooner, and the answer stays the same. A cache entry is identified by a hash of the image content.
Vision language models read images as patches. Each patch is fourteen pixels wide and fourteen pixels high.
Four neighbouring patches are merged into one token, so a small image needs only a handful of tokens.
Large images are resized so that the number of pixels stays between a minimum and a maximum.
The weather today is sunny with a light breeze from the west. Tomorrow it will rain in the morning and clear
up in the afternoon. People walk their dogs in the park, children play football, and an old man feeds the
birds near the fountain. In the evening the streets are quiet and the lights of the city shine on the river.
She opened the window, looked at the mountains and smiled. He wrote a letter to his friend and went to the
post office. They were talking about music, books, films and the best places to eat in town.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 16 24 32 42 64 100 128 256 512 1024 2048 4096 3.14 2.718 1e-6 1e6.
Version 1.2.3 was released on 2024-05-17 at 10:30. The meeting is at 9:45 in room 204.
Questions and answers: Why is the sky blue? Because air scatters blue light more than red light.
How many legs does a spider have? Eight. What is the capital of France? Paris.
It's a good day. I'm sure you'll like it. They've been here, we'd go there, she's right, don't worry.
Café, naïve, résumé, über, Straße, smörgåsbord, jalapeño, coöperate, São Paulo, Zürich.
Привет мир. こんにちは世界。你好，世界。안녕하세요. مرحبا بالعالم. Γειά σου Κόσμε.

function add(a: number, b: number): number {
  return a + b;
}

export interface CacheEntry {
  key: string;
  bytes: number;
  lastUsed: number;
}

export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly maxEntries: number) {}
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value as K;
      this.map.delete(oldest);
    }
  }
}

const result = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" } });
if (!result.ok) throw new Error(`request failed: ${result.status}`);
for (let i = 0; i < items.length; i++) { console.log(items[i].name, items[i].value); }

def smart_resize(height, width, factor=28, min_pixels=3136, max_pixels=12845056):
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    return h_bar, w_bar

class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([Layer(config) for _ in range(config.num_layers)])

    def forward(self, input_ids, attention_mask=None):
        hidden_states = self.embed(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states

import numpy as np
x = np.zeros((3, 224, 224), dtype=np.float32)
print(f"shape={x.shape} mean={x.mean():.4f}")

{"name": "vlcache", "version": "0.1.0", "main": "./dist/extension.js", "scripts": {"test": "node --test"}}
<div class="header"><button id="submit" onclick="send()">Send</button><img src="docs/arch.png" alt="diagram"></div>
SELECT name, COUNT(*) AS total FROM users WHERE active = 1 GROUP BY name ORDER BY total DESC LIMIT 10;
git commit -m "Add cache manager" && npm run build && npm test
$ ls -la /usr/local/bin | grep node
#include <stdio.h>
int main(void) { printf("hello, world\n"); return 0; }
fn main() { let v: Vec<i32> = (0..10).map(|x| x * 2).collect(); println!("{:?}", v); }
'''

TOKENIZER_PROBES = [
    "Hello world",
    "  leading spaces and  double  spaces ",
    "What is shown in this image?",
    "It's, I'M, they'LL, we'd: contractions",
    "numbers 12345 and 3.14159, 2024-05-17",
    "line one\nline two\r\nline three\n\n\nend",
    "tabs\tand\t\ttrailing   \n",
    "Cafe\u0301 (decomposed) vs Caf\u00e9 (composed), na\u00efve, Stra\u00dfe",
    "emoji \U0001F642 and CJK \u4f60\u597d\u4e16\u754c and \u0645\u0631\u062d\u0628\u0627",
    "function add(a: number, b: number): number { return a + b; }",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe.",
    "x<|endoftext|>y <|box_start|>(1,2),(3,4)<|box_end|>",
    "unknown <|not_special|> stays text",
    "",
]

# ----------------------------------------------------------------------------------------------------------------
# Helpers


def log(*a):
    print(*a, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    return total


# ----------------------------------------------------------------------------------------------------------------
# 1. Tokenizer


def build_tokenizer():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_TOTAL_VOCAB - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    lines = [ln for ln in CORPUS.split("\n")]
    # Repeat the corpus a few times so that pair counts are not all ties; order is fixed -> deterministic.
    tok.train_from_iterator(lines * 3, trainer=trainer, length=len(lines) * 3)
    tok.add_special_tokens([
        AddedToken(t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
        for t in SPECIAL_TOKENS
    ])
    # Write it the way Qwen2's published tokenizer.json is written: merges as "a b" strings and a ByteLevel
    # decoder with all flags false (the Python constructor does not keep them).
    j = json.loads(tok.to_str())
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    assert all(len(m.split(" ")) == 2 for m in j["model"]["merges"])
    text = json.dumps(j, indent=2, ensure_ascii=False) + "\n"
    tok2 = Tokenizer.from_str(text)
    for probe in TOKENIZER_PROBES + CORPUS.split("\n"):
        assert tok2.encode(probe).ids == tok.encode(probe).ids, probe
    return tok2, text


def tokenizer_config(tok):
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True,
        }
    # Mirrors Qwen/Qwen2-VL-2B-Instruct tokenizer_config.json (ids differ: this vocabulary is tiny).
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def preprocessor_config(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    # Same keys as the real Qwen2-VL preprocessor_config.json (flat min/max_pixels).
    return {
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": IMAGE_MEAN,
        "image_std": IMAGE_STD,
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }


# ----------------------------------------------------------------------------------------------------------------
# 2. Images


def _grad(h, w, c0, c1, axis):
    t = np.linspace(0.0, 1.0, w if axis == 1 else h, dtype=np.float64)
    if axis == 1:
        t = t[None, :, None]
    else:
        t = t[:, None, None]
    c0 = np.array(c0, dtype=np.float64)[None, None, :]
    c1 = np.array(c1, dtype=np.float64)[None, None, :]
    img = c0 * (1 - t) + c1 * t
    return np.broadcast_to(img, (h, w, 3))


def make_images(img_dir):
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(1234)
    out = {}

    # square 84x84: diagonal gradient, red box, blue disc, 1-px grid lines (exact multiple of 28: no resize).
    h, w = 84, 84
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 3, yy * 3, 255 - (xx + yy) * 3 // 2], -1).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([8, 10, 40, 38], fill=(220, 30, 30), outline=(0, 0, 0))
    d.ellipse([44, 44, 78, 78], fill=(30, 60, 220))
    for x in range(0, w, 12):
        d.line([x, 0, x, h - 1], fill=(255, 255, 255))
    out["square"] = im

    # wide 150x95: horizontal gradient + checker band + triangle + text-like bars.
    h, w = 95, 150
    arr = _grad(h, w, (250, 200, 40), (20, 120, 200), axis=1).copy()
    band = ((np.arange(w)[None, :] // 5 + np.arange(h)[:, None] // 5) % 2).astype(np.float64)
    arr[40:55] = arr[40:55] * 0.4 + band[40:55, :, None] * 150
    im = Image.fromarray(arr.clip(0, 255).round().astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.polygon([(10, 90), (40, 60), (70, 90)], fill=(40, 160, 60))
    for i, y in enumerate(range(8, 36, 7)):
        d.rectangle([90, y, 90 + 10 * (i + 2), y + 3], fill=(10, 10, 10))
    out["wide"] = im

    # big 300x200: fine stripes + noise + shapes (downscaled to fit max_pixels).
    h, w = 200, 300
    arr = _grad(h, w, (30, 30, 60), (230, 220, 200), axis=0).copy()
    stripes = (np.sin(np.arange(w) * 0.9)[None, :] * 40.0)
    arr[:, :, 1] += stripes
    arr[120:190, 10:150] += rng.normal(0, 25, size=(70, 140, 3))
    im = Image.fromarray(arr.clip(0, 255).round().astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([20, 20, 120, 90], outline=(255, 0, 0), width=3)
    d.rectangle([180, 110, 280, 180], fill=(0, 140, 255), outline=(255, 255, 255), width=2)
    d.line([120, 55, 180, 145], fill=(255, 255, 0), width=4)
    d.ellipse([130, 10, 170, 50], fill=(255, 80, 160))
    out["big"] = im

    # rgba 90x60: colour gradient with an alpha ramp, a fully transparent block whose hidden RGB is NOT white,
    # and an opaque shape. Shows whether the processor drops alpha or composites it.
    h, w = 60, 90
    rgb = _grad(h, w, (200, 20, 20), (20, 20, 200), axis=1)
    alpha = np.tile(np.linspace(0, 255, w)[None, :], (h, 1))
    alpha[5:25, 5:35] = 0            # fully transparent; underlying colour stays the gradient
    alpha[35:55, 55:85] = 255        # fully opaque
    rgba = np.concatenate([rgb, alpha[:, :, None]], -1).round().clip(0, 255).astype(np.uint8)
    rgba[40:50, 10:30, :3] = (0, 200, 0)
    rgba[40:50, 10:30, 3] = 128
    out["rgba"] = Image.fromarray(rgba, "RGBA")

    # windows 224x168: 12x16 patches -> 6x8 merged units -> several 4x4 Qwen2.5-VL windows (+ one empty pad column).
    h, w = 168, 224
    arr = _grad(h, w, (10, 90, 40), (240, 240, 120), axis=1).copy()
    arr[:, :, 2] += _grad(h, w, (0, 0, 0), (0, 0, 120), axis=0)[:, :, 2]
    im = Image.fromarray(arr.clip(0, 255).round().astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    for i in range(4):
        for j in range(3):
            x0, y0 = 8 + i * 54, 8 + j * 54
            col = (40 * i + 60, 200 - 50 * j, 120)
            if (i + j) % 2 == 0:
                d.rectangle([x0, y0, x0 + 40, y0 + 40], fill=col)
            else:
                d.ellipse([x0, y0, x0 + 40, y0 + 40], fill=col)
    out["windows"] = im

    # small 40x30: upscaled by the min_pixels branch of smart_resize (ceil) -> 56x84.
    h, w = 30, 40
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 6, 255 - yy * 8, (xx * yy) % 256], -1).clip(0, 255).astype(np.uint8)
    arr[10:20, 15:25] = (255, 255, 255)
    out["small"] = Image.fromarray(arr, "RGB")

    # half 126x70 (w x h = 70 x 126): 126/28 = 4.5 and 70/28 = 2.5 -> Python round-half-even gives 112 x 56.
    h, w = 126, 70
    arr = _grad(h, w, (0, 0, 0), (255, 128, 64), axis=0).copy()
    arr[::7, :, :] = 255
    out["half"] = Image.fromarray(arr.clip(0, 255).round().astype(np.uint8), "RGB")

    paths = {}
    for name, im in out.items():
        p = os.path.join(img_dir, name + ".png")
        im.save(p, format="PNG", optimize=False, compress_level=9)
        paths[name] = p
    return paths


def make_diagram(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w, h = 400, 300
    im = Image.new("RGB", (w, h), (250, 250, 247))
    d = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=15)   # Pillow >= 10.1 with FreeType
    except Exception:
        font = ImageFont.load_default()

    def box(x0, y0, x1, y1, label, fill):
        d.rectangle([x0, y0, x1, y1], fill=fill, outline=(40, 40, 40), width=2)
        tw = d.textlength(label, font=font)
        d.text(((x0 + x1 - tw) / 2, (y0 + y1) / 2 - 8), label, fill=(20, 20, 20), font=font)

    def arrow(x0, y0, x1, y1):
        d.line([x0, y0, x1, y1], fill=(40, 40, 40), width=2)
        ang = math.atan2(y1 - y0, x1 - x0)
        for s in (-1, 1):
            a = ang + math.pi - s * 0.45
            d.line([x1, y1, x1 + 12 * math.cos(a), y1 + 12 * math.sin(a)], fill=(40, 40, 40), width=2)

    box(20, 40, 140, 100, "VS Code", (200, 225, 255))
    box(260, 40, 380, 100, "Daemon", (210, 240, 210))
    box(260, 190, 380, 250, "Model", (255, 225, 200))
    box(20, 190, 140, 250, "KV cache", (240, 220, 245))
    arrow(140, 70, 258, 70)
    arrow(320, 100, 320, 188)
    arrow(260, 220, 142, 220)
    arrow(80, 190, 80, 102)
    d.text((184, 48), "ask", fill=(60, 60, 60), font=font)
    d.text((328, 136), "run", fill=(60, 60, 60), font=font)
    d.text((186, 226), "K/V", fill=(60, 60, 60), font=font)
    d.text((88, 136), "reuse", fill=(60, 60, 60), font=font)
    im.save(path, format="PNG", optimize=False, compress_level=9)


# ----------------------------------------------------------------------------------------------------------------
# 3. Models


def text_cfg(vocab, hidden, inter, layers, heads, kv, mrope, ids, tie):
    return dict(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, hidden_act="silu", rms_norm_eps=1e-6,
        max_position_embeddings=4096, rope_scaling={"type": "mrope", "mrope_section": mrope, "rope_theta": 1000000.0},
        tie_word_embeddings=tie, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )


def top_ids(ids):
    return dict(
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )


MODEL_SPECS = {
    "qwen2vl-tiny": dict(
        family="qwen2_vl", tie=True, seed=11, std=0.3, emb_std=0.1, shard=None, max_pixels=MAX_PIXELS,
        text=dict(hidden=64, inter=128, layers=2, heads=4, kv=2, mrope=[2, 3, 3]),
        vision=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="quick_gelu"),
    ),
    "qwen25vl-tiny": dict(
        family="qwen2_5_vl", tie=False, seed=22, std=0.3, emb_std=0.1, shard="250KB", max_pixels=MAX_PIXELS,
        text=dict(hidden=64, inter=128, layers=2, heads=4, kv=2, mrope=[2, 3, 3]),
        vision=dict(depth=4, hidden_size=32, intermediate_size=48, num_heads=4, out_hidden_size=64,
                    window_size=112, fullatt_block_indexes=[1, 3], patch_size=14, spatial_merge_size=2,
                    temporal_patch_size=2, tokens_per_second=2, in_channels=3, hidden_act="silu"),
    ),
    "builtin": dict(
        # Demo model: larger images allowed (448*448 px -> up to 256 image tokens); answers are noise.
        family="qwen2_vl", tie=True, seed=33, std=0.2, emb_std=0.1, shard=None, max_pixels=448 * 448,
        text=dict(hidden=192, inter=384, layers=4, heads=6, kv=2, mrope=[4, 6, 6]),
        vision=dict(depth=4, embed_dim=64, hidden_size=192, num_heads=4, mlp_ratio=4, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="quick_gelu"),
    ),
}


def init_weights(model, seed, std, emb_std, first_special, n_tokens):
    """Deterministic (numpy PCG64) init: Linear/Conv ~ N(0, std), token embedding / lm_head ~ N(0, emb_std),
    biases ~ N(0, 0.02), norm weights ~ 1 + N(0, 0.1). Larger than HF's default so logits are not all ~0
    and the residual stream is not dominated by the input token's own (tied) embedding.
    Like a trained checkpoint, the special-token rows of embedding/lm_head are small (x0.25) and the padding rows
    past the tokenizer (ids >= n_tokens) are zero, so greedy decoding does not wander into them."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied params appear once
            shape = tuple(p.shape)
            if p.ndim == 1 and name.endswith("bias"):
                v = rng.normal(0.0, 0.02, size=shape)
            elif p.ndim == 1:
                v = 1.0 + rng.normal(0.0, 0.1, size=shape)
            elif "embed_tokens" in name or name.startswith("lm_head"):
                v = rng.normal(0.0, emb_std, size=shape)
                v[first_special:n_tokens] *= 0.25
                v[n_tokens:] = 0.0
            else:
                v = rng.normal(0.0, std, size=shape)
            p.copy_(torch.from_numpy(v.astype(np.float32)))


def build_and_save_model(name, spec, vocab, ids, out_dir, seed, n_tokens):
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration)

    t = spec["text"]
    tc = text_cfg(vocab, t["hidden"], t["inter"], t["layers"], t["heads"], t["kv"], t["mrope"], ids, spec["tie"])
    if spec["family"] == "qwen2_vl":
        cfg = Qwen2VLConfig(text_config=tc, vision_config=dict(spec["vision"]), tie_word_embeddings=spec["tie"],
                            **top_ids(ids))
        cls = Qwen2VLForConditionalGeneration
    else:
        cfg = Qwen2_5_VLConfig(text_config=tc, vision_config=dict(spec["vision"]), tie_word_embeddings=spec["tie"],
                               **top_ids(ids))
        cls = Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    init_weights(model, seed, spec["std"], spec["emb_std"], min(ids.values()), n_tokens)
    if spec["tie"]:
        assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(), "lm_head not tied"
    else:
        assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    n_params = sum(p.numel() for p in model.parameters())
    model = model.to(torch.bfloat16)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    kw = {}
    if spec["shard"]:
        kw["max_shard_size"] = spec["shard"]
    model.save_pretrained(out_dir, safe_serialization=True, **kw)
    del model
    log(f"[{name}] seed {seed}: saved {n_params} params -> {sorted(os.listdir(out_dir))}")
    return n_params


def write_side_files(out_dir, tok_json_path, tok_cfg, ids, max_pixels):
    shutil.copyfile(tok_json_path, os.path.join(out_dir, "tokenizer.json"))
    write_json(os.path.join(out_dir, "tokenizer_config.json"), tok_cfg)
    write_json(os.path.join(out_dir, "preprocessor_config.json"), preprocessor_config(MIN_PIXELS, max_pixels))
    # Shaped like Qwen2-VL-2B-Instruct generation_config.json (sampling with top_k 1 == greedy).
    write_json(os.path.join(out_dir, "generation_config.json"), {
        "bos_token_id": ids["<|endoftext|>"],
        "do_sample": True,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
        "repetition_penalty": 1.0,
        "temperature": 0.01,
        "top_k": 1,
        "top_p": 0.001,
    })


def load_processor(model_dir):
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil, Qwen2VLProcessor

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
        pc = json.load(f)
    # size passed explicitly: the class-level default `size` dict is mutated by __init__ in transformers 5.17.
    ip = Qwen2VLImageProcessorPil(size={"shortest_edge": pc["min_pixels"], "longest_edge": pc["max_pixels"]},
                                  patch_size=pc["patch_size"], temporal_patch_size=pc["temporal_patch_size"],
                                  merge_size=pc["merge_size"], image_mean=pc["image_mean"], image_std=pc["image_std"])
    assert ip.size["shortest_edge"] == pc["min_pixels"] and ip.size["longest_edge"] == pc["max_pixels"], ip.size
    # The processor insists on a video processor (Qwen2VLVideoProcessor needs torchvision); videos are unused here.
    try:
        from transformers import Qwen2VLVideoProcessor
        vp = Qwen2VLVideoProcessor()
        proc_cls = Qwen2VLProcessor
    except Exception:  # no torchvision (dev machines): an unused stand-in, exempt from the type check
        from transformers.video_processing_utils import BaseVideoProcessor

        class _NoVideo(BaseVideoProcessor):
            pass

        class _Proc(Qwen2VLProcessor):
            def check_argument_for_proper_class(self, argument_name, argument):
                if argument_name == "video_processor":
                    return type(argument)
                return super().check_argument_for_proper_class(argument_name, argument)
        vp, proc_cls = _NoVideo(), _Proc
        log("note: torchvision missing, using a stand-in video processor")
    proc = proc_cls(image_processor=ip, tokenizer=tokenizer, video_processor=vp, chat_template=CHAT_TEMPLATE)
    return proc


# ----------------------------------------------------------------------------------------------------------------
# 4. Preprocessing reference (exact)


def resized_u8(pil_img, h, w):
    """What Qwen2VLImageProcessorPil does before rescale: convert('RGB') (drops alpha), PIL bicubic."""
    rgb = pil_img if pil_img.mode == "RGB" else pil_img.convert("RGB")
    if rgb.size != (w, h):
        rgb = rgb.resize((w, h), resample=Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def pixel_values_from_u8(u8):
    """Exact float32 recipe of transformers' PIL backend (rescale in float64 then cast; normalize in float32)."""
    x = (u8.astype(np.float64) * (1 / 255)).astype(np.float32)          # (H, W, 3)
    mean = np.array(IMAGE_MEAN, dtype=np.float32)
    std = np.array(IMAGE_STD, dtype=np.float32)
    x = (x - mean) / std
    x = np.transpose(x, (2, 0, 1))                                       # (3, H, W)
    c, hh, ww = x.shape
    gh, gw = hh // 14, ww // 14
    p = x.reshape(c, gh // 2, 2, 14, gw // 2, 2, 14)
    p = np.transpose(p, (1, 4, 2, 5, 0, 3, 6))                           # bh, bw, ih, iw, c, y, x
    p = np.broadcast_to(p[:, :, :, :, :, None, :, :], (*p.shape[:5], 2, *p.shape[5:]))
    return np.ascontiguousarray(p.reshape(gh * gw, c * 2 * 14 * 14)), gh, gw


def composite_white_u8(pil_img, h, w):
    im = pil_img.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(bg, im).convert("RGB")
    if rgb.size != (w, h):
        rgb = rgb.resize((w, h), resample=Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def smart_resize_py(height, width, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


# Images whose resized uint8 pixels are stored in preprocessed.safetensors (the others are checked by checksum only).
BASE_IMAGES = ("square", "wide", "big", "rgba", "windows", "small", "half")


def preprocessing_fixtures(proc, image_paths, img_dir):
    """Checks our exact recipe against the processor and stores resized uint8 images (+ small pixel_values)."""
    from safetensors.numpy import save_file

    tensors, meta = {}, {}
    for name, path in image_paths.items():
        pil = Image.open(path)
        pil.load()
        out = proc.image_processor(images=[pil], return_tensors="np")
        pv = np.asarray(out["pixel_values"], dtype=np.float32)
        thw = [int(v) for v in np.asarray(out["image_grid_thw"])[0]]
        h, w = smart_resize_py(pil.height, pil.width)
        assert [1, h // 14, w // 14] == thw, (name, thw, h, w)
        u8 = resized_u8(pil, h, w)
        mine, gh, gw = pixel_values_from_u8(u8)
        exact = bool(np.array_equal(mine, pv))
        maxdiff = float(np.abs(mine - pv).max())
        entry = {
            "file": os.path.basename(path), "mode": pil.mode, "width": pil.width, "height": pil.height,
            "resized_height": h, "resized_width": w, "grid_thw": thw, "n_patches": gh * gw,
            "n_image_tokens": gh * gw // 4,
            "recipe_bit_exact": exact, "recipe_max_abs_diff": maxdiff,
            "pixel_values_sum_f64": float(pv.astype(np.float64).sum()),
            "pixel_values_sumsq_f64": float((pv.astype(np.float64) ** 2).sum()),
            "pixel_values_min": float(pv.min()), "pixel_values_max": float(pv.max()),
            "pixel_values_sha256_f32le": hashlib.sha256(pv.astype("<f4").tobytes()).hexdigest(),
        }
        assert exact, f"{name}: the recipe (convert('RGB'), BICUBIC, rescale, normalise) is not the processor's"
        if pil.mode == "RGBA":
            cw, _, _ = pixel_values_from_u8(composite_white_u8(pil, h, w))
            entry["alpha_handling"] = (
                "drop_alpha" if exact else ("composite_white" if np.array_equal(cw, pv) else "unknown"))
            entry["composite_white_max_abs_diff_vs_processor"] = float(np.abs(cw - pv).max())
        log(f"[pre] {name}: {pil.width}x{pil.height} {pil.mode} -> {w}x{h} grid {thw} exact={exact} ({maxdiff})")
        if name in BASE_IMAGES:
            tensors[f"{name}.resized_rgb"] = u8
        if name == "square":
            tensors[f"{name}.pixel_values"] = pv
        meta[name] = entry
    save_file(tensors, os.path.join(img_dir, "preprocessed.safetensors"), metadata={"format": "np"})
    return meta


# ----------------------------------------------------------------------------------------------------------------
# 5. Model references


def mrope_apply(x, pos, section, theta):
    """Independent M-RoPE: x (B,H,S,D), pos (3,S) -> rotated, rotate_half convention, float64."""
    d = x.shape[-1]
    half = d // 2
    inv = theta ** (-np.arange(0, half, dtype=np.float64) * 2.0 / d)
    stream = np.zeros(half, dtype=np.int64)
    stream[section[0]:section[0] + section[1]] = 1
    stream[section[0] + section[1]:] = 2
    ang = pos[stream, :].T.astype(np.float64) * inv[None, :]            # (S, half)
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang), np.sin(ang)
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def topk_pairs(v, k):
    idx = np.argsort(-v, kind="stable")[:k]
    return [[int(i), float(v[i])] for i in idx]


def run_reference(name, family, model_dir, cases, image_paths, hidden_cases, gen_logit_steps, device):
    import torch
    import transformers
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration
    from transformers.vision_utils import get_vision_window_index

    cls = Qwen2VLForConditionalGeneration if family == "qwen2_vl" else Qwen2_5_VLForConditionalGeneration
    model = cls.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").to(device).eval()
    cfg = model.config
    proc = load_processor(model_dir)
    raw_tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tc = cfg.text_config
    n_layers = tc.num_hidden_layers
    head_dim = tc.hidden_size // tc.num_attention_heads
    rp = tc.rope_parameters
    section = rp["mrope_section"]
    theta = rp["rope_theta"]
    eos_ids = [proc.tokenizer.convert_tokens_to_ids("<|im_end|>"), proc.tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    assert cfg.image_token_id == proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == proc.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    attn_impl = {"text": getattr(tc, "_attn_implementation", None),
                 "vision": getattr(cfg.vision_config, "_attn_implementation", None)}
    tied = model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    log(f"[{name}] loaded: attn={attn_impl} tied={tied} vocab={tc.vocab_size} section={section} theta={theta}")

    tensors, meta_cases = {}, {}
    gen_tokens_all = []
    for case in cases:
        cname, imgs, question = case["name"], case["images"], case["question"]
        content = [{"type": "image"} for _ in imgs] + [{"type": "text", "text": question}]
        messages = [{"role": "user", "content": content}]
        prompt = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        pil_imgs = []
        for im in imgs:
            p = Image.open(image_paths[im])
            p.load()
            pil_imgs.append(p)
        if pil_imgs:
            inputs = proc(text=[prompt], images=pil_imgs, return_tensors="pt")
        else:
            inputs = proc(text=[prompt], return_tensors="pt")
        input_ids = inputs["input_ids"]
        ids_list = input_ids[0].tolist()

        # The processor's ids must equal the raw tokenizer.json on the expanded prompt (what TS will do).
        expanded = prompt
        if pil_imgs:
            parts = prompt.split("<|image_pad|>")
            assert len(parts) == len(pil_imgs) + 1
            thw_l = inputs["image_grid_thw"].tolist()
            expanded = parts[0]
            for k, (t_, h_, w_) in enumerate(thw_l):
                expanded += "<|image_pad|>" * (t_ * h_ * w_ // 4) + parts[k + 1]
        raw_ids = raw_tok.encode(expanded, add_special_tokens=True).ids
        assert raw_ids == ids_list, f"{cname}: tokenizer.json ids differ from processor ids"
        raw_ids_unexpanded = raw_tok.encode(prompt, add_special_tokens=True).ids

        model_inputs = {k: v.to(device) for k, v in inputs.items()}
        entry = {
            "images": [os.path.basename(image_paths[i]) for i in imgs], "question": question,
            "messages": messages, "prompt": prompt, "prompt_ids_unexpanded": raw_ids_unexpanded,
            "input_ids": ids_list, "seq_len": len(ids_list),
            "image_token_positions": [i for i, t in enumerate(ids_list) if t == cfg.image_token_id],
        }

        # --- vision: per image, and all images at once (must agree)
        if pil_imgs:
            pv = model_inputs["pixel_values"]
            thw = model_inputs["image_grid_thw"]
            entry["image_grid_thw"] = thw.tolist()
            offs = 0
            per_img = []
            with torch.no_grad():
                for k in range(thw.shape[0]):
                    n = int(thw[k].prod())
                    o = model.model.visual(pv[offs:offs + n], grid_thw=thw[k:k + 1])
                    offs += n
                    merged = o.pooler_output
                    per_img.append(merged)
                    tensors[f"{cname}.vision.{k}"] = merged.float().cpu().numpy()
                    if k == 0:
                        entry["vision_output_type"] = type(o).__name__
                    if cname in hidden_cases:
                        tensors[f"{cname}.vision_pre_merger.{k}"] = o.last_hidden_state.float().cpu().numpy()
                allf = model.model.get_image_features(pv, thw).pooler_output
                entry["vision_batched_vs_single_max_abs_diff"] = float(
                    max((a - b).abs().max().item() for a, b in zip(allf, per_img)))
            if family == "qwen2_5_vl":
                wins = []
                for k in range(thw.shape[0]):
                    wi, cu = get_vision_window_index(thw[k:k + 1].cpu(), spatial_merge_size=2,
                                                     window_size=cfg.vision_config.window_size, patch_size=14)
                    wins.append({"window_index": wi.tolist(), "cu_window_seqlens": cu.tolist()})
                entry["vision_windows"] = wins

        # --- 3D positions
        with torch.no_grad():
            if pil_imgs:
                pos, deltas = model.model.get_rope_index(model_inputs["input_ids"], model_inputs["mm_token_type_ids"],
                                                         image_grid_thw=model_inputs["image_grid_thw"])
            else:
                S = input_ids.shape[1]
                pos = torch.arange(S, device=device).view(1, 1, -1).expand(3, 1, -1)
                deltas = torch.zeros(1, 1, dtype=torch.long)
        pos3 = pos[:, 0, :].cpu().numpy().astype(np.int64)
        rope_delta = int(deltas.reshape(-1)[0])
        tensors[f"{cname}.position_ids"] = pos3.astype(np.float32)   # exact; readers need only F32
        entry["position_ids"] = pos3.tolist()
        entry["rope_delta"] = rope_delta

        # --- prefill forward (hooks for pre-RoPE K/V)
        want_kv = cname == "two_images"
        hooks, captured = [], {}
        if want_kv:
            layers = model.model.language_model.layers
            for li in sorted({0, n_layers - 1}):
                for which in ("k_proj", "v_proj", "q_proj"):
                    mod = getattr(layers[li].self_attn, which)

                    def hook(m, args, out, li=li, which=which):
                        captured[(li, which)] = out.detach()
                    hooks.append(mod.register_forward_hook(hook))
        layer_out = {}
        for li, layer in enumerate(model.model.language_model.layers):
            def lhook(m, args, out, li=li):
                layer_out[li] = (out[0] if isinstance(out, tuple) else out).detach()
            hooks.append(layer.register_forward_hook(lhook))
        model.model.rope_deltas = None
        with torch.no_grad():
            out = model(**model_inputs, use_cache=True, output_hidden_states=True, return_dict=True)
        for h_ in hooks:
            h_.remove()
        if out.rope_deltas is not None and pil_imgs:
            entry["model_rope_deltas"] = int(out.rope_deltas.reshape(-1)[0])
            assert entry["model_rope_deltas"] == rope_delta
        logits = out.logits[0].float()
        last = logits[-1].cpu().numpy()
        tensors[f"{cname}.logits_last"] = last
        entry["top10"] = topk_pairs(last, 10)
        hs = torch.stack([h[0] for h in out.hidden_states], 0).float()  # (L+1, S, H)
        entry["hidden_states_shape"] = list(hs.shape)
        with torch.no_grad():
            last_from_hs = model.lm_head(hs[-1, -1]).cpu().numpy()
            normed = model.model.language_model.norm(hs[-1, -1:]).reshape(-1)
            last_from_normed = model.lm_head(normed).cpu().numpy()
        entry["hidden_states_last_is_final_normed"] = bool(np.abs(last_from_hs - last).max() < 1e-4)
        with torch.no_grad():
            entry["hidden_states_semantics_max_abs_diff"] = {
                f"hs[{i}] vs output of layer {i - 1}": float((hs[i] - layer_out[i - 1][0]).abs().max())
                for i in range(1, n_layers)}
            entry["hidden_states_semantics_max_abs_diff"][f"hs[{n_layers}] vs norm(output of layer {n_layers - 1})"] = \
                float((hs[n_layers] - model.model.language_model.norm(layer_out[n_layers - 1][0])).abs().max())
        entry["lm_head_of_norm_of_last_hs_max_abs_diff"] = float(np.abs(last_from_normed - last).max())
        if cname in hidden_cases:
            tensors[f"{cname}.hidden_states"] = hs.cpu().numpy()
        if pil_imgs:
            img_pos = torch.tensor(entry["image_token_positions"])
            emb0 = hs[0][img_pos]
            entry["hidden_states0_image_rows_equal_vision_max_abs_diff"] = float(
                (emb0 - torch.cat(per_img, 0)).abs().max())

        if want_kv:
            pkv = out.past_key_values
            kv_info = {}
            for li in sorted({0, n_layers - 1}):
                kpost = pkv.layers[li].keys[0].float()      # (KVH, S, D)
                vpost = pkv.layers[li].values[0].float()
                kv_h = kpost.shape[0]
                S = kpost.shape[1]
                kpre = captured[(li, "k_proj")][0].view(S, kv_h, head_dim).transpose(0, 1).float()
                vpre = captured[(li, "v_proj")][0].view(S, kv_h, head_dim).transpose(0, 1).float()
                qpre = captured[(li, "q_proj")][0].view(S, -1, head_dim).transpose(0, 1).float()
                tensors[f"{cname}.layer{li}.k_pre_rope"] = kpre.cpu().numpy()
                tensors[f"{cname}.layer{li}.k_post_rope"] = kpost.cpu().numpy()
                tensors[f"{cname}.layer{li}.v"] = vpost.cpu().numpy()
                tensors[f"{cname}.layer{li}.q_pre_rope"] = qpre.cpu().numpy()
                mine = mrope_apply(kpre.cpu().numpy().astype(np.float64), pos3, section, theta)
                kv_info[f"layer{li}"] = {
                    "v_cache_equals_v_proj_max_abs_diff": float((vpre - vpost).abs().max()),
                    "independent_mrope_vs_cache_k_max_abs_diff": float(np.abs(mine - kpost.cpu().numpy()).max()),
                }
            entry["kv_checks"] = kv_info

        # --- greedy generation
        model.model.rope_deltas = None
        gcfg = GenerationConfig(do_sample=False, max_new_tokens=GEN_STEPS, min_new_tokens=GEN_STEPS,
                                eos_token_id=eos_ids, pad_token_id=eos_ids[1], bos_token_id=eos_ids[1])
        with torch.no_grad():
            g = model.generate(**model_inputs, generation_config=gcfg, output_logits=True,
                               return_dict_in_generate=True)
        new_tokens = g.sequences[0, input_ids.shape[1]:].tolist()
        assert len(new_tokens) == GEN_STEPS, new_tokens
        step_logits = torch.stack([l_[0] for l_ in g.logits], 0).float().cpu().numpy()  # (12, V) raw logits
        steps = []
        eos_argmax_any = False
        for s in range(GEN_STEPS):
            v = step_logits[s]
            am = int(np.argmax(v))
            srt = np.sort(v)[::-1]
            eos_am = am in eos_ids
            eos_argmax_any |= eos_am
            steps.append({
                "token": new_tokens[s], "raw_argmax": am, "eos_was_argmax": eos_am,
                "token_logit": float(v[new_tokens[s]]), "top1_top2_margin": float(srt[0] - srt[1]),
                "top5": topk_pairs(v, 5),
                "position": s + input_ids.shape[1] - 1 + (0 if s == 0 else rope_delta),
            })
            if not eos_am:
                assert am == new_tokens[s], (cname, s, am, new_tokens[s])
        # position: step 0 is the prefill's last row (its 3D position is position_ids[:, -1]); step s>=1 is the
        # decode of token s-1 at cache index seq_len+s-1 with position seq_len+s-1+rope_delta on all 3 axes.
        steps[0]["position"] = [int(x) for x in pos3[:, -1]]
        for s in range(1, GEN_STEPS):
            c = input_ids.shape[1] + s - 1
            steps[s]["position"] = [c + rope_delta] * 3
        entry["greedy_tokens"] = new_tokens
        entry["greedy_text"] = proc.tokenizer.decode(new_tokens, skip_special_tokens=False)
        entry["greedy_steps"] = steps
        entry["eos_was_argmax_anywhere"] = bool(eos_argmax_any)
        entry["gen_step0_vs_prefill_logits_max_abs_diff"] = float(np.abs(step_logits[0] - last).max())
        n_keep = GEN_STEPS if cname in ("square", "text_only") else gen_logit_steps
        tensors[f"{cname}.gen_logits"] = step_logits[:n_keep]
        entry["gen_logits_steps_stored"] = n_keep

        # --- check the decode-position rule: one no-cache forward over prompt + generated tokens with explicit
        # positions (prefill positions, then cache_index + rope_delta on all axes) must give the same logits.
        # (inputs_embeds, so that a generated <|image_pad|> is just a token, as in generate's decode steps)
        full = torch.tensor([ids_list + new_tokens[:-1]], device=device)
        S0 = input_ids.shape[1]
        ext = torch.arange(S0, S0 + GEN_STEPS - 1, device=device) + rope_delta
        pos_full = torch.cat([pos.to(device), ext.view(1, 1, -1).expand(3, 1, -1)], -1)
        model.model.rope_deltas = None
        with torch.no_grad():
            emb = model.get_input_embeddings()(full)
            if pil_imgs:
                emb[0, torch.tensor(entry["image_token_positions"], device=device)] = torch.cat(per_img, 0)
            o2 = model(inputs_embeds=emb, position_ids=pos_full, use_cache=False, return_dict=True)
        ref = o2.logits[0, S0 - 1:].float().cpu().numpy()
        entry["decode_rule_recheck_max_abs_diff"] = float(np.abs(ref - step_logits).max())

        gen_tokens_all.append(new_tokens)
        meta_cases[cname] = entry
        log(f"[{name}] {cname}: seq={len(ids_list)} grid={entry.get('image_grid_thw')} delta={rope_delta} "
            f"top1={entry['top10'][0]} greedy={new_tokens} eosArgmax={eos_argmax_any} "
            f"recheck={entry['decode_rule_recheck_max_abs_diff']:.2e}")

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
              os.path.join(model_dir, "reference.safetensors"), metadata={"format": "np"})
    info = {
        "model_class": cls.__name__, "attn_implementation": attn_impl, "lm_head_tied": bool(tied),
        "num_hidden_layers": n_layers, "head_dim": head_dim, "mrope_section": section, "rope_theta": theta,
        "eos_token_ids": eos_ids, "vocab_size": tc.vocab_size,
        "distinct_greedy_tokens_per_case": {c["name"]: len(set(t)) for c, t in zip(cases, gen_tokens_all)},
    }
    return meta_cases, info, sorted(tensors.keys())


def builtin_demo(model_dir, image_path, device, steps=16, question="Explain this diagram.", trained=False):
    """Greedy run of the built-in model on the demo diagram: a cheap end-to-end golden. Random weights: `steps`
    tokens with eos masked (the tokens are noise). Trained weights: up to `steps` tokens, stopping at eos, which is
    kept (the engine's ignoreEos run of the same length then emits the same ids, eos included)."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32,
                                                            attn_implementation="eager").to(device).eval()
    proc = load_processor(model_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    img = Image.open(image_path)
    img.load()
    inputs = {k: v.to(device) for k, v in proc(text=[prompt], images=[img], return_tensors="pt").items()}
    eos = [proc.tokenizer.convert_tokens_to_ids("<|im_end|>"), proc.tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    gcfg = GenerationConfig(do_sample=False, max_new_tokens=steps, min_new_tokens=0 if trained else steps,
                            eos_token_id=eos, pad_token_id=eos[1], bos_token_id=eos[1])
    model.model.rope_deltas = None
    with torch.no_grad():
        g = model.generate(**inputs, generation_config=gcfg, output_logits=True, return_dict_in_generate=True)
    n0 = inputs["input_ids"].shape[1]
    toks = g.sequences[0, n0:].tolist()
    lg = torch.stack([l_[0] for l_ in g.logits], 0).float().cpu().numpy()
    margins = [float(np.sort(v)[::-1][0] - np.sort(v)[::-1][1]) for v in lg]
    res = {
        "model_dir": "media/model", "image": "media/samples/diagram.png", "question": question, "prompt": prompt,
        "image_grid_thw": inputs["image_grid_thw"].tolist(), "seq_len": n0,
        "input_ids": inputs["input_ids"][0].tolist(),
        "greedy_tokens": toks, "greedy_text": proc.tokenizer.decode(toks, skip_special_tokens=False),
        "top5_per_step": [topk_pairs(v, 5) for v in lg], "top1_top2_margins": margins,
        "eos_was_argmax": [int(np.argmax(v)) in eos for v in lg],
        "note": ("float32 reference; the built-in model is trained on test/reference/synthetic.py questions "
                 "(test/reference/train.py): generation stops at eos, which is the last greedy token") if trained else
                "float32 CPU reference; the built-in model is random-init, so the text is noise",
    }
    log(f"[builtin] diagram: grid {res['image_grid_thw']} seq {n0} greedy {toks} min margin {min(margins):.5f}")
    return res


def builtin_only(args):
    """--builtin-from DIR: the trained built-in model (test/reference/train.py) replaces media/model; its demo
    reference is regenerated; the tiny golden checkpoints, tokenizer and images are left as they are."""
    import torch
    import transformers

    fix = os.path.join(args.out, "test", "golden", "fixtures")
    media_model = os.path.join(args.out, "media", "model")
    names = ["config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
             "tokenizer.json", "tokenizer_config.json"]
    if os.path.abspath(args.builtin_from) != os.path.abspath(media_model):
        shutil.rmtree(media_model, ignore_errors=True)
        os.makedirs(media_model)
        for n in names:
            shutil.copyfile(os.path.join(args.builtin_from, n), os.path.join(media_model, n))
    diagram = os.path.join(args.out, "media", "samples", "diagram.png")
    demo = builtin_demo(media_model, diagram, args.device, steps=16, question=args.demo_question, trained=True)
    from safetensors import safe_open
    with safe_open(os.path.join(media_model, "model.safetensors"), "pt") as f:
        n_params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    demo.update({"versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                 "command": f"python3 test/golden/make_golden.py --builtin-from DIR --demo-question '{args.demo_question}'",
                 "seed": "trained", "n_params": n_params})
    write_json(os.path.join(fix, "builtin-demo.json"), demo)
    mf = os.path.join(fix, "manifest.json")
    with open(mf) as f:
        man = json.load(f)
    man["n_params"]["builtin"] = n_params
    man["seeds"]["builtin"] = "trained (test/reference/train.py)"
    man["sizes_bytes"]["media_model"] = dir_size(media_model)
    man["files"] = {k: v for k, v in man["files"].items() if not k.startswith("media/model/")}
    for p in [os.path.join(media_model, n) for n in names] + [diagram, os.path.join(fix, "builtin-demo.json")]:
        man["files"][os.path.relpath(p, args.out)] = sha256_file(p)
    write_json(mf, man)
    log(f"[builtin] {demo['greedy_text']!r} (margins {[round(m, 3) for m in demo['top1_top2_margins']]})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..")),
                    help="repository root to write into (default: this repo)")
    ap.add_argument("--device", default="cpu", help="torch device for the references (default cpu: exact fp32)")
    ap.add_argument("--gen-logit-steps", type=int, default=3,
                    help="per-step generation logits stored per case (12 for square and text_only)")
    ap.add_argument("--min-margin", type=float, default=2e-3,
                    help="smallest top1-top2 logit margin accepted over all greedy steps of a tiny model")
    ap.add_argument("--max-seed-tries", type=int, default=12)
    ap.add_argument("--skip-builtin", action="store_true")
    ap.add_argument("--builtin-from", help="only the built-in model: copy this trained HF folder to media/model and "
                                           "regenerate builtin-demo.json (+ its manifest entries); nothing else")
    ap.add_argument("--demo-question", default="How many boxes are there?")
    args = ap.parse_args()
    if args.builtin_from:
        return builtin_only(args)

    import tokenizers
    import torch
    import transformers
    import safetensors
    import PIL

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))

    t0 = time.time()
    fix = os.path.join(args.out, "test", "golden", "fixtures")
    img_dir = os.path.join(fix, "images")
    media_model = os.path.join(args.out, "media", "model")
    # --skip-builtin keeps the built-in model (trained: test/reference/train.py), its demo diagram and its golden
    # (builtin-demo.json, and its seed and size in the manifest) exactly as they are.
    kept_demo, kept_manifest = None, None
    if args.skip_builtin:
        demo_path = os.path.join(fix, "builtin-demo.json")
        if os.path.exists(demo_path):
            with open(demo_path, "rb") as f:
                kept_demo = f.read()
        if os.path.exists(os.path.join(fix, "manifest.json")):
            with open(os.path.join(fix, "manifest.json")) as f:
                kept_manifest = json.load(f)
    for d in (fix,) if args.skip_builtin else (fix, media_model):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(img_dir, exist_ok=True)

    versions = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__, "pillow": PIL.__version__,
        "numpy": np.__version__,
    }
    argv, i = [], 1
    while i < len(sys.argv):  # --out only says where the files went; the command regenerates them in place
        if sys.argv[i] == "--out":
            i += 2
            continue
        if not sys.argv[i].startswith("--out="):
            argv.append(sys.argv[i])
        i += 1
    cmd = " ".join(["python3 test/golden/make_golden.py"] + argv)
    log("versions:", versions)

    # 1. tokenizer
    tok, tok_text = build_tokenizer()
    tok_path = os.path.join(fix, "tokenizer.json")
    with open(tok_path, "w", encoding="utf-8") as f:
        f.write(tok_text)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    n_tok = tok.get_vocab_size(with_added_tokens=True)
    vocab = ((n_tok + 63) // 64) * 64
    log(f"tokenizer: {n_tok} tokens (BPE {tok.get_vocab_size(with_added_tokens=False)}), model vocab {vocab}, ids {ids}")
    tok_cfg = tokenizer_config(tok)
    assert build_tokenizer()[1] == tok_text, "BPE training is not deterministic"

    # 2. images
    image_paths = make_images(img_dir)
    image_paths.update(make_shape_images(img_dir))
    image_paths.update(make_format_images(img_dir))
    if not args.skip_builtin:
        make_diagram(os.path.join(args.out, "media", "samples", "diagram.png"))
    elif kept_demo is not None:
        with open(os.path.join(fix, "builtin-demo.json"), "wb") as f:
            f.write(kept_demo)

    # 3. checkpoints (the tiny ones are (re)made in step 4b, where their seed is chosen)
    model_dirs = {"qwen2vl-tiny": os.path.join(fix, "qwen2vl-tiny"), "qwen25vl-tiny": os.path.join(fix, "qwen25vl-tiny")}
    if not args.skip_builtin:
        model_dirs["builtin"] = media_model
    n_params, seeds = {}, {}
    for name, d in model_dirs.items():
        seeds[name] = MODEL_SPECS[name]["seed"]
        n_params[name] = build_and_save_model(name, MODEL_SPECS[name], vocab, ids, d, seeds[name], n_tok)
        write_side_files(d, tok_path, tok_cfg, ids, MODEL_SPECS[name]["max_pixels"])

    # tokenizer fixture: HF tokenizer (as loaded from a checkpoint dir) vs raw tokenizer.json
    proc = load_processor(model_dirs["qwen2vl-tiny"])
    probes = []
    for s in TOKENIZER_PROBES:
        raw = tok.encode(s, add_special_tokens=True)
        hf = proc.tokenizer(s)["input_ids"]
        assert hf == raw.ids, (s, hf, raw.ids)
        probes.append({"text": s, "nfc": unicodedata.normalize("NFC", s), "ids": raw.ids, "tokens": raw.tokens,
                       "decoded": tok.decode(raw.ids, skip_special_tokens=False),
                       "decoded_skip_special": tok.decode(raw.ids, skip_special_tokens=True)})
    write_json(os.path.join(fix, "tokenizer_cases.json"), {
        "tokenizer": "tokenizer.json (identical copy in every model folder)",
        "special_token_ids": ids, "vocab_size_with_added": n_tok, "cases": probes,
    })
    log(f"tokenizer class loaded by AutoTokenizer: {type(proc.tokenizer).__name__}")

    # 4a. preprocessing
    pre_meta = preprocessing_fixtures(proc, image_paths, img_dir)
    write_json(os.path.join(img_dir, "preprocessed.json"), {
        "processor": "Qwen2VLImageProcessorPil", "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS,
        "recipe": ("u8 = PIL image.convert('RGB') (alpha dropped, not composited), resized with PIL "
                   "Image.resize((w, h), BICUBIC) to smart_resize(h, w) (skipped when already that size); "
                   "x = float32(u8 * float64(1/255)); x = float32((x - float32(mean)) / float32(std)); "
                   "pixel_values = patchify(x) with rows in 2x2-block order, columns (c, t, y, x), t duplicated"),
        "tensors": "preprocessed.safetensors: <name>.resized_rgb uint8 [h, w, 3] for every image (the recipe turns "
                   "it into pixel_values bit-exactly, see recipe_bit_exact); square.pixel_values float32 [36, 1176]",
        "images": pre_meta,
    })

    # 4b. references. A tiny model's seed is kept only if every greedy step has a top1-top2 logit margin of at
    # least --min-margin, every case yields >= 4 distinct tokens, eos is never the argmax and no special token
    # (e.g. <|image_pad|>) is generated; otherwise the next seed is tried
    # (deterministic: seeds base, base+1000, ...), and the best one is used if none qualifies.
    base_cases = [
        {"name": "square", "images": ["square"], "question": "What is shown in this image?"},
        {"name": "wide", "images": ["wide"], "question": "Describe the colors and the shapes."},
        {"name": "big", "images": ["big"], "question": "Explain this diagram in one sentence."},
        {"name": "two_images", "images": ["square", "wide"], "question": "Compare the two images."},
        {"name": "rgba", "images": ["rgba"], "question": "Is there any transparent area?"},
        {"name": "text_only", "images": [],
         "question": "Write add(a, b) in TypeScript: it returns a + b.\nThen say cafe\u0301 in 2 words!"},
        # Issue 13: several images of different shapes in one prompt (screen: 640x480 RGBA downscaled to the pixel
        # cap; tiny: 30x20, below min_pixels), a downscaled screenshot alone, a palette PNG with tRNS alone, and every
        # file format variant (golden_images.py), grouped by container so that each is in one prompt.
        {"name": "shapes2", "images": ["tall", "wide"], "question": "Compare the two images."},
        {"name": "shapes3", "images": ["wide", "screen", "tall"], "question": "What changes from one image to the next?"},
        {"name": "shapes5", "images": ["square", "tall", "tiny", "screen", "wide"], "question": "Which image is the largest?"},
        {"name": "screen", "images": ["screen"], "question": "What does this screenshot show?"},
        {"name": "palette_trns", "images": ["png_palette8_trns"], "question": "Describe the colors."},
        {"name": "png_modes", "images": [n for n in image_paths if n.startswith("png_")],
         "question": "Are these the same picture?"},
        {"name": "jpeg_kinds", "images": [n for n in image_paths if n.startswith("jpeg_")],
         "question": "Are these the same photo?"},
        {"name": "gif_webp", "images": [n for n in image_paths if n.startswith(("gif_", "webp_"))],
         "question": "Describe each image."},
    ]
    refs = {
        "qwen2vl-tiny": ("qwen2_vl", base_cases, {"square", "two_images", "big", "text_only"}),
        "qwen25vl-tiny": ("qwen2_5_vl", base_cases + [
            {"name": "windows", "images": ["windows"], "question": "Where are the circles?"}],
            {"square", "two_images", "windows", "text_only"}),
    }
    seed_search = {}
    for name, (family, cases, hidden_cases) in refs.items():
        d = model_dirs[name]
        spec = MODEL_SPECS[name]
        tried = []

        def attempt(seed):
            n_params[name] = build_and_save_model(name, spec, vocab, ids, d, seed, n_tok)
            write_side_files(d, tok_path, tok_cfg, ids, spec["max_pixels"])
            mc, inf, nm = run_reference(name, family, d, cases, image_paths, hidden_cases,
                                        args.gen_logit_steps, args.device)
            margin = min(st["top1_top2_margin"] for e in mc.values() for st in e["greedy_steps"]
                         if not st["eos_was_argmax"])
            distinct = min(len(set(e["greedy_tokens"])) for e in mc.values())
            eos_any = any(e["eos_was_argmax_anywhere"] for e in mc.values())
            special = sorted({t for e in mc.values() for t in e["greedy_tokens"] if t >= ids[SPECIAL_TOKENS[0]]})
            tried.append({"seed": seed, "min_margin": margin, "min_distinct_tokens": distinct,
                          "eos_was_argmax_anywhere": eos_any, "special_tokens_generated": special})
            log(f"[{name}] seed {seed}: min greedy margin {margin:.5f}, min distinct tokens {distinct}, "
                f"eos argmax {eos_any}, special tokens generated {special}")
            ok = margin >= args.min_margin and distinct >= 4 and not eos_any and not special
            return mc, inf, nm, ok

        result = None
        for k in range(args.max_seed_tries):
            result = attempt(spec["seed"] + 1000 * k)
            if result[3]:
                break
        else:
            best = max(tried, key=lambda t: (not t["special_tokens_generated"], not t["eos_was_argmax_anywhere"],
                                             t["min_distinct_tokens"] >= 4, t["min_margin"]))
            if best["seed"] != tried[-1]["seed"]:
                result = attempt(best["seed"])
        meta_cases, info, names = result[:3]
        seeds[name] = tried[-1]["seed"]
        seed_search[name] = tried
        with open(os.path.join(d, "config.json")) as f:
            saved_cfg = json.load(f)
        idx = os.path.join(d, "model.safetensors.index.json")
        write_json(os.path.join(d, "cases.json"), {
            "model": name, "family": family, "versions": versions, "command": cmd, "device": args.device,
            "dtype_reference": "float32 on bf16-rounded weights, attn_implementation=eager",
            "chat_template_source": "openvinotoolkit/openvino.genai src/cpp/src/tokenizer.cpp @0115b44d (Qwen2-VL-2B-Instruct)",
            "chat_template_sha256": hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest(),
            "generation": {"do_sample": False, "max_new_tokens": GEN_STEPS, "min_new_tokens": GEN_STEPS,
                           "note": "min_new_tokens masks eos ids; greedy_steps[i].raw_argmax is the unmasked argmax"},
            "seed": seeds[name], "seed_search": tried, "init": {"std": spec["std"], "emb_std": spec["emb_std"]},
            "model_info": info, "n_params": n_params[name], "sharded": os.path.exists(idx),
            "config_layout": sorted(saved_cfg.keys()),
            "tensor_names": names,
            "tensor_notes": {
                "<case>.vision.<i>": "merged vision embeddings of image i [n_tokens_i, hidden] (visual(...).pooler_output)",
                "<case>.vision_pre_merger.<i>": "ViT output before the merger [n_patches, width] (qwen2.5: window order)",
                "<case>.position_ids": "float32 [3, seq] (t, h, w), exact integers (also as ints in position_ids)",
                "<case>.hidden_states": "[n_layers + 1, seq, hidden]; [0] = input embeddings after image scatter, "
                                        "[i] (1 <= i < n_layers) = output of decoder layer i-1 (0-based), "
                                        "[n_layers] = final RMSNorm(output of the last layer)",
                "<case>.logits_last": "[vocab] logits of the last prompt row",
                "<case>.gen_logits": "[steps, vocab] raw logits of greedy steps (step 0 = prefill last row)",
                "two_images.layer<l>.k_pre_rope / q_pre_rope": "[heads, seq, head_dim] k_proj / q_proj output (with bias)",
                "two_images.layer<l>.k_post_rope / v": "[kv_heads, seq, head_dim] from past_key_values (BNSH, batch dropped)",
            },
            "cases": meta_cases,
        })

    # 4c. built-in model smoke run on the demo diagram (greedy tokens for an end-to-end test)
    if "builtin" in model_dirs:
        demo = builtin_demo(model_dirs["builtin"], os.path.join(args.out, "media", "samples", "diagram.png"),
                            args.device)
        demo.update({"versions": versions, "command": cmd, "seed": seeds["builtin"], "n_params": n_params["builtin"]})
        write_json(os.path.join(fix, "builtin-demo.json"), demo)

    if args.skip_builtin and kept_manifest is not None:
        for k in ("n_params", "seeds"):
            if "builtin" in kept_manifest.get(k, {}):
                (n_params if k == "n_params" else seeds)["builtin"] = kept_manifest[k]["builtin"]
    sizes = {
        "fixtures_total": dir_size(fix), "images": dir_size(img_dir),
        "qwen2vl-tiny": dir_size(model_dirs["qwen2vl-tiny"]), "qwen25vl-tiny": dir_size(model_dirs["qwen25vl-tiny"]),
        "media_model": dir_size(media_model) if os.path.isdir(media_model) else 0,
        "diagram": os.path.getsize(os.path.join(args.out, "media", "samples", "diagram.png")),
    }
    write_json(os.path.join(fix, "manifest.json"), {
        "versions": versions, "command": cmd, "n_params": n_params, "seeds": seeds, "seed_search": seed_search,
        "sizes_bytes": sizes,
        "files": {os.path.relpath(os.path.join(r, f), args.out): sha256_file(os.path.join(r, f))
                  for base in (fix, media_model, os.path.join(args.out, "media", "samples")) if os.path.isdir(base)
                  for r, _, fs in sorted(os.walk(base)) for f in sorted(fs) if f != "manifest.json"},
    })
    log("sizes:", json.dumps(sizes))
    log(f"done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
