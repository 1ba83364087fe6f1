// A cluster of real service processes for cluster and fault tests: a fresh database and
// namespace, edges and workers spawned as separate OS processes (`node --import tsx src/main.ts
// --role …`), each on its own port, killed with SIGKILL or stopped with SIGTERM. Partition
// ownership is watched live in the namespace's lease bucket.
//
// Cleanup is always complete (close()): every process is killed, the database dropped and the
// namespace's streams deleted; children are also killed if the test process exits abruptly.
import pg from 'pg';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { Subjects } from '../../src/bus/subjects.js';
import { PARTITION_COUNT } from '../../src/domain/partition.js';
import { PG_BASE, deleteNamespaceStreams } from './server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NATS_URL = process.env.NATS_URL ?? '127.0.0.1:4222';
const LOG_LINES = 200;

export type Role = 'edge' | 'worker' | 'all';

export interface Proc {
  name: string;
  role: Role;
  port: number;
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited (by any cause). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The worker id under which it holds leases (workers only, known once ready). */
  workerId?: string;
  /** Last lines of its stdout/stderr. */
  logs: string[];
  alive(): boolean;
}

export interface LeaseChange {
  at: number;
  owner: string | null;
}

export interface Cluster {
  dbName: string;
  namespace: string;
  procs: Proc[];
  /** Partition → owning worker id, as last written to the lease bucket (expiries are not seen). */
  owners: Map<number, string>;
  /** Every change of owner seen (renewals left out), per partition, with the time it was seen. */
  history: Map<number, LeaseChange[]>;
  sql(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Spawns a process and waits for its /health/ready (workers: also learns its worker id). */
  spawn(role: Role, name: string, env?: Record<string, string>): Promise<Proc>;
  /** SIGKILL; resolves once the process is gone. */
  kill(p: Proc): Promise<void>;
  /** SIGTERM (graceful drain); SIGKILL if it has not exited within timeoutMs. */
  stop(p: Proc, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until the given workers own every partition, evenly (±1). */
  waitBalanced(workerIds: string[], timeoutMs?: number): Promise<void>;
  /** Log tails of every process, for failure diagnostics. */
  logTails(lines?: number): string;
  close(): Promise<void>;
}

export interface ClusterOptions {
  /** Environment for every process (on top of the harness's own). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

// Children must not outlive an aborted test run.
const everyChild = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of everyChild) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The process environment without the test runner's hooks (children are plain service processes). */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('NYC')) continue;
    env[k] = v;
  }
  return env;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const dbName = `mtchat_cluster_${id}`;
  const namespace = `c_${id}`;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 45_000;
  const subjects = new Subjects(namespace);

  const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  } finally {
    await admin.end();
  }

  const procs: Proc[] = [];
  const owners = new Map<number, string>();
  const history = new Map<number, LeaseChange[]>();
  let db: pg.Client | null = null;
  let nc: NatsConnection | null = null;
  let closed = false;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(procs.map((p) => killProc(p)));
    await nc?.close().catch(() => undefined);
    await db?.end().catch(() => undefined);
    await deleteNamespaceStreams(namespace).catch(() => undefined);
    const a = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
    await a.connect();
    try {
      await a.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  };

  try {
    db = new pg.Client({ connectionString: `${PG_BASE}/${dbName}` });
    await db.connect();
    nc = await connect({ servers: NATS_URL, name: 'cluster-test-harness' });
    // The workers create the bucket; the watcher waits for it.
    void watchLeases(new Kvm(nc), subjects.leaseBucket, owners, history, () => closed).catch(() => undefined);
  } catch (e) {
    await close();
    throw e;
  }

  const spawnProc = async (role: Role, name: string, env: Record<string, string> = {}): Promise<Proc> => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const workersBefore = role === 'edge' ? null : await workerKeys(nc!, subjects.workerBucket);
      const p = launch(role, name, port, {
        ...baseEnv(),
        DATABASE_URL: `${PG_BASE}/${dbName}`,
        MTCHAT_NAMESPACE: namespace,
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'warn',
        DATABASE_MAX_CONNECTIONS: '4',
        DATABASE_MIN_CONNECTIONS: '0',
        MTCHAT_LEASE_TTL_MS: '3000',
        MTCHAT_LEASE_TICK_MS: '500',
        MTCHAT_DEV_S3: 'false',
        NATS_URL,
        ...opts.env,
        ...env,
      });
      procs.push(p);
      try {
        await waitReady(p, readyTimeoutMs);
      } catch (e) {
        await killProc(p);
        // Someone took the port between probing and listening: try another one.
        if (attempt < 3 && p.logs.some((l) => l.includes('EADDRINUSE') || l.includes('listen'))) continue;
        throw e;
      }
      if (workersBefore) {
        const now = await workerKeys(nc!, subjects.workerBucket);
        const fresh = [...now].filter((k) => !workersBefore.has(k));
        if (fresh.length !== 1) throw new Error(`cannot tell ${name}'s worker id (new keys: ${fresh.join(', ') || 'none'}); spawn workers one at a time`);
        p.workerId = fresh[0];
      }
      return p;
    }
  };

  return {
    dbName,
    namespace,
    procs,
    owners,
    history,
    sql: (text, params) => db!.query(text, params as unknown[]),
    spawn: spawnProc,
    kill: killProc,
    async stop(p, timeoutMs = 15_000) {
      if (p.alive()) p.child.kill('SIGTERM');
      const timer = sleep(timeoutMs).then(() => 'timeout' as const);
      const r = await Promise.race([p.exited, timer]);
      if (r === 'timeout') {
        await killProc(p);
        throw new Error(`${p.name} did not exit within ${timeoutMs} ms of SIGTERM`);
      }
      return r;
    },
    async waitBalanced(ids, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      const share = Math.ceil(PARTITION_COUNT / ids.length);
      for (;;) {
        const counts = new Map(ids.map((w) => [w, 0]));
        let foreign = 0;
        for (const o of owners.values()) {
          if (counts.has(o)) counts.set(o, counts.get(o)! + 1);
          else foreign++;
        }
        const total = [...counts.values()].reduce((a, b) => a + b, 0);
        if (foreign === 0 && total === PARTITION_COUNT && [...counts.values()].every((n) => n >= PARTITION_COUNT - share * (ids.length - 1) && n <= share)) return;
        if (Date.now() > end) throw new Error(`partitions not balanced over ${ids.join(', ')}: ${JSON.stringify(Object.fromEntries(counts))}, others ${foreign}`);
        await sleep(100);
      }
    },
    logTails(lines = 30) {
      return procs.map((p) => `--- ${p.name} (${p.role}, port ${p.port}, ${p.alive() ? 'alive' : 'exited'})\n${p.logs.slice(-lines).join('\n')}`).join('\n');
    },
    close,
  };
}

