import t from 'tap';
import { createHmac } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { JwtVerifier, type JwtConfig } from '../../src/edge/auth/jwt.js';
import { AppError } from '../../src/domain/errors.js';

const SECRET = 'test-secret-0123456789abcdef-0123456789';
const OTHER = 'another-secret-abcdefghijklmnopqrstuvwxyz';
const enc = new TextEncoder();
const now = () => Math.floor(Date.now() / 1000);

const base: JwtConfig = {
  jwtSecrets: [SECRET],
  jwtUserIdClaim: 'sub',
  jwtValidateExp: true,
  jwtLeewaySecs: 60,
  jwtAudience: null,
  jwtIssuer: null,
  jwtScopeClaims: null,
};
const verifier = (over: Partial<JwtConfig> = {}) => new JwtVerifier({ ...base, ...over });

async function sign(payload: JWTPayload, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(enc.encode(secret));
}
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A token with an arbitrary header, HMAC-SHA256-signed over header.payload with `secret`. */
function craft(header: unknown, payload: unknown, secret = SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

type Asserts = Pick<typeof t, 'ok' | 'equal' | 'fail' | 'notOk'>;

async function rejects(t: Asserts, p: Promise<unknown>, what: string, token?: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected rejection`);
  } catch (e) {
    t.ok(e instanceof AppError, `${what}: AppError`);
    const err = e as AppError;
    t.equal(err.status, 401, `${what}: status`);
    t.equal(err.code, 'UNAUTHORIZED', `${what}: code`);
    t.equal(err.message, 'Invalid token', `${what}: message`);
    if (token) t.notOk(err.message.includes(token), `${what}: token not echoed`);
  }
}

t.test('user id claim', async (t) => {
  const v = verifier();
  t.same(await v.verify(await sign({ sub: 'alice' })), { userId: 'alice', scope: null, expiresAt: null }, 'valid sub');
  t.equal((await v.verify(await sign({ sub: 42 } as unknown as JWTPayload))).userId, '42', 'numeric sub → decimal text');
  t.equal((await v.verify(craft({ alg: 'HS256' }, { sub: 'bob' }))).userId, 'bob', 'no typ header is fine');

  const custom = verifier({ jwtUserIdClaim: 'user_id' });
  t.equal((await custom.verify(await sign({ user_id: 'u-7', sub: 'ignored' }))).userId, 'u-7', 'custom claim name');
  await rejects(t, custom.verify(await sign({ sub: 'alice' })), 'custom claim missing');

  await rejects(t, v.verify(await sign({ name: 'x' })), 'missing claim');
  await rejects(t, v.verify(await sign({ sub: '' })), 'empty string claim');
  await rejects(t, v.verify(await sign({ sub: { id: 'a' } } as unknown as JWTPayload)), 'object claim');
  await rejects(t, v.verify(await sign({ sub: true } as unknown as JWTPayload)), 'boolean claim');
  await rejects(t, v.verify(await sign({ sub: null } as unknown as JWTPayload)), 'null claim');
  await rejects(t, v.verify(await sign({ sub: ['a'] } as unknown as JWTPayload)), 'array claim');
  await rejects(t, verifier({ jwtUserIdClaim: 'toString' }).verify(await sign({ sub: 'a' })), 'inherited property is not a claim');
});

t.test('payload must be an object', async (t) => {
  const v = verifier();
  await rejects(t, v.verify(craft({ alg: 'HS256' }, ['sub'])), 'array payload');
  await rejects(t, v.verify(craft({ alg: 'HS256' }, 'alice')), 'string payload');
  await rejects(t, v.verify(''), 'empty token');
  await rejects(t, v.verify('not.a.jwt'), 'garbage');
  await rejects(t, v.verify('abc'), 'no dots');
});

t.test('secrets', async (t) => {
  await rejects(t, verifier().verify(await sign({ sub: 'a' }, OTHER)), 'wrong secret');
  const rotated = verifier({ jwtSecrets: [OTHER, SECRET] });
  t.equal((await rotated.verify(await sign({ sub: 'a' }, SECRET))).userId, 'a', 'second of two rotated secrets');
  t.equal((await rotated.verify(await sign({ sub: 'b' }, OTHER))).userId, 'b', 'first of two rotated secrets');
  await rejects(t, rotated.verify(await sign({ sub: 'a' }, 'third-secret-xxxxxxxxxxxxxxxxxxxxxxxx')), 'neither secret');
  await rejects(t, verifier({ jwtSecrets: [] }).verify(await sign({ sub: 'a' })), 'no secrets configured');
  const utf8 = 'sécret-ünïcode-0123456789-0123456789';
  t.equal((await verifier({ jwtSecrets: [utf8] }).verify(await sign({ sub: 'u' }, utf8))).userId, 'u', 'secret used as UTF-8 bytes');

  // A correctly signed but expired token is final: no retry with the next secret changes that.
  const expired = await sign({ sub: 'a', exp: now() - 3600 }, SECRET);
  await rejects(t, rotated.verify(expired), 'expired with the second secret');
});

t.test('algorithms', async (t) => {
  const v = verifier();
  const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'a' })}.`;
  await rejects(t, v.verify(none), 'alg none', none);
  const noneSigned = craft({ alg: 'none' }, { sub: 'a' });
  await rejects(t, v.verify(noneSigned), 'alg none with an HMAC signature');
  const rs = craft({ alg: 'RS256', typ: 'JWT' }, { sub: 'a' });
  await rejects(t, v.verify(rs), 'RS256 header with HMAC bytes', rs);
  await rejects(t, v.verify(craft({ typ: 'JWT' }, { sub: 'a' })), 'no alg');
  await rejects(t, v.verify(await sign({ sub: 'a' }, SECRET, 'HS512')), 'HS512 token');
  await rejects(t, v.verify(await sign({ sub: 'a' }, SECRET, 'HS384')), 'HS384 token');
  await rejects(t, v.verify(craft({ alg: 'HS256', crit: ['b64'], b64: false }, { sub: 'a' })), 'unencoded payload');
  await rejects(t, v.verify(craft({ alg: 'HS256', crit: ['x-custom'], 'x-custom': 1 }, { sub: 'a' })), 'unknown crit');
});

