"""Random-weight checkpoint with the real shapes of Qwen2.5-VL-3B (or Qwen2-VL-2B),
for speed benchmarks. Runs on the GPU machine (transformers 5.17, torch).

The tokenizer and chat template come from one of our tiny golden fixtures; the
config's special-token ids are set to that tokenizer's ids, and the vocabulary
size stays the real one (151936) so the LM head has the real cost.

  python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out /tmp/q25-3b \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny
"""
import argparse, json, os, shutil, time

import torch
from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                          Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration)

SHAPES = {
    # Qwen2.5-VL-3B-Instruct (research/qwen2vl.md section 1).
    "qwen2_5_vl": dict(
        text=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                  num_attention_heads=16, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6,
                  max_position_embeddings=128000, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                  tie_word_embeddings=True),
        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                    window_size=112, fullatt_block_indexes=[7, 15, 23, 31], patch_size=14, spatial_merge_size=2,
                    temporal_patch_size=2, tokens_per_second=2, in_channels=3, hidden_act="silu")),
    # Qwen2-VL-2B-Instruct.
    "qwen2_vl": dict(
        text=dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                  num_attention_heads=12, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6,
                  max_position_embeddings=32768, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                  tie_word_embeddings=True),
        vision=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="quick_gelu")),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=SHAPES, default="qwen2_5_vl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer-from", required=True)
    # Fewer layers, the same widths (the vocabulary and LM head included): for profiling per-run costs
    # on a CPU, where all 36 + 32 layers would take minutes per request.
    ap.add_argument("--text-layers", type=int)
    ap.add_argument("--vision-depth", type=int)
    a = ap.parse_args()
    t0 = time.time()
    tok = json.load(open(os.path.join(a.tokenizer_from, "tokenizer.json")))
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    special = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                   vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    s = SHAPES[a.family]
    cls_cfg, cls_model = ((Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration) if a.family == "qwen2_5_vl"
                          else (Qwen2VLConfig, Qwen2VLForConditionalGeneration))
    text = dict(s["text"], bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    vision = dict(s["vision"])
    if a.text_layers:
        text["num_hidden_layers"] = a.text_layers
    if a.vision_depth:
        vision["depth"] = a.vision_depth
        if "fullatt_block_indexes" in vision:
            vision["fullatt_block_indexes"] = [i for i in vision["fullatt_block_indexes"] if i < a.vision_depth] or [a.vision_depth - 1]
    cfg = cls_cfg(text_config=text, vision_config=vision, tie_word_embeddings=True, **special)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = cls_model(cfg).to(torch.bfloat16).eval()
    model.save_pretrained(a.out)
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
              "chat_template.json"):
        src = os.path.join(a.tokenizer_from, f)
        if os.path.exists(src) and f != "generation_config.json":
            shutil.copy(src, os.path.join(a.out, f))
    # Real Qwen preprocessing limits: a 1344x1344 image stays 1344x1344 (2304 tokens).
    pre = json.load(open(os.path.join(a.tokenizer_from, "preprocessor_config.json")))
    pre.update(min_pixels=3136, max_pixels=12845056)
    pre.pop("size", None)
    json.dump(pre, open(os.path.join(a.out, "preprocessor_config.json"), "w"), indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: {n / 1e9:.2f}B params in {time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
