// Chat API message commands: send, edit, delete.
import { AttachmentSchema, MessageEditSchema, MessageSchema, type Attachment, type Dialog, type Message } from '../../db/entities.js';
import { AppError, invalidInput, messageNotFound, mustJoinFirst } from '../../domain/errors.js';
import { checkAttachments, type AttachmentInput } from '../../domain/attachments.js';
import type { DomainEvent, OutboxDraft } from '../../domain/events.js';
import { newId } from '../../domain/ids.js';
import { checkContentLength, checkMaxLength, checkNoNul } from '../../domain/limits.js';
import { hasVisibleText, sanitizeContent } from '../../domain/sanitize.js';
import { formatTime } from '../../domain/time.js';
import { output, type CommandHandler } from '../command.js';
import { dialogEvent, dialogRef, findParticipant, lockDialog, lockDialogOr404, messageNewEvent } from './common.js';

export interface SendCmd {
  dialog_id: string;
  user_id: string;
  content: string;
  reply_to?: string | null;
  attachments: AttachmentInput[];
  /** Idempotency key: a retried send with the same key returns the first result. */
  client_msg_id?: string | null;
}

export interface SentMessage {
  message: Message;
  attachments: Attachment[];
  /** False when an earlier send with the same client_msg_id is answered again. */
  created: boolean;
}

/** Pure checks of a send that need no stored state; run before any row is locked. */
export function checkSendInput(cmd: Pick<SendCmd, 'content' | 'attachments' | 'client_msg_id' | 'dialog_id'>): void {
  checkAttachments(cmd.attachments, cmd.dialog_id);
  checkContentLength(cmd.content);
  if (cmd.client_msg_id != null) {
    if (cmd.client_msg_id === '') throw invalidInput('client_msg_id must not be empty');
    checkMaxLength('client_msg_id', cmd.client_msg_id, 255);
    checkNoNul('client_msg_id', cmd.client_msg_id);
  }
}

export const sendMessage: CommandHandler<SendCmd, SentMessage> = async (em, cmd) => {
  const d = await lockDialogOr404(em, cmd.dialog_id);
  const sender = await findParticipant(em, d.id, cmd.user_id);
  if (!sender) throw mustJoinFirst();
  checkSendInput(cmd);

  if (cmd.client_msg_id != null) {
    const first = await em.findOne(MessageSchema, { dialog_id: d.id, sender_id: cmd.user_id, client_msg_id: cmd.client_msg_id });
    if (first) {
      const attachments = await em.find(AttachmentSchema, { message_id: first.id }, { orderBy: { created_at: 'asc', id: 'asc' } });
      return output({ message: first, attachments, created: false });
    }
  }

  const content = sanitizeContent(cmd.content);
  if (!hasVisibleText(content) && cmd.attachments.length === 0) throw invalidInput('content is required');
  if (cmd.reply_to != null) {
    const target = await em.findOne(MessageSchema, { id: cmd.reply_to, dialog_id: d.id }, { fields: ['id'] });
    if (!target) throw invalidInput('reply_to message not found in this dialog');
  }
  if (cmd.attachments.length > 0) {
    const used = await em.find(AttachmentSchema, { s3_key: { $in: cmd.attachments.map((a) => a.s3_key) } }, { fields: ['s3_key'] });
    if (used.length > 0) throw invalidInput(`Invalid S3 key: already attached to another message: ${used[0].s3_key}`);
  }

  const now = new Date();
  const events: DomainEvent[] = [];
  // A new user message brings the dialog back for everyone who had archived it.
  const unarchived = await em.nativeUpdate('Participant', { dialog_id: d.id, is_archived: true }, { is_archived: false });
  if (unarchived > 0) events.push({ dialogId: d.id, toParticipants: true, event: { type: 'dialog.unarchived', dialog_id: d.id } });

  const message = em.create(MessageSchema, {
    id: newId(), dialog_id: d.id, sender_id: cmd.user_id, content, sent_at: now, last_edited_at: null,
    reply_to_id: cmd.reply_to ?? null, message_type: 'user', seq: null, client_msg_id: cmd.client_msg_id ?? null,
  });
  const attachments = cmd.attachments.map((a) =>
    em.create(AttachmentSchema, {
      id: newId(), message_id: message.id, filename: a.filename, content_type: a.content_type, size: a.size,
      s3_key: a.s3_key, created_at: now, width: null, height: null, thumbnail_s3_key: null,
    }),
  );
  const newEvent = dialogEvent(d, messageNewEvent(message, {
    reply_to_id: message.reply_to_id ?? undefined,
    attachments: attachments.map((a) => ({ id: a.id, filename: a.filename, content_type: a.content_type, size: a.size })),
  }));
  message.seq = newEvent.seq!;
  events.push(newEvent);

  // Constant cost whatever the dialog size: one counter on the dialog, one row for the sender.
  d.user_msg_count = Number(d.user_msg_count) + 1;
  sender.unread_count = 0;
  sender.read_mark = d.user_msg_count;
  sender.last_read_message_id = message.id;

  return output({ message, attachments, created: true }, events, sentMessageOutbox(d, { ...message, sender_id: cmd.user_id, seq: message.seq }));
};

