// Serves the partitions this worker holds leases on. Each dialog is an actor in the simplest form:
// its commands run strictly in arrival order (one partition queue, one batch at a time), and it
// keeps no state between commands — everything reloads from PostgreSQL inside the batch's
// transaction — so passivating an idle dialog costs nothing: only the pending-count entry of a
// dialog with queued commands exists, and it goes away when its mailbox empties.
//
// Batches: a worker runs at most `maxConcurrentBatches` transactions at once. Sends waiting at the
// front of many partitions share one transaction (the send path's cost is per batch, not per
// message), other commands run per partition; a partition is never in two batches at once.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import type { EventPublisher } from '../bus/local-bus.js';
import { decodeJson, encodeJson } from '../bus/nats.js';
import type { Subjects } from '../bus/subjects.js';
import type { DomainEvent } from '../domain/events.js';
import { partitionOf } from '../domain/partition.js';
import type { Metrics } from '../observability/metrics.js';
import { executeBatch, errorReply, type BatchOptions } from './batch.js';
import { executeSends } from './send-batch.js';
import { isCommandName, type CommandEnvelope, type CommandReply } from './registry.js';

export interface PartitionOwnerOptions extends BatchOptions {
  /** Commands waiting per dialog before it answers 503 OVERLOADED. */
  mailboxCapacity?: number;
  /** Commands per transaction (group commit). */
  maxBatch?: number;
  /** Batches (transactions) in flight at once across all partitions. */
  maxConcurrentBatches?: number;
  /** Called after a commit that may have written outbox rows, so the relay moves them at once. */
  outboxWritten?: () => void;
  /** The process's metrics; none are recorded without it. */
  metrics?: Metrics | null;
}

interface Pending {
  env: CommandEnvelope;
  respond: (reply: CommandReply) => void;
  state: PartitionState;
}

interface PartitionState {
  sub: Subscription;
  queue: Pending[];
  perDialog: Map<string, number>;
  /** Part of a batch in flight: at most one batch of a partition runs at a time, which keeps each dialog's order. */
  running: boolean;
  /** Waiting in the ready list for a free batch slot. */
  ready: boolean;
  /** The previous tenure's last work is not answered yet (the partition came back before it had drained). */
  blocked: boolean;
  /** Resolves when the queue is empty and nothing runs. */
  idle: Promise<void> | null;
  settle: () => void;
}

export const OVERLOADED_REPLY: CommandReply = {
  ok: false,
  error: { status: 503, code: 'OVERLOADED', message: 'Dialog is busy, retry later', headers: { 'Retry-After': '1' } },
};

const badRequest = (message: string): CommandReply => ({ ok: false, error: { status: 400, code: 'BAD_REQUEST', message } });

/** Checks what arrived over the wire; answers the reason it is unusable, or null. */
export function checkEnvelope(v: unknown, partition: number): string | null {
  if (typeof v !== 'object' || v === null) return 'Malformed command';
  const e = v as Record<string, unknown>;
  if (!isCommandName(e.name)) return 'Unknown command';
  if (typeof e.dialogId !== 'string' || e.dialogId === '') return 'Malformed command';
  if (typeof e.requestId !== 'string' || e.requestId === '' || e.requestId.length > 255) return 'Malformed command';
  if (typeof e.cmd !== 'object' || e.cmd === null) return 'Malformed command';
  // Serving a dialog outside its partition would run it beside its real owner, out of order.
  if (partitionOf(e.dialogId) !== partition) return 'Command sent to the wrong partition';
  // The partition is checked on dialogId, the handler acts on the command's own id: they must agree.
  const c = e.cmd as { id?: unknown; dialog_id?: unknown };
  if ((e.name === 'createDialog' ? c.id : c.dialog_id) !== e.dialogId) return 'Command names another dialog';
  return null;
}

