/**
 * Recent prompts' KV, for exact-prefix reuse: each entry holds a prompt's row
 * symbols (token ids, image keys) and per layer its K (pre-RoPE) and V for every
 * row, in row order, as host bytes [rows, nKv, D]. LRU within a byte budget.
 * Prefix entries stay in RAM: they are per-conversation and cheap to rebuild,
 * while image KV (the expensive part) is persisted by the store.
 */
import { commonPrefix } from '../planner/plan';

export interface PrefixEntry {
  readonly id: string;
  readonly symbols: readonly string[];
  /** Per layer [rows, nKv, D] bytes. */
  readonly k: readonly Uint8Array[];
  readonly v: readonly Uint8Array[];
  readonly bytes: number;
}

export class PrefixCache {
  /** Map order is recency: the last entry was used last. */
  private entries = new Map<string, PrefixEntry>();
  private used = 0;

  constructor(readonly budgetBytes: number) {}

  /** The entry sharing the longest prefix with `symbols`, and that length. */
  longest(symbols: readonly string[]): { id: string; rows: number } | undefined {
    let best: { id: string; rows: number } | undefined;
    for (const e of this.entries.values()) {
      const rows = commonPrefix(symbols, e.symbols);
      if (rows > 0 && (!best || rows > best.rows)) best = { id: e.id, rows };
    }
    return best;
  }

  get(id: string): PrefixEntry | undefined {
    const e = this.entries.get(id);
    if (e) {
      this.entries.delete(id);
      this.entries.set(id, e);
    }
    return e;
  }

  put(id: string, symbols: readonly string[], k: Uint8Array[], v: Uint8Array[]): void {
    const bytes = [...k, ...v].reduce((s, b) => s + b.length, 0);
    if (bytes > this.budgetBytes) return;
    this.delete(id);
    this.entries.set(id, { id, symbols, k, v, bytes });
    this.used += bytes;
    for (const [old] of this.entries) {
      if (this.used <= this.budgetBytes) break;
      this.delete(old);
    }
  }

  delete(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    this.used -= e.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }
}
