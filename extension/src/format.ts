/** Small formatting helpers shared by the status bar, the answer view and the statistics view. Plain TypeScript. */
import type { AskResult } from '../../server/src/protocol';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** Escapes text for HTML (webview pages). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Whether an answer reused anything cached (encoder output, image KV or an exact prefix). */
export function wasCacheHit(r: AskResult): boolean {
  const c = r.cache;
  return c.encoderHits > 0 || c.kvHits > 0 || c.prefixTokensReused > 0;
}

/** "⚡ cache hit · 94% reused · TTFT 12 ms" or "cold · TTFT 70 ms". */
export function cacheBadge(r: AskResult): string {
  const t = `TTFT ${formatMs(r.timings.ttftMs)}`;
  if (!wasCacheHit(r)) return `cold · ${t}`;
  const reused = r.cache.tokensTotal === 0 ? 0 : 1 - r.cache.tokensComputed / r.cache.tokensTotal;
  return `⚡ cache hit · ${Math.round(reused * 100)}% reused · ${t}`;
}