t.test('tampering', async (t) => {
  const v = verifier();
  const good = await sign({ sub: 'alice' });
  const [h, , s] = good.split('.');
  const tampered = `${h}.${b64url({ sub: 'admin' })}.${s}`;
  await rejects(t, v.verify(tampered), 'tampered payload', tampered);
  const badSig = `${good.slice(0, -4)}${good.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  await rejects(t, v.verify(badSig), 'tampered signature');
  await rejects(t, v.verify(`${good}.extra`), 'four parts');
});

t.test('exp / nbf', async (t) => {
  const on = verifier({ jwtLeewaySecs: 60 });
  const off = verifier({ jwtValidateExp: false, jwtLeewaySecs: 60 });

  const expired = await sign({ sub: 'a', exp: now() - 3600 });
  await rejects(t, on.verify(expired), 'expired beyond leeway');
  t.same(await off.verify(expired), { userId: 'a', scope: null, expiresAt: null }, 'expired accepted when validation off');

  const justExpired = await sign({ sub: 'a', exp: now() - 30 });
  t.equal((await on.verify(justExpired)).userId, 'a', 'expired within leeway accepted');
  await rejects(t, verifier({ jwtLeewaySecs: 0 }).verify(await sign({ sub: 'a', exp: now() - 5 })), 'expired, zero leeway');

  const future = await sign({ sub: 'a', nbf: now() + 3600 });
  await rejects(t, on.verify(future), 'nbf in the future');
  t.equal((await off.verify(future)).userId, 'a', 'nbf in the future accepted when validation off');
  t.equal((await on.verify(await sign({ sub: 'a', nbf: now() + 30 }))).userId, 'a', 'nbf within leeway accepted');

  const both = await sign({ sub: 'a', nbf: now() + 3600, exp: now() - 3600 });
  t.equal((await off.verify(both)).userId, 'a', 'nbf future and expired, validation off');

  // Malformed time claims stay invalid either way.
  await rejects(t, on.verify(await sign({ sub: 'a', exp: 'tomorrow' } as unknown as JWTPayload)), 'string exp (on)');
  await rejects(t, off.verify(await sign({ sub: 'a', exp: 'tomorrow' } as unknown as JWTPayload)), 'string exp (off)');
  await rejects(t, off.verify(await sign({ sub: 'a', nbf: now() + 3600, exp: 'x' } as unknown as JWTPayload)), 'future nbf + string exp (off)');
  await rejects(t, off.verify(await sign({ sub: 'a', nbf: 'x' } as unknown as JWTPayload)), 'string nbf (off)');

  // Validation off must not skip the other checks.
  const offAud = verifier({ jwtValidateExp: false, jwtAudience: 'chat', jwtIssuer: 'platform' });
  await rejects(t, offAud.verify(await sign({ sub: 'a', exp: now() - 3600, aud: 'other', iss: 'platform' })), 'off: expired + wrong aud');
  await rejects(t, offAud.verify(await sign({ sub: 'a', nbf: now() + 3600, aud: 'chat', iss: 'evil' })), 'off: future nbf + wrong iss');
  await rejects(t, offAud.verify(await sign({ sub: 'a', exp: now() - 3600, aud: 'chat', iss: 'platform' }, OTHER)), 'off: expired + wrong secret');
  await rejects(t, offAud.verify(await sign({ exp: now() - 3600, aud: 'chat', iss: 'platform' })), 'off: expired + missing user claim');
  t.equal((await offAud.verify(await sign({ sub: 'a', exp: now() - 3600, aud: 'chat', iss: 'platform' }))).userId, 'a', 'off: expired, aud+iss fine');
});

t.test('audience', async (t) => {
  t.equal((await verifier().verify(await sign({ sub: 'a', aud: 'anything' }))).userId, 'a', 'aud present without configured audience');
  const v = verifier({ jwtAudience: 'mtchat' });
  t.equal((await v.verify(await sign({ sub: 'a', aud: 'mtchat' }))).userId, 'a', 'matching audience');
  t.equal((await v.verify(await sign({ sub: 'a', aud: ['other', 'mtchat'] }))).userId, 'a', 'matching audience in array');
  await rejects(t, v.verify(await sign({ sub: 'a', aud: 'other' })), 'wrong audience');
  await rejects(t, v.verify(await sign({ sub: 'a', aud: ['x', 'y'] })), 'wrong audience array');
  await rejects(t, v.verify(await sign({ sub: 'a' })), 'missing audience');
});

t.test('issuer', async (t) => {
  t.equal((await verifier().verify(await sign({ sub: 'a', iss: 'whoever' }))).userId, 'a', 'iss ignored when not configured');
  const v = verifier({ jwtIssuer: 'https://platform.example' });
  t.equal((await v.verify(await sign({ sub: 'a', iss: 'https://platform.example' }))).userId, 'a', 'matching issuer');
  await rejects(t, v.verify(await sign({ sub: 'a', iss: 'https://evil.example' })), 'wrong issuer');
  await rejects(t, v.verify(await sign({ sub: 'a' })), 'missing issuer');
});

t.test('scope claims', async (t) => {
  const v = verifier({ jwtScopeClaims: ['tenants', 'departments', 'roles'] });
  t.same(
    (await v.verify(await sign({ sub: 'a', tenants: ['t1'], departments: ['d1', 'd2'], roles: [] }))).scope,
    { scope_level0: ['t1'], scope_level1: ['d1', 'd2'], scope_level2: [] },
    'all three present',
  );
  t.same(
    (await v.verify(await sign({ sub: 'a', tenants: ['t1'] }))).scope,
    { scope_level0: ['t1'], scope_level1: [], scope_level2: [] },
    'absent claims → []',
  );
  t.same((await v.verify(await sign({ sub: 'a' }))).scope, { scope_level0: [], scope_level1: [], scope_level2: [] }, 'all absent');
  await rejects(t, v.verify(await sign({ sub: 'a', tenants: 't1' })), 'string instead of array');
  await rejects(t, v.verify(await sign({ sub: 'a', departments: ['d', 1] })), 'array holding a number');
  await rejects(t, v.verify(await sign({ sub: 'a', roles: null } as unknown as JWTPayload)), 'null claim');
  await rejects(t, v.verify(await sign({ sub: 'a', roles: { a: 1 } })), 'object claim');
  t.equal((await verifier().verify(await sign({ sub: 'a', tenants: 'whatever' }))).scope, null, 'not configured → null, claims ignored');
});

t.test('expiresAt', async (t) => {
  const exp = now() + 600;
  t.equal((await verifier().verify(await sign({ sub: 'a', exp }))).expiresAt, exp * 1000, 'epoch ms from exp');
  t.equal((await verifier().verify(await sign({ sub: 'a' }))).expiresAt, null, 'no exp → null');
  t.equal((await verifier({ jwtValidateExp: false }).verify(await sign({ sub: 'a', exp }))).expiresAt, null, 'validation off → null');
});
