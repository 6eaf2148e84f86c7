/**
 * `vlcache gpu install|uninstall cuda` and `vlcache gpu doctor`: the CUDA provider from the
 * npm registry, and what this machine has for the GPU providers.
 * Exit status: 0 done, 1 the install failed (nothing was installed), 2 usage.
 */
import { parseArgs } from 'node:util';
import { runDoctor, formatDoctor } from '../gpu/doctor';
import { installProvider, uninstallProvider, type InstallProgress } from '../gpu/install';
import { cudaPackageFor, installState } from '../gpu/provider-package';
import { probeCuda } from '../engine/ort';

const USAGE = `usage:
  vlcache gpu doctor [--json] [--no-probe]   what this machine has for CUDA and WebGPU, and what is missing
  vlcache gpu install cuda [--force] [--registry URL] [--json]
                                             ONNX Runtime's CUDA provider from the npm registry (npm's registry setting)
  vlcache gpu uninstall cuda`;

export async function runGpuCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { json: { type: 'boolean' }, force: { type: 'boolean' }, registry: { type: 'string' }, 'no-probe': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    console.error(`vlcache gpu: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, what] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (sub === 'doctor' && what === undefined) return doctor(values.json ?? false, !values['no-probe']);
  if ((sub === 'install' || sub === 'uninstall') && what === 'cuda' && positionals.length === 2) {
    return sub === 'install' ? install(values.force ?? false, values.registry, values.json ?? false) : uninstall();
  }
  console.error(`vlcache gpu: ${sub === undefined ? 'a subcommand is needed' : `unknown: ${positionals.join(' ')}`}\n${USAGE}`);
  return 2;
}

async function doctor(json: boolean, probe: boolean): Promise<number> {
  const pkg = cudaPackageFor();
  let providerLoad;
  if (probe && !('unsupported' in pkg) && installState(pkg).installed) {
    providerLoad = await probeCuda();
  }
  const report = runDoctor({ providerLoad });
  console.log(json ? JSON.stringify(report, null, 2) : formatDoctor(report));
  return 0;
}

async function install(force: boolean, registry: string | undefined, json: boolean): Promise<number> {
  const pkg = cudaPackageFor();
  if ('unsupported' in pkg) {
    console.error(`vlcache gpu install: ${pkg.unsupported}`);
    return 1;
  }
  const bar = progressPrinter();
  try {
    const r = await installProvider(pkg, { force, registry, onProgress: json ? undefined : bar });
    bar.end();
    if (json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(r.changed ? `CUDA provider installed in ${r.dir} (from ${r.registry})` : `CUDA provider already installed in ${r.dir} (--force reinstalls it)`);
      console.log('`vlcache gpu doctor` checks the driver and CUDA 13 libraries it needs; `--device auto` uses CUDA once they are found.');
    }
    return 0;
  } catch (e) {
    bar.end();
    console.error(`vlcache gpu install: ${(e as Error).message}`);
    return 1;
  }
}

function uninstall(): number {
  const pkg = cudaPackageFor();
  if ('unsupported' in pkg) {
    console.error(`vlcache gpu uninstall: ${pkg.unsupported}`);
    return 1;
  }
  const removed = uninstallProvider(pkg);
  console.log(removed ? 'CUDA provider removed' : 'no CUDA provider was installed');
  return 0;
}

/** Progress on stderr: a line redrawn in place on a terminal, a line per 10% otherwise. */
function progressPrinter(): ((p: InstallProgress) => void) & { end(): void } {
  const tty = process.stderr.isTTY;
  let lastTenth = -1;
  let drawn = false;
  const f = (p: InstallProgress): void => {
    if (p.phase !== 'download' || !p.download) {
      if (drawn) process.stderr.write('\n');
      drawn = false;
      process.stderr.write(`${p.message}\n`);
      return;
    }
    const { bytes, total, resumedFrom } = p.download;
    const mb = (n: number): string => (n / 2 ** 20).toFixed(1);
    const pct = total ? Math.floor((100 * bytes) / total) : undefined;
    const line = `  ${mb(bytes)}${total ? ` / ${mb(total)} MiB (${pct}%)` : ' MiB'}${resumedFrom ? `, resumed at ${mb(resumedFrom)} MiB` : ''}`;
    if (tty) {
      process.stderr.write(`\r${line}`);
      drawn = true;
    } else if (pct !== undefined && Math.floor(pct / 10) !== lastTenth) {
      lastTenth = Math.floor(pct / 10);
      process.stderr.write(`${line}\n`);
    }
  };
  return Object.assign(f, { end: () => { if (drawn) process.stderr.write('\n'); drawn = false; } });
}
