// Events produced by command handlers. Wire shapes (flat, `type` first) are the spec's realtime.md;
// `seq` is the dialog's sequence number for events every participant receives.

export interface MessageNewEvent {
  type: 'message.new';
  id: string;
  dialog_id: string;
  sender_id?: string;
  content: string;
  sent_at: string;
  message_type: 'user' | 'system';
  reply_to_id?: string;
  attachments?: { id: string; filename: string; content_type: string; size: number }[];
}
export interface MessageEditedEvent { type: 'message.edited'; id: string; dialog_id: string; content: string; last_edited_at: string }
export interface MessageDeletedEvent { type: 'message.deleted'; id: string; dialog_id: string }
export interface MessageReadEvent { type: 'message.read'; dialog_id: string; user_id: string; last_read_message_id: string }
export interface ParticipantEvent { type: 'participant.joined' | 'participant.left'; dialog_id: string; user_id: string }
export interface DialogFlagEvent { type: 'dialog.archived' | 'dialog.unarchived' | 'dialog.deleted'; dialog_id: string }

export type WireEvent = MessageNewEvent | MessageEditedEvent | MessageDeletedEvent | MessageReadEvent | ParticipantEvent | DialogFlagEvent;

/**
 * Who receives an event: every current participant of the dialog (with the dialog's sequence
 * number), and/or named users (per-user events, and the user who just left or was removed).
 */
export interface DomainEvent {
  dialogId: string;
  /** The dialog's sequence number: set for message.* and participant.* events, absent for per-user ones. */
  seq?: number;
  toParticipants: boolean;
  toUsers?: string[];
  event: WireEvent;
}

/** Something that must reach the host platform even if the process dies after commit. */
export interface OutboxDraft {
  kind: 'webhook.message_new' | 'webhook.participant_joined' | 'webhook.participant_left' | 'notify.message';
  dialogId: string;
  payload: Record<string, unknown>;
}
