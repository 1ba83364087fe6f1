// How the edge reaches a dialog's owner. The edge never runs a handler itself in the cluster:
// it hands the command to the partition owner and waits for the committed result.
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import type { EventPublisher } from '../bus/local-bus.js';
import { AppError, type ErrorCode } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { executeBatch, type BatchOptions } from './batch.js';
import type { CommandName, CommandOf, CommandReply, ResultOf } from './registry.js';

export interface ExecuteOptions {
  /** Reuse to make a retry idempotent; generated when absent. */
  requestId?: string;
}

export interface CommandGateway {
  execute<N extends CommandName>(name: N, dialogId: string, cmd: CommandOf<N>, opts?: ExecuteOptions): Promise<ResultOf<N>>;
}

/** Turns a reply back into a result or the AppError the handler raised. */
export function unwrapReply<T>(reply: CommandReply): T {
  if (reply.ok) return reply.result as T;
  throw new AppError(reply.error.status, reply.error.code as ErrorCode, reply.error.message, reply.error.headers ?? {});
}

/**
 * Runs each command in this process, one transaction each: the path used where no cluster is
 * wanted (unit-level tests of the REST contract, tools). Same handlers, same batch code.
 */
export class DirectGateway implements CommandGateway {
  constructor(
    private readonly orm: Orm,
    private readonly publisher: EventPublisher,
    private readonly opts: BatchOptions,
    private readonly log: Logger,
  ) {}

  async execute<N extends CommandName>(name: N, dialogId: string, cmd: CommandOf<N>, o: ExecuteOptions = {}): Promise<ResultOf<N>> {
    const env = { name, dialogId, requestId: o.requestId ?? newId(), cmd };
    const { replies, events } = await executeBatch(this.orm, [env], this.opts, this.log);
    if (replies[0].ok) this.publisher.publish(events[0]);
    return unwrapReply<ResultOf<N>>(replies[0]);
  }
}
