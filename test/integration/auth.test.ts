// Chat API identity over real HTTP: JWT mode (spec chat-api.md "User identity", "User scope";
// configuration.md "Chat API authentication (JWT)" and "Additions") and legacy user_id mode.
import t from 'tap';
import { createHmac } from 'node:crypto';
import { SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog, scopeHeader, type Api, type ApiResponse } from '../helpers/api.js';

const SECRET_A = 'secret-a-0123456789abcdef0123456789abcdef0123456789abcdef01234567';
const SECRET_B = 'secret-b-fedcba9876543210fedcba9876543210fedcba9876543210fedcba98';
const OTHER = 'not-a-configured-secret-0123456789abcdef0123456789abcdef012345678';
const enc = (s: string) => new TextEncoder().encode(s);
const now = () => Math.floor(Date.now() / 1000);
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function sign(payload: JWTPayload, secret = SECRET_A, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt().sign(enc(secret));
}

/** A token whose header names `alg` but whose signature is HMAC-SHA256 with a configured secret (algorithm confusion). */
function hmacWithHeader(header: Record<string, unknown>, payload: JWTPayload, secret = SECRET_A): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function unauthorized(t: Tap, r: ApiResponse, message: string, what: string): void {
  t.equal(r.status, 401, `${what}: 401`);
  t.same(r.json, { error: { code: 'UNAUTHORIZED', message } }, `${what}: envelope`);
  t.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON body`);
}
interface Tap {
  equal(...args: any[]): unknown;
  same(...args: any[]): unknown;
  match(...args: any[]): unknown;
}

const participant = (user_id: string) => ({ user_id, display_name: `Name ${user_id}` });

t.test('JWT mode', async (t) => {
  const srv = await startTestServer({ JWT_AUTH_ENABLED: 'true', JWT_SECRETS: `${SECRET_A}, ${SECRET_B}` });
  t.teardown(() => srv.close());
  const api = client(srv.url);

  // alice is in dA and dAV; victim is in dV and dAV.
  const dA = await createDialog(api, { object_id: 'jwt-a', participants: [participant('alice')] });
  const dV = await createDialog(api, { object_id: 'jwt-v', participants: [participant('victim')] });
  const dAV = await createDialog(api, { object_id: 'jwt-av', participants: [participant('alice'), participant('victim')] });
  const d42 = await createDialog(api, { object_id: 'jwt-42', participants: [participant('42')] });
  const alice = await sign({ sub: 'alice' });

  const listIds = (r: ApiResponse) => (r.json?.data ?? []).map((d: { id: string }) => d.id).sort();

  t.test('missing or non-Bearer Authorization → 401 "Authorization header required"', async (t) => {
    unauthorized(t, await api('GET', '/api/v1/dialogs'), 'Authorization header required', 'no header');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { user: 'alice' }), 'Authorization header required', 'no header, user_id given');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { headers: { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } }),
      'Authorization header required', 'Basic');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { headers: { authorization: `bearer ${alice}` } }), 'Authorization header required', 'lower-case bearer');
    unauthorized(t, await api('POST', `/api/v1/dialogs/${dA}/messages`, { body: { content: 'x' } }), 'Authorization header required', 'send without header');
    t.equal((await srv.sql('SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND message_type = $2', [dA, 'user'])).rows[0].n, 0, 'nothing stored');
  });

  t.test('invalid tokens → 401 "Invalid token"', async (t) => {
    const cases: [string, string][] = [
      ['wrong signature', await sign({ sub: 'alice' }, OTHER)],
      ['alg none', new UnsecuredJWT({ sub: 'alice' }).setIssuedAt().encode()],
      ['alg none with an HMAC signature', hmacWithHeader({ alg: 'none', typ: 'JWT' }, { sub: 'alice' })],
      ['RS256 header (HMAC-signed with the secret)', hmacWithHeader({ alg: 'RS256', typ: 'JWT' }, { sub: 'alice' })],
      ['HS512', await sign({ sub: 'alice' }, SECRET_A, 'HS512')],
      ['HS384', await sign({ sub: 'alice' }, SECRET_A, 'HS384')],
      ['expired beyond the 60 s leeway', await sign({ sub: 'alice', exp: now() - 120 })],
      ['not yet valid (nbf) beyond the leeway', await sign({ sub: 'alice', nbf: now() + 120 })],
      ['missing sub', await sign({ name: 'alice' })],
      ['boolean sub', await sign({ sub: true } as unknown as JWTPayload)],
      ['garbage', 'not.a.jwt'],
      ['payload not an object', hmacWithHeader({ alg: 'HS256', typ: 'JWT' }, '"alice"' as unknown as JWTPayload)],
    ];
    for (const [what, token] of cases) {
      const r = await api('GET', '/api/v1/dialogs', { headers: { authorization: `Bearer ${token}` }, user: 'alice' });
      unauthorized(t, r, 'Invalid token', what);
      const s = await api('POST', `/api/v1/dialogs/${dA}/messages`, { headers: { authorization: `Bearer ${token}` }, body: { content: 'x' } });
      unauthorized(t, s, 'Invalid token', `${what} (send)`);
    }
    t.equal((await srv.sql('SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND message_type = $2', [dA, 'user'])).rows[0].n, 0, 'nothing stored');
  });

  t.test('valid tokens', async (t) => {
    const r = await api('GET', '/api/v1/dialogs', { token: alice });
    t.equal(r.status, 200, 'no user_id needed in JWT mode');
    t.same(listIds(r), [dA, dAV].sort(), "alice's dialogs");

    const rotated = await sign({ sub: 'alice' }, SECRET_B);
    const r2 = await api('GET', '/api/v1/dialogs', { token: rotated });
    t.equal(r2.status, 200, 'signed with the second secret');
    t.same(listIds(r2), [dA, dAV].sort());

    const within = await api('GET', '/api/v1/dialogs', { token: await sign({ sub: 'alice', exp: now() - 20, nbf: now() + 20 }) });
    t.equal(within.status, 200, 'exp/nbf within the leeway accepted');
    const fresh = await api('GET', '/api/v1/dialogs', { token: await sign({ sub: 'alice', exp: now() + 600 }) });
    t.equal(fresh.status, 200, 'unexpired token accepted');

    const aud = await api('GET', '/api/v1/dialogs', { token: await sign({ sub: 'alice', aud: 'some-audience', iss: 'anyone' }) });
    t.equal(aud.status, 200, 'aud present, no audience configured → accepted (visible change)');

    const numeric = await sign({ sub: 42 } as unknown as JWTPayload);
    const n = await api('GET', '/api/v1/dialogs', { token: numeric });
    t.equal(n.status, 200);
    t.same(listIds(n), [d42], 'numeric sub 42 → user "42"');
    const sent = await api('POST', `/api/v1/dialogs/${d42}/messages`, { token: numeric, body: { content: 'from 42' } });
    t.equal(sent.status, 200);
    t.equal(sent.json.data.sender_id, '42');
  });

  t.test('user_id / sender_id in the query cannot spoof the acting user', async (t) => {
    const list = await api('GET', '/api/v1/dialogs', { token: alice, user: 'victim' });
    t.equal(list.status, 200);
    t.same(listIds(list), [dA, dAV].sort(), "alice's dialogs, not victim's");
    t.notOk(listIds(list).includes(dV));

    const sent = await api('POST', `/api/v1/dialogs/${dAV}/messages`, { token: alice, user: 'victim', body: { content: 'who am i' } });
    t.equal(sent.status, 200);
    t.equal(sent.json.data.sender_id, 'alice', 'sender is the token subject');
    const viaSender = await api('POST', `/api/v1/dialogs/${dAV}/messages`, { token: alice, query: { sender_id: 'victim' }, body: { content: 'again' } });
    t.equal(viaSender.status, 200);
    t.equal(viaSender.json.data.sender_id, 'alice', 'sender_id query ignored too');

    const into = await api('POST', `/api/v1/dialogs/${dV}/messages`, { token: alice, user: 'victim', body: { content: 'intrusion' } });
    t.equal(into.status, 403, "cannot write into victim's dialog");
    t.same(into.json, { error: { code: 'FORBIDDEN', message: 'Not a participant. Join the dialog first.' } });
    const msgs = await api('GET', `/api/v1/dialogs/${dV}/messages`, { token: alice, user: 'victim' });
    t.equal(msgs.status, 403, "cannot read victim's messages");

    const empty = await api('GET', '/api/v1/dialogs', { token: alice, query: { user_id: '' } });
    t.equal(empty.status, 200, 'an empty user_id is no error in JWT mode');
  });
});

t.test('JWT mode: custom claim, exp switch, audience, scope claims', async (t) => {
  const srv = await startTestServer({
    JWT_AUTH_ENABLED: '1', JWT_SECRET: SECRET_A, JWT_USER_ID_CLAIM: 'uid', JWT_VALIDATE_EXP: 'false',
    JWT_AUDIENCE: 'mtchat', JWT_SCOPE_CLAIMS: 's0,s1,s2',
  });
  t.teardown(() => srv.close());
  const api = client(srv.url);
  const tok = (p: JWTPayload) => sign({ aud: 'mtchat', ...p });

  const mine = await createDialog(api, { object_id: 'c-mine', participants: [participant('carol')] });

  t.test('JWT_USER_ID_CLAIM', async (t) => {
    const r = await api('GET', '/api/v1/dialogs', { token: await tok({ uid: 'carol', sub: 'mallory' }) });
    t.equal(r.status, 200);
    t.same(r.json.data.map((d: { id: string }) => d.id), [mine], 'user taken from uid, not sub');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { token: await tok({ sub: 'carol' }) }), 'Invalid token', 'uid claim missing');
    const num = await api('POST', `/api/v1/dialogs/${mine}/messages`, { token: await tok({ uid: 'carol' }), body: { content: 'hi' } });
    t.equal(num.json.data.sender_id, 'carol');
  });

  t.test('JWT_VALIDATE_EXP=false accepts expired and not-yet-valid tokens', async (t) => {
    const expired = await api('GET', '/api/v1/dialogs', { token: await tok({ uid: 'carol', exp: now() - 86400 }) });
    t.equal(expired.status, 200, 'expired a day ago');
    t.same(expired.json.data.map((d: { id: string }) => d.id), [mine]);
    const nbf = await api('GET', '/api/v1/dialogs', { token: await tok({ uid: 'carol', nbf: now() + 86400 }) });
    t.equal(nbf.status, 200, 'nbf tomorrow');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { token: await sign({ uid: 'carol', aud: 'mtchat', exp: now() - 86400 }, OTHER) }),
      'Invalid token', 'expired and wrongly signed');
  });

  t.test('JWT_AUDIENCE', async (t) => {
    t.equal((await api('GET', '/api/v1/dialogs', { token: await tok({ uid: 'carol' }) })).status, 200, 'right aud');
    t.equal((await api('GET', '/api/v1/dialogs', { token: await sign({ uid: 'carol', aud: ['x', 'mtchat'] }) })).status, 200, 'right aud in an array');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { token: await sign({ uid: 'carol', aud: 'other' }) }), 'Invalid token', 'wrong aud');
    unauthorized(t, await api('GET', '/api/v1/dialogs', { token: await sign({ uid: 'carol' }) }), 'Invalid token', 'aud missing');
  });

  t.test('JWT_SCOPE_CLAIMS: the token scope wins, X-Scope-Config is ignored', async (t) => {
    const t1 = await createDialog(api, { object_id: 'sc-1', participants: [participant('owner')], access_scopes: [{ scope_level0: ['tenant-1'], scope_level1: ['dep-1'] }] });
    const t2 = await createDialog(api, { object_id: 'sc-2', participants: [participant('owner')], access_scopes: [{ scope_level0: ['tenant-2'] }] });
    const token = await tok({ uid: 'dave', s0: ['tenant-1'], s1: ['dep-1'] });
    const forged = scopeHeader({ scope_level0: ['tenant-2'] });

    const avail = await api('GET', '/api/v1/dialogs', { token, query: { type: 'available' }, headers: { 'x-scope-config': forged } });
    t.equal(avail.status, 200);
    t.same(avail.json.data.map((d: { id: string }) => d.id), [t1], 'available list follows the token scope only');

    const noHeader = await api('GET', '/api/v1/dialogs', { token, query: { type: 'available' } });
    t.equal(noHeader.status, 200, 'type=available needs no header when the scope is signed');
    t.same(noHeader.json.data.map((d: { id: string }) => d.id), [t1]);

    const garbage = await api('GET', '/api/v1/dialogs', { token, query: { type: 'available' }, headers: { 'x-scope-config': '%%%not-base64' } });
    t.equal(garbage.status, 200, 'a malformed header is ignored, not rejected');

    const get2 = await api('GET', `/api/v1/dialogs/${t2}`, { token, headers: { 'x-scope-config': forged } });
    t.equal(get2.status, 403, 'forged header gives no read access');
    t.same(get2.json, { error: { code: 'SCOPE_MISMATCH', message: 'No access to this dialog' } });
    const get1 = await api('GET', `/api/v1/dialogs/${t1}`, { token });
    t.equal(get1.status, 200);
    t.equal(get1.json.data.can_join, true);

    const noScope = await tok({ uid: 'erin' });
    const none = await api('GET', '/api/v1/dialogs', { token: noScope, query: { type: 'available' }, headers: { 'x-scope-config': forged } });
    t.equal(none.status, 200);
    t.same(none.json.data, [], 'a token without scope claims + forged header → nothing available');

    const join = await api('POST', `/api/v1/dialogs/${t2}/join`, {
      token: noScope, headers: { 'x-scope-config': forged }, body: { display_name: 'Erin', company: '' },
    });
    t.equal(join.status, 403, 'forged header cannot join');
    t.same(join.json, { error: { code: 'FORBIDDEN', message: 'No access to join this dialog' } });
    const parts = await srv.sql('SELECT user_id FROM dialog_participants WHERE dialog_id = $1 ORDER BY user_id', [t2]);
    t.same(parts.rows.map((r) => r.user_id), ['owner'], 'nobody joined');

    const ok = await api('POST', `/api/v1/dialogs/${t1}/join`, { token, body: { display_name: 'Dave', company: 'D Co' } });
    t.equal(ok.status, 200, 'the signed scope allows joining without a header');
    t.same(ok.json, { status: 'joined', dialog_id: t1 });

    unauthorized(t, await api('GET', '/api/v1/dialogs', { token: await tok({ uid: 'dave', s0: 'tenant-1' }) }), 'Invalid token', 'scope claim not an array');
  });
});

t.test('legacy mode (JWT off)', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api: Api = client(srv.url);
  const d = await createDialog(api, { object_id: 'legacy', participants: [participant('a b'), participant('c+d'), participant('sam')] });

  t.test('missing / empty user_id', async (t) => {
    const missing = await api('GET', '/api/v1/dialogs');
    t.equal(missing.status, 400);
    t.same(missing.json, { error: { code: 'BAD_REQUEST', message: 'user_id query parameter required' } });
    const empty = await api('GET', '/api/v1/dialogs', { query: { user_id: '' } });
    t.equal(empty.status, 400);
    t.same(empty.json, { error: { code: 'BAD_REQUEST', message: 'user_id cannot be empty' } });
    const bare = await fetch(`${srv.url}/api/v1/dialogs?user_id`);
    t.equal(bare.status, 400, 'a pair without = is skipped');
    t.same(await bare.json(), { error: { code: 'BAD_REQUEST', message: 'user_id query parameter required' } });
    const send = await api('POST', `/api/v1/dialogs/${d}/messages`, { body: { content: 'x' } });
    t.equal(send.status, 400);
    t.same(send.json, { error: { code: 'BAD_REQUEST', message: 'user_id query parameter required' } });
    const bearer = await api('GET', '/api/v1/dialogs', { token: await sign({ sub: 'sam' }) });
    t.equal(bearer.status, 400, 'a token is not an identity in legacy mode');
    t.same(bearer.json, { error: { code: 'BAD_REQUEST', message: 'user_id query parameter required' } });
  });

  t.test('sender_id is accepted; the first matching pair wins', async (t) => {
    const r = await api('POST', `/api/v1/dialogs/${d}/messages`, { query: { sender_id: 'sam' }, body: { content: 'via sender_id' } });
    t.equal(r.status, 200);
    t.equal(r.json.data.sender_id, 'sam');
    const first = await fetch(`${srv.url}/api/v1/dialogs/${d}/messages?sender_id=sam&user_id=a+b`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'first wins' }),
    });
    t.equal(first.status, 200);
    t.equal((await first.json()).data.sender_id, 'sam');
  });

  t.test('query is form-decoded: + is a space, %2B a plus', async (t) => {
    const r = await api('POST', `/api/v1/dialogs/${d}/messages`, { user: 'a b', body: { content: 'spaced' } });
    t.equal(r.status, 200);
    t.equal(r.json.data.sender_id, 'a b');
    const raw = await fetch(`${srv.url}/api/v1/dialogs/${d}/messages?user_id=a+b`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'raw plus' }),
    });
    t.equal(raw.status, 200);
    t.equal((await raw.json()).data.sender_id, 'a b', 'literal + in the URL → space');
    const plus = await api('POST', `/api/v1/dialogs/${d}/messages`, { user: 'c+d', body: { content: 'plus' } });
    t.equal(plus.status, 200);
    t.equal(plus.json.data.sender_id, 'c+d', '%2B → +');
    const list = await api('GET', '/api/v1/dialogs', { user: 'a b' });
    t.same(list.json.data.map((x: { id: string }) => x.id), [d]);
  });
});
