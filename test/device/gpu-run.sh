#!/usr/bin/env bash
# One device run (see README "Benchmarks"): WebGPU golden comparison, then the
# Qwen2.5-VL-3B-shaped benchmark beside Hugging Face transformers.
# Usage on the GPU machine, from the repo root, after ../shared/device/pack.sh here:
#   run(carry [".device"]): source .device/prelude.sh && bash test/device/gpu-run.sh
# Stages: golden, preprocess, roofline, bench, profile, ortprof, mhaprobe, nsys, cachebench.
# Knobs: STAGES ("golden bench"), VARIANTS ("fp16:mha fp32:mha ..."), IMG_SIZE (1344), GOLDEN_ATTENTION (onnx, ...),
#   GOLDEN_DEVICES ("webgpu"; add cuda), BENCH_DEVICE (webgpu | cuda) for bench and cachebench.
# CUDA: a previous call carrying only .device-cuda ran `bash .device-cuda/install.sh /tmp/ortcuda`
#   (../shared/device/cuda-pack.sh); this script puts the provider beside onnxruntime-node's runtime.
# Results (at most 8 files come back): $OUT/golden-webgpu-*.json, hf.json, bench-*.json; logs on stdout.
set -uo pipefail
OUT=${OUT:-.tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 VLCACHE_HOME=/tmp/vlcache-home
STAGES=${STAGES:-golden bench}
node esbuild.mjs
if [ -f /tmp/ortcuda/libonnxruntime_providers_cuda.so ]; then
  bin=$(dirname "$(node -p "require.resolve('onnxruntime-node/package.json')")")/bin/napi-v6/linux/x64
  cp /tmp/ortcuda/*.so "$bin/" && export LD_LIBRARY_PATH=$(cat /tmp/ortcuda/ld_library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "cuda provider: $(ls "$bin" | tr '\n' ' ')"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if [[ " $STAGES " == *" golden "* ]]; then
  for dev in ${GOLDEN_DEVICES:-webgpu}; do
    for prec in ${GOLDEN_PRECISIONS:-fp16 fp32}; do
      VLCACHE_TEST_DEVICE=$dev VLCACHE_TEST_PRECISION=$prec VLCACHE_GOLDEN_REPORT="$OUT/golden-$dev-$prec${GOLDEN_ATTENTION:+-$GOLDEN_ATTENTION}.json" \
        VLCACHE_TEST_ATTENTION=${GOLDEN_ATTENTION:-} \
        timeout 240 node --import tsx --test test/golden/golden.test.ts > /tmp/golden-$dev-$prec.log 2>&1
      echo "golden $dev $prec: exit $? $(grep -E '^# (pass|fail)' /tmp/golden-$dev-$prec.log | tr '\n' ' ')"
      grep -E "error: '" /tmp/golden-$dev-$prec.log | head -5
    done
  done
fi

if [[ " $STAGES " == *" preprocess "* ]]; then
  node dist/cli.js bench --preprocess --json > "$OUT/preprocess-h200.json" 2>/tmp/pre.err; echo "preprocess: exit $?"; tail -3 /tmp/pre.err
  node dist/cli.js bench --preprocess 2>&1 | tail -12
fi

if [[ " $STAGES " == *" roofline "* ]]; then
  timeout 200 node --import tsx test/bench/matmul-roofline.ts webgpu 2>&1 | grep -v Warning
fi

if [[ " $STAGES " == *" bench "* ]]; then
  MODEL=/tmp/q25-3b; SIZE=${IMG_SIZE:-1344}; IMG=/tmp/img$SIZE.png
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -1
  python3 test/bench/make_image.py --size "$SIZE" --out "$IMG"
  [ -f test/bench/results/hf-$SIZE.json ] && [ -z "${HF_AGAIN:-}" ] && cp test/bench/results/hf-$SIZE.json "$OUT/"
  if [ ! -f "$OUT/hf-$SIZE.json" ]; then
    timeout 300 python3 test/bench/hf_ttft.py --model "$MODEL" --image "$IMG" --json "$OUT/hf-$SIZE.json" > /tmp/hf.log 2>&1
    echo "hf: exit $?"; tail -25 /tmp/hf.log
  fi
  for v in ${VARIANTS:-fp16:mha fp32:mha fp16:manual}; do
    prec=${v%%:*}; attn=${v##*:}
    timeout ${BENCH_TIMEOUT:-200} node dist/cli.js bench --model "$MODEL" --image "$IMG" --device webgpu --precision "$prec" \
      --attention "$attn" --runs 3 --compare "$OUT/hf-$SIZE.json" --json > "$OUT/bench-$SIZE-$prec-$attn.json" 2> /tmp/bench.err
    echo "bench webgpu $prec $attn: exit $?"; tail -5 /tmp/bench.err
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ('load_ms','ours','ratio','prompt_tokens')}))" "$OUT/bench-$SIZE-$prec-$attn.json" 2>/dev/null
  done
fi

if [[ " $STAGES " == *" profile "* ]]; then
  MODEL=/tmp/q25-3b; IMG=/tmp/img${IMG_SIZE:-1344}.png
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -1
  python3 test/bench/make_image.py --size "${IMG_SIZE:-1344}" --out "$IMG"
  timeout ${PROFILE_TIMEOUT:-200} node --import tsx test/device/cuda-profile.ts "$MODEL" "$IMG" > "$OUT/profile${PROFILE_TAG:-}.txt" 2>&1
  echo "profile: exit $?"; grep -v -E "VerifyEachNode|Memcpy nodes" "$OUT/profile${PROFILE_TAG:-}.txt" | tail -40
fi

if [[ " $STAGES " == *" ortprof "* ]]; then
  # ONNX Runtime's own profiler over the same requests: per session, where a run's time goes per operator.
  MODEL=/tmp/q25-3b; IMG=/tmp/img${IMG_SIZE:-1344}.png; rm -rf /tmp/ortprof; mkdir -p /tmp/ortprof
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -1
  python3 test/bench/make_image.py --size "${IMG_SIZE:-1344}" --out "$IMG"
  VLCACHE_ORT_PROFILE=/tmp/ortprof PROFILE_SYNC=1 timeout ${PROFILE_TIMEOUT:-200} node --import tsx test/device/cuda-profile.ts "$MODEL" "$IMG" \
    > "$OUT/ortprof-run.txt" 2>&1; echo "ortprof: exit $?"
  python3 test/device/ort-profile-summary.py /tmp/ortprof 14 > "$OUT/ortprof.txt" 2>&1; cat "$OUT/ortprof.txt"
fi

if [[ " $STAGES " == *" mhaprobe "* ]]; then
  # The step graph's first MultiHeadAttention took ~40 ms of every prefill run on the H200 (2026-12-05 profile;
  # the other 35 layers' together ~2 ms): per run or per new shape, and does a provider setting change it?
  MODEL=/tmp/q25-3b; IMG=/tmp/img${IMG_SIZE:-1344}.png
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -1
  python3 test/bench/make_image.py --size "${IMG_SIZE:-1344}" --out "$IMG"
  # ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO prints the kernel each attention node picks (SdpaKernel=...);
  # ORT_DISABLE_MEMORY_EFFICIENT_ATTENTION=1 takes the cutlass kernel out of the choice.
  for variant in "defaults" "ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1" "use_ep_level_unified_stream=1" "CUDA_MODULE_LOADING=EAGER" \
      "ORT_DISABLE_MEMORY_EFFICIENT_ATTENTION=1" "PROFILE_ATTENTION=manual" "PROFILE_ATTENTION=onnx" ${MHA_VARIANTS:-}; do
    case "$variant" in
      defaults) opts=""; envs="" ;;
      [A-Z]*=*) opts=""; envs="$variant" ;;
      *) opts="$variant"; envs="" ;;
    esac
    echo "== $variant" | tee -a "$OUT/mhaprobe.txt"
    env $envs VLCACHE_CUDA_OPTIONS="$opts" PROFILE_SYNC=1 PROFILE_REPEAT=3 timeout ${PROFILE_TIMEOUT:-150} \
      node --import tsx test/device/cuda-profile.ts "$MODEL" "$IMG" > /tmp/mhaprobe.log 2>&1
    grep -E "TTFT|vlcache-llm" /tmp/mhaprobe.log | tee -a "$OUT/mhaprobe.txt"
    # Which kernel each attention node picked (node names dropped, counted), when the debug variable is set.
    grep -aE "SdpaKernel|AttentionKernelOptions" /tmp/mhaprobe.log | sed -E 's/ Node=[^ ]+//; s/\x1B\[[0-9;]*m//g' | sort | uniq -c \
      | tee -a "$OUT/mhaprobe.txt"
  done
fi

if [[ " $STAGES " == *" nsys "* ]]; then
  # The same profile under Nsight Systems, where the machine has it: GPU kernel time against the
  # CUDA API calls around it (gaps between kernels are the per-run overhead).
  nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
  if [ -z "$nsys" ]; then echo "nsys: not on this machine"; else
    MODEL=/tmp/q25-3b; IMG=/tmp/img${IMG_SIZE:-1344}.png
    PROFILE_SYNC=1 timeout ${PROFILE_TIMEOUT:-300} "$nsys" profile -t cuda,nvtx,osrt -o /tmp/vl --force-overwrite true \
      node --import tsx test/device/cuda-profile.ts "$MODEL" "$IMG" > /tmp/nsys-run.log 2>&1; echo "nsys: exit $?"
    "$nsys" stats -r cuda_gpu_kern_sum,cuda_api_sum,cuda_gpu_mem_time_sum -f csv /tmp/vl.nsys-rep > "$OUT/nsys-stats.csv" 2>/dev/null
    head -c 6000 "$OUT/nsys-stats.csv"
  fi
fi

if [[ " $STAGES " == *" cachebench "* ]]; then
  MODEL=/tmp/q25-3b
  [ -f "$MODEL/config.json" ] || timeout 300 python3 test/bench/make_shaped_checkpoint.py --family qwen2_5_vl --out "$MODEL" \
      --tokenizer-from test/golden/fixtures/qwen2vl-tiny 2>&1 | tail -1
  for SIZE in ${SIZES:-1344 2016}; do
    IMG=/tmp/img$SIZE.png
    python3 test/bench/make_image.py --size "$SIZE" --out "$IMG"
    [ -f test/bench/results/hf-$SIZE.json ] && [ -z "${HF_AGAIN:-}" ] && cp test/bench/results/hf-$SIZE.json "$OUT/"
    if [ ! -f "$OUT/hf-$SIZE.json" ]; then
      timeout 300 python3 test/bench/hf_ttft.py --model "$MODEL" --image "$IMG" --json "$OUT/hf-$SIZE.json" > /tmp/hf.log 2>&1
      echo "hf $SIZE: exit $?"; tail -3 /tmp/hf.log
    fi
    timeout ${BENCH_TIMEOUT:-400} node dist/cli.js bench --model "$MODEL" --image "$IMG" --device ${BENCH_DEVICE:-webgpu} --runs 3 \
      --compare "$OUT/hf-$SIZE.json" --json > "$OUT/cachebench-${BENCH_DEVICE:-webgpu}-$SIZE.json" 2> /tmp/cb.err
    echo "cachebench $SIZE: exit $?"; tail -4 /tmp/cb.err
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d.get(k) for k in ('speedup','vs_transformers','decode')})); [print(k, {a: (round(b,3) if isinstance(b,float) else b) for a,b in v.items() if a!='tiers'}) for k,v in d['runs'].items()]" "$OUT/cachebench-${BENCH_DEVICE:-webgpu}-$SIZE.json"
  done
fi
