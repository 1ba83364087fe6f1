// Webhooks and smart notifications end to end: API → outbox (same transaction) → relay →
// JetStream → sender → a real HTTP receiver; notifications by delayed redelivery.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { loadConfig } from '../../src/config/env.js';
import { startDelivery, type Delivery } from '../../src/delivery/index.js';
import { deleteStreams, deliveryNames } from '../../src/delivery/streams.js';
import { listDeadLetters, replayDeadLetters } from '../../src/delivery/dlq.js';
import { notificationId } from '../../src/delivery/envelope.js';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';
import { deliveryIdle, startReceiver, until, validSignature, type Attempt } from '../helpers/webhook-receiver.js';

const SECRET = 'whsec-tëst-🔑';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const receiver = await startReceiver();
const env = {
  WEBHOOK_URL: receiver.url,
  WEBHOOK_SECRET: SECRET,
  WEBHOOK_MAX_RETRIES: '3',
  WEBHOOK_RETRY_BASE_MS: '100',
  WEBHOOK_TIMEOUT_SECS: '1',
  NOTIFICATION_DELAY_MS: '1500',
};
const srv = await startTestServer(env);
const cfg = loadConfig({ ...env, MTCHAT_NAMESPACE: srv.namespace, NATS_URL: process.env.NATS_URL ?? '127.0.0.1:4222' });
const nc: NatsConnection = await connect({ servers: cfg.natsUrl });
const names = deliveryNames(srv.namespace);
const start = () => startDelivery({
  cfg, orm: srv.app.orm, nc, log: srv.app.log, publisher: srv.app.bus, ownedPartitions: () => [], outboxPollMs: 50,
});
let delivery: Delivery = await start();
t.teardown(async () => {
  await delivery.stop();
  await srv.close();
  await deleteStreams(nc, srv.namespace);
  await nc.close();
  await receiver.close();
});

const api = client(srv.url);
const jsm = await jetstreamManager(nc);
const M = '/api/v1/management/dialogs';

const forDialog = (id: string, list: Attempt[] = receiver.delivered()) => list.filter((a) => a.json?.payload?.dialog_id === id);
const ofType = (id: string, type: string) => forDialog(id).filter((a) => a.json.type === type);

/** Everything written so far has been relayed and every stream message settled. */
async function quiesce(): Promise<void> {
  await until('delivery to settle', () => deliveryIdle(srv.sql, jsm, names));
}

async function send(dialogId: string, user: string, content: string, extra: Record<string, unknown> = {}) {
  const r = await api('POST', `/api/v1/dialogs/${dialogId}/messages`, { user, body: { content, ...extra } });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  return r.json.data as { id: string; sent_at: string };
}

type T = Pick<typeof t, 'equal' | 'match' | 'ok'>;
function checkHeaders(t: T, a: Attempt, event: string) {
  t.equal(a.headers['content-type'], 'application/json', 'Content-Type');
  t.equal(a.headers['x-webhook-event'], event, 'X-Webhook-Event is the dotted name');
  t.equal(a.headers['x-webhook-id'], a.json.id, 'X-Webhook-Id is the envelope id');
  t.match(String(a.headers['x-webhook-signature']), /^sha256=[0-9a-f]{64}$/, 'signature format (71 characters)');
  t.ok(validSignature(SECRET, a), 'signature verifies over the raw body');
  t.match(a.json.id, UUID_V7, 'id is a UUID v7');
  t.match(a.json.timestamp, RFC3339, 'timestamp is RFC 3339 UTC');
}

