import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { MemoryRateLimiter, RedisRateLimiter, clientKey } from '../../src/services/rate-limit.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `mtchat_test_${process.pid}_${Date.now()}:rl:`;

const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
const redis2 = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
// Nothing listens on port 1: every command fails at once, and no reconnect loop keeps tap alive.
const dead = new Redis({
  host: '127.0.0.1',
  port: 1,
  lazyConnect: true,
  maxRetriesPerRequest: 0,
  enableOfflineQueue: false,
  retryStrategy: () => null,
});
dead.on('error', () => {});

t.teardown(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
  await redis2.quit();
  dead.disconnect();
});

const limiter = (rps: number, burst: number, r: Redis = redis, onFallback?: (e: Error) => void) =>
  new RedisRateLimiter(r, { rps, burst, prefix: PREFIX, fallback: new MemoryRateLimiter(rps, burst), onFallback });

const failOnFallback = (t: { fail(message: string): unknown }) => (e: Error) => t.fail(`unexpected fallback: ${e.message}`);

t.test('redis: burst exhausted → denied with retryAfter ≥ 1', async (t) => {
  const l = limiter(1, 3, redis, failOnFallback(t));
  for (let i = 0; i < 3; i++) t.same(await l.take('burst'), { allowed: true, retryAfterSecs: 0 }, `request ${i + 1} allowed`);
  const d = await l.take('burst');
  t.equal(d.allowed, false);
  t.ok(d.retryAfterSecs >= 1, `retryAfter ${d.retryAfterSecs} ≥ 1`);
  t.ok(d.retryAfterSecs <= 1, 'one token at 1 rps is ≤ 1 s away');
  const ttl = await redis.pttl(`${PREFIX}burst`);
  t.ok(ttl > 0 && ttl <= 4000, `key expires about when full again (+1 s), pttl=${ttl}`);
  await l.close();
});

t.test('redis: retryAfter is rounded up to whole seconds', async (t) => {
  const l = limiter(0.25, 1, redis, failOnFallback(t)); // one token per 4 s
  t.equal((await l.take('slow')).allowed, true);
  const d = await l.take('slow');
  t.equal(d.allowed, false);
  t.equal(d.retryAfterSecs, 4);
});

t.test('redis: refills over time', async (t) => {
  const l = limiter(20, 2, redis, failOnFallback(t)); // one token every 50 ms
  t.equal((await l.take('refill')).allowed, true);
  t.equal((await l.take('refill')).allowed, true);
  t.equal((await l.take('refill')).allowed, false);
  await sleep(130);
  t.equal((await l.take('refill')).allowed, true, 'token back after refill');
  t.equal((await l.take('refill')).allowed, true, 'second token back');
  t.equal((await l.take('refill')).allowed, false, 'refill capped at burst… and used up again');
});

t.test('redis: separate keys are independent', async (t) => {
  const l = limiter(1, 1, redis, failOnFallback(t));
  t.equal((await l.take('ip:10.0.0.1')).allowed, true);
  t.equal((await l.take('ip:10.0.0.1')).allowed, false);
  t.equal((await l.take('ip:10.0.0.2')).allowed, true, 'other key untouched');
  t.equal((await l.take('u:alice')).allowed, true);
});

t.test('redis: two limiter instances on separate connections share one bucket', async (t) => {
  const a = limiter(1, 4, redis, failOnFallback(t));
  const b = limiter(1, 4, redis2, failOnFallback(t));
  const results = await Promise.all([a.take('shared'), b.take('shared'), a.take('shared'), b.take('shared'), a.take('shared'), b.take('shared')]);
  t.equal(results.filter((r) => r.allowed).length, 4, 'exactly burst requests allowed across both nodes');
  t.equal((await b.take('shared')).allowed, false);
  t.equal((await a.take('shared')).allowed, false);
});

