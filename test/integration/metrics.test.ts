// Prometheus metrics (issue [4/4]): every family in helm/mtchat/metric-names.json is exposed on
// /metrics with its type and labels and nothing else is, no label names a user or a dialog, and each
// action — request, send, socket open, slow-consumer close, webhook delivery and dead letter,
// rate-limit rejection, resume, overload — moves its family by exactly what happened.
import t from 'tap';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { encode } from '@msgpack/msgpack';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsGateway } from '../../src/actors/nats-gateway.js';
import { Subjects } from '../../src/bus/subjects.js';
import { listDeadLetters } from '../../src/delivery/dlq.js';
import { deliveryNames } from '../../src/delivery/streams.js';
import { PARTITION_COUNT } from '../../src/domain/partition.js';
import { PG_BASE, startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';
import { MSGPACK, TestSocket } from '../helpers/ws-client.js';
import { deliveryIdle, startReceiver, until } from '../helpers/webhook-receiver.js';

const NAMES = JSON.parse(readFileSync(new URL('../../helm/mtchat/metric-names.json', import.meta.url), 'utf8')) as {
  metrics: Record<string, { type: string; labels: string[] }>;
  defaultMetrics: Record<string, { type: string; labels: string[] }>;
};

const receiver = await startReceiver();
const srv = await startTestServer({
  WEBHOOK_URL: receiver.url,
  WEBHOOK_SECRET: 'metrics-test-secret',
  WEBHOOK_MAX_RETRIES: '1',
  WEBHOOK_RETRY_BASE_MS: '50',
  WEBHOOK_TIMEOUT_SECS: '2',
  NOTIFICATION_DELAY_MS: '100',
  RATE_LIMIT_ENABLED: 'true',
  RATE_LIMIT_RPS: '50',
  RATE_LIMIT_BURST: '50',
  MTCHAT_MAILBOX_CAPACITY: '1',
});
const sockets: TestSocket[] = [];
t.teardown(async () => {
  for (const s of sockets) s.close();
  await srv.close();
  await receiver.close();
});

const api = client(srv.url);
const m = srv.app.metrics;

// ---- reading metrics ---------------------------------------------------------------------------

interface Sample {
  value: number;
  labels: Partial<Record<string, string | number>>;
  metricName?: string;
}
interface Readable {
  get(): Promise<{ values: Sample[] }> | { values: Sample[] };
}

/** Sum of the samples whose labels include `labels` (histograms: pass the `_count` / `_sum` suffix). */
async function val(metric: Readable, labels: Record<string, string> = {}, suffix?: string): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => (suffix === undefined ? true : v.metricName?.endsWith(suffix)))
    .filter((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))
    .reduce((a, v) => a + v.value, 0);
}
const count = (h: Readable) => val(h, {}, '_count');
const sum = (h: Readable) => val(h, {}, '_sum');

