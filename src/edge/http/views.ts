// Wire shapes of the REST API (spec: management-api.md "Shapes", chat-api.md "Shared shapes").
// Key presence rules (always / null / omitted) are part of the contract.
import type { AccessScope, Dialog, Participant } from '../../db/entities.js';
import type { DialogRow } from '../../db/queries/dialogs.js';
import type { AttachmentRow, MessageRow, ParticipantRow } from '../../db/queries/messages.js';
import { participantVisibility } from '../../domain/access.js';
import { formatTime, formatTimeOrNull } from '../../domain/time.js';

type Obj = Record<string, unknown>;

type DialogFields = Pick<Dialog, 'id' | 'object_id' | 'object_type' | 'title' | 'object_url' | 'created_by' | 'meta'> & { created_at: Date | string };

export function dialogView(d: DialogFields): Obj {
  const v: Obj = {
    id: d.id, object_id: d.object_id, object_type: d.object_type, title: d.title, object_url: d.object_url,
    created_by: d.created_by, created_at: formatTime(d.created_at),
  };
  if (d.meta !== null && d.meta !== undefined) v.meta = d.meta;
  return v;
}

export function participantView(p: Participant | ParticipantRow, unread: number): Obj {
  return {
    dialog_id: p.dialog_id, user_id: p.user_id, joined_at: formatTime(p.joined_at), joined_as: p.joined_as,
    notifications_enabled: p.notifications_enabled, last_read_message_id: p.last_read_message_id, unread_count: unread,
    display_name: p.display_name, company: p.company, email: p.email, phone: p.phone,
    is_archived: p.is_archived, is_pinned: p.is_pinned,
  };
}

export function scopeView(s: AccessScope): Obj {
  return {
    id: s.id, dialog_id: s.dialog_id, scope_level0: s.scope_level0, scope_level1: s.scope_level1,
    scope_level2: s.scope_level2, created_at: formatTime(s.created_at),
  };
}

const summaries = (r: DialogRow) =>
  r.participants.map((p) => {
    const s: Obj = { user_id: p.user_id };
    if (p.display_name !== null) s.display_name = p.display_name;
    if (p.company !== null) s.company = p.company;
    return s;
  });

function lastMessageView(r: DialogRow): Obj | undefined {
  const m = r.last_message;
  if (!m) return undefined;
  const v: Obj = { id: m.id, content: m.content };
  if (m.message_type !== 'system' && m.sender_id !== null) {
    v.sender_id = m.sender_id;
    if (m.sender_name !== null) v.sender_name = m.sender_name;
  }
  v.sent_at = formatTime(m.sent_at);
  v.message_type = m.message_type;
  return v;
}

export interface ListItemOptions {
  canJoin: boolean;
  /** Per-user keys (unread_count, is_archived, …) for participants; get-by-object leaves them out. */
  perUser: boolean;
}

/** Dialog list item: list dialogs, get by object, list by object. */
export function listItemView(r: DialogRow, o: ListItemOptions): Obj {
  const v = dialogView(r);
  v.participants_count = r.participants_count;
  v.i_am_participant = r.me !== null;
  v.can_join = o.canJoin;
  if (r.me && o.perUser) {
    v.unread_count = r.me.unread_count;
    v.is_archived = r.me.is_archived;
    v.is_pinned = r.me.is_pinned;
    v.notifications_enabled = r.me.notifications_enabled;
  }
  if (r.last_message) v.last_message_at = formatTime(r.last_message.sent_at);
  // Content is never shown before joining.
  if (r.me && r.last_message) v.last_message = lastMessageView(r);
  if (r.participants.length > 0) v.participants = summaries(r);
  return v;
}

/** Chat get-dialog: no per-user keys, no last message; participants only for participants. */
export function chatDialogView(r: DialogRow): Obj {
  const v = dialogView(r);
  v.i_am_participant = r.me !== null;
  v.can_join = r.me === null && r.scope_match;
  if (r.me) {
    v.participants_count = r.participants_count;
    if (r.participants.length > 0) v.participants = summaries(r);
  }
  return v;
}

export function messageView(m: MessageRow | (Omit<MessageRow, 'seq'> & { seq?: number | null })): Obj {
  return {
    id: m.id, dialog_id: m.dialog_id, sender_id: m.sender_id, content: m.content, sent_at: formatTime(m.sent_at),
    last_edited_at: formatTimeOrNull(m.last_edited_at), reply_to_id: m.reply_to_id, message_type: m.message_type,
  };
}

export type UrlSigner = (key: string) => string;

export function attachmentView(a: Pick<AttachmentRow, 'id' | 'filename' | 'content_type' | 'size' | 's3_key' | 'width' | 'height' | 'thumbnail_s3_key'>, sign: UrlSigner): Obj {
  const v: Obj = { id: a.id, filename: a.filename, content_type: a.content_type, size: Number(a.size), url: sign(a.s3_key) };
  if (a.width !== null) v.width = a.width;
  if (a.height !== null) v.height = a.height;
  if (a.thumbnail_s3_key !== null) v.thumbnail_url = sign(a.thumbnail_s3_key);
  return v;
}

/** `attachments` is omitted, not [], for a message without any. */
export function messageWithAttachmentsView(m: MessageRow, atts: Parameters<typeof attachmentView>[0][], sign: UrlSigner): Obj {
  const v = messageView(m);
  if (atts.length > 0) v.attachments = atts.map((a) => attachmentView(a, sign));
  return v;
}

/** Participants list with the visibility rules applied row by row. */
export function participantListView(rows: ParticipantRow[], callerId: string, callerIsMember: boolean, online: Set<string>): Obj[] {
  return rows.map((p) => {
    const vis = participantVisibility(callerIsMember, p.user_id === callerId);
    const v = participantView(p, vis.settings ? p.unread_count : 0);
    if (!vis.settings) {
      v.is_archived = false;
      v.is_pinned = false;
      v.notifications_enabled = true;
    }
    if (!vis.contact) {
      v.email = null;
      v.phone = null;
    }
    if (!vis.readPointer) v.last_read_message_id = null;
    v.is_online = online.has(p.user_id);
    return v;
  });
}
