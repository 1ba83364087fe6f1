// Webhook envelopes: the exact bytes the host platform receives, and their signature.
import { createHash, createHmac } from 'node:crypto';

export type WebhookType = 'message_new' | 'participant_joined' | 'participant_left' | 'notification_pending';

/** `message_new` → `message.new` (the X-Webhook-Event header uses the dotted form). */
export const dottedEvent = (type: string): string => type.replace('_', '.');

// PostgreSQL's jsonb reorders keys (shortest first), so the wire order is restored here: the
// original's struct order, which the spec's examples show. Unknown keys (additive fields) follow.
const PAYLOAD_ORDER: Record<WebhookType, string[]> = {
  message_new: ['dialog_id', 'object_id', 'object_type', 'message'],
  participant_joined: ['dialog_id', 'object_id', 'object_type', 'user_id', 'joined_as', 'joined_at'],
  participant_left: ['dialog_id', 'object_id', 'object_type', 'user_id', 'left_at'],
  notification_pending: ['dialog_id', 'object_id', 'object_type', 'recipient_id', 'chat_title', 'sender_company', 'message'],
};
const MESSAGE_ORDER = ['id', 'sender_id', 'content', 'reply_to', 'created_at', 'message_type'];

function ordered(obj: Record<string, unknown>, order: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out) && obj[k] !== undefined) out[k] = obj[k];
  return out;
}

export function canonicalPayload(type: WebhookType, payload: Record<string, unknown>): Record<string, unknown> {
  const p = ordered(payload, PAYLOAD_ORDER[type]);
  if (p.message && typeof p.message === 'object') p.message = ordered(p.message as Record<string, unknown>, MESSAGE_ORDER);
  return p;
}

/** The envelope in the original's key order: id, type, timestamp, payload. */
export function envelopeBytes(id: string, type: WebhookType, timestamp: string, payload: Record<string, unknown>): Uint8Array {
  return Buffer.from(JSON.stringify({ id, type, timestamp, payload: canonicalPayload(type, payload) }));
}

/** `sha256=` + lower-case hex HMAC-SHA256 of exactly these bytes. */
export function signature(secret: string, body: Uint8Array): string {
  return `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('hex')}`;
}

/**
 * The event id of the notification for one message and one recipient: UUID v7-shaped (the message
 * id's 48-bit millisecond timestamp, then bits of sha256(message id + recipient)), so that every
 * redelivery, on any worker, after any crash, carries the same X-Webhook-Id.
 */
export function notificationId(messageId: string, recipientId: string): string {
  const ts = messageId.replace(/-/g, '').slice(0, 12);
  const h = createHash('sha256').update(messageId + recipientId, 'utf8').digest('hex');
  const variant = ((parseInt(h[3], 16) & 0x3) | 0x8).toString(16);
  const hex = `${ts}7${h.slice(0, 3)}${variant}${h.slice(4, 19)}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`.toLowerCase();
}

/** Milliseconds since the epoch encoded in a UUID v7 (null for other versions). */
export function uuidV7Millis(id: string): number | null {
  const hex = id.replace(/-/g, '');
  if (hex.length !== 32 || hex[12] !== '7') return null;
  return parseInt(hex.slice(0, 12), 16);
}