/** What the host platform must hear of a new user message: its webhook, and the notification check. */
export function sentMessageOutbox(
  d: Pick<Dialog, 'id' | 'object_id' | 'object_type'>,
  m: { id: string; sender_id: string; content: string; reply_to_id: string | null; sent_at: Date; seq: number },
): OutboxDraft[] {
  const webhookMessage: Record<string, unknown> = { id: m.id, sender_id: m.sender_id, content: m.content };
  if (m.reply_to_id) webhookMessage.reply_to = m.reply_to_id;
  webhookMessage.created_at = formatTime(m.sent_at);
  webhookMessage.message_type = 'user';
  return [
    { kind: 'webhook.message_new', dialogId: d.id, payload: { ...dialogRef(d), message: webhookMessage } },
    { kind: 'notify.message', dialogId: d.id, payload: { dialog_id: d.id, message_id: m.id, sender_id: m.sender_id, seq: m.seq } },
  ];
}

export interface EditCmd {
  dialog_id: string;
  message_id: string;
  user_id: string;
  content: string;
}

async function ownMessage(em: Parameters<CommandHandler<unknown, unknown>>[0], dialogId: string, messageId: string, userId: string, verb: 'edit' | 'delete') {
  const d = await lockDialog(em, dialogId);
  if (!d) throw messageNotFound();
  const m = await em.findOne(MessageSchema, { id: messageId, dialog_id: d.id });
  if (!m) throw messageNotFound();
  // System messages have no sender, so they fail here too.
  if (m.sender_id !== userId) throw new AppError(403, 'NOT_MESSAGE_AUTHOR', `Can only ${verb} own messages`);
  if (!(await findParticipant(em, d.id, userId))) throw mustJoinFirst();
  return { d, m };
}

export const editMessage: CommandHandler<EditCmd, { message: Message }> = async (em, cmd) => {
  const { d, m } = await ownMessage(em, cmd.dialog_id, cmd.message_id, cmd.user_id, 'edit');
  checkContentLength(cmd.content);
  const content = sanitizeContent(cmd.content);
  if (!hasVisibleText(content) && (await em.count(AttachmentSchema, { message_id: m.id })) === 0) {
    throw invalidInput('content is required');
  }
  const now = new Date();
  em.create(MessageEditSchema, { id: newId(), message_id: m.id, old_content: m.content, edited_at: now });
  m.content = content;
  m.last_edited_at = now;
  const e = dialogEvent(d, { type: 'message.edited', id: m.id, dialog_id: d.id, content, last_edited_at: formatTime(now) });
  return output({ message: m }, [e]);
};

export interface DeleteMessageCmd {
  dialog_id: string;
  message_id: string;
  user_id: string;
}

export const deleteMessage: CommandHandler<DeleteMessageCmd, void> = async (em, cmd) => {
  const { d, m } = await ownMessage(em, cmd.dialog_id, cmd.message_id, cmd.user_id, 'delete');
  em.remove(m);
  return output(undefined, [dialogEvent(d, { type: 'message.deleted', id: m.id, dialog_id: d.id })]);
};
