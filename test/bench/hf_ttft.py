"""Hugging Face transformers' cold figures for one image question, to compare with
`vlcache bench` in the same run on the same machine (GPU, bf16, sdpa).

vision_ms: the vision tower on the preprocessed image; prefill_ms: one forward
over the whole prompt (image features included); ttft_ms: raw image + text to the
first generated token (preprocess + vision + prefill + sampling), no KV reuse.
Each is the median of --runs after one warm-up.

  python3 test/bench/hf_ttft.py --model /tmp/q25-3b --image img.png --json out.json
"""
import argparse, json, statistics, time

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor


def timed(fn, runs):
    fn()  # warm-up
    ts = []
    for _ in range(runs):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--json")
    a = ap.parse_args()
    model = AutoModelForImageTextToText.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    proc = AutoProcessor.from_pretrained(a.model)
    img = Image.open(a.image).convert("RGB")
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in this image?"}]}]
    # The tokenizer carries the chat template (tokenizer_config.json); the processor may not.
    text = proc.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def prep():
        return proc(text=[text], images=[img], return_tensors="pt").to("cuda")

    inputs = prep()
    pv, grid = inputs["pixel_values"].to(torch.bfloat16), inputs["image_grid_thw"]
    with torch.inference_mode():
        vision_ms = timed(lambda: model.model.get_image_features(pixel_values=pv, image_grid_thw=grid), a.runs)
        prefill_ms = timed(lambda: model(**inputs, use_cache=True, logits_to_keep=1), a.runs)
        ttft_ms = timed(lambda: model.generate(**prep(), max_new_tokens=1, do_sample=False), a.runs)
        n = a.decode_tokens
        gen_ms = timed(lambda: model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False), 2)
        one_ms = timed(lambda: model.generate(**inputs, max_new_tokens=1, do_sample=False), 2)
    out = dict(vision_ms=vision_ms, prefill_ms=prefill_ms, ttft_ms=ttft_ms,
               decode_tokens_per_s=(n - 1) * 1000 / max(gen_ms - one_ms, 1e-6),
               prompt_tokens=int(inputs["input_ids"].shape[1]), grid_thw=grid.tolist(),
               device=torch.cuda.get_device_name(), torch=torch.__version__,
               transformers=__import__("transformers").__version__, dtype="bfloat16", attn="sdpa", runs=a.runs)
    print(json.dumps(out, indent=1), flush=True)
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
