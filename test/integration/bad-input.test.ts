// Malformed and out-of-contract requests over real HTTP: each is refused with the exact status
// and code (spec README "Global wire conventions", chat-api.md "Processing order" / "Errors",
// management-api.md "Request parsing failures"), and the service keeps answering afterwards.
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog, type ApiOptions } from '../helpers/api.js';

const MiB = 1024 * 1024;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const x = (n: number) => 'x'.repeat(n);

interface Res {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}
interface Row {
  name: string;
  method?: string;
  path?: string;
  opts?: ApiOptions;
  /** For requests the api helper cannot make (streamed bodies). */
  send?: () => Promise<Res>;
  status: number;
  code: string;
  /** Exact message where the spec fixes it. */
  message?: string;
}

t.test('bad input is refused with the exact status and code, and the service stays up', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api = client(srv.url);
  const U = 'bi-user';
  const D = await createDialog(api, { object_id: 'bad-input', participants: [{ user_id: U, display_name: 'Bad Input' }] });
  const sent = await api('POST', `/api/v1/dialogs/${D}/messages`, { user: U, body: { content: 'hello' } });
  t.equal(sent.status, 200);
  const M = sent.json.data.id as string;
  // Joinable by scope, so that join reaches field validation.
  const J = await createDialog(api, { object_id: 'bad-input-join', participants: [], access_scopes: [{ scope_level0: ['bi-tenant'] }] });

  const msgs = `/api/v1/dialogs/${D}/messages`;
  const mgmt = '/api/v1/management/dialogs';
  const json = { 'content-type': 'application/json' };
  const person = { user_id: 'p1', display_name: 'P One' };
  const dialogWith = (over: Record<string, unknown>) => ({ object_id: 'o', object_type: 't', participants: [person], ...over });
  const attachment = (over: Record<string, unknown>) => ({
    s3_key: `dialogs/${D}/0195a0d1-04b0-7d01-8a2b-1c2d3e4f5a6b.pdf`, filename: 'a.pdf', content_type: 'application/pdf', size: 10, ...over,
  });
  const big = Buffer.alloc(2 * MiB + 1024, 0x61);
  big.write('{"content":"', 0);
  big.write('"}', big.length - 2);

  async function streamed(totalBytes: number): Promise<Res> {
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sentBytes = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sentBytes >= totalBytes) return controller.close();
        sentBytes += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const r = await fetch(`${srv.url}${msgs}?user_id=${U}`, {
      method: 'POST', headers: json, body: stream, duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, json: text ? JSON.parse(text) : undefined };
  }

  const rows: Row[] = [
    // body parsing
    { name: 'malformed JSON', method: 'POST', path: msgs, opts: { user: U, rawBody: '{"content": "x",', headers: json }, status: 400, code: 'BAD_REQUEST' },
    { name: 'malformed JSON (management)', method: 'POST', path: mgmt, opts: { rawBody: '{not json}', headers: json }, status: 400, code: 'BAD_REQUEST' },
    { name: 'no Content-Type on a body endpoint', method: 'POST', path: msgs, opts: { user: U, rawBody: Buffer.from('{"content":"x"}') }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'text/plain content type', method: 'POST', path: msgs, opts: { user: U, rawBody: '{"content":"x"}', headers: { 'content-type': 'text/plain' } }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'JSON body is an array', method: 'POST', path: msgs, opts: { user: U, body: [{ content: 'x' }] }, status: 422, code: 'INVALID_INPUT' },
    { name: 'JSON body is null', method: 'POST', path: msgs, opts: { user: U, rawBody: 'null', headers: json }, status: 422, code: 'INVALID_INPUT' },
    { name: 'JSON body is null (management)', method: 'POST', path: mgmt, opts: { rawBody: 'null', headers: json }, status: 422, code: 'INVALID_INPUT' },
    // wrong types
    { name: 'content: 5', method: 'POST', path: msgs, opts: { user: U, body: { content: 5 } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'participants: "x"', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: 'x' }) }, status: 422, code: 'INVALID_INPUT' },
    { name: 'enabled: "yes"', method: 'POST', path: `/api/v1/dialogs/${D}/notifications`, opts: { user: U, body: { enabled: 'yes' } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'attachment size: "1"', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', attachments: [attachment({ size: '1' })] } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'attachment size: 1.5', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', attachments: [attachment({ size: 1.5 })] } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'attachments: null', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', attachments: null } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'reply_to not a UUID', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', reply_to: 'nope' } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'last_read_message_id not a UUID', method: 'POST', path: `/api/v1/dialogs/${D}/read`, opts: { user: U, body: { last_read_message_id: 12 } }, status: 422, code: 'INVALID_INPUT' },
    // missing required fields
    { name: 'send without content', method: 'POST', path: msgs, opts: { user: U, body: {} }, status: 422, code: 'INVALID_INPUT' },
    { name: 'create dialog without participants', method: 'POST', path: mgmt, opts: { body: { object_id: 'o', object_type: 't' } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'create dialog without object_id', method: 'POST', path: mgmt, opts: { body: { object_type: 't', participants: [] } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'participant without display_name', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ user_id: 'p' }] }) }, status: 422, code: 'INVALID_INPUT' },
    { name: 'join without company', method: 'POST', path: `/api/v1/dialogs/${D}/join`, opts: { user: 'joiner', scope: {}, body: { display_name: 'J' } }, status: 422, code: 'INVALID_INPUT' },
    { name: 'notifications without enabled', method: 'POST', path: `/api/v1/dialogs/${D}/notifications`, opts: { user: U, body: {} }, status: 422, code: 'INVALID_INPUT' },
    // over-long fields (UTF-8 bytes)
    { name: 'title 501', method: 'POST', path: mgmt, opts: { body: dialogWith({ title: x(501) }) }, status: 400, code: 'INVALID_INPUT', message: 'title exceeds maximum length of 500 characters' },
    { name: 'title 500 bytes of 2-byte chars + 1', method: 'POST', path: mgmt, opts: { body: dialogWith({ title: `${'é'.repeat(250)}x` }) }, status: 400, code: 'INVALID_INPUT', message: 'title exceeds maximum length of 500 characters' },
    { name: 'display_name 201', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, display_name: x(201) }] }) }, status: 400, code: 'INVALID_INPUT', message: 'display_name exceeds maximum length of 200 characters' },
    { name: 'company 201', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, company: x(201) }] }) }, status: 400, code: 'INVALID_INPUT', message: 'company exceeds maximum length of 200 characters' },
    { name: 'email 255', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, email: x(255) }] }) }, status: 400, code: 'INVALID_INPUT', message: 'email exceeds maximum length of 254 characters' },
    { name: 'phone 51', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, phone: x(51) }] }) }, status: 400, code: 'INVALID_INPUT', message: 'phone exceeds maximum length of 50 characters' },
    { name: 'display_name blank', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, display_name: '   ' }] }) }, status: 400, code: 'INVALID_INPUT', message: 'display_name is required' },
    { name: 'join display_name 201', method: 'POST', path: `/api/v1/dialogs/${J}/join`, opts: { user: 'joiner', scope: { scope_level0: ['bi-tenant'] }, body: { display_name: x(201), company: '' } }, status: 400, code: 'INVALID_INPUT', message: 'display_name exceeds maximum length of 200 characters' },
    { name: 'content 50001', method: 'POST', path: msgs, opts: { user: U, body: { content: x(50001) } }, status: 400, code: 'INVALID_INPUT', message: 'Message content exceeds maximum length of 50000 characters' },
    { name: 'edit content 50001', method: 'PUT', path: `${msgs}/${M}`, opts: { user: U, body: { content: x(50001) } }, status: 400, code: 'INVALID_INPUT', message: 'Message content exceeds maximum length of 50000 characters' },
    { name: 'object_id 256', method: 'POST', path: mgmt, opts: { body: dialogWith({ object_id: x(256) }) }, status: 400, code: 'INVALID_INPUT', message: 'object_id exceeds maximum length of 255 characters' },
    { name: 'object_type 101', method: 'POST', path: mgmt, opts: { body: dialogWith({ object_type: x(101) }) }, status: 400, code: 'INVALID_INPUT', message: 'object_type exceeds maximum length of 100 characters' },
    { name: 'user_id 256', method: 'POST', path: mgmt, opts: { body: dialogWith({ participants: [{ ...person, user_id: x(256) }] }) }, status: 400, code: 'INVALID_INPUT', message: 'user_id exceeds maximum length of 255 characters' },
    { name: 'user_id 256 (add participant)', method: 'POST', path: `${mgmt}/${D}/participants`, opts: { body: { ...person, user_id: x(256) } }, status: 400, code: 'INVALID_INPUT', message: 'user_id exceeds maximum length of 255 characters' },
    { name: 'filename 256', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', attachments: [attachment({ filename: x(256) })] } }, status: 400, code: 'INVALID_INPUT', message: 'filename exceeds maximum length of 255 characters' },
    // A 101-byte content_type can never be on the MIME allowlist, which the spec checks first.
    { name: 'content_type 101', method: 'POST', path: msgs, opts: { user: U, body: { content: 'x', attachments: [attachment({ content_type: x(101) })] } }, status: 400, code: 'BAD_REQUEST', message: `File type '${x(101)}' is not allowed` },
    { name: 'scope value 256', method: 'POST', path: mgmt, opts: { body: dialogWith({ access_scopes: [{ scope_level1: [x(256)] }] }) }, status: 400, code: 'INVALID_INPUT', message: 'scope_level1 values exceed maximum length of 255 characters' },
    { name: 'scope value 256 (replace scopes)', method: 'PUT', path: `${mgmt}/${D}/access-scopes`, opts: { body: { access_scopes: [{ scope_level0: [x(256)] }] } }, status: 400, code: 'INVALID_INPUT', message: 'scope_level0 values exceed maximum length of 255 characters' },
    // oversized bodies
    { name: 'body > 2 MiB with Content-Length', method: 'POST', path: msgs, opts: { user: U, rawBody: big, headers: json }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
    { name: 'body > 2 MiB chunked', send: () => streamed(3 * MiB), status: 413, code: 'PAYLOAD_TOO_LARGE' },
    // path and query parameters
    { name: 'dialog id not a UUID', method: 'GET', path: '/api/v1/dialogs/not-a-uuid', opts: { user: U }, status: 400, code: 'BAD_REQUEST' },
    { name: 'dialog id not a UUID (send)', method: 'POST', path: '/api/v1/dialogs/123/messages', opts: { user: U, body: { content: 'x' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'message id not a UUID', method: 'GET', path: `${msgs}/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz`, opts: { user: U }, status: 400, code: 'BAD_REQUEST' },
    { name: 'management id not a UUID', method: 'GET', path: `${mgmt}/nope`, status: 400, code: 'BAD_REQUEST' },
    { name: 'before cursor not a UUID', method: 'GET', path: msgs, opts: { user: U, query: { before: 'abc' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'after cursor not a UUID', method: 'GET', path: msgs, opts: { user: U, query: { after: `${M}x` } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'around cursor not a UUID', method: 'GET', path: msgs, opts: { user: U, query: { around: '1' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'negative limit (dialogs)', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, query: { limit: -1 } }, status: 400, code: 'INVALID_INPUT' },
    { name: 'negative limit (messages)', method: 'GET', path: msgs, opts: { user: U, query: { limit: -5 } }, status: 400, code: 'INVALID_INPUT' },
    { name: 'limit=abc', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, query: { limit: 'abc' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'limit=abc (messages)', method: 'GET', path: msgs, opts: { user: U, query: { limit: 'abc' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'archived=1', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, query: { archived: '1' } }, status: 400, code: 'BAD_REQUEST' },
    { name: 'unknown type', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, query: { type: 'all' } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid type parameter' },
    { name: 'unknown type (by object list)', method: 'GET', path: '/api/v1/dialogs/by-object/t/o/list', opts: { user: U, query: { type: 'mine' } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid type parameter' },
    // X-Scope-Config
    { name: 'scope header not base64', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, headers: { 'x-scope-config': 'not-base64!' } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid base64' },
    { name: 'scope header unpadded base64', method: 'GET', path: `/api/v1/dialogs/${D}`, opts: { user: U, headers: { 'x-scope-config': b64('{}').replace(/=+$/, '') } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid base64' },
    { name: 'scope header base64 of non-JSON', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, headers: { 'x-scope-config': b64('tenant=1') } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid JSON' },
    { name: 'scope header non-string element', method: 'GET', path: '/api/v1/dialogs', opts: { user: U, headers: { 'x-scope-config': b64('{"scope_level0":["a",1]}') } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid JSON' },
    { name: 'scope header null level', method: 'GET', path: `/api/v1/dialogs/${D}/participants`, opts: { user: U, headers: { 'x-scope-config': b64('{"scope_level1":null}') } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid JSON' },
    { name: 'scope header JSON array', method: 'POST', path: `/api/v1/dialogs/${D}/join`, opts: { user: 'joiner', headers: { 'x-scope-config': b64('[]') }, body: { display_name: 'J', company: '' } }, status: 400, code: 'BAD_REQUEST', message: 'Invalid X-Scope-Config: not valid JSON' },
    { name: 'join without scope header', method: 'POST', path: `/api/v1/dialogs/${D}/join`, opts: { user: 'joiner', body: { display_name: 'J', company: '' } }, status: 400, code: 'BAD_REQUEST', message: 'X-Scope-Config header required' },
    // routing
    { name: 'unknown path', method: 'GET', path: '/api/v1/nothing-here', status: 404, code: 'NOT_FOUND' },
    { name: 'unknown path outside /api', method: 'POST', path: '/nope', opts: { body: {} }, status: 404, code: 'NOT_FOUND' },
    { name: 'wrong method on an existing path', method: 'PATCH', path: `/api/v1/dialogs/${D}`, opts: { user: U }, status: 405, code: 'METHOD_NOT_ALLOWED' },
    { name: 'wrong method (DELETE on list)', method: 'DELETE', path: '/api/v1/dialogs', opts: { user: U }, status: 405, code: 'METHOD_NOT_ALLOWED' },
    { name: 'wrong method (GET on join)', method: 'GET', path: `/api/v1/dialogs/${D}/join`, opts: { user: U }, status: 405, code: 'METHOD_NOT_ALLOWED' },
  ];

  for (const row of rows) {
    const r: Res = row.send ? await row.send() : await api(row.method!, row.path!, row.opts);
    t.equal(r.status, row.status, `${row.name}: status ${row.status}`);
    t.ok(r.json && typeof r.json === 'object' && r.json.error, `${row.name}: error envelope`);
    t.same(Object.keys(r.json ?? {}), ['error'], `${row.name}: only the error key`);
    t.same(Object.keys(r.json?.error ?? {}).sort(), ['code', 'message'], `${row.name}: {code, message}`);
    t.equal(r.json?.error?.code, row.code, `${row.name}: code ${row.code}`);
    if (row.message !== undefined) t.equal(r.json?.error?.message, row.message, `${row.name}: message`);
    else t.match(r.json?.error?.message, /\S/, `${row.name}: some message`);
    t.match(r.headers.get('content-type') ?? '', /^application\/json/, `${row.name}: JSON content type`);
    t.match(r.headers.get('x-request-id') ?? '', /\S/, `${row.name}: X-Request-Id`);
    const health = await api('GET', '/health');
    t.equal(health.status, 200, `${row.name}: /health still answers 200`);
  }

  // Nothing was stored by any refused request.
  const stored = await srv.sql("SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND message_type = 'user'", [D]);
  t.equal(stored.rows[0].n, 1, 'only the setup message exists');
  const dialogs = await srv.sql('SELECT count(*)::int AS n FROM dialogs');
  t.equal(dialogs.rows[0].n, 2, 'no dialog was created');
  const joined = await srv.sql('SELECT count(*)::int AS n FROM dialog_participants WHERE dialog_id = $1', [J]);
  t.equal(joined.rows[0].n, 0, 'nobody joined');
});

t.test('X-Request-Id: generated when absent, echoed when supplied', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api = client(srv.url);

  const a = await api('GET', '/api/v1/dialogs');
  const b = await api('GET', '/api/v1/dialogs');
  t.equal(a.status, 400);
  t.match(a.headers.get('x-request-id'), /\S/);
  t.not(a.headers.get('x-request-id'), b.headers.get('x-request-id'), 'a fresh id per request');

  const id = 'client-req-42';
  for (const [method, path, opts, status] of [
    ['GET', '/api/v1/dialogs', {}, 400],
    ['GET', '/api/v1/dialogs', { user: 'u' }, 200],
    ['POST', '/api/v1/management/dialogs', { rawBody: '{', headers: { 'content-type': 'application/json' } }, 400],
    ['GET', '/api/v1/unknown', {}, 404],
    ['PUT', '/api/v1/dialogs', { user: 'u' }, 405],
  ] as [string, string, ApiOptions, number][]) {
    const r = await api(method, path, { ...opts, headers: { ...opts.headers, 'x-request-id': id } });
    t.equal(r.status, status, `${method} ${path}: ${status}`);
    t.equal(r.headers.get('x-request-id'), id, `${method} ${path}: client id echoed`);
  }
  const bad = await api('GET', '/api/v1/dialogs', { headers: { 'x-request-id': 'has space' } });
  t.not(bad.headers.get('x-request-id'), 'has space', 'an unsafe id is replaced');
  t.match(bad.headers.get('x-request-id'), /^[\x21-\x7e]+$/);
});
