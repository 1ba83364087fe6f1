// The statements of a batch of sends (the hot path): three round trips per batch whatever its
// size — BEGIN + lock, read, write + COMMIT (and an unarchive when needed) — where the ORM took a
// dozen per message.
import { commitWith, jsonLiteral, type RawTx, type Row } from '../raw.js';

const json = (v: unknown): string => JSON.stringify(v);
const uuids = (p: string) => `ARRAY(SELECT (jsonb_array_elements_text(${p}::jsonb))::uuid)`;
const texts = (p: string) => `ARRAY(SELECT jsonb_array_elements_text(${p}::jsonb))`;

export interface LockedDialog {
  id: string;
  object_id: string;
  object_type: string;
  last_seq: number;
  user_msg_count: number;
}

/** Row-locks the dialogs in id order (so two batches can never deadlock on them); sent with BEGIN. */
export const lockDialogsSql = (ids: string[]): string =>
  `SELECT id, object_id, object_type, last_seq, user_msg_count FROM dialogs WHERE id = ANY(${uuids(jsonLiteral(ids))}) ORDER BY id FOR UPDATE`;

export const lockedDialogs = (rows: Row[]): Map<string, LockedDialog> =>
  new Map(rows.map((r) => [r.id as string, { ...(r as LockedDialog), last_seq: Number(r.last_seq), user_msg_count: Number(r.user_msg_count) }]));

export interface SendLookups {
  requestIds: string[];
  /** [dialog_id, user_id] of each sender. */
  senders: [string, string][];
  dialogIds: string[];
  /** [dialog_id, sender_id, client_msg_id] of each send that carries one. */
  clientMsgIds: [string, string, string][];
  replyTo: string[];
  s3Keys: string[];
}

export interface SendState {
  /** Stored results of commands already executed, by request id. */
  priors: Record<string, unknown>;
  /** `dialog_id user_id` of the senders who are participants. */
  senders: Set<string>;
  /** Dialogs with at least one participant who archived them. */
  archived: Set<string>;
  /** Earlier messages with a matching client_msg_id, with their attachments (JSON of the rows). */
  dupes: Row[];
  /** `dialog_id message_id` of existing reply targets. */
  replyTargets: Set<string>;
  usedKeys: Set<string>;
}

export const pairKey = (a: string, b: string): string => `${a} ${b}`;

/** Everything a batch's checks need, read in one statement after the dialogs are locked. */
export async function loadSendState(tx: RawTx, l: SendLookups): Promise<SendState> {
  const [r] = await tx.query(
    `SELECT
      (SELECT coalesce(jsonb_object_agg(request_id, result), '{}') FROM command_log WHERE request_id = ANY(${texts('$1')})) AS priors,
      (SELECT coalesce(jsonb_agg(jsonb_build_array(p.dialog_id, p.user_id)), '[]') FROM dialog_participants p
         JOIN jsonb_array_elements($2::jsonb) x ON p.dialog_id = (x->>0)::uuid AND p.user_id = x->>1) AS senders,
      (SELECT coalesce(jsonb_agg(DISTINCT dialog_id), '[]') FROM dialog_participants WHERE dialog_id = ANY(${uuids('$3')}) AND is_archived) AS archived,
      (SELECT coalesce(jsonb_agg(to_jsonb(m) || jsonb_build_object('attachments',
          (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.created_at, a.id), '[]') FROM attachments a WHERE a.message_id = m.id))), '[]')
         FROM messages m JOIN jsonb_array_elements($4::jsonb) x
           ON m.dialog_id = (x->>0)::uuid AND m.sender_id = x->>1 AND m.client_msg_id = x->>2) AS dupes,
      (SELECT coalesce(jsonb_agg(jsonb_build_array(dialog_id, id)), '[]') FROM messages WHERE id = ANY(${uuids('$5')})) AS replies,
      (SELECT coalesce(jsonb_agg(s3_key), '[]') FROM attachments WHERE s3_key = ANY(${texts('$6')})) AS used`,
    [json(l.requestIds), json(l.senders), json(l.dialogIds), json(l.clientMsgIds), json(l.replyTo), json(l.s3Keys)],
  );
  return {
    priors: r.priors as Record<string, unknown>,
    senders: new Set((r.senders as [string, string][]).map(([d, u]) => pairKey(d, u))),
    archived: new Set(r.archived as string[]),
    dupes: r.dupes as Row[],
    replyTargets: new Set((r.replies as [string, string][]).map(([d, m]) => pairKey(d, m))),
    usedKeys: new Set(r.used as string[]),
  };
}

