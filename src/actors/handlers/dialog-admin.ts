// Management API commands: the host platform shapes dialogs, their participants and scopes.
import type { Em } from '../../db/orm.js';
import { AccessScopeSchema, DialogSchema, MessageSchema, ParticipantSchema, type AccessScope, type Dialog } from '../../db/entities.js';
import { AppError, invalidInput } from '../../domain/errors.js';
import type { DomainEvent } from '../../domain/events.js';
import { newId } from '../../domain/ids.js';
import { MAX_OBJECT_TYPE, MAX_TITLE, checkIdentifier, checkMaxLength, checkProfile, type ProfileInput } from '../../domain/limits.js';
import { partitionOf } from '../../domain/partition.js';
import { checkScopeValues, type ScopeLevels } from '../../domain/scope.js';
import { chatCreatedDocument } from '../../domain/system-messages.js';
import { output, type CommandHandler } from '../command.js';
import { dialogEvent, lockDialog } from './common.js';

export interface ParticipantInput extends ProfileInput {
  user_id: string;
}

export interface CreateDialogCmd {
  /** Chosen by the edge so the command can be routed to the new dialog's partition. */
  id: string;
  object_id: string;
  object_type: string;
  title?: string | null;
  object_url?: string | null;
  participants: ParticipantInput[];
  access_scopes: ScopeLevels[];
  meta?: unknown;
}

export function checkParticipantInput(p: ParticipantInput): void {
  checkIdentifier('user_id', p.user_id);
  checkProfile(p);
}

function newScopeRows(em: Em, dialogId: string, scopes: ScopeLevels[], now: Date): AccessScope[] {
  return scopes.map((s) =>
    em.create(AccessScopeSchema, {
      id: newId(), dialog_id: dialogId, created_at: now,
      scope_level0: s.scope_level0, scope_level1: s.scope_level1, scope_level2: s.scope_level2,
    }),
  );
}

export const createDialog: CommandHandler<CreateDialogCmd, { dialog: Dialog }> = async (em, cmd) => {
  checkMaxLength('title', cmd.title, MAX_TITLE);
  checkIdentifier('object_id', cmd.object_id);
  checkIdentifier('object_type', cmd.object_type, MAX_OBJECT_TYPE);
  const seen = new Set<string>();
  for (const p of cmd.participants) {
    checkParticipantInput(p);
    // The original answered 500 (primary key); we refuse the request instead of guessing which entry wins.
    if (seen.has(p.user_id)) throw invalidInput(`user_id '${p.user_id}' appears more than once in participants`);
    seen.add(p.user_id);
  }
  cmd.access_scopes.forEach(checkScopeValues);

  const now = new Date();
  const id = cmd.id;
  const dialog = em.create(DialogSchema, {
    id, object_id: cmd.object_id, object_type: cmd.object_type, title: cmd.title ?? null, object_url: cmd.object_url ?? null,
    created_by: cmd.participants[0]?.user_id ?? null, created_at: now, meta: cmd.meta ?? null,
    partition: partitionOf(id), last_seq: 0, user_msg_count: 0,
  });
  for (const p of cmd.participants) {
    em.create(ParticipantSchema, {
      user_id: p.user_id, dialog_id: id, last_read_message_id: null, joined_at: now, joined_as: 'participant',
      notifications_enabled: true, unread_count: 0, read_mark: 0, joined_seq: 1, display_name: p.display_name,
      company: p.company ?? null, email: p.email ?? null, phone: p.phone ?? null, is_archived: false, is_pinned: false,
    });
  }
  newScopeRows(em, id, cmd.access_scopes, now);
  if (cmd.participants.length > 0) {
    // Not broadcast and never counted as unread: the original's chat_created quirk.
    em.create(MessageSchema, {
      id: newId(), dialog_id: id, sender_id: null, sent_at: now, last_edited_at: null, reply_to_id: null,
      message_type: 'system', seq: null, client_msg_id: null,
      content: chatCreatedDocument(cmd.participants.map((p) => ({ name: p.display_name, company: p.company }))),
    });
  }
  const events = cmd.participants.map((p) => dialogEvent(dialog, { type: 'participant.joined', dialog_id: id, user_id: p.user_id }));
  return output({ dialog }, events);
};