export class PartitionOwner {
  readonly stats = { batches: 0, commands: 0, overloaded: 0, rejected: 0 };
  private readonly parts = new Map<number, PartitionState>();
  private readonly retiring = new Map<number, Promise<void>>();
  private readonly capacity: number;
  private readonly maxBatch: number;
  private readonly maxConcurrent: number;
  /** Partitions with queued commands and no batch in flight, oldest first. */
  private readonly readyList: PartitionState[] = [];
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly orm: Orm,
    private readonly publisher: EventPublisher,
    private readonly log: Logger,
    private readonly opts: PartitionOwnerOptions,
  ) {
    this.capacity = opts.mailboxCapacity ?? 1000;
    this.maxBatch = opts.maxBatch ?? 64;
    this.maxConcurrent = opts.maxConcurrentBatches ?? 4;
  }

  ownedPartitions(): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b);
  }

  serve(p: number): void {
    if (this.parts.has(p)) return;
    const previous = this.retiring.get(p);
    const state: PartitionState = {
      sub: undefined as unknown as Subscription, queue: [], perDialog: new Map(),
      running: false, ready: false, blocked: previous !== undefined, idle: null, settle: () => undefined,
    };
    // The previous tenure answers everything it accepted before this one starts, so order holds.
    previous?.finally(() => {
      state.blocked = false;
      this.markReady(state);
      this.pump();
    });
    // A queue group: if an old owner still listens during a handover, each command reaches one of them only.
    state.sub = this.nc.subscribe(this.subjects.command(p), {
      queue: 'owner',
      callback: (err, msg) => {
        if (!err) this.accept(p, state, msg);
      },
    });
    this.parts.set(p, state);
  }

  /** Stops taking the partition's commands and resolves once every accepted one is answered. */
  async release(p: number): Promise<void> {
    const state = this.parts.get(p);
    if (!state) return this.retiring.get(p);
    // Forget it at once so a quick re-acquisition starts a fresh tenure (which waits for this one).
    this.parts.delete(p);
    const done = (async () => {
      try {
        await state.sub.drain();
      } catch {
        state.sub.unsubscribe(); // connection already closed: nothing more can arrive anyway
      }
      await state.idle;
    })();
    this.retiring.set(p, done);
    await done;
    if (this.retiring.get(p) === done) this.retiring.delete(p);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.ownedPartitions().map((p) => this.release(p)), ...this.retiring.values()]);
  }

  /**
   * A command from this process (role `all`): queued like one from NATS when this worker serves
   * the dialog's partition, without the round trip through the server; null when it does not.
   */
  submit(env: CommandEnvelope): Promise<CommandReply> | null {
    const p = partitionOf(env.dialogId);
    const state = this.parts.get(p);
    if (!state) return null;
    const problem = checkEnvelope(env, p);
    if (problem) return Promise.resolve(badRequest(problem));
    return new Promise((resolve) => this.enqueue(state, env, resolve));
  }

  private accept(p: number, state: PartitionState, msg: Msg): void {
    let env: unknown;
    try {
      env = decodeJson(msg.data);
    } catch {
      env = undefined;
    }
    const problem = checkEnvelope(env, p);
    if (problem) {
      this.stats.rejected++;
      const rid = (env as { requestId?: unknown } | undefined)?.requestId;
      this.log.warn({ partition: p, requestId: typeof rid === 'string' ? rid.slice(0, 255) : undefined }, `command rejected: ${problem}`);
      return this.respond(msg, badRequest(problem));
    }
    this.enqueue(state, env as CommandEnvelope, (reply) => this.respond(msg, reply));
  }

  private enqueue(state: PartitionState, e: CommandEnvelope, respond: (reply: CommandReply) => void): void {
    const waiting = state.perDialog.get(e.dialogId) ?? 0;
    if (waiting >= this.capacity) {
      this.stats.overloaded++;
      this.opts.metrics?.overloadRejections.inc();
      this.log.warn({ dialogId: e.dialogId, requestId: e.requestId }, 'dialog mailbox full');
      return respond(OVERLOADED_REPLY);
    }
    state.perDialog.set(e.dialogId, waiting + 1);
    state.queue.push({ env: e, respond, state });
    this.opts.metrics?.mailboxDepth.inc();
    state.idle ??= new Promise<void>((resolve) => {
      state.settle = resolve;
    });
    this.markReady(state);
    this.pump();
  }

  private markReady(state: PartitionState): void {
    if (state.running || state.ready || state.blocked || state.queue.length === 0) return;
    state.ready = true;
    this.readyList.push(state);
  }

  /**
   * Starts batches while slots are free. With a batch already in flight, another starts only once
   * half a batch is waiting: a batch costs about the same whatever its size, so under load fewer,
   * fuller batches carry more commands than many thin ones; an idle worker starts at once.
   */
  private pump(): void {
    while (this.inFlight < this.maxConcurrent && this.readyList.length > 0) {
      if (this.inFlight > 0 && this.waitingInReady() < this.maxBatch / 2) return;
      const { parts, items } = this.takeBatch();
      this.inFlight++;
      for (const s of parts) s.running = true;
      void this.runBatch(items)
        .catch((err) => this.log.error({ err }, 'partition batch failed'))
        .finally(() => {
          this.inFlight--;
          for (const s of parts) {
            s.running = false;
            if (s.queue.length > 0) this.markReady(s);
            else if (s.idle) {
              s.idle = null;
              s.settle();
            }
          }
          this.pump();
        });
    }
  }

  private waitingInReady(): number {
    let n = 0;
    for (const s of this.readyList) n += s.queue.length;
    return n;
  }

  /**
   * The next batch: sends from the front of as many ready partitions as fit (they share one
   * transaction), or else the leading run of other commands of the oldest partition.
   */
  private takeBatch(): { parts: PartitionState[]; items: Pending[] } {
    const first = this.readyList[0];
    if (first.queue[0].env.name !== 'sendMessage') {
      this.readyList.shift();
      first.ready = false;
      const n = leadingRun(first.queue, (q) => q.env.name !== 'sendMessage', this.maxBatch);
      return { parts: [first], items: first.queue.splice(0, n) };
    }
    const parts: PartitionState[] = [];
    const items: Pending[] = [];
    for (let i = 0; i < this.readyList.length && items.length < this.maxBatch; ) {
      const s = this.readyList[i];
      if (s.queue[0].env.name !== 'sendMessage') {
        i++;
        continue;
      }
      this.readyList.splice(i, 1);
      s.ready = false;
      parts.push(s);
      items.push(...s.queue.splice(0, leadingRun(s.queue, (q) => q.env.name === 'sendMessage', this.maxBatch - items.length)));
    }
    return { parts, items };
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const m = this.opts.metrics;
    m?.mailboxDepth.dec(batch.length);
    m?.batchSize.observe(batch.length);
    const started = performance.now();
    const sends = batch[0].env.name === 'sendMessage';
    const outcomes = await this.run(batch.map((b) => b.env), sends);
    m?.commitDuration.observe((performance.now() - started) / 1000);
    this.stats.batches++;
    if (this.opts.persistOutbox && outcomes.some((o) => o.reply.ok)) this.opts.outboxWritten?.();
    batch.forEach((b, i) => {
      const n = (b.state.perDialog.get(b.env.dialogId) ?? 1) - 1;
      if (n > 0) b.state.perDialog.set(b.env.dialogId, n);
      else b.state.perDialog.delete(b.env.dialogId);
      const { reply, events } = outcomes[i];
      if (reply.ok && events.length > 0) {
        try {
          this.publisher.publish(events);
        } catch (err) {
          this.log.warn({ err, requestId: b.env.requestId }, 'event publish failed');
        }
      }
      b.respond(reply);
    });
    this.stats.commands += batch.length;
  }

  /** One transaction for the batch; if the transaction itself fails, each command gets one of its own. */
  private async run(envs: CommandEnvelope[], sends: boolean): Promise<{ reply: CommandReply; events: DomainEvent[] }[]> {
    try {
      const out = sends ? await executeSends(this.orm, envs, this.opts, this.log) : await executeBatch(this.orm, envs, this.opts, this.log);
      return out.replies.map((reply, i) => ({ reply, events: out.events[i] }));
    } catch (err) {
      this.log.error({ err, requestIds: envs.map((e) => e.requestId) }, 'batch transaction failed');
      if (envs.length === 1) return [{ reply: errorReply(err, this.log, envs[0].requestId), events: [] }];
      const each: { reply: CommandReply; events: DomainEvent[] }[] = [];
      // The command log makes re-running safe even if the failed commit did in fact land.
      for (const env of envs) each.push(...(await this.run([env], sends)));
      return each;
    }
  }

  private respond(msg: Msg, reply: CommandReply): void {
    try {
      msg.respond(encodeJson(reply));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'command reply failed');
    }
  }
}

/** How many items from the front satisfy `pred`, at most `max`. */
function leadingRun<T>(list: T[], pred: (t: T) => boolean, max: number): number {
  let n = 0;
  while (n < list.length && n < max && pred(list[n])) n++;
  return n;
}
