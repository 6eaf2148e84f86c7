/**
 * Where a CUDA request's milliseconds go (native path): per session, the time to stage host
 * feeds, the run itself and converting outputs (ort.ts's VLCACHE_PROFILE counters), for a cold
 * request, a VLCache hit from the device tier and 32 decoded tokens through the KV arena — each
 * with runs on koffi's worker threads and with runs on the calling thread (VLCACHE_CAPI_SYNC).
 * Usage on the GPU machine: node --import tsx test/device/cuda-profile.ts MODEL_DIR IMAGE
 * (PROFILE_SYNC="1": only runs on the calling thread; PROFILE_REPEAT=N: the VLCache request N more times with
 * the same shapes; PROFILE_ATTENTION=manual: explicit attention instead of MultiHeadAttention; VLCACHE_CUDA_OPTIONS:
 * provider options to try).
 */
import { readFileSync } from 'node:fs';
import { loadCheckpoint } from '../../server/src/engine/checkpoint';
import { DeviceKv } from '../../server/src/engine/kv-device';
import { VlModel } from '../../server/src/engine/model';
import { cudaMemoryInUse, nativeProfile } from '../../server/src/engine/ort';
import { AskResult, Generator } from '../../server/src/ask/generate';
import { modelShape, reuseFor } from '../../server/src/ask/vlcache';
import { MapStore } from '../../server/src/cache/map-store';

async function main(): Promise<void> {
  const [dir, imagePath] = process.argv.slice(2);
  process.env.VLCACHE_PROFILE = '1';
  const model = await VlModel.load(loadCheckpoint(dir), {
    device: (process.env.PROFILE_DEVICE ?? 'cuda') as 'cuda' | 'cpu', kvArena: {},
    ...(process.env.PROFILE_ATTENTION ? { attention: process.env.PROFILE_ATTENTION as 'mha' | 'manual' | 'onnx' } : {}),
  });
  const image = { name: imagePath, bytes: readFileSync(imagePath) };
  const deviceKv = new DeviceKv(model.device, modelShape(model));
  const gen = new Generator(model, undefined, reuseFor(model, new MapStore(), { deviceKv }));
  const ask = (system: string, mode: 'full' | 'vlcache', maxTokens: number) =>
    gen.ask({ images: [image], system, question: 'Which component should be split first?', maxTokens, ignoreEos: true, mode });
  const line = (what: string, r: AskResult) => console.log(`${what}: TTFT ${r.timings.ttftMs.toFixed(1)} ms (vision ${r.timings.visionMs.toFixed(1)}, ` +
    `prefill ${r.timings.prefillMs.toFixed(1)}, assemble ${(r.cache.assembleMs ?? 0).toFixed(1)}), rows ${r.cache.tokensComputed}/${r.cache.tokensTotal}, ` +
    `decode ${r.timings.decodeTokensPerS.toFixed(1)} tok/s, tiers ${r.cache.tier.join(' ')}`);
  const table = () => {
    for (const [name, p] of [...nativeProfile].sort((a, b) => b[1].runMs - a[1].runMs)) {
      console.log(`  ${name.padEnd(34)} runs ${String(p.n).padStart(4)}  stage ${(p.stageMs / p.n).toFixed(2)}  run ${(p.runMs / p.n).toFixed(2)}  outputs ${(p.outputMs / p.n).toFixed(2)} ms/run`);
    }
    nativeProfile.clear();
  };
  for (const sync of (process.env.PROFILE_SYNC ?? '0 1').split(' ')) {
    process.env.VLCACHE_CAPI_SYNC = sync;
    console.log(`\n== runs ${sync === '1' ? 'on the calling thread' : "on koffi's worker threads"}`);
    await ask('Warm up.', 'full', 4);
    await ask('Warm up again.', 'vlcache', 4);
    nativeProfile.clear();
    line('cold (full)', await ask('You are a senior engineer.', 'full', 1));
    table();
    line('vlcache hit (device tier)', await ask('You review UI images.', 'vlcache', 1));
    table();
    line('decode 32 tokens (arena, captured)', await ask('You are terse.', 'vlcache', 32));
    table();
    // PROFILE_REPEAT=N: the same VLCache request N more times (identical shapes), each run's time on its own:
    // a cost that stays is per run; one that goes was per new shape.
    for (let i = 0; i < Number(process.env.PROFILE_REPEAT ?? 0); i++) {
      line(`vlcache hit, repeat ${i + 1} (same shapes)`, await ask('You review UI images.', 'vlcache', 1));
      table();
    }
  }
  console.log(`GPU memory in use: ${JSON.stringify(cudaMemoryInUse())}`);
  await model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
