import t from 'tap';
import { CorsPolicy, type CorsConfig } from '../../src/edge/http/cors.js';

const base: CorsConfig = {
  corsOrigins: '*',
  corsMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
  corsHeaders: '*',
  corsCredentials: false,
  corsMaxAge: 3600,
};
const policy = (over: Partial<CorsConfig> = {}) => new CorsPolicy({ ...base, ...over });

/** header lookup, case-insensitive; asserts the header appears at most once */
function get(headers: [string, string][], name: string): string | undefined {
  const hits = headers.filter(([k]) => k.toLowerCase() === name.toLowerCase());
  if (hits.length > 1) throw new Error(`header ${name} appears ${hits.length} times`);
  return hits[0]?.[1];
}
const varyOf = (h: [string, string][]) => (get(h, 'Vary') ?? '').split(',').map((s) => s.trim()).filter(Boolean);

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

t.test('defaults: origins *, no credentials', async (t) => {
  const p = policy();
  const pre = p.preflight({ origin: APP, requestMethod: 'POST', requestHeaders: 'Authorization, Content-Type, X-Scope-Config' });
  t.equal(get(pre, 'Access-Control-Allow-Origin'), '*');
  t.equal(get(pre, 'Access-Control-Allow-Methods'), 'GET,POST,PUT,DELETE,OPTIONS', 'method list joined with ,');
  t.equal(get(pre, 'Access-Control-Allow-Headers'), 'authorization,content-type,x-scope-config', 'requested headers mirrored (Authorization included)');
  t.equal(get(pre, 'Access-Control-Max-Age'), '3600');
  t.equal(get(pre, 'Access-Control-Allow-Credentials'), undefined);
  t.notOk(varyOf(pre).includes('Origin'), 'no Vary: Origin for a literal *');
  t.ok(varyOf(pre).includes('Access-Control-Request-Headers'));

  const act = p.actual({ origin: APP });
  t.equal(get(act, 'Access-Control-Allow-Origin'), '*');
  t.equal(get(act, 'Access-Control-Allow-Credentials'), undefined);
  t.equal(get(act, 'Access-Control-Max-Age'), undefined, 'Max-Age only on preflights');
  t.equal(get(act, 'Access-Control-Allow-Methods'), undefined);
  t.equal(get(act, 'Vary'), undefined);

  t.equal(get(p.actual({}), 'Access-Control-Allow-Origin'), '*', 'no Origin: still *');
});

t.test('headers *: preflight without requested headers', async (t) => {
  t.equal(get(policy().preflight({ origin: APP, requestMethod: 'GET' }), 'Access-Control-Allow-Headers'), '*', 'no credentials → *');
  t.equal(get(policy().preflight({ origin: APP, requestMethod: 'GET', requestHeaders: ' , ' }), 'Access-Control-Allow-Headers'), '*', 'empty list → *');
  t.equal(
    get(policy({ corsCredentials: true }).preflight({ origin: APP, requestMethod: 'GET' }), 'Access-Control-Allow-Headers'),
    undefined,
    'credentials → omitted (a literal * would not be a wildcard)',
  );
});

t.test('headers *: mirrored headers are sanitized', async (t) => {
  const pre = policy().preflight({ origin: APP, requestMethod: 'GET', requestHeaders: 'Authorization,\r\nSet-Cookie: x, bad header, X-Ok' });
  t.equal(get(pre, 'Access-Control-Allow-Headers'), 'authorization,x-ok');
});

t.test('methods *', async (t) => {
  t.equal(get(policy({ corsMethods: '*' }).preflight({ origin: APP, requestMethod: 'PATCH' }), 'Access-Control-Allow-Methods'), '*', 'no credentials → *');
  const cred = policy({ corsMethods: '*', corsCredentials: true });
  const pre = cred.preflight({ origin: APP, requestMethod: 'PATCH' });
  t.equal(get(pre, 'Access-Control-Allow-Methods'), 'PATCH', 'credentials → requested method mirrored');
  t.ok(varyOf(pre).includes('Access-Control-Request-Method'));
  t.equal(get(cred.preflight({ origin: APP }), 'Access-Control-Allow-Methods'), undefined, 'credentials, nothing requested → omitted');
  t.equal(get(cred.preflight({ origin: APP, requestMethod: 'GET\r\nX: y' }), 'Access-Control-Allow-Methods'), undefined, 'invalid method not mirrored');
});

t.test('headers list: joined, not mirrored', async (t) => {
  const p = policy({ corsHeaders: ['Authorization', 'Content-Type'] });
  const pre = p.preflight({ origin: APP, requestMethod: 'GET', requestHeaders: 'X-Other' });
  t.equal(get(pre, 'Access-Control-Allow-Headers'), 'Authorization,Content-Type');
  t.notOk(varyOf(pre).includes('Access-Control-Request-Headers'));
});

