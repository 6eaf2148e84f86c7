#!/usr/bin/env python3
"""Sums ONNX Runtime profile files (VLCACHE_ORT_PROFILE, engine/ort.ts) per session: runs, mean
`model_run` time, and where a run's time goes per (provider, operator) — the host time of each
node's kernel call. On CUDA a kernel call only launches work, so a node that takes long here waits
for the GPU (a copy to the host) or runs on the CPU.
Usage: python3 test/device/ort-profile-summary.py PROFILE_DIR [TOP]"""
import glob, json, os, sys
from collections import defaultdict

folder, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12
for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
    try:
        events = json.load(open(path))
    except ValueError:  # a session never released: its file was opened but not written
        print(f"\n{os.path.basename(path)}: not written (session not released)")
        continue
    runs = [e['dur'] for e in events if e.get('cat') == 'Session' and e.get('name') == 'model_run']
    if not runs:
        continue
    per_op, per_node = defaultdict(float), defaultdict(float)
    for e in events:
        if e.get('cat') == 'Node' and e.get('name', '').endswith('_kernel_time'):
            a = e.get('args', {})
            per_op[(a.get('provider', '?'), a.get('op_name', '?'))] += e['dur']
            per_node[e['name'][:-len('_kernel_time')]] += e['dur']
    n = len(runs)
    print(f"\n{os.path.basename(path)}: {n} runs, model_run mean {sum(runs) / n / 1000:.2f} ms, "
          f"median {sorted(runs)[n // 2] / 1000:.2f} ms, nodes {sum(per_op.values()) / n / 1000:.2f} ms/run")
    for (prov, op), us in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {prov.replace('ExecutionProvider', ''):8} {op:32} {us / n / 1000:8.3f} ms/run")
    print('  slowest nodes:', ', '.join(f"{k} {v / n / 1000:.2f}" for k, v in sorted(per_node.items(), key=lambda kv: -kv[1])[:6]))
