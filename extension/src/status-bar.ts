/**
 * The status-bar item: hit rate, cache size, device and last TTFT, updated from the
 * daemon's `vlcache/status` notifications; a tooltip with the details; a click opens
 * the statistics view.
 */
import * as vscode from 'vscode';
import { imageReuseRate, type StatsResult, type StatusParams } from '../../server/src/protocol';
import type { DaemonState } from './daemon';
import { formatBytes, formatMs } from './format';

export class CacheStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('vlcache.status', vscode.StatusBarAlignment.Right, 100);
  private stats?: StatsResult;
  private daemon: DaemonState = 'stopped';
  private loading?: { message: string; percentage: number };
  private lastError?: string;

  constructor() {
    this.item.name = 'VLCache';
    this.item.command = 'vlcache.showCacheStatistics';
    this.render();
    this.item.show();
  }

  /** What the item shows now (VS Code has no API to read it back; the e2e tests use this). */
  get text(): string {
    return this.item.text;
  }

  get tooltipText(): string {
    const t = this.item.tooltip;
    return typeof t === 'string' ? t : t?.value ?? '';
  }

  onDaemonState(s: DaemonState): void {
    this.daemon = s;
    if (s !== 'failed') this.lastError = undefined;
    this.render();
  }

  onStatus(p: StatusParams): void {
    switch (p.kind) {
      case 'loading': this.loading = { message: p.message, percentage: p.percentage }; break;
      case 'ready': this.loading = undefined; this.lastError = undefined; break;
      case 'stats': this.stats = p.stats; break;
      case 'error': this.loading = undefined; this.lastError = p.message; break;
      default: break;
    }
    this.render();
  }

  onStats(s: StatsResult): void {
    this.stats = s;
    this.render();
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    const s = this.stats;
    const parts: string[] = [];
    let icon = '$(database)';
    this.item.backgroundColor = undefined;
    if (this.daemon === 'starting' || this.daemon === 'restarting') {
      icon = '$(sync~spin)';
      parts.push(this.daemon === 'restarting' ? 'restarting' : 'starting');
    } else if (this.daemon === 'failed' || this.lastError) {
      icon = '$(error)';
      parts.push('error');
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    } else if (this.loading) {
      icon = '$(sync~spin)';
      parts.push(`loading ${Math.round(this.loading.percentage)}%`);
    } else if (this.daemon === 'stopped') {
      parts.push('stopped');
    }
    if (s?.cache && !this.loading && this.daemon === 'running' && !this.lastError) {
      // The images' rate, as the answer badge and the chart count them (protocol/reuse.ts); not the store's look-ups.
      const rate = s.requests.images ? imageReuseRate(s.requests.images) : undefined;
      parts.push(rate === undefined ? 'no images yet' : `${Math.round(rate * 100)}% images reused`);
      parts.push(formatBytes(s.cache.ram.bytes + (s.cache.disk?.bytes ?? 0)));
    }
    if (s?.model.state === 'released' && this.daemon === 'running') parts.push('idle');
    else if (s?.model.device && this.daemon === 'running') parts.push(s.model.device);
    if (s?.requests.lastTtftMs !== undefined && this.daemon === 'running') parts.push(`TTFT ${formatMs(s.requests.lastTtftMs)}`);
    this.item.text = `${icon} VLCache${parts.length ? ' ' + parts.join(' · ') : ''}`;
    this.item.tooltip = this.tooltip();
  }

  private tooltip(): vscode.MarkdownString {
    const s = this.stats;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown('**VLCache** — local vision-language model with a persistent image cache\n\n');
    if (this.lastError) md.appendMarkdown(`$(error) ${escape(this.lastError)}\n\n`);
    if (this.loading) md.appendMarkdown(`$(sync~spin) ${escape(this.loading.message)} (${Math.round(this.loading.percentage)}%)\n\n`);
    md.appendMarkdown(`Daemon: ${this.daemon}`);
    if (s) {
      md.appendMarkdown(` · model ${s.model.state}${s.model.device ? ` on **${s.model.device}**` : ''}\n\n`);
      md.appendMarkdown(`Model: ${codeSpan(s.model.path)}\n\n`);
      for (const r of s.model.fallbackReasons) md.appendMarkdown(`- ${escape(r)}\n`);
      if (s.cache) {
        const c = s.cache;
        md.appendMarkdown(`\n| tier | entries | size | budget |\n|---|--:|--:|--:|\n`);
        md.appendMarkdown(`| RAM | ${c.ram.nEntries} | ${formatBytes(c.ram.bytes)} | ${formatBytes(c.ram.budgetBytes)} |\n`);
        if (c.disk) md.appendMarkdown(`| disk | ${c.disk.nEntries} | ${formatBytes(c.disk.bytes)} | ${formatBytes(c.disk.budgetBytes)} |\n`);
        md.appendMarkdown(`\nStore look-ups: hits encoder ${c.hits.encoder}, KV ${c.hits.kv} · misses encoder ${c.misses.encoder}, KV ${c.misses.kv}\n\n`);
      }
      const q = s.requests;
      if (q.images) {
        const im = q.images;
        md.appendMarkdown(`Images asked about: ${im.kv + im.prefix} reused (KV ${im.kv}, exact prefix ${im.prefix}), ${im.encoder} encoder only, ${im.cold} cold\n\n`);
      }
      md.appendMarkdown(`Requests: ${q.nAsks} asks, ${q.nPrefetches} prefetches, ${q.nCancelled} cancelled`);
      if (q.lastTtftMs !== undefined) md.appendMarkdown(` · last TTFT ${formatMs(q.lastTtftMs)}`);
      if (q.lastRecomputeFraction !== undefined) md.appendMarkdown(`, recomputed ${(q.lastRecomputeFraction * 100).toFixed(1)}%`);
      md.appendMarkdown('\n\n');
    } else {
      md.appendMarkdown('\n\n');
    }
    md.appendMarkdown('Click for the cache statistics.');
    return md;
  }
}

function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

/** Text as a Markdown code span: backslash escapes are literal inside one, so only the fence is chosen. */
function codeSpan(s: string): string {
  const fence = '`'.repeat(Math.max(0, ...[...s.matchAll(/`+/g)].map((m) => m[0].length)) + 1);
  return `${fence} ${s} ${fence}`;
}
