/**
 * `vlcache` command line: `ask` (one question about images), `bench`, and with
 * no arguments a demo on the built-in model. The daemon uses the same engine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runAsk } from './ask';
import { runBench } from './bench';
import { runCalibrate } from './calibrate';
import { runEval } from './eval';
import { runSoak } from './soak';
import { MODES } from '../planner/plan';
import { runCacheCommand } from './cache';
import { runGpuCommand } from './gpu';
import { runModelCommand } from './model';
import { reportError } from './errors';
import { serveStdio } from '../main';

const USAGE = `usage:
  vlcache ask [--model DIR] [--image PATH]... [--max-tokens N] [--temperature T] [--top-p P] [--seed S]
              [--device auto|cpu|webgpu|cuda] [--precision auto|fp32|fp16] [--kv-arena auto|on|off] [--kv-arena-rows N] [--json]
              [--mode full|prefix|naive|epic|vlcache|cacheblend] [--ratio R] [--epic-k K] [--cache-dir DIR] [--no-cache] "QUESTION"
  vlcache bench [--model DIR] [--image PATH] [--device D] [--runs N] [--json] [--preprocess]
  vlcache cache stats|clear|verify --cache-dir DIR [--json]
  vlcache eval [--model DIR] [--image PATH] [--other-image PATH] [--device D] [--tokens N] [--no-schedule] [--json]
  vlcache eval --task synthetic [--eval-dir DIR] [--limit N] [--max-tokens N] [--no-schedule] [--json]
  vlcache calibrate [--model DIR] [--image PATH]... [--budget R (0.05)] [--device D] [--json]
  vlcache soak [--model DIR] [--requests N] [--ram-mb M] [--disk-mb M] [--daemon [--every N]] [--json]
  vlcache gpu doctor [--json] | gpu install cuda [--force] | gpu uninstall cuda   CUDA provider and GPU checks
  vlcache model download REPO [--dest DIR] [--revision R]   a Qwen2-VL / Qwen2.5-VL checkpoint from the Hugging Face hub
  vlcache serve --stdio   the language-server daemon (the extension starts it)
  vlcache            a demo: a question about media/samples/diagram.png on the built-in model`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) return runAsk({ demo: true });
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (cmd === 'ask') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        image: { type: 'string', multiple: true },
        'max-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-p': { type: 'string' },
        seed: { type: 'string' },
        device: { type: 'string' },
        precision: { type: 'string' },
        'kv-arena': { type: 'string' },
        'kv-arena-rows': { type: 'string' },
        json: { type: 'boolean' },
        'ignore-eos': { type: 'boolean' },
        mode: { type: 'string' },
        ratio: { type: 'string' },
        'epic-k': { type: 'string' },
        'cache-dir': { type: 'string' },
        'no-cache': { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UsageError('ask takes exactly one QUESTION (quote it)');
    return runAsk({
      model: values.model,
      images: values.image ?? [],
      question: positionals[0],
      maxTokens: intArg(values['max-tokens'], '--max-tokens'),
      temperature: numArg(values.temperature, '--temperature'),
      topP: numArg(values['top-p'], '--top-p'),
      seed: intArg(values.seed, '--seed'),
      device: enumArg(values.device, '--device', ['auto', 'cpu', 'webgpu', 'cuda'] as const),
      precision: enumArg(values.precision, '--precision', ['auto', 'fp32', 'fp16'] as const),
      kvArena: enumArg(values['kv-arena'], '--kv-arena', ['auto', 'on', 'off'] as const),
      kvArenaRows: intArg(values['kv-arena-rows'], '--kv-arena-rows'),
      json: values.json ?? false,
      ignoreEos: values['ignore-eos'] ?? false,
      mode: enumArg(values.mode, '--mode', MODES),
      ratio: numArg(values.ratio, '--ratio'),
      epicK: intArg(values['epic-k'], '--epic-k'),
      cacheDir: values['cache-dir'],
      noCache: values['no-cache'] ?? false,
    });
  }
  if (cmd === 'bench') return runBench(rest);
  if (cmd === 'eval') return runEval(rest);
  if (cmd === 'calibrate') return runCalibrate(rest);
  if (cmd === 'soak') return runSoak(rest);
  if (cmd === 'cache') return runCacheCommand(rest);
  if (cmd === 'gpu') return runGpuCommand(rest);
  if (cmd === 'model') return runModelCommand(rest);
  if (cmd === 'serve') {
    // vscode-languageclient appends --clientProcessId=PID; vscode-languageserver reads it from argv
    // and exits when that process dies (no orphan daemon holding the GPU).
    const transport = rest.filter((a) => !/^--clientProcessId=\d+$/.test(a));
    if (transport.length !== 1 || transport[0] !== '--stdio') throw new UsageError('serve takes --stdio (the only transport so far)');
    serveStdio();
    return new Promise<number>(() => {}); // Runs until the client's exit notification ends the process.
  }
  throw new UsageError(`unknown command '${cmd}'`);
}

export class UsageError extends Error {}

function intArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} takes a non-negative integer, not '${v}'`);
  return n;
}

function numArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} takes a non-negative number, not '${v}'`);
  return n;
}

function enumArg<T extends string>(v: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UsageError(`${name} takes one of ${allowed.join(', ')}, not '${v}'`);
  return v as T;
}

/**
 * NOTE: ONNX Runtime's initialisation overflows the main thread's stack on a long command line:
 * with Linux's 8 MiB stack, an argument vector of about 29,000 characters or more crashes
 * session creation with SIGSEGV (a 30,000-character question exited with 139); the same text
 * in the environment does not. So a long command line is handed to a child process through a
 * private file, and the child, with a short command line, does the work.
 */
const LONG_ARGV_CHARS = 16_384;

/** The arguments, or undefined when a child process was run with them (its exit code is set). */
function argvOrRelaunch(): string[] | undefined {
  const file = process.env.VLCACHE_ARGV_FILE;
  if (file) {
    delete process.env.VLCACHE_ARGV_FILE;
    return JSON.parse(readFileSync(file, 'utf8')) as string[];
  }
  const args = process.argv.slice(2);
  if (args.reduce((n, a) => n + a.length + 1, 0) <= LONG_ARGV_CHARS) return args;
  const dir = mkdtempSync(join(tmpdir(), 'vlcache-argv-'));
  try {
    const argvFile = join(dir, 'argv.json');
    writeFileSync(argvFile, JSON.stringify(args), { mode: 0o600 });
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]],
      { stdio: 'inherit', env: { ...process.env, VLCACHE_ARGV_FILE: argvFile } });
    process.exitCode = r.status ?? (r.signal ? 128 + (osConstants.signals[r.signal] ?? 0) : 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

const argv = argvOrRelaunch();
if (argv) main(argv).then(
  (code) => { process.exitCode = code; },
  (e) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`vlcache: ${(e as Error).message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    process.exitCode = reportError(e);
  },
);
