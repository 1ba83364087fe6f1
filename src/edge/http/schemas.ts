// Request schemas shared by the route table, validation and (later) the OpenAPI document.
import { Type } from '@sinclair/typebox';

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const Uuid = Type.String({ pattern: UUID_PATTERN, description: 'UUID' });
const OptString = Type.Optional(Type.Union([Type.String(), Type.Null()]));

export const IdParams = Type.Object({ id: Uuid });
export const DialogIdParams = Type.Object({ dialog_id: Uuid });
export const MessageParams = Type.Object({ dialog_id: Uuid, id: Uuid });
export const RemoveParticipantParams = Type.Object({ id: Uuid, user_id: Type.String() });
export const ObjectParams = Type.Object({ object_type: Type.String(), object_id: Type.String() });

export const ScopeInput = Type.Object({
  scope_level0: Type.Optional(Type.Array(Type.String())),
  scope_level1: Type.Optional(Type.Array(Type.String())),
  scope_level2: Type.Optional(Type.Array(Type.String())),
});

export const ParticipantInput = Type.Object({
  user_id: Type.String(),
  display_name: Type.String(),
  company: OptString,
  email: OptString,
  phone: OptString,
});

export const CreateDialogBody = Type.Object({
  object_id: Type.String(),
  object_type: Type.String(),
  title: OptString,
  object_url: OptString,
  participants: Type.Array(ParticipantInput),
  access_scopes: Type.Optional(Type.Array(ScopeInput)),
  meta: Type.Optional(Type.Unknown()),
});

export const FindDialogBody = Type.Object({
  object_id: Type.String(),
  object_type: Type.String(),
  access_scopes: Type.Optional(Type.Array(ScopeInput)),
});

export const ReplaceScopesBody = Type.Object({ access_scopes: Type.Array(ScopeInput) });

export const JoinBody = Type.Object({
  display_name: Type.String(),
  company: Type.String(),
  email: OptString,
  phone: OptString,
});

export const NotificationsBody = Type.Object({ enabled: Type.Boolean() });
export const ReadBody = Type.Object({ last_read_message_id: Uuid });

export const AttachmentInput = Type.Object({
  s3_key: Type.String(),
  filename: Type.String(),
  content_type: Type.String(),
  size: Type.Integer(),
});
export const SendBody = Type.Object({
  content: Type.String(),
  reply_to: Type.Optional(Type.Union([Uuid, Type.Null()])),
  attachments: Type.Optional(Type.Array(AttachmentInput)),
  client_msg_id: OptString,
});
export const EditBody = Type.Object({ content: Type.String() });

const BoolText = Type.Union([Type.Literal('true'), Type.Literal('false')]);
export const ListDialogsQuery = Type.Object({
  type: Type.Optional(Type.String()),
  search: Type.Optional(Type.String()),
  archived: Type.Optional(BoolText),
  limit: Type.Optional(Type.Integer()),
  offset: Type.Optional(Type.Integer()),
});
export const ObjectListQuery = Type.Object({
  type: Type.Optional(Type.String()),
  search: Type.Optional(Type.String()),
  archived: Type.Optional(BoolText),
});
export const ListMessagesQuery = Type.Object({
  limit: Type.Optional(Type.Integer()),
  before: Type.Optional(Uuid),
  after: Type.Optional(Uuid),
  around: Type.Optional(Uuid),
});

export const toScope = (s: { scope_level0?: string[]; scope_level1?: string[]; scope_level2?: string[] }) => ({
  scope_level0: s.scope_level0 ?? [], scope_level1: s.scope_level1 ?? [], scope_level2: s.scope_level2 ?? [],
});
export const boolParam = (v: 'true' | 'false' | undefined): boolean | null => (v === undefined ? null : v === 'true');
