// Smart notifications while the only worker dies (kill -9) during the notification delay, and a
// new worker takes over: every message × unread recipient still gets its notification.pending,
// under one X-Webhook-Id (a duplicate is the same id, body and signature), and the sender none.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createDialog } from '../helpers/api.js';
import { deliveryIdle, differingRepeats, until, validSignature, type Attempt } from '../helpers/webhook-receiver.js';
import { startWebhookCluster } from '../helpers/webhook-cluster.js';
import { notificationId } from '../../src/delivery/envelope.js';

t.setTimeout(170_000);

const SECRET = 'cluster-ntsec-0123456789abcdef';
/**
 * The kill (right after the checks are parked) falls inside it; most checks fall due before the
 * new worker is up, while the dead worker's pull request may still be queued on the server.
 */
const DELAY_MS = 6000;
// One sender: a participant who sends has read everything before, so a recipient who also sent
// would lose notifications depending on timing.
const SENDER = 'n-a';
const RECIPIENTS = ['n-b', 'n-c'];

const { receiver, cluster, jsm, names, w1, api, restSend, sendRepeating, repeated: repeatedSends } = await startWebhookCluster(t, SECRET, {
  NOTIFICATION_DELAY_MS: String(DELAY_MS),
});


/** Where notifications are stuck, for failure messages. */
async function deliveryState(): Promise<string> {
  const out = await cluster.sql('SELECT kind, count(*)::int AS n FROM outbox GROUP BY kind');
  const parts = [`outbox ${JSON.stringify(out.rows)}`];
  for (const [s, c] of [[names.notifyStream, names.notifyConsumer], [names.webhooksStream, names.webhookConsumer]]) {
    const ci = await jsm.consumers.info(s, c);
    parts.push(`${c}: waiting ${ci.num_waiting} ack_pending ${ci.num_ack_pending} pending ${ci.num_pending} redelivered ${ci.num_redelivered} delivered ${ci.delivered.consumer_seq}/${ci.delivered.stream_seq} ack_floor ${ci.ack_floor.consumer_seq}/${ci.ack_floor.stream_seq}`);
  }
  const byType = new Map<string, number>();
  for (const a of receiver.attempts) byType.set(`${a.json?.type}/${a.answer}`, (byType.get(`${a.json?.type}/${a.answer}`) ?? 0) + 1);
  parts.push(`receiver: ${JSON.stringify(Object.fromEntries(byType))}`);
  return parts.join('; ');
}

t.test('notifications: worker killed (kill -9) during the notification delay → still delivered, at most one distinct X-Webhook-Id per message × recipient', async (t) => {
  t.teardown(() => {
    if (!t.passing()) t.comment(cluster.logTails(30));
  });
  const dialogs = await Promise.all([0, 1, 2].map(() => createDialog(api, {
    object_id: randomUUID(), participants: [SENDER, ...RECIPIENTS].map((u) => ({ user_id: u, display_name: u.toUpperCase() })),
  })));
  const isNotification = (a: Attempt) => a.json?.type === 'notification_pending' && dialogs.includes(a.json.payload?.dialog_id);

  const sent: string[] = [];
  await Promise.all(dialogs.map(async (dlg) => {
    for (let i = 0; i < 4; i++) sent.push(await restSend(dlg, SENDER, `notify ${i}`));
  }));
  // Every check relayed and taken by w1, which parks each one in the stream until it is due.
  await until('the checks waiting in their delay', async () => {
    const ci = await jsm.consumers.info(names.notifyStream, names.notifyConsumer);
    return ci.num_pending === 0 && ci.num_ack_pending >= sent.length;
  }, 15_000);

  // One more send per dialog on its way while the worker dies; a new worker is started.
  const late = Promise.all(dialogs.map((dlg) => sendRepeating(dlg, SENDER, 'late')));
  const beforeKill = receiver.attempts.filter(isNotification).length;
  const killedAt = Date.now();
  await cluster.kill(w1);
  t.equal((await w1.exited).signal, 'SIGKILL', 'w1 died of SIGKILL');
  t.equal(beforeKill, 0, 'no notification was due yet when the worker died');
  const w2 = await cluster.spawn('worker', 'w2');
  t.comment(`w2 ready ${Date.now() - killedAt} ms after the kill`);
  sent.push(...(await late));
  t.equal(new Set(sent).size, 15, 'all 15 sends answered 200');
  if (repeatedSends() > 0) t.comment(`late sends repeated after a 503: ${repeatedSends()}`);

  const expected = new Map<string, string>(); // notification id → "message|recipient"
  for (const m of sent) for (const u of RECIPIENTS) expected.set(notificationId(m, u), `${m}|${u}`);
  const deliveredIds = () => new Set(receiver.delivered().filter(isNotification).map((a) => String(a.headers['x-webhook-id'])));
  await until('a notification for every message × unread recipient', () => [...expected.keys()].every((id) => deliveredIds().has(id)), 90_000).catch(async (e) => {
    const got = deliveredIds();
    t.comment(`missing: ${[...expected].filter(([id]) => !got.has(id)).map(([, k]) => k).join(', ')}\n${await deliveryState()}`);
    throw e;
  });
  t.comment(`every notification delivered ${Date.now() - killedAt} ms after the kill`);
  // Late copies (a check run twice) would come before everything has settled.
  await until('delivery idle', () => deliveryIdle((q) => cluster.sql(q), jsm, names), 60_000);

  const attempts = receiver.attempts.filter(isNotification);
  const idsPerPair = new Map<string, Set<string>>();
  for (const a of attempts) {
    const pair = `${a.json.payload.message.id}|${a.json.payload.recipient_id}`;
    if (!idsPerPair.has(pair)) idsPerPair.set(pair, new Set());
    idsPerPair.get(pair)!.add(String(a.headers['x-webhook-id']));
  }
  t.same([...idsPerPair].filter(([, ids]) => ids.size !== 1).map(([p]) => p), [], 'one X-Webhook-Id per message × recipient over every attempt');
  t.same([...idsPerPair.keys()].sort(), [...expected.values()].sort(), 'notifications for exactly the message × recipient pairs that were unread');
  t.equal(attempts.filter((a) => a.json.payload.recipient_id === SENDER).length, 0, 'none for the sender');
  t.same(attempts.filter((a) => expected.get(String(a.headers['x-webhook-id'])) !== `${a.json.payload.message.id}|${a.json.payload.recipient_id}`).length, 0,
    'each X-Webhook-Id is the one derived from its message and recipient');
  t.equal(attempts.filter((a) => a.headers['x-webhook-id'] !== a.json.id || a.headers['x-webhook-event'] !== 'notification.pending' || !validSignature(SECRET, a)).length, 0,
    'ids, event names and signatures all valid');
  t.equal(differingRepeats(attempts).length, 0, 'every attempt with the same X-Webhook-Id has the same body and signature');
  const delivered = receiver.delivered().filter(isNotification);
  t.comment(`${attempts.length} attempts, ${delivered.length} deliveries of ${expected.size} notifications`);
  t.ok(w2.alive(), 'the new worker is still running');
});
