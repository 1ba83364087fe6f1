// Top self-time functions of a V8 .cpuprofile (node --cpu-prof), optionally only the samples taken
// inside a time window. Sample times are V8 TimeTicks in µs, which on Linux is CLOCK_MONOTONIC, the
// clock behind process.hrtime() in any process: the bench records its scenario window with it.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { ROOT } from './procs.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  where: string;
  fn: string;
  samples: number;
  /** Percent of the busy samples in the window (idle excluded). */
  pct: number;
}

export interface ProfileSummary {
  windowSamples: number;
  busySamples: number;
  idlePct: number;
  top: HotSpot[];
  byFile: { file: string; pct: number }[];
  /** Inclusive (self + callees) time of the service's own functions (src/), busy samples only. */
  srcInclusive: HotSpot[];
  /** Inclusive time per package / file: a sample counts once for every file on its stack. */
  fileInclusive: { file: string; pct: number }[];
}

// The bench runs the service compiled (temp/bench-build): frames are mapped back to the .ts sources.
const maps = new Map<string, SourceMap | null>();
function sourceMapOf(path: string): SourceMap | null {
  if (!maps.has(path)) {
    const m = `${path}.map`;
    maps.set(path, existsSync(m) ? new SourceMap(JSON.parse(readFileSync(m, 'utf8'))) : null);
  }
  return maps.get(path)!;
}

function original(url: string, line: number, col: number): { path: string; line: number } {
  const p = url.startsWith('file://') ? new URL(url).pathname : url;
  if (p.includes('/temp/bench-build/')) {
    const e = sourceMapOf(p)?.findEntry(line, col) as { originalSource?: string; originalLine?: number } | undefined;
    if (e?.originalSource) {
      const src = e.originalSource.startsWith('file://') ? new URL(e.originalSource).pathname : resolve(dirname(p), e.originalSource);
      return { path: src, line: e.originalLine ?? line };
    }
    return { path: p.replace('/temp/bench-build/', '/').replace(/\.js$/, '.ts'), line };
  }
  return { path: p, line };
}

function place(url: string, line: number, col = 0): string {
  if (!url) return '(native)';
  let { path: p, line: l } = original(url, line, col);
  if (p.startsWith(ROOT)) p = relative(ROOT, p);
  p = p.replace(/^node_modules\/(\.pnpm\/)?/, 'nm:');
  return `${p}:${l + 1}`;
}

function fileOf(url: string): string {
  if (!url) return '(native / V8)';
  let p = url.startsWith('file://') ? new URL(url).pathname : url;
  if (p.includes('/temp/bench-build/')) p = p.replace('/temp/bench-build/', '/').replace(/\.js$/, '.ts');
  if (p.startsWith(ROOT)) p = relative(ROOT, p);
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p);
  return nm ? `node_modules/${nm[1]}` : p;
}

export function summarizeProfile(file: string, window?: { fromUs: number; toUs: number }, topN = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map<number, number>();
  let t = prof.startTime;
  let inWindow = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    inWindow++;
    counts.set(prof.samples[i], (counts.get(prof.samples[i]) ?? 0) + 1);
  }
  const fnAgg = new Map<string, HotSpot>();
  const fileAgg = new Map<string, number>();
  let idle = 0;
  for (const [id, c] of counts) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    if (f.functionName === '(idle)') {
      idle += c;
      continue;
    }
    const where = place(f.url, f.lineNumber, f.columnNumber);
    const fn = f.functionName || '(anonymous)';
    const key = `${fn}@${where}`;
    const h = fnAgg.get(key) ?? { where, fn, samples: 0, pct: 0 };
    h.samples += c;
    fnAgg.set(key, h);
    const file = f.url ? fileOf(f.url) : f.functionName.startsWith('(') ? f.functionName : '(native / V8)';
    fileAgg.set(file, (fileAgg.get(file) ?? 0) + c);
  }
  const incl = new Map<string, HotSpot>();
  const fileIncl = new Map<string, number>();
  for (const [id, c] of counts) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    const seenFiles = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!f.url) continue;
      const file = fileOf(f.url);
      if (!seenFiles.has(file)) {
        seenFiles.add(file);
        fileIncl.set(file, (fileIncl.get(file) ?? 0) + c);
      }
      if (!file.startsWith('src/')) continue;
      const where = place(f.url, f.lineNumber, f.columnNumber);
      const fn = f.functionName || '(anonymous)';
      const key = `${fn}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const h = incl.get(key) ?? { where, fn, samples: 0, pct: 0 };
      h.samples += c;
      incl.set(key, h);
    }
  }
  const busy = inWindow - idle;
  const pct = (c: number) => Math.round((c / Math.max(1, busy)) * 1000) / 10;
  const top = [...fnAgg.values()].sort((a, b) => b.samples - a.samples).slice(0, topN).map((h) => ({ ...h, pct: pct(h.samples) }));
  const byFile = [...fileAgg.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([file, c]) => ({ file, pct: pct(c) }));
  const srcInclusive = [...incl.values()].sort((a, b) => b.samples - a.samples).slice(0, topN).map((h) => ({ ...h, pct: pct(h.samples) }));
  const fileInclusive = [...fileIncl.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([file, c]) => ({ file, pct: pct(c) }));
  return { windowSamples: inWindow, busySamples: busy, idlePct: Math.round((idle / Math.max(1, inWindow)) * 1000) / 10, top, byFile, srcInclusive, fileInclusive };
}

export function profileMarkdown(s: ProfileSummary): string {
  const lines = [
    `Samples in window: ${s.windowSamples} (idle ${s.idlePct} %); percentages are of the ${s.busySamples} busy samples.`,
    '',
    '| # | function | where | self % |',
    '|---|---|---|---|',
    ...s.top.map((h, i) => `| ${i + 1} | \`${h.fn}\` | ${h.where} | ${h.pct} |`),
    '',
    '| file / package | self % |',
    '|---|---|',
    ...s.byFile.map((f) => `| ${f.file} | ${f.pct} |`),
    '',
    '| file / package (inclusive: on the stack) | % |',
    '|---|---|',
    ...s.fileInclusive.map((f) => `| ${f.file} | ${f.pct} |`),
    '',
    '| service function (inclusive) | where | % |',
    '|---|---|---|',
    ...s.srcInclusive.map((h) => `| \`${h.fn}\` | ${h.where} | ${h.pct} |`),
  ];
  return lines.join('\n');
}

// CLI: tsx loadtest/lib/cpuprofile.ts <file.cpuprofile> [fromUs toUs]
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, from, to] = process.argv.slice(2);
  const s = summarizeProfile(file, from && to ? { fromUs: Number(from), toUs: Number(to) } : undefined);
  console.log(profileMarkdown(s));
}
