/**
 * The CLI's JSON writer for engine results. Inside, results are camelCase (ask/generate.ts
 * AskResult, Timings, CacheStats); `--json` output keeps its documented snake_case names
 * (README, "vlcache ask --json"): every key of every plain object is converted, at any depth
 * (tokenIds -> token_ids, decodeTokensPerS -> decode_tokens_per_s, load_ms stays); arrays and
 * values are kept as they are.
 */

/** `camelCase` -> `camel_case`; a key without capitals is returned as it is. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), snakeCaseKeys(v)]));
}

/** One line of JSON on stdout, keys in snake_case. */
export function writeJson(value: unknown): void {
  process.stdout.write(JSON.stringify(snakeCaseKeys(value)) + '\n');
}
