/**
 * "Show Cache Statistics": a webview with the model and device, the cache tiers
 * (entries, bytes, budgets, evictions), hits and misses, and the TTFT of the last
 * requests as a small bar chart, coloured by what the cache did for their images (the badge's
 * classification: server/src/protocol/reuse.ts). Static HTML made
 * here (no page script); it is re-rendered on every `stats` status.
 */
import * as vscode from 'vscode';
import { imageReuseRate, type AskOutcome, type RecentAsk, type StatsResult } from '../../server/src/protocol';
import { badgeTone, outcomeLabel } from './badge';
import { escapeHtml as esc, formatBytes, formatMs } from './format';

export const STATS_VIEW_TYPE = 'vlcache.stats';

export class StatsPanel implements vscode.Disposable {
  private static current?: StatsPanel;
  private readonly panel: vscode.WebviewPanel;
  private readonly disposables: vscode.Disposable[] = [];
  /** The statistics on screen (tests read them). */
  shown?: StatsResult;

  static show(context: vscode.ExtensionContext, stats: StatsResult): StatsPanel {
    StatsPanel.current ??= new StatsPanel(context);
    StatsPanel.current.update(stats);
    StatsPanel.current.panel.reveal(undefined, false);
    return StatsPanel.current;
  }

  /** The panel VS Code restores after a window reload: filled with fresh statistics. */
  static revive(context: vscode.ExtensionContext, panel: vscode.WebviewPanel, stats: Promise<StatsResult>): void {
    StatsPanel.current?.dispose();
    const p = new StatsPanel(context, panel);
    StatsPanel.current = p;
    void stats.then((s) => p.update(s), () => undefined);
  }

  /** Refreshes the open panel, if any. */
  static refresh(stats: StatsResult): void {
    StatsPanel.current?.update(stats);
  }

  private constructor(private readonly context: vscode.ExtensionContext, panel?: vscode.WebviewPanel) {
    this.panel = panel ?? vscode.window.createWebviewPanel(STATS_VIEW_TYPE, 'VLCache: Cache Statistics', vscode.ViewColumn.Active,
      { enableScripts: false, localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'media')] });
    this.panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'icon.png');
    this.disposables.push(this.panel.onDidDispose(() => this.dispose()));
  }

  update(stats: StatsResult): void {
    this.shown = stats;
    this.panel.webview.html = render(stats, this.panel.webview, this.context.extensionUri);
  }

  dispose(): void {
    if (StatsPanel.current === this) StatsPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

function render(s: StatsResult, w: vscode.Webview, extensionUri: vscode.Uri): string {
  const css = w.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview', 'answer.css'));
  const c = s.cache;
  const rate = s.requests.hitRate;
  const im = s.requests.images;
  const imageRate = im && imageReuseRate(im);
  const row = (name: string, t: { nEntries: number; bytes: number; budgetBytes: number; nEvictions: number }) =>
    `<tr><td>${name}</td><td>${t.nEntries}</td><td>${formatBytes(t.bytes)}</td><td>${formatBytes(t.budgetBytes)}</td><td>${t.nEvictions}</td></tr>`;
  const tiers = c
    ? `<table><tr><th>tier</th><th>entries</th><th>size</th><th>budget</th><th>evictions</th></tr>
${row('RAM', c.ram)}${c.disk ? row('disk', c.disk) : '<tr><td>disk</td><td colspan="4">off (no workspace storage or budget 0)</td></tr>'}</table>
<table><tr><th></th><th>hits</th><th>misses</th></tr>
<tr><td>vision encoder</td><td>${c.hits.encoder}</td><td>${c.misses.encoder}</td></tr>
<tr><td>image KV</td><td>${c.hits.kv}</td><td>${c.misses.kv}</td></tr></table>`
    : '<p>The cache opens when the model loads (on the first request).</p>';
  const q = s.requests;
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${w.cspSource};">
<link rel="stylesheet" href="${css}"><title>VLCache: Cache Statistics</title></head><body>
<h2>Model</h2>
<p>${esc(s.model.state)}${s.model.device ? ` on <b>${esc(s.model.device)}</b>` : ''} · <code>${esc(s.model.path)}</code></p>
${s.model.fallbackReasons.length ? `<ul>${s.model.fallbackReasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : ''}
<h2>Cache</h2>
<p>Images reused: <b id="image-rate">${imageRate === undefined ? '–' : `${Math.round(imageRate * 100)}%`}</b>${im ? ` (KV ${im.kv}, exact prefix ${im.prefix}; encoder only ${im.encoder}; cold ${im.cold})` : ''}
· store look-ups hit: <b id="hit-rate">${rate === undefined ? '–' : `${Math.round(rate * 100)}%`}</b>${s.cacheDir ? ` · directory <code>${esc(s.cacheDir)}</code>` : ' · RAM only'}</p>
${tiers}
<h2>Requests</h2>
<p>${q.nAsks} asks, ${q.nPrefetches} prefetches, ${q.nCancelled} cancelled${q.lastTtftMs !== undefined ? ` · last TTFT <b>${formatMs(q.lastTtftMs)}</b>` : ''}${q.lastRecomputeFraction !== undefined ? ` · recomputed ${(q.lastRecomputeFraction * 100).toFixed(1)}% of the prompt` : ''} · queue: ${s.queue.nInteractive} interactive, ${s.queue.nBackground} background${s.queue.running ? ', one running' : ''}</p>
<h2>Time to first token</h2>
${chart(q.recent ?? [])}
</body></html>`;
}

/** The last requests' TTFTs as bars (height ∝ TTFT, log scale when they span > 20×). */
function chart(recent: NonNullable<StatsResult['requests']['recent']>): string {
  if (recent.length === 0) return '<p>No requests yet.</p>';
  const W = 600, H = 120, gap = 2;
  const max = Math.max(...recent.map((r) => r.ttftMs));
  const min = Math.max(0.1, Math.min(...recent.map((r) => r.ttftMs)));
  const log = max / min > 20;
  const scale = (v: number) => (log ? Math.log(1 + v) / Math.log(1 + max) : v / max) * (H - 14);
  const bw = Math.max(2, Math.min(24, (W - gap * recent.length) / recent.length));
  const bars = recent.map((r, i) => {
    const h = Math.max(1, scale(r.ttftMs));
    const o = outcomeOf(r);
    return `<rect class="${badgeTone(o)}" x="${i * (bw + gap)}" y="${H - h}" width="${bw}" height="${h}"><title>${formatMs(r.ttftMs)} · ${outcomeLabel(o)} · ${r.nImages} image(s) · recomputed ${(r.recomputeFraction * 100).toFixed(1)}%</title></rect>`;
  }).join('');
  return `<svg class="chart" width="${W}" height="${H}" role="img" aria-label="TTFT of the last ${recent.length} requests">${bars}
<text x="0" y="10">max ${formatMs(max)}${log ? ' (log scale)' : ''}</text></svg>
<p class="legend"><span class="hit">■</span> images reused · <span class="partial">■</span> partly (encoder output, or some of the images) · <span class="miss">■</span> cold (a text prefix at most) — the last ${recent.length} requests, oldest first</p>`;
}

/** A request's outcome; daemons without `outcome` only said whether anything (even a system prompt) was reused. */
function outcomeOf(r: RecentAsk): AskOutcome {
  return r.outcome ?? (r.cacheHit ? 'partial' : 'cold');
}
