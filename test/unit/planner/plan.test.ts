import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImageReuse, PromptLayout, commonPrefix, planPrefill, rowRuns, rowSymbols, withReuse } from '../../../server/src/planner/plan';

// 3 text rows, image A (rows 3-102, 100 tokens), 2 text rows, image B (rows 105-144, 40 tokens), 5 text rows.
const layout: PromptLayout = {
  tokens: Array.from({ length: 150 }, (_, i) => (i >= 3 && i < 103) || (i >= 105 && i < 145) ? 9 : i),
  images: [{ key: 'A', start: 3, end: 103 }, { key: 'B', start: 105, end: 145 }],
};
const opts = { ratio: 0.05, epicK: 8 };
/** A reused set as its range [r0, r1); the contiguous modes always reuse one range. */
const span = (r: ImageReuse): [number, number] => {
  const runs = rowRuns(r.rows);
  assert.equal(runs.length, 1, 'one contiguous range');
  return runs[0];
};
const all = (mode: any, prefixRows = 0, hits = ['A', 'B']) =>
  planPrefill(layout, { id: 'seq', rows: prefixRows }, (k) => hits.includes(k), { mode, ...opts });

describe('planPrefill', () => {
  it('computes every row in full mode, even with a cached prefix and image hits', () => {
    const p = all('full', 50);
    assert.equal(p.prefixRows, 0);
    assert.equal(p.computeRows.length, 150);
    assert.deepEqual(p.reuse, []);
  });

  it('recomputes the leading max(1, floor(r * nImg)) rows of each reused image and every text row', () => {
    const p = all('vlcache');
    // A: floor(0.05 * 100) = 5 leading rows computed, rows 8-102 reused; B: floor(0.05 * 40) = 2, rows 107-144 reused.
    assert.deepEqual(p.reuse.map((r) => [r.key, ...span(r)]), [['A', 8, 103], ['B', 107, 145]]);
    assert.equal(p.computeRows.length, 150 - 95 - 38);
    assert.deepEqual(p.computeRows.slice(0, 9), [0, 1, 2, 3, 4, 5, 6, 7, 103]);
  });

  it('reuses every row at r = 0, exactly like naive', () => {
    const z = planPrefill(layout, { rows: 0 }, () => true, { mode: 'vlcache', ratio: 0, epicK: 8 });
    assert.deepEqual(z.computeRows, all('naive').computeRows);
  });

  it('recomputes at least one row of a tiny image', () => {
    const p = planPrefill({ tokens: [1, 9, 9, 9, 2], images: [{ key: 'A', start: 1, end: 4 }] }, { rows: 0 }, () => true,
      { mode: 'vlcache', ratio: 0.05, epicK: 8 });
    assert.deepEqual(p.reuse.map(span), [[2, 4]]);
  });

  it('reuses every image row in naive mode and the first k rows are computed in epic mode', () => {
    assert.deepEqual(all('naive').reuse.map(span), [[3, 103], [105, 145]]);
    assert.deepEqual(all('epic').reuse.map(span), [[11, 103], [113, 145]]);
  });

  it('equals full recomputation of the images at r = 1', () => {
    const p = planPrefill(layout, { rows: 0 }, () => true, { mode: 'vlcache', ratio: 1, epicK: 8 });
    assert.deepEqual(p.reuse, []);
    assert.equal(p.computeRows.length, 150);
  });

  it('reuses an exact prefix whole, images inside it included, and only plans reuse after it', () => {
    const p = all('vlcache', 110);
    assert.equal(p.prefixRows, 105); // 110 falls inside image B: cut back to its start
    assert.deepEqual(p.reuse.map((r) => r.key), ['B']);
    assert.equal(p.computeRows[0], 105);
  });

  it('always computes the last row, even for a repeated identical prompt', () => {
    const p = all('prefix', 150);
    assert.equal(p.prefixRows, 149);
    assert.deepEqual(p.computeRows, [149]);
  });

  it('reuses nothing for images without a cached entry', () => {
    assert.deepEqual(all('vlcache', 0, ['B']).reuse.map((r) => r.key), ['B']);
  });

  it('matches prefixes row by row, images by key and index', () => {
    const other: PromptLayout = { tokens: layout.tokens, images: [{ key: 'A', start: 3, end: 103 }, { key: 'C', start: 105, end: 145 }] };
    assert.equal(commonPrefix(rowSymbols(layout), rowSymbols(other)), 105);
  });

  it('drafts a cacheblend plan that reuses every row of each hit image, like naive', () => {
    const p = all('cacheblend');
    assert.deepEqual(p.reuse.map(span), [[3, 103], [105, 145]]);
    assert.deepEqual(p.computeRows, all('naive').computeRows);
  });

  it('derives computed rows from arbitrary reused sets, dropping empty ones', () => {
    const draft = all('cacheblend');
    const p = withReuse(draft, 150, [{ ...draft.reuse[0], rows: draft.reuse[0].rows.filter((r) => r % 10 !== 0) },
      { ...draft.reuse[1], rows: [] }]);
    assert.deepEqual(p.reuse.map((r) => r.key), ['A']);
    // Computed: text 0-2, A's rows 10, 20, ..., 100, text 103-104, all of B (105-144), text 145-149.
    const expected = [0, 1, 2, ...[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 103, 104, ...Array.from({ length: 45 }, (_, i) => 105 + i)];
    assert.deepEqual(p.computeRows, expected);
    assert.deepEqual(rowRuns([3, 4, 5, 7, 9, 10]), [[3, 6], [7, 8], [9, 11]]);
  });
});