t.test('message.new, participant.joined and participant.left: exact envelopes, headers, signature', async (t) => {
  const d = await createDialog(api, {
    object_id: 'wh-1', object_type: 'tender', title: 'Tender wh-1',
    participants: [{ user_id: 'wh1-a', display_name: 'A', company: 'Acme' }, { user_id: 'wh1-b', display_name: 'B' }],
    access_scopes: [{ scope_level0: ['wh1-tenant'] }],
  });
  const m1 = await send(d, 'wh1-a', '<p>Truck is at gate 4</p>');
  const m2 = await send(d, 'wh1-b', 'ok', { reply_to: m1.id });
  const join = await api('POST', `/api/v1/dialogs/${d}/join`, { user: 'wh1-c', scope: { scope_level0: ['wh1-tenant'] }, body: { display_name: 'C', company: 'Carrier' } });
  t.equal(join.status, 200);
  const parts = await api('GET', `${M}/${d}`);
  const joinedAt = parts.json.data.participants.find((p: any) => p.user_id === 'wh1-c').joined_at;
  const leave = await api('POST', `/api/v1/dialogs/${d}/leave`, { user: 'wh1-c' });
  t.equal(leave.status, 200);

  await until('four webhooks', () => forDialog(d).filter((a) => a.json.type !== 'notification_pending').length >= 4);
  await quiesce();
  // Sorted by event id (UUID v7, in commit order): arrival order is per-dialog only within one
  // worker's consumer, and the service's own worker may share the consumer with this test's.
  const got = forDialog(d).filter((a) => a.json.type !== 'notification_pending').sort((x, y) => x.json.id.localeCompare(y.json.id));
  t.same(got.map((a) => a.json.type), ['message_new', 'message_new', 'participant_joined', 'participant_left'], 'one webhook each; none for system messages');

  const ref = { dialog_id: d, object_id: 'wh-1', object_type: 'tender' };
  const [w1, w2, wj, wl] = got;
  checkHeaders(t, w1, 'message.new');
  t.equal(w1.body, JSON.stringify({
    id: w1.json.id, type: 'message_new', timestamp: w1.json.timestamp,
    payload: { ...ref, message: { id: m1.id, sender_id: 'wh1-a', content: '<p>Truck is at gate 4</p>', created_at: m1.sent_at, message_type: 'user' } },
  }), 'message_new body byte for byte: key order, reply_to omitted when null');
  checkHeaders(t, w2, 'message.new');
  t.equal(w2.body, JSON.stringify({
    id: w2.json.id, type: 'message_new', timestamp: w2.json.timestamp,
    payload: { ...ref, message: { id: m2.id, sender_id: 'wh1-b', content: 'ok', reply_to: m1.id, created_at: m2.sent_at, message_type: 'user' } },
  }), 'reply_to present when set');
  checkHeaders(t, wj, 'participant.joined');
  t.equal(wj.body, JSON.stringify({
    id: wj.json.id, type: 'participant_joined', timestamp: wj.json.timestamp,
    payload: { ...ref, user_id: 'wh1-c', joined_as: 'joined', joined_at: joinedAt },
  }));
  checkHeaders(t, wl, 'participant.left');
  t.equal(wl.body, JSON.stringify({
    id: wl.json.id, type: 'participant_left', timestamp: wl.json.timestamp,
    payload: { ...ref, user_id: 'wh1-c', left_at: wl.json.payload.left_at },
  }));
  t.match(wl.json.payload.left_at, RFC3339);
  t.equal(new Set(got.map((a) => a.json.id)).size, 4, 'distinct event ids');
  t.equal(forDialog(d, receiver.attempts).filter((a) => a.json.type !== 'notification_pending').length, 4, 'each delivered at the first attempt');
});

t.test('operations the spec excludes send no webhook', async (t) => {
  const d = await createDialog(api, {
    object_id: 'wh-2', participants: [{ user_id: 'wh2-a', display_name: 'A' }, { user_id: 'wh2-b', display_name: 'B' }],
  });
  t.equal((await api('POST', `${M}/${d}/participants`, { body: { user_id: 'wh2-c', display_name: 'C' } })).status, 201, 'management add');
  t.equal((await api('DELETE', `${M}/${d}/participants/wh2-b`)).status, 204, 'management remove');
  const m = await send(d, 'wh2-a', 'first');
  t.equal((await api('PUT', `/api/v1/dialogs/${d}/messages/${m.id}`, { user: 'wh2-a', body: { content: 'edited' } })).status, 200, 'edit');
  const m2 = await send(d, 'wh2-a', 'second');
  t.equal((await api('DELETE', `/api/v1/dialogs/${d}/messages/${m2.id}`, { user: 'wh2-a' })).status, 204, 'delete');
  const gone = await createDialog(api, { object_id: 'wh-2b', participants: [{ user_id: 'wh2-a', display_name: 'A' }] });
  t.equal((await api('DELETE', `${M}/${gone}`)).status, 204, 'dialog delete');

  await until('both sends delivered', () => ofType(d, 'message_new').length >= 2);
  await quiesce();
  t.same(forDialog(d, receiver.attempts).filter((a) => a.json.type !== 'notification_pending').map((a) => [a.json.type, a.json.payload.message?.id]),
    [['message_new', m.id], ['message_new', m2.id]], 'only the two user messages; nothing for create, add, remove, edit, delete, system messages');
  t.equal(forDialog(gone, receiver.attempts).length, 0, 'nothing for a created and deleted dialog');
});

