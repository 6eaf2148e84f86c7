/**
 * Layer-aware schedules: the schedule file (validation, atomic save, malformed or
 * foreign files ignored), the calibration budget rule, and the per-layer plan
 * (exact computed and given rows per layer, keep lists, uniform == today's plan).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PromptLayout, planLayeredPrefill, planPrefill } from '../../../server/src/planner/plan';
import { allocateRatios, loadSchedule, saveSchedule, scheduleError, schedulePath } from '../../../server/src/planner/schedule';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('layer schedule file', () => {
  const fp = 'ab'.repeat(32);
  it('validates: non-increasing, in [0, 1], one ratio per layer', () => {
    assert.equal(scheduleError([0.5, 0.5, 0.1], 3), undefined);
    assert.match(scheduleError([0.1, 0.2], 2)!, /increase/);
    assert.match(scheduleError([1.5], 1)!, /\[0, 1\]/);
    assert.match(scheduleError([0.5, 0.1], 3)!, /3 layers/);
    assert.match(scheduleError([])!, /non-empty/);
  });

  it('saves with a rename, loads back, and ignores a malformed or foreign file with one log line', () => {
    const root = mkdtempSync(join(tmpdir(), 'vlcache-schedule-'));
    try {
      assert.equal(loadSchedule(fp, 3, () => assert.fail('no file: no log'), root), undefined);
      const s = { ratios: [0.2, 0.05, 0], source: 'test', created: new Date().toISOString(), model: fp };
      const path = saveSchedule(s, root);
      assert.equal(path, schedulePath(fp, root));
      assert.ok(path.endsWith(`schedules/${fp.slice(0, 16)}.json`));
      assert.deepEqual(readdirSync(dirname(path)), [`${fp.slice(0, 16)}.json`], 'no temp file left');
      assert.deepEqual(loadSchedule(fp, 3, undefined, root)?.ratios, [0.2, 0.05, 0]);
      const logs: string[] = [];
      assert.equal(loadSchedule(fp, 4, (l) => logs.push(l), root), undefined); // wrong layer count
      writeFileSync(path, JSON.stringify({ ...s, model: 'cd'.repeat(32) }));
      assert.equal(loadSchedule(fp, 3, (l) => logs.push(l), root), undefined); // another model's
      writeFileSync(path, '{"ratios": [0.1, 0.');
      assert.equal(loadSchedule(fp, 3, (l) => logs.push(l), root), undefined); // truncated
      writeFileSync(path, JSON.stringify({ ...s, ratios: [0.1, 0.3, 0] }));
      assert.equal(loadSchedule(fp, 3, (l) => logs.push(l), root), undefined); // increasing
      assert.equal(logs.length, 4);
      assert.ok(logs.every((l) => l.includes('ignoring') && l.includes('uniform')));
      assert.throws(() => saveSchedule({ ...s, ratios: [0, 1] }, root), /increase/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('layer schedule file that is not a file', () => {
  it('is ignored with one log line when a FIFO stands in its place, instead of hanging the model load (issue 9)', () => {
    const fp = 'ef'.repeat(32);
    const root = mkdtempSync(join(tmpdir(), 'vlcache-schedule-fifo-'));
    try {
      const path = schedulePath(fp, root);
      mkdirSync(dirname(path), { recursive: true });
      execFileSync('mkfifo', [path]);
      const logs: string[] = [];
      assert.equal(loadSchedule(fp, 3, (l) => logs.push(l), root), undefined);
      assert.equal(logs.length, 1);
      assert.match(logs[0], /not a regular file/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('calibration budget rule', () => {
  const mean = (r: number[]) => r.reduce((a, b) => a + b, 0) / r.length;
  const nonIncreasing = (r: number[]) => r.every((x, i) => i === 0 || x <= r[i - 1] + 1e-12);

  it('gives sensitive early layers larger ratios, non-increasing, in [0, 1], with the budget as the mean', () => {
    // s_0 (naive) .. s_4 (full): layer 0 removes most of the error.
    const r = allocateRatios([1.0, 0.2, 0.1, 0.05, 0], 0.05);
    assert.equal(r.length, 4);
    assert.ok(nonIncreasing(r) && r.every((x) => x >= 0 && x <= 1));
    assert.ok(Math.abs(mean(r) - 0.05) < 1e-9);
    assert.ok(r[0] > r[3]);
    // c = [1, 0.2, 0.1, 0.05]: proportional below the cap.
    assert.ok(Math.abs(r[0] / r[1] - 5) < 1e-6);
  });

  it('caps at 1 and hands the excess to the other layers (water-filling); noisy measurements stay monotone', () => {
    const r = allocateRatios([10, 1, 0.5, 0.2, 0], 0.5);
    assert.equal(r[0], 1);
    assert.ok(Math.abs(mean(r) - 0.5) < 1e-9 && nonIncreasing(r));
    const noisy = allocateRatios([0.3, 0.1, 0.4, 0.05, 0], 0.1); // s_2 > s_1: suffix max
    assert.ok(nonIncreasing(noisy) && Math.abs(mean(noisy) - 0.1) < 1e-9);
    assert.equal(noisy[0], noisy[1]);
  });

  it('is uniform when reuse never hurt, and fills every useful layer when the budget exceeds them', () => {
    assert.deepEqual(allocateRatios([0, 0, 0], 0.05), [0.05, 0.05]);
    assert.deepEqual(allocateRatios([1, 0, 0, 0], 0.9), [1, 0, 0]);
  });
});

describe('layered plan', () => {
  // 3 text rows, image A (keys a) rows [3, 23), 2 text, image B rows [25, 35), 3 text: n = 38.
  const tokens = range(0, 38).map((r) => (r >= 3 && r < 23) || (r >= 25 && r < 35) ? 9 : r);
  const layout: PromptLayout = { tokens, images: [{ key: 'a', start: 3, end: 23 }, { key: 'b', start: 25, end: 35 }] };
  const hit = () => true;

  it('uniform ratios give planPrefill at every layer', () => {
    for (const r of [0, 0.05, 0.3, 1]) {
      const lp = planLayeredPrefill(layout, { id: 'p', rows: 2 }, hit, [r, r, r]);
      const ref = planPrefill(layout, { id: 'p', rows: 2 }, hit, { mode: 'vlcache', ratio: r, epicK: 0 });
      assert.deepEqual(lp.plan, ref);
      for (let l = 0; l < 3; l++) {
        assert.deepEqual(lp.computeRows[l], ref.computeRows);
        assert.deepEqual(lp.reuse[l], ref.reuse);
      }
      assert.deepEqual(lp.keep, [ref.computeRows.map((_, i) => i), ref.computeRows.map((_, i) => i)]);
    }
  });

  it('computes each reused image\'s leading R_l rows at layer l and gives the rest, nested, with keep lists', () => {
    // A: nImg 20 -> R = 10, 4, 1; B: nImg 10 -> R = 5, 2, 1.
    const lp = planLayeredPrefill(layout, { id: 'p', rows: 2 }, hit, [0.5, 0.2, 0.05]);
    const text = [2, 23, 24, 35, 36, 37];
    const comp = (ra: number, rb: number) => [...text, ...range(3, 3 + ra), ...range(25, 25 + rb)].sort((a, b) => a - b);
    assert.deepEqual(lp.computeRows, [comp(10, 5), comp(4, 2), comp(1, 1)]);
    const given = (ra: number, rb: number) => [0, 1, ...range(3 + ra, 23), ...range(25 + rb, 35)];
    assert.deepEqual(lp.givenRows, [given(10, 5), given(4, 2), given(1, 1)]);
    assert.equal(lp.draft.prefixRows, 2);
    assert.deepEqual(lp.draft.reuse.map((r) => r.rows.length), [20, 10]);
    for (let l = 1; l < 3; l++) {
      assert.deepEqual(lp.keep[l - 1].map((i) => lp.computeRows[l - 1][i]), lp.computeRows[l]);
      assert.ok(lp.keep[l - 1].every((x, i) => i === 0 || x > lp.keep[l - 1][i - 1]));
    }
    // Every layer covers every prompt row exactly once (computed or given).
    for (let l = 0; l < 3; l++) assert.deepEqual([...lp.computeRows[l], ...lp.givenRows[l]].sort((a, b) => a - b), range(0, 38));
  });

  it('ratio 1 at the first layers computes the whole image there; the last row is never given', () => {
    const lp = planLayeredPrefill({ tokens: range(0, 8), images: [{ key: 'a', start: 2, end: 8 }] }, { rows: 0 }, hit, [1, 0]);
    assert.deepEqual(lp.reuse[0], []);
    assert.deepEqual(lp.computeRows, [range(0, 8), [0, 1, 7]]);
    assert.deepEqual(lp.givenRows[1], range(2, 7));
    assert.throws(() => planLayeredPrefill(layout, { rows: 0 }, hit, [0.1, 0.2]), /increase/);
  });
});
