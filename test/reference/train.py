#!/usr/bin/env python3
"""Train the built-in model: a small Qwen2-VL (Qwen2VLForConditionalGeneration, our tokenizer, the Qwen chat
template) on the synthetic questions of synthetic.py, so that it really answers and VLCache's accuracy can be
measured on it. Saved in Hugging Face format (bf16), which the TypeScript engine loads unchanged.

Runs on the GPU machine (PyTorch + transformers 5.x), resumable across device runs of <= 10 minutes:
    PYTHONUNBUFFERED=1 python3 test/reference/train.py --out $OUT --minutes 8.5 --total-steps 9000 \
        [--resume test/reference/runs/ckpt]      # a folder with weights-*.pt from an earlier run's $OUT
    python3 test/reference/train.py --smoke --out $OUT   # checks (positions, prompt, logits vs HF) + timing

Training format (what the engine sends): [system] [earlier text turns] user: [other images] <target image>
question -> assistant: answer<|im_end|>. Prefixes vary per sample (default / short / long system prompt, 0-2
earlier turns, 0-2 other images first) so the model is robust to where the image sits. Loss only on the answer
tokens and <|im_end|>. Out ($OUT): weights-0.pt, weights-1.pt (fp32 state dict in two halves, < 16 MB each; the
optimizer state is not kept: a resumed run re-warms the learning rate for --rewarm steps), model.tar (the HF
folder), train.log, metrics.json.
"""

import argparse
import io
import json
import math
import os
import random
import sys
import tarfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "golden"))
import synthetic  # noqa: E402
import make_golden as mg  # noqa: E402  (tokenizer config, side files, config helpers: one source of truth)

TOKENIZER_JSON = os.path.join(ROOT, "test", "golden", "fixtures", "tokenizer.json")
MAX_PIXELS = 448 * 448
MIN_PIXELS = mg.MIN_PIXELS

# The model. head_dim 32 -> mrope_section sums to 16. ~6.3M parameters, ~12.7 MB in bf16.
SPEC = dict(
    text=dict(hidden=256, inter=768, layers=6, heads=8, kv=2, mrope=[4, 6, 6]),
    vision=dict(depth=6, embed_dim=128, hidden_size=256, num_heads=4, mlp_ratio=4, patch_size=14,
                spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="quick_gelu"),
)

DEFAULT_SYSTEM = "You are a helpful assistant."
SHORT_SYSTEMS = ["You are a concise assistant.", "You are a helpful assistant.", "Answer in one word.",
                 "You help developers understand diagrams, screenshots and mockups.", "Be brief.",
                 "You are a code review bot.", "Reply with the answer only."]
# planner/fidelity.ts LONG_SYSTEM (the eval's long prompt) and sentences for other long prompts.
LONG_SYSTEM = ("You are a meticulous software architect who reviews diagrams, screenshots and UI mockups. "
               + "Answer precisely, name every component you see, describe how data flows between them, point out "
               "anything that looks inconsistent, and keep the answer short unless asked for detail. " * 3)
SENTENCES = [
    "You are an assistant inside a code editor.", "The user works on a web service with many components.",
    "Answer questions about images precisely.", "Keep answers short.", "Never invent components.",
    "Colours are named in plain English.", "Numbers are written as digits.", "Be careful with arrows.",
    "The team uses TypeScript and Python.", "Diagrams show services and how requests flow.",
    "Screenshots come from the product's settings pages.", "Charts show weekly metrics.",
    "If you are unsure, give your best answer.", "Read labels exactly as written.",
]
HISTORY = [
    ("I am reviewing our service architecture.", "Sure, send me the diagrams and I will go through them."),
    ("Can you help me with a screenshot?", "Of course."),
    ("We are refactoring the login page.", "Good idea. Show me the current design."),
    ("Here is a question about our dashboard.", "Go ahead."),
    ("Thanks for the last answer.", "You are welcome."),
    ("I have a few images from the design review.", "Send them over."),
    ("Our cache layer is slow.", "Let us look at the architecture first."),
]

# ----------------------------------------------------------------------------------------------------------------
# Prompt, tokens, positions (what the engine computes; checked against transformers in --smoke)


