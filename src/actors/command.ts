import type { Em } from '../db/orm.js';
import type { DomainEvent, OutboxDraft } from '../domain/events.js';

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
