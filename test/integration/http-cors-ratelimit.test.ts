// CORS and rate limiting over real HTTP (spec configuration.md "CORS" and "Rate limiting",
// README "Route map" on OPTIONS, chat-api.md "Health", review-findings.md B13).
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { client } from '../helpers/api.js';

const APP = 'https://app.example.com';
const LOCAL = 'http://localhost:3000';
const EVIL = 'https://evil.example.net';
const REDIS_URL = 'redis://127.0.0.1:6379';

async function options(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method: 'OPTIONS', headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}
const varyOf = (h: Headers) => (h.get('vary') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

t.test('CORS defaults: every OPTIONS is a preflight answered before routing and auth', async (t) => {
  const srv = await startTestServer({ JWT_AUTH_ENABLED: 'true', JWT_SECRET: 'cors-test-secret-0123456789abcdef0123456789' });
  t.teardown(() => srv.close());
  const api = client(srv.url);

  for (const path of ['/api/v1/dialogs', '/api/v1/does/not/exist', '/', '/health', `/api/v1/dialogs/${randomUUID()}/messages`, '/api/v1/management/dialogs']) {
    const r = await options(`${srv.url}${path}`, {
      origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'Authorization, Content-Type, X-Scope-Config',
    });
    t.equal(r.status, 200, `${path}: 200 without auth`);
    t.equal(r.text, '', `${path}: empty body`);
    t.equal(r.headers.get('access-control-allow-origin'), '*', `${path}: Allow-Origin *`);
    t.equal(r.headers.get('access-control-allow-methods'), 'GET,POST,PUT,DELETE,OPTIONS', `${path}: methods`);
    t.equal(r.headers.get('access-control-allow-headers'), 'authorization,content-type,x-scope-config', `${path}: requested headers mirrored (Authorization covered)`);
    t.equal(r.headers.get('access-control-max-age'), '3600', `${path}: Max-Age`);
    t.equal(r.headers.get('access-control-allow-credentials'), null, `${path}: no credentials by default`);
  }

  const bare = await options(`${srv.url}/api/v1/dialogs`);
  t.equal(bare.status, 200, 'OPTIONS without any CORS request headers');
  t.equal(bare.text, '');

  const unauth = await api('GET', '/api/v1/dialogs', { headers: { origin: APP } });
  t.equal(unauth.status, 401, 'the actual request still needs auth');
  t.equal(unauth.headers.get('access-control-allow-origin'), '*', 'error responses carry CORS headers');
  const notFound = await api('GET', '/api/v1/nope', { headers: { origin: APP } });
  t.equal(notFound.status, 404);
  t.equal(notFound.headers.get('access-control-allow-origin'), '*', '404 carries CORS headers');
});

t.test('CORS origin list with credentials and default headers * (B13)', async (t) => {
  const srv = await startTestServer({ CORS_ALLOWED_ORIGINS: `${APP}, ${LOCAL}`, CORS_ALLOW_CREDENTIALS: 'true' });
  t.teardown(() => srv.close());
  const api = client(srv.url);

  const pre = await options(`${srv.url}/api/v1/dialogs`, {
    origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-scope-config',
  });
  t.equal(pre.status, 200, 'the documented production example starts and answers');
  t.equal(pre.text, '');
  t.equal(pre.headers.get('access-control-allow-origin'), APP, 'origin echoed');
  t.equal(pre.headers.get('access-control-allow-credentials'), 'true');
  t.equal(pre.headers.get('access-control-allow-headers'), 'authorization,content-type,x-scope-config', 'requested headers mirrored, not *');
  t.equal(pre.headers.get('access-control-allow-methods'), 'GET,POST,PUT,DELETE,OPTIONS');
  t.equal(pre.headers.get('access-control-max-age'), '3600');
  t.ok(varyOf(pre.headers).includes('origin'), 'Vary: Origin');

  const local = await options(`${srv.url}/anything`, { origin: LOCAL, 'access-control-request-method': 'GET' });
  t.equal(local.headers.get('access-control-allow-origin'), LOCAL, 'second listed origin');

  const evil = await options(`${srv.url}/api/v1/dialogs`, {
    origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization',
  });
  t.equal(evil.status, 200);
  t.equal(evil.headers.get('access-control-allow-origin'), null, 'disallowed origin: no Allow-Origin');

  const ok = await api('GET', '/api/v1/dialogs', { user: 'cors-u', headers: { origin: APP } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('access-control-allow-origin'), APP);
  t.equal(ok.headers.get('access-control-allow-credentials'), 'true');
  t.ok(varyOf(ok.headers).includes('origin'));
  const bad = await api('GET', '/api/v1/dialogs', { user: 'cors-u', headers: { origin: EVIL } });
  t.equal(bad.status, 200, 'non-browser semantics: the server still answers');
  t.equal(bad.headers.get('access-control-allow-origin'), null, 'disallowed origin on an actual request: no Allow-Origin');
});

/** Runs the per-user limit checks against a server with RATE_LIMIT_RPS=1, RATE_LIMIT_BURST=3. */
async function rateLimitChecks(t: Asserts, srv: TestServer, users: { a: string; b: string }): Promise<void> {
  const api = client(srv.url);
  for (let i = 1; i <= 3; i++) {
    const r = await api('GET', '/api/v1/dialogs', { user: users.a });
    t.equal(r.status, 200, `request ${i} of ${users.a} allowed`);
  }
  const denied = await api('GET', '/api/v1/dialogs', { user: users.a, headers: { origin: APP } });
  t.equal(denied.status, 429, '4th request → 429');
  t.same(denied.json, { error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please slow down.' } });
  const retryAfter = denied.headers.get('retry-after');
  t.match(retryAfter, /^\d+$/, 'Retry-After is whole seconds');
  t.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter} ≥ 1`);
  t.equal(denied.headers.get('access-control-allow-origin'), '*', '429 carries CORS headers');
  t.match(denied.headers.get('x-request-id') ?? '', /\S/, '429 has X-Request-Id');

  const post = await api('POST', `/api/v1/dialogs/${randomUUID()}/messages`, { user: users.a, body: { content: 'x' } });
  t.equal(post.status, 429, 'the limit is per user, across routes');
  t.equal(post.json?.error?.code, 'RATE_LIMIT_EXCEEDED');

  const other = await api('GET', '/api/v1/dialogs', { user: users.b });
  t.equal(other.status, 200, 'another user is not affected');

  const pre = await options(`${srv.url}/api/v1/dialogs?user_id=${users.a}`, { origin: APP, 'access-control-request-method': 'GET' });
  t.equal(pre.status, 200, 'preflight never limited');
  t.equal(pre.text, '');
  t.equal(pre.headers.get('access-control-allow-origin'), '*');

  for (let i = 0; i < 10; i++) {
    const h = await api('GET', '/health');
    t.equal(h.status, 200, `/health #${i + 1} not limited`);
  }
  const ready = await api('GET', '/health/ready');
  t.equal(ready.status, 200, '/health/ready not limited');

  const again = await api('GET', '/api/v1/dialogs', { user: users.a });
  t.equal(again.status, 429, 'still limited right after');
}
interface Asserts {
  ok(...args: any[]): unknown;
  equal(...args: any[]): unknown;
  same(...args: any[]): unknown;
  match(...args: any[]): unknown;
}

const limited = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_RPS: '1', RATE_LIMIT_BURST: '3' };

t.test('rate limit with Redis: per user, keys under the namespace', async (t) => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const srv = await startTestServer({ ...limited, REDIS_URL });
  const scan = async (pattern: string): Promise<string[]> => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  };
  t.teardown(async () => {
    await srv.close();
    const keys = await scan(`${srv.namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  const users = { a: `rl-a-${srv.namespace}`, b: `rl-b-${srv.namespace}` };
  await rateLimitChecks(t, srv, users);

  const keys = await scan(`${srv.namespace}:*`);
  t.ok(keys.includes(`${srv.namespace}:rl:u:${users.a}`), 'bucket of user a in Redis under the namespace');
  t.ok(keys.includes(`${srv.namespace}:rl:u:${users.b}`), 'bucket of user b in Redis under the namespace');
  for (const u of [users.a, users.b]) {
    const anywhere = await scan(`*${u}*`);
    t.ok(anywhere.length > 0, `keys for ${u} found`);
    t.ok(anywhere.every((k) => k.startsWith(`${srv.namespace}:`)), `every key naming ${u} is under ${srv.namespace}:`);
  }
  t.ok((await redis.pttl(`${srv.namespace}:rl:u:${users.a}`)) > 0, 'buckets expire');
});

t.test('rate limit with Redis unreachable: in-process bucket', async (t) => {
  const srv = await startTestServer({ ...limited, REDIS_URL: 'redis://127.0.0.1:1' });
  t.teardown(() => srv.close());
  await rateLimitChecks(t, srv, { a: 'down-a', b: 'down-b' });
});

t.test('rate limit without Redis', async (t) => {
  const srv = await startTestServer(limited);
  t.teardown(() => srv.close());
  await rateLimitChecks(t, srv, { a: 'mem-a', b: 'mem-b' });
});

t.test('rate limit off by default', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api = client(srv.url);
  for (let i = 0; i < 8; i++) t.equal((await api('GET', '/api/v1/dialogs', { user: 'free' })).status, 200, `request ${i + 1}`);
});
