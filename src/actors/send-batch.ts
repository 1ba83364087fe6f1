// The hot path: a run of sends (any dialogs of the batch's partitions) in one transaction with a
// constant number of statements. The checks and their order are those of `sendMessage`; they run
// here in memory against state read once, so later sends of the batch see the earlier ones.
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { rawQuery, rawTransaction, type RawTx, type Row } from '../db/raw.js';
import {
  loadSendState, lockDialogsSql, lockedDialogs, pairKey, unarchiveDialogs, writeSendsAndCommit,
  type LockedDialog, type SendRows, type SendState,
} from '../db/queries/send-batch.js';
import { dialogNotFound, invalidInput, mustJoinFirst } from '../domain/errors.js';
import type { DomainEvent } from '../domain/events.js';
import { newId, parseUuid } from '../domain/ids.js';
import { hasVisibleText, sanitizeContent } from '../domain/sanitize.js';
import { errorReply, isCommandLogConflict, type BatchOptions, type BatchOutcome } from './batch.js';
import { checkSendInput, sentMessageOutbox, type SendCmd } from './handlers/messages.js';
import { messageNewEvent } from './handlers/common.js';
import type { CommandEnvelope, CommandReply } from './registry.js';

/** JSON of a message row as the ORM path stores it in the command log and replies it. */
function storedMessage(r: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.id, dialog_id: r.dialog_id, sender_id: r.sender_id, content: r.content,
    sent_at: new Date(r.sent_at as string).toISOString(),
    last_edited_at: r.last_edited_at == null ? null : new Date(r.last_edited_at as string).toISOString(),
    reply_to_id: r.reply_to_id ?? null, message_type: r.message_type, seq: r.seq == null ? null : Number(r.seq),
    client_msg_id: r.client_msg_id ?? null,
  };
}
function storedAttachment(r: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.id, message_id: r.message_id, filename: r.filename, content_type: r.content_type, size: Number(r.size),
    s3_key: r.s3_key, created_at: new Date(r.created_at as string).toISOString(),
    width: r.width ?? null, height: r.height ?? null, thumbnail_s3_key: r.thumbnail_s3_key ?? null,
  };
}

type Outcome = { reply: CommandReply; events: DomainEvent[] };

// User ids and client ids are free text (spaces included): a JSON array keeps the parts apart.
const clientKeyOf = (dialogId: string, userId: string, clientMsgId: string): string => JSON.stringify([dialogId, userId, clientMsgId]);

/** Plans every send against the loaded state (advancing the locked dialogs' counters): the rows to write and each command's outcome. */
function plan(envs: CommandEnvelope[], dialogs: Map<string, LockedDialog>, st: SendState, opts: BatchOptions, now: Date, log: Logger) {
  const at = now.toISOString();
  const rows: SendRows = { messages: [], attachments: [], events: [], commandLog: [], outbox: [], dialogs: [], senders: [] };
  const outcomes: Outcome[] = [];
  const done = new Map<string, unknown>(Object.entries(st.priors));
  const byClientId = new Map<string, Record<string, unknown>>();
  for (const d of st.dupes) {
    byClientId.set(clientKeyOf(d.dialog_id as string, d.sender_id as string, d.client_msg_id as string), {
      message: storedMessage(d), attachments: (d.attachments as Record<string, unknown>[]).map(storedAttachment), created: false,
    });
  }
  const replyTargets = new Set(st.replyTargets);
  const usedKeys = new Set(st.usedKeys);
  const unarchive = new Set<string>();
  const touched = new Set<string>();
  const senders = new Map<string, SendRows['senders'][number]>();

  for (const env of envs) {
    if (done.has(env.requestId)) {
      outcomes.push({ reply: { ok: true, result: done.get(env.requestId) }, events: [] });
      continue;
    }
    const cmd = env.cmd as SendCmd;
    try {
      const d = dialogs.get(cmd.dialog_id);
      if (!d) throw dialogNotFound();
      if (!st.senders.has(pairKey(d.id, cmd.user_id))) throw mustJoinFirst();
      checkSendInput(cmd);
      const clientKey = cmd.client_msg_id != null ? clientKeyOf(d.id, cmd.user_id, cmd.client_msg_id) : null;
      const first = clientKey ? byClientId.get(clientKey) : undefined;
      if (first) {
        const result = { ...first, created: false };
        outcomes.push({ reply: { ok: true, result }, events: [] });
        rows.commandLog.push({ request_id: env.requestId, result, created_at: at });
        done.set(env.requestId, result);
        continue;
      }
      const content = sanitizeContent(cmd.content);
      if (!hasVisibleText(content) && cmd.attachments.length === 0) throw invalidInput('content is required');
      if (cmd.reply_to != null && !replyTargets.has(pairKey(d.id, cmd.reply_to))) throw invalidInput('reply_to message not found in this dialog');
      const reused = cmd.attachments.find((a) => usedKeys.has(a.s3_key));
      if (reused) throw invalidInput(`Invalid S3 key: already attached to another message: ${reused.s3_key}`);

      const events: DomainEvent[] = [];
      if (st.archived.has(d.id) && !unarchive.has(d.id)) {
        unarchive.add(d.id);
        events.push({ dialogId: d.id, toParticipants: true, event: { type: 'dialog.unarchived', dialog_id: d.id } });
      }
      const id = newId();
      d.last_seq += 1;
      d.user_msg_count += 1;
      touched.add(d.id);
      const seq = d.last_seq;
      const message = {
        id, dialog_id: d.id, sender_id: cmd.user_id, content, sent_at: at, last_edited_at: null,
        reply_to_id: cmd.reply_to ?? null, message_type: 'user' as const, seq, client_msg_id: cmd.client_msg_id ?? null,
      };
      const attachments = cmd.attachments.map((a) => ({
        id: newId(), message_id: id, filename: a.filename, content_type: a.content_type, size: a.size, s3_key: a.s3_key,
        created_at: at, width: null, height: null, thumbnail_s3_key: null,
      }));
      const wire = messageNewEvent({ ...message, sent_at: now }, {
        reply_to_id: cmd.reply_to ?? undefined,
        attachments: attachments.map((a) => ({ id: a.id, filename: a.filename, content_type: a.content_type, size: a.size })),
      });
      events.push({ dialogId: d.id, seq, toParticipants: true, event: wire });

      const result = { message, attachments, created: true };
      rows.messages.push(message);
      rows.attachments.push(...attachments);
      rows.events.push({ dialog_id: d.id, seq, payload: wire, created_at: at });
      rows.commandLog.push({ request_id: env.requestId, result, created_at: at });
      senders.set(pairKey(d.id, cmd.user_id), { dialog_id: d.id, user_id: cmd.user_id, read_mark: d.user_msg_count, message_id: id });
      if (opts.persistOutbox) {
        const drafts = sentMessageOutbox(d, { id, sender_id: cmd.user_id, content, reply_to_id: cmd.reply_to ?? null, sent_at: now, seq });
        for (const o of drafts) rows.outbox.push({ id: newId(), kind: o.kind, dialog_id: o.dialogId, payload: o.payload, created_at: at });
      }
      replyTargets.add(pairKey(d.id, id));
      for (const a of cmd.attachments) usedKeys.add(a.s3_key);
      if (clientKey) byClientId.set(clientKey, result);
      done.set(env.requestId, result);
      outcomes.push({ reply: { ok: true, result }, events });
    } catch (e) {
      outcomes.push({ reply: errorReply(e, log, env.requestId), events: [] });
    }
  }
  for (const id of touched) {
    const d = dialogs.get(id)!;
    rows.dialogs.push({ id, last_seq: d.last_seq, user_msg_count: d.user_msg_count });
  }
  rows.senders.push(...senders.values());
  return { rows, outcomes, unarchive: [...unarchive] };
}

