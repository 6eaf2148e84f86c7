/**
 * `vlcache cache stats|clear|verify --cache-dir DIR [--json]`: inspect and maintain a workspace's VLCache store.
 */

/** Runs one `vlcache cache` subcommand and returns the process exit code. */
export async function runCacheCommand(argv: string[]): Promise<number> {
  console.error(`vlcache cache: not implemented yet (${argv.join(' ')})`);
  return 2;
}
