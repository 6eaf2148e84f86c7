#!/usr/bin/env bash
# One device run (see README "Benchmarks"): WebGPU golden comparison, then the
# Qwen2.5-VL-3B-shaped benchmark beside Hugging Face transformers.
# Usage on the GPU machine, from the repo root, after ../shared/device/pack.sh here:
#   run(carry [".device"]): source .device/prelude.sh && bash test/device/gpu-run.sh
# Results go to $OUT (or ./.tmp/out).
set -uo pipefail
OUT=${OUT:-.tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 VLCACHE_HOME=/tmp/vlcache-home
STAGES=${STAGES:-golden bench}
node esbuild.mjs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

if [[ " $STAGES " == *" golden "* ]]; then
  for prec in fp16 fp32; do
    VLCACHE_TEST_DEVICE=webgpu VLCACHE_TEST_PRECISION=$prec VLCACHE_GOLDEN_REPORT="$OUT/golden-webgpu-$prec.json" \
      timeout 240 node --import tsx --test test/golden/golden.test.ts > "$OUT/golden-webgpu-$prec.log" 2>&1
    echo "golden webgpu $prec: exit $? $(grep -E '^# (pass|fail)' "$OUT/golden-webgpu-$prec.log" | tr '\n' ' ')"
  done
fi

if [[ " $STAGES " == *" bench "* ]]; then
  MODEL=/tmp/q25-3b; IMG=/tmp/img1344.png
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -2
  python3 test/bench/make_image.py --size ${IMG_SIZE:-1344} --out "$IMG"
  timeout 300 python3 test/bench/hf_ttft.py --model "$MODEL" --image "$IMG" --json "$OUT/hf.json" > "$OUT/hf.log" 2>&1
  echo "hf: exit $? $(tr -d '\n ' < "$OUT/hf.json" 2>/dev/null | head -c 300)"
  for attn in ${ATTENTION:-mha manual}; do
    timeout ${BENCH_TIMEOUT:-240} node dist/cli.js bench --model "$MODEL" --image "$IMG" --device webgpu --attention "$attn" \
      --runs 3 --compare "$OUT/hf.json" > "$OUT/bench-webgpu-$attn.md" 2> "$OUT/bench-webgpu-$attn.err"
    echo "bench webgpu $attn: exit $?"; cat "$OUT/bench-webgpu-$attn.md"; tail -3 "$OUT/bench-webgpu-$attn.err"
  done
fi
