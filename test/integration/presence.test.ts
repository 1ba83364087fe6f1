import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { Presence } from '../../src/services/presence.js';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';
import { MSGPACK, TestSocket } from '../helpers/ws-client.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

async function cleanup(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
}

/** A Redis connection and a key prefix of this test's own, both cleaned up after it. */
function scratchRedis(t: Test): { redis: Redis; prefix: string } {
  const redis = new Redis(REDIS_URL);
  const prefix = `mtchat_test_${process.pid}_${randomBytes(3).toString('hex')}:presence:`;
  t.teardown(async () => {
    await cleanup(redis, prefix);
    redis.disconnect();
  });
  return { redis, prefix };
}

t.test('counted per connection: online at the first, offline after the last', async (t) => {
  const { redis, prefix } = scratchRedis(t);
  const p = new Presence(redis, prefix);
  t.equal(await p.connected('u1', 'c1'), true, 'first tab: came online');
  t.equal(await p.connected('u1', 'c2'), false, 'second tab: no transition');
  t.same([...(await p.online(['u1', 'u2']))], ['u1']);
  t.equal(await p.disconnected('u1', 'c1'), false, 'one tab left open: still online');
  t.same([...(await p.online(['u1']))], ['u1']);
  t.equal(await p.disconnected('u1', 'c2'), true, 'last tab closed: offline');
  t.same([...(await p.online(['u1']))], []);
});

t.test('a connection whose pings stop lapses after the TTL', async (t) => {
  const { redis, prefix } = scratchRedis(t);
  const p = new Presence(redis, prefix, 300);
  await p.connected('u1', 'crashed-node');
  await p.connected('u2', 'alive');
  await new Promise((r) => setTimeout(r, 200));
  await p.refresh('u2', 'alive');
  await new Promise((r) => setTimeout(r, 200));
  t.same([...(await p.online(['u1', 'u2']))], ['u2'], 'the refreshed connection lives, the silent one lapsed');
  t.equal(await p.connected('u1', 'back'), true, 'coming back after a lapse is a new transition');
});

t.test('participants list reports is_online from presence', async (t) => {
  const srv = await startTestServer({ REDIS_URL });
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    await cleanup(redis, `${srv.namespace}:`);
    redis.disconnect();
    await srv.close();
  });
  const api = client(srv.url);
  const id = await createDialog(api, { participants: [{ user_id: 'on', display_name: 'On' }, { user_id: 'off', display_name: 'Off' }] });
  await new Presence(redis, `${srv.namespace}:presence:`).connected('on', 'c1');
  const r = await api('GET', `/api/v1/dialogs/${id}/participants`, { user: 'off' });
  t.equal(r.status, 200);
  const online = Object.fromEntries(r.json.data.map((p: { user_id: string; is_online: boolean }) => [p.user_id, p.is_online]));
  t.same(online, { on: true, off: false });
});

t.test('presence.update over real sockets: to co-participants in both formats, never to the subject or a stranger', async (t) => {
  const srv = await startTestServer({ REDIS_URL });
  const redis = new Redis(REDIS_URL);
  const sockets: TestSocket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.close();
    await cleanup(redis, `${srv.namespace}:`);
    redis.disconnect();
    await srv.close();
  });
  const api = client(srv.url);
  const who = (id: string) => ({ user_id: id, display_name: id });
  await createDialog(api, { participants: [who('pa-ann'), who('pa-bob'), who('pa-erin')] });
  await createDialog(api, { participants: [who('pa-ann'), who('pa-bob')] }); // a second shared dialog
  await createDialog(api, { participants: [who('pa-carol'), who('pa-dave')] });
  const open = async (user: string, msgpack = false) => {
    const s = await TestSocket.open(srv.url, { query: { user_id: user }, protocols: msgpack ? [MSGPACK] : [] });
    sockets.push(s);
    await s.waitFor((f) => f.type === 'connected');
    return s;
  };
  const presenceOf = (s: TestSocket, user: string) => s.frames.filter((f) => f.type === 'presence.update' && f.user_id === user);

  const bob = await open('pa-bob');
  const carol = await open('pa-carol');
  const ann = await open('pa-ann', true);
  t.strictSame(await bob.waitFor((f) => f.type === 'presence.update' && f.user_id === 'pa-ann'), { type: 'presence.update', user_id: 'pa-ann', is_online: true }, 'JSON co-participant hears the msgpack subject');
  // Erin shares a dialog with Ann: when Ann hears of her, Ann's own announcement (earlier, same dialog) has passed.
  const erin = await open('pa-erin');
  t.strictSame(await ann.waitFor((f) => f.type === 'presence.update' && f.user_id === 'pa-erin'), { type: 'presence.update', user_id: 'pa-erin', is_online: true }, 'msgpack co-participant hears it too');
  t.ok(ann.binary.every(Boolean), 'msgpack socket got binary frames only');
  t.equal(presenceOf(ann, 'pa-ann').length, 0, 'the subject does not hear about itself');
  const dave = await open('pa-dave');
  await carol.waitFor((f) => f.type === 'presence.update' && f.user_id === 'pa-dave');
  t.equal(presenceOf(carol, 'pa-ann').length + presenceOf(carol, 'pa-erin').length, 0, 'a user sharing no dialog hears nothing');
  t.equal(presenceOf(dave, 'pa-ann').length, 0);

  ann.close();
  t.strictSame(await bob.waitFor((f) => f.type === 'presence.update' && f.user_id === 'pa-ann' && f.is_online === false), { type: 'presence.update', user_id: 'pa-ann', is_online: false }, 'offline after the last socket');
  await erin.waitFor((f) => f.type === 'presence.update' && f.user_id === 'pa-ann' && f.is_online === false);
  const onlines = presenceOf(bob, 'pa-ann').filter((f) => f.is_online === true).length;
  t.ok(onlines >= 1 && onlines <= 2, `at most once per shared dialog (${onlines})`);
  t.equal(presenceOf(carol, 'pa-ann').length, 0, 'still nothing for the stranger');
});
