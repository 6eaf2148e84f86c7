/**
 * `vlcache eval --task synthetic`: exact-match accuracy of every reuse mode on the held-out synthetic
 * set (evaluation/accuracy.ts), beside first-token KL, agreement with full and TTFT from the same runs.
 */
import type { VlModel } from '../engine/model';
import { ModeSummary, loadEvalSet, majorityBaseline, runAccuracy, uniformChance } from '../evaluation/accuracy';
import type { ModeSpec } from '../evaluation/fidelity';
import { Generator } from '../ask/generate';
import { MapStore } from '../cache/map-store';
import { reuseFor } from '../ask/vlcache';
import { InputError } from './errors';

/**
 * The accuracy modes: the fidelity set plus the equal-compute baseline CacheBlend at r = 0.05.
 * (EPIC with k = R would recompute exactly vlcache's rows: both take each image's leading rows.)
 */
export function accuracyModes(fidelityModes: readonly ModeSpec[]): ModeSpec[] {
  const out = [...fidelityModes];
  out.splice(out.findIndex((m) => m.label === 'cacheblend r=0.15'), 0, { label: 'cacheblend r=0.05', mode: 'cacheblend', ratio: 0.05 });
  return out;
}

export async function runSyntheticEval(model: VlModel, modes: readonly ModeSpec[], schedule: readonly number[] | undefined,
  o: { dir: string; json: boolean; limit?: number; maxTokens: number; modelName: string }): Promise<number> {
  let items;
  try {
    items = loadEvalSet(o.dir);
  } catch (e) {
    throw new InputError(`${o.dir}: no eval set (eval.jsonl) there: ${(e as Error).message}`);
  }
  if (o.limit !== undefined) items = items.slice(0, o.limit);
  const chance = { majority: majorityBaseline(items), uniform: uniformChance(items) };
  const all = accuracyModes(modes);
  if (!o.json) console.error(`synthetic accuracy on ${o.modelName} (${model.device}): ${items.length} items x ${all.length + 1} modes`);
  let done = 0;
  const { items: results, summary } = await runAccuracy({
    dir: o.dir, items, modes: all, maxTokens: o.maxTokens,
    newGenerator: () => new Generator(model, undefined, reuseFor(model, new MapStore(), { deviceKv: null })),
    onItem: o.json ? undefined : (r) => { if (r.mode === 'full' && ++done % 20 === 0) console.error(`  ${done}/${items.length}`); },
  });
  if (o.json) {
    console.log(JSON.stringify({ task: 'synthetic', model: o.modelName, device: model.device, items: items.length,
      chance, schedule, summary, results }, null, 1));
    return 0;
  }
  console.log(table(summary, chance, items.length));
  return 0;
}

export function table(summary: readonly ModeSummary[], chance: { majority: number; uniform: number }, n: number): string {
  const variants = Object.keys(summary[0]?.by_variant ?? {});
  const full = summary.find((s) => s.mode === 'full');
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `${n} held-out questions; chance (upper bounds): uniform over each question type's answers ${pct(chance.uniform)}, ` +
      `its most frequent answer ${pct(chance.majority)}`,
    `| mode | accuracy | vs full | ${variants.join(' | ')} | first-token KL | top-1 agrees | answer = full's | rows computed | TTFT ms | speedup vs full |`,
    `|---|---|---|${variants.map(() => '---|').join('')}---|---|---|---|---|---|`,
  ];
  for (const s of summary) {
    const d = full ? 100 * (s.accuracy - full.accuracy) : 0;
    lines.push(`| ${s.mode} | ${pct(s.accuracy)} | ${s.mode === 'full' ? '' : `${d >= 0 ? '+' : ''}${d.toFixed(1)}`} | ` +
      `${variants.map((v) => pct(s.by_variant[v] ?? NaN)).join(' | ')} | ${s.first_token_kl_mean.toExponential(2)} | ` +
      `${pct(s.top1_agree)} | ${pct(s.same_as_full)} | ${pct(s.rows_computed)} | ${s.ttft_ms_median.toFixed(1)} | ${s.ttft_speedup_median.toFixed(2)}x |`);
  }
  return lines.join('\n');
}