t.test('redis unreachable: falls back to the in-process bucket and still limits', async (t) => {
  const errors: Error[] = [];
  const l = limiter(1, 2, dead, (e) => errors.push(e));
  t.same(await l.take('down'), { allowed: true, retryAfterSecs: 0 });
  t.same(await l.take('down'), { allowed: true, retryAfterSecs: 0 });
  const d = await l.take('down');
  t.equal(d.allowed, false, 'fallback bucket enforces the limit');
  t.equal(d.retryAfterSecs, 1);
  t.equal(errors.length, 3, 'onFallback called for every failed call');
  t.ok(errors.every((e) => e instanceof Error));
  t.equal((await l.take('other')).allowed, true, 'fallback buckets are per key too');
  await l.close();
});

t.test('redis: a throwing onFallback does not fail the request', async (t) => {
  const l = limiter(1, 1, dead, () => {
    throw new Error('observer broke');
  });
  t.same(await l.take('x'), { allowed: true, retryAfterSecs: 0 });
});

t.test('redis: a hanging call times out and falls back', async (t) => {
  // Offline queue on + never connected: the command would wait forever without the timeout.
  const hanging = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: true, retryStrategy: () => 60_000 });
  hanging.on('error', () => {});
  t.teardown(() => hanging.disconnect());
  let fellBack: Error | undefined;
  const l = new RedisRateLimiter(hanging, {
    rps: 1, burst: 1, prefix: PREFIX, fallback: new MemoryRateLimiter(1, 1), timeoutMs: 50, onFallback: (e) => (fellBack = e),
  });
  const started = Date.now();
  t.same(await l.take('hang'), { allowed: true, retryAfterSecs: 0 });
  t.ok(Date.now() - started < 1000, 'answered promptly');
  t.match(fellBack?.message, /timed out/);
});

t.test('memory limiter with injected clock', async (t) => {
  let now = 1_000;
  const m = new MemoryRateLimiter(2, 3, () => now); // 2 tokens/s, burst 3
  for (let i = 0; i < 3; i++) t.equal((await m.take('k')).allowed, true);
  let d = await m.take('k');
  t.same(d, { allowed: false, retryAfterSecs: 1 }, 'denied; 0.5 s to next token → 1 s');
  now += 499;
  t.equal((await m.take('k')).allowed, false, 'not yet');
  now += 1;
  t.equal((await m.take('k')).allowed, true, 'one token after 500 ms');
  t.equal((await m.take('k')).allowed, false);
  t.equal((await m.take('other')).allowed, true, 'keys independent');
  now += 60_000;
  for (let i = 0; i < 3; i++) t.equal((await m.take('k')).allowed, true, 'refill capped at burst');
  t.equal((await m.take('k')).allowed, false);

  const slow = new MemoryRateLimiter(0.2, 1, () => now); // one token per 5 s
  await slow.take('s');
  d = await slow.take('s');
  t.same(d, { allowed: false, retryAfterSecs: 5 });
  now += 2_500;
  t.equal((await slow.take('s')).retryAfterSecs, 3, 'ceil(2.5)');
});

t.test('memory limiter evicts full buckets', async (t) => {
  let now = 0;
  const m = new MemoryRateLimiter(10, 5, () => now);
  for (let i = 0; i < 500; i++) await m.take(`k${i}`);
  t.equal(m.size, 500);
  now += 100; // 0.1 s * 10 rps = 1 token: every bucket is full again; 'drained' is not
  await m.take('drained');
  await m.take('drained');
  await m.take('drained');
  m.sweep();
  t.equal(m.size, 1, 'refilled buckets dropped, the drained one kept');
  now += 1_000;
  m.sweep();
  t.equal(m.size, 0);

  // Lazy: growing past the threshold triggers a sweep from take()
  now = 100_000;
  for (let i = 0; i < 2000; i++) {
    await m.take(`burst${i}`);
    now += 1; // each bucket is full again 100 ms after its request
  }
  t.ok(m.size < 1100, `size stays bounded (${m.size})`);
  // Lazy: the periodic sweep
  now += 20_000;
  await m.take('late');
  t.equal(m.size, 1);
  await m.close();
  t.equal(m.size, 0);
});

