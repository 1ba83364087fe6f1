// `npm run bench`: the service, its Socket.IO peer and the machine's limits under the same clients
// and scenarios, every one a separate OS process on this machine, traffic on 127.0.0.1 only.
// Writes loadtest/results/bench-<timestamp>.{json,md} and prints the JSON.
//
//   npm run bench                       full run (~8 min)
//   BENCH_QUICK=1 npm run bench         small counts, for trying the harness (~2 min)
//   npm run bench -- --profile          the service only, scenario 1 under node --cpu-prof; prints hot spots
//
// Scenarios: (1) durable sends/s at saturation into 1,000 dialogs of 10 (closed loop, bounded in
// flight; the best of a short ramp of window sizes is "saturation"), send→ack and send→delivery;
// (2) the same at half that rate, open loop; (3) fan-out deliveries/s into dialogs of 200;
// (4) server memory per idle socket (RSS delta / sockets, 10,000 sockets); (5) list dialogs
// latency for a user in 10,000 dialogs.
import { copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Redis } from 'ioredis';
import { connect as natsConnect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { DialogSpec, RunResult, RunSpec } from './lib/ipc.js';
import { ClientProc, ROOT, cpuByProcess, cpuSeconds, freePort, machineCpu, rssBytes, spawnNode, splitCpu, stop, waitHttp, type Spawned } from './lib/procs.js';
import { pool, sleep, summarize, type Summary } from './lib/stats.js';
import { profileMarkdown, summarizeProfile } from './lib/cpuprofile.js';
import { collectGarbage } from './lib/inspector.js';

const QUICK = process.env.BENCH_QUICK === '1';
const PROFILE = process.argv.includes('--profile');
const PG_BASE = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.NATS_URL ?? '127.0.0.1:4222';

const C = QUICK
  ? {
      clientProcs: 2, usersPerProc: 400, smallSize: 10, bigSize: 200, bigPerProc: 2,
      listDialogs: 2_000, listWarmup: 20, listRequests: 200,
      s1Ramp: [8, 32, 100], s3Ramp: [2, 8, 24], rampWarmupMs: 500, rampMs: 2000, warmupMs: 1000, measureMs: 4000,
      poolSize: 20, contentBytes: 64, connectConcurrency: 50, timeoutMs: 10_000,
    }
  : {
      clientProcs: 4, usersPerProc: 2_500, smallSize: 10, bigSize: 200, bigPerProc: 12,
      listDialogs: 10_000, listWarmup: 50, listRequests: 600,
      s1Ramp: [16, 64, 200, 500], s3Ramp: [3, 12, 36, 100], rampWarmupMs: 1000, rampMs: 4000, warmupMs: 2000, measureMs: 15_000,
      poolSize: 20, contentBytes: 64, connectConcurrency: 50, timeoutMs: 10_000,
    };
if (process.env.BENCH_LIST_DIALOGS) C.listDialogs = Number(process.env.BENCH_LIST_DIALOGS);
const PROFILE_WINDOW = Number(process.argv.find((a) => a.startsWith('--window='))?.slice(9) ?? 64);

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '_').toLowerCase();
const dbName = `mtchat_bench_${stamp}`;
const namespace = `bench_${stamp}`;
const logDir = join(tmpdir(), `mtchat-bench-${stamp}`);
const resultsDir = join(ROOT, 'loadtest', 'results');
mkdirSync(logDir, { recursive: true });
mkdirSync(resultsDir, { recursive: true });

const log = (...a: unknown[]) => console.error(`[bench ${((performance.now() - T0) / 1000).toFixed(1)}s]`, ...a);
const T0 = performance.now();
const LOAD_AT_START = loadavg().map((x) => Math.round(x * 100) / 100);
const spawned: Spawned[] = [];

// ---- layout ---------------------------------------------------------------------------------

interface Layout {
  users: string[][]; // per client process
  small: DialogSpec[][]; // per client process
  big: DialogSpec[][];
}

const user = (i: number) => `bu${i}`;
const LISTER = 'bench-lister';

function memberLayout(): { users: string[][]; small: string[][][]; big: string[][][] } {
  const users: string[][] = [], small: string[][][] = [], big: string[][][] = [];
  for (let p = 0; p < C.clientProcs; p++) {
    const base = p * C.usersPerProc;
    users.push(Array.from({ length: C.usersPerProc }, (_, i) => user(base + i)));
    small.push(Array.from({ length: C.usersPerProc / C.smallSize }, (_, d) => Array.from({ length: C.smallSize }, (_, k) => user(base + d * C.smallSize + k))));
    big.push(Array.from({ length: C.bigPerProc }, (_, d) => Array.from({ length: C.bigSize }, (_, k) => user(base + d * C.bigSize + k))));
  }
  return { users, small, big };
}

