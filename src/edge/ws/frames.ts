// Client → server frames (docs/protocol.md "Client frames"). Commands are checked with the REST
// endpoint's own schemas, in the REST order (path parameters, then body), so a WebSocket `error`
// carries exactly the code and message its REST twin would answer.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { AppError, badRequest } from '../../domain/errors.js';
import { validate } from '../http/server.js';
import { DialogIdParams, EditBody, IdParams, MessageParams, ReadBody, SendBody, Uuid } from '../http/schemas.js';

/** The client's correlation id, echoed in the `ack` / `error`. */
const CorrelationId = Type.String({ minLength: 1, maxLength: 128 });
const FrameId = Type.Object({ id: CorrelationId });

/** At most this many dialogs in one `resume`. */
export const MAX_RESUME_DIALOGS = 10_000;
const ResumeFrame = Type.Object({
  id: Type.Optional(CorrelationId),
  dialogs: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
});

export type SendInput = Static<typeof SendBody>;

export type ClientFrame =
  | { type: 'ping' }
  | { type: 'ignored' }
  | { type: 'send'; id: string; dialogId: string; body: SendInput }
  | { type: 'edit'; id: string; dialogId: string; messageId: string; content: string }
  | { type: 'delete'; id: string; dialogId: string; messageId: string }
  | { type: 'read'; id: string; dialogId: string; messageId: string }
  | { type: 'resume'; id?: string; dialogs: Map<string, number> };

/** A frame that cannot be run; `id` is the correlation id when one could be read. */
export class FrameError extends Error {
  constructor(readonly error: AppError, readonly id?: string) {
    super(error.message);
  }
}

type Obj = Record<string, unknown>;
const isUuid = (s: string): boolean => Value.Check(Uuid, s);
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Only the keys the client actually sent, as a JSON body would carry them. */
function pick(f: Obj, keys: string[]): Obj {
  const out: Obj = {};
  for (const k of keys) if (Object.hasOwn(f, k) && f[k] !== undefined) out[k] = f[k];
  return out;
}

const params = (schema: Parameters<typeof validate>[0], value: Obj) => validate(schema, value, 400, 'BAD_REQUEST', 'Invalid path parameter');
const body = (schema: Parameters<typeof validate>[0], value: Obj) => validate(schema, value, 422, 'INVALID_INPUT', 'Invalid request body');

function correlationId(f: Obj): string {
  validate(FrameId, { id: f.id }, 400, 'BAD_REQUEST', 'Invalid frame');
  return f.id as string;
}

/** Throws FrameError for anything that is not a well-formed frame. */
export function parseFrame(v: unknown): ClientFrame {
  if (!isObject(v) || typeof v.type !== 'string') {
    throw new FrameError(badRequest('Malformed frame: expected an object with a string "type"'));
  }
  const type = v.type;
  // The correlation id is echoed on every error once it is readable.
  const id = typeof v.id === 'string' && v.id.length > 0 && v.id.length <= 128 ? v.id : undefined;
  try {
    switch (type) {
      case 'ping':
        return { type: 'ping' };
      case 'subscribe':
      case 'unsubscribe':
        // The original SDK sends these for the dialog it opens; delivery never depends on them.
        return { type: 'ignored' };
      case 'send': {
        const cid = correlationId(v);
        const p = { dialog_id: v.dialog_id };
        params(DialogIdParams, p);
        const b = pick(v, ['content', 'reply_to', 'attachments', 'client_msg_id']);
        body(SendBody, b);
        return { type: 'send', id: cid, dialogId: (v.dialog_id as string).toLowerCase(), body: b as SendInput };
      }
      case 'edit': {
        const cid = correlationId(v);
        params(MessageParams, { dialog_id: v.dialog_id, id: v.message_id });
        body(EditBody, pick(v, ['content']));
        return { type: 'edit', id: cid, dialogId: (v.dialog_id as string).toLowerCase(), messageId: (v.message_id as string).toLowerCase(), content: v.content as string };
      }
      case 'delete': {
        const cid = correlationId(v);
        params(MessageParams, { dialog_id: v.dialog_id, id: v.message_id });
        return { type: 'delete', id: cid, dialogId: (v.dialog_id as string).toLowerCase(), messageId: (v.message_id as string).toLowerCase() };
      }
      case 'read': {
        const cid = correlationId(v);
        // REST: POST /dialogs/:id/read with {last_read_message_id}.
        params(IdParams, { id: v.dialog_id });
        body(ReadBody, pick(v, ['last_read_message_id']));
        return { type: 'read', id: cid, dialogId: (v.dialog_id as string).toLowerCase(), messageId: (v.last_read_message_id as string).toLowerCase() };
      }
      case 'resume': {
        validate(ResumeFrame, pick(v, ['id', 'dialogs']), 400, 'BAD_REQUEST', 'Invalid frame');
        const dialogs = new Map<string, number>();
        const entries = Object.entries(v.dialogs as Record<string, number>);
        if (entries.length > MAX_RESUME_DIALOGS) throw badRequest(`Invalid frame: resume names more than ${MAX_RESUME_DIALOGS} dialogs`);
        for (const [dialogId, seq] of entries) {
          if (!isUuid(dialogId)) throw badRequest(`Invalid frame at dialogs: ${JSON.stringify(dialogId.slice(0, 64))} is not a dialog id`);
          dialogs.set(dialogId.toLowerCase(), seq);
        }
        return { type: 'resume', id: v.id as string | undefined, dialogs };
      }
      default:
        throw badRequest(`Unknown frame type: ${JSON.stringify(String(type).slice(0, 64))}`);
    }
  } catch (e) {
    if (e instanceof AppError) throw new FrameError(e, id);
    throw e;
  }
}
