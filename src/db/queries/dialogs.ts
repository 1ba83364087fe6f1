// Read side of dialogs. Every function runs a fixed number of statements whatever the page size.
import type { Em } from '../orm.js';
import type { Dialog } from '../entities.js';
import type { ScopeLevels } from '../../domain/scope.js';
import { HAS_NO_SCOPES, SCOPE_MATCH, SEARCH_MATCH, UUID_IN, json, likePattern, query, userScopeCte, type Row } from './sql.js';

export interface DialogRow extends Pick<Dialog, 'id' | 'object_id' | 'object_type' | 'title' | 'object_url' | 'created_by' | 'meta'> {
  created_at: Date | string;
  participants_count: number;
  participants: { user_id: string; display_name: string | null; company: string | null }[];
  /** The caller's own row, when a participant. */
  me: { unread_count: number; is_archived: boolean; is_pinned: boolean; notifications_enabled: boolean } | null;
  last_message: { id: string; content: string; sender_id: string | null; sender_name: string | null; sent_at: Date | string; message_type: 'user' | 'system' } | null;
  /** Whether the caller's scope reaches the dialog (false when no scope was given). */
  scope_match: boolean;
}

/** Loads everything a dialog list item needs for the given ids, in one statement, in the given order. */
export async function hydrateDialogs(em: Em, ids: string[], userId: string, scope: ScopeLevels | null): Promise<DialogRow[]> {
  if (ids.length === 0) return [];
  const [cte, cteParams] = userScopeCte(scope ?? { scope_level0: [], scope_level1: [], scope_level2: [] });
  const rows = await query(em, `
    WITH ${cte}
    SELECT d.id, d.object_id, d.object_type, d.title, d.object_url, d.created_by, d.created_at, d.meta,
      pc.cnt AS participants_count, pc.list AS participants,
      me.user_id IS NOT NULL AS is_member,
      (me.unread_count + (d.user_msg_count - me.read_mark))::int AS me_unread,
      me.is_archived AS me_archived, me.is_pinned AS me_pinned, me.notifications_enabled AS me_notifications,
      lm.id AS lm_id, lm.content AS lm_content, lm.sender_id AS lm_sender_id, lm.sent_at AS lm_sent_at,
      lm.message_type AS lm_type, sp.display_name AS lm_sender_name,
      (?::boolean AND ${SCOPE_MATCH}) AS scope_match
    FROM dialogs d
    CROSS JOIN us
    LEFT JOIN dialog_participants me ON me.dialog_id = d.id AND me.user_id = ?
    LEFT JOIN LATERAL (
      SELECT count(*)::int AS cnt,
        json_agg(json_build_object('user_id', p.user_id, 'display_name', p.display_name, 'company', p.company)
                 ORDER BY p.joined_at, p.user_id) AS list
      FROM dialog_participants p WHERE p.dialog_id = d.id) pc ON true
    LEFT JOIN LATERAL (
      SELECT m.id, m.content, m.sender_id, m.sent_at, m.message_type FROM messages m
      WHERE m.dialog_id = d.id ORDER BY m.id DESC LIMIT 1) lm ON true
    LEFT JOIN dialog_participants sp ON sp.dialog_id = d.id AND sp.user_id = lm.sender_id
    WHERE d.id ${UUID_IN}`,
  [...cteParams, scope !== null, userId, json(ids)]);
  const byId = new Map(rows.map((r) => [r.id as string, toDialogRow(r)]));
  return ids.map((id) => byId.get(id)).filter((r): r is DialogRow => r !== undefined);
}

function toDialogRow(r: Row): DialogRow {
  return {
    id: r.id, object_id: r.object_id, object_type: r.object_type, title: r.title, object_url: r.object_url,
    created_by: r.created_by, created_at: r.created_at, meta: r.meta,
    participants_count: r.participants_count ?? 0,
    participants: r.participants ?? [],
    me: r.is_member
      ? { unread_count: r.me_unread, is_archived: r.me_archived, is_pinned: r.me_pinned, notifications_enabled: r.me_notifications }
      : null,
    last_message: r.lm_id
      ? { id: r.lm_id, content: r.lm_content, sender_id: r.lm_sender_id, sender_name: r.lm_sender_name, sent_at: r.lm_sent_at, message_type: r.lm_type }
      : null,
    scope_match: r.scope_match === true,
  };
}

export interface ListFilter {
  userId: string;
  scope: ScopeLevels | null;
  search: string | null;
  archived: boolean | null;
}

