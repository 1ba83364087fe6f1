// Child processes of the bench: spawned with a raised file-descriptor limit, logged to files,
// measured from /proc (RSS, CPU ticks), stopped by their own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ClientReply, ClientRequest } from './ipc.js';
import { sleep } from './stats.js';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface Spawned {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  logFile: string;
}

/**
 * Runs `node <args>` through sh so the fd limit can be raised first (10,000+ sockets); `exec` keeps
 * the pid, so /proc figures and signals reach node itself.
 */
export function spawnNode(
  name: string, args: string[], env: Record<string, string>, logDir: string,
  opts: { ipc?: boolean; stdout?: 'pipe' | 'log' } = {},
): Spawned {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const stdio: ('ignore' | 'pipe' | 'ipc' | number)[] = ['ignore', opts.stdout === 'pipe' ? 'pipe' : fd, fd];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"', 'sh', process.execPath, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  if (child.pid === undefined) throw new Error(`cannot spawn ${name}`);
  return { name, child, pid: child.pid, exited, logFile };
}

/** Sends SIGTERM to the process (by pid) and waits; SIGKILL after graceMs. */
export async function stop(p: Spawned, graceMs = 20_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await p.exited;
  clearTimeout(t);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitHttp(url: string, timeoutMs: number, p?: Spawned): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    if (p && (p.child.exitCode !== null || p.child.signalCode !== null)) {
      throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}); see ${p.logFile}`);
    }
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = String((e as Error).message);
    }
    await sleep(250);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

/** Resident set size of a process, bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const TICKS_PER_SEC = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
}

/** CPU seconds used so far by every process on the machine, with its command name. */
export function cpuByProcess(): Map<number, { comm: string; cpu: number }> {
  const out = new Map<number, { comm: string; cpu: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { comm, cpu: (Number(f[11]) + Number(f[12])) / TICKS_PER_SEC });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

const INFRA = new Set(['postgres', 'nats-server', 'redis-server']);

/**
 * Busy cores between two snapshots, split into the server under test, the client processes,
 * the shared infrastructure (PostgreSQL, NATS, Redis: all their processes, whoever uses them) and
 * everything else on the machine (other people's test runs, the bench itself, the OS).
 */
export function splitCpu(
  a: Map<number, { comm: string; cpu: number }>, b: Map<number, { comm: string; cpu: number }>,
  m0: { busy: number }, m1: { busy: number }, seconds: number, server: number, clients: Set<number>,
): { server: number; clients: number; infra: number; other: number; machine: number } {
  let srv = 0, cl = 0, infra = 0;
  for (const [pid, v] of b) {
    const d = v.cpu - (a.get(pid)?.cpu ?? 0);
    if (pid === server) srv += d;
    else if (clients.has(pid)) cl += d;
    else if (INFRA.has(v.comm)) infra += d;
  }
  const machine = m1.busy - m0.busy;
  const r = (x: number) => Math.round((x / seconds) * 100) / 100;
  return { server: r(srv), clients: r(cl), infra: r(infra), other: r(Math.max(0, machine - srv - cl - infra)), machine: r(machine) };
}

/** Whole machine: busy and total CPU seconds (all cores) since boot. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = line[3] + (line[4] ?? 0);
  return { busy: (total - idle) / TICKS_PER_SEC, total: total / TICKS_PER_SEC };
}

/** A client process: one request at a time over its IPC channel. */
export class ClientProc {
  private queue: Promise<unknown> = Promise.resolve();
  constructor(readonly p: Spawned) {}

  request<T extends ClientReply['cmd']>(m: ClientRequest): Promise<Extract<ClientReply, { cmd: T; ok: true }>> {
    const run = () =>
      new Promise<Extract<ClientReply, { cmd: T; ok: true }>>((resolve, reject) => {
        const onMsg = (r: ClientReply) => {
          cleanup();
          if (r.ok) resolve(r as Extract<ClientReply, { cmd: T; ok: true }>);
          else reject(new Error(`${this.p.name}: ${r.error}`));
        };
        const onExit = (code: number | null) => {
          cleanup();
          reject(new Error(`${this.p.name} exited (${code}); see ${this.p.logFile}`));
        };
        const cleanup = () => {
          this.p.child.off('message', onMsg);
          this.p.child.off('exit', onExit);
        };
        this.p.child.on('message', onMsg);
        this.p.child.once('exit', onExit);
        this.p.child.send(m);
      });
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
