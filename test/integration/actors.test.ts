// Dialog actors over real NATS and PostgreSQL: lease spread and rebalancing, command round trips,
// idempotent retries, group commit isolation, crash takeover, mailbox overload, graceful release.
import t from 'tap';
import { connect, errors, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { startTestServer } from '../helpers/server.js';
import { Subjects } from '../../src/bus/subjects.js';
import { NatsEventPublisher } from '../../src/bus/nats-publisher.js';
import { decodeJson, encodeJson } from '../../src/bus/nats.js';
import { LocalEventBus } from '../../src/bus/local-bus.js';
import { Worker, type WorkerOptions } from '../../src/actors/worker.js';
import { NatsGateway } from '../../src/actors/nats-gateway.js';
import { AppError } from '../../src/domain/errors.js';
import { newId } from '../../src/domain/ids.js';
import { PARTITION_COUNT, partitionOf } from '../../src/domain/partition.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CommandEnvelope } from '../../src/actors/registry.js';

const NATS = process.env.NATS_URL ?? '127.0.0.1:4222';
// Short leases keep the file fast; the takeover bound scales with them (leases.ts).
const LEASE = { leaseTtlMs: 4000, tickMs: 500 };
const BOUND_MS = LEASE.leaseTtlMs + LEASE.tickMs;
// Slack for the server's expiry sweep and a loaded 2-core machine.
const SLACK_MS = 2500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

const srv = await startTestServer({ MTCHAT_ROLE: 'edge' });
const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const orm = srv.app.orm;
const subjects = new Subjects(srv.namespace);
const conns: NatsConnection[] = [];
const workers: Worker[] = [];
async function nats(): Promise<NatsConnection> {
  const nc = await connect({ servers: NATS });
  conns.push(nc);
  return nc;
}
async function worker(nc: NatsConnection, s: Subjects = subjects, extra: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = new Worker(nc, s, orm, new NatsEventPublisher(nc, s, log, new LocalEventBus()), log, { persistOutbox: false, ...LEASE, ...extra });
  workers.push(w);
  await w.start();
  return w;
}

t.teardown(async () => {
  await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
  const nc = await nats();
  const kvm = new Kvm(nc);
  for (const ns of [subjects, new Subjects(`${srv.namespace}_mb`)]) {
    for (const b of [ns.leaseBucket, ns.workerBucket]) await (await kvm.open(b)).destroy().catch(() => undefined);
  }
  await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  await srv.close();
});

const participants = (...ids: string[]) => ids.map((user_id) => ({ user_id, display_name: user_id.toUpperCase() }));
const createCmd = (id: string, ...users: string[]) => ({ id, object_id: `obj-${id}`, object_type: 'order', participants: participants(...users), access_scopes: [] });
const sendCmd = (dialogId: string, user: string, content: string) => ({ dialog_id: dialogId, user_id: user, content, attachments: [] });

const ncA = await nats();
const ncB = await nats();
const ncC = await nats();
const ncGw = await nats();
const gw = new NatsGateway(ncGw, subjects, log);
let wA: Worker;
let wB: Worker;

/** [owned in total, distinct partitions owned]: both must be PARTITION_COUNT. */
function coverage(ws: Worker[]): [number, number] {
  const all = ws.flatMap((w) => w.ownedPartitions());
  return [all.length, new Set(all).size];
}

t.test('two workers split the partitions evenly; a third joining rebalances', async (t) => {
  [wA, wB] = await Promise.all([worker(ncA), worker(ncB)]);
  const even2 = () => wA.ownedPartitions().length === 128 && wB.ownedPartitions().length === 128;
  t.ok(await waitFor(even2, 8000), `2 workers own 128 each (got ${wA.ownedPartitions().length}/${wB.ownedPartitions().length})`);
  t.same(coverage([wA, wB]), [PARTITION_COUNT, PARTITION_COUNT], 'two workers: each partition owned exactly once');
  t.ok(wA.isReady() && wB.isReady(), 'both ready');

  const wC = await worker(ncC);
  const ws = [wA, wB, wC];
  const even3 = () => ws.every((w) => w.ownedPartitions().length >= 84 && w.ownedPartitions().length <= 86) && ws.reduce((n, w) => n + w.ownedPartitions().length, 0) === PARTITION_COUNT;
  t.ok(await waitFor(even3, 8000), `3 workers own ≈85 each (got ${ws.map((w) => w.ownedPartitions().length).join('/')})`);
  t.same(coverage(ws), [PARTITION_COUNT, PARTITION_COUNT], 'three workers: each partition owned exactly once');

  // Graceful stop: leases are deleted, so the others take over well before they could have expired.
  const cParts = wC.ownedPartitions();
  await wC.stop();
  t.same(wC.ownedPartitions(), [], 'a stopped worker owns nothing');
  const kv = await new Kvm(ncGw).open(subjects.leaseBucket);
  const holders = await Promise.all(cParts.map(async (p) => {
    const e = await kv.get(`p${p}`);
    return e && e.operation === 'PUT' ? e.string() : null;
  }));
  t.notOk(holders.includes(wC.id), 'no lease key names the stopped worker');
  const start = Date.now();
  t.ok(await waitFor(() => wA.ownedPartitions().length + wB.ownedPartitions().length === PARTITION_COUNT, LEASE.leaseTtlMs - 500), 'survivors took over before a lease could expire');
  t.ok(Date.now() - start < LEASE.leaseTtlMs, 'takeover by release, not by expiry');
  t.same(coverage([wA, wB]), [PARTITION_COUNT, PARTITION_COUNT], 'after graceful stop: each partition owned exactly once');
});

interface Seen {
  subject: string;
  body: Record<string, unknown>;
}
function observe(nc: NatsConnection, ...subs: string[]): { seen: Seen[]; stop(): void } {
  const seen: Seen[] = [];
  const ss = subs.map((s) => nc.subscribe(s, { callback: (_e, m) => void seen.push({ subject: m.subject, body: decodeJson(m.data) }) }));
  return { seen, stop: () => ss.forEach((s) => s.unsubscribe()) };
}

const dialogId = newId();

t.test('commands through the gateway create a dialog and send messages; events reach NATS in order', async (t) => {
  const ncObs = await nats();
  const obs = observe(ncObs, `${srv.namespace}.d.>`, `${srv.namespace}.u.>`);
  await ncObs.flush();
  t.teardown(() => obs.stop());

  const created = await gw.execute('createDialog', dialogId, createCmd(dialogId, 'ann', 'bob'));
  t.equal(created.dialog.id, dialogId);
  t.equal(created.dialog.partition, partitionOf(dialogId));
  const sent = [];
  for (const c of ['one', 'two', 'three']) sent.push(await gw.execute('sendMessage', dialogId, sendCmd(dialogId, 'ann', c)));
  t.same(sent.map((s) => s.message.content), ['one', 'two', 'three']);
  t.same(sent.map((s) => Number(s.message.seq)), [3, 4, 5]);
  t.same(sent.map((s) => s.created), [true, true, true]);

  t.ok(await waitFor(() => obs.seen.length === 7, 3000), 'every publish observed');
  const sentAt = (i: number) => (obs.seen[4 + i]?.body.event as { sent_at?: string } | undefined)?.sent_at;
  // Event messages carry their commit time (epoch ms) as `t`, for the delivery latency metric.
  const at = (i: number) => obs.seen[i]?.body.t;
  for (const i of [1, 3, 4, 5, 6]) t.type(at(i), 'number', `message ${i} carries its commit time`);
  t.same(obs.seen, [
    { subject: subjects.user('ann'), body: { membership: 'joined', dialog_id: dialogId } },
    { subject: subjects.dialog(dialogId), body: { seq: 1, event: { type: 'participant.joined', dialog_id: dialogId, user_id: 'ann' }, t: at(1) } },
    { subject: subjects.user('bob'), body: { membership: 'joined', dialog_id: dialogId } },
    { subject: subjects.dialog(dialogId), body: { seq: 2, event: { type: 'participant.joined', dialog_id: dialogId, user_id: 'bob' }, t: at(3) } },
    ...sent.map((s, i) => ({
      subject: subjects.dialog(dialogId),
      body: { seq: 3 + i, event: { type: 'message.new', id: s.message.id, dialog_id: dialogId, content: s.message.content, sent_at: sentAt(i), message_type: 'user', sender_id: 'ann' }, t: at(4 + i) },
    })),
  ]);
  for (let i = 0; i < 3; i++) t.match(sentAt(i), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'sent_at is a timestamp string');
  const rows = await srv.sql('SELECT seq, payload FROM dialog_events WHERE dialog_id = $1 ORDER BY seq', [dialogId]);
  t.same(rows.rows.map((r) => Number(r.seq)), [1, 2, 3, 4, 5], 'event log holds every sequenced event');

  const missing = newId();
  await t.rejects(gw.execute('sendMessage', missing, sendCmd(missing, 'ann', 'x')), { status: 404, code: 'DIALOG_NOT_FOUND', message: 'Dialog not found' });
});

t.test('membership changes reach the user subject: the joined signal first, participant.left to the removed user', async (t) => {
  const id = newId();
  await gw.execute('createDialog', id, createCmd(id, 'eve'));
  const ncObs = await nats();
  const obs = observe(ncObs, `${srv.namespace}.d.${id}`, subjects.user('fay'));
  await ncObs.flush();
  t.teardown(() => obs.stop());
  t.same(await gw.execute('addParticipant', id, { dialog_id: id, user_id: 'fay', display_name: 'Fay' }), { added: true });
  t.same(await gw.execute('removeParticipant', id, { dialog_id: id, user_id: 'fay' }), { removed: true });
  const joined = { type: 'participant.joined', dialog_id: id, user_id: 'fay' };
  const left = { type: 'participant.left', dialog_id: id, user_id: 'fay' };
  t.ok(await waitFor(() => obs.seen.length === 4, 3000), 'every publish observed');
  const at = (i: number) => obs.seen[i]?.body.t;
  for (const i of [1, 2, 3]) t.type(at(i), 'number', `message ${i} carries its commit time`);
  t.same(obs.seen, [
    { subject: subjects.user('fay'), body: { membership: 'joined', dialog_id: id } },
    { subject: subjects.dialog(id), body: { seq: 2, event: joined, t: at(1) } },
    { subject: subjects.dialog(id), body: { seq: 3, event: left, t: at(2) } },
    { subject: subjects.user('fay'), body: { seq: 3, event: left, t: at(3) } },
  ]);
});

t.test('a malformed command envelope is answered 400 BAD_REQUEST', async (t) => {
  const id = newId();
  const p = partitionOf(id);
  // A raw request has no gateway retries: on a loaded machine a lease can lapse and move for a
  // moment (no responders), so ask again then.
  const ask = async (body: unknown, partition = p): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return decodeJson((await ncGw.request(subjects.command(partition), typeof body === 'string' ? new TextEncoder().encode(body) : encodeJson(body), { timeout: 3000 })).data);
      } catch (e) {
        if (!(e instanceof errors.RequestError && e.isNoResponders()) || attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  const bad = (message: string) => ({ ok: false, error: { status: 400, code: 'BAD_REQUEST', message } });
  t.same(await ask('{not json'), bad('Malformed command'));
  t.same(await ask({ name: 'dropTables', dialogId: id, requestId: 'r1', cmd: {} }), bad('Unknown command'));
  t.same(await ask({ name: 'toString', dialogId: id, requestId: 'r1', cmd: {} }), bad('Unknown command'));
  t.same(await ask({ name: 'sendMessage', dialogId: id, requestId: '', cmd: {} }), bad('Malformed command'));
  t.same(await ask({ name: 'sendMessage', dialogId: id, requestId: 'r1', cmd: null }), bad('Malformed command'));
  t.same(await ask({ name: 'sendMessage', dialogId: id, requestId: 'r1', cmd: {} }, (p + 1) % PARTITION_COUNT), bad('Command sent to the wrong partition'));
  t.same(await ask({ name: 'sendMessage', dialogId: id, requestId: 'r1', cmd: { dialog_id: newId() } }), bad('Command names another dialog'));
  t.same(await ask({ name: 'createDialog', dialogId: id, requestId: 'r1', cmd: { object_id: 'o' } }), bad('Command names another dialog'));
});

t.test('with no owner at all the gateway gives up at its deadline with 503 OVERLOADED', async (t) => {
  const g = new NatsGateway(ncGw, new Subjects(`${srv.namespace}_nobody`), log, { deadlineMs: 700 });
  const id = newId();
  const err = await g.execute('sendMessage', id, sendCmd(id, 'ann', 'void')).catch((e: unknown) => e);
  t.ok(err instanceof AppError);
  t.match(err, { status: 503, code: 'OVERLOADED', message: 'Service temporarily unavailable', headers: { 'Retry-After': '1' } });
  t.ok(g.stats.retries >= 1, 'it retried before giving up');
});

t.test('the same request id sent twice has exactly one effect', async (t) => {
  const env: CommandEnvelope = { name: 'sendMessage', dialogId, requestId: newId(), cmd: sendCmd(dialogId, 'bob', 'only once') };
  const first = await gw.request(env);
  const again = await gw.request(env);
  t.equal(first.ok, true);
  t.same(again, first, 'the retry gets the first reply');
  const rows = await srv.sql('SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND content = $2', [dialogId, 'only once']);
  t.equal(rows.rows[0].n, 1, 'one message row');
  const log = await srv.sql('SELECT count(*)::int AS n FROM command_log WHERE request_id = $1', [env.requestId]);
  t.equal(log.rows[0].n, 1);
});

t.test('a failing command does not fail the others of its batch', async (t) => {
  const before = wA.owner.stats.batches + wB.owner.stats.batches;
  const sends = Array.from({ length: 20 }, (_, i) => gw.execute('sendMessage', dialogId, sendCmd(dialogId, 'ann', `burst ${i}`)));
  sends.splice(10, 0, gw.execute('sendMessage', dialogId, sendCmd(dialogId, 'stranger', 'let me in')));
  const out = await Promise.allSettled(sends);
  const bad = out[10];
  t.equal(bad.status, 'rejected');
  const err = (bad as PromiseRejectedResult).reason as AppError;
  t.match(err, { status: 403, code: 'FORBIDDEN', message: 'Not a participant. Join the dialog first.' });
  const good = out.filter((_, i) => i !== 10);
  t.ok(good.every((o) => o.status === 'fulfilled'), 'all 20 participant sends succeed');
  const seqs = good.map((o) => Number((o as PromiseFulfilledResult<{ message: { seq: number } }>).value.message.seq));
  t.equal(new Set(seqs).size, 20, 'distinct sequence numbers');
  const batches = wA.owner.stats.batches + wB.owner.stats.batches - before;
  t.ok(batches < 21, `commands shared transactions (${batches} batches for 21 commands)`);
  const rows = await srv.sql(`SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND content LIKE 'burst %'`, [dialogId]);
  t.equal(rows.rows[0].n, 20);
  const stranger = await srv.sql(`SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND content = 'let me in'`, [dialogId]);
  t.equal(stranger.rows[0].n, 0);
});

t.test('a full mailbox answers 503 OVERLOADED', async (t) => {
  const ns = new Subjects(`${srv.namespace}_mb`);
  const nc = await nats();
  const w = await worker(nc, ns, { mailboxCapacity: 1 });
  t.ok(await waitFor(() => w.ownedPartitions().length === PARTITION_COUNT, 5000), 'the lone worker owns everything');
  const g = new NatsGateway(nc, ns, log);
  const id = newId();
  await g.execute('createDialog', id, createCmd(id, 'cat'));
  const out = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => g.execute('sendMessage', id, sendCmd(id, 'cat', `m${i}`))));
  const rejected = out.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
  t.ok(rejected.length > 0, `some sends were refused (${rejected.length}/10)`);
  t.ok(out[0].status === 'fulfilled', 'the first send was accepted');
  for (const r of rejected) {
    t.match(r.reason, { status: 503, code: 'OVERLOADED', message: 'Dialog is busy, retry later', headers: { 'Retry-After': '1' } });
    t.ok(r.reason instanceof AppError);
  }
  const rows = await srv.sql('SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND message_type = $2', [id, 'user']);
  t.equal(rows.rows[0].n, 10 - rejected.length, 'refused sends left no row');
  await w.stop();
});

