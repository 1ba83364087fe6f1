// A client process of the benchmark: holds a share of the sockets, sends and receives for the
// dialogs it owns (every member of those dialogs is connected here, so send→delivery is timed
// on one clock), and reports figures and its own CPU use back to bench.ts over IPC.
//
// BENCH_DRIVER = mtchat | socketio | uws, BENCH_URL = http://127.0.0.1:<port>
import { performance } from 'node:perf_hooks';
import type { ClientReply, ClientRequest, ConnectResult, DialogSpec, RunResult, RunSpec } from '../lib/ipc.js';
import { pool } from '../lib/stats.js';
import type { Driver, DriverConn, Handlers } from './drivers/types.js';
import { mtchatDriver } from './drivers/mtchat.js';
import { socketioDriver } from './drivers/socketio.js';
import { uwsDriver } from './drivers/uws.js';

const url = process.env.BENCH_URL ?? '';
const drivers: Record<string, (u: string) => Driver> = { mtchat: mtchatDriver, socketio: socketioDriver, uws: uwsDriver };
const makeDriver = drivers[process.env.BENCH_DRIVER ?? ''];
if (!makeDriver || !url || !process.send) {
  console.error('client.ts: needs BENCH_DRIVER, BENCH_URL and an IPC channel');
  process.exit(2);
}
const driver = makeDriver(url);
const conns = new Map<string, DriverConn>();

interface Pending {
  key: number;
  t0: number;
  dialog: DialogSpec;
  receiver: string;
  acked: boolean;
  delivered: boolean;
  inWindow: boolean;
}

/** The run in progress (null between runs: frames are then only counted as closes). */
let run: {
  spec: RunSpec;
  tStart: number;
  tEnd: number;
  pending: Map<number, Pending>;
  busy: Map<string, number>;
  /** Designated deliveries each user's socket waits for: only those sockets decode message.new. */
  expect: Map<string, number>;
  res: RunResult;
  inflight: number;
  onIdle: (() => void) | null;
} | null = null;
let closes: Record<string, number> = {};
let nextKey = 1;

const KEY_RE = /#(\d+)#/;
const inWindow = (t: number) => run !== null && t >= run.tStart && t < run.tEnd;

function bump(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
}

function finish(p: Pending): void {
  const r = run!;
  if (!r.pending.delete(p.key)) return;
  r.inflight--;
  bump(r.busy, p.dialog.id, -1);
  if (!p.delivered) bump(r.expect, p.receiver, -1);
  if (r.inflight === 0 && r.onIdle) r.onIdle();
  else pump();
}

const handlers: Handlers = {
  ack(_userId, corrId) {
    if (!run) return;
    const now = performance.now();
    if (inWindow(now)) run.res.acked++;
    const p = run.pending.get(Number(corrId));
    if (!p || p.acked) return;
    p.acked = true;
    if (p.inWindow) run.res.ackLat.push(now - p.t0);
    if (p.delivered) finish(p);
  },
  error(_userId, corrId, code) {
    if (!run) return;
    run.res.errors[code] = (run.res.errors[code] ?? 0) + 1;
    const p = corrId === undefined ? undefined : run.pending.get(Number(corrId));
    if (p) finish(p);
  },
  message(userId, content) {
    if (!run) return;
    const now = performance.now();
    if (inWindow(now)) run.res.deliveries++;
    if (content === null) return;
    const m = KEY_RE.exec(content);
    if (!m) return;
    const p = run.pending.get(Number(m[1]));
    if (!p || p.delivered || p.receiver !== userId) return;
    p.delivered = true;
    bump(run.expect, userId, -1);
    if (p.inWindow) run.res.delLat.push(now - p.t0);
    if (p.acked) finish(p);
  },
  interested(userId) {
    return run !== null && run.expect.has(userId);
  },
  closed(_userId, code) {
    closes[code] = (closes[code] ?? 0) + 1;
  },
};

// ---- sending ------------------------------------------------------------------------------

const dialogTurn = new Map<string, number>();
let cursor = 0;
let padding = '';

function issue(d: DialogSpec, t0: number): void {
  const r = run!;
  const turn = dialogTurn.get(d.id) ?? 0;
  dialogTurn.set(d.id, turn + 1);
  const sender = d.members[turn % d.members.length];
  const receiver = d.members[(turn + 1) % d.members.length];
  const key = nextKey++;
  const p: Pending = { key, t0, dialog: d, receiver, acked: false, delivered: false, inWindow: inWindow(t0) };
  r.pending.set(key, p);
  r.inflight++;
  bump(r.busy, d.id, 1);
  bump(r.expect, receiver, 1);
  if (p.inWindow) r.res.sent++;
  const conn = conns.get(sender);
  if (!conn) {
    r.res.errors.NOT_CONNECTED = (r.res.errors.NOT_CONNECTED ?? 0) + 1;
    return finish(p);
  }
  conn.send(String(key), d.id, `bench #${key}# ${padding}`, `b${process.pid}-${key}`);
}