export interface AddParticipantCmd extends ParticipantInput {
  dialog_id: string;
}

/** Inserts the participant unless present (their profile is then kept). Answers whether a row was added. */
export const addParticipant: CommandHandler<AddParticipantCmd, { added: boolean }> = async (em, cmd) => {
  checkParticipantInput(cmd);
  const d = await lockDialog(em, cmd.dialog_id);
  if (!d) throw new AppError(404, 'NOT_FOUND', 'Dialog not found');
  const existing = await em.findOne(ParticipantSchema, { dialog_id: d.id, user_id: cmd.user_id });
  if (existing) return output({ added: false });
  em.create(ParticipantSchema, {
    user_id: cmd.user_id, dialog_id: d.id, last_read_message_id: null, joined_at: new Date(), joined_as: 'participant',
    notifications_enabled: true, unread_count: 0, read_mark: d.user_msg_count, joined_seq: Number(d.last_seq) + 1, display_name: cmd.display_name,
    company: cmd.company ?? null, email: cmd.email ?? null, phone: cmd.phone ?? null, is_archived: false, is_pinned: false,
  });
  return output({ added: true }, [dialogEvent(d, { type: 'participant.joined', dialog_id: d.id, user_id: cmd.user_id })]);
};

export interface RemoveParticipantCmd {
  dialog_id: string;
  user_id: string;
}

export const removeParticipant: CommandHandler<RemoveParticipantCmd, { removed: boolean }> = async (em, cmd) => {
  const d = await lockDialog(em, cmd.dialog_id);
  if (!d) return output({ removed: false });
  const removed = await em.nativeDelete(ParticipantSchema, { dialog_id: d.id, user_id: cmd.user_id });
  if (removed === 0) return output({ removed: false });
  // The removed user hears it too, so their clients drop the dialog.
  const e = dialogEvent(d, { type: 'participant.left', dialog_id: d.id, user_id: cmd.user_id }, [cmd.user_id]);
  return output({ removed: true }, [e]);
};

export interface ReplaceScopesCmd {
  dialog_id: string;
  access_scopes: ScopeLevels[];
}

export const replaceScopes: CommandHandler<ReplaceScopesCmd, { scopes: AccessScope[] }> = async (em, cmd) => {
  cmd.access_scopes.forEach(checkScopeValues);
  const d = await lockDialog(em, cmd.dialog_id);
  if (!d) throw new AppError(404, 'NOT_FOUND', 'Dialog not found');
  await em.nativeDelete(AccessScopeSchema, { dialog_id: d.id });
  return output({ scopes: newScopeRows(em, d.id, cmd.access_scopes, new Date()) });
};

export interface DeleteDialogCmd {
  dialog_id: string;
}

/**
 * Idempotent delete. Former participants are told with a `participant.left` naming themselves,
 * which the original SDK already handles by reloading its lists.
 */
export const deleteDialog: CommandHandler<DeleteDialogCmd, void> = async (em, cmd) => {
  const d = await lockDialog(em, cmd.dialog_id);
  if (!d) return output(undefined);
  const members = await em.find(ParticipantSchema, { dialog_id: d.id }, { fields: ['user_id'] });
  await em.nativeDelete(DialogSchema, { id: d.id });
  em.getUnitOfWork().unsetIdentity(d);
  const events: DomainEvent[] = members.map((p) => ({
    dialogId: d.id, toParticipants: false, toUsers: [p.user_id],
    event: { type: 'participant.left', dialog_id: d.id, user_id: p.user_id },
  }));
  return output(undefined, events);
};