t.test('a crashed worker’s partitions are taken over within the bound and commands succeed again', async (t) => {
  const aParts = new Set(wA.ownedPartitions());
  let victim = newId();
  while (!aParts.has(partitionOf(victim))) victim = newId();
  await gw.execute('createDialog', victim, createCmd(victim, 'dan'));

  // A crash: no releases, no goodbyes; its subscriptions vanish with the connection.
  wA.abandon();
  await ncA.close();
  const crashedAt = Date.now();
  const pending = gw.execute('sendMessage', victim, sendCmd(victim, 'dan', 'after the crash'));

  const took = await waitFor(() => wB.ownedPartitions().length === PARTITION_COUNT, BOUND_MS + SLACK_MS);
  t.ok(took, `survivor owns all partitions within ${BOUND_MS} ms + ${SLACK_MS} ms slack (took ${Date.now() - crashedAt} ms)`);
  const sent = await pending;
  t.equal(sent.message.content, 'after the crash');
  t.equal(Number(sent.message.seq), 2, 'the retried send ran once, next in sequence');
  const again = await gw.execute('sendMessage', victim, sendCmd(victim, 'dan', 'and again'));
  t.equal(Number(again.message.seq), 3);
});

t.test('a lease taken from under its owner is given up, and taken back once free', async (t) => {
  const p = wB.ownedPartitions()[0];
  const kv = await new Kvm(ncGw).open(subjects.leaseBucket);
  // Someone else wrote the key: the owner's next compare-and-set renewal fails on the revision.
  await kv.put(`p${p}`, new TextEncoder().encode('intruder'));
  t.ok(await waitFor(() => !wB.ownedPartitions().includes(p) && !wB.owner.ownedPartitions().includes(p), 3 * LEASE.tickMs + SLACK_MS), 'the owner stops serving the lost partition');
  t.ok(await waitFor(() => wB.ownedPartitions().includes(p) && wB.owner.ownedPartitions().includes(p), BOUND_MS + SLACK_MS), 'and takes it back after the foreign key expired');
  const entry = await kv.get(`p${p}`);
  t.equal(entry?.string(), wB.id);
});
