// One unit of work for many commands (group commit). Each command runs in a savepoint of its own,
// so a failing command answers its error without failing its neighbours.
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Logger } from 'pino';
import type { Em, Orm } from '../db/orm.js';
import { CommandLogSchema, DialogEventSchema, OutboxSchema } from '../db/entities.js';
import { AppError } from '../domain/errors.js';
import type { DomainEvent } from '../domain/events.js';
import { newId } from '../domain/ids.js';
import { COMMANDS, type CommandEnvelope, type CommandReply } from './registry.js';
import type { CommandHandler } from './command.js';

export interface BatchOptions {
  persistOutbox: boolean;
}

export interface BatchOutcome {
  replies: CommandReply[];
  /** Events per command, to publish after commit in this order. */
  events: DomainEvent[][];
}

const toJson = (v: unknown): unknown => (v === undefined ? null : JSON.parse(JSON.stringify(v)));

export function errorReply(e: unknown, log: Logger, requestId?: string): CommandReply {
  if (e instanceof AppError) {
    return { ok: false, error: { status: e.status, code: e.code, message: e.message, headers: e.headers } };
  }
  log.error({ err: e, requestId }, 'command failed');
  return { ok: false, error: { status: 500, code: 'INTERNAL_ERROR', message: 'Internal server error' } };
}

type Ran = { reply: CommandReply; events: DomainEvent[] };

/** The command itself, its idempotency record and its event-log rows, in the given unit of work. */
async function runBody(em: Em, env: CommandEnvelope, opts: BatchOptions): Promise<Ran> {
  const prior = await em.findOne(CommandLogSchema, { request_id: env.requestId });
  if (prior) return { reply: { ok: true, result: prior.result } as CommandReply, events: [] };

  const handler = COMMANDS[env.name] as CommandHandler<unknown, unknown>;
  const out = await handler(em as Em, env.cmd);
  const now = new Date();
  const result = toJson(out.result);
  em.create(CommandLogSchema, { request_id: env.requestId, result, created_at: now });
  for (const e of out.events) {
    if (e.seq !== undefined) em.create(DialogEventSchema, { dialog_id: e.dialogId, seq: e.seq, payload: e.event, created_at: now });
  }
  if (opts.persistOutbox) {
    for (const d of out.outbox) {
      em.create(OutboxSchema, { id: newId(), kind: d.kind, dialog_id: d.dialogId, payload: d.payload, created_at: now });
    }
  }
  return { reply: { ok: true, result } as CommandReply, events: out.events };
}

/** In a batch each command gets a savepoint (and a clean identity map), so its failure is its own. */
const runInSavepoint = (tx: Em, env: CommandEnvelope, opts: BatchOptions): Promise<Ran> =>
  tx.transactional((em) => runBody(em as Em, env, opts), { clear: true });

// Another owner (one that lost its lease without knowing) committed the same request first:
// answering with what it stored keeps the command at exactly one effect.
// Raw statements surface the driver's error (code 23505) rather than the ORM's exception.
export const isCommandLogConflict = (e: unknown): boolean =>
  (e instanceof UniqueConstraintViolationException || (e as { code?: unknown } | null)?.code === '23505') &&
  /command_log/.test(String((e as Error).message));

/** A lone command needs no savepoint: when it fails, its whole transaction rolls back. */
async function executeAlone(orm: Orm, env: CommandEnvelope, opts: BatchOptions, log: Logger): Promise<BatchOutcome> {
  try {
    const r = await orm.em.fork().transactional((tx) => runBody(tx as Em, env, opts));
    return { replies: [r.reply], events: [r.events] };
  } catch (e) {
    const stored = isCommandLogConflict(e) ? await orm.em.fork().findOne(CommandLogSchema, { request_id: env.requestId }) : null;
    if (stored) return { replies: [{ ok: true, result: stored.result }], events: [[]] };
    return { replies: [errorReply(e, log, env.requestId)], events: [[]] };
  }
}

/** Executes the commands in order in one transaction and commits once. Replies are valid only after it resolves. */
export async function executeBatch(orm: Orm, envelopes: CommandEnvelope[], opts: BatchOptions, log: Logger): Promise<BatchOutcome> {
  if (envelopes.length === 1) return executeAlone(orm, envelopes[0], opts, log);
  const replies: CommandReply[] = [];
  const events: DomainEvent[][] = [];
  const em = orm.em.fork();
  await em.transactional(async (tx) => {
    for (const env of envelopes) {
      try {
        const r = await runInSavepoint(tx as Em, env, opts);
        replies.push(r.reply);
        events.push(r.events);
      } catch (e) {
        if (isCommandLogConflict(e)) {
          const stored = await tx.findOne(CommandLogSchema, { request_id: env.requestId });
          if (stored) {
            replies.push({ ok: true, result: stored.result });
            events.push([]);
            continue;
          }
        }
        replies.push(errorReply(e, log, env.requestId));
        events.push([]);
      }
    }
  });
  return { replies, events };
}
