/**
 * The import rules of DESIGN.md section 1, checked on the source tree: layers import
 * downwards only, and each foreign dependency has one seam. `checkImports(root)` reads
 * every .ts file under extension/, server/src/ and kernels/ of `root` with TypeScript's
 * own import scanner (static, type-only, re-exports, `import()` and `require()`), and
 * returns every import that breaks a rule; [] when the tree keeps them all.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** The folders scanned, relative to the root. */
const SOURCE_DIRS = ['extension', 'server/src', 'kernels'];

/** A folder and the folders its files may import from (relative imports; packages are checked below). */
interface LayerRule {
  readonly dir: string;
  readonly may: readonly string[];
}

/**
 * `protocol ← server ← scheduler ← evaluation ← ask ← planner ← cache, engine ← kernels`; the extension sees only the
 * protocol. `ask/` is the pipeline that runs the model for one request (generation, the reuse engine); `evaluation/`
 * the fidelity, accuracy and calibration tools that drive it; `planner/` pure planning below both.
 */
export const LAYER_RULES: readonly LayerRule[] = [
  { dir: 'extension/', may: ['extension/', 'server/src/protocol/'] },
  { dir: 'server/src/protocol/', may: ['server/src/protocol/'] },
  { dir: 'server/src/scheduler/', may: ['server/src/scheduler/'] },
  { dir: 'server/src/evaluation/', may: ['server/src/evaluation/', 'server/src/ask/', 'server/src/planner/', 'server/src/cache/', 'server/src/engine/', 'kernels/'] },
  { dir: 'server/src/ask/', may: ['server/src/ask/', 'server/src/planner/', 'server/src/cache/', 'server/src/engine/', 'kernels/'] },
  { dir: 'server/src/planner/', may: ['server/src/planner/', 'server/src/cache/', 'server/src/engine/', 'kernels/'] },
  { dir: 'server/src/engine/', may: ['server/src/engine/', 'kernels/', 'server/src/gpu/'] },
  // GPU provider install and machine checks (fs, http, child processes): below the engine, which asks it where the provider is.
  { dir: 'server/src/gpu/', may: ['server/src/gpu/'] },
  // Model download from the Hugging Face hub: its resumable download is gpu/'s, its final check the engine's loadCheckpoint.
  { dir: 'server/src/models/', may: ['server/src/models/', 'server/src/engine/', 'server/src/gpu/'] },
  { dir: 'server/src/cache/', may: ['server/src/cache/'] },
  { dir: 'kernels/', may: ['kernels/'] },
];

/** A foreign package and where it may be imported: under `dir`, and with `oneFile`, from exactly one file there. */
interface SeamRule {
  readonly pkg: string;
  readonly dir: string;
  readonly oneFile: boolean;
  readonly seam: string;
}

export const SEAM_RULES: readonly SeamRule[] = [
  { pkg: 'onnxruntime-node', dir: 'server/src/engine/', oneFile: true, seam: 'the one ONNX Runtime file of the engine' },
  { pkg: 'onnxruntime-common', dir: 'server/src/engine/', oneFile: false, seam: 'the engine' },
  { pkg: 'koffi', dir: 'server/src/engine/ort-capi.ts', oneFile: false, seam: 'the C-API binding of ONNX Runtime' },
  { pkg: 'vscode-languageserver', dir: 'server/src/', oneFile: true, seam: "the daemon's connection wiring" },
  { pkg: 'vscode', dir: 'extension/', oneFile: false, seam: 'the extension' },
  { pkg: 'vscode-languageclient', dir: 'extension/', oneFile: false, seam: 'the extension' },
];

export interface Violation {
  /** The importing file, relative to the root ('' for a missing seam). */
  readonly file: string;
  readonly specifier: string;
  readonly rule: string;
}

/** Every .ts file (not .d.ts) under `dir`, as absolute paths; node_modules and dot-folders skipped. */
function sourceFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return []; // a tree without this folder (the synthetic test trees)
  }
  return entries.flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name.startsWith('.') ? [] : sourceFiles(p);
    return /\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** 'vscode-languageserver/node' -> 'vscode-languageserver'; '@a/b/c' -> '@a/b'; 'node:fs' and 'fs' stay. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The imports of one file: TypeScript's scanner, so comments and strings never count. */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

const posix = (p: string) => p.split(sep).join('/');

export function checkImports(root: string): Violation[] {
  const violations: Violation[] = [];
  const importers = new Map<string, Set<string>>(); // package -> files importing it
  const files = SOURCE_DIRS.flatMap((d) => sourceFiles(join(root, d)));
  for (const abs of files) {
    const file = posix(relative(root, abs));
    for (const specifier of importsOf(readFileSync(abs, 'utf8'))) {
      if (specifier.startsWith('.')) {
        // A folder import ('../protocol') resolves to a path inside that folder: the trailing '/' keeps it there.
        const target = `${posix(relative(root, resolve(dirname(abs), specifier)))}/`;
        const rule = LAYER_RULES.find((r) => file.startsWith(r.dir));
        if (rule && !rule.may.some((m) => target.startsWith(m))) {
          violations.push({ file, specifier, rule: `${rule.dir} imports only from ${rule.may.join(', ')}` });
        }
        continue;
      }
      const pkg = packageName(specifier);
      if (!importers.has(pkg)) importers.set(pkg, new Set());
      importers.get(pkg)!.add(file);
    }
  }
  for (const seam of SEAM_RULES) {
    const users = [...(importers.get(seam.pkg) ?? [])].sort();
    for (const file of users.filter((f) => !f.startsWith(seam.dir))) {
      violations.push({ file, specifier: seam.pkg, rule: `${seam.pkg} is imported only in ${seam.seam} (${seam.dir})` });
    }
    if (seam.oneFile && users.length !== 1) {
      violations.push({ file: users.join(', '), specifier: seam.pkg,
        rule: `${seam.pkg} is imported in exactly one file (${seam.seam}), not ${users.length}` });
    }
  }
  return violations;
}

/** The files the checker reads under `root` (so a test can see it read the tree it meant). */
export function scannedFiles(root: string): string[] {
  return SOURCE_DIRS.flatMap((d) => sourceFiles(join(root, d))).map((f) => posix(relative(root, f)));
}