t.test('invalid parameters are refused', async (t) => {
  t.throws(() => new MemoryRateLimiter(0, 1), RangeError);
  t.throws(() => new MemoryRateLimiter(1, 0), RangeError);
  t.throws(() => limiter(Number.NaN, 1), RangeError);
});

t.test('clientKey', async (t) => {
  const trusted = ['10.0.0.1', '192.168.0.0/16', '::1'];
  t.equal(clientKey('alice', '203.0.113.9', '1.2.3.4', trusted), 'u:alice', 'user id wins');
  t.equal(clientKey(null, '203.0.113.9', undefined, []), 'ip:203.0.113.9');
  t.equal(clientKey(null, '::ffff:203.0.113.9', undefined, []), 'ip:203.0.113.9', 'IPv4-mapped normalized');

  // untrusted peer: X-Forwarded-For ignored
  t.equal(clientKey(null, '203.0.113.9', '1.2.3.4', []), 'ip:203.0.113.9', 'no trusted proxies');
  t.equal(clientKey(null, '203.0.113.9', '1.2.3.4', trusted), 'ip:203.0.113.9', 'peer not trusted');

  // trusted exact peer
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4', trusted), 'ip:1.2.3.4');
  t.equal(clientKey(null, '::ffff:10.0.0.1', '1.2.3.4', trusted), 'ip:1.2.3.4', 'mapped peer matches IPv4 entry');
  t.equal(clientKey(null, '::1', '2001:DB8::5', trusted), 'ip:2001:db8::5', 'IPv6 peer and hop');
  // spoofed leftmost entries are skipped: the rightmost untrusted hop is the client
  t.equal(clientKey(null, '10.0.0.1', '6.6.6.6, 1.2.3.4', trusted), 'ip:1.2.3.4');
  // CIDR: chain of trusted proxies walked from the right
  t.equal(clientKey(null, '192.168.1.10', '6.6.6.6, 1.2.3.4, 192.168.5.5, 10.0.0.1', trusted), 'ip:1.2.3.4');
  t.equal(clientKey(null, '192.168.255.255', '1.2.3.4', trusted), 'ip:1.2.3.4', 'CIDR upper edge');
  t.equal(clientKey(null, '192.169.0.1', '1.2.3.4', trusted), 'ip:192.169.0.1', 'outside the CIDR');
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4', ['10.0.0.0/31']), 'ip:1.2.3.4', '/31');
  t.equal(clientKey(null, '10.0.0.2', '1.2.3.4', ['10.0.0.0/31']), 'ip:10.0.0.2');
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4', ['0.0.0.0/0']), 'ip:1.2.3.4', '/0 trusts everything');
  // all hops trusted → leftmost
  t.equal(clientKey(null, '10.0.0.1', '192.168.0.7, 192.168.0.8', trusted), 'ip:192.168.0.7');
  // empty / garbage
  t.equal(clientKey(null, '10.0.0.1', '', trusted), 'ip:10.0.0.1', 'empty header');
  t.equal(clientKey(null, '10.0.0.1', 'unknown', trusted), 'ip:10.0.0.1', 'garbage hop → trusted peer');
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4, garbage, 192.168.0.9', trusted), 'ip:192.168.0.9', 'stop at garbage, nearest vouched address');
  // ports
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4:5678', trusted), 'ip:1.2.3.4', 'IPv4 with port');
  t.equal(clientKey(null, '10.0.0.1', '[2001:db8::1]:443', trusted), 'ip:2001:db8::1', 'bracketed IPv6 with port');
  // malformed trusted entries are ignored, not fatal
  t.equal(clientKey(null, '10.0.0.1', '1.2.3.4', ['nonsense', '10.0.0.0/99', '10.0.0.1']), 'ip:1.2.3.4');
  t.equal(clientKey('', '203.0.113.9', undefined, []), 'ip:203.0.113.9', 'empty user id counts as unknown');
});
