import t from 'tap';
import { createHmac } from 'node:crypto';
import { canonicalPayload, dottedEvent, envelopeBytes, notificationId, signature, uuidV7Millis } from '../../src/delivery/envelope.js';
import { classifyStatus, retryDelay } from '../../src/delivery/webhook-sender.js';

t.test('status classification: 2xx delivered, 4xx except 408/429 permanent, the rest retried', async (t) => {
  for (const s of [200, 201, 204, 299]) t.same(classifyStatus(s), { kind: 'delivered' }, String(s));
  for (const s of [400, 401, 403, 404, 410, 422, 499]) t.same(classifyStatus(s), { kind: 'permanent', error: `HTTP ${s}` }, String(s));
  for (const s of [408, 429, 500, 502, 503, 504, 301, 304, 100]) t.same(classifyStatus(s), { kind: 'retry', error: `HTTP ${s}` }, String(s));
});

t.test('retry schedule: 1 s, 2 s, 4 s from a 1 s base, capped', async (t) => {
  t.same([1, 2, 3, 4].map((n) => retryDelay(n, 1000, 3_600_000)), [1000, 2000, 4000, 8000]);
  t.equal(retryDelay(30, 1000, 3_600_000), 3_600_000);
  t.equal(retryDelay(500, 1000, 3_600_000), 3_600_000, 'no overflow');
});

t.test('envelope: key order restored from jsonb order, dotted event names', async (t) => {
  // jsonb hands keys back shortest first.
  const fromJsonb = {
    message: { id: 'm', content: 'c', reply_to: 'r', sender_id: 's', created_at: 't', message_type: 'user' },
    dialog_id: 'd', object_id: 'o', object_type: 'ot',
  };
  t.equal(Buffer.from(envelopeBytes('i', 'message_new', 'ts', fromJsonb)).toString(),
    '{"id":"i","type":"message_new","timestamp":"ts","payload":{"dialog_id":"d","object_id":"o","object_type":"ot",' +
    '"message":{"id":"m","sender_id":"s","content":"c","reply_to":"r","created_at":"t","message_type":"user"}}}');
  t.same(Object.keys(canonicalPayload('participant_joined', { joined_at: 1, user_id: 2, joined_as: 3, dialog_id: 4, object_id: 5, object_type: 6, extra: 7 })),
    ['dialog_id', 'object_id', 'object_type', 'user_id', 'joined_as', 'joined_at', 'extra'], 'additive keys follow');
  t.same(['message_new', 'participant_joined', 'participant_left', 'notification_pending'].map(dottedEvent),
    ['message.new', 'participant.joined', 'participant.left', 'notification.pending']);
});

t.test('signature: sha256= + hex HMAC of the exact bytes with the UTF-8 secret', async (t) => {
  const body = Buffer.from('{"a":"ü"}');
  const s = signature('sëcret', body);
  t.equal(s, `sha256=${createHmac('sha256', Buffer.from('sëcret', 'utf8')).update(body).digest('hex')}`);
  t.equal(s.length, 71);
});

t.test('notification id: deterministic, UUID v7-shaped, timestamp of the message', async (t) => {
  const msg = '0195a0d1-04aa-7c3e-b1f0-5e6f7a8b9c0d';
  const a = notificationId(msg, 'u-22');
  t.equal(a, notificationId(msg, 'u-22'), 'same pair, same id');
  t.not(a, notificationId(msg, 'u-23'), 'another recipient, another id');
  t.not(a, notificationId('0195a0d1-04aa-7c3e-b1f0-5e6f7a8b9c0e', 'u-22'), 'another message, another id');
  t.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(uuidV7Millis(a), uuidV7Millis(msg));
  t.equal(uuidV7Millis(msg), 0x0195a0d104aa);
  t.equal(uuidV7Millis('9f1c2b3a-1d2e-4f00-8a9b-0c1d2e3f4a5b'), null, 'not a v7');
});
