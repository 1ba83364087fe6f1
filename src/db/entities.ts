// Entity schemas (no decorators, no reflection): they load identically from tsc output and from tsx.
import { BigIntType, EntitySchema } from '@mikro-orm/core';

export type JoinedAs = 'creator' | 'participant' | 'joined';
export type MessageType = 'user' | 'system';

export interface Dialog {
  id: string;
  object_id: string;
  object_type: string;
  title: string | null;
  object_url: string | null;
  created_by: string | null;
  created_at: Date;
  meta: unknown;
  partition: number;
  /** Sequence number of the dialog's last broadcast event; the next event takes last_seq + 1. */
  last_seq: number;
  /** User messages ever sent: the clock that unread counts are measured against. */
  user_msg_count: number;
}

export interface Participant {
  user_id: string;
  dialog_id: string;
  last_read_message_id: string | null;
  joined_at: Date;
  joined_as: JoinedAs;
  notifications_enabled: boolean;
  /** Unread base: unread = unread_count + (dialog.user_msg_count − read_mark). */
  unread_count: number;
  read_mark: number;
  /** The dialog's next sequence number when this user joined: resume never reaches before it. */
  joined_seq: number;
  display_name: string | null;
  company: string | null;
  email: string | null;
  phone: string | null;
  is_archived: boolean;
  is_pinned: boolean;
}

export interface AccessScope {
  id: string;
  dialog_id: string;
  scope_level0: string[];
  scope_level1: string[];
  scope_level2: string[];
  created_at: Date;
}

export interface Message {
  id: string;
  dialog_id: string;
  sender_id: string | null;
  content: string;
  sent_at: Date;
  last_edited_at: Date | null;
  reply_to_id: string | null;
  message_type: MessageType;
  seq: number | null;
  client_msg_id: string | null;
}

export interface MessageEdit {
  id: string;
  message_id: string;
  old_content: string;
  edited_at: Date;
}

export interface Attachment {
  id: string;
  message_id: string;
  filename: string;
  content_type: string;
  size: number;
  s3_key: string;
  created_at: Date;
  width: number | null;
  height: number | null;
  thumbnail_s3_key: string | null;
}

export interface DialogEventRow {
  dialog_id: string;
  seq: number;
  payload: unknown;
  created_at: Date;
}

export interface CommandLogEntry {
  request_id: string;
  result: unknown;
  created_at: Date;
}

export interface OutboxEntry {
  id: string;
  kind: string;
  dialog_id: string | null;
  payload: unknown;
  created_at: Date;
}

const ts = { type: 'datetime', columnType: 'timestamptz' } as const;
const text = { type: 'text' } as const;
const nullableText = { type: 'text', nullable: true } as const;
const uuid = { type: 'uuid' } as const;
// Counters and sequence numbers stay far below 2^53, so plain numbers are exact and JSON-safe.
const bigNum = { type: new BigIntType('number'), columnType: 'bigint' } as const;

export const DialogSchema = new EntitySchema<Dialog>({
  name: 'Dialog',
  tableName: 'dialogs',
  properties: {
    id: { ...uuid, primary: true },
    object_id: text,
    object_type: { type: 'string', length: 100 },
    title: { type: 'string', length: 500, nullable: true },
    object_url: nullableText,
    created_by: nullableText,
    created_at: ts,
    meta: { type: 'json', nullable: true },
    partition: { type: 'smallint' },
    last_seq: { ...bigNum, default: 0 },
    user_msg_count: { ...bigNum, default: 0 },
  },
});

export const ParticipantSchema = new EntitySchema<Participant>({
  name: 'Participant',
  tableName: 'dialog_participants',
  properties: {
    user_id: { ...text, primary: true },
    dialog_id: { ...uuid, primary: true },
    last_read_message_id: { ...uuid, nullable: true },
    joined_at: ts,
    joined_as: { type: 'string', length: 50 },
    notifications_enabled: { type: 'boolean' },
    unread_count: { type: 'integer' },
    read_mark: { ...bigNum, default: 0 },
    joined_seq: { ...bigNum, default: 0 },
    display_name: { type: 'string', length: 255, nullable: true },
    company: { type: 'string', length: 255, nullable: true },
    email: { type: 'string', length: 255, nullable: true },
    phone: { type: 'string', length: 50, nullable: true },
    is_archived: { type: 'boolean' },
    is_pinned: { type: 'boolean' },
  },
});

const textArray = { type: 'string[]', columnType: 'text[]' } as const;
export const AccessScopeSchema = new EntitySchema<AccessScope>({
  name: 'AccessScope',
  tableName: 'dialog_access_scopes',
  properties: {
    id: { ...uuid, primary: true },
    dialog_id: uuid,
    scope_level0: textArray,
    scope_level1: textArray,
    scope_level2: textArray,
    created_at: ts,
  },
});

export const MessageSchema = new EntitySchema<Message>({
  name: 'Message',
  tableName: 'messages',
  properties: {
    id: { ...uuid, primary: true },
    dialog_id: uuid,
    sender_id: nullableText,
    content: text,
    sent_at: ts,
    last_edited_at: { ...ts, nullable: true },
    reply_to_id: { ...uuid, nullable: true },
    message_type: { type: 'string', length: 20 },
    seq: { ...bigNum, nullable: true },
    client_msg_id: nullableText,
  },
});

export const MessageEditSchema = new EntitySchema<MessageEdit>({
  name: 'MessageEdit',
  tableName: 'message_edit_history',
  properties: {
    id: { ...uuid, primary: true },
    message_id: uuid,
    old_content: text,
    edited_at: ts,
  },
});

export const AttachmentSchema = new EntitySchema<Attachment>({
  name: 'Attachment',
  tableName: 'attachments',
  properties: {
    id: { ...uuid, primary: true },
    message_id: uuid,
    filename: { type: 'string', length: 255 },
    content_type: { type: 'string', length: 100 },
    size: bigNum,
    s3_key: { type: 'string', length: 512 },
    created_at: ts,
    width: { type: 'integer', nullable: true },
    height: { type: 'integer', nullable: true },
    thumbnail_s3_key: { type: 'string', length: 500, nullable: true },
  },
});

export const OutboxSchema = new EntitySchema<OutboxEntry>({
  name: 'OutboxEntry',
  tableName: 'outbox',
  properties: {
    id: { ...uuid, primary: true },
    kind: text,
    dialog_id: { ...uuid, nullable: true },
    payload: { type: 'json' },
    created_at: ts,
  },
});

export const DialogEventSchema = new EntitySchema<DialogEventRow>({
  name: 'DialogEvent',
  tableName: 'dialog_events',
  properties: {
    dialog_id: { ...uuid, primary: true },
    seq: { ...bigNum, primary: true },
    payload: { type: 'json' },
    created_at: ts,
  },
});

export const CommandLogSchema = new EntitySchema<CommandLogEntry>({
  name: 'CommandLogEntry',
  tableName: 'command_log',
  properties: {
    request_id: { ...text, primary: true },
    result: { type: 'json', nullable: true },
    created_at: ts,
  },
});

export const ALL_ENTITIES = [DialogEventSchema, CommandLogSchema, DialogSchema, ParticipantSchema, AccessScopeSchema, MessageSchema, MessageEditSchema, AttachmentSchema, OutboxSchema];
