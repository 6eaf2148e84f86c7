// The extensionTestsPath module: VS Code's extension host requires it and awaits
// run(). It runs every compiled *.test.js beside it with mocha, the same files that
// .vscode-test.mjs names, and ends with a line that test/e2e/run.mjs reads.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'spec' });
  const files = readdirSync(__dirname, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.js'))
    .sort();
  for (const f of files) mocha.addFile(join(__dirname, f));
  const failed: string[] = [];
  const stats = await new Promise<{ passes: number; failures: number; pending: number }>((resolve) => {
    const runner = mocha.run(() => resolve({ passes: runner.stats?.passes ?? 0, failures: runner.stats?.failures ?? 0, pending: runner.stats?.pending ?? 0 }));
    runner.on('fail', (test, err: Error) => failed.push(`${test.fullTitle()}: ${String(err?.message ?? err).split('\n')[0]}`));
  });
  // One line per failure, read by run.mjs into its closing summary (a CI log's tail names them).
  for (const f of failed) console.log(`extension test failed: ${f}`);
  console.log(`extension tests: ${stats.passes} passed, ${stats.failures} failed, ${stats.pending} skipped (tests of APIs this editor lacks)`);
  if (stats.failures > 0 || stats.passes === 0) {
    throw new Error(`${stats.failures} extension test(s) failed, ${stats.passes} passed`);
  }
}
