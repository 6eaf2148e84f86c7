/** `vlcache bench`: placeholder until the benchmark lands in this file. */
export async function runBench(_args: string[]): Promise<number> {
  throw new Error('bench: not built yet');
}
