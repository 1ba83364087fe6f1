import { LockMode } from '@mikro-orm/core';
import type { Em } from '../../db/orm.js';
import { DialogSchema, ParticipantSchema, type Dialog, type Message, type Participant } from '../../db/entities.js';
import { dialogNotFound } from '../../domain/errors.js';
import type { DomainEvent, MessageNewEvent, WireEvent } from '../../domain/events.js';
import { formatTime } from '../../domain/time.js';

/**
 * Loads and row-locks the dialog. Every command that assigns sequence numbers or changes
 * membership takes this lock first, so commands on one dialog are serialised by PostgreSQL
 * and sequence numbers come from the row, never from memory.
 */
export async function lockDialog(em: Em, dialogId: string): Promise<Dialog | null> {
  return em.findOne(DialogSchema, { id: dialogId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
}
export async function lockDialogOr404(em: Em, dialogId: string): Promise<Dialog> {
  const d = await lockDialog(em, dialogId);
  if (!d) throw dialogNotFound();
  return d;
}

export function findParticipant(em: Em, dialogId: string, userId: string): Promise<Participant | null> {
  return em.findOne(ParticipantSchema, { dialog_id: dialogId, user_id: userId });
}

/** Takes the dialog's next sequence number (the row is locked and flushed with the unit of work). */
export function nextSeq(d: Dialog): number {
  d.last_seq = Number(d.last_seq) + 1;
  return d.last_seq;
}

/** An event every current participant receives, numbered in the dialog's sequence. */
export function dialogEvent(d: Dialog, event: WireEvent, alsoUsers?: string[]): DomainEvent {
  return { dialogId: d.id, seq: nextSeq(d), toParticipants: true, toUsers: alsoUsers, event };
}

export function messageNewEvent(m: Pick<Message, 'id' | 'dialog_id' | 'content' | 'sent_at' | 'message_type' | 'sender_id'>, extra: Pick<MessageNewEvent, 'reply_to_id' | 'attachments'> = {}): MessageNewEvent {
  const e: MessageNewEvent = {
    type: 'message.new',
    id: m.id,
    dialog_id: m.dialog_id,
    content: m.content,
    sent_at: formatTime(m.sent_at),
    message_type: m.message_type,
  };
  if (m.sender_id !== null) e.sender_id = m.sender_id;
  if (extra.reply_to_id) e.reply_to_id = extra.reply_to_id;
  if (extra.attachments?.length) e.attachments = extra.attachments;
  return e;
}

/** The unread count a client sees, from the stored base and the dialog's user-message clock. */
export const unreadOf = (p: Pick<Participant, 'unread_count' | 'read_mark'>, d: Pick<Dialog, 'user_msg_count'>): number =>
  Number(p.unread_count) + (Number(d.user_msg_count) - Number(p.read_mark));

export const dialogRef = (d: Pick<Dialog, 'id' | 'object_id' | 'object_type'>) => ({ dialog_id: d.id, object_id: d.object_id, object_type: d.object_type });