t.test('origins * with credentials: Origin mirrored', async (t) => {
  const p = policy({ corsCredentials: true, corsMethods: '*' });
  const pre = p.preflight({ origin: APP, requestMethod: 'DELETE', requestHeaders: 'Authorization' });
  t.equal(get(pre, 'Access-Control-Allow-Origin'), APP);
  t.equal(get(pre, 'Access-Control-Allow-Credentials'), 'true');
  t.equal(get(pre, 'Access-Control-Allow-Methods'), 'DELETE');
  t.equal(get(pre, 'Access-Control-Allow-Headers'), 'authorization');
  t.equal(get(pre, 'Access-Control-Max-Age'), '3600');
  t.same(varyOf(pre).sort(), ['Access-Control-Request-Headers', 'Access-Control-Request-Method', 'Origin']);

  const act = p.actual({ origin: APP });
  t.equal(get(act, 'Access-Control-Allow-Origin'), APP);
  t.equal(get(act, 'Access-Control-Allow-Credentials'), 'true');
  t.same(varyOf(act), ['Origin']);

  const noOrigin = p.actual({});
  t.equal(get(noOrigin, 'Access-Control-Allow-Origin'), undefined, 'nothing to mirror');
  t.equal(get(noOrigin, 'Access-Control-Allow-Credentials'), 'true');
  t.same(varyOf(noOrigin), ['Origin']);

  t.equal(get(p.actual({ origin: 'https://x\r\nSet-Cookie: a' }), 'Access-Control-Allow-Origin'), undefined, 'header injection not mirrored');
});

t.test('origin list: match echoes the Origin, mismatch omits it', async (t) => {
  const p = policy({ corsOrigins: [APP, 'http://localhost:3000'], corsCredentials: true });
  const ok = p.preflight({ origin: APP, requestMethod: 'POST', requestHeaders: 'Authorization,Content-Type' });
  t.equal(get(ok, 'Access-Control-Allow-Origin'), APP);
  t.ok(varyOf(ok).includes('Origin'));
  t.equal(get(ok, 'Access-Control-Allow-Headers'), 'authorization,content-type', 'headers * + credentials: mirrored (documented production example no longer crashes)');
  t.equal(get(ok, 'Access-Control-Allow-Methods'), 'GET,POST,PUT,DELETE,OPTIONS');
  t.equal(get(ok, 'Access-Control-Allow-Credentials'), 'true');

  const bad = p.preflight({ origin: EVIL, requestMethod: 'POST', requestHeaders: 'Authorization' });
  t.equal(get(bad, 'Access-Control-Allow-Origin'), undefined, 'non-matching origin: header left out');
  t.equal(get(bad, 'Access-Control-Allow-Methods'), 'GET,POST,PUT,DELETE,OPTIONS', 'other CORS headers still sent');
  t.equal(get(bad, 'Access-Control-Allow-Headers'), 'authorization');
  t.equal(get(bad, 'Access-Control-Allow-Credentials'), 'true');
  t.equal(get(bad, 'Access-Control-Max-Age'), '3600');
  t.ok(varyOf(bad).includes('Origin'));

  t.equal(get(p.actual({ origin: 'http://localhost:3000' }), 'Access-Control-Allow-Origin'), 'http://localhost:3000');
  const actBad = p.actual({ origin: EVIL });
  t.equal(get(actBad, 'Access-Control-Allow-Origin'), undefined);
  t.equal(get(actBad, 'Access-Control-Allow-Credentials'), 'true');
  t.same(varyOf(actBad), ['Origin']);
  t.equal(get(p.actual({}), 'Access-Control-Allow-Origin'), undefined, 'no Origin: omitted');
});

t.test('origin list without credentials', async (t) => {
  const p = policy({ corsOrigins: [APP] });
  const act = p.actual({ origin: APP });
  t.equal(get(act, 'Access-Control-Allow-Origin'), APP);
  t.equal(get(act, 'Access-Control-Allow-Credentials'), undefined);
  t.same(varyOf(act), ['Origin']);
  t.equal(get(p.actual({ origin: EVIL }), 'Access-Control-Allow-Origin'), undefined);
});

t.test('origin matching is case-insensitive and tolerates a configured trailing slash; echo is verbatim', async (t) => {
  const p = policy({ corsOrigins: ['https://App.Example.com/'] });
  t.equal(get(p.actual({ origin: APP }), 'Access-Control-Allow-Origin'), APP);
  t.ok(p.originAllowed(APP));
  t.notOk(p.originAllowed('https://app.example.com.evil.net'));
  t.notOk(p.originAllowed('http://app.example.com'), 'scheme matters');
});

t.test('originAllowed', async (t) => {
  t.ok(policy().originAllowed(EVIL), '* allows any');
  t.ok(policy({ corsCredentials: true }).originAllowed(EVIL), '* with credentials allows any');
  const list = policy({ corsOrigins: [APP] });
  t.ok(list.originAllowed(APP));
  t.notOk(list.originAllowed(EVIL));
  t.notOk(list.originAllowed('null'));
  t.ok(list.originAllowed(undefined), 'no Origin header = non-browser client, allowed');
  t.ok(list.originAllowed(''), 'empty Origin treated as absent');
});

t.test('Max-Age value and empty lists', async (t) => {
  t.equal(get(policy({ corsMaxAge: 0 }).preflight({ origin: APP }), 'Access-Control-Max-Age'), '0');
  const p = policy({ corsMethods: [], corsHeaders: [] });
  const pre = p.preflight({ origin: APP, requestMethod: 'GET', requestHeaders: 'Authorization' });
  t.equal(get(pre, 'Access-Control-Allow-Methods'), undefined, 'empty list: header omitted, not an empty value');
  t.equal(get(pre, 'Access-Control-Allow-Headers'), undefined);
});

t.test('results are fresh arrays (callers may append)', async (t) => {
  const p = policy({ corsOrigins: [APP] });
  const a = p.actual({ origin: APP });
  a.push(['X', 'y']);
  t.equal(p.actual({ origin: APP }).length, a.length - 1);
});