function launch(role: Role, name: string, port: number, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role', role], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  everyChild.add(child);
  const logs: string[] = [];
  const collect = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      logs.push(line);
      if (logs.length > LOG_LINES) logs.shift();
    }
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      everyChild.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    name, role, port, url: `http://127.0.0.1:${port}`, child, exited, logs,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}

async function killProc(p: Proc): Promise<void> {
  if (p.alive()) p.child.kill('SIGKILL');
  await p.exited;
}

async function waitReady(p: Proc, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (!p.alive()) throw new Error(`${p.name} exited (${p.child.signalCode ?? `code ${p.child.exitCode}`}) before it was ready:\n${p.logs.slice(-30).join('\n')}`);
    try {
      const r = await fetch(`${p.url}/health/ready`, { signal: AbortSignal.timeout(2000) });
      last = `${r.status} ${await r.text()}`;
      if (r.status === 200) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(150);
  }
  throw new Error(`${p.name} not ready within ${timeoutMs} ms (last: ${last}):\n${p.logs.slice(-30).join('\n')}`);
}

async function workerKeys(nc: NatsConnection, bucket: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let kv: KV;
  try {
    kv = await new Kvm(nc).open(bucket);
    await kv.status(); // open() does not check that the bucket exists
  } catch {
    return keys;
  }
  for await (const k of await kv.keys()) keys.add(k);
  return keys;
}

/** Follows the lease bucket (once a worker has created it) until the cluster closes. */
async function watchLeases(kvm: Kvm, bucket: string, owners: Map<number, string>, history: Map<number, LeaseChange[]>, stop: () => boolean): Promise<void> {
  let kv: KV | null = null;
  while (!kv) {
    if (stop()) return;
    try {
      kv = await kvm.open(bucket);
      await kv.status(); // open() does not check that the bucket exists
    } catch {
      kv = null;
      await sleep(100);
    }
  }
  const it = await kv.watch({ key: '>' });
  const stopper = setInterval(() => {
    if (stop()) {
      it.stop();
      clearInterval(stopper);
    }
  }, 200);
  stopper.unref();
  try {
    for await (const e of it) {
      const p = Number(e.key.slice(1));
      if (!Number.isInteger(p)) continue;
      const owner = e.operation === 'PUT' ? e.string() : null;
      const before = owners.get(p) ?? null;
      if (owner === null) owners.delete(p);
      else owners.set(p, owner);
      if (owner === before) continue; // a renewal
      let h = history.get(p);
      if (!h) history.set(p, (h = []));
      h.push({ at: Date.now(), owner });
    }
  } catch {
    /* the connection closed with the cluster */
  } finally {
    clearInterval(stopper);
  }
}