function searchClause(search: string | null): [string, unknown[]] {
  if (search === null) return ['', []];
  const p = likePattern(search);
  return [` AND ${SEARCH_MATCH}`, [p, p]];
}

/** Dialogs the caller participates in; with a scope, those of other tenants are left out. */
function participatingSql(f: ListFilter): [string, unknown[]] {
  const params: unknown[] = [f.userId];
  let where = 'TRUE';
  if (f.archived !== null) {
    where += ' AND p.is_archived = ?';
    params.push(f.archived);
  }
  if (f.scope) where += ` AND (${HAS_NO_SCOPES} OR ${SCOPE_MATCH})`;
  const [s, sp] = searchClause(f.search);
  // The membership row's copy of the dialog's order (dialog_created_at, dialog_id) lets the page be
  // read in index order (idx_participants_user_dialog_order) instead of sorting every membership.
  return [`SELECT p.dialog_id AS id, p.dialog_created_at AS created_at FROM dialogs d CROSS JOIN us
    JOIN dialog_participants p ON p.dialog_id = d.id AND p.user_id = ? WHERE ${where}${s}`, [...params, ...sp]];
}

/** Dialogs the caller may join: reachable by scope and not already a participant. */
function availableSql(f: ListFilter): [string, unknown[]] {
  const [s, sp] = searchClause(f.search);
  return [`SELECT d.id, d.created_at FROM dialogs d CROSS JOIN us WHERE ${SCOPE_MATCH}
    AND NOT EXISTS (SELECT 1 FROM dialog_participants px WHERE px.dialog_id = d.id AND px.user_id = ?)${s}`, [f.userId, ...sp]];
}

export async function pageDialogIds(em: Em, type: 'participating' | 'available', f: ListFilter, limit: number, offset: number): Promise<string[]> {
  const [cte, cteParams] = userScopeCte(f.scope ?? { scope_level0: [], scope_level1: [], scope_level2: [] });
  const [sql, params] = type === 'participating' ? participatingSql(f) : availableSql(f);
  const order = type === 'participating' ? 'p.dialog_created_at DESC, p.dialog_id DESC' : 'd.created_at DESC, d.id DESC';
  const rows = await query(em, `WITH ${cte} ${sql} ORDER BY ${order} LIMIT ? OFFSET ?`, [...cteParams, ...params, limit, offset]);
  return rows.map((r) => r.id);
}

/** By-object list: both branches (or one), newest first, bounded. */
export async function objectDialogIds(
  em: Em, objectType: string, objectId: string, branches: { participating: boolean; available: boolean }, f: ListFilter, max: number,
): Promise<string[]> {
  const [cte, cteParams] = userScopeCte(f.scope ?? { scope_level0: [], scope_level1: [], scope_level2: [] });
  const parts: string[] = [];
  const params: unknown[] = [...cteParams];
  const obj = ' AND d.object_type = ? AND d.object_id = ?';
  if (branches.participating) {
    const [sql, p] = participatingSql(f);
    parts.push(sql + obj);
    params.push(...p, objectType, objectId);
  }
  if (branches.available && f.scope) {
    const [sql, p] = availableSql(f);
    parts.push(sql + obj);
    params.push(...p, objectType, objectId);
  }
  if (parts.length === 0) return [];
  const rows = await query(em, `WITH ${cte} SELECT id FROM (${parts.join(' UNION ')}) x ORDER BY created_at DESC, id DESC LIMIT ?`, [...params, max]);
  return rows.map((r) => r.id);
}

/** Newest dialog of an object the caller can access (see chat-api.md, get dialog by object). */
export async function newestAccessibleByObject(em: Em, objectType: string, objectId: string, f: ListFilter): Promise<string | null> {
  const [cte, cteParams] = userScopeCte(f.scope ?? { scope_level0: [], scope_level1: [], scope_level2: [] });
  const memberOk = f.scope ? `(${HAS_NO_SCOPES} OR ${SCOPE_MATCH})` : 'TRUE';
  const scopeOk = f.scope ? SCOPE_MATCH : 'FALSE';
  const rows = await query(em, `WITH ${cte}
    SELECT d.id FROM dialogs d CROSS JOIN us
    LEFT JOIN dialog_participants me ON me.dialog_id = d.id AND me.user_id = ?
    WHERE d.object_type = ? AND d.object_id = ?
      AND ((me.user_id IS NOT NULL AND ${memberOk}) OR ${scopeOk})
    ORDER BY d.created_at DESC, d.id DESC LIMIT 1`, [...cteParams, f.userId, objectType, objectId]);
  return rows[0]?.id ?? null;
}
