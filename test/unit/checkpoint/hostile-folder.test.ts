/**
 * Hostile and broken model folders: every file that is not a regular file, every size that
 * would make the loader allocate without bound, and constants that would turn an answer
 * into NaN are refused at load with a CheckpointError that names the file.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint } from '../../../server/src/engine/checkpoint';
import { FileRefusedError, readRegularFile } from '../../../server/src/engine/regular-file';
import { NonFiniteLogitsError, Sampler } from '../../../server/src/engine/sampler';
import { readFixture, rejects, tempDir, writeModelFolder } from './helpers';

const NESTED = () => readFixture('tiny-qwen2-vl-nested.config.json');

/** A fresh tiny model folder with `spoil` applied to it. */
function folder(spoil: (dir: string) => void): string {
  const dir = path.join(tempDir(), 'model');
  writeModelFolder(dir, NESTED());
  spoil(dir);
  return dir;
}

const fifo = (file: string) => {
  fs.rmSync(file, { recursive: true, force: true });
  execFileSync('mkfifo', [file]);
};
const editJson = (file: string, edit: (o: Record<string, any>) => void) => {
  const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  edit(o);
  fs.writeFileSync(file, JSON.stringify(o));
};

describe('hostile model folders', () => {
  // Each of these used to block the load forever (a FIFO opens only when a writer comes).
  for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json']) {
    it(`refuses ${name} as a FIFO at once`, () => {
      rejects(() => loadCheckpoint(folder((d) => fifo(path.join(d, name)))), 'InvalidConfig', name, 'not a regular file');
    });
  }

  it('refuses a weights file that is a FIFO or a link to /dev/zero at once', () => {
    rejects(() => loadCheckpoint(folder((d) => fifo(path.join(d, 'model.safetensors')))), 'CorruptSafetensors', 'not a regular file');
    const zero = folder((d) => {
      fs.rmSync(path.join(d, 'model.safetensors'));
      fs.symlinkSync('/dev/zero', path.join(d, 'model.safetensors'));
    });
    rejects(() => loadCheckpoint(zero), 'CorruptSafetensors', 'not a regular file');
  });

  it('refuses config.json that is a folder', () => {
    rejects(() => loadCheckpoint(folder((d) => {
      fs.rmSync(path.join(d, 'config.json'));
      fs.mkdirSync(path.join(d, 'config.json'));
    })), 'InvalidConfig', 'config.json is a folder');
  });

  it('refuses tokenizer.json without a tokenizer model', () => {
    rejects(() => loadCheckpoint(folder((d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{}'))),
      'InvalidConfig', 'tokenizer.json has no tokenizer model');
  });

  it('refuses sizes beyond sane bounds before allocating anything', () => {
    // num_hidden_layers 1e9 used to take 43 s and 2.7 GB, then fail with "Map maximum size exceeded".
    const t0 = performance.now();
    rejects(() => loadCheckpoint(folder((d) => editJson(path.join(d, 'config.json'), (c) => { c.text_config.num_hidden_layers = 1e9; }))),
      'InvalidConfig', 'text.numLayers must be a positive integer of at most 1024', '1000000000');
    assert.ok(performance.now() - t0 < 2000);
    rejects(() => loadCheckpoint(folder((d) => editJson(path.join(d, 'config.json'), (c) => { c.text_config.vocab_size = 2 ** 40; }))),
      'InvalidConfig', 'text.vocabSize');
    rejects(() => loadCheckpoint(folder((d) => editJson(path.join(d, 'config.json'), (c) => { c.vision_config.depth = 1e6; }))),
      'InvalidConfig', 'vision.depth');
  });

  it('refuses image_std 0 (pixels divided by it become Infinity)', () => {
    rejects(() => loadCheckpoint(folder((d) => editJson(path.join(d, 'preprocessor_config.json'), (p) => { p.image_std = [0.26, 0, 0.27]; }))),
      'InvalidConfig', 'image_std must be 3 positive numbers');
  });
});

describe('readRegularFile', () => {
  const refused = (code: string) => (e: unknown) => e instanceof FileRefusedError && e.code === code;

  it('reads a regular file through one descriptor, within a size limit', () => {
    const file = path.join(tempDir(), 'a.bin');
    fs.writeFileSync(file, Buffer.from([1, 2, 3]));
    assert.deepEqual([...readRegularFile(file, { maxBytes: 3 })], [1, 2, 3]);
    assert.throws(() => readRegularFile(file, { maxBytes: 2 }), refused('EFBIG'));
  });

  it('refuses FIFOs, devices and folders', () => {
    const dir = tempDir();
    execFileSync('mkfifo', [path.join(dir, 'p')]);
    assert.throws(() => readRegularFile(path.join(dir, 'p')), refused('ENOTREG'));
    assert.throws(() => readRegularFile('/dev/zero'), refused('ENOTREG'));
    assert.throws(() => readRegularFile(dir), refused('EISDIR'));
  });

  it('refuses a file that resolves outside the roots when it is opened', () => {
    const top = fs.realpathSync(tempDir());
    const ws = path.join(top, 'ws');
    fs.mkdirSync(path.join(ws, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'sub', 'x'), 'in');
    fs.mkdirSync(path.join(top, 'out'));
    fs.writeFileSync(path.join(top, 'out', 'x'), 'out');
    assert.equal(readRegularFile(path.join(ws, 'sub', 'x'), { roots: [ws] }).toString(), 'in');
    fs.renameSync(path.join(ws, 'sub'), path.join(ws, 'old'));
    fs.symlinkSync(path.join(top, 'out'), path.join(ws, 'sub'));
    assert.throws(() => readRegularFile(path.join(ws, 'sub', 'x'), { roots: [ws] }), refused('EOUTSIDE'));
  });
});

describe('NaN logits', () => {
  it('are an error, not token 0 (NaN weights used to answer "!!!!")', () => {
    const logits = new Float32Array([0.5, Number.NaN, 0.1]);
    assert.throws(() => new Sampler().next(logits), (e: unknown) => e instanceof NonFiniteLogitsError && /computed NaN/.test(e.message));
    assert.throws(() => new Sampler({ temperature: 0.7, topP: 0.9 }).next(logits), NonFiniteLogitsError);
    assert.equal(new Sampler().next(new Float32Array([0.5, 2, 0.1])), 1);
  });
});
