/**
 * Layers import downwards only and each foreign dependency has one seam (DESIGN.md
 * section 1): checked on this tree, and the checker shown to catch each kind of break
 * on small synthetic trees.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { checkImports, scannedFiles } from '../../support/import-rules';
import { repoRoot } from '../../support/server-fixture';

/** A throw-away tree of the given files (path -> source); removed after `f`. */
function withTree(files: Record<string, string>, f: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'vlcache-layers-'));
  try {
    for (const [path, source] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), source);
    }
    f(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The two seams a tree must have: one ONNX Runtime file and one connection file. */
const SEAMS = {
  'server/src/engine/ort.ts': "import * as ort from 'onnxruntime-node';\nexport const version = ort.env.versions;\n",
  'server/src/main.ts': "import { createConnection } from 'vscode-languageserver/node';\nimport { RequestType } from 'vscode-languageserver-protocol';\n",
};

describe('import rules (DESIGN.md section 1)', () => {
  it('hold in this tree', () => {
    const files = scannedFiles(repoRoot);
    for (const f of ['extension/src/main.ts', 'server/src/engine/ort.ts', 'server/src/main.ts', 'kernels/graphs/llm.ts', 'server/src/cache/store.ts',
      'server/src/ask/generate.ts', 'server/src/evaluation/fidelity.ts']) {
      assert.ok(files.includes(f), `${f} was not read`);
    }
    assert.deepEqual(checkImports(repoRoot), []);
  });

  it('pass a small tree that keeps them', () => {
    withTree({
      ...SEAMS,
      'extension/src/main.ts': "import * as vscode from 'vscode';\nimport { LanguageClient } from 'vscode-languageclient/node';\n" +
        "import { AskRequest } from '../../server/src/protocol';\nimport { join } from 'node:path';\nimport MarkdownIt from 'markdown-it';\n",
      'server/src/planner/plan.ts': "import { VlModel } from '../engine/model';\nimport type { CacheEntry } from '../cache/entry';\n",
      'server/src/ask/generate.ts': "import { planPrefill } from '../planner/plan';\nimport { DeviceTier } from '../cache/device-tier';\nimport { VlModel } from '../engine/model';\n",
      'server/src/evaluation/fidelity.ts': "import { Generator } from '../ask/generate';\nimport type { Mode } from '../planner/plan';\n",
      'server/src/engine/model.ts': "import { buildStepGraph } from '../../../kernels/graphs/llm';\nimport { Session } from './ort';\n",
      'kernels/graphs/llm.ts': "import type { TextConfig } from './config';\n",
    }, (root) => assert.deepEqual(checkImports(root), []));
  });

  it('report every import that runs up a layer or around a seam', () => {
    withTree({
      ...SEAMS,
      // The extension reaches past the protocol into the engine.
      'extension/src/commands.ts': "import { AskRequest } from '../../server/src/protocol';\nimport { VlModel } from '../../server/src/engine/model';\n",
      // kernels/ imports the engine's config (the import this rule was written for).
      'kernels/graphs/vision.ts': "import type { VisionConfig } from '../../server/src/engine/config';\n",
      // cache/ loads the planner lazily; the commented-out import and the string do not count.
      'server/src/cache/store.ts': "// import { plan } from '../planner/plan';\nconst s = \"import '../planner/plan'\";\n" +
        "export const later = () => import('../planner/plan');\n",
      // The planner reaches up into the ask pipeline; the ask pipeline into the evaluation tools.
      'server/src/planner/schedule.ts': "import type { Generator } from '../ask/generate';\n",
      'server/src/ask/generate.ts': "import { runFidelity } from '../evaluation/fidelity';\n",
      // A second ONNX Runtime importer, through require().
      'server/src/engine/model.ts': "const ort = require('onnxruntime-node');\n",
      // vscode outside the extension; a second vscode-languageserver importer (a type import counts).
      'server/src/hover/hover.ts': "import { window } from 'vscode';\nimport type { Connection } from 'vscode-languageserver';\n",
    }, (root) => {
      const found = checkImports(root).map((v) => `${v.file}: ${v.specifier}`).sort();
      assert.deepEqual(found, [
        'extension/src/commands.ts: ../../server/src/engine/model',
        'kernels/graphs/vision.ts: ../../server/src/engine/config',
        'server/src/ask/generate.ts: ../evaluation/fidelity',
        'server/src/cache/store.ts: ../planner/plan',
        'server/src/engine/model.ts, server/src/engine/ort.ts: onnxruntime-node',
        'server/src/hover/hover.ts, server/src/main.ts: vscode-languageserver',
        'server/src/hover/hover.ts: vscode',
        'server/src/planner/schedule.ts: ../ask/generate',
      ]);
    });
  });

  it('report a seam that is missing', () => {
    withTree({ 'server/src/main.ts': SEAMS['server/src/main.ts'] }, (root) => {
      assert.deepEqual(checkImports(root).map((v) => v.rule), ['onnxruntime-node is imported in exactly one file (the one ONNX Runtime file of the engine), not 0']);
    });
  });
});