t.test('receiver down for less than the retry window: every event arrives, retries reuse the id and body', async (t) => {
  const d = await createDialog(api, { object_id: 'wh-3', participants: [{ user_id: 'wh3-a', display_name: 'A' }] });
  // Down for the first two attempts of every event: a 503, then a dropped connection.
  receiver.rules.set(d, (n) => (n === 1 ? 503 : n === 2 ? 'drop' : 200));
  const sent = [await send(d, 'wh3-a', 'one'), await send(d, 'wh3-a', 'two'), await send(d, 'wh3-a', 'three')];
  await until('three delivered', () => ofType(d, 'message_new').length === 3);
  await quiesce();
  const delivered = ofType(d, 'message_new');
  t.same(delivered.map((a) => a.json.payload.message.id).sort(), sent.map((s) => s.id).sort(), 'every event arrived once');
  for (const a of delivered) {
    const tries = forDialog(d, receiver.attempts).filter((x) => x.json.id === a.json.id);
    t.same(tries.map((x) => x.n), [1, 2, 3], 'two failed attempts, then delivered');
    t.equal(new Set(tries.map((x) => x.body)).size, 1, 'every attempt carries the same bytes');
    t.ok(tries.every((x) => validSignature(SECRET, x)), 'and a valid signature');
  }
});

t.test('a request that times out is retried; 408 and 429 are retried', async (t) => {
  const d = await createDialog(api, { object_id: 'wh-4', participants: [{ user_id: 'wh4-a', display_name: 'A' }] });
  const answers: ('hang' | number)[] = ['hang', 408, 429];
  const sent: string[] = [];
  for (const first of answers) {
    receiver.rules.set(d, (n) => (n === 1 ? first : 200));
    const m = await send(d, 'wh4-a', `first answer ${first}`);
    sent.push(m.id);
    await until(`delivery after ${first}`, () => ofType(d, 'message_new').some((a) => a.json.payload.message.id === m.id));
    const tries = forDialog(d, receiver.attempts).filter((x) => x.json.payload.message.id === m.id);
    t.same(tries.map((x) => [x.n, x.answer]), [[1, first], [2, 200]], `${first} → retried once, then delivered`);
  }
});

t.test('a hanging request times out even when garbage collection runs while it hangs', async (t) => {
  // The sender's timeout once lived in AbortSignal.any([…, AbortSignal.timeout()]), which Node 20
  // holds only weakly: a full collection during the request cancelled it, the request never ended
  // and every later event of the dialog waited behind it.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const d = await createDialog(api, { object_id: 'wh-gc', participants: [{ user_id: 'whgc-a', display_name: 'A' }] });
  receiver.rules.set(d, (n) => (n === 1 ? 'hang' : 200));
  const m = await send(d, 'whgc-a', 'hang, then collect');
  const next = await send(d, 'whgc-a', 'queued behind it');
  await until('the first attempt hanging', () => forDialog(d, receiver.attempts).length >= 1);
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  await until('both delivered', () => [m.id, next.id].every((id) => ofType(d, 'message_new').some((a) => a.json.payload.message.id === id)));
  const tries = forDialog(d, receiver.attempts).filter((x) => x.json.payload.message.id === m.id);
  t.same(tries.map((x) => [x.n, x.answer]), [[1, 'hang'], [2, 200]], 'timed out once, then delivered');
});

