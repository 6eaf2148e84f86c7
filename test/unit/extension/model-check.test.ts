/** The model folder check behind Select Model… and a changed vlcache.modelPath: the exact problem, or none. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelFolderProblem } from '../../../extension/src/model-check';
import { inEditorTerms } from '../../../extension/src/model-check';

const builtin = join(__dirname, '..', '..', '..', 'media', 'model');

describe('modelFolderProblem', () => {
  it('accepts the built-in checkpoint', () => {
    assert.equal(modelFolderProblem(builtin), undefined);
  });
  it('names what is wrong with a folder that is not a Qwen2-VL checkpoint', () => {
    const root = mkdtempSync(join(tmpdir(), 'vlcache-model-'));
    assert.match(modelFolderProblem(join(root, 'missing'))!, /cannot be read \(ENOENT\)/);
    writeFileSync(join(root, 'file'), 'x');
    assert.match(modelFolderProblem(join(root, 'file'))!, /is a file, not a folder/);
    const dir = join(root, 'm');
    mkdirSync(dir);
    assert.match(modelFolderProblem(dir)!, /has no config\.json/);
    writeFileSync(join(dir, 'config.json'), '{ not json');
    assert.match(modelFolderProblem(dir)!, /config\.json .* is not valid JSON/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    assert.match(modelFolderProblem(dir)!, /is a "llama", not Qwen2-VL or Qwen2\.5-VL/);
    copyFileSync(join(builtin, 'config.json'), join(dir, 'config.json'));
    assert.match(modelFolderProblem(dir)!, /has no tokenizer\.json/);
    writeFileSync(join(dir, 'tokenizer.json'), '{}');
    assert.match(modelFolderProblem(dir)!, /has no weights/);
  });
});

describe('inEditorTerms', () => {
  it('names the setting instead of the CLI flag', () => {
    assert.equal(inEditorTerms('No weights. Point --model at a folder downloaded with `hf download X --local-dir <folder>`.'),
      'No weights. Set vlcache.modelPath to a folder downloaded with `hf download X --local-dir <folder>`.');
    assert.equal(inEditorTerms('and point --model at that folder.'), 'and set vlcache.modelPath to that folder.');
  });
});
