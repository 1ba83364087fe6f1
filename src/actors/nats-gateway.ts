// The edge's way to a dialog's owner: a NATS request to the dialog's partition. A command is
// retried while no worker answers (no responders during a handover, or a timeout when the owner
// died mid-request) until a deadline that outlasts the lease takeover bound. The request id is
// fixed before the first attempt, so however many attempts reach a worker, one takes effect.
import { errors, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { decodeJson, encodeJson } from '../bus/nats.js';
import type { Subjects } from '../bus/subjects.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { partitionOf } from '../domain/partition.js';
import type { Metrics } from '../observability/metrics.js';
import { unwrapReply, type CommandGateway, type ExecuteOptions } from './gateway.js';
import type { CommandEnvelope, CommandName, CommandOf, CommandReply, ResultOf } from './registry.js';

export interface NatsGatewayOptions {
  /** How long one attempt waits for its reply. */
  attemptTimeoutMs?: number;
  /** When to give up retrying; must exceed the lease takeover bound (leases.ts). */
  deadlineMs?: number;
  backoffStartMs?: number;
  backoffMaxMs?: number;
  /** The process's metrics; none are recorded without it. */
  metrics?: Metrics | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Failures after which another attempt may succeed (the command may or may not have run). */
function retriable(err: unknown): boolean {
  if (err instanceof errors.TimeoutError || err instanceof errors.NoRespondersError) return true;
  if (err instanceof errors.RequestError) return err.isNoResponders() || err.cause instanceof errors.TimeoutError;
  // A dropped connection comes back by itself (connectNats reconnects forever).
  return err instanceof errors.ConnectionError;
}

export class NatsGateway implements CommandGateway {
  readonly stats = { retries: 0, gaveUp: 0 };
  private readonly attemptTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly backoffStartMs: number;
  private readonly backoffMaxMs: number;
  private readonly metrics: Metrics | null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly log: Logger,
    opts: NatsGatewayOptions = {},
  ) {
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 5000;
    this.deadlineMs = opts.deadlineMs ?? 20_000;
    this.backoffStartMs = opts.backoffStartMs ?? 100;
    this.backoffMaxMs = opts.backoffMaxMs ?? 1000;
    this.metrics = opts.metrics ?? null;
  }

  async execute<N extends CommandName>(name: N, dialogId: string, cmd: CommandOf<N>, o: ExecuteOptions = {}): Promise<ResultOf<N>> {
    const reply = await this.request({ name, dialogId, requestId: o.requestId ?? newId(), cmd });
    return unwrapReply<ResultOf<N>>(reply);
  }

  /** Sends one envelope until some owner answers it; the raw reply (tests resend the same envelope to check idempotency). */
  async request(env: CommandEnvelope): Promise<CommandReply> {
    const subject = this.subjects.command(partitionOf(env.dialogId));
    const body = encodeJson(env);
    const giveUpAt = Date.now() + this.deadlineMs;
    let wait = this.backoffStartMs;
    for (;;) {
      const timeout = Math.max(1, Math.min(this.attemptTimeoutMs, giveUpAt - Date.now()));
      const started = performance.now();
      try {
        const msg = await this.nc.request(subject, body, { timeout });
        this.metrics?.natsRequestDuration.observe((performance.now() - started) / 1000);
        return decodeJson<CommandReply>(msg.data);
      } catch (err) {
        // Per attempt: a timeout or "no responders" (no owner during a handover) is what alerts watch.
        if (retriable(err) && !(err instanceof errors.ConnectionError)) this.metrics?.natsRequestTimeouts.inc();
        if (!retriable(err)) {
          this.log.error({ err, requestId: env.requestId, command: env.name }, 'command request failed');
          throw err;
        }
        if (Date.now() + wait >= giveUpAt) {
          this.stats.gaveUp++;
          this.log.warn({ requestId: env.requestId, command: env.name, subject }, 'no partition owner answered in time');
          throw new AppError(503, 'OVERLOADED', 'Service temporarily unavailable', { 'Retry-After': '1' });
        }
        this.stats.retries++;
        this.log.debug({ requestId: env.requestId, command: env.name, err: (err as Error).message }, 'command retry');
        await sleep(wait);
        wait = Math.min(wait * 2, this.backoffMaxMs);
      }
    }
  }
}