/** The dialog ids a batch locks: only well-formed ones (they are inlined into the BEGIN script). */
function cmdsToRun(envs: CommandEnvelope[]): SendCmd[] {
  // Ids that are no UUID, and text PostgreSQL cannot hold (NUL), name nothing: they fail their
  // check in `plan` instead of failing the statement for the whole batch.
  return envs.map((e) => e.cmd as SendCmd).filter((c) => isUuid(c.dialog_id) && storable(c.user_id));
}

async function runSends(tx: RawTx, locked: Row[], envs: CommandEnvelope[], cmds: SendCmd[], opts: BatchOptions, log: Logger): Promise<Outcome[]> {
  const dialogs = lockedDialogs(locked);
  const state = await loadSendState(tx, {
    requestIds: envs.map((e) => e.requestId).filter(storable),
    senders: cmds.map((c) => [c.dialog_id, c.user_id]),
    dialogIds: [...dialogs.keys()],
    clientMsgIds: cmds.filter((c) => c.client_msg_id != null && storable(c.client_msg_id)).map((c) => [c.dialog_id, c.user_id, c.client_msg_id!]),
    replyTo: cmds.flatMap((c) => (c.reply_to != null && isUuid(c.reply_to) ? [c.reply_to] : [])),
    s3Keys: cmds.flatMap((c) => c.attachments.map((a) => a.s3_key)).filter(storable),
  });
  const p = plan(envs, dialogs, state, opts, new Date(), log);
  if (p.unarchive.length > 0) await unarchiveDialogs(tx, p.unarchive);
  // Nothing to write still ends the transaction (and releases the locks) in one round trip.
  if (p.rows.commandLog.length > 0) await writeSendsAndCommit(tx, p.rows);
  else await tx.script('COMMIT');
  return p.outcomes;
}
const storable = (s: string): boolean => !s.includes('\0');
const isUuid = (s: string): boolean => parseUuid(s) === s;

/**
 * Executes sends in order in one transaction. A failure of the transaction itself (not of a
 * command's checks) rejects, and the caller re-runs each command alone.
 */
export async function executeSends(orm: Orm, envs: CommandEnvelope[], opts: BatchOptions, log: Logger): Promise<BatchOutcome> {
  try {
    const cmds = cmdsToRun(envs);
    const ids = [...new Set(cmds.map((c) => c.dialog_id))];
    const outcomes = await rawTransaction(orm, lockDialogsSql(ids), (tx, locked) => runSends(tx, locked, envs, cmds, opts, log));
    return { replies: outcomes.map((o) => o.reply), events: outcomes.map((o) => o.events) };
  } catch (e) {
    if (envs.length > 1) throw e;
    // Another owner (one that lost its lease without knowing) committed the same request first.
    if (isCommandLogConflict(e)) {
      const [prior] = await rawQuery(orm, 'SELECT result FROM command_log WHERE request_id = $1', [envs[0].requestId]);
      if (prior) return { replies: [{ ok: true, result: prior.result }], events: [[]] };
    }
    return { replies: [errorReply(e, log, envs[0].requestId)], events: [[]] };
  }
}
