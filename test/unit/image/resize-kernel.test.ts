/**
 * The WebAssembly resize kernels (kernels/wasm/resize.wat through resize-kernel.ts) on their own: the committed
 * module is the assembled source, each kernel equals Pillow's fixed-point formula written out in scalar code here
 * (random weights, negative lobes and sums out of [0, 255] included) for every path (tap counts 1-9, rows shorter
 * and longer than a 16-byte block, RGB and RGBA pixels), and writes exactly the bytes of its row. Pillow itself is
 * the oracle of resize-parity.test.ts; this file pins the pieces.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { jobMemory, KeptMemory, kernelOn, MAX_JOB_BYTES } from '../../../server/src/engine/image/resize-kernel';

const root = join(__dirname, '..', '..', '..');

/** Pillow's clip8((HALF + sum) >> 22). */
const clip8 = (sum: number) => Math.min(255, Math.max(0, (((1 << 21) + sum) | 0) >> 22));

function random(seed: number): () => number {
  let s = seed;
  return () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32; };
}

/** A weight as Pillow's taps have them: 2^22 * [-0.1, 1.1], so sums leave [0, 255] now and then. */
const weight = (rnd: () => number) => Math.round((rnd() * 1.2 - 0.1) * 2 ** 22);

describe('resize kernels (WebAssembly)', () => {
  it('the committed module is kernels/wasm/resize.wat assembled (run npm run build:wasm after editing it)', async () => {
    const { assemble } = await import(join(root, 'scripts', 'build-wasm.mjs'));
    assert.equal(readFileSync(join(root, 'kernels', 'wasm', 'resize-wasm.ts'), 'utf8'), await assemble('resize'));
  });

  it('vrow: each tap count 1-9 and row length 1-40 equals the scalar formula and writes exactly its row', () => {
    const rnd = random(7);
    const memory = jobMemory(1 << 20);
    const k = kernelOn(memory);
    const bytes = new Uint8Array(memory.buffer);
    const i32 = new Int32Array(memory.buffer);
    const [PTRS, WEIGHTS, ROWS, DST] = [0, 64, 1024, 8192];
    for (let n = 1; n <= 9; n++) {
      for (let len = 1; len <= 40; len++) {
        const weights = Array.from({ length: n }, () => weight(rnd));
        for (let i = 0; i < n; i++) {
          i32[PTRS / 4 + i] = ROWS + i * 64;
          i32[WEIGHTS / 4 + i] = weights[i]!;
          for (let c = 0; c < 64; c++) bytes[ROWS + i * 64 + c] = Math.floor(rnd() * 256);
        }
        bytes.fill(7, DST - 16, DST + len + 16);
        k.vrow(PTRS, WEIGHTS, n, DST, len);
        for (let c = 0; c < len; c++) {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += bytes[ROWS + i * 64 + c]! * weights[i]!;
          assert.equal(bytes[DST + c], clip8(sum), `${n} taps, ${len} bytes, byte ${c}`);
        }
        assert.ok(bytes.subarray(DST - 16, DST).every((v) => v === 7) && bytes.subarray(DST + len, DST + len + 16).every((v) => v === 7),
          `${n} taps, ${len} bytes: wrote outside its row`);
      }
    }
  });

  it('hrow: 3- and 4-byte pixels, each tap count 1-7, widths 1-9 equal the scalar formula and write exactly their row', () => {
    const rnd = random(11);
    const memory = jobMemory(1 << 20);
    const k = kernelOn(memory);
    const bytes = new Uint8Array(memory.buffer);
    const i32 = new Int32Array(memory.buffer);
    const [STARTS, WEIGHTS, SRC, DST] = [0, 1024, 4096, 16384];
    for (const ps of [3, 4]) {
      for (let n = 1; n <= 7; n++) {
        for (let outW = 1; outW <= 9; outW++) {
          const inW = outW + n + 3;
          for (let x = 0; x < (inW + 4) * ps; x++) bytes[SRC + x] = Math.floor(rnd() * 256);
          const starts = Array.from({ length: outW }, () => Math.floor(rnd() * (inW - n + 1)));
          const weights = Array.from({ length: outW * n }, () => weight(rnd));
          starts.forEach((s, x) => { i32[STARTS / 4 + x] = s; });
          weights.forEach((w, j) => { i32[WEIGHTS / 4 + j] = w; });
          bytes.fill(7, DST - 16, DST + outW * 3 + 16);
          k.hrow(SRC, ps, STARTS, WEIGHTS, n, DST, outW);
          for (let x = 0; x < outW; x++) {
            for (let c = 0; c < 3; c++) {
              let sum = 0;
              for (let i = 0; i < n; i++) sum += bytes[SRC + (starts[x]! + i) * ps + c]! * weights[x * n + i]!;
              assert.equal(bytes[DST + x * 3 + c], clip8(sum), `${ps}-byte pixels, ${n} taps, width ${outW}: pixel ${x} channel ${c}`);
            }
          }
          assert.ok(bytes.subarray(DST - 16, DST).every((v) => v === 7) && bytes.subarray(DST + outW * 3, DST + outW * 3 + 16).every((v) => v === 7),
            `${ps}-byte pixels, ${n} taps, width ${outW}: wrote outside its row`);
        }
      }
    }
  });

  it('a kept job memory serves every job it fits; a new one is a power of two of at least 1 MiB; huge ones are not kept', () => {
    const kept = new KeptMemory();
    try {
      const a = kept.take(100);
      assert.equal(a.buffer.byteLength, 2 ** 20);
      assert.equal(kept.take(900_000), a, 'fits: the same memory');
      const b = kept.take(3 * 2 ** 20);
      assert.notEqual(b, a);
      assert.equal(b.buffer.byteLength, 4 * 2 ** 20);
      assert.equal(kept.take(1000), b, 'a small job reuses the larger memory');
      const huge = kept.take(129 * 2 ** 20);
      assert.equal(huge.buffer.byteLength, 129 * 2 ** 20, 'above 128 MiB: exactly the size needed');
      assert.notEqual(kept.take(1000), huge, 'and not kept');
    } finally {
      kept.release();
    }
  });

  it('a job beyond a 32-bit memory is a RangeError that says how much it needed', () => {
    assert.throws(() => jobMemory(MAX_JOB_BYTES + 1), (e: unknown) => e instanceof RangeError && /needs \d+ bytes of working memory/.test(e.message));
  });
});