/** The families on GET /metrics: name → type, and every label name seen on a sample. */
async function scrape(): Promise<{ types: Map<string, string>; sampleLabels: Set<string> }> {
  const r = await api('GET', '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const types = new Map<string, string>();
  const sampleLabels = new Set<string>();
  for (const line of r.text.split('\n')) {
    const ty = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (ty) types.set(ty[1], ty[2]);
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(.*)\} /.exec(line);
    if (sample) for (const l of sample[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) sampleLabels.add(l[1]);
  }
  return { types, sampleLabels };
}

// ---- the service's side ------------------------------------------------------------------------

const people = (...ids: string[]) => ids.map((id) => ({ user_id: id, display_name: id.toUpperCase(), company: 'Acme' }));
/** Participants per dialog: a message in a dialog with someone else (who never reads) is notified. */
const members = new Map<string, number>();
const expectNotified = { emitted: 0, suppressed: 0 };

async function dialog(...users: string[]): Promise<string> {
  const id = await createDialog(api, { object_id: randomUUID(), participants: people(...users) });
  members.set(id, users.length);
  return id;
}

function sentIn(dialogId: string): void {
  if ((members.get(dialogId) ?? 1) > 1) expectNotified.emitted++;
  else expectNotified.suppressed++;
}

async function send(user: string, dialogId: string, content: string): Promise<{ id: string }> {
  const r = await api('POST', `/api/v1/dialogs/${dialogId}/messages`, { user, body: { content } });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  sentIn(dialogId);
  return r.json.data;
}

async function open(user: string, o: { msgpack?: boolean; resume?: boolean } = {}): Promise<TestSocket> {
  const query: Record<string, string> = { user_id: user };
  if (o.resume) query.resume = '1';
  const s = await TestSocket.connect(srv.url, { query, protocols: o.msgpack ? [MSGPACK] : [] });
  sockets.push(s);
  return s;
}

const FORBIDDEN_LABELS = ['user', 'user_id', 'dialog', 'dialog_id'];
const isDefault = (name: string) => name.startsWith('mtchat_nodejs_') || name.startsWith('mtchat_process_');

// ---- tests -------------------------------------------------------------------------------------

t.test('/metrics exposes exactly the families of metric-names.json, with their types and labels', async (t) => {
  const { types, sampleLabels } = await scrape();
  for (const [name, spec] of [...Object.entries(NAMES.metrics), ...Object.entries(NAMES.defaultMetrics)]) {
    t.equal(types.get(name), spec.type, `${name} is exposed as a ${spec.type}`);
  }
  const own = [...types.keys()].filter((n) => !isDefault(n));
  t.same(own.sort(), Object.keys(NAMES.metrics).sort(), 'no family outside the list (apart from Node defaults)');
  t.same([...types.keys()].filter((n) => !n.startsWith('mtchat_')), [], 'one prefix for everything');
  t.same([...types.keys()].filter((n) => isDefault(n) && !(n in NAMES.defaultMetrics)).filter((n) => !n.startsWith('mtchat_nodejs_')), [],
    'process families are all listed');

  const registered = m.registry.getMetricsAsArray() as unknown as { name: string; labelNames?: string[] }[];
  for (const [name, spec] of Object.entries(NAMES.metrics)) {
    const metric = registered.find((x) => x.name === name);
    t.same([...(metric?.labelNames ?? [])].sort(), [...spec.labels].sort(), `${name} labels`);
  }
  for (const x of registered) {
    t.same((x.labelNames ?? []).filter((l) => FORBIDDEN_LABELS.includes(l)), [], `${x.name} has no per-user or per-dialog label`);
  }
  t.same([...sampleLabels].filter((l) => FORBIDDEN_LABELS.includes(l)), [], 'no exposed sample carries a per-user or per-dialog label');
  t.ok(types.has('mtchat_nodejs_eventloop_lag_seconds') && types.has('mtchat_nodejs_gc_duration_seconds') && types.has('mtchat_nodejs_heap_size_used_bytes'),
    'Node defaults: event-loop lag, GC, heap');
});

t.test('an HTTP request is counted by method, route template and status, and timed', async (t) => {
  const ok = { method: 'GET', route: '/api/v1/dialogs', status: '200' };
  const before = await val(m.httpRequests, ok);
  const durBefore = await val(m.httpDuration, { method: 'GET', route: '/api/v1/dialogs' }, '_count');
  const r = await api('GET', '/api/v1/dialogs', { user: 'http-u' });
  t.equal(r.status, 200);
  t.equal(await val(m.httpRequests, ok), before + 1, 'mtchat_http_requests_total{route="/api/v1/dialogs",status="200"} +1');
  t.equal(await val(m.httpDuration, { method: 'GET', route: '/api/v1/dialogs' }, '_count'), durBefore + 1, 'one duration observed');

  const d = await dialog('http-u');
  const msgBefore = await val(m.httpRequests, { method: 'GET', route: '/api/v1/dialogs/:dialog_id/messages', status: '200' });
  t.equal((await api('GET', `/api/v1/dialogs/${d}/messages`, { user: 'http-u' })).status, 200);
  t.equal(await val(m.httpRequests, { method: 'GET', route: '/api/v1/dialogs/:dialog_id/messages', status: '200' }), msgBefore + 1,
    'the route label is the template, never the dialog id');

  const text = (await api('GET', '/metrics')).text;
  t.match(text, /^mtchat_http_requests_total\{method="GET",route="\/api\/v1\/dialogs",status="200"\} \d+$/m, 'visible on /metrics');
  t.notMatch(text, new RegExp(d), 'no dialog id anywhere in the exposition');
  t.notMatch(text, /http-u/, 'no user id anywhere in the exposition');
});

t.test('an HTTP rate-limit rejection is counted with transport="http"', async (t) => {
  const before = await val(m.rateLimitRejections, { transport: 'http' });
  const wsBefore = await val(m.rateLimitRejections, { transport: 'ws' });
  const status429 = await val(m.httpRequests, { route: '/api/v1/dialogs', status: '429' });
  const answers = await Promise.all(Array.from({ length: 150 }, () => api('GET', '/api/v1/dialogs', { user: 'rl-http' })));
  const refused = answers.filter((r) => r.status === 429);
  t.ok(refused.length > 0, `the burst is cut (${refused.length} of 150 refused)`);
  t.same(refused[0].json, { error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please slow down.' } });
  t.equal(answers.filter((r) => r.status === 200).length + refused.length, 150, 'every answer is a 200 or a 429');
  t.equal(await val(m.rateLimitRejections, { transport: 'http' }), before + refused.length, 'one rejection per 429');
  t.equal(await val(m.rateLimitRejections, { transport: 'ws' }), wsBefore, 'nothing counted for the WebSocket');
  t.equal(await val(m.httpRequests, { route: '/api/v1/dialogs', status: '429' }), status429 + refused.length, 'and the 429s by status');
});

t.test('open sockets are a gauge by wire format', async (t) => {
  const json0 = await val(m.wsConnections, { format: 'json' });
  const mp0 = await val(m.wsConnections, { format: 'msgpack' });
  const a = await open('sock-a');
  const b = await open('sock-b', { msgpack: true });
  const c = await open('sock-c', { msgpack: true });
  t.equal(await val(m.wsConnections, { format: 'json' }), json0 + 1, 'json +1');
  t.equal(await val(m.wsConnections, { format: 'msgpack' }), mp0 + 2, 'msgpack +2');
  a.close();
  b.close();
  await Promise.all([a.closed, b.closed]);
  await until('the server to see both closes', async () => (await val(m.wsConnections, { format: 'msgpack' })) === mp0 + 1);
  t.equal(await val(m.wsConnections, { format: 'json' }), json0, 'json back');
  c.close();
  await c.closed;
  await until('the last close', async () => (await val(m.wsConnections, { format: 'msgpack' })) === mp0);
  t.equal(await val(m.wsConnections, { format: 'msgpack' }), mp0, 'msgpack back');
});

t.test('sends: frames and bytes by direction and format, send latency (WS and REST), delivery latency', async (t) => {
  // snd-c never sends (sending reads the dialog): both messages stay unread by someone.
  const D = await dialog('snd-a', 'snd-b', 'snd-c');
  const s = await open('snd-a', { msgpack: true });
  let received = 0;
  let receivedBytes = 0;
  s.ws.on('message', (data: Buffer) => {
    received++;
    receivedBytes += data.length;
  });

  // A REST send: its answer feeds the send latency; its event reaches the socket live.
  const restBefore = await count(m.sendLatency);
  await send('snd-b', D, 'warm-up');
  t.equal(await count(m.sendLatency), restBefore + 1, 'REST send: one send latency observed');
  await s.waitFor((f) => f.type === 'message.new' && f.content === 'warm-up');

  const mp = { format: 'msgpack' };
  const snap = async () => ({
    inFrames: await val(m.wsFrames, { ...mp, direction: 'in' }),
    inBytes: await val(m.wsBytes, { ...mp, direction: 'in' }),
    outFrames: await val(m.wsFrames, { ...mp, direction: 'out' }),
    outBytes: await val(m.wsBytes, { ...mp, direction: 'out' }),
    jsonFrames: await val(m.wsFrames, { format: 'json' }),
    send: await count(m.sendLatency),
    delivery: await count(m.deliveryLatency),
    sendSum: await sum(m.sendLatency),
    deliverySum: await sum(m.deliveryLatency),
  });
  const before = await snap();
  received = 0;
  receivedBytes = 0;
  const frame = { type: 'send', id: 'c-1', dialog_id: D, content: 'over the socket' };
  s.send(frame);
  const ack = await s.waitFor((f) => f.type === 'ack' && f.id === 'c-1');
  t.equal(ack.message.content, 'over the socket');
  await s.waitFor((f) => f.type === 'message.new' && f.content === 'over the socket');
  sentIn(D);
  const after = await snap();
  t.equal(after.inFrames - before.inFrames, 1, 'one frame in');
  t.equal(after.inBytes - before.inBytes, encode(frame).byteLength, 'its exact size in bytes');
  t.equal(received, 2, 'the client got the ack and the event');
  t.equal(after.outFrames - before.outFrames, received, 'frames out: the ack (direct) and the event (topic publish)');
  t.equal(after.outBytes - before.outBytes, receivedBytes, 'bytes out: exactly what the client received');
  t.equal(after.jsonFrames, before.jsonFrames, 'nothing counted for the other format');
  t.equal(after.send - before.send, 1, 'WS send: one send latency observed (receipt → committed ack)');
  t.equal(after.delivery - before.delivery, 1, 'one delivery latency observed (commit → edge publish)');
  // Recorded in seconds: a send here takes milliseconds, so the sum stays far under 5; the bound
  // catches a value recorded in milliseconds whenever the send took 5 ms or more.
  const sendSecs = after.sendSum - before.sendSum;
  const deliverySecs = after.deliverySum - before.deliverySum;
  t.ok(sendSecs > 0 && sendSecs < 5, `the send latency is a positive number of seconds (${sendSecs})`);
  t.ok(deliverySecs >= 0 && deliverySecs < 5, `the delivery latency is a number of seconds (${deliverySecs})`);

  // A refused send is not a send latency.
  const refused = { type: 'send', id: 'c-2', dialog_id: randomUUID(), content: 'nowhere' };
  s.send(refused);
  t.same(await s.waitFor((f) => f.id === 'c-2'), { type: 'error', id: 'c-2', code: 'DIALOG_NOT_FOUND', message: 'Dialog not found' });
  t.equal(await count(m.sendLatency), after.send, 'an error answer is not observed');
});

t.test('a WebSocket rate-limit rejection is counted with transport="ws"', async (t) => {
  const s = await open('rl-ws');
  const before = await val(m.rateLimitRejections, { transport: 'ws' });
  const httpBefore = await val(m.rateLimitRejections, { transport: 'http' });
  for (let i = 0; i < 60; i++) s.send({ type: 'ping' });
  await until('every ping to be answered', () => s.frames.filter((f) => f.type === 'pong' || f.type === 'error').length === 60);
  const errors = s.frames.filter((f) => f.type === 'error');
  t.ok(errors.length > 0, `some pings were refused (${errors.length})`);
  t.same(errors[0], { type: 'error', code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please slow down.' });
  t.equal(await val(m.rateLimitRejections, { transport: 'ws' }), before + errors.length, 'one rejection per refused frame');
  t.equal(await val(m.rateLimitRejections, { transport: 'http' }), httpBefore, 'nothing counted for HTTP');
});

t.test('resume requests and resync_required are counted', async (t) => {
  const R = await dialog('rs-a', 'rs-b');
  for (const c of ['m1', 'm2', 'm3']) await send('rs-a', R, c);
  const resumes = await val(m.resumeRequests);
  const resyncs = await val(m.resyncRequired);

  const a = await open('rs-b', { resume: true });
  a.send({ type: 'resume', id: 'r-1', dialogs: { [R]: 2 } });
  await a.waitFor((f) => f.type === 'resumed' && f.id === 'r-1');
  t.same(a.ofDialog(R).map((f) => f.seq), [3, 4, 5], 'the gap is replayed');
  t.equal(await val(m.resumeRequests), resumes + 1, 'one resume request');
  t.equal(await val(m.resyncRequired), resyncs, 'no resync needed');

  await srv.sql('DELETE FROM dialog_events WHERE dialog_id = $1 AND seq <= 3', [R]);
  const b = await open('rs-b', { resume: true });
  b.send({ type: 'resume', id: 'r-2', dialogs: { [R]: 1 } });
  await b.waitFor((f) => f.type === 'resumed' && f.id === 'r-2');
  t.same(b.frames.slice(1), [{ type: 'resync_required', dialog_id: R }, { type: 'resumed', id: 'r-2' }]);
  t.equal(await val(m.resumeRequests), resumes + 2, 'two resume requests');
  t.equal(await val(m.resyncRequired), resyncs + 1, 'one resync_required');
});

t.test('a slow consumer closed with 4008 is counted', async (t) => {
  const S = await dialog('slow');
  const row = JSON.stringify({ type: 'message.read', dialog_id: S, user_id: 'x'.repeat(8000), last_read_message_id: randomUUID(), seq: 0 });
  await srv.sql(`INSERT INTO dialog_events (dialog_id, seq, payload, created_at)
    SELECT $1, g, $2::jsonb, now() FROM generate_series(2, 3001) g`, [S, row]);
  await srv.sql('UPDATE dialogs SET last_seq = 3001 WHERE id = $1', [S]);
  const before = await val(m.slowConsumerDisconnects);
  const slow = await open('slow', { resume: true });
  const raw = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  raw.pause();
  slow.send({ type: 'resume', dialogs: { [S]: 0 } });
  await until('the server to give up on the socket', async () => (await val(m.slowConsumerDisconnects)) > before);
  raw.resume();
  t.same(await slow.closed, { code: 4008, reason: 'slow consumer' });
  t.equal(await val(m.slowConsumerDisconnects), before + 1, 'exactly one slow-consumer disconnect');
});

t.test('actors: overload rejections, mailbox depth, batch size, commit duration, partitions', async (t) => {
  const O = await dialog('ov-a', 'ov-b');
  const overloaded = await val(m.overloadRejections);
  const batches = await count(m.batchSize);
  const commands = await sum(m.batchSize);
  const commits = await count(m.commitDuration);
  const nats = await count(m.natsRequestDuration);
  // The mailbox holds one command per dialog: a burst on one dialog is partly refused.
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    api('POST', `/api/v1/dialogs/${O}/messages`, { user: 'ov-a', body: { content: `burst ${i}` } })));
  const ok = answers.filter((r) => r.status === 200).length;
  const busy = answers.filter((r) => r.status === 503);
  for (let i = 0; i < ok; i++) sentIn(O);
  t.ok(busy.length > 0, `some sends were refused (${busy.length} of 20)`);
  t.same(busy[0].json, { error: { code: 'OVERLOADED', message: 'Dialog is busy, retry later' } });
  t.equal(busy[0].headers.get('retry-after'), '1');
  t.equal(ok + busy.length, 20, 'every answer is a 200 or a 503');
  t.equal(await val(m.overloadRejections), overloaded + busy.length, 'one overload rejection per 503');
  t.equal(await val(m.mailboxDepth), 0, 'the mailbox is empty once every command is answered');
  t.equal((await sum(m.batchSize)) - commands, ok, 'batch sizes add up to the accepted commands');
  const nBatches = (await count(m.batchSize)) - batches;
  t.ok(nBatches >= 1 && nBatches <= ok, `one batch size per unit of work (${nBatches})`);
  t.equal((await count(m.commitDuration)) - commits, nBatches, 'one commit duration per unit of work');
  // This process serves every partition itself (role `all`): its commands skip NATS.
  t.equal((await count(m.natsRequestDuration)) - nats, 0, 'commands served in process make no NATS round trip');
  const viaNats = new NatsGateway(srv.app.nc, new Subjects(srv.namespace), srv.app.log, { metrics: m });
  const sent = answers.find((r) => r.status === 200)!.json.data.id as string;
  // The sender marks its own message: nobody's notification changes (the notification checks below count them).
  await viaNats.execute('markRead', O, { dialog_id: O, user_id: 'ov-a', message_id: sent });
  t.equal((await count(m.natsRequestDuration)) - nats, 1, 'a command from another edge is one NATS round trip');

  t.equal(await val(m.partitionsOwned), PARTITION_COUNT, 'the only worker owns every partition');
  t.equal(await val(m.partitionsUnowned), 0, 'none is without an owner');
  t.equal(await val(m.leaseTakeovers), 0, 'no partition was taken over from another worker');
});

t.test('NATS request timeouts: a command nobody serves', async (t) => {
  const before = await val(m.natsRequestTimeouts);
  const g = new NatsGateway(srv.app.nc, new Subjects(`${srv.namespace}_nobody`), srv.app.log, { deadlineMs: 400, metrics: m });
  const id = randomUUID();
  await t.rejects(g.execute('markRead', id, { dialog_id: id, user_id: 'x', message_id: randomUUID() }),
    { status: 503, code: 'OVERLOADED', message: 'Service temporarily unavailable' });
  t.ok(g.stats.gaveUp === 1 && g.stats.retries >= 1, 'it retried, then gave up');
  t.equal(await val(m.natsRequestTimeouts), before + g.stats.retries + 1, 'one per failed attempt');
});

t.test('outbox backlog and relay lag', async (t) => {
  const locker = new pg.Client({ connectionString: `${PG_BASE}/${srv.dbName}` });
  await locker.connect();
  t.teardown(() => locker.end());
  // A row the relay cannot take (locked here) is backlog; it is an hour old.
  let id = '';
  for (let tries = 0; tries < 20 && id === ''; tries++) {
    const candidate = randomUUID();
    await srv.sql(`INSERT INTO outbox (id, kind, dialog_id, payload, created_at)
      VALUES ($1, 'webhook.message_new', NULL, '{}'::jsonb, now() - interval '1 hour')`, [candidate]);
    await locker.query('BEGIN');
    const got = await locker.query('SELECT id FROM outbox WHERE id = $1 FOR UPDATE', [candidate]);
    if (got.rowCount === 1) id = candidate;
    else await locker.query('ROLLBACK'); // the relay was quicker: try again
  }
  t.not(id, '', 'a row is held back');
  await until('the relay to report the backlog', async () => (await val(m.outboxBacklog)) >= 1);
  t.equal(await val(m.outboxBacklog), 1, 'one row waiting');
  t.ok((await val(m.outboxRelayLag)) >= 3599, 'its age is the relay lag');
  await locker.query('DELETE FROM outbox WHERE id = $1', [id]);
  await locker.query('COMMIT');
  await until('the backlog to drain', async () => (await val(m.outboxBacklog)) === 0);
  t.equal(await val(m.outboxRelayLag), 0, 'no lag without a backlog');
});

t.test('webhooks by outcome, attempts and dead letters; notifications emitted and suppressed', async (t) => {
  const ok = await dialog('wh-a', 'wh-b');
  const bad = await dialog('wh-c', 'wh-d');
  const solo = await dialog('wh-e');
  receiver.rules.set(bad, () => 500);
  await send('wh-a', ok, 'to a healthy receiver');
  await send('wh-c', bad, 'to a failing receiver');
  await send('wh-e', solo, 'nobody else to notify');

  const names = deliveryNames(srv.namespace);
  const jsm = await jetstreamManager(srv.app.nc);
  const outcome = (o: string) => val(m.webhookDeliveries, { outcome: o });
  await until('delivery to settle', async () => {
    if (!(await deliveryIdle(srv.sql, jsm, names))) return false;
    const settled = (await outcome('delivered')) + (await outcome('retried')) + (await outcome('dead_lettered')) + (await outcome('failed'));
    return (await val(m.webhookDeadLetters)) >= 1 && settled === (await val(m.webhookAttempts)) && (await val(m.webhookAttempts)) === receiver.attempts.length;
  }, 30_000);

  const failedFirst = receiver.attempts.filter((a) => a.answer === 500 && a.n === 1).length;
  const failedLast = receiver.attempts.filter((a) => a.answer === 500 && a.n === 2).length;
  t.ok(receiver.delivered().some((a) => a.json?.payload?.dialog_id === ok && a.json.type === 'message_new'), 'the healthy dialog got its message');
  t.ok(failedLast >= 1, 'the failing dialog exhausted its retry');
  t.equal(await val(m.webhookAttempts), receiver.attempts.length, 'one attempt per request the receiver got');
  t.equal(await outcome('delivered'), receiver.delivered().length, 'delivered: every 2xx');
  t.equal(await outcome('retried'), failedFirst, 'retried: every failed first attempt (one retry allowed)');
  t.equal(await outcome('dead_lettered'), failedLast, 'dead_lettered: every failed last attempt');
  t.equal(await outcome('failed'), 0, 'nothing left unconcluded');
  t.equal(await val(m.webhookDeadLetters), failedLast, 'one dead letter per dead-lettered event');
  t.equal((await listDeadLetters(srv.app.nc, srv.namespace)).length, failedLast, 'as many as the DLQ holds');

  t.equal(await val(m.notifications, { outcome: 'emitted' }), expectNotified.emitted, 'emitted: each message someone else had not read');
  t.equal(await val(m.notifications, { outcome: 'suppressed' }), expectNotified.suppressed, 'suppressed: each message with nobody to notify');
  t.ok(expectNotified.emitted > 0 && expectNotified.suppressed > 0, 'both outcomes occurred');
});