def render(system, history, n_images, question):
    """The Qwen2-VL chat template rendered by hand: system (default when None), text turns, user turn with
    n_images image placeholders then the question, and the generation prompt."""
    s = f"<|im_start|>system\n{system if system is not None else DEFAULT_SYSTEM}<|im_end|>\n"
    for u, a in history:
        s += f"<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"
    s += "<|im_start|>user\n" + "<|vision_start|><|image_pad|><|vision_end|>" * n_images + question
    return s + "<|im_end|>\n<|im_start|>assistant\n"


def messages_for(system, history, n_images, question):
    msgs = [] if system is None else [{"role": "system", "content": system}]
    for u, a in history:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": question}]})
    return msgs


def smart_resize(h, w, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    """Qwen2-VL's smart_resize (Python round = half-to-even, like the engine's)."""
    h_bar, w_bar = round(h / factor) * factor, round(w / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar = max(factor, math.floor(h / beta / factor) * factor)
        w_bar = max(factor, math.floor(w / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def patches_u8(im):
    """PIL RGB -> (uint8 patches [gh*gw, 3*14*14] in Qwen's 2x2-block row order, (gh, gw)).
    The float pixel_values row is normalise(patch) with the temporal axis duplicated: [c, t=2, 14, 14]."""
    h, w = smart_resize(im.height, im.width)
    if (im.width, im.height) != (w, h):
        im = im.resize((w, h), resample=Image.BICUBIC)
    x = np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)                # (3, H, W)
    gh, gw = h // 14, w // 14
    p = x.reshape(3, gh // 2, 2, 14, gw // 2, 2, 14).transpose(1, 4, 2, 5, 0, 3, 6)  # bh bw ih iw c y x
    return np.ascontiguousarray(p.reshape(gh * gw, 3 * 14 * 14)), (gh, gw)


def mrope_positions(ids, image_token_id, grids):
    """[3, L] Qwen2-VL M-RoPE positions (get_rope_index): text advances by 1 on all axes; an image's merged
    grid (gh/2, gw/2) gets (t, h, w) = (p, p + i, p + j) from its start p; the next text starts at its max + 1."""
    L = len(ids)
    pos = np.zeros((3, L), dtype=np.int64)
    cur, i, k = 0, 0, 0
    while i < L:
        if ids[i] == image_token_id:
            gh, gw = grids[k][0] // 2, grids[k][1] // 2
            n = gh * gw
            hh, ww = np.divmod(np.arange(n), gw)
            pos[0, i:i + n] = cur
            pos[1, i:i + n] = cur + hh
            pos[2, i:i + n] = cur + ww
            cur += max(gh, gw)
            i += n
            k += 1
        else:
            pos[:, i] = cur
            cur += 1
            i += 1
    return pos


class Builder:
    """Samples -> token ids, answer mask, image patches. Pure functions of an rng (one per data worker)."""

    def __init__(self):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(TOKENIZER_JSON)
        self.ids = {t: self.tok.token_to_id(t) for t in mg.SPECIAL_TOKENS}
        self.image_id = self.ids["<|image_pad|>"]
        self.im_end = self.ids["<|im_end|>"]

    def context(self, rng):
        r = rng.random()
        if r < 0.35:
            system = None
        elif r < 0.7:
            system = rng.choice(SHORT_SYSTEMS)
        elif r < 0.8:
            system = LONG_SYSTEM
        else:
            system = " ".join(rng.sample(SENTENCES, rng.randint(3, 9)))
        nh = rng.choices([0, 1, 2], [0.6, 0.28, 0.12])[0]
        history = rng.sample(HISTORY, nh)
        n_before = rng.choices([0, 1, 2], [0.5, 0.35, 0.15])[0]
        return system, history, n_before

    def encode(self, images, system, history, question, answer, more=()):
        """-> ids [L], label mask [L] (1 where ids[t] is an answer token to predict), patches, grids.
        `more`: follow-up (question, answer) turns about the same images, also supervised."""
        pats, grids = zip(*(patches_u8(im) for im in images))
        text = render(system, history, len(images), question)
        parts = text.split("<|image_pad|>")
        exp = parts[0]
        for g, part in zip(grids, parts[1:]):
            exp += "<|image_pad|>" * (g[0] * g[1] // 4) + part
        ids = self.tok.encode(exp).ids
        mask = [0] * len(ids)
        for k, a in enumerate([answer] + [a for _, a in more]):
            if k > 0:
                turn = self.tok.encode(f"\n<|im_start|>user\n{more[k - 1][0]}<|im_end|>\n<|im_start|>assistant\n").ids
                ids += turn
                mask += [0] * len(turn)
            ans = self.tok.encode(a).ids + [self.im_end]
            ids += ans
            mask += [1] * len(ans)
        return ids, mask, list(pats), list(grids)

    def sample(self, rng, seed=None):
        seed = rng.randrange(10 ** 9) if seed is None else seed
        kind, im, qa = synthetic.sample(seed)
        qa = rng.sample(qa, len(qa))
        qtype, q, a = qa[0]
        # Half the samples ask 1-3 follow-up questions about the same image (more supervision per image).
        more = [(q2, a2) for _, q2, a2 in qa[1:1 + rng.choice([0, 0, 0, 1, 2, 3])]]
        system, history, n_before = self.context(rng)
        before = [synthetic.distractor(rng.randrange(10 ** 9)) for _ in range(n_before)]
        ids, mask, pats, grids = self.encode(before + [im], system, history, q, a, more if seed is None else ())
        return dict(ids=ids, mask=mask, patches=pats, grids=grids, qtype=qtype)

    def collate(self, samples):
        """Right-padded batch. ids/mask/attn [B, L]; pos [4, B, L] (row 0: text positions, rows 1-3: t, h, w);
        patches uint8 [P, 588] and grid_thw [n_images, 3] in sample-then-image order (= image-token order)."""
        L = max(len(s["ids"]) for s in samples)
        B = len(samples)
        pad = self.ids["<|endoftext|>"]
        ids = np.full((B, L), pad, dtype=np.int64)
        mask = np.zeros((B, L), dtype=np.int64)
        attn = np.zeros((B, L), dtype=np.int64)
        pos = np.zeros((4, B, L), dtype=np.int64)
        for b, s in enumerate(samples):
            n = len(s["ids"])
            ids[b, :n] = s["ids"]
            mask[b, :n] = s["mask"]
            attn[b, :n] = 1
            p3 = mrope_positions(s["ids"], self.image_id, s["grids"])
            pos[1:, b, :n] = p3
            pos[0, b, :n] = np.arange(n)
            pos[1:, b, n:] = p3[:, -1:] + 1 + np.arange(L - n)
            pos[0, b, n:] = np.arange(n, L)
        patches = np.concatenate([p for s in samples for p in s["patches"]], 0)
        grid = np.array([[1, g[0], g[1]] for s in samples for g in s["grids"]], dtype=np.int64)
        return dict(ids=ids, mask=mask, attn=attn, pos=pos, patches=patches, grid=grid,
                    qtypes=[s["qtype"] for s in samples])


# ----------------------------------------------------------------------------------------------------------------
# Data workers


def tensors(c):
    import torch
    conv = lambda v: torch.from_numpy(v) if isinstance(v, np.ndarray) else v  # noqa: E731
    return {k: conv(v) for k, v in c.items()}


def batches(batch, seed):
    import torch

    class DS(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid = info.id if info else 0
            rng = random.Random(seed * 1000 + wid)
            b = Builder()
            while True:
                c = b.collate([b.sample(rng) for _ in range(batch)])
                yield tensors(c)

    workers = max(1, min(14, (os.cpu_count() or 2) - 2))
    return torch.utils.data.DataLoader(DS(), batch_size=None, num_workers=workers, prefetch_factor=6,
                                       pin_memory=True, persistent_workers=True)


# ----------------------------------------------------------------------------------------------------------------
# Model


def build_model(ids, vocab):
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    t = SPEC["text"]
    tc = mg.text_cfg(vocab, t["hidden"], t["inter"], t["layers"], t["heads"], t["kv"], t["mrope"], ids, True)
    cfg = Qwen2VLConfig(text_config=tc, vision_config=dict(SPEC["vision"]), tie_word_embeddings=True, **mg.top_ids(ids))
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(cfg)
    try:
        model.set_attn_implementation("sdpa")
    except Exception as e:  # older API
        print("note: set_attn_implementation:", e)
    return model


def to_device(batch, dev):
    return {k: (v.to(dev, non_blocking=True) if hasattr(v, "to") else v) for k, v in batch.items()}


POS_ROWS = [4]  # position_ids rows given to the text model: 4 = [text; t; h; w] (transformers 5.x), 3 = [t; h; w]


def pixel_values(patches_u8_t):
    """uint8 [P, 588] (c, y, x) -> float32 [P, 1176] (c, t, y, x): x/255, normalised per channel, t duplicated."""
    import torch
    P = patches_u8_t.shape[0]
    x = patches_u8_t.view(P, 3, 1, 14, 14).double() * (1 / 255)
    x = x.float()
    mean = torch.tensor(mg.IMAGE_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(mg.IMAGE_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1, 1)
    x = (x - mean) / std
    return x.expand(P, 3, 2, 14, 14).reshape(P, 1176)


def forward(model, b, image_id):
    """Logits [N, vocab] at the N rows that predict an answer token, and those tokens [N]."""
    import torch
    emb = model.model.get_input_embeddings()(b["ids"])                       # [B, L, H]
    o = model.model.visual(pixel_values(b["patches"]), grid_thw=b["grid"])
    img = o.pooler_output if hasattr(o, "pooler_output") else o              # [n_image_tokens, H]
    sel = b["ids"] == image_id
    assert int(sel.sum()) == img.shape[0], (int(sel.sum()), img.shape)
    emb = emb.masked_scatter(sel[..., None], img.to(emb.dtype))
    pos = b["pos"] if POS_ROWS[0] == 4 else b["pos"][1:]
    out = model.model.language_model(inputs_embeds=emb, attention_mask=b["attn"], position_ids=pos)
    h = out.last_hidden_state                                                 # [B, L, H]
    tgt = b["mask"][:, 1:].bool()                                             # row t predicts token t+1
    logits = model.lm_head(h[:, :-1][tgt])
    return logits, b["ids"][:, 1:][tgt]


def answer_correct(logits, targets, mask):
    """Per sample: every answer token (and <|im_end|>) is the argmax = greedy decoding gives exactly the answer."""
    import torch
    ok = (logits.argmax(-1) == targets).long()
    counts = mask[:, 1:].sum(1)
    wrong = torch.zeros(mask.shape[0], dtype=torch.long, device=ok.device)
    owner = torch.repeat_interleave(torch.arange(mask.shape[0], device=ok.device), counts)
    wrong.index_add_(0, owner, 1 - ok)
    return (wrong == 0).cpu().tolist()


def save_weights(model, out, step, extra):
    """fp32 state dict in two halves (each < 16 MB: what comes back from the device), atomically."""
    import torch
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    keys = sorted(sd)
    half = [{}, {}]
    acc = 0
    total = sum(sd[k].numel() for k in keys)
    for k in keys:
        half[0 if acc < total / 2 else 1][k] = sd[k]
        acc += sd[k].numel()
    for i, part in enumerate(half):
        tmp = os.path.join(out, f".weights-{i}.pt")
        torch.save({"step": step, "state": part, **extra}, tmp)
        os.replace(tmp, os.path.join(out, f"weights-{i}.pt"))


def load_weights(model, folder):
    import torch
    state, meta = {}, {}
    for i in range(2):
        d = torch.load(os.path.join(folder, f"weights-{i}.pt"), map_location="cpu")
        state.update(d.pop("state"))
        meta = d
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    return meta


def export_hf(model, b, out):
    """The HF folder (bf16 weights + our tokenizer, template, preprocessor and generation configs) -> model.tar."""
    import copy
    import tempfile
    import torch
    d = tempfile.mkdtemp()
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    mg.write_side_files(d, TOKENIZER_JSON, mg.tokenizer_config(b.tok), b.ids, MAX_PIXELS)
    with tarfile.open(os.path.join(out, "model.tar"), "w") as t:
        for f in sorted(os.listdir(d)):
            t.add(os.path.join(d, f), arcname=os.path.join("model", f))
    return d


# ----------------------------------------------------------------------------------------------------------------


def smoke(args, model, b, dev):
    """Our pipeline (hand-rendered prompt, our positions, uint8 patches) vs transformers' processor path."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    d = export_hf(model, b, args.out)
    proc = mg.load_processor(d)
    ref = Qwen2VLForConditionalGeneration.from_pretrained(d, dtype=torch.float32).to(dev).eval()
    rng = random.Random(5)
    worst = 0.0
    for k in range(6):
        system, history, n_before = b.context(rng)
        history = history or ([HISTORY[0]] if k % 2 else [])
        n_before = max(n_before, k % 3)
        ims = [synthetic.distractor(rng.randrange(10 ** 9)) for _ in range(n_before)] + [synthetic.sample(k)[1]]
        q = "How many boxes are there?"
        msgs = messages_for(system, history, len(ims), q)
        prompt = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        assert prompt == render(system, history, len(ims), q), (prompt, render(system, history, len(ims), q))
        inputs = proc(text=[prompt], images=ims, return_tensors="pt")
        ids, mask, pats, grids = b.encode(ims, system, history, q, "3")
        n = inputs["input_ids"].shape[1]
        assert ids[:n] == inputs["input_ids"][0].tolist(), "token ids differ from the processor's"
        pos_hf, _ = ref.model.get_rope_index(inputs["input_ids"].to(dev), inputs["mm_token_type_ids"].to(dev),
                                             image_grid_thw=inputs["image_grid_thw"].to(dev))
        pos_me = mrope_positions(ids[:n], b.image_id, grids)
        assert (pos_hf[:, 0].cpu().numpy() == pos_me).all(), "M-RoPE positions differ"
        pv = pixel_values(torch.from_numpy(np.concatenate(pats, 0)).to(dev))
        pv_diff = float((pv.cpu() - inputs["pixel_values"]).abs().max())
        with torch.no_grad():
            lref = ref(**{kk: v.to(dev) for kk, v in inputs.items()}).logits[0, -1]
            # one answer row: row n-1 (the last prompt row) predicts token n
            c = b.collate([dict(ids=ids[:n] + [b.im_end], mask=[0] * n + [1], patches=pats, grids=grids, qtype="x")])
            c = to_device(tensors(c), dev)
            # Same (bf16-rounded) weights in fp32: our forward must reproduce the processor path's logits. Try the
            # 4-row position ids (text row first, transformers 5.x) and plain 3-row ones; keep what matches.
            diffs = {}
            for rows in (4, 3):
                POS_ROWS[0] = rows
                try:
                    logits, _ = forward(ref, c, b.image_id)
                    diffs[rows] = float((logits[0] - lref).abs().max())
                except Exception as e:
                    print(f"[smoke] {rows}-row positions failed: {e!r}")
            POS_ROWS[0] = min(diffs, key=diffs.get)
        diff = diffs[POS_ROWS[0]]
        print(f"[smoke] logits diff by position rows {diffs}, using {POS_ROWS[0]}")
        worst = max(worst, diff)
        print(f"[smoke] case {k}: images {len(ims)} history {len(history)} system {'default' if system is None else len(system)} "
              f"seq {n}: ids equal, positions equal, pixel max diff {pv_diff:.2e}, last logits max diff {diff:.2e}")
    assert worst < 1e-3, worst
    print("[smoke] prompt, ids, positions and logits agree with transformers' processor path")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", help="folder with weights-0.pt and weights-1.pt")
    ap.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of this run's training loop")
    ap.add_argument("--total-minutes", type=float, default=25, help="length of the cosine schedule over all runs")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--rewarm", type=int, default=150, help="warm-up steps after a resume (no optimizer state)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import torch
    os.makedirs(args.out, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    b = Builder()
    n_tok = b.tok.get_vocab_size(with_added_tokens=True)
    vocab = ((n_tok + 63) // 64) * 64
    model = build_model(b.ids, vocab)
    n_params = sum(p.numel() for p in model.parameters())
    start, meta = 0, {}
    local = "/tmp/vlc-train"  # survives between commands while the device machine stays warm
    for folder in [local, args.resume]:
        if folder and os.path.exists(os.path.join(folder, "weights-1.pt")):
            m = load_weights(model, folder)
            if m["step"] > start:
                start, meta = m["step"], m
                print(f"resumed from {folder} at step {start}")
    model.to(dev)
    print(f"model: {n_params} params ({n_params * 2 / 1e6:.1f} MB bf16), attn "
          f"{getattr(model.config, '_attn_implementation', '?')}, vocab {vocab}, device {dev}")

    if args.smoke:
        smoke(args, model, b, dev)

    # Fixed held-out batches (eval seed space, not the committed eval items) for teacher-forced exact match.
    vrng = random.Random(99)
    val = [b.collate([b.sample(vrng, seed=synthetic.EVAL_SEED0 + 10 ** 6 + k * 64 + j) for j in range(64)])
           for k in range(6)]
    val = [to_device(tensors(c), dev) for c in val]

    def evaluate():
        model.eval()
        per = {}
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            for c in val:
                logits, tg = forward(model, c, b.image_id)
                for q, ok in zip(c["qtypes"], answer_correct(logits.float(), tg, c["mask"])):
                    per.setdefault(q, []).append(ok)
        model.train()
        acc = sum(sum(v) for v in per.values()) / sum(len(v) for v in per.values())
        return acc, {q: round(sum(v) / len(v), 3) for q, v in sorted(per.items())}

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.05, eps=1e-8)

    prior_minutes = meta.get("minutes", 0.0)

    def lr_at(step):
        """Linear warm-up (again after a resume), then cosine to 5% over --total-minutes of training time."""
        warm = min(1.0, (step - start + 1) / (args.warmup if start == 0 else args.rewarm))
        prog = min(1.0, (prior_minutes + (time.time() - t0) / 60) / args.total_minutes)
        return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * prog)))

    loader = batches(args.batch, args.seed * 7919 + start)
    t0 = time.time()
    history = meta.get("history", [])
    log = open(os.path.join(args.out, "train.log"), "a")

    def note(s):
        print(s)
        log.write(s + "\n")
        log.flush()

    budget = (0.6 if args.smoke else args.minutes) * 60
    step, losses, t_last, n_tok_seen = start, [], time.time(), 0
    last_save = time.time()
    model.train()
    it = iter(loader)
    wait = 0.0
    while time.time() - t0 < budget:
        tw = time.time()
        batch = to_device(next(it), dev)
        wait += time.time() - tw
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            logits, tg = forward(model, batch, b.image_id)
            loss = torch.nn.functional.cross_entropy(logits.float(), tg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        n_tok_seen += int(batch["attn"].sum())
        if step % 50 == 0:
            dt = time.time() - t_last
            note(f"step {step} loss {np.mean(losses[-50:]):.4f} lr {lr_at(step):.2e} {50 / dt:.2f} it/s "
                 f"{n_tok_seen / dt:.0f} tok/s data-wait {wait / dt:.0%} seq {batch['ids'].shape[1]}")
            t_last, n_tok_seen, wait = time.time(), 0, 0.0
        if step % args.eval_every == 0:
            acc, per = evaluate()
            history.append({"step": step, "loss": float(np.mean(losses[-100:])), "val_exact": acc, "per_qtype": per,
                            "minutes": prior_minutes + (time.time() - t0) / 60})
            note(f"eval step {step}: exact {acc:.3f} {json.dumps(per)}")
        if time.time() - last_save > 150 and not args.smoke:
            save_weights(model, args.out, step, {"history": history, "minutes": prior_minutes + (time.time() - t0) / 60})
            last_save = time.time()
    acc, per = evaluate()
    history.append({"step": step, "loss": float(np.mean(losses[-100:])) if losses else None, "val_exact": acc,
                    "per_qtype": per, "minutes": prior_minutes + (time.time() - t0) / 60})
    note(f"final step {step}: exact {acc:.3f} {json.dumps(per)}")
    minutes = prior_minutes + (time.time() - t0) / 60
    if not args.smoke:
        save_weights(model, args.out, step, {"history": history, "minutes": minutes})
        os.makedirs(local, exist_ok=True)
        save_weights(model, local, step, {"history": history, "minutes": minutes})
        export_hf(model, b, args.out)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"params": n_params, "spec": SPEC, "step": step, "batch": args.batch, "lr": args.lr,
                   "total_minutes": args.total_minutes, "minutes": minutes, "history": history}, f, indent=1)
    note(f"done: step {step} in {(time.time() - t0) / 60:.1f} min")
    os._exit(0)  # data workers are daemons; do not wait for them


if __name__ == "__main__":
    main()
