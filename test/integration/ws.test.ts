// The WebSocket edge over real sockets, real NATS and PostgreSQL (docs/protocol.md).
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog, type Api } from '../helpers/api.js';
import { MSGPACK, TestSocket, refusedUpgrade, type Frame } from '../helpers/ws-client.js';
import { loadConfig } from '../../src/config/env.js';
import { NatsGateway } from '../../src/actors/nats-gateway.js';
import { Subjects } from '../../src/bus/subjects.js';
import { IdentityResolver } from '../../src/edge/auth/identity.js';
import { CorsPolicy } from '../../src/edge/http/cors.js';
import { WsEdge } from '../../src/edge/ws/server.js';
import { socketPresence } from '../../src/edge/ws/presence.js';
import { PresencePublisher } from '../../src/bus/presence-publisher.js';
import { Presence } from '../../src/services/presence.js';
import { Redis } from 'ioredis';
import { until } from '../helpers/webhook-receiver.js';

const SECRET = 'ws-test-secret-0123456789abcdef-0123456789';
const ORIGIN = 'https://app.example';

// The service's own edge (role all) is under test at /api/v1/ws; a second edge in JWT mode is mounted beside it.
const srv = await startTestServer({ CORS_ALLOWED_ORIGINS: ORIGIN, WS_MAX_CONNECTIONS_PER_USER: '3' });
const log = srv.app.log;
// The service runs as `all`: its worker owns the dialogs and publishes their events on NATS.
const nc = srv.app.nc;
const subjects = new Subjects(srv.namespace);
const baseEnv = { DATABASE_URL: `postgres://u@127.0.0.1/${srv.dbName}`, MTCHAT_NAMESPACE: srv.namespace, CORS_ALLOWED_ORIGINS: ORIGIN };
const cfg = loadConfig({ ...baseEnv, WS_MAX_CONNECTIONS_PER_USER: '3' });
const gateway = new NatsGateway(nc, subjects, log, { deadlineMs: cfg.commandDeadlineMs });
const common = { app: srv.app.http.uws, log, cors: new CorsPolicy(cfg), gateway, orm: srv.app.orm, nc, subjects };
const edge = srv.app.ws!;
const jwtCfg = loadConfig({ ...baseEnv, JWT_AUTH_ENABLED: 'true', JWT_SECRET: SECRET, JWT_LEEWAY_SECS: '0' });
// The JWT edge keeps presence in Redis under a prefix of this test's own.
const redis = new Redis('redis://127.0.0.1:6379');
const presencePrefix = `${srv.namespace}:wspresence:`;
const presence = new Presence(redis, presencePrefix);
const jwtEdge = new WsEdge({
  ...common, cfg: jwtCfg, identity: new IdentityResolver(jwtCfg), path: '/api/v1/ws-jwt', resumeWaitMs: 300,
  presence: socketPresence(presence, new PresencePublisher(nc, subjects, log)),
});
const tokenFor = (sub: string, exp: number | string = '1h') =>
  new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));

