// Webhooks while the only worker dies (kill -9) with deliveries in flight, and a new worker takes
// over: every event still reaches the host platform; a duplicate carries the same X-Webhook-Id
// (and so the same body and signature). Its own cluster, so it runs alone or beside other files.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createDialog } from '../helpers/api.js';
import { differingRepeats, until, validSignature, type Attempt } from '../helpers/webhook-receiver.js';
import { startWebhookCluster } from '../helpers/webhook-cluster.js';

t.setTimeout(170_000);

const SECRET = 'cluster-whsec-0123456789abcdef';
const { receiver, cluster, jsm, names, w1, api, restSend, sendRepeating, repeated: repeatedSends } = await startWebhookCluster(t, SECRET, {
  // Notification checks stay parked in the stream: they are not under test here.
  NOTIFICATION_DELAY_MS: '600000',
});
const people = (...ids: string[]) => ids.map((id) => ({ user_id: id, display_name: id.toUpperCase() }));


const webhookConsumer = () => jsm.consumers.info(names.webhooksStream, names.webhookConsumer);

/** Where webhook events are stuck, for failure messages. */
async function deliveryState(): Promise<string> {
  const out = await cluster.sql('SELECT kind, count(*)::int AS n FROM outbox GROUP BY kind');
  const ci = await webhookConsumer();
  const si = await jsm.streams.info(names.webhooksStream);
  return `outbox ${JSON.stringify(out.rows)}; stream msgs ${si.state.messages} (${si.state.first_seq}..${si.state.last_seq}); consumer waiting ${ci.num_waiting} ack_pending ${ci.num_ack_pending} pending ${ci.num_pending} redelivered ${ci.num_redelivered} delivered ${JSON.stringify(ci.delivered)} ack_floor ${JSON.stringify(ci.ack_floor)}; receiver attempts ${receiver.attempts.length}`;
}

t.test('webhooks under kill -9 of the worker: every message_new arrives, duplicates only with the same X-Webhook-Id', async (t) => {
  t.teardown(() => {
    if (!t.passing()) t.comment(cluster.logTails(30));
  });
  const dialogs = await Promise.all([0, 1, 2].map(() => createDialog(api, { object_id: randomUUID(), participants: people('h-a', 'h-b') })));
  // The first two attempts of every event hang until the sender's 1 s timeout: each delivery is
  // in flight for over two seconds.
  for (const dlg of dialogs) receiver.rules.set(dlg, (n) => (n <= 2 ? 'hang' : 200));
  const isNew = (a: Attempt) => a.json?.type === 'message_new' && dialogs.includes(a.json.payload?.dialog_id);

  const ids: string[] = [];
  await Promise.all(dialogs.map(async (dlg) => {
    for (let i = 0; i < 8; i++) ids.push(await restSend(dlg, i % 2 ? 'h-a' : 'h-b', `hook ${i}`));
  }));
  const sentAt = Date.now();
  await until('deliveries under way', () => new Set(receiver.attempts.filter(isNew).map((a) => a.json.id)).size >= 6, 30_000).catch(async (e) => {
    t.comment(await deliveryState());
    throw e;
  });
  t.comment(`first attempts of 6 events ${Date.now() - sentAt} ms after the sends`);
  // More sends on their way (committed or not, relayed or not) while the only worker dies; a new one is started.
  const late = Promise.all(dialogs.flatMap((dlg) => [0, 1].map((i) => sendRepeating(dlg, 'h-a', `late ${i}`))));
  const seenBeforeKill = receiver.attempts.length;
  const killedAt = Date.now();
  await cluster.kill(w1);
  const w2 = await cluster.spawn('worker', 'w2');
  t.comment(`w2 ready ${Date.now() - killedAt} ms after the kill`);
  ids.push(...(await late));
  t.equal(new Set(ids).size, 30, 'all 30 sends answered 200 (the late ones once the new worker owned their partitions)');
  if (repeatedSends() > 0) t.comment(`late sends repeated after a 503: ${repeatedSends()}`);

  const before = receiver.attempts.slice(0, seenBeforeKill).filter(isNew);
  const inFlight = new Set(before.map((a) => a.json.payload.message.id));
  for (const a of before) if (typeof a.answer === 'number' && a.answer < 300) inFlight.delete(a.json.payload.message.id);
  t.ok(inFlight.size >= 6, `deliveries were in flight when the worker died (${inFlight.size} attempted, none delivered yet)`);

  await until('every message_new delivered', () => {
    const got = new Set(receiver.delivered().filter(isNew).map((a) => a.json.payload.message.id));
    return ids.every((id) => got.has(id));
  }, 100_000).catch(async (e) => {
    const got = new Set(receiver.delivered().filter(isNew).map((a) => a.json.payload.message.id));
    const missing = ids.filter((id) => !got.has(id));
    const tried = missing.map((id) => `${id}: ${receiver.attempts.filter((a) => isNew(a) && a.json.payload.message.id === id).map((a) => `${a.n}/${a.answer}`).join(',') || 'never attempted'}`);
    t.comment(`missing ${missing.length}: ${tried.join('; ')}\n${await deliveryState()}\nkilled at ${killedAt}, now ${Date.now()}`);
    throw e;
  });
  t.comment(`every message_new delivered ${Date.now() - killedAt} ms after the kill`);
  // Late copies (an event handed out twice) would come before the consumer has settled everything.
  await until('every webhook settled', async () => {
    const ci = await webhookConsumer();
    return ci.num_pending === 0 && ci.num_ack_pending === 0;
  }, 60_000);

  const attempts = receiver.attempts.filter(isNew);
  const hookIds = new Map<string, Set<string>>();
  for (const a of attempts) {
    const m = a.json.payload.message.id;
    if (!hookIds.has(m)) hookIds.set(m, new Set());
    hookIds.get(m)!.add(String(a.headers['x-webhook-id']));
  }
  t.same([...hookIds].filter(([, s]) => s.size !== 1).map(([m]) => m), [], 'one X-Webhook-Id per message over every attempt');
  t.same([...hookIds.keys()].sort(), [...ids].sort(), 'a message_new webhook for exactly the messages sent');
  t.same(attempts.filter((a) => a.headers['x-webhook-id'] !== a.json.id || a.headers['x-webhook-event'] !== 'message.new' || !validSignature(SECRET, a)).length, 0, 'ids, event names and signatures all valid');
  t.equal(differingRepeats(attempts).length, 0, 'every attempt with the same X-Webhook-Id has the same body and signature');
  const delivered = receiver.delivered().filter(isNew);
  const dup = delivered.length - new Set(delivered.map((a) => a.json.id)).size;
  t.comment(`${attempts.length} attempts, ${delivered.length} deliveries, ${dup} duplicate deliveries (same X-Webhook-Id)`);
  const db = await cluster.sql(`SELECT count(*)::int AS n FROM messages WHERE dialog_id = ANY($1::uuid[]) AND message_type = 'user'`, [dialogs]);
  t.equal(db.rows[0].n, 30, 'each send stored once, the late ones included');
  await until('the outbox is drained', async () => (await cluster.sql('SELECT count(*)::int AS n FROM outbox')).rows[0].n === 0, 15_000);
  t.ok(w2.alive(), 'the new worker is still running');
});
