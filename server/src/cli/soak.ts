/**
 * `vlcache soak`: many requests with random images through the cache, printing
 * RSS, heap and disk usage as it goes, to show that memory and disk stay within
 * their budgets (no unbounded growth). Random images never repeat exactly, but
 * a third of the requests re-ask about a recent image (cache hits), like a user.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { loadCheckpoint } from '../engine/checkpoint';
import { VlModel } from '../engine/model';
import type { DeviceRequest } from '../engine/ort';
import { Generator, ImageInput } from '../ask/generate';
import { reuseFor } from '../ask/vlcache';
import { builtinModelDir } from '../paths';
import { openStore } from './store';
import { runDaemonSoak } from './soak-daemon';

export async function runSoak(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, device: { type: 'string' }, requests: { type: 'string' },
      'ram-mb': { type: 'string' }, 'disk-mb': { type: 'string' }, 'prefix-mb': { type: 'string' }, json: { type: 'boolean' },
      daemon: { type: 'boolean' }, every: { type: 'string' },
    },
  });
  const n = Number(values.requests ?? 1000);
  if (values.daemon) {
    return runDaemonSoak({ requests: n, every: Number(values.every ?? 100), modelPath: values.model,
      ramMb: Number(values['ram-mb'] ?? 32), diskMb: Number(values['disk-mb'] ?? 8), json: values.json ?? false, randomImage });
  }
  const ramBytes = Number(values['ram-mb'] ?? 32) * 2 ** 20;
  const diskBytes = Number(values['disk-mb'] ?? 8) * 2 ** 20;
  const ckpt = loadCheckpoint(values.model ?? builtinModelDir());
  const model = await VlModel.load(ckpt, { device: (values.device ?? 'auto') as DeviceRequest });
  const dir = mkdtempSync(join(tmpdir(), 'vlcache-soak-'));
  const { store, close } = openStore(dir, ckpt.fingerprint, { ramBytes, diskBytes, log: (m) => console.error(`soak: ${m}`) });
  const reuse = reuseFor(model, store, { prefixBytes: Number(values['prefix-mb'] ?? 16) * 2 ** 20, deviceKv: null });
  const gen = new Generator(model, undefined, reuse);
  const samples: Record<string, number>[] = [];
  let seed = 1;
  const recent: ImageInput[] = [];
  const t0 = performance.now();
  console.log(`soak: ${n} requests on ${model.device}; budgets RAM ${ramBytes >> 20} MiB, disk ${diskBytes >> 20} MiB, prefixes ${values['prefix-mb'] ?? 16} MiB`);
  console.log('| requests | RSS MiB | heap MiB | disk MiB | disk files | RAM tier MiB | encoder hits | prefix hits | kv hits |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  let encHits = 0, kvHits = 0, prefixHits = 0;
  try {
    for (let i = 1; i <= n; i++) {
      const again = recent.length > 0 && i % 3 === 0;
      const img = again ? recent[(i * 7) % recent.length] : randomImage(seed++);
      if (!again) { recent.push(img); if (recent.length > 8) recent.shift(); }
      // Every sixth request puts a fresh image before a recent one: the recent one is a non-prefix (KV) hit.
      const images = again && i % 6 === 0 ? [randomImage(100000 + i), img] : [img];
      const r = await gen.ask({ images, question: `Question ${i % 17}: what is in this picture?`, maxTokens: 2, ignoreEos: true });
      encHits += r.cache.encoderHits;
      kvHits += r.cache.kvHits;
      if (r.cache.prefixTokensReused > 0) prefixHits++;
      if (i % Math.max(1, Math.floor(n / 10)) === 0 || i === n) {
        global.gc?.();
        const mem = process.memoryUsage();
        const disk = dirBytes(dir);
        const s = store.stats();
        const row = { requests: i, rss_mib: mem.rss / 2 ** 20, heap_mib: mem.heapUsed / 2 ** 20, disk_mib: disk.bytes / 2 ** 20,
          disk_files: disk.files, ram_tier_mib: s.ram.bytes / 2 ** 20, encoder_hits: encHits, prefix_hits: prefixHits, kv_hits: kvHits };
        samples.push(row);
        console.log(`| ${i} | ${row.rss_mib.toFixed(0)} | ${row.heap_mib.toFixed(0)} | ${row.disk_mib.toFixed(1)} | ${disk.files} | ` +
          `${row.ram_tier_mib.toFixed(1)} | ${encHits} | ${prefixHits} | ${kvHits} |`);
      }
    }
  } finally {
    await close();
    await model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  const last = samples[samples.length - 1], mid = samples[Math.floor(samples.length / 2)];
  console.log(`soak: ${n} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s; RSS ${mid.rss_mib.toFixed(0)} -> ` +
    `${last.rss_mib.toFixed(0)} MiB over the second half; disk ${last.disk_mib.toFixed(1)} MiB of a ${diskBytes >> 20} MiB budget`);
  if (values.json) console.log(JSON.stringify({ requests: n, ram_budget_mib: ramBytes >> 20, disk_budget_mib: diskBytes >> 20, samples }));
  return 0;
}

/** A random image of random size (56-336 px per side) with random blocks: never the same bytes twice. */
function randomImage(seed: number): ImageInput {
  let s = seed * 2654435761 >>> 0;
  const rnd = () => { s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x9e3779b9) >>> 0; return s / 4294967296; };
  const w = 56 + Math.floor(rnd() * 280), h = 56 + Math.floor(rnd() * 280);
  const p = new PNG({ width: w, height: h });
  const c = [rnd() * 255, rnd() * 255, rnd() * 255];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 4, b = ((x >> 4) + (y >> 4) + seed) % 3;
    p.data[i] = (c[0] + b * 60) & 255; p.data[i + 1] = (c[1] + x) & 255; p.data[i + 2] = (c[2] + y) & 255; p.data[i + 3] = 255;
  }
  return { name: `random-${seed}.png`, bytes: PNG.sync.write(p) };
}

function dirBytes(dir: string): { bytes: number; files: number } {
  let bytes = 0, files = 0;
  for (const f of readdirSync(dir)) { bytes += statSync(join(dir, f)).size; files++; }
  return { bytes, files };
}