t.test('4xx other than 408/429 is not retried: dead-lettered after one attempt', async (t) => {
  const d = await createDialog(api, { object_id: 'wh-5', participants: [{ user_id: 'wh5-a', display_name: 'A' }] });
  for (const status of [400, 410, 422]) {
    receiver.rules.set(d, () => status);
    const m = await send(d, 'wh5-a', `rejected with ${status}`);
    let id = '';
    await until(`dead letter for ${status}`, async () => {
      const a = forDialog(d, receiver.attempts).find((x) => x.json.payload.message.id === m.id);
      if (!a) return false;
      id = a.json.id;
      return (await listDeadLetters(nc, srv.namespace)).some((x) => x.webhookId === id);
    });
    const dl = (await listDeadLetters(nc, srv.namespace)).find((x) => x.webhookId === id)!;
    t.equal(dl.lastError, `HTTP ${status}`);
    t.equal(dl.attempts, 1);
    t.equal(dl.event, 'message.new');
    t.equal(dl.subject, `${srv.namespace}.wh.${d}`);
    t.same(forDialog(d, receiver.attempts).filter((x) => x.json.id === id).map((x) => x.n), [1], 'exactly one attempt');
  }
  await quiesce();
  t.equal(forDialog(d, receiver.attempts).length, 3, 'no retry of any of them');
});

t.test('receiver always failing: dead letter after the configured attempts; replay delivers it with the same id', async (t) => {
  const d = await createDialog(api, { object_id: 'wh-6', participants: [{ user_id: 'wh6-a', display_name: 'A' }] });
  receiver.rules.set(d, () => 500);
  const m = await send(d, 'wh6-a', 'never accepted');
  let dl: Awaited<ReturnType<typeof listDeadLetters>>[number] | undefined;
  await until('dead letter', async () => {
    dl = (await listDeadLetters(nc, srv.namespace)).find((x) => x.subject === `${srv.namespace}.wh.${d}`);
    return dl !== undefined;
  });
  await quiesce();
  const tries = forDialog(d, receiver.attempts);
  t.same(tries.map((x) => x.n), [1, 2, 3, 4], 'first attempt + WEBHOOK_MAX_RETRIES (3) retries, then no more');
  t.equal(dl!.webhookId, tries[0].json.id);
  t.equal(dl!.body, tries[0].body, 'the dead letter keeps the exact body');
  t.equal(dl!.lastError, 'HTTP 500');
  t.equal(dl!.attempts, 4);
  t.equal(JSON.parse(dl!.body).payload.message.id, m.id);

  receiver.rules.set(d, () => 200);
  const replayed = await replayDeadLetters(nc, srv.namespace, (x) => x.webhookId === dl!.webhookId);
  t.equal(replayed.length, 1);
  await until('replayed delivery', () => ofType(d, 'message_new').length === 1);
  const ok = ofType(d, 'message_new')[0];
  t.equal(ok.headers['x-webhook-id'], dl!.webhookId, 'same X-Webhook-Id');
  t.equal(ok.body, dl!.body, 'same body');
  t.ok(validSignature(SECRET, ok));
  t.notOk((await listDeadLetters(nc, srv.namespace)).some((x) => x.webhookId === dl!.webhookId), 'removed from the dead letters');
});

t.test('a relay that published but crashed before deleting its rows causes no duplicate', async (t) => {
  const d = await createDialog(api, { object_id: 'wh-7', participants: [{ user_id: 'wh7-a', display_name: 'A' }] });
  const m = await send(d, 'wh7-a', 'once');
  await until('delivered', () => ofType(d, 'message_new').length === 1);
  const first = ofType(d, 'message_new')[0];
  // The row as it was before the crash: same id (= Nats-Msg-Id), republished by the next relay.
  await srv.sql(`INSERT INTO outbox (id, kind, dialog_id, payload, created_at) VALUES ($1, 'webhook.message_new', $2, $3, now())`,
    [first.json.id, d, JSON.stringify(first.json.payload)]);
  delivery.nudge();
  await send(d, 'wh7-a', 'sentinel');
  await until('sentinel', () => ofType(d, 'message_new').length >= 2);
  await quiesce();
  t.same(ofType(d, 'message_new').map((a) => a.json.payload.message.content), ['once', 'sentinel'], 'the republished row was dropped as a duplicate');
  t.equal(first.json.payload.message.id, m.id);
});

