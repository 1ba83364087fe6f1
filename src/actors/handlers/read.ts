import { MessageSchema } from '../../db/entities.js';
import { AppError, forbidden, messageNotFound } from '../../domain/errors.js';
import { output, type CommandHandler } from '../command.js';
import { dialogEvent, findParticipant, lockDialog } from './common.js';

export interface MarkReadCmd {
  dialog_id: string;
  user_id: string;
  message_id: string;
}

/**
 * Moves the caller's read pointer forward (never back). The unread count becomes the number of
 * user messages after the pointer that others sent: the base is stored, the mark is "now".
 */
export const markRead: CommandHandler<MarkReadCmd, void> = async (em, cmd) => {
  const d = await lockDialog(em, cmd.dialog_id);
  if (!d) throw new AppError(404, 'NOT_FOUND', 'Dialog not found');
  const p = await findParticipant(em, d.id, cmd.user_id);
  if (!p) throw forbidden('Not a participant');
  const m = await em.findOne(MessageSchema, { id: cmd.message_id, dialog_id: d.id }, { fields: ['id'] });
  if (!m) throw messageNotFound();
  // v7 ids sort in creation order; an older (or the same) id is accepted and changes nothing.
  if (p.last_read_message_id !== null && cmd.message_id <= p.last_read_message_id) return output(undefined);

  p.unread_count = await em.count(MessageSchema, {
    dialog_id: d.id, message_type: 'user', id: { $gt: cmd.message_id }, sender_id: { $ne: cmd.user_id },
  });
  p.read_mark = d.user_msg_count;
  p.last_read_message_id = cmd.message_id;
  const e = dialogEvent(d, { type: 'message.read', dialog_id: d.id, user_id: cmd.user_id, last_read_message_id: cmd.message_id });
  return output(undefined, [e]);
};
