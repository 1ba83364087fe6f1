// Read side of messages and participants.
import type { Em } from '../orm.js';
import type { Attachment, Message, Participant } from '../entities.js';
import type { ScopeLevels } from '../../domain/scope.js';
import { SCOPE_MATCH, UUID_IN, json, query, userScopeCte, type Row } from './sql.js';

/** A message as raw SQL returns it: timestamps may be PostgreSQL text. */
export type MessageRow = Omit<Message, 'client_msg_id' | 'sent_at' | 'last_edited_at'> & {
  sent_at: Date | string;
  last_edited_at: Date | string | null;
};
/** An attachment as the read side needs it. */
export type AttachmentRow = Omit<Attachment, 'created_at'>;

const MSG_COLS = 'm.id, m.dialog_id, m.sender_id, m.content, m.sent_at, m.last_edited_at, m.reply_to_id, m.message_type, m.seq::float8 AS seq';

/** The caller's membership with the sent_at of their read pointer (null when unknown). */
export async function readerState(em: Em, dialogId: string, userId: string): Promise<{ last_read_message_id: string | null; read_sent_at: Date | null } | null> {
  const rows = await query(em, `SELECT p.last_read_message_id, lr.sent_at AS read_sent_at FROM dialog_participants p
    LEFT JOIN messages lr ON lr.id = p.last_read_message_id WHERE p.dialog_id = ? AND p.user_id = ?`, [dialogId, userId]);
  return (rows[0] as { last_read_message_id: string | null; read_sent_at: Date | null } | undefined) ?? null;
}

export type PageMode = { kind: 'latest' } | { kind: 'before'; id: string } | { kind: 'after'; id: string } | { kind: 'around'; id: string };

/** One statement per page; around mode fetches both halves with UNION ALL. Returned ascending. */
export async function messagePage(em: Em, dialogId: string, mode: PageMode, limit: number): Promise<{ rows: MessageRow[]; before: number; from: number }> {
  if (mode.kind === 'around') {
    const h = Math.floor(limit / 2);
    const rows = await query(em, `
      (SELECT ${MSG_COLS}, 'b' AS side FROM messages m WHERE m.dialog_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?)
      UNION ALL
      (SELECT ${MSG_COLS}, 'f' AS side FROM messages m WHERE m.dialog_id = ? AND m.id >= ? ORDER BY m.id ASC LIMIT ?)`,
    [dialogId, mode.id, h, dialogId, mode.id, h + 1]);
    const sorted = rows.sort((a, b) => (a.id < b.id ? -1 : 1)) as (MessageRow & { side: string })[];
    return {
      rows: sorted.map(({ side: _side, ...m }) => m),
      before: sorted.filter((r) => r.side === 'b').length,
      from: sorted.filter((r) => r.side === 'f').length,
    };
  }
  let sql: string;
  const params: unknown[] = [dialogId];
  if (mode.kind === 'after') {
    sql = `SELECT ${MSG_COLS} FROM messages m WHERE m.dialog_id = ? AND m.id > ? ORDER BY m.id ASC LIMIT ?`;
    params.push(mode.id, limit);
  } else if (mode.kind === 'before') {
    sql = `SELECT ${MSG_COLS} FROM messages m WHERE m.dialog_id = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?`;
    params.push(mode.id, limit);
  } else {
    sql = `SELECT ${MSG_COLS} FROM messages m WHERE m.dialog_id = ? ORDER BY m.id DESC LIMIT ?`;
    params.push(limit);
  }
  const rows = (await query(em, sql, params)) as MessageRow[];
  if (mode.kind !== 'after') rows.reverse();
  return { rows, before: rows.length, from: rows.length };
}

export async function attachmentsOf(em: Em, messageIds: string[]): Promise<AttachmentRow[]> {
  if (messageIds.length === 0) return [];
  return (await query(em, `SELECT a.id, a.message_id, a.filename, a.content_type, a.size::float8 AS size, a.s3_key, a.width, a.height,
      a.thumbnail_s3_key FROM attachments a WHERE a.message_id ${UUID_IN} ORDER BY a.created_at, a.id`, [json(messageIds)])) as AttachmentRow[];
}

export async function messageInDialog(em: Em, dialogId: string, messageId: string): Promise<MessageRow | null> {
  const rows = await query(em, `SELECT ${MSG_COLS} FROM messages m WHERE m.dialog_id = ? AND m.id = ?`, [dialogId, messageId]);
  return (rows[0] as MessageRow | undefined) ?? null;
}

/** A participant row as a reader sees it: `unread_count` is the derived count, timestamps raw. */
export type ParticipantRow = Omit<Participant, 'read_mark' | 'joined_at'> & { joined_at: Date | string };

/** Whether the dialog exists, whether the caller is in it, whether their scope reaches it: one statement. */
export async function dialogAccess(em: Em, dialogId: string, userId: string, scope: ScopeLevels | null): Promise<{ exists: boolean; member: boolean; scopeMatch: boolean }> {
  const [cte, cteParams] = userScopeCte(scope ?? { scope_level0: [], scope_level1: [], scope_level2: [] });
  const rows = await query(em, `WITH ${cte} SELECT
      EXISTS (SELECT 1 FROM dialog_participants p WHERE p.dialog_id = d.id AND p.user_id = ?) AS member,
      (?::boolean AND ${SCOPE_MATCH}) AS scope_match
    FROM dialogs d CROSS JOIN us WHERE d.id = ?`, [...cteParams, userId, scope !== null, dialogId]);
  const r = rows[0] as Row | undefined;
  return { exists: !!r, member: r?.member === true, scopeMatch: r?.scope_match === true };
}

export async function participantsOf(em: Em, dialogId: string): Promise<ParticipantRow[]> {
  return (await query(em, `SELECT p.user_id, p.dialog_id, p.joined_at, p.joined_as, p.notifications_enabled, p.last_read_message_id,
      (p.unread_count + (d.user_msg_count - p.read_mark))::int AS unread_count, p.display_name, p.company, p.email, p.phone,
      p.is_archived, p.is_pinned
    FROM dialog_participants p JOIN dialogs d ON d.id = p.dialog_id
    WHERE p.dialog_id = ? ORDER BY p.joined_at, p.user_id`, [dialogId])) as ParticipantRow[];
}
