import type { Logger } from 'pino';
import type { Em, Orm } from '../db/orm.js';
import { OutboxSchema } from '../db/entities.js';
import type { DomainEvent, OutboxDraft } from '../domain/events.js';
import type { EventPublisher } from '../bus/local-bus.js';
import { newId } from '../domain/ids.js';

export interface CommandOutput<R> {
  result: R;
  events: DomainEvent[];
  outbox: OutboxDraft[];
}

/**
 * A state change: validates against current state, changes entities through `em`, and returns what
 * it produced. It never commits, never does network I/O and knows nothing of HTTP, so the same
 * handler runs per request today and inside a dialog actor's batched unit of work later.
 */
export type CommandHandler<C, R> = (em: Em, cmd: C) => Promise<CommandOutput<R>>;

export const output = <R>(result: R, events: DomainEvent[] = [], outbox: OutboxDraft[] = []): CommandOutput<R> => ({ result, events, outbox });

export interface RunnerOptions {
  /** Outbox rows are written only when something will consume them (webhooks or notifications). */
  persistOutbox: boolean;
}

/** Runs one handler in its own transaction and publishes its events after commit. */
export class CommandRunner {
  constructor(
    private readonly orm: Orm,
    private readonly publisher: EventPublisher,
    private readonly opts: RunnerOptions,
    private readonly log: Logger,
  ) {}

  async run<C, R>(handler: CommandHandler<C, R>, cmd: C): Promise<R> {
    const em = this.orm.em.fork();
    const out = await em.transactional(async (tx) => {
      const o = await handler(tx as Em, cmd);
      if (this.opts.persistOutbox) {
        const now = new Date();
        for (const d of o.outbox) {
          tx.persist(tx.create(OutboxSchema, { id: newId(), kind: d.kind, dialog_id: d.dialogId, payload: d.payload, created_at: now }));
        }
      }
      return o;
    });
    try {
      this.publisher.publish(out.events);
    } catch (e) {
      // Committed is committed: a failed publish must not turn a success into an error.
      this.log.error({ err: e }, 'event publish failed after commit');
    }
    return out.result;
  }
}
