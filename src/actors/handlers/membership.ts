// Chat API membership: potential participants join through scope matching; participants leave.
import { MessageSchema, ParticipantSchema, AccessScopeSchema } from '../../db/entities.js';
import { badRequest, forbidden, notParticipant } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import { checkProfile } from '../../domain/limits.js';
import { accessibleByScope, type ScopeLevels } from '../../domain/scope.js';
import { participantJoinedDocument, participantLeftDocument } from '../../domain/system-messages.js';
import { formatTime } from '../../domain/time.js';
import { output, type CommandHandler } from '../command.js';
import { dialogEvent, dialogRef, findParticipant, lockDialogOr404, messageNewEvent } from './common.js';

export interface JoinCmd {
  dialog_id: string;
  user_id: string;
  scope: ScopeLevels;
  display_name: string;
  company: string;
  email?: string | null;
  phone?: string | null;
}

export const join: CommandHandler<JoinCmd, { dialog_id: string }> = async (em, cmd) => {
  const d = await lockDialogOr404(em, cmd.dialog_id);
  if (await findParticipant(em, d.id, cmd.user_id)) throw badRequest('Already a participant');
  const scopes = await em.find(AccessScopeSchema, { dialog_id: d.id });
  if (!accessibleByScope(scopes, cmd.scope)) throw forbidden('No access to join this dialog');
  checkProfile(cmd);

  // The joiner starts with every message already in the dialog unread (all types), as in the original.
  const existing = await em.count(MessageSchema, { dialog_id: d.id });
  const now = new Date();
  em.create(ParticipantSchema, {
    user_id: cmd.user_id, dialog_id: d.id, last_read_message_id: null, joined_at: now, joined_as: 'joined',
    notifications_enabled: true, unread_count: existing, read_mark: d.user_msg_count, joined_seq: Number(d.last_seq) + 1, display_name: cmd.display_name,
    company: cmd.company, email: cmd.email ?? null, phone: cmd.phone ?? null, is_archived: false, is_pinned: false,
  });
  const sys = em.create(MessageSchema, {
    id: newId(), dialog_id: d.id, sender_id: null, sent_at: now, last_edited_at: null, reply_to_id: null,
    message_type: 'system', seq: null, client_msg_id: null, content: participantJoinedDocument(cmd.display_name, cmd.company),
  });
  const msgEvent = dialogEvent(d, messageNewEvent(sys));
  sys.seq = msgEvent.seq!;
  const joinedEvent = dialogEvent(d, { type: 'participant.joined', dialog_id: d.id, user_id: cmd.user_id });
  return output({ dialog_id: d.id }, [msgEvent, joinedEvent], [
    {
      kind: 'webhook.participant_joined', dialogId: d.id,
      payload: { ...dialogRef(d), user_id: cmd.user_id, joined_as: 'joined', joined_at: formatTime(now) },
    },
  ]);
};

export interface LeaveCmd {
  dialog_id: string;
  user_id: string;
}

export const leave: CommandHandler<LeaveCmd, void> = async (em, cmd) => {
  const d = await lockDialogOr404(em, cmd.dialog_id);
  const p = await findParticipant(em, d.id, cmd.user_id);
  // The original let anyone "leave" any dialog, writing a system message and a webhook.
  if (!p) throw notParticipant();
  em.remove(p);
  const now = new Date();
  const sys = em.create(MessageSchema, {
    id: newId(), dialog_id: d.id, sender_id: null, sent_at: now, last_edited_at: null, reply_to_id: null,
    message_type: 'system', seq: null, client_msg_id: null, content: participantLeftDocument(p.display_name),
  });
  const msgEvent = dialogEvent(d, messageNewEvent(sys));
  sys.seq = msgEvent.seq!;
  const leftEvent = dialogEvent(d, { type: 'participant.left', dialog_id: d.id, user_id: cmd.user_id }, [cmd.user_id]);
  return output(undefined, [msgEvent, leftEvent], [
    { kind: 'webhook.participant_left', dialogId: d.id, payload: { ...dialogRef(d), user_id: cmd.user_id, left_at: formatTime(now) } },
  ]);
};
