/**
 * The disk tier: one directory per workspace, one verified file per entry (disk-format.ts, names in disk-dir.ts).
 *
 * - Start: the directory is created 0700, stale temp files of killed writes are removed, and the index is rebuilt
 *   from file headers only (no tensor is read). Files whose header or size do not verify are dropped.
 * - Reads are synchronous: a disk hit is on the request's critical path anyway. Every read verifies the data
 *   checksum; a file that does not verify is deleted and logged once, and reads as a miss.
 * - Writes are queued and run one at a time off the caller's path: temp file, fsync, rename, directory fsync, so a
 *   killed write leaves the old entry or the new one, never a torn one. `flush()` waits for the queue.
 * - Budget: the directory's entry files, of every model, are kept within `budgetBytes` by evicting under the policy
 *   before each write. Access times persist as file modification times, so LRU order survives a restart.
 * - Failure: when the directory cannot be created or written (EACCES, EPERM, EROFS, ENOSPC, EDQUOT, ENOTDIR) the
 *   tier stops writing and says so once through `log`; reads of what exists go on. Nothing throws into the caller.
 * - Files of another model are indexed as foreign: never served, kept (another model may share the workspace),
 *   and counted in the directory budget.
 */
import { closeSync, mkdirSync, openSync, utimesSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { entryBytes, entryProblem, type CacheEntry, type EntryKind } from './entry';
import { decodeEntry, encodeEntryParts, type DecodeFailure } from './disk-format';
import { clearCacheDir, entryFileKey, entryFileName, errText, isStaleTemp, readEntryFile, removeQuiet, scanCacheDir, tempFileName, verifyCacheDir, type VerifyReport } from './disk-dir';
import { lru, UsageTable, type EvictionPolicy } from './policy';
import type { CacheLog, CacheTier, EvictionListener, TierStats } from './tier';

export interface DiskTierParams {
  dir: string; // the workspace's cache directory; created 0700 when missing
  budgetBytes: number; // file bytes of all entry files in the directory
  modelFingerprint: string; // entries of any other model are never served
  policy?: EvictionPolicy; // default lru
  log?: CacheLog;
  onEvict?: EvictionListener;
  /**
   * Test seam: runs after a temp file is complete and fsynced and before it is renamed into place. Tests use it to
   * kill the process mid-write and to inject failures that cannot be produced for real (a full disk).
   */
  beforeRename?: (tempPath: string) => void | Promise<void>;
}

export interface DiskTierStats extends TierStats {
  dir: string;
  disabledReason?: string; // why the tier stopped writing
  foreign: { nEntries: number; bytes: number }; // intact files of other models (kept, never served)
  nDropped: number; // files dropped for not verifying since the tier was created
}

interface DiskRecord {
  kind: EntryKind;
  bytes: number; // file size
  foreign: boolean;
}

/** Errors that mean "this directory cannot take writes": the tier turns itself off. */
const DISABLING: Readonly<Record<string, string>> = {
  EACCES: 'is not writable',
  EPERM: 'is not writable',
  EROFS: 'is on a read-only file system',
  ENOSPC: 'is on a full disk',
  EDQUOT: 'is over its disk quota',
  ENOTDIR: 'is not a directory',
  EEXIST: 'is not a directory',
};

/** Read errors that just mean "no such entry" (ENOTDIR: the directory is gone or was never made). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

export class DiskTier implements CacheTier {
  readonly name = 'disk' as const;
  readonly dir: string;
  private readonly budget: number;
  private readonly fingerprint: string;
  private readonly policy: EvictionPolicy;
  private readonly log: CacheLog;
  private readonly onEvict?: EvictionListener;
  private readonly beforeRename?: (tempPath: string) => void | Promise<void>;
  private readonly index = new Map<string, DiskRecord>(); // key -> what its file holds
  private readonly usage = new UsageTable(Date.now); // stamps are wall-clock ms, persisted as mtimes
  private readonly pending = new Map<string, number>(); // key -> generation of the write that should land
  private readonly unusable = new Set<string>(); // keys of bad or deleted files that could not be removed
  private readonly logged = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private queuedBytes = 0;
  private generation = 0;
  private disabledReason?: string;
  private nEvictions = 0;
  private nDropped = 0;

  constructor(p: DiskTierParams) {
    if (!(Number.isSafeInteger(p.budgetBytes) && p.budgetBytes >= 0)) throw new RangeError(`disk budget must be a non-negative integer of bytes, not ${p.budgetBytes}`);
    this.dir = resolve(p.dir);
    this.budget = p.budgetBytes;
    this.fingerprint = p.modelFingerprint;
    this.policy = p.policy ?? lru;
    this.log = p.log ?? ((m) => console.error(`vlcache: ${m}`));
    this.onEvict = p.onEvict;
    this.beforeRename = p.beforeRename;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.probeWritable();
    } catch (e) {
      this.writeFailed(e, 'cannot be used');
    }
    this.rebuild();
    if (this.writable) this.evict(0, undefined);
  }

  get writable(): boolean {
    return this.disabledReason === undefined && this.budget > 0;
  }

  /**
   * Reads and verifies the entry's file. With `kind`, an entry of the other kind reads as a miss (and is kept).
   * Precondition: `key` matches KEY_PATTERN (the store checks it); anything else simply misses.
   */
  get(key: string, kind?: EntryKind): CacheEntry | undefined {
    const rec = this.index.get(key);
    if (rec?.foreign || (rec && kind !== undefined && rec.kind !== kind) || this.unusable.has(key) || entryFileKey(entryFileName(key)) !== key) return undefined;
    let bytes: Buffer;
    try {
      // NOTE: a key missing from the index is still looked for: another daemon on this workspace may have written it.
      // Regular files of exactly their header's size only: a FIFO or a link to /dev/zero is dropped, never read.
      const read = readEntryFile(join(this.dir, entryFileName(key)));
      if (!read.ok) {
        this.drop(key, read.failure.reason, read.failure.detail);
        return undefined;
      }
      bytes = read.bytes;
    } catch (e) {
      if (rec) this.forget(key);
      if (!ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) this.logOnce(`read:${key}`, `disk cache: cannot read ${entryFileName(key)} (${errText(e)}); it will be recomputed`);
      return undefined;
    }
    const r = decodeEntry(bytes, { key, modelFingerprint: this.fingerprint });
    if (!r.ok) {
      if (r.reason === 'foreign-model') this.record(key, r.header!.kind, bytes.length, true, this.usage.stamp());
      else this.drop(key, r.reason, r.detail);
      return undefined;
    }
    if (!rec) this.record(key, r.entry.kind, bytes.length, false, this.usage.stamp());
    if (kind !== undefined && r.entry.kind !== kind) return undefined;
    this.touch(key);
    return r.entry;
  }

  has(key: string): boolean {
    const rec = this.index.get(key);
    return rec !== undefined && !rec.foreign;
  }

  /** Records an access made through a higher tier, so that a hot entry is not the first to leave the disk. */
  touch(key: string): void {
    const rec = this.index.get(key);
    if (!rec || rec.foreign) return;
    const stamp = this.usage.stamp();
    this.usage.touch(key, stamp);
    if (!this.writable) return;
    try {
      utimesSync(join(this.dir, entryFileName(key)), stamp / 1000, stamp / 1000);
    } catch {
      // The order in this process is kept; only its persistence across a restart is lost.
    }
  }

  /**
   * Queues a write-through of the entry; returns at once. The write is skipped when the tier is off, when a later
   * `put` or a `delete` of the same id supersedes it, or when the entry is larger than the whole budget.
   * @throws TypeError for a malformed entry or one of another model (caller bugs).
   */
  put(entry: CacheEntry): void {
    const problem = entryProblem(entry);
    if (problem) throw new TypeError(`disk cache: ${problem}`);
    if (entry.modelFingerprint !== this.fingerprint) throw new TypeError(`disk cache: entry of model ${entry.modelFingerprint} put into the store of ${this.fingerprint}`);
    if (!this.writable) return;
    const gen = ++this.generation;
    this.pending.set(entry.key, gen);
    // Queued entries are held in memory until written; `backlogBytes` lets callers apply back-pressure.
    const size = entryBytes(entry);
    this.queuedBytes += size;
    // NOTE: write() handles its own failures; the catch only keeps one unforeseen error from stalling the queue.
    this.queue = this.queue.then(() => this.write(entry, gen)).catch((e) => this.writeFailed(e, `cannot take ${entryFileName(entry.key)}`))
      .finally(() => { this.queuedBytes -= size; });
  }

  delete(key: string): boolean {
    const had = this.index.has(key) || this.pending.has(key);
    this.pending.delete(key);
    this.forget(key);
    if (!removeQuiet(join(this.dir, entryFileName(key)))) this.unusable.add(key);
    return had;
  }

  /** Deletes every entry file in the directory (of every model) and cancels queued writes. */
  clear(): void {
    this.pending.clear();
    this.index.clear();
    this.usage.clear();
    try {
      for (const name of clearCacheDir(this.dir).notRemoved) this.unusable.add(entryFileKey(name)!);
    } catch (e) {
      this.logOnce('clear', `disk cache: cannot clear ${this.dir} (${errText(e)})`);
    }
  }

  keys(): string[] {
    return this.usage.order(this.policy).filter((key) => !this.index.get(key)?.foreign);
  }

  flush(): Promise<void> {
    return this.queue;
  }

  /** Bytes of entries queued for writing and not yet written (held in memory meanwhile). */
  backlogBytes(): number {
    return this.queuedBytes;
  }

  /** Re-reads and verifies every file in the directory; drops bad ones, re-indexes the rest. Never throws. */
  verify(): VerifyReport {
    let report: VerifyReport;
    try {
      report = verifyCacheDir(this.dir, { modelFingerprint: this.fingerprint });
    } catch (e) {
      this.logOnce('verify', `disk cache: cannot read ${this.dir} (${errText(e)})`);
      return { nChecked: 0, nOk: 0, nForeign: 0, nDropped: 0, nTempRemoved: 0, files: [] };
    }
    for (const f of report.files) {
      if (f.status === 'dropped') {
        this.forget(f.key);
        this.nDropped++;
        if (!f.removed) this.unusable.add(f.key);
        this.logOnce(`drop:${f.key}`, `disk cache: dropped ${f.name} (${f.failure!.reason}: ${f.failure!.detail}); it will be recomputed`);
      } else if (!this.index.has(f.key)) {
        this.record(f.key, f.kind!, f.bytes, f.status === 'foreign', f.mtimeMs);
      }
    }
    return report;
  }

  stats(): DiskTierStats {
    let nEntries = 0, bytes = 0, nForeign = 0, foreignBytes = 0;
    for (const r of this.index.values()) {
      if (r.foreign) { nForeign++; foreignBytes += r.bytes; } else { nEntries++; bytes += r.bytes; }
    }
    return {
      tier: 'disk', enabled: this.writable, nEntries, bytes, budgetBytes: this.budget, nEvictions: this.nEvictions,
      dir: this.dir, disabledReason: this.disabledReason, foreign: { nEntries: nForeign, bytes: foreignBytes }, nDropped: this.nDropped,
    };
  }

  /** One queued write. Never rejects: every failure is logged and costs only this entry. */
  private async write(entry: CacheEntry, gen: number): Promise<void> {
    const key = entry.key;
    if (!this.writable || this.pending.get(key) !== gen) return;
    const parts = encodeEntryParts(entry);
    const nBytes = parts.reduce((n, p) => n + p.byteLength, 0);
    if (nBytes > this.budget) {
      // Too large to keep at all; an older file under this key is stale now.
      this.delete(key);
      return;
    }
    this.evict(nBytes, key);
    const file = join(this.dir, entryFileName(key));
    const temp = join(this.dir, tempFileName(key, randomBytes(4).toString('hex')));
    const stamp = this.usage.stamp();
    try {
      const fh = await open(temp, 'wx', 0o600);
      try {
        for (const part of parts) {
          for (let done = 0; done < part.byteLength; ) done += (await fh.write(part, done, part.byteLength - done)).bytesWritten;
        }
        await fh.utimes(stamp / 1000, stamp / 1000);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.beforeRename?.(temp);
      if (this.pending.get(key) !== gen) {
        await rm(temp, { force: true });
        return;
      }
      await rename(temp, file);
      await this.fsyncDir();
    } catch (e) {
      await rm(temp, { force: true }).catch(() => undefined);
      this.writeFailed(e, `cannot take ${entryFileName(key)}`);
      return;
    }
    if (this.pending.get(key) !== gen) {
      // Deleted, cleared or superseded while the rename was in flight: the file must not outlive that.
      this.forget(key);
      removeQuiet(file);
      return;
    }
    this.pending.delete(key);
    this.unusable.delete(key);
    this.record(key, entry.kind, nBytes, false, stamp);
  }

  /** Evicts entry files, first in policy order, until `incoming` more bytes fit (0: until within budget). */
  private evict(incoming: number, replacing: string | undefined): void {
    for (const key of this.usage.victims(this.policy, this.budget, incoming, replacing)) {
      const rec = this.index.get(key);
      const bytes = this.usage.get(key)?.bytes ?? 0;
      this.forget(key);
      if (!rec) continue;
      if (!removeQuiet(join(this.dir, entryFileName(key)))) this.unusable.add(key);
      this.nEvictions++;
      this.onEvict?.({ tier: 'disk', key, kind: rec.kind, bytes });
    }
  }

  /** Rebuilds the index from file headers; removes stale temp files and files that do not verify. */
  private rebuild(): void {
    let scan;
    try {
      scan = scanCacheDir(this.dir);
    } catch (e) {
      // A directory that could not be created has been reported already.
      if (!(this.disabledReason && ABSENT.has((e as NodeJS.ErrnoException).code ?? ''))) {
        this.logOnce('scan', `disk cache: cannot read ${this.dir} (${errText(e)}); starting with an empty disk cache`);
      }
      return;
    }
    for (const name of scan.tempFiles) if (isStaleTemp(name)) removeQuiet(join(this.dir, name));
    const nBad: Record<string, number> = {};
    for (const f of scan.entries) {
      if (f.failure) {
        nBad[f.failure.reason] = (nBad[f.failure.reason] ?? 0) + 1;
        this.drop(f.key, f.failure.reason, f.failure.detail, true);
        continue;
      }
      this.record(f.key, f.header!.kind, f.bytes, f.header!.model_fingerprint !== this.fingerprint, f.mtimeMs);
    }
    const n = Object.values(nBad).reduce((a, b) => a + b, 0);
    if (n > 0) {
      const why = Object.entries(nBad).map(([r, k]) => `${k} ${r}`).join(', ');
      this.log(`disk cache: dropped ${n} damaged file${n === 1 ? '' : 's'} in ${this.dir} (${why}); they will be recomputed`);
    }
  }

  private record(key: string, kind: EntryKind, bytes: number, foreign: boolean, stamp: number): void {
    this.index.set(key, { kind, bytes, foreign });
    this.usage.add(key, bytes, stamp);
  }

  private forget(key: string): void {
    this.index.delete(key);
    this.usage.remove(key);
  }

  /** Deletes a file that did not verify and says so once; it is treated as absent from now on. */
  private drop(key: string, reason: DecodeFailure | 'unreadable', detail: string, quiet = false): void {
    this.forget(key);
    this.nDropped++;
    const name = entryFileName(key);
    if (!removeQuiet(join(this.dir, name))) this.unusable.add(key);
    if (!quiet) this.logOnce(`drop:${key}`, `disk cache: dropped ${name} (${reason}: ${detail}); it will be recomputed`);
  }

  private writeFailed(e: unknown, what: string): void {
    const code = (e as NodeJS.ErrnoException)?.code ?? '';
    const why = DISABLING[code];
    if (why !== undefined) {
      if (this.disabledReason !== undefined) return;
      this.disabledReason = `${this.dir} ${why} (${code})`;
      this.pending.clear();
      this.log(`disk cache off: ${this.disabledReason}; answers are served without disk caching until the daemon restarts`);
      return;
    }
    this.logOnce(`write:${code}`, `disk cache: ${this.dir} ${what} (${errText(e)}); that entry is not kept on disk`);
  }

  /** Creates and removes a file, so that an unwritable directory is found (and reported) at start. */
  private probeWritable(): void {
    const probe = join(this.dir, tempFileName('probe', randomBytes(4).toString('hex')));
    closeSync(openSync(probe, 'wx', 0o600));
    removeQuiet(probe);
  }

  /** Makes a rename durable. Best effort: some platforms cannot open a directory for fsync. */
  private async fsyncDir(): Promise<void> {
    try {
      const dh = await open(this.dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch {
      // NOTE: Windows refuses to open directories; there the rename alone is what a cache can have.
    }
  }

  private logOnce(tag: string, message: string): void {
    if (this.logged.has(tag)) return;
    this.logged.add(tag);
    this.log(message);
  }
}