const sockets: TestSocket[] = [];
t.teardown(async () => {
  for (const s of sockets) s.close();
  await edge.close();
  await jwtEdge.close();
  const keys = await redis.keys(`${presencePrefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await srv.close();
});

const api: Api = client(srv.url);
const base = srv.url;

async function open(user: string, o: { msgpack?: boolean; resume?: boolean } = {}): Promise<TestSocket> {
  const query: Record<string, string> = { user_id: user };
  if (o.resume) query.resume = '1';
  const s = await TestSocket.connect(base, { query, protocols: o.msgpack ? [MSGPACK] : [] });
  sockets.push(s);
  return s;
}

const people = (...ids: string[]) => ids.map((id) => ({ user_id: id, display_name: id.toUpperCase(), company: 'Acme' }));

async function dialog(users: string[], extra: Record<string, unknown> = {}): Promise<string> {
  return createDialog(api, { object_id: randomUUID(), participants: people(...users), ...extra });
}

async function send(user: string, dialogId: string, content: string): Promise<Frame> {
  const r = await api('POST', `/api/v1/dialogs/${dialogId}/messages`, { user, body: { content } });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  return r.json.data;
}

const ofType = (s: TestSocket, dialogId: string, type: string) => s.ofDialog(dialogId).filter((f) => f.type === type);
const waitMsg = (s: TestSocket, content: string) => s.waitFor((f) => f.type === 'message.new' && f.content === content);

/** The spec's keys per event (realtime.md), plus the additive `seq` on dialog-sequenced events. */
const KEYS: Record<string, string[]> = {
  'message.new': ['type', 'id', 'dialog_id', 'sender_id', 'content', 'sent_at', 'message_type', 'seq'],
  'message.new#system': ['type', 'id', 'dialog_id', 'content', 'sent_at', 'message_type', 'seq'],
  'message.edited': ['type', 'id', 'dialog_id', 'content', 'last_edited_at', 'seq'],
  'message.deleted': ['type', 'id', 'dialog_id', 'seq'],
  'message.read': ['type', 'dialog_id', 'user_id', 'last_read_message_id', 'seq'],
  'participant.joined': ['type', 'dialog_id', 'user_id', 'seq'],
  'participant.left': ['type', 'dialog_id', 'user_id', 'seq'],
  'dialog.archived': ['type', 'dialog_id'],
  'dialog.unarchived': ['type', 'dialog_id'],
  'presence.update': ['type', 'user_id', 'is_online'],
};
const keyClass = (f: Frame) => (f.type === 'message.new' && f.message_type === 'system' ? 'message.new#system' : f.type);

t.test('upgrade refusals happen before the upgrade, as plain text', async (t) => {
  t.same(await refusedUpgrade(base), { status: 400, body: 'Missing user_id query parameter' });
  t.same(await refusedUpgrade(base, { rawQuery: 'user_id' }), { status: 400, body: 'Missing user_id query parameter' }, 'a key without = names nobody');
  t.same(await refusedUpgrade(base, { rawQuery: 'user_id=' }), { status: 400, body: 'user_id cannot be empty' });
  t.same(await refusedUpgrade(base, { query: { user_id: 'o1' }, headers: { Origin: 'https://evil.example' } }), { status: 403, body: 'Origin not allowed' });
  const allowed = await TestSocket.connect(base, { query: { user_id: 'o1' }, headers: { Origin: ORIGIN } });
  sockets.push(allowed);
  t.same(allowed.frames[0], { type: 'connected', employee_id: 'o1' }, 'allowed Origin connects');

  const jwtPath = '/api/v1/ws-jwt';
  t.same(await refusedUpgrade(base, { path: jwtPath, query: { user_id: 'x' } }), { status: 401, body: 'token query parameter required' });
  t.same(await refusedUpgrade(base, { path: jwtPath, query: { token: 'not.a.jwt' } }), { status: 401, body: 'Invalid token' });
  const wrongKey = await new SignJWT({ sub: 'j1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode('another-secret-0123456789abcdef-0123'));
  t.same(await refusedUpgrade(base, { path: jwtPath, query: { token: wrongKey } }), { status: 401, body: 'Invalid token' });
  const good = await new SignJWT({ sub: 'j1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const s = await TestSocket.connect(base, { path: jwtPath, query: { token: good, user_id: 'someone-else' } });
  sockets.push(s);
  t.same(s.frames[0], { type: 'connected', employee_id: 'j1' }, 'the user comes from the token claim');

  // Frames sent before `connected` arrives are answered after it.
  const eager = await TestSocket.open(base, { query: { user_id: 'eager' } });
  sockets.push(eager);
  eager.send({ type: 'ping' });
  eager.send({ type: 'nope' });
  await eager.waitFor((f) => f.type === 'error');
  t.same(eager.frames.map((f) => f.type), ['connected', 'pong', 'error'], 'connected is always the first frame');

  // Per-user cap (3 in this test's configuration), counted per edge.
  const capped = [await open('cap'), await open('cap'), await open('cap', { msgpack: true })];
  t.same(await refusedUpgrade(base, { query: { user_id: 'cap' } }), { status: 429, body: 'Too many connections for this user' });
  capped[0].close();
  await capped[0].closed;
  const again = await open('cap');
  t.equal(again.frames[0].type, 'connected', 'a freed slot can be used again');
});

t.test('every event reaches every entitled socket, in both formats, and nothing else', async (t) => {
  const aJ = await open('alice');
  const aM = await open('alice', { msgpack: true });
  const bJ = await open('bob');
  const cJ = await open('carol');
  const carolOther = await dialog(['carol']);
  const zJ = await open('zed');
  t.equal(aM.protocol, MSGPACK, 'msgpack subprotocol echoed');
  t.equal(aJ.protocol, '', 'JSON is the default, no subprotocol');
  for (const s of [aJ, aM, bJ, cJ, zJ]) t.equal(s.frames[0].type, 'connected', 'connected comes first');

  const Z = await dialog(['zed']);
  const D = await dialog(['alice', 'bob'], { access_scopes: [{ scope_level0: ['t1'] }] });
  // Created after the sockets opened: the membership signal attaches them, backfilled from seq 1.
  await aJ.waitFor((f) => f.type === 'participant.joined' && f.dialog_id === D && f.user_id === 'bob');

  const hello = await send('alice', D, 'hello');
  t.equal((await api('PUT', `/api/v1/dialogs/${D}/messages/${hello.id}`, { user: 'alice', body: { content: 'hello, edited' } })).status, 200);
  t.equal((await api('POST', `/api/v1/dialogs/${D}/read`, { user: 'bob', body: { last_read_message_id: hello.id } })).status, 200);
  t.equal((await api('DELETE', `/api/v1/dialogs/${D}/messages/${hello.id}`, { user: 'alice' })).status, 204);
  // Added by the platform while connected: receives from the join on, without reconnecting.
  t.equal((await api('POST', `/api/v1/management/dialogs/${D}/participants`, { body: people('carol')[0] })).status, 201);
  await cJ.waitFor((f) => f.type === 'participant.joined' && f.dialog_id === D && f.user_id === 'carol');
  const join = await api('POST', `/api/v1/dialogs/${D}/join`, { user: 'dave', scope: { scope_level0: ['t1'] }, body: { display_name: 'Dave', company: 'Acme' } });
  t.equal(join.status, 200, join.text);
  t.equal((await api('POST', `/api/v1/dialogs/${D}/archive`, { user: 'bob' })).status, 200);
  await send('alice', D, 'back');
  // Per-user events come on the user subject (auto-archive is published by workers).
  nc.publish(subjects.user('alice'), JSON.stringify({ seq: null, event: { type: 'dialog.archived', dialog_id: D } }));
  t.equal((await api('POST', `/api/v1/dialogs/${D}/leave`, { user: 'dave' })).status, 200);
  t.equal((await api('DELETE', `/api/v1/management/dialogs/${D}/participants/carol`)).status, 204);
  await cJ.waitFor((f) => f.type === 'participant.left' && f.user_id === 'carol');
  await send('alice', D, 'after-remove');
  // Markers: the last frames each socket must get; anything before them has arrived too.
  await send('zed', Z, 'marker-z');
  await send('carol', carolOther, 'marker-c');
  for (const s of [aJ, aM, bJ]) await waitMsg(s, 'after-remove');
  await waitMsg(zJ, 'marker-z');
  await waitMsg(cJ, 'marker-c');

  const expected = [
    'participant.joined', 'participant.joined', 'message.new', 'message.edited', 'message.read', 'message.deleted',
    'participant.joined', 'message.new', 'participant.joined', 'dialog.unarchived', 'message.new', 'message.new',
    'participant.left', 'participant.left', 'message.new',
  ];
  for (const [name, s] of [['alice json', aJ], ['alice msgpack', aM], ['bob', bJ]] as const) {
    const seen = s.ofDialog(D).filter((f) => f.type !== 'dialog.archived');
    t.same(seen.map((f) => f.type), expected, `${name}: every dialog event, in order`);
    const seqs = seen.filter((f) => f.seq !== undefined).map((f) => f.seq);
    t.same(seqs, Array.from({ length: 14 }, (_, i) => i + 1), `${name}: seq 1..14 without gaps or repeats`);
  }
  t.same(aM.ofDialog(D), aJ.ofDialog(D), 'msgpack frames carry the same keys and values as JSON');
  t.ok(aM.binary.every(Boolean), 'msgpack socket: binary frames only');
  t.ok(aJ.binary.every((b) => !b), 'JSON socket: text frames only');

  for (const f of aJ.frames.slice(1)) {
    t.same(Object.keys(f).sort(), [...KEYS[keyClass(f)]].sort(), `exact keys of ${f.type}`);
  }
  const news = ofType(aJ, D, 'message.new');
  t.match(news[0], { id: hello.id, sender_id: 'alice', content: 'hello', message_type: 'user', sent_at: hello.sent_at });
  t.match(news[1], { message_type: 'system' });
  t.notOk('sender_id' in news[1], 'system messages carry no sender_id');
  t.match(ofType(aJ, D, 'message.edited')[0], { id: hello.id, content: 'hello, edited' });
  t.match(ofType(aJ, D, 'message.read')[0], { user_id: 'bob', last_read_message_id: hello.id });
  t.equal(ofType(aJ, D, 'dialog.archived').length, 1, 'dialog.archived reaches the user');
  t.equal(ofType(aM, D, 'dialog.archived').length, 1, '… on each of their sockets');
  t.equal(ofType(bJ, D, 'dialog.archived').length, 0, '… and nobody else');
  const unarchivedAt = aJ.ofDialog(D).findIndex((f) => f.type === 'dialog.unarchived');
  t.equal(aJ.ofDialog(D)[unarchivedAt + 1]?.content, 'back', 'dialog.unarchived comes right before the message that caused it');
  if (aJ.ofDialog(D)[unarchivedAt + 1]?.content !== 'back') t.comment(JSON.stringify(aJ.ofDialog(D).map((f) => [f.type, f.seq, f.content])));

  // carol: from her join to the participant.left addressed to her, once, then nothing of D.
  const carol = cJ.ofDialog(D);
  t.same(carol.map((f) => [f.type, f.seq]), [
    ['participant.joined', 7], ['message.new', 8], ['participant.joined', 9], ['dialog.unarchived', undefined],
    ['message.new', 10], ['message.new', 11], ['participant.left', 12], ['participant.left', 13],
  ], 'carol: nothing before her join, nothing after her removal, the left event once');
  t.equal(carol.at(-1)!.user_id, 'carol');

  // The bystander saw only its own dialog.
  t.same(zJ.frames.map((f) => f.dialog_id ?? f.type), ['connected', Z, Z], 'bystander: nothing of D');
});

t.test('send, edit, delete and read over the socket: ack and delivery in both formats', async (t) => {
  const W = await dialog(['wa', 'wb']);
  const wa = await open('wa');
  const wb = await open('wb', { msgpack: true });
  await wa.waitFor((f) => f.type === 'connected');

  wa.send({ type: 'send', id: 'c1', dialog_id: W, content: '<b>via json</b>' });
  const ack1 = await wa.waitFor((f) => f.id === 'c1');
  t.same(Object.keys(ack1), ['type', 'id', 'message_id', 'seq', 'message']);
  t.match(ack1, { type: 'ack', id: 'c1', seq: 3 });
  t.same(Object.keys(ack1.message), ['id', 'dialog_id', 'sender_id', 'content', 'sent_at', 'last_edited_at', 'reply_to_id', 'message_type']);
  t.match(ack1.message, { id: ack1.message_id, dialog_id: W, sender_id: 'wa', content: '<b>via json</b>', last_edited_at: null, reply_to_id: null, message_type: 'user' });
  const got1 = await wb.waitFor((f) => f.type === 'message.new' && f.id === ack1.message_id);
  t.match(got1, { seq: 3, content: '<b>via json</b>', sender_id: 'wa' }, 'delivered to the msgpack socket');

  wb.send({ type: 'send', id: 'm1', dialog_id: W, content: 'via msgpack', reply_to: ack1.message_id, client_msg_id: 'k-1' });
  const ack2 = await wb.waitFor((f) => f.id === 'm1');
  t.match(ack2, { type: 'ack', id: 'm1', seq: 4, message: { reply_to_id: ack1.message_id, sender_id: 'wb' } });
  t.ok(wb.binary[wb.frames.indexOf(ack2)], 'the ack comes in the socket format');
  t.match(await wa.waitFor((f) => f.type === 'message.new' && f.id === ack2.message_id), { content: 'via msgpack', reply_to_id: ack1.message_id });

  wb.send({ type: 'send', id: 'm2', dialog_id: W, content: 'via msgpack', client_msg_id: 'k-1' });
  const retry = await wb.waitFor((f) => f.id === 'm2');
  t.equal(retry.message_id, ack2.message_id, 'a retried client_msg_id answers the first message');
  t.equal(retry.seq, 4);

  wb.send({ type: 'edit', id: 'e1', dialog_id: W, message_id: ack2.message_id, content: 'edited' });
  const ackE = await wb.waitFor((f) => f.id === 'e1');
  t.match(ackE, { type: 'ack', id: 'e1', message_id: ack2.message_id, message: { content: 'edited' } });
  t.match(await wa.waitFor((f) => f.type === 'message.edited'), { id: ack2.message_id, content: 'edited', seq: 5 });

  wa.send({ type: 'read', id: 'r1', dialog_id: W, last_read_message_id: ack2.message_id });
  t.same(await wa.waitFor((f) => f.id === 'r1'), { type: 'ack', id: 'r1', ok: true });
  t.match(await wb.waitFor((f) => f.type === 'message.read'), { user_id: 'wa', last_read_message_id: ack2.message_id, seq: 6 });

  wb.send({ type: 'delete', id: 'd1', dialog_id: W, message_id: ack2.message_id });
  t.same(await wb.waitFor((f) => f.id === 'd1'), { type: 'ack', id: 'd1', ok: true });
  t.match(await wa.waitFor((f) => f.type === 'message.deleted'), { id: ack2.message_id, seq: 7 });
  const list = await api('GET', `/api/v1/dialogs/${W}/messages`, { user: 'wa' });
  t.same(list.json.data.messages.filter((m: Frame) => m.message_type === 'user').map((m: Frame) => m.content), ['<b>via json</b>'], 'the effects are stored');
});

t.test('each REST error has its WebSocket twin with the same code and message', async (t) => {
  const E = await dialog(['ea', 'eb']);
  const ea = await open('ea');
  const eo = await open('eo', { msgpack: true });
  const mine = await send('ea', E, 'mine');
  const theirs = await send('eb', E, 'theirs');
  const nowhere = randomUUID();
  const big = 'x'.repeat(50_001);

  type Case = [string, TestSocket, string, Record<string, unknown>, string, string, Record<string, unknown> | undefined, string];
  const cases: Case[] = [
    ['send to a missing dialog', ea, 'ea', { type: 'send', dialog_id: nowhere, content: 'x' }, 'POST', `/api/v1/dialogs/${nowhere}/messages`, { content: 'x' }, 'DIALOG_NOT_FOUND'],
    ['send by a non-participant', eo, 'eo', { type: 'send', dialog_id: E, content: 'x' }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: 'x' }, 'FORBIDDEN'],
    ['send blank content', ea, 'ea', { type: 'send', dialog_id: E, content: '  <p> </p> ' }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: '  <p> </p> ' }, 'INVALID_INPUT'],
    ['send with a bad dialog id', ea, 'ea', { type: 'send', dialog_id: 'not-a-uuid', content: 'x' }, 'POST', '/api/v1/dialogs/not-a-uuid/messages', { content: 'x' }, 'BAD_REQUEST'],
    ['send content of the wrong type', ea, 'ea', { type: 'send', dialog_id: E, content: 5 }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: 5 }, 'INVALID_INPUT'],
    ['send without content', ea, 'ea', { type: 'send', dialog_id: E }, 'POST', `/api/v1/dialogs/${E}/messages`, {}, 'INVALID_INPUT'],
    ['send too long', ea, 'ea', { type: 'send', dialog_id: E, content: big }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: big }, 'INVALID_INPUT'],
    ['reply to a missing message', ea, 'ea', { type: 'send', dialog_id: E, content: 'x', reply_to: nowhere }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: 'x', reply_to: nowhere }, 'INVALID_INPUT'],
    ['empty client_msg_id', ea, 'ea', { type: 'send', dialog_id: E, content: 'x', client_msg_id: '' }, 'POST', `/api/v1/dialogs/${E}/messages`, { content: 'x', client_msg_id: '' }, 'INVALID_INPUT'],
    ['edit another user\'s message', ea, 'ea', { type: 'edit', dialog_id: E, message_id: theirs.id, content: 'y' }, 'PUT', `/api/v1/dialogs/${E}/messages/${theirs.id}`, { content: 'y' }, 'NOT_MESSAGE_AUTHOR'],
    ['edit a missing message', ea, 'ea', { type: 'edit', dialog_id: E, message_id: nowhere, content: 'y' }, 'PUT', `/api/v1/dialogs/${E}/messages/${nowhere}`, { content: 'y' }, 'MESSAGE_NOT_FOUND'],
    ['edit with a bad message id', ea, 'ea', { type: 'edit', dialog_id: E, message_id: 'zzz', content: 'y' }, 'PUT', `/api/v1/dialogs/${E}/messages/zzz`, { content: 'y' }, 'BAD_REQUEST'],
    ['edit without content', ea, 'ea', { type: 'edit', dialog_id: E, message_id: mine.id }, 'PUT', `/api/v1/dialogs/${E}/messages/${mine.id}`, {}, 'INVALID_INPUT'],
    ['delete another user\'s message', ea, 'ea', { type: 'delete', dialog_id: E, message_id: theirs.id }, 'DELETE', `/api/v1/dialogs/${E}/messages/${theirs.id}`, undefined, 'NOT_MESSAGE_AUTHOR'],
    ['delete by a non-participant', eo, 'eo', { type: 'delete', dialog_id: E, message_id: mine.id }, 'DELETE', `/api/v1/dialogs/${E}/messages/${mine.id}`, undefined, 'NOT_MESSAGE_AUTHOR'],
    ['read by a non-participant', eo, 'eo', { type: 'read', dialog_id: E, last_read_message_id: mine.id }, 'POST', `/api/v1/dialogs/${E}/read`, { last_read_message_id: mine.id }, 'FORBIDDEN'],
    ['read in a missing dialog', ea, 'ea', { type: 'read', dialog_id: nowhere, last_read_message_id: mine.id }, 'POST', `/api/v1/dialogs/${nowhere}/read`, { last_read_message_id: mine.id }, 'NOT_FOUND'],
    ['read a missing message', ea, 'ea', { type: 'read', dialog_id: E, last_read_message_id: nowhere }, 'POST', `/api/v1/dialogs/${E}/read`, { last_read_message_id: nowhere }, 'MESSAGE_NOT_FOUND'],
    ['read with a bad message id', ea, 'ea', { type: 'read', dialog_id: E, last_read_message_id: 'x' }, 'POST', `/api/v1/dialogs/${E}/read`, { last_read_message_id: 'x' }, 'INVALID_INPUT'],
    ['read with a bad dialog id', ea, 'ea', { type: 'read', dialog_id: 'x', last_read_message_id: mine.id }, 'POST', '/api/v1/dialogs/x/read', { last_read_message_id: mine.id }, 'BAD_REQUEST'],
  ];
  let n = 0;
  for (const [name, sock, user, frame, method, path, body, code] of cases) {
    const id = `err-${n++}`;
    sock.send({ ...frame, id });
    const ws = await sock.waitFor((f) => f.id === id);
    const rest = await api(method, path, { user, body });
    t.equal(rest.json?.error?.code, code, `${name}: REST answers ${code}`);
    t.same(ws, { type: 'error', id, code: rest.json.error.code, message: rest.json.error.message }, `${name}: WS twin`);
  }

  ea.send({ type: 'send', dialog_id: E, content: 'no id' });
  t.match(await ea.waitFor((f) => f.type === 'error' && !('id' in f)), { code: 'BAD_REQUEST', message: /^Invalid frame at id: / });
  t.notOk(ea.frames.some((f) => f.type === 'message.new' && f.content === 'no id'), 'a command without a correlation id is not run');
});

t.test('resume: in order, only since joining, redacted deletions, resync beyond retention', async (t) => {
  const R = await dialog(['ra', 'rb']);
  const other = await dialog(['rb']);
  for (const c of ['m1', 'm2', 'm3']) await send('rb', R, c);
  t.equal((await api('POST', `/api/v1/management/dialogs/${R}/participants`, { body: people('rc')[0] })).status, 201);
  await send('ra', R, 'm4');
  const m5 = await send('ra', R, 'm5');
  const m4 = (await api('GET', `/api/v1/dialogs/${R}/messages`, { user: 'ra' })).json.data.messages.find((m: Frame) => m.content === 'm4');
  t.equal((await api('DELETE', `/api/v1/dialogs/${R}/messages/${m4.id}`, { user: 'ra' })).status, 204);
  // R now holds: 1,2 joined ra/rb; 3-5 m1-m3; 6 joined rc; 7 m4; 8 m5; 9 m4 deleted.

  const rc = await open('rc', { resume: true });
  rc.send({ type: 'resume', id: 'r-1', dialogs: { [R]: 0, [other]: 0, [randomUUID()]: 0 } });
  await rc.waitFor((f) => f.type === 'resumed');
  await send('ra', R, 'm6');
  await waitMsg(rc, 'm6');
  t.same(rc.frames.map((f) => [f.type, f.seq]), [
    ['connected', undefined], ['participant.joined', 6], ['message.new', 7], ['message.new', 8], ['message.deleted', 9],
    ['resumed', undefined], ['message.new', 10],
  ], 'from the join point on, before the live events, nothing of dialogs it is not in');
  t.same(rc.frames[5], { type: 'resumed', id: 'r-1' });
  const redacted = rc.frames[2];
  t.same(Object.keys(redacted).sort(), ['dialog_id', 'id', 'message_type', 'sender_id', 'sent_at', 'seq', 'type'], 'a since-deleted message comes without content');
  t.equal(redacted.id, m4.id);
  t.match(rc.frames[3], { id: m5.id, content: 'm5' });

  // Without ?resume=1 the socket is live at once; a resume sent before any live event replays in order.
  const ra = await open('ra');
  ra.send({ type: 'resume', dialogs: { [R]: 5 } });
  t.same(await ra.waitFor((f) => f.type === 'resumed'), { type: 'resumed' });
  t.same(ra.ofDialog(R).map((f) => f.seq), [6, 7, 8, 9, 10]);

  // Retention: the oldest rows are gone; a gap reaching into them cannot be closed.
  await srv.sql('DELETE FROM dialog_events WHERE dialog_id = $1 AND seq <= 7', [R]);
  const rb = await open('rb', { resume: true });
  rb.send({ type: 'resume', id: 'old', dialogs: { [R]: 2 } });
  await rb.waitFor((f) => f.type === 'resumed' && f.id === 'old');
  t.same(rb.frames.slice(1), [{ type: 'resync_required', dialog_id: R }, { type: 'resumed', id: 'old' }]);
  rb.send({ type: 'resume', id: 'recent', dialogs: { [R]: 7 } });
  await rb.waitFor((f) => f.type === 'resumed' && f.id === 'recent');
  t.same(rb.frames.slice(3).map((f) => f.seq ?? f.type), [8, 9, 10, 'resumed'], 'a gap inside retention is replayed');
  await send('rb', R, 'm7');
  await waitMsg(rb, 'm7');
  t.same(rb.ofDialog(R).map((f) => f.seq ?? f.type), ['resync_required', 8, 9, 10, 11], 'then live, without repeats');

  rb.send({ type: 'resume', dialogs: { [R]: -1 } });
  t.match(await rb.waitFor((f) => f.type === 'error'), { code: 'BAD_REQUEST', message: /^Invalid frame at dialogs/ });
});

t.test('hostile clients never disturb a healthy one', async (t) => {
  const H = await dialog(['hc', 'hs']);
  const control = await open('hc');
  let n = 0;
  const stillReceives = async (label: string) => {
    const content = `alive-${n++}`;
    await send('hs', H, content);
    t.ok(await waitMsg(control, content), `control socket receives after: ${label}`);
  };

  const j = await open('hx');
  j.sendRaw('{"type": "ping"', false);
  t.same(await j.waitFor((f) => f.type === 'error'), { type: 'error', code: 'BAD_REQUEST', message: 'Malformed frame: not valid JSON' });
  j.sendRaw('42', false);
  t.same(await j.waitFor((f) => f.type === 'error' && f !== j.frames[1]), { type: 'error', code: 'BAD_REQUEST', message: 'Malformed frame: expected an object with a string "type"' });
  j.send({ type: 'hack', id: 'h1' });
  t.same(await j.waitFor((f) => f.id === 'h1'), { type: 'error', id: 'h1', code: 'BAD_REQUEST', message: 'Unknown frame type: "hack"' });
  j.send({ type: 'subscribe', dialog_id: H });
  j.send({ type: 'unsubscribe', dialog_id: H });
  j.send({ type: 'ping' });
  await j.waitFor((f) => f.type === 'pong');
  t.same(j.frames.map((f) => f.type), ['connected', 'error', 'error', 'error', 'pong'], 'subscribe/unsubscribe are accepted silently; the socket stays open');
  await stillReceives('malformed JSON and unknown frames');

  const m = await open('hx', { msgpack: true });
  m.sendRaw(Buffer.from([0xc1]), true);
  t.same(await m.waitFor((f) => f.type === 'error'), { type: 'error', code: 'BAD_REQUEST', message: 'Malformed frame: not valid msgpack' });
  t.ok(m.binary[1], 'the error comes as msgpack');
  m.sendRaw(Buffer.from([0x92, 0x01]), true); // a truncated array
  m.send({ type: 'ping' });
  await m.waitFor((f) => f.type === 'pong');
  t.same(m.frames.map((f) => f.type), ['connected', 'error', 'error', 'pong']);
  await stillReceives('malformed msgpack');

  const big = await open('hy');
  big.sendRaw('x'.repeat(cfg.wsMaxPayloadBytes + 1), false);
  t.same(await big.closed, { code: 1009, reason: 'message too big' }, 'a frame over the limit closes with 1009');
  const huge = await open('hy');
  huge.sendRaw(Buffer.alloc(cfg.wsMaxPayloadBytes * 3), true);
  t.equal((await huge.closed).code, 1006, 'a frame far over the limit is cut off by the transport');
  await stillReceives('oversized frames');

  const flood = await open('hz');
  for (let i = 0; i < 400; i++) flood.send({ type: 'ping' });
  t.same(await flood.closed, { code: 4029, reason: 'rate limit exceeded' }, 'a flood is cut off');
  const pongs = flood.frames.filter((f) => f.type === 'pong').length;
  t.ok(pongs >= cfg.wsRateLimitBurst && pongs < 400, `the burst is served (${pongs} pongs), the rest is not`);
  t.same(flood.frames.find((f) => f.type === 'error'), { type: 'error', code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please slow down.' });
  const sendFlood = await open('hz');
  for (let i = 0; i < 200; i++) sendFlood.send({ type: 'send', id: `f${i}`, dialog_id: H, content: `flood ${i}` });
  t.equal((await sendFlood.closed).code, 4029, 'a flood of sends too');
  await stillReceives('floods');

  // A client that never reads while the server pushes a large backlog to it.
  const S = await dialog(['slow']);
  const row = (seq: number) => JSON.stringify({ type: 'message.read', dialog_id: S, user_id: 'x'.repeat(8000), last_read_message_id: randomUUID(), seq });
  await srv.sql(`INSERT INTO dialog_events (dialog_id, seq, payload, created_at)
    SELECT $1, g, $2::jsonb, now() FROM generate_series(2, 3001) g`, [S, row(0)]);
  await srv.sql('UPDATE dialogs SET last_seq = 3001 WHERE id = $1', [S]);
  const before = edge.stats().closedByServer[4008] ?? 0;
  const slow = await open('slow', { resume: true });
  (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  slow.send({ type: 'resume', dialogs: { [S]: 0 } });
  for (let i = 0; i < 200 && (edge.stats().closedByServer[4008] ?? 0) === before; i++) await new Promise((r) => setTimeout(r, 50));
  (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  t.same(await slow.closed, { code: 4008, reason: 'slow consumer' }, 'a client that does not read is closed');
  t.ok(slow.frames.length < 3000, `it got only part of the backlog (${slow.frames.length} frames)`);
  await stillReceives('a slow consumer');
});

t.test('a lost NATS message is filled from the event log, in order', async (t) => {
  const G = await dialog(['ga', 'gb']);
  const ga = await open('ga');
  const gm = await open('gb', { msgpack: true });
  await send('gb', G, 'g1');
  await waitMsg(ga, 'g1');
  // An event committed and logged whose NATS message never arrived.
  const seq = Number((await srv.sql('UPDATE dialogs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq', [G])).rows[0].last_seq);
  const lost = { type: 'message.read', dialog_id: G, user_id: 'gb', last_read_message_id: randomUUID() };
  await srv.sql('INSERT INTO dialog_events (dialog_id, seq, payload, created_at) VALUES ($1, $2, $3, now())', [G, seq, JSON.stringify(lost)]);
  await send('gb', G, 'g2');
  await waitMsg(ga, 'g2');
  await waitMsg(gm, 'g2');
  for (const s of [ga, gm]) {
    t.same(s.ofDialog(G).slice(-3).map((f) => [f.type, f.seq]), [['message.new', seq - 1], ['message.read', seq], ['message.new', seq + 1]]);
    t.same(s.ofDialog(G).at(-2), { ...lost, seq });
  }
});

t.test('a user added while the feed lags behind the log sees nothing from before the join', async (t) => {
  const LG = await dialog(['la']);
  const la = await open('la');
  const lb = await open('lb');
  await send('la', LG, 'l1');
  await waitMsg(la, 'l1');
  const seq = Number((await srv.sql('UPDATE dialogs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq', [LG])).rows[0].last_seq);
  const lost = { type: 'message.read', dialog_id: LG, user_id: 'la', last_read_message_id: randomUUID() };
  await srv.sql('INSERT INTO dialog_events (dialog_id, seq, payload, created_at) VALUES ($1, $2, $3, now())', [LG, seq, JSON.stringify(lost)]);
  t.equal((await api('POST', `/api/v1/management/dialogs/${LG}/participants`, { body: people('lb')[0] })).status, 201);
  await send('la', LG, 'l2');
  await waitMsg(lb, 'l2');
  await waitMsg(la, 'l2');
  t.same(lb.ofDialog(LG).map((f) => [f.type, f.seq]), [['participant.joined', seq + 1], ['message.new', seq + 2]]);
  t.same(la.ofDialog(LG).slice(-3).map((f) => f.seq), [seq, seq + 1, seq + 2], 'the existing participant gets the filled event');

  // Same for a socket that connects while the feed lags: its view starts after what was
  // committed at `connected`, and the lagging event still reaches the sockets already live.
  const seq2 = Number((await srv.sql('UPDATE dialogs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq', [LG])).rows[0].last_seq);
  await srv.sql('INSERT INTO dialog_events (dialog_id, seq, payload, created_at) VALUES ($1, $2, $3, now())', [LG, seq2, JSON.stringify(lost)]);
  const lc = await open('la');
  await send('la', LG, 'l3');
  await waitMsg(lc, 'l3');
  await waitMsg(la, 'l3');
  t.same(lc.ofDialog(LG).map((f) => f.seq), [seq2 + 1], 'a new socket gets nothing from before it connected');
  t.same(la.ofDialog(LG).slice(-2).map((f) => f.seq), [seq2, seq2 + 1]);
});

t.test('deleting a dialog tells its participants and stops its delivery', async (t) => {
  const X = await dialog(['xa', 'xb']);
  const xa = await open('xa');
  t.equal((await api('DELETE', `/api/v1/management/dialogs/${X}`)).status, 204);
  const left = await xa.waitFor((f) => f.type === 'participant.left');
  t.same(left, { type: 'participant.left', dialog_id: X, user_id: 'xa' }, 'per-user event: no seq');
  t.equal(xa.frames.filter((f) => f.type === 'participant.left').length, 1);
});

t.test('a ?resume=1 socket that never sends resume goes live after the wait, missing nothing', async (t) => {
  const HD = await dialog(['hold']);
  const s = await TestSocket.connect(base, { path: '/api/v1/ws-jwt', query: { token: await tokenFor('hold'), resume: '1' } });
  sockets.push(s);
  await send('hold', HD, 'while held');
  t.match(await waitMsg(s, 'while held'), { dialog_id: HD, seq: 2 });
  await send('hold', HD, 'live');
  await waitMsg(s, 'live');
  t.same(s.ofDialog(HD).map((f) => f.seq), [2, 3]);
});

t.test('presence counts each connection: open, ping refreshes, online until the last close', async (t) => {
  const key = `${presencePrefix}pres`;
  const first = await TestSocket.connect(base, { path: '/api/v1/ws-jwt', query: { token: await tokenFor('pres') } });
  const second = await TestSocket.connect(base, { path: '/api/v1/ws-jwt', query: { token: await tokenFor('pres') } });
  await until('both connections registered', async () => (await redis.zcard(key)) === 2);
  const conns = await redis.zrange(key, 0, -1, 'WITHSCORES');
  t.not(conns[0], conns[2], 'each connection has its own entry');
  const expiryBefore = Math.max(Number(conns[1]), Number(conns[3]));
  await new Promise((r) => setTimeout(r, 20));
  first.send({ type: 'ping' });
  await first.waitFor((f) => f.type === 'pong');
  const latest = async () => Number((await redis.zrange(key, -1, -1, 'WITHSCORES'))[1]);
  await until('the ping refreshed', async () => (await latest()) > expiryBefore).catch(() => undefined);
  t.ok((await latest()) > expiryBefore, "a ping pushes its connection's expiry further out");
  first.close();
  await first.closed;
  await until('the closed connection removed', async () => (await redis.zcard(key)) === 1);
  t.same([...(await presence.online(['pres']))], ['pres'], 'one socket left: still online');
  second.close();
  await second.closed;
  await until('the last connection removed', async () => (await redis.zcard(key)) === 0);
  t.same([...(await presence.online(['pres']))], [], 'last socket closed: offline');
});

t.test('a socket closes when its token expires', async (t) => {
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = await new SignJWT({ sub: 'exp-user' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
  const s = await TestSocket.connect(base, { path: '/api/v1/ws-jwt', query: { token } });
  sockets.push(s);
  t.same(await s.closed, { code: 4001, reason: 'token expired' });
});

t.test('shutdown closes sockets with 1001 and refuses new ones', async (t) => {
  const token = await new SignJWT({ sub: 'bye' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  const s = await TestSocket.connect(base, { path: '/api/v1/ws-jwt', query: { token } });
  sockets.push(s);
  await jwtEdge.close();
  t.same(await s.closed, { code: 1001, reason: 'server shutting down' });
  t.same(await refusedUpgrade(base, { path: '/api/v1/ws-jwt', query: { token } }), { status: 503, body: 'Server is shutting down' });
  t.match(jwtEdge.stats(), { connections: 0, dialogFeeds: 0, userFeeds: 0 });
});