/** A new user message brings its dialog back for everyone who had archived it. */
export async function unarchiveDialogs(tx: RawTx, ids: string[]): Promise<void> {
  await tx.query(`UPDATE dialog_participants SET is_archived = false WHERE dialog_id = ANY(${uuids('$1')}) AND is_archived`, [json(ids)]);
}

export interface SendRows {
  messages: { id: string; dialog_id: string; sender_id: string; content: string; sent_at: string; reply_to_id: string | null; seq: number; client_msg_id: string | null }[];
  attachments: { id: string; message_id: string; filename: string; content_type: string; size: number; s3_key: string; created_at: string }[];
  events: { dialog_id: string; seq: number; payload: unknown; created_at: string }[];
  commandLog: { request_id: string; result: unknown; created_at: string }[];
  outbox: { id: string; kind: string; dialog_id: string; payload: unknown; created_at: string }[];
  /** Each dialog's counters after the batch. */
  dialogs: { id: string; last_seq: number; user_msg_count: number }[];
  /** Each sender's read state after the batch (one row per dialog × sender). */
  senders: { dialog_id: string; user_id: string; read_mark: number; message_id: string }[];
}

/** Every row of the batch in one statement, and the commit, in one round trip. */
export async function writeSendsAndCommit(tx: RawTx, w: SendRows): Promise<void> {
  const [m, a, e, c, o, d, p] = [w.messages, w.attachments, w.events, w.commandLog, w.outbox, w.dialogs, w.senders].map(jsonLiteral);
  await tx.script(commitWith(
    `WITH m AS (
       INSERT INTO messages (id, dialog_id, sender_id, content, sent_at, last_edited_at, reply_to_id, message_type, seq, client_msg_id)
       SELECT id, dialog_id, sender_id, content, sent_at, NULL, reply_to_id, 'user', seq, client_msg_id
       FROM jsonb_to_recordset(${m}) AS x(id uuid, dialog_id uuid, sender_id text, content text, sent_at timestamptz, reply_to_id uuid, seq bigint, client_msg_id text)
     ), a AS (
       INSERT INTO attachments (id, message_id, filename, content_type, size, s3_key, created_at)
       SELECT id, message_id, filename, content_type, size, s3_key, created_at
       FROM jsonb_to_recordset(${a}) AS x(id uuid, message_id uuid, filename text, content_type text, size bigint, s3_key text, created_at timestamptz)
     ), e AS (
       INSERT INTO dialog_events (dialog_id, seq, payload, created_at)
       SELECT dialog_id, seq, payload, created_at FROM jsonb_to_recordset(${e}) AS x(dialog_id uuid, seq bigint, payload jsonb, created_at timestamptz)
     ), c AS (
       INSERT INTO command_log (request_id, result, created_at)
       SELECT request_id, result, created_at FROM jsonb_to_recordset(${c}) AS x(request_id text, result jsonb, created_at timestamptz)
     ), o AS (
       INSERT INTO outbox (id, kind, dialog_id, payload, created_at)
       SELECT id, kind, dialog_id, payload, created_at FROM jsonb_to_recordset(${o}) AS x(id uuid, kind text, dialog_id uuid, payload jsonb, created_at timestamptz)
     ), d AS (
       UPDATE dialogs SET last_seq = x.last_seq, user_msg_count = x.user_msg_count
       FROM jsonb_to_recordset(${d}) AS x(id uuid, last_seq bigint, user_msg_count bigint) WHERE dialogs.id = x.id
     )
     UPDATE dialog_participants p SET unread_count = 0, read_mark = x.read_mark, last_read_message_id = x.message_id
     FROM jsonb_to_recordset(${p}) AS x(dialog_id uuid, user_id text, read_mark bigint, message_id uuid)
     WHERE p.dialog_id = x.dialog_id AND p.user_id = x.user_id`,
  ));
}