async function createDialogs(url: string): Promise<Layout> {
  const m = memberLayout();
  const jobs: { p: number; kind: 'small' | 'big'; i: number; members: string[] }[] = [];
  m.small.forEach((ds, p) => ds.forEach((members, i) => jobs.push({ p, kind: 'small', i, members })));
  m.big.forEach((ds, p) => ds.forEach((members, i) => jobs.push({ p, kind: 'big', i, members })));
  const ids = await pool(jobs, 8, async (j) => {
    const r = await fetch(`${url}/api/v1/management/dialogs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        object_id: `bench-${j.kind}-${j.p}-${j.i}`, object_type: 'bench', title: `Bench ${j.kind} ${j.p}/${j.i}`,
        participants: j.members.map((u) => ({ user_id: u, display_name: `User ${u}` })),
      }),
    });
    if (r.status !== 200) throw new Error(`create dialog: ${r.status} ${await r.text()}`);
    return ((await r.json()) as { data: { id: string } }).data.id;
  });
  const small: DialogSpec[][] = m.small.map(() => []), big: DialogSpec[][] = m.big.map(() => []);
  jobs.forEach((j, k) => (j.kind === 'small' ? small : big)[j.p].push({ id: ids[k], members: j.members }));
  return { users: m.users, small, big };
}

/** Scenario 5's user: LISTER in C.listDialogs dialogs, written straight into the tables in bulk. */
async function seedLister(db: pg.Client): Promise<void> {
  await db.query('BEGIN');
  await db.query(`
    CREATE TEMP TABLE seed ON COMMIT DROP AS
      SELECT gen_random_uuid() AS id, g, now() - make_interval(secs => g) AS created_at FROM generate_series(1, $1::int) g`, [C.listDialogs]);
  await db.query(`
    INSERT INTO dialogs (id, object_id, object_type, title, created_by, created_at, partition, last_seq, user_msg_count)
    SELECT id, 'bench-list-' || g, 'bench', 'List dialog ' || g, $1, created_at, mtchat_partition(id::text), 1, 1 FROM seed`, [LISTER]);
  await db.query(`
    INSERT INTO dialog_participants (user_id, dialog_id, joined_at, display_name, company, read_mark, joined_seq)
    SELECT $1, id, created_at, 'Lister', 'Bench Co', 0, 0 FROM seed
    UNION ALL
    SELECT 'bench-other-' || (g % 100), id, created_at, 'Other ' || (g % 100), 'Other Co', 1, 0 FROM seed`, [LISTER]);
  await db.query(`
    INSERT INTO messages (id, dialog_id, sender_id, content, sent_at, message_type, seq)
    SELECT gen_random_uuid(), id, 'bench-other-' || (g % 100), '<p>hello ' || g || '</p>', created_at + interval '1 second', 'user', 1 FROM seed`);
  await db.query('COMMIT');
  await db.query('ANALYZE dialogs; ANALYZE dialog_participants; ANALYZE messages');
}

// ---- scenarios ------------------------------------------------------------------------------

interface Aggregate {
  name: string;
  mode: 'closed' | 'open';
  window?: number;
  offeredPerSec?: number;
  windowMs: number;
  sentPerSec: number;
  acksPerSec: number;
  deliveriesPerSec: number;
  ack: Summary;
  delivery: Summary;
  errors: Record<string, number>;
  timeouts: number;
  skipped: number;
  closes: Record<string, number>;
  /** Sum over client processes, % of one core. */
  clientCpuPct: number;
  clientCpuPctPerProc: number[];
  /** The server process, % of one core. */
  serverCpuPct: number;
  /** Busy cores during the window: server, clients, PostgreSQL+NATS+Redis, everything else, machine. */
  cores: { server: number; clients: number; infra: number; other: number; machine: number };
  loadAvg1: number;
  /** mtchat only, from its /metrics over the whole run (warm-up included): units of work, mean commands and mean duration of one. */
  batches?: { count: number; meanSize: number; meanMs: number };
}

/** Sum and count of a histogram in a Prometheus text exposition. */
function histogram(text: string, name: string): { sum: number; count: number } {
  const num = (suffix: string) => Number(new RegExp(`^${name}_${suffix}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: num('sum'), count: num('count') };
}

async function batchStats(target: RunningTarget): Promise<{ size: { sum: number; count: number }; ms: { sum: number; count: number } } | null> {
  if (target.name !== 'mtchat') return null;
  const text = await (await fetch(`${target.url}/metrics`)).text();
  const ms = histogram(text, 'mtchat_actor_commit_duration_seconds');
  return { size: histogram(text, 'mtchat_actor_batch_size'), ms: { sum: ms.sum * 1000, count: ms.count } };
}

async function runAll(target: RunningTarget, name: string, specFor: (p: number) => Omit<RunSpec, 'name'>): Promise<Aggregate> {
  await quiesce(target);
  const specs = target.clients.map((_, p) => ({ name, ...specFor(p) }));
  const s0 = specs[0];
  let p0 = cpuByProcess(), p1 = p0, m0 = machineCpu(), m1 = m0, t0 = 0, t1 = 0;
  const sampler = (async () => {
    await sleep(s0.warmupMs);
    t0 = performance.now();
    p0 = cpuByProcess();
    m0 = machineCpu();
    await sleep(s0.durationMs);
    t1 = performance.now();
    p1 = cpuByProcess();
    m1 = machineCpu();
  })();
  const b0 = await batchStats(target);
  const results = (await Promise.all(target.clients.map((c, p) => c.request<'run'>({ cmd: 'run', spec: specs[p] })))).map((r) => r.result);
  await sampler;
  const b1 = await batchStats(target);
  const cores = splitCpu(p0, p1, m0, m1, (t1 - t0) / 1000, target.server.pid, new Set(target.clients.map((c) => c.p.pid)));
  const agg = aggregate(name, specs, results, cores);
  if (b0 && b1) {
    const count = b1.size.count - b0.size.count;
    const r1 = (v: number) => Math.round(v * 10) / 10;
    agg.batches = { count, meanSize: r1((b1.size.sum - b0.size.sum) / Math.max(1, count)), meanMs: r1((b1.ms.sum - b0.ms.sum) / Math.max(1, count)) };
  }
  return agg;
}

function merge(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function aggregate(name: string, specs: RunSpec[], rs: RunResult[], cores: Aggregate['cores']): Aggregate {
  const secs = specs[0].durationMs / 1000;
  const errors: Record<string, number> = {}, closes: Record<string, number> = {};
  const ack: number[] = [], del: number[] = [];
  let sent = 0, acked = 0, deliveries = 0, timeouts = 0, skipped = 0;
  const cpu: number[] = [];
  for (const r of rs) {
    sent += r.sent;
    acked += r.acked;
    deliveries += r.deliveries;
    timeouts += r.timeouts;
    skipped += r.skipped;
    merge(errors, r.errors);
    merge(closes, r.closes);
    for (const v of r.ackLat) ack.push(v);
    for (const v of r.delLat) del.push(v);
    cpu.push(Math.round(((r.cpuUs.user + r.cpuUs.system) / 1e6 / secs) * 1000) / 10);
  }
  return {
    name, mode: specs[0].mode, window: specs[0].window === undefined ? undefined : specs[0].window * specs.length,
    offeredPerSec: specs[0].rate === undefined ? undefined : Math.round(specs.reduce((a, s) => a + (s.rate ?? 0), 0)),
    windowMs: specs[0].durationMs,
    sentPerSec: Math.round(sent / secs), acksPerSec: Math.round(acked / secs), deliveriesPerSec: Math.round(deliveries / secs),
    ack: summarize(ack), delivery: summarize(del), errors, timeouts, skipped, closes,
    clientCpuPct: Math.round(cpu.reduce((a, b) => a + b, 0) * 10) / 10, clientCpuPctPerProc: cpu,
    serverCpuPct: Math.round(cores.server * 1000) / 10,
    cores, loadAvg1: Math.round(loadavg()[0] * 100) / 100,
  };
}

const brief = (a: Aggregate) =>
  `${a.name}: acks ${a.acksPerSec}/s, deliveries ${a.deliveriesPerSec}/s, ack p50/p99 ${a.ack.p50}/${a.ack.p99} ms, ` +
  `delivery p50/p99 ${a.delivery.p50}/${a.delivery.p99} ms, server ${a.serverCpuPct}%, clients ${a.clientCpuPct}%, ` +
  `busy cores ${JSON.stringify(a.cores)}, ` +
  `errors ${JSON.stringify(a.errors)}, timeouts ${a.timeouts}, closes ${JSON.stringify(a.closes)}` +
  (a.batches ? `, units of work ${a.batches.count} (mean ${a.batches.meanSize} commands, ${a.batches.meanMs} ms)` : '');

// ---- targets --------------------------------------------------------------------------------

type TargetName = 'mtchat' | 'socketio' | 'uws';

interface RunningTarget {
  name: TargetName;
  url: string;
  server: Spawned;
  clients: ClientProc[];
}

interface ListResult {
  requests: number;
  items: number;
  latency: Summary;
}

interface TargetResult {
  name: TargetName;
  startMs: number;
  list?: ListResult;
  connect: { sockets: number; connected: number; failed: number; errors: Record<string, number>; ms: number; clientCpuPct: number; serverCpuPct: number };
  memory: {
    /** RSS before any socket, after a forced full GC. */
    rssBeforeBytes: number;
    /** RSS 3 s after the last socket opened (the issue's figure: RSS delta / sockets). */
    rssAfterBytes: number;
    bytesPerSocket: number;
    /** The same after a forced full GC (garbage of the connect burst collected). */
    rssAfterGcBytes: number;
    bytesPerSocketAfterGc: number;
    /** V8 heap used per socket (after GC, both ends). */
    heapBytesPerSocket: number;
  };
  s1Ramp: Aggregate[];
  s1: Aggregate;
  s2: Aggregate;
  s3Ramp: Aggregate[];
  s3: Aggregate;
  /** CLOCK_MONOTONIC µs windows (profiling): list requests, socket connects, scenario 1. */
  windowsUs?: Record<'list' | 'connect' | 's1', { fromUs: number; toUs: number }>;
}

/**
 * The service runs as it does in production: compiled JavaScript (real line numbers in profiles,
 * no loader hooks). Falls back to tsx on the sources if the build fails.
 */
function buildService(): string[] {
  const out = join(ROOT, 'temp', 'bench-build');
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', out], {
    cwd: ROOT, encoding: 'utf8',
  });
  if (r.status !== 0) {
    log(`build failed, running the service from source with tsx:\n${(r.stdout + r.stderr).slice(0, 2000)}`);
    return ['--import', 'tsx', 'src/main.ts'];
  }
  copyFileSync(join(ROOT, 'package.json'), join(out, 'package.json'));
  return [join(out, 'src', 'main.js')];
}
let serviceArgs: string[] = [];

interface Server {
  server: Spawned;
  url: string;
  /** Inspector port (forced GC and heap usage for the memory figure). */
  inspect: number;
}

async function startServer(name: TargetName, layoutFile: string): Promise<Server> {
  const port = await freePort();
  const inspect = await freePort();
  const insp = `--inspect=127.0.0.1:${inspect}`;
  const url = `http://127.0.0.1:${port}`;
  let server: Spawned;
  if (name === 'mtchat') {
    const prof = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${logDir}`] : [];
    server = spawnNode('mtchat', [insp, ...prof, ...serviceArgs], {
      PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', MTCHAT_ALLOW_INSECURE: 'true', LOG_LEVEL: 'warn',
      DATABASE_URL: `${PG_BASE}/${dbName}`, MTCHAT_NAMESPACE: namespace, DATABASE_MAX_CONNECTIONS: String(C.poolSize),
      REDIS_URL, NATS_URL, MTCHAT_DEV_S3: 'false',
      // The 5-minute auto-archive sweep would land inside a measurement window.
      ARCHIVE_CRON: '0 0 0 1 1 *',
    }, logDir);
    spawned.push(server);
    await waitHttp(`${url}/health/ready`, 90_000, server);
  } else if (name === 'socketio') {
    server = spawnNode('socketio-peer', [insp, '--import', 'tsx', 'loadtest/peers/socketio-peer.ts'], {
      PORT: String(port), DATABASE_URL: `${PG_BASE}/${dbName}`, REDIS_URL, POOL_SIZE: String(C.poolSize), KEY_PREFIX: namespace,
      NODE_ENV: 'production',
    }, logDir);
    spawned.push(server);
    await waitHttp(`${url}/health`, 60_000, server);
  } else {
    server = spawnNode('uws-echo', [insp, '--import', 'tsx', 'loadtest/limits/uws-echo.ts'], { PORT: String(port), LAYOUT_FILE: layoutFile, NODE_ENV: 'production' }, logDir);
    spawned.push(server);
    await waitHttp(`${url}/health`, 60_000, server);
  }
  return { server, url, inspect };
}

async function listBench(url: string): Promise<ListResult> {
  const u = `${url}/api/v1/dialogs?user_id=${LISTER}`;
  let items = 0;
  const once = async () => {
    const t = performance.now();
    const r = await fetch(u);
    const body = (await r.json()) as { data?: unknown[] };
    const ms = performance.now() - t;
    if (r.status !== 200 || !Array.isArray(body.data)) throw new Error(`list dialogs: ${r.status} ${JSON.stringify(body).slice(0, 200)}`);
    items = body.data.length;
    return ms;
  };
  for (let i = 0; i < C.listWarmup; i++) await once();
  const lat: number[] = [];
  for (let i = 0; i < C.listRequests; i++) lat.push(await once());
  return { requests: C.listRequests, items, latency: summarize(lat) };
}

// The limit for scenario 5: everything a page of the list shows (the caller's unread count and
// flags, participants, last message), for the newest 50 of the caller's dialogs, in one statement
// over pg: the database's share of the work, with no HTTP and no application code. The page is read
// in the membership index's order (dialog_created_at copied onto the membership), as the service does.
const LIST_LIMIT_SQL = `
  WITH page AS (
    SELECT p.dialog_id AS id, p.dialog_created_at AS created_at FROM dialog_participants p JOIN dialogs d ON d.id = p.dialog_id
    WHERE p.user_id = $1 ORDER BY p.dialog_created_at DESC, p.dialog_id DESC LIMIT $2)
  SELECT d.id, d.object_id, d.object_type, d.title, d.object_url, d.created_by, d.created_at, d.meta,
    (me.unread_count + (d.user_msg_count - me.read_mark))::int AS unread_count, me.is_archived, me.is_pinned, me.notifications_enabled,
    pc.cnt AS participants_count, pc.list AS participants,
    lm.id AS lm_id, lm.content AS lm_content, lm.sender_id AS lm_sender_id, lm.sent_at AS lm_sent_at, lm.message_type AS lm_type
  FROM page JOIN dialogs d ON d.id = page.id
  JOIN dialog_participants me ON me.dialog_id = d.id AND me.user_id = $1
  LEFT JOIN LATERAL (
    SELECT count(*)::int AS cnt, json_agg(json_build_object('user_id', p.user_id, 'display_name', p.display_name, 'company', p.company)
                                         ORDER BY p.joined_at, p.user_id) AS list
    FROM dialog_participants p WHERE p.dialog_id = d.id) pc ON true
  LEFT JOIN LATERAL (
    SELECT m.id, m.content, m.sender_id, m.sent_at, m.message_type FROM messages m
    WHERE m.dialog_id = d.id ORDER BY m.id DESC LIMIT 1) lm ON true
  ORDER BY d.created_at DESC, d.id DESC`;

async function listSqlLimit(db: pg.Client): Promise<ListResult> {
  let items = 0;
  const once = async () => {
    const t = performance.now();
    const r = await db.query(LIST_LIMIT_SQL, [LISTER, 50]);
    items = r.rows.length;
    return performance.now() - t;
  };
  for (let i = 0; i < C.listWarmup; i++) await once();
  const lat: number[] = [];
  for (let i = 0; i < C.listRequests; i++) lat.push(await once());
  return { requests: C.listRequests, items, latency: summarize(lat) };
}

/** A step past saturation: sends timed out or were refused. */
const overloaded = (a: Aggregate) => a.timeouts > 0 || Object.keys(a.errors).length > 0;

/**
 * A ramp goes on while its last step was clean and raised the figure by at least 10 % over the
 * best before it.
 */
function gained(steps: Aggregate[], f: (a: Aggregate) => number): boolean {
  const last = steps[steps.length - 1];
  if (overloaded(last)) return false;
  if (steps.length < 2) return true;
  const before = Math.max(...steps.slice(0, -1).map(f));
  return f(last) >= before * 1.1;
}

/** The saturation point: the best clean step (the first step if none was clean). */
function bestStep(steps: Aggregate[], f: (a: Aggregate) => number): Aggregate {
  const clean = steps.filter((a) => !overloaded(a));
  return (clean.length ? clean : steps.slice(0, 1)).reduce((b, a) => (f(a) > f(b) ? a : b));
}

/** Waits until the server has worked off what earlier runs left queued (its CPU falls below 15 %). */
async function quiesce(target: RunningTarget): Promise<void> {
  const t = performance.now();
  for (;;) {
    const c0 = cpuSeconds(target.server.pid);
    await sleep(500);
    if ((cpuSeconds(target.server.pid) - c0) / 0.5 < 0.15 || performance.now() - t > 60_000) break;
  }
  const ms = performance.now() - t;
  if (ms > 1500) log(`${target.name}: waited ${Math.round(ms)} ms for the server to go idle`);
}

async function runTarget(name: TargetName, layout: Layout, layoutFile: string, started?: Server): Promise<TargetResult> {
  const t0 = performance.now();
  const { server, url, inspect } = started ?? (await startServer(name, layoutFile));
  const startMs = Math.round(performance.now() - t0);
  log(`${name}: up at ${url} (pid ${server.pid})`);
  const out: Partial<TargetResult> = { name, startMs };

  const hr = () => Number(process.hrtime.bigint() / 1000n);
  const windows = { list: { fromUs: 0, toUs: 0 }, connect: { fromUs: 0, toUs: 0 }, s1: { fromUs: 0, toUs: 0 } };
  out.windowsUs = windows;
  if (name !== 'uws') {
    windows.list.fromUs = hr();
    out.list = await listBench(url);
    windows.list.toUs = hr();
    log(`${name}: list dialogs p50/p99 ${out.list.latency.p50}/${out.list.latency.p99} ms (${out.list.items} items)`);
  }

  await sleep(1000);
  const heapBefore = await collectGarbage(inspect);
  await sleep(1000);
  const rssBefore = rssBytes(server.pid);
  const clients = layout.users.map((_, p) => {
    const s = spawnNode(`${name}-client-${p}`, ['--import', 'tsx', 'loadtest/clients/client.ts'], { BENCH_DRIVER: name, BENCH_URL: url }, logDir, { ipc: true });
    spawned.push(s);
    return new ClientProc(s);
  });
  const target: RunningTarget = { name, url, server, clients };
  try {
    const tc = performance.now();
    windows.connect.fromUs = hr();
    const srvCpu0 = cpuSeconds(server.pid);
    const conns = await Promise.all(clients.map((c, p) =>
      c.request<'connect'>({ cmd: 'connect', users: layout.users[p], concurrency: C.connectConcurrency, timeoutMs: 60_000 })));
    const connectMs = performance.now() - tc;
    windows.connect.toUs = hr();
    const srvCpu = cpuSeconds(server.pid) - srvCpu0;
    const errors: Record<string, number> = {};
    for (const c of conns) merge(errors, c.result.errors);
    const connected = conns.reduce((a, c) => a + c.result.connected, 0);
    out.connect = {
      sockets: layout.users.flat().length, connected, failed: conns.reduce((a, c) => a + c.result.failed, 0), errors, ms: Math.round(connectMs),
      clientCpuPct: Math.round((conns.reduce((a, c) => a + c.result.cpuUs, 0) / 1e6 / (connectMs / 1000)) * 1000) / 10,
      serverCpuPct: Math.round((srvCpu / (connectMs / 1000)) * 1000) / 10,
    };
    log(`${name}: ${connected} sockets connected in ${Math.round(connectMs)} ms`, connected < out.connect.sockets ? errors : '');
    await sleep(3000);
    const rssAfter = rssBytes(server.pid);
    const heapAfter = await collectGarbage(inspect);
    await sleep(1000);
    const rssAfterGc = rssBytes(server.pid);
    const per = (d: number) => Math.round(d / Math.max(1, connected));
    out.memory = {
      rssBeforeBytes: rssBefore, rssAfterBytes: rssAfter, bytesPerSocket: per(rssAfter - rssBefore),
      rssAfterGcBytes: rssAfterGc, bytesPerSocketAfterGc: per(rssAfterGc - rssBefore), heapBytesPerSocket: per(heapAfter.usedSize - heapBefore.usedSize),
    };
    log(`${name}: RSS ${Math.round(rssBefore / 2 ** 20)} → ${Math.round(rssAfter / 2 ** 20)} MiB (${Math.round(rssAfterGc / 2 ** 20)} MiB after GC): ` +
      `${out.memory.bytesPerSocket} B/socket (${out.memory.bytesPerSocketAfterGc} after GC; heap ${out.memory.heapBytesPerSocket})`);

    const closed = (window: number, warmupMs: number, durationMs: number, dialogs: DialogSpec[][]) => (p: number): Omit<RunSpec, 'name'> => ({
      dialogs: dialogs[p], mode: 'closed', window, warmupMs, durationMs, timeoutMs: C.timeoutMs, contentBytes: C.contentBytes,
    });

    // (1) saturation: the best of a short ramp of in-flight windows, then a long run at it.
    let best = PROFILE_WINDOW * C.clientProcs;
    out.s1Ramp = [];
    if (!PROFILE) {
      for (const w of C.s1Ramp) {
        const a = await runAll(target, `s1-ramp-${w * C.clientProcs}`, closed(w, C.rampWarmupMs, C.rampMs, layout.small));
        log(`${name}: ${brief(a)}`);
        out.s1Ramp.push(a);
        if (!gained(out.s1Ramp, (x) => x.acksPerSec)) break;
      }
      best = bestStep(out.s1Ramp, (a) => a.acksPerSec).window!;
    }
    windows.s1.fromUs = hr() + C.warmupMs * 1000;
    out.s1 = await runAll(target, 's1-saturation', closed(best / C.clientProcs, C.warmupMs, PROFILE ? 20_000 : C.measureMs, layout.small));
    windows.s1.toUs = hr();
    log(`${name}: ${brief(out.s1)}`);
    if (PROFILE) return out as TargetResult;

    // (2) half of this target's own saturation rate, open loop (latency from the scheduled time).
    // (If the long run fell apart, the ramp's saturation figure stands in.)
    const half = Math.max(out.s1.acksPerSec, out.s1Ramp.length ? bestStep(out.s1Ramp, (a) => a.acksPerSec).acksPerSec : 0) / 2;
    out.s2 = await runAll(target, 's2-half-rate', (p) => ({
      dialogs: layout.small[p], mode: 'open', rate: half / C.clientProcs, warmupMs: C.warmupMs, durationMs: C.measureMs,
      timeoutMs: C.timeoutMs, contentBytes: C.contentBytes,
    }));
    log(`${name}: ${brief(out.s2)}`);

    // (3) fan-out into dialogs of 200.
    out.s3Ramp = [];
    for (const w of C.s3Ramp) {
      const a = await runAll(target, `s3-ramp-${w * C.clientProcs}`, closed(w, C.rampWarmupMs, C.rampMs, layout.big));
      log(`${name}: ${brief(a)}`);
      out.s3Ramp.push(a);
      if (!gained(out.s3Ramp, (x) => x.deliveriesPerSec)) break;
    }
    const bestFan = bestStep(out.s3Ramp, (a) => a.deliveriesPerSec).window!;
    out.s3 = await runAll(target, 's3-fanout', closed(bestFan / C.clientProcs, C.warmupMs, C.measureMs, layout.big));
    log(`${name}: ${brief(out.s3)}`);
    return out as TargetResult;
  } finally {
    await Promise.all(clients.map((c) => c.request({ cmd: 'exit' }).catch(() => undefined)));
    await Promise.all(clients.map((c) => stop(c.p, 5000)));
    await stop(server);
    log(`${name}: stopped`);
  }
}

// ---- limits: PostgreSQL ---------------------------------------------------------------------

interface PgLimit {
  mode: string;
  batch: number;
  poolSize: number;
  messagesPerSec: number;
  rowsPerSec: number;
  batchMs: Summary;
  cpuUs: number;
  ms: number;
}

async function pgLimit(mode: 'messages' | 'full', layoutFile: string): Promise<PgLimit> {
  const p = spawnNode(`pg-insert-${mode}`, ['--import', 'tsx', 'loadtest/limits/pg-insert.ts'], {
    DATABASE_URL: `${PG_BASE}/${dbName}`, POOL_SIZE: String(C.poolSize), BATCH: '500', DURATION_MS: QUICK ? '3000' : '8000',
    MODE: mode, LAYOUT_FILE: layoutFile, CONTENT_BYTES: String(C.contentBytes),
  }, logDir, { stdout: 'pipe' });
  spawned.push(p);
  let text = '';
  p.child.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  const code = await p.exited;
  if (code !== 0) throw new Error(`pg-insert ${mode} failed (${code}); see ${p.logFile}`);
  return JSON.parse(text.trim().split('\n').pop()!) as PgLimit;
}

// ---- report ---------------------------------------------------------------------------------

type Dir = 'higher' | 'lower';
interface Row {
  id: string;
  figure: string;
  unit: string;
  better: Dir;
  mtchat: number | null;
  peer: number | null;
  limit: number | null;
  limitName: string;
  goal?: { text: string; pass: boolean };
}

const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100);

function buildRows(r: Record<TargetName, TargetResult>, pgMsg: PgLimit, pgFull: PgLimit, listSql: ListResult): Row[] {
  const m = r.mtchat, s = r.socketio, u = r.uws;
  const rows: Row[] = [
    { id: '1a', figure: 'S1 sustained durable sends/s at saturation (acks/s)', unit: '/s', better: 'higher', mtchat: m.s1.acksPerSec, peer: s.s1.acksPerSec, limit: u.s1.acksPerSec, limitName: 'uWS publish, no persistence' },
    { id: '1b', figure: 'S1 same, against PostgreSQL batched insert of the send rows (message + event + command log)', unit: '/s', better: 'higher', mtchat: m.s1.acksPerSec, peer: s.s1.acksPerSec, limit: pgFull.messagesPerSec, limitName: 'PG multi-row INSERT, 3 rows/message' },
    { id: '1c', figure: 'S1 same, against PostgreSQL batched insert of message rows only', unit: '/s', better: 'higher', mtchat: m.s1.acksPerSec, peer: s.s1.acksPerSec, limit: pgMsg.messagesPerSec, limitName: 'PG multi-row INSERT, messages' },
    { id: '1d', figure: 'S1 send→ack p50 at saturation', unit: 'ms', better: 'lower', mtchat: m.s1.ack.p50, peer: s.s1.ack.p50, limit: u.s1.ack.p50, limitName: 'uWS' },
    { id: '1e', figure: 'S1 send→ack p99 at saturation', unit: 'ms', better: 'lower', mtchat: m.s1.ack.p99, peer: s.s1.ack.p99, limit: u.s1.ack.p99, limitName: 'uWS' },
    { id: '1f', figure: 'S1 send→delivery p50 at saturation', unit: 'ms', better: 'lower', mtchat: m.s1.delivery.p50, peer: s.s1.delivery.p50, limit: u.s1.delivery.p50, limitName: 'uWS' },
    { id: '1g', figure: 'S1 send→delivery p99 at saturation', unit: 'ms', better: 'lower', mtchat: m.s1.delivery.p99, peer: s.s1.delivery.p99, limit: u.s1.delivery.p99, limitName: 'uWS' },
    { id: '2a', figure: 'S2 offered rate (half of own saturation, open loop)', unit: '/s', better: 'higher', mtchat: m.s2.offeredPerSec ?? null, peer: s.s2.offeredPerSec ?? null, limit: u.s2.offeredPerSec ?? null, limitName: 'uWS' },
    { id: '2b', figure: 'S2 acks/s', unit: '/s', better: 'higher', mtchat: m.s2.acksPerSec, peer: s.s2.acksPerSec, limit: u.s2.acksPerSec, limitName: 'uWS' },
    { id: '2c', figure: 'S2 send→ack p50', unit: 'ms', better: 'lower', mtchat: m.s2.ack.p50, peer: s.s2.ack.p50, limit: u.s2.ack.p50, limitName: 'uWS' },
    { id: '2d', figure: 'S2 send→ack p99', unit: 'ms', better: 'lower', mtchat: m.s2.ack.p99, peer: s.s2.ack.p99, limit: u.s2.ack.p99, limitName: 'uWS' },
    { id: '2e', figure: 'S2 send→delivery p50', unit: 'ms', better: 'lower', mtchat: m.s2.delivery.p50, peer: s.s2.delivery.p50, limit: u.s2.delivery.p50, limitName: 'uWS' },
    { id: '2f', figure: 'S2 send→delivery p99', unit: 'ms', better: 'lower', mtchat: m.s2.delivery.p99, peer: s.s2.delivery.p99, limit: u.s2.delivery.p99, limitName: 'uWS' },
    { id: '3a', figure: `S3 fan-out deliveries/s (dialogs of ${C.bigSize})`, unit: '/s', better: 'higher', mtchat: m.s3.deliveriesPerSec, peer: s.s3.deliveriesPerSec, limit: u.s3.deliveriesPerSec, limitName: 'uWS publish' },
    { id: '3b', figure: 'S3 sends/s (acks/s) during fan-out', unit: '/s', better: 'higher', mtchat: m.s3.acksPerSec, peer: s.s3.acksPerSec, limit: u.s3.acksPerSec, limitName: 'uWS publish' },
    { id: '3c', figure: 'S3 send→delivery p99 during fan-out', unit: 'ms', better: 'lower', mtchat: m.s3.delivery.p99, peer: s.s3.delivery.p99, limit: u.s3.delivery.p99, limitName: 'uWS publish' },
    { id: '4a', figure: `S4 server memory per idle socket (${m.connect.connected} sockets, RSS delta)`, unit: 'B', better: 'lower', mtchat: m.memory.bytesPerSocket, peer: s.memory.bytesPerSocket, limit: u.memory.bytesPerSocket, limitName: 'bare uWS' },
    { id: '4b', figure: 'S4 same, after a forced full GC (garbage of the connect burst collected)', unit: 'B', better: 'lower', mtchat: m.memory.bytesPerSocketAfterGc, peer: s.memory.bytesPerSocketAfterGc, limit: u.memory.bytesPerSocketAfterGc, limitName: 'bare uWS' },
    { id: '4c', figure: 'S4 V8 heap used per idle socket (after GC)', unit: 'B', better: 'lower', mtchat: m.memory.heapBytesPerSocket, peer: s.memory.heapBytesPerSocket, limit: u.memory.heapBytesPerSocket, limitName: 'bare uWS' },
    { id: '4d', figure: 'S4 time to open all sockets', unit: 'ms', better: 'lower', mtchat: m.connect.ms, peer: s.connect.ms, limit: u.connect.ms, limitName: 'bare uWS' },
    { id: '5a', figure: `S5 list dialogs p50 (user in ${C.listDialogs} dialogs, page of 50)`, unit: 'ms', better: 'lower', mtchat: m.list!.latency.p50, peer: s.list!.latency.p50, limit: listSql.latency.p50, limitName: 'one SQL statement for the page over pg' },
    { id: '5b', figure: 'S5 list dialogs p99', unit: 'ms', better: 'lower', mtchat: m.list!.latency.p99, peer: s.list!.latency.p99, limit: listSql.latency.p99, limitName: 'one SQL statement for the page over pg' },
  ];
  const goal = (id: string, text: string, pass: boolean) => {
    const row = rows.find((x) => x.id === id)!;
    row.goal = { text, pass };
  };
  goal('1a', 'sends ≥ 3× peer', m.s1.acksPerSec >= 3 * s.s1.acksPerSec);
  goal('2d', 'p99 send→ack < 50 ms', m.s2.ack.p99 !== null && m.s2.ack.p99 < 50);
  goal('2f', 'p99 send→delivery < 100 ms', m.s2.delivery.p99 !== null && m.s2.delivery.p99 < 100);
  goal('3a', 'fan-out ≥ 50 % of raw uWS', m.s3.deliveriesPerSec >= 0.5 * u.s3.deliveriesPerSec);
  goal('4a', '< 8 KiB per idle socket', m.memory.bytesPerSocket < 8192);
  goal('5b', 'p99 < 20 ms at 10,000 dialogs', m.list!.latency.p99 !== null && m.list!.latency.p99 < 20);
  return rows;
}

const fmt = (v: number | null) => (v === null ? '—' : Number.isInteger(v) ? v.toLocaleString('en-US') : String(v));
const fmtRatio = (v: number | null) => (v === null ? '—' : `${v}×`);

function markdown(meta: Record<string, unknown>, rows: Row[], r: Record<TargetName, TargetResult>, pgMsg: PgLimit, pgFull: PgLimit): string {
  const L: string[] = [];
  L.push(`# mtchat benchmark ${meta.timestamp}`, '');
  L.push(`Machine: ${meta.cores} cores (\`os.availableParallelism()\`), ${meta.cpuModel}, ${meta.memGiB} GiB RAM, Node ${meta.node}. ` +
    `Everything on this one machine: server, PostgreSQL, NATS, Redis and ${C.clientProcs} client processes share the ${meta.cores} cores. ` +
    `Run took ${meta.totalSec} s. Load average (1/5/15 min) at start ${(meta.loadAvgAtStart as number[]).join(' / ')}, at end ${(meta.loadAvgAtEnd as number[]).join(' / ')}.`, '');
  const busyOther = (['mtchat', 'socketio', 'uws'] as TargetName[]).flatMap((t) => [r[t].s1, r[t].s2, r[t].s3]).filter((a) => a.cores.other > 0.2);
  if (busyOther.length > 0) {
    L.push(`**Caution:** other work was using the machine during ${busyOther.length} of the measured windows ` +
      `(up to ${Math.max(...busyOther.map((a) => a.cores.other))} cores outside the bench's processes and PostgreSQL/NATS/Redis); ` +
      `those figures are low by that much. See the CPU table below.`, '');
  }
  L.push(`Layout: ${r.mtchat.connect.sockets} users, each with one msgpack socket (Socket.IO: its websocket transport), ` +
    `${C.clientProcs * C.usersPerProc / C.smallSize} dialogs of ${C.smallSize} and ${C.clientProcs * C.bigPerProc} dialogs of ${C.bigSize}; ` +
    `a send completes when its ack and its message.new at the next participant's socket have both arrived. ` +
    `Ratios are mtchat ÷ other (for ms and bytes lower is better).`, '');
  L.push('| # | figure | mtchat | Socket.IO peer | mtchat ÷ peer | limit | limit value | mtchat ÷ limit | goal | result |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const x of rows) {
    const unit = x.unit === '/s' ? '/s' : ` ${x.unit}`;
    L.push(`| ${x.id} | ${x.figure} | ${fmt(x.mtchat)}${unit} | ${fmt(x.peer)}${unit} | ${fmtRatio(ratio(x.mtchat, x.peer))} | ${x.limitName} | ${fmt(x.limit)}${unit} | ` +
      `${fmtRatio(ratio(x.mtchat, x.limit))} | ${x.goal?.text ?? ''} | ${x.goal ? (x.goal.pass ? '**pass**' : '**FAIL**') : ''} |`);
  }
  L.push('', '## CPU during the measured windows', '');
  L.push(`Server and client CPU are % of one core (clients: as each process reports it with \`process.cpuUsage()\`). ` +
    `Busy cores (out of ${meta.cores}) from /proc: the server, the clients, PostgreSQL + NATS + Redis (all their processes, ` +
    `whoever uses them), and everything else on the machine (other test runs, the OS); load average at the window's end.`, '');
  L.push('| target | scenario | in flight / offered | server CPU % | client CPU % (sum; per process) | busy cores: server / clients / PG+NATS+Redis / other / machine | load avg | errors | timeouts | server closes |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const t of ['mtchat', 'socketio', 'uws'] as TargetName[]) {
    for (const a of [r[t].s1, r[t].s2, r[t].s3]) {
      const c = a.cores;
      L.push(`| ${t} | ${a.name} | ${a.window ?? `${a.offeredPerSec}/s`} | ${a.serverCpuPct} | ${a.clientCpuPct} (${a.clientCpuPctPerProc.join(', ')}) | ` +
        `${c.server} / ${c.clients} / ${c.infra} / ${c.other} / ${c.machine} | ${a.loadAvg1} | ${JSON.stringify(a.errors)} | ${a.timeouts} | ${JSON.stringify(a.closes)} |`);
    }
    L.push(`| ${t} | connect ${r[t].connect.connected}/${r[t].connect.sockets} sockets | ${C.connectConcurrency * C.clientProcs} | ${r[t].connect.serverCpuPct} | ${r[t].connect.clientCpuPct} | — | — | ${JSON.stringify(r[t].connect.errors)} | — | — |`);
  }
  L.push('', '## Saturation ramps (closed loop, total sends in flight → acks/s)', '');
  for (const t of ['mtchat', 'socketio', 'uws'] as TargetName[]) {
    L.push(`- ${t}: S1 ${r[t].s1Ramp.map((a) => `${a.window} → ${a.acksPerSec}/s (p99 ack ${a.ack.p99} ms)`).join('; ')}; ` +
      `S3 ${r[t].s3Ramp.map((a) => `${a.window} → ${a.deliveriesPerSec} deliveries/s`).join('; ')}`);
  }
  L.push('', `PostgreSQL limits: ${pgMsg.batch}-row multi-row INSERTs over ${pgMsg.poolSize} connections: ` +
    `messages only ${fmt(pgMsg.messagesPerSec)} rows/s; message + event + command-log rows ${fmt(pgFull.messagesPerSec)} messages/s (${fmt(pgFull.rowsPerSec)} rows/s).`);
  return L.join('\n') + '\n';
}

// ---- cleanup --------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  for (const p of spawned) await stop(p, 5000).catch(() => undefined);
  if (process.env.BENCH_KEEP_DB === '1') {
    log(`BENCH_KEEP_DB=1: kept database ${dbName} (drop it yourself)`);
    return;
  }
  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
  await admin.end();
  try {
    const nc = await natsConnect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for await (const info of jsm.streams.list()) if (info.config.name.includes(namespace)) await jsm.streams.delete(info.config.name);
    await nc.close();
  } catch (e) {
    log('NATS cleanup failed:', (e as Error).message);
  }
  const redis = new Redis(REDIS_URL);
  let n = 0;
  for await (const keys of redis.scanStream({ match: `${namespace}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) n += await redis.del(...keys);
  }
  await redis.quit();
  log(`cleaned up: database ${dbName}, NATS streams and ${n} Redis keys of ${namespace}`);
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`${QUICK ? 'QUICK ' : ''}${PROFILE ? 'PROFILE ' : ''}run ${stamp}: database ${dbName}, namespace ${namespace}, logs in ${logDir}`);
  serviceArgs = buildService();
  log(`service: node ${serviceArgs.join(' ')}`);
  const mt = await startServer('mtchat', '');
  const layout = await createDialogs(mt.url);
  const layoutFile = join(logDir, 'layout.json');
  writeFileSync(layoutFile, JSON.stringify({ dialogs: [...layout.small.flat(), ...layout.big.flat()] }));
  log(`created ${layout.small.flat().length} + ${layout.big.flat().length} dialogs over the Management API`);
  const db = new pg.Client({ connectionString: `${PG_BASE}/${dbName}` });
  await db.connect();
  await seedLister(db);
  log(`seeded ${C.listDialogs} dialogs for ${LISTER}`);

  const results: Partial<Record<TargetName, TargetResult>> = {};
  results.mtchat = await runTarget('mtchat', layout, layoutFile, mt);
  if (PROFILE) {
    await db.end();
    // The main thread's profile is the big one (tsx's loader thread writes a small one too).
    const files = readdirSync(logDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(logDir, f));
    if (files.length === 0) throw new Error('no .cpuprofile written');
    const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    const w = results.mtchat.windowsUs!;
    const l = results.mtchat.list!;
    const c = results.mtchat.connect;
    const md = `# mtchat CPU profile (${stamp})\n\nProfile: ${file} (node --cpu-prof on the server process; self time per function, ` +
      `then inclusive time per file and per service function; async continuations start a new stack, so inclusive figures of the ` +
      `service's own functions only cover their synchronous part)\n\n` +
      `## Scenario 1 at ${PROFILE_WINDOW * C.clientProcs} sends in flight\n\n${brief(results.mtchat.s1)}\n\n${profileMarkdown(summarizeProfile(file, w.s1))}\n\n` +
      `## Opening ${c.connected} sockets (${c.ms} ms, server ${c.serverCpuPct} % CPU)\n\n${profileMarkdown(summarizeProfile(file, w.connect, 15))}\n\n` +
      `## Scenario 5: ${l.requests} list requests (p50 ${l.latency.p50} ms, p99 ${l.latency.p99} ms)\n\n${profileMarkdown(summarizeProfile(file, w.list, 15))}\n`;
    writeFileSync(join(resultsDir, `profile-${stamp}.md`), md);
    console.log(md);
    return;
  }
  results.socketio = await runTarget('socketio', layout, layoutFile);
  results.uws = await runTarget('uws', layout, layoutFile);

  log('PostgreSQL limits');
  const pgMsg = await pgLimit('messages', layoutFile);
  const pgFull = await pgLimit('full', layoutFile);
  const listSql = await listSqlLimit(db);
  await db.end();
  log(`pg: ${pgMsg.messagesPerSec} message rows/s; full ${pgFull.messagesPerSec} messages/s; list SQL p99 ${listSql.latency.p99} ms`);

  const r = results as Record<TargetName, TargetResult>;
  const rows = buildRows(r, pgMsg, pgFull, listSql);
  const meta = {
    timestamp: stamp, cores: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version, totalSec: Math.round((performance.now() - T0) / 1000), quick: QUICK, config: C,
    loadAvgAtStart: LOAD_AT_START, loadAvgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const report = {
    meta, table: rows.map((x) => ({ ...x, ratioToPeer: ratio(x.mtchat, x.peer), ratioToLimit: ratio(x.mtchat, x.limit) })),
    goals: rows.filter((x) => x.goal).map((x) => ({ goal: x.goal!.text, value: x.mtchat, pass: x.goal!.pass })),
    targets: r, limits: { pgMessages: pgMsg, pgFull, listSql },
  };
  const base = join(resultsDir, `bench-${stamp}`);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`${base}.md`, markdown(meta, rows, r, pgMsg, pgFull));
  console.log(JSON.stringify(report, null, 2));
  log(`wrote ${base}.json and ${base}.md`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  log('FAILED:', (e as Error).stack ?? e);
} finally {
  await cleanup().catch((e) => log('cleanup failed:', e));
  log(`done in ${Math.round((performance.now() - T0) / 1000)} s`);
}
process.exit(failed ? 1 : 0);
