// How the edge reaches a dialog's owner. The edge never runs a handler itself in the cluster:
// it hands the command to the partition owner and waits for the committed result.
import { AppError, type ErrorCode } from '../domain/errors.js';
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