/** Closed loop: keeps `window` sends in flight, spread over the dialogs. */
function pump(): void {
  const r = run;
  if (!r || r.spec.mode !== 'closed' || performance.now() >= r.tEnd) return;
  const ds = r.spec.dialogs;
  const window = r.spec.window ?? 1;
  const perDialog = Math.max(1, Math.ceil(window / ds.length));
  while (r.inflight < window) {
    let found: DialogSpec | null = null;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[(cursor + i) % ds.length];
      if ((r.busy.get(d.id) ?? 0) < perDialog) {
        found = d;
        cursor = (cursor + i + 1) % ds.length;
        break;
      }
    }
    if (!found) return;
    issue(found, performance.now());
  }
}

async function runScenario(spec: RunSpec): Promise<RunResult> {
  padding = 'x'.repeat(Math.max(0, spec.contentBytes));
  closes = {};
  const t = performance.now();
  const res: RunResult = {
    name: spec.name, windowMs: spec.durationMs, sent: 0, acked: 0, deliveries: 0, ackLat: [], delLat: [],
    errors: {}, timeouts: 0, skipped: 0, closes: {}, cpuUs: { user: 0, system: 0 },
  };
  run = {
    spec, tStart: t + spec.warmupMs, tEnd: t + spec.warmupMs + spec.durationMs,
    pending: new Map(), busy: new Map(), expect: new Map(), res, inflight: 0, onIdle: null,
  };
  const r = run;
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const p of [...r.pending.values()]) {
      if (now - p.t0 > spec.timeoutMs) {
        res.timeouts++;
        finish(p);
      }
    }
  }, 250);
  let cpu0: NodeJS.CpuUsage | null = null;
  const cpuStart = setTimeout(() => (cpu0 = process.cpuUsage()), spec.warmupMs);
  let cpu: NodeJS.CpuUsage = { user: 0, system: 0 };
  const cpuEnd = setTimeout(() => (cpu = process.cpuUsage(cpu0 ?? undefined)), spec.warmupMs + spec.durationMs);

  if (spec.mode === 'closed') {
    pump();
  } else {
    const rate = spec.rate ?? 1;
    const cap = Math.max(1000, rate * 5);
    let issued = 0;
    const ds = spec.dialogs;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const stopAt = Math.min(now, r.tEnd);
        const due = Math.floor(((stopAt - t) * rate) / 1000);
        while (issued < due) {
          const ts = t + (issued * 1000) / rate;
          issued++;
          if (r.inflight >= cap) {
            if (inWindow(ts)) res.skipped++;
            continue;
          }
          issue(ds[cursor++ % ds.length], ts);
        }
        if (now >= r.tEnd) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
  }
  const endAt = r.tEnd - performance.now();
  if (endAt > 0) await new Promise((res2) => setTimeout(res2, endAt));
  // Let what is in flight complete (or time out) so its latencies are counted.
  if (r.inflight > 0) {
    await new Promise<void>((resolve) => {
      r.onIdle = resolve;
      setTimeout(resolve, spec.timeoutMs + 500);
    });
  }
  clearInterval(sweep);
  clearTimeout(cpuStart);
  clearTimeout(cpuEnd);
  res.cpuUs = { user: cpu.user, system: cpu.system };
  res.closes = closes;
  run = null;
  return res;
}

// ---- connections --------------------------------------------------------------------------

async function connectAll(users: string[], concurrency: number, timeoutMs: number): Promise<ConnectResult> {
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const errors: Record<string, number> = {};
  let connected = 0;
  await pool(users, concurrency, async (u) => {
    if (conns.has(u)) return;
    try {
      conns.set(u, await driver.connect(u, handlers, timeoutMs));
      connected++;
    } catch (e) {
      const k = String((e as Error).message ?? e).slice(0, 80);
      errors[k] = (errors[k] ?? 0) + 1;
    }
  });
  const c = process.cpuUsage(cpu0);
  return { connected, failed: users.length - connected, errors, ms: performance.now() - t, cpuUs: c.user + c.system };
}

async function disconnectAll(): Promise<void> {
  const all = [...conns.values()];
  conns.clear();
  await pool(all, 200, (c) => c.close());
}

function reply(m: ClientReply): void {
  process.send!(m);
}

process.on('message', (m: ClientRequest) => {
  const fail = (e: unknown) => reply({ ok: false, cmd: m.cmd, error: String((e as Error)?.stack ?? e) });
  switch (m.cmd) {
    case 'connect':
      connectAll(m.users, m.concurrency, m.timeoutMs).then((result) => reply({ ok: true, cmd: 'connect', result }), fail);
      return;
    case 'run':
      runScenario(m.spec).then((result) => reply({ ok: true, cmd: 'run', result }), fail);
      return;
    case 'disconnect':
      disconnectAll().then(() => reply({ ok: true, cmd: 'disconnect' }), fail);
      return;
    case 'exit':
      disconnectAll().finally(() => process.exit(0));
      return;
  }
});
process.on('disconnect', () => process.exit(0));