t.test('notifications: one per unread recipient; none when read, disabled, removed, or for the sender', async (t) => {
  const d = await createDialog(api, {
    object_id: 'nt-1', object_type: 'tender', title: 'Tender nt-1 — carriers',
    participants: ['a', 'b', 'c', 'd', 'e'].map((u) => ({ user_id: `nt1-${u}`, display_name: u.toUpperCase(), company: u === 'a' ? 'Northline Logistics' : undefined })),
  });
  t.equal((await api('POST', `/api/v1/dialogs/${d}/notifications`, { user: 'nt1-d', body: { enabled: false } })).status, 200);
  const m = await send(d, 'nt1-a', 'are you there?');
  t.equal((await api('POST', `/api/v1/dialogs/${d}/read`, { user: 'nt1-c', body: { last_read_message_id: m.id } })).status, 200, 'c reads within the delay');
  t.equal((await api('DELETE', `${M}/${d}/participants/nt1-e`)).status, 204, 'e is removed within the delay');

  await until('notification for b', () => ofType(d, 'notification_pending').length >= 1);
  await quiesce();
  const n = ofType(d, 'notification_pending');
  t.equal(n.length, 1, 'exactly one notification');
  const a = n[0];
  checkHeaders(t, a, 'notification.pending');
  t.equal(a.json.id, notificationId(m.id, 'nt1-b'), 'deterministic id per message × recipient');
  t.equal(a.body, JSON.stringify({
    id: a.json.id, type: 'notification_pending', timestamp: a.json.timestamp,
    payload: {
      dialog_id: d, object_id: 'nt-1', object_type: 'tender', recipient_id: 'nt1-b',
      chat_title: 'Tender nt-1 — carriers', sender_company: 'Northline Logistics',
      message: { id: m.id, sender_id: 'nt1-a', content: 'are you there?', created_at: m.sent_at, message_type: 'user' },
    },
  }), 'spec payload, byte for byte');
});

t.test('notifications: chat_title and sender_company omitted when null; one per message (no debounce)', async (t) => {
  const d = await createDialog(api, { object_id: 'nt-2', participants: [{ user_id: 'nt2-a', display_name: 'A' }, { user_id: 'nt2-b', display_name: 'B' }] });
  const m1 = await send(d, 'nt2-a', 'one');
  const m2 = await send(d, 'nt2-a', 'two');
  await until('two notifications', () => ofType(d, 'notification_pending').length >= 2);
  await quiesce();
  const n = ofType(d, 'notification_pending');
  t.same(n.map((a) => a.json.payload.message.id).sort(), [m1.id, m2.id].sort(), 'one per unread message');
  for (const a of n) {
    t.same(Object.keys(a.json.payload), ['dialog_id', 'object_id', 'object_type', 'recipient_id', 'message']);
    t.equal(a.json.payload.recipient_id, 'nt2-b');
  }
});

t.test('consumer restarted during the delay: still delivered, one X-Webhook-Id per message × recipient', async (t) => {
  const d = await createDialog(api, { object_id: 'nt-3', participants: [{ user_id: 'nt3-a', display_name: 'A' }, { user_id: 'nt3-b', display_name: 'B' }] });
  const m = await send(d, 'nt3-a', 'restart me');
  // Wait until the check is parked in the stream (relayed, taken and postponed), then restart.
  await until('check waiting in its delay', async () => {
    const ci = await jsm.consumers.info(names.notifyStream, names.notifyConsumer);
    return ci.num_ack_pending === 1 && ci.num_pending === 0;
  });
  await delivery.stop();
  delivery = await start();
  await until('notification after restart', () => ofType(d, 'notification_pending').length >= 1);
  await quiesce();
  const n = ofType(d, 'notification_pending');
  t.equal(n.length, 1);
  t.equal(n[0].json.id, notificationId(m.id, 'nt3-b'));
});

t.test('a notification check processed twice (crash after publishing, before the ack) yields one X-Webhook-Id', async (t) => {
  const d = await createDialog(api, { object_id: 'nt-4', participants: [{ user_id: 'nt4-a', display_name: 'A' }, { user_id: 'nt4-b', display_name: 'B' }] });
  const m = await send(d, 'nt4-a', 'twice');
  await until('first notification', () => ofType(d, 'notification_pending').length >= 1);
  // The same check delivered again, as after a crash (a different stream message).
  const js = jetstream(nc);
  await js.publish(names.notifySubject(d), JSON.stringify({ dialog_id: d, message_id: m.id, sender_id: 'nt4-a' }), { msgID: `again-${m.id}` });
  await quiesce();
  const n = ofType(d, 'notification_pending');
  t.same([...new Set(n.map((a) => a.json.id))], [notificationId(m.id, 'nt4-b')], 'one distinct id');
  t.equal(n.length, 1, 'the copy was dropped by the duplicate window');
});
