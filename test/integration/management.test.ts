// Management API (spec: management-api.md) over real HTTP against a real database.
import t from 'tap';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { client, createDialog, type ApiResponse } from '../helpers/api.js';

const M = '/api/v1/management/dialogs';
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UNKNOWN_ID = '0195a0c2-7d3e-7b41-9f2a-3c5d6e7f8a90';

const srv: TestServer = await startTestServer();
t.teardown(() => srv.close());
const api = client(srv.url);

type T = Parameters<Parameters<typeof t.test>[0]>[0];

function isError(t: T, r: ApiResponse, status: number, code: string, message?: string): void {
  t.equal(r.status, status, `status ${status} (${r.text})`);
  t.equal(r.headers.get('content-type'), 'application/json');
  t.strictSame(Object.keys(r.json ?? {}), ['error']);
  t.equal(r.json?.error?.code, code);
  if (message !== undefined) t.equal(r.json?.error?.message, message);
  else t.type(r.json?.error?.message, 'string');
}

const eventsOf = (dialogId: string) => srv.events.filter((e) => e.dialogId === dialogId);
const create = (body: Record<string, unknown>) => api('POST', M, { body });
const base = (objectId: string, extra: Record<string, unknown> = {}) => ({ object_id: objectId, object_type: 'tender', participants: [], ...extra });
const p = (user_id: string, extra: Record<string, unknown> = {}) => ({ user_id, display_name: `Name ${user_id}`, ...extra });
const count = async (table: string, dialogId: string) =>
  Number((await srv.sql(`SELECT count(*)::int AS n FROM ${table} WHERE dialog_id = $1`, [dialogId])).rows[0].n);

t.test('create dialog: exact shape, participants, system message, events', async (t) => {
  const before = srv.events.length;
  const r = await create({
    object_id: 'tender-4411', object_type: 'tender', title: 'Tender 4411 — carriers',
    object_url: 'https://tms.example.com/tenders/4411',
    participants: [
      { user_id: 'cr-anna', display_name: 'Anna K.', company: 'Northline', email: 'anna@northline.example', phone: '+7 900 000' },
      { user_id: 'cr-oleg', display_name: 'Oleg' },
    ],
    access_scopes: [{ scope_level0: ['org-22', 'org-31'], scope_level2: ['tenders.chat'] }],
    meta: { priority: 'high', tags: ['a', 1] },
  });
  t.equal(r.status, 200);
  t.equal(r.headers.get('content-type'), 'application/json');
  t.strictSame(Object.keys(r.json), ['data']);
  const d = r.json.data;
  t.match(d.id, UUID7);
  t.match(d.created_at, TIME);
  t.strictSame(d, {
    id: d.id, object_id: 'tender-4411', object_type: 'tender', title: 'Tender 4411 — carriers',
    object_url: 'https://tms.example.com/tenders/4411', created_by: 'cr-anna', created_at: d.created_at,
    meta: { priority: 'high', tags: ['a', 1] },
  });

  const parts = await srv.sql(
    `SELECT user_id, joined_as, display_name, company, email, phone, unread_count, last_read_message_id, notifications_enabled,
            is_archived, is_pinned FROM dialog_participants WHERE dialog_id = $1 ORDER BY user_id`, [d.id]);
  t.strictSame(parts.rows, [
    { user_id: 'cr-anna', joined_as: 'participant', display_name: 'Anna K.', company: 'Northline', email: 'anna@northline.example',
      phone: '+7 900 000', unread_count: 0, last_read_message_id: null, notifications_enabled: true, is_archived: false, is_pinned: false },
    { user_id: 'cr-oleg', joined_as: 'participant', display_name: 'Oleg', company: null, email: null, phone: null,
      unread_count: 0, last_read_message_id: null, notifications_enabled: true, is_archived: false, is_pinned: false },
  ]);

  const msgs = await srv.sql('SELECT message_type, sender_id, content FROM messages WHERE dialog_id = $1', [d.id]);
  t.strictSame(msgs.rows, [{
    message_type: 'system', sender_id: null,
    content: '{"event":"chat_created","participants":[{"company":"Northline","name":"Anna K."},{"name":"Oleg"}]}',
  }]);

  // The same message is what a participant sees through the Chat API.
  const chat = await api('GET', `/api/v1/dialogs/${d.id}/messages`, { user: 'cr-oleg' });
  t.equal(chat.status, 200);
  t.equal(chat.json.data.messages.length, 1);
  const m = chat.json.data.messages[0];
  t.equal(m.message_type, 'system');
  t.equal(m.sender_id, null);
  t.equal(m.content, '{"event":"chat_created","participants":[{"company":"Northline","name":"Anna K."},{"name":"Oleg"}]}');

  const ev = srv.events.slice(before).filter((e) => e.dialogId === d.id);
  t.equal(ev.length, 2, 'one event per initial participant, chat_created not broadcast');
  t.strictSame(ev.map((e) => e.event), [
    { type: 'participant.joined', dialog_id: d.id, user_id: 'cr-anna' },
    { type: 'participant.joined', dialog_id: d.id, user_id: 'cr-oleg' },
  ]);
  t.ok(ev.every((e) => e.toParticipants === true && typeof e.seq === 'number'));
  t.ok(ev[1].seq! > ev[0].seq!, 'seq strictly increasing');
  t.notOk(srv.events.some((e) => e.dialogId === d.id && e.event.type === 'message.new'));

  // chat_created does not count as unread.
  const g = await api('GET', `${M}/${d.id}`);
  t.strictSame(g.json.data.participants.map((x: { unread_count: number }) => x.unread_count), [0, 0]);

  const scopes = await srv.sql('SELECT scope_level0, scope_level1, scope_level2 FROM dialog_access_scopes WHERE dialog_id = $1', [d.id]);
  t.strictSame(scopes.rows, [{ scope_level0: ['org-22', 'org-31'], scope_level1: [], scope_level2: ['tenders.chat'] }]);
});

t.test('create dialog: minimal body, nulls present, meta omitted, no system message, no events', async (t) => {
  const before = srv.events.length;
  const r = await create({ object_id: 'min-1', object_type: 'order', participants: [] });
  t.equal(r.status, 200);
  const d = r.json.data;
  t.strictSame(d, {
    id: d.id, object_id: 'min-1', object_type: 'order', title: null, object_url: null, created_by: null, created_at: d.created_at,
  });
  t.notOk('meta' in d);
  t.equal(await count('messages', d.id), 0);
  t.equal(await count('dialog_participants', d.id), 0);
  t.equal(srv.events.length, before);

  const withNull = await create({ object_id: 'min-2', object_type: 'order', participants: [], meta: null, title: null, object_url: null });
  t.equal(withNull.status, 200);
  t.notOk('meta' in withNull.json.data);
  t.equal(withNull.json.data.title, null);
  t.equal(withNull.json.data.object_url, null);
  const stored = await srv.sql('SELECT meta FROM dialogs WHERE id = $1', [withNull.json.data.id]);
  t.equal(stored.rows[0].meta, null);
});

t.test('create dialog: meta is any JSON, kept verbatim (and returned by find and get)', async (t) => {
  const values: unknown[] = [[1, 'two', { three: null }], 42, 0, -1.5, 'text', '', false, true, {}, [], { nested: { deep: [null, { x: 1 }] } }];
  for (const [i, meta] of values.entries()) {
    const r = await create(base(`meta-${i}`, { meta }));
    t.equal(r.status, 200, `meta ${JSON.stringify(meta)}`);
    t.ok('meta' in r.json.data, `meta key present for ${JSON.stringify(meta)}`);
    t.strictSame(r.json.data.meta, meta, `create echoes ${JSON.stringify(meta)}`);
    const f = await api('POST', `${M}/search`, { body: { object_id: `meta-${i}`, object_type: 'tender' } });
    t.strictSame(f.json.data.meta, meta, `find returns ${JSON.stringify(meta)}`);
    const g = await api('GET', `${M}/${r.json.data.id}`);
    t.strictSame(g.json.data.meta, meta, `get returns ${JSON.stringify(meta)}`);
  }
});

t.test('create dialog: validation triples', async (t) => {
  const cyr = (n: number) => 'Ж'.repeat(n); // 2 bytes each
  const cases: [string, Record<string, unknown>, string][] = [
    ['title > 500 bytes', base('v-1', { title: 'x'.repeat(501) }), 'title exceeds maximum length of 500 characters'],
    ['title 251 Cyrillic letters', base('v-1', { title: cyr(251) }), 'title exceeds maximum length of 500 characters'],
    ['display_name empty', base('v-1', { participants: [{ user_id: 'v-a', display_name: '' }] }), 'display_name is required'],
    ['display_name blank', base('v-1', { participants: [{ user_id: 'v-a', display_name: ' \t\n ' }] }), 'display_name is required'],
    ['display_name > 200', base('v-1', { participants: [{ user_id: 'v-a', display_name: 'x'.repeat(201) }] }),
      'display_name exceeds maximum length of 200 characters'],
    ['display_name 101 Cyrillic letters', base('v-1', { participants: [{ user_id: 'v-a', display_name: cyr(101) }] }),
      'display_name exceeds maximum length of 200 characters'],
    ['company > 200', base('v-1', { participants: [p('v-a', { company: 'c'.repeat(201) })] }), 'company exceeds maximum length of 200 characters'],
    ['email > 254', base('v-1', { participants: [p('v-a', { email: 'e'.repeat(255) })] }), 'email exceeds maximum length of 254 characters'],
    ['phone > 50', base('v-1', { participants: [p('v-a', { phone: '1'.repeat(51) })] }), 'phone exceeds maximum length of 50 characters'],
    // Order: title first, then each participant in order (display_name, company, email, phone).
    ['title before participants', base('v-1', { title: 'x'.repeat(501), participants: [{ user_id: 'v-a', display_name: '' }] }),
      'title exceeds maximum length of 500 characters'],
    ['company before email and phone',
      base('v-1', { participants: [p('v-a', { company: 'c'.repeat(201), email: 'e'.repeat(255), phone: '1'.repeat(51) })] }),
      'company exceeds maximum length of 200 characters'],
    ['email before phone', base('v-1', { participants: [p('v-a', { email: 'e'.repeat(255), phone: '1'.repeat(51) })] }),
      'email exceeds maximum length of 254 characters'],
    ['first participant first',
      base('v-1', { participants: [p('v-a', { phone: '1'.repeat(51) }), { user_id: 'v-b', display_name: '' }] }),
      'phone exceeds maximum length of 50 characters'],
    ['second participant checked', base('v-1', { participants: [p('v-a'), p('v-b', { email: 'e'.repeat(255) })] }),
      'email exceeds maximum length of 254 characters'],
  ];
  for (const [name, body, message] of cases) {
    const r = await create(body);
    t.test(name, async (t) => isError(t, r, 400, 'INVALID_INPUT', message));
  }
  t.equal(Number((await srv.sql(`SELECT count(*)::int AS n FROM dialogs WHERE object_id = 'v-1'`)).rows[0].n), 0, 'nothing stored');

  // Limits are inclusive and counted in bytes.
  const ok = await create(base('v-ok', {
    title: cyr(250),
    participants: [{ user_id: 'v-ok-a', display_name: cyr(100), company: 'c'.repeat(200), email: 'e'.repeat(254), phone: '1'.repeat(50) }],
  }));
  t.equal(ok.status, 200, ok.text);
});

t.test('create dialog: identifiers and duplicates give 400, not 500', async (t) => {
  const dup = await create(base('dup-1', { participants: [p('dup-a'), p('dup-b'), p('dup-a', { display_name: 'Other' })] }));
  isError(t, dup, 400, 'INVALID_INPUT');
  t.equal(Number((await srv.sql(`SELECT count(*)::int AS n FROM dialogs WHERE object_id = 'dup-1'`)).rows[0].n), 0);

  const longObj = await create(base('o'.repeat(256)));
  isError(t, longObj, 400, 'INVALID_INPUT');
  t.match(longObj.json.error.message, /object_id/);
  const longObjCyr = await create(base('Ж'.repeat(128)));
  isError(t, longObjCyr, 400, 'INVALID_INPUT');

  const longType = await create({ object_id: 'id-1', object_type: 't'.repeat(101), participants: [] });
  isError(t, longType, 400, 'INVALID_INPUT');
  t.match(longType.json.error.message, /object_type/);

  const longUser = await create(base('id-2', { participants: [p('u'.repeat(256))] }));
  isError(t, longUser, 400, 'INVALID_INPUT');
  t.match(longUser.json.error.message, /user_id/);

  const atLimit = await create({ object_id: 'o'.repeat(255), object_type: 't'.repeat(100), participants: [{ user_id: 'u'.repeat(255), display_name: 'U' }] });
  t.equal(atLimit.status, 200, atLimit.text);
});

t.test('create dialog: body shape failures', async (t) => {
  isError(t, await create({ object_id: 'sh-1', object_type: 'tender' }), 422, 'INVALID_INPUT');
  isError(t, await create({ object_id: 'sh-1', object_type: 'tender', participants: null }), 422, 'INVALID_INPUT');
  isError(t, await create(base('sh-1', { access_scopes: null })), 422, 'INVALID_INPUT');
  isError(t, await create({ object_type: 'tender', participants: [] }), 422, 'INVALID_INPUT');
  isError(t, await create(base('sh-1', { participants: [{ user_id: 'sh-a' }] })), 422, 'INVALID_INPUT');
  isError(t, await create(base('sh-1', { participants: [{ user_id: 'sh-a', display_name: null }] })), 422, 'INVALID_INPUT');
  isError(t, await create(base('sh-1', { access_scopes: [{ scope_level0: 'x' }] })), 422, 'INVALID_INPUT');
  isError(t, await api('POST', M, { rawBody: '{"object_id":', headers: { 'content-type': 'application/json' } }), 400, 'BAD_REQUEST');
  const noCt = await api('POST', M, { rawBody: JSON.stringify(base('sh-1')) });
  t.equal(noCt.status, 415);
  t.equal(Number((await srv.sql(`SELECT count(*)::int AS n FROM dialogs WHERE object_id = 'sh-1'`)).rows[0].n), 0);

  // Scope values must be non-empty and ≤ 255 bytes.
  isError(t, await create(base('sh-2', { access_scopes: [{ scope_level1: [''] }] })), 400, 'INVALID_INPUT');
  isError(t, await create(base('sh-2', { access_scopes: [{ scope_level2: ['s'.repeat(256)] }] })), 400, 'INVALID_INPUT');
});

t.test('unknown fields are ignored (retired tenant_uid)', async (t) => {
  const r = await create({
    ...base('unk-1'), tenant_uid: 'legacy-tenant', extra: { a: 1 },
    participants: [{ ...p('unk-a'), nickname: 'x' }],
    access_scopes: [{ tenant_uid: 'legacy-tenant', scope_level0: ['o1'] }],
  });
  t.equal(r.status, 200, r.text);
  t.notOk('tenant_uid' in r.json.data);
  t.notOk('extra' in r.json.data);
  const id = r.json.data.id;
  const f = await api('POST', `${M}/search`, { body: { object_id: 'unk-1', object_type: 'tender', tenant_uid: 'x', access_scopes: [{ scope_level0: ['o1'], tenant_uid: 'y' }] } });
  t.equal(f.json.data?.id, id);
  const add = await api('POST', `${M}/${id}/participants`, { body: { ...p('unk-b'), tenant_uid: 'x' } });
  t.equal(add.status, 201);
  const put = await api('PUT', `${M}/${id}/access-scopes`, { body: { access_scopes: [{ scope_level1: ['z'], tenant_uid: 'x' }], tenant_uid: 'x' } });
  t.equal(put.status, 200);
  t.strictSame(Object.keys(put.json.data[0]), ['id', 'dialog_id', 'scope_level0', 'scope_level1', 'scope_level2', 'created_at']);
});

t.test('find dialog: exact scope-set semantics', async (t) => {
  const find = (object_id: string, access_scopes?: unknown[], object_type = 'tender') =>
    api('POST', `${M}/search`, { body: access_scopes === undefined ? { object_id, object_type } : { object_id, object_type, access_scopes } });

  const none = await find('fd-nothing-here', []);
  t.equal(none.status, 200);
  t.strictSame(none.json, { data: null });
  t.equal(none.text, '{"data":null}');

  const noScopes = await createDialog(api, { object_id: 'fd-1', object_type: 'tender' });
  const twoScopes = await createDialog(api, {
    object_id: 'fd-1', object_type: 'tender',
    access_scopes: [{ scope_level0: ['b', 'a'], scope_level1: ['m'], scope_level2: ['z'] }, { scope_level0: ['c'] }],
  });
  const partial = await createDialog(api, { object_id: 'fd-2', object_type: 'tender', access_scopes: [{ scope_level0: ['a'], scope_level2: ['x'] }] });

  // Empty request (or absent) matches only the scope-less dialog.
  const empty = await find('fd-1', []);
  t.equal(empty.status, 200);
  t.equal(empty.json.data.id, noScopes);
  t.equal((await find('fd-1')).json.data.id, noScopes);

  // Full shape of the returned dialog.
  const full = await find('fd-1', [{ scope_level0: ['c'] }, { scope_level0: ['a', 'b'], scope_level1: ['m'], scope_level2: ['z'] }]);
  t.strictSame(full.json, {
    data: { id: twoScopes, object_id: 'fd-1', object_type: 'tender', title: null, object_url: null, created_by: null, created_at: full.json.data.created_at },
  });
  // Values order-insensitive and de-duplicated; scopes order-insensitive.
  const dedup = await find('fd-1', [{ scope_level0: ['c', 'c'] }, { scope_level2: ['z', 'z'], scope_level1: ['m'], scope_level0: ['a', 'b', 'a'] }]);
  t.equal(dedup.json.data?.id, twoScopes);
  // A subset or superset of the scopes does not match.
  t.strictSame((await find('fd-1', [{ scope_level0: ['c'] }])).json, { data: null });
  t.strictSame((await find('fd-1', [{ scope_level0: ['c'] }, { scope_level0: ['a', 'b'], scope_level1: ['m'], scope_level2: ['z'] }, { scope_level0: ['d'] }])).json, { data: null });
  // A different value set at one level does not match.
  t.strictSame((await find('fd-1', [{ scope_level0: ['c'] }, { scope_level0: ['a'], scope_level1: ['m'], scope_level2: ['z'] }])).json, { data: null });
  // Partial scope: a missing level does not match a filled one.
  t.strictSame((await find('fd-2', [{ scope_level0: ['a'] }])).json, { data: null });
  t.equal((await find('fd-2', [{ scope_level0: ['a'], scope_level2: ['x'], scope_level1: [] }])).json.data?.id, partial);
  // A scoped request never matches a scope-less dialog, and the object must match exactly.
  t.strictSame((await find('fd-2', [])).json, { data: null });
  t.strictSame((await find('fd-1', [], 'order')).json, { data: null });
  t.strictSame((await find('FD-1', [])).json, { data: null });
  // Duplicate scopes in the request count as several scopes: two requested vs one stored.
  t.strictSame((await find('fd-2', [{ scope_level0: ['a'], scope_level2: ['x'] }, { scope_level0: ['a'], scope_level2: ['x'] }])).json, { data: null });

  // Newest first.
  const older = await createDialog(api, { object_id: 'fd-3', object_type: 'tender', access_scopes: [{ scope_level0: ['s'] }] });
  await new Promise((r) => setTimeout(r, 5));
  const newer = await createDialog(api, { object_id: 'fd-3', object_type: 'tender', access_scopes: [{ scope_level0: ['s'] }] });
  t.not(older, newer);
  t.equal((await find('fd-3', [{ scope_level0: ['s'] }])).json.data.id, newer);
  await api('DELETE', `${M}/${newer}`);
  t.equal((await find('fd-3', [{ scope_level0: ['s'] }])).json.data.id, older);

  // Validation and shape.
  isError(t, await api('POST', `${M}/search`, { body: { object_type: 'tender' } }), 422, 'INVALID_INPUT');
  isError(t, await api('POST', `${M}/search`, { body: { object_id: 'x', object_type: 'tender', access_scopes: null } }), 422, 'INVALID_INPUT');
  isError(t, await api('POST', `${M}/search`, { body: { object_id: 'o'.repeat(256), object_type: 'tender' } }), 400, 'INVALID_INPUT');
});

t.test('find dialog: constant number of SQL statements', async (t) => {
  const scopes = [{ scope_level0: ['k'] }];
  await createDialog(api, { object_id: 'cq-1', object_type: 'tender', access_scopes: scopes });
  // Twenty candidates; the match is the oldest, so every other candidate's scopes must be looked at.
  await createDialog(api, { object_id: 'cq-20', object_type: 'tender', access_scopes: scopes });
  for (let i = 0; i < 19; i++) {
    await createDialog(api, { object_id: 'cq-20', object_type: 'tender', access_scopes: [{ scope_level0: ['k', `other-${i}`] }, { scope_level1: [`x${i}`] }] });
  }
  const search = (object_id: string) => api('POST', `${M}/search`, { body: { object_id, object_type: 'tender', access_scopes: scopes } });
  const one = await srv.countStatements(() => search('cq-1'));
  const twenty = await srv.countStatements(() => search('cq-20'));
  t.ok(one.result.json.data, 'one candidate: found');
  t.ok(twenty.result.json.data, 'twenty candidates: found');
  t.ok(one.statements.length > 0);
  t.equal(twenty.statements.length, one.statements.length, `statements: ${twenty.statements.join(' | ')}`);
  const miss = await srv.countStatements(() => api('POST', `${M}/search`, { body: { object_id: 'cq-20', object_type: 'tender', access_scopes: [{ scope_level0: ['nope'] }] } }));
  t.strictSame(miss.result.json, { data: null });
  t.ok(miss.statements.length <= one.statements.length);
});

t.test('get dialog: full participants in join order, scopes in creation order', async (t) => {
  const created = await create({
    object_id: 'gd-1', object_type: 'tender', title: 'T', meta: { k: 'v' },
    participants: [{ user_id: 'gd-zed', display_name: 'Zed', company: 'Z Co', email: 'z@example.com', phone: '+1' }],
    access_scopes: [{ scope_level0: ['s3'] }, { scope_level0: ['s1'] }, { scope_level0: ['s2'], scope_level1: ['l1'], scope_level2: ['l2'] }],
  });
  const id = created.json.data.id;
  await new Promise((r) => setTimeout(r, 5));
  t.equal((await api('POST', `${M}/${id}/participants`, { body: { user_id: 'gd-amy', display_name: 'Amy' } })).status, 201);
  await new Promise((r) => setTimeout(r, 5));
  t.equal((await api('POST', `${M}/${id}/participants`, { body: { user_id: 'gd-bob', display_name: 'Bob', email: 'b@x' } })).status, 201);

  const g = await api('GET', `${M}/${id}`);
  t.equal(g.status, 200);
  t.strictSame(Object.keys(g.json), ['data']);
  const d = g.json.data;
  t.strictSame(Object.keys(d).sort(), ['access_scopes', 'created_at', 'created_by', 'id', 'meta', 'object_id', 'object_type', 'object_url', 'participants', 'title']);
  t.strictSame({ ...d, participants: undefined, access_scopes: undefined }, {
    ...created.json.data, participants: undefined, access_scopes: undefined,
  });
  const ps = d.participants;
  t.strictSame(ps.map((x: { user_id: string }) => x.user_id), ['gd-zed', 'gd-amy', 'gd-bob']);
  for (const x of ps) t.match(x.joined_at, TIME);
  t.ok(ps[0].joined_at < ps[1].joined_at && ps[1].joined_at < ps[2].joined_at);
  const row = (user_id: string, extra: Record<string, unknown>, joined_at: string) => ({
    dialog_id: id, user_id, joined_at, joined_as: 'participant', notifications_enabled: true, last_read_message_id: null,
    unread_count: 0, display_name: null, company: null, email: null, phone: null, is_archived: false, is_pinned: false, ...extra,
  });
  t.strictSame(ps, [
    row('gd-zed', { display_name: 'Zed', company: 'Z Co', email: 'z@example.com', phone: '+1' }, ps[0].joined_at),
    row('gd-amy', { display_name: 'Amy' }, ps[1].joined_at),
    row('gd-bob', { display_name: 'Bob', email: 'b@x' }, ps[2].joined_at),
  ]);
  const sc = d.access_scopes;
  t.strictSame(sc.map((s: { scope_level0: string[] }) => s.scope_level0), [['s3'], ['s1'], ['s2']]);
  for (const s of sc) {
    t.match(s.id, UUID7);
    t.match(s.created_at, TIME);
  }
  t.strictSame(sc[2], { id: sc[2].id, dialog_id: id, scope_level0: ['s2'], scope_level1: ['l1'], scope_level2: ['l2'], created_at: sc[2].created_at });
  t.strictSame(sc[0], { id: sc[0].id, dialog_id: id, scope_level0: ['s3'], scope_level1: [], scope_level2: [], created_at: sc[0].created_at });

  // Upper-case UUIDs name the same dialog.
  t.equal((await api('GET', `${M}/${id.toUpperCase()}`)).json.data?.id, id);

  isError(t, await api('GET', `${M}/${UNKNOWN_ID}`), 404, 'NOT_FOUND', 'Dialog not found');
  isError(t, await api('GET', `${M}/not-a-uuid`), 400, 'BAD_REQUEST');
  isError(t, await api('GET', `${M}/${id}x`), 400, 'BAD_REQUEST');
});

t.test('delete dialog: 204, idempotent, cascades, tells former participants', async (t) => {
  const id = await createDialog(api, {
    object_id: 'del-1', object_type: 'tender', participants: [p('del-a'), p('del-b')], access_scopes: [{ scope_level0: ['x'] }],
  });
  const sent = await api('POST', `/api/v1/dialogs/${id}/messages`, { user: 'del-a', body: { content: 'hello' } });
  t.equal(sent.status, 200);
  t.equal(await count('messages', id), 2);
  t.equal(await count('dialog_participants', id), 2);
  t.equal(await count('dialog_access_scopes', id), 1);

  const before = srv.events.length;
  const r = await api('DELETE', `${M}/${id}`);
  t.equal(r.status, 204);
  t.equal(r.text, '');
  t.equal(await count('messages', id), 0);
  t.equal(await count('dialog_participants', id), 0);
  t.equal(await count('dialog_access_scopes', id), 0);
  t.equal((await srv.sql('SELECT count(*)::int AS n FROM dialogs WHERE id = $1', [id])).rows[0].n, 0);
  isError(t, await api('GET', `${M}/${id}`), 404, 'NOT_FOUND', 'Dialog not found');

  const ev = srv.events.slice(before).filter((e) => e.dialogId === id);
  t.equal(ev.length, 2);
  for (const user of ['del-a', 'del-b']) {
    const e = ev.find((x) => x.event.type === 'participant.left' && 'user_id' in x.event && x.event.user_id === user);
    t.ok(e, `participant.left for ${user}`);
    t.strictSame(e?.event, { type: 'participant.left', dialog_id: id, user_id: user });
    t.ok(e?.toUsers?.includes(user), `${user} is told`);
  }

  const again = srv.events.length;
  const r2 = await api('DELETE', `${M}/${id}`);
  t.equal(r2.status, 204);
  t.equal(r2.text, '');
  const r3 = await api('DELETE', `${M}/${UNKNOWN_ID}`);
  t.equal(r3.status, 204);
  t.equal(r3.text, '');
  t.equal(srv.events.length, again, 'no events for a dialog that is already gone');
  isError(t, await api('DELETE', `${M}/nope`), 400, 'BAD_REQUEST');
});

t.test('add participant', async (t) => {
  const id = await createDialog(api, { object_id: 'add-1', object_type: 'tender', participants: [p('add-a'), p('add-b')] });
  const add = (body: unknown, dialogId = id) => api('POST', `${M}/${dialogId}/participants`, { body });

  // History before the newcomer.
  for (const content of ['one', 'two']) {
    t.equal((await api('POST', `/api/v1/dialogs/${id}/messages`, { user: 'add-a', body: { content } })).status, 200);
  }
  const msgCount = await count('messages', id);

  let before = srv.events.length;
  const r = await add({ user_id: 'add-new', display_name: 'Newcomer', company: 'NC', email: 'n@c', phone: '42' });
  t.equal(r.status, 201);
  t.equal(r.text, '');
  const ev = srv.events.slice(before);
  t.equal(ev.length, 1);
  t.strictSame(ev[0].event, { type: 'participant.joined', dialog_id: id, user_id: 'add-new' });
  t.equal(ev[0].dialogId, id);
  t.equal(ev[0].toParticipants, true);
  t.equal(await count('messages', id), msgCount, 'no system message');

  const get = async () => (await api('GET', `${M}/${id}`)).json.data.participants as Record<string, unknown>[];
  let newcomer = (await get()).find((x) => x.user_id === 'add-new')!;
  t.strictSame({ ...newcomer, joined_at: 'T' }, {
    dialog_id: id, user_id: 'add-new', joined_at: 'T', joined_as: 'participant', notifications_enabled: true, last_read_message_id: null,
    unread_count: 0, display_name: 'Newcomer', company: 'NC', email: 'n@c', phone: '42', is_archived: false, is_pinned: false,
  });
  t.equal((await get()).find((x) => x.user_id === 'add-b')!.unread_count, 2);

  // Later messages count.
  t.equal((await api('POST', `/api/v1/dialogs/${id}/messages`, { user: 'add-a', body: { content: 'three' } })).status, 200);
  newcomer = (await get()).find((x) => x.user_id === 'add-new')!;
  t.equal(newcomer.unread_count, 1);
  t.equal((await get()).find((x) => x.user_id === 'add-b')!.unread_count, 3);
  t.equal((await get()).find((x) => x.user_id === 'add-a')!.unread_count, 0);

  // Already a participant: 201, profile kept, no event.
  before = srv.events.length;
  const again = await add({ user_id: 'add-new', display_name: 'Changed', company: 'Other', email: 'o@o', phone: '1' });
  t.equal(again.status, 201);
  t.equal(again.text, '');
  t.equal(srv.events.length, before, 'no participant.joined when nothing changed');
  newcomer = (await get()).find((x) => x.user_id === 'add-new')!;
  t.equal(newcomer.display_name, 'Newcomer');
  t.equal(newcomer.company, 'NC');
  t.equal(newcomer.email, 'n@c');
  t.equal(newcomer.phone, '42');
  t.equal(newcomer.unread_count, 1);

  // Validation triples, before the dialog lookup.
  const cases: [Record<string, unknown>, string][] = [
    [{ user_id: 'add-v', display_name: '' }, 'display_name is required'],
    [{ user_id: 'add-v', display_name: '   ' }, 'display_name is required'],
    [{ user_id: 'add-v', display_name: 'x'.repeat(201) }, 'display_name exceeds maximum length of 200 characters'],
    [{ user_id: 'add-v', display_name: 'Ж'.repeat(101) }, 'display_name exceeds maximum length of 200 characters'],
    [{ user_id: 'add-v', display_name: 'V', company: 'c'.repeat(201) }, 'company exceeds maximum length of 200 characters'],
    [{ user_id: 'add-v', display_name: 'V', email: 'e'.repeat(255) }, 'email exceeds maximum length of 254 characters'],
    [{ user_id: 'add-v', display_name: 'V', phone: '1'.repeat(51) }, 'phone exceeds maximum length of 50 characters'],
    [{ user_id: 'add-v', display_name: 'V', company: 'c'.repeat(201), phone: '1'.repeat(51) }, 'company exceeds maximum length of 200 characters'],
  ];
  for (const [body, message] of cases) {
    isError(t, await add(body), 400, 'INVALID_INPUT', message);
    isError(t, await add(body, UNKNOWN_ID), 400, 'INVALID_INPUT', message);
  }
  isError(t, await add({ user_id: 'u'.repeat(256), display_name: 'V' }), 400, 'INVALID_INPUT');
  isError(t, await add({ user_id: 'add-v' }), 422, 'INVALID_INPUT');
  isError(t, await add({ display_name: 'V' }), 422, 'INVALID_INPUT');
  t.notOk((await get()).some((x) => x.user_id === 'add-v'));

  before = srv.events.length;
  isError(t, await add({ user_id: 'add-v', display_name: 'V' }, UNKNOWN_ID), 404, 'NOT_FOUND', 'Dialog not found');
  t.equal(srv.events.length, before);
  isError(t, await api('POST', `${M}/bad/participants`, { body: { user_id: 'add-v', display_name: 'V' } }), 400, 'BAD_REQUEST');

  // Added participants can use the Chat API right away.
  const list = await api('GET', `/api/v1/dialogs/${id}/messages`, { user: 'add-new' });
  t.equal(list.status, 200);
});

t.test('remove participant', async (t) => {
  const id = await createDialog(api, {
    object_id: 'rm-1', object_type: 'tender',
    participants: [p('rm-a'), p('rm-b'), p('a b'), p('x/y'), p('ü ö%')],
  });
  const rm = (user: string, dialogId = id) => api('DELETE', `${M}/${dialogId}/participants/${user}`);
  const members = async () => (await srv.sql('SELECT user_id FROM dialog_participants WHERE dialog_id = $1 ORDER BY user_id', [id])).rows.map((r) => r.user_id);

  let before = srv.events.length;
  const r = await rm('rm-b');
  t.equal(r.status, 204);
  t.equal(r.text, '');
  let ev = srv.events.slice(before);
  t.equal(ev.length, 1);
  t.strictSame(ev[0].event, { type: 'participant.left', dialog_id: id, user_id: 'rm-b' });
  t.equal(ev[0].dialogId, id);
  t.ok(ev[0].toUsers?.includes('rm-b'), 'the removed user is told');
  t.notOk((await members()).includes('rm-b'));
  t.equal(await count('messages', id), 1, 'no system message');

  // Not a participant (any more), unknown dialog: 204, no event.
  before = srv.events.length;
  for (const res of [await rm('rm-b'), await rm('never'), await rm('rm-a', UNKNOWN_ID)]) {
    t.equal(res.status, 204);
    t.equal(res.text, '');
  }
  t.equal(srv.events.length, before, 'no participant.left when no row was deleted');
  t.ok((await members()).includes('rm-a'));

  // Percent-encoded ids.
  for (const [encoded, user] of [['a%20b', 'a b'], ['x%2Fy', 'x/y'], [encodeURIComponent('ü ö%'), 'ü ö%']]) {
    before = srv.events.length;
    const res = await rm(encoded);
    t.equal(res.status, 204, encoded);
    t.notOk((await members()).includes(user), `${user} removed`);
    ev = srv.events.slice(before);
    t.equal(ev.length, 1);
    t.strictSame(ev[0].event, { type: 'participant.left', dialog_id: id, user_id: user });
    t.ok(ev[0].toUsers?.includes(user));
  }
  t.strictSame(await members(), ['rm-a']);
  isError(t, await api('DELETE', `${M}/nope/participants/rm-a`), 400, 'BAD_REQUEST');
});

t.test('replace access scopes', async (t) => {
  const id = await createDialog(api, { object_id: 'sc-1', object_type: 'tender', participants: [p('sc-a')], access_scopes: [{ scope_level0: ['old'] }] });
  const put = (body: unknown, dialogId = id) => api('PUT', `${M}/${dialogId}/access-scopes`, { body });

  const before = srv.events.length;
  const r = await put({ access_scopes: [{ scope_level2: ['z'] }, { scope_level0: ['b', 'a'], scope_level1: ['m'] }, {}] });
  t.equal(r.status, 200);
  t.strictSame(Object.keys(r.json), ['data']);
  const s = r.json.data;
  t.equal(s.length, 3);
  for (const x of s) {
    t.match(x.id, UUID7);
    t.match(x.created_at, TIME);
  }
  t.strictSame(s, [
    { id: s[0].id, dialog_id: id, scope_level0: [], scope_level1: [], scope_level2: ['z'], created_at: s[0].created_at },
    { id: s[1].id, dialog_id: id, scope_level0: ['b', 'a'], scope_level1: ['m'], scope_level2: [], created_at: s[1].created_at },
    { id: s[2].id, dialog_id: id, scope_level0: [], scope_level1: [], scope_level2: [], created_at: s[2].created_at },
  ]);
  t.equal(srv.events.length, before, 'no events');
  const stored = await srv.sql('SELECT id, scope_level0 FROM dialog_access_scopes WHERE dialog_id = $1', [id]);
  t.equal(stored.rows.length, 3);
  t.notOk(stored.rows.some((x) => x.scope_level0.includes('old')));
  const g = await api('GET', `${M}/${id}`);
  t.strictSame(g.json.data.access_scopes, s, 'get returns them in insertion order');

  const empty = await put({ access_scopes: [] });
  t.equal(empty.status, 200);
  t.strictSame(empty.json, { data: [] });
  t.equal(await count('dialog_access_scopes', id), 0);
  t.equal(await count('dialog_participants', id), 1, 'participants unaffected');

  isError(t, await put({ access_scopes: [] }, UNKNOWN_ID), 404, 'NOT_FOUND', 'Dialog not found');
  isError(t, await put({}), 422, 'INVALID_INPUT');
  isError(t, await put({ access_scopes: null }), 422, 'INVALID_INPUT');
  isError(t, await put({ access_scopes: [{ scope_level0: [1] }] }), 422, 'INVALID_INPUT');
  isError(t, await put({ access_scopes: [{ scope_level0: [''] }] }), 400, 'INVALID_INPUT');
  isError(t, await put({ access_scopes: [{ scope_level1: ['ok'] }, { scope_level2: ['s'.repeat(256)] }] }), 400, 'INVALID_INPUT');
  isError(t, await put({ access_scopes: [{ scope_level2: ['Ж'.repeat(128)] }] }), 400, 'INVALID_INPUT');
  t.equal(await count('dialog_access_scopes', id), 0, 'failed replacements change nothing');
  const atLimit = await put({ access_scopes: [{ scope_level2: ['s'.repeat(255)] }] });
  t.equal(atLimit.status, 200);
  isError(t, await api('PUT', `${M}/bad/access-scopes`, { body: { access_scopes: [] } }), 400, 'BAD_REQUEST');
});

t.test('admin token: open without ADMIN_API_TOKEN', async (t) => {
  const r = await api('GET', `${M}/${UNKNOWN_ID}`, { headers: { authorization: 'Basic whatever' } });
  isError(t, r, 404, 'NOT_FOUND', 'Dialog not found');
  t.equal((await create(base('open-1'))).status, 200);
});

t.test('admin token enforced when ADMIN_API_TOKEN is set', async (t) => {
  const sec = await startTestServer({ ADMIN_API_TOKEN: 's3cret-token' });
  t.teardown(() => sec.close());
  const a = client(sec.url);
  const TOKEN = 's3cret-token';
  const body = { object_id: 'auth-1', object_type: 'tender', participants: [p('auth-a')] };

  const requests: [string, string, Record<string, unknown> | undefined][] = [
    ['POST', M, body],
    ['POST', `${M}/search`, { object_id: 'auth-1', object_type: 'tender' }],
    ['GET', `${M}/${UNKNOWN_ID}`, undefined],
    ['DELETE', `${M}/${UNKNOWN_ID}`, undefined],
    ['POST', `${M}/${UNKNOWN_ID}/participants`, p('auth-b')],
    ['DELETE', `${M}/${UNKNOWN_ID}/participants/auth-b`, undefined],
    ['PUT', `${M}/${UNKNOWN_ID}/access-scopes`, { access_scopes: [] }],
  ];
  for (const [method, path, b] of requests) {
    const name = `${method} ${path}`;
    isError(t, await a(method, path, { body: b }), 401, 'UNAUTHORIZED', 'Authorization header required');
    isError(t, await a(method, path, { body: b, headers: { authorization: 'Basic x' } }), 401, 'UNAUTHORIZED',
      'Invalid authorization format. Use: Bearer <token>');
    isError(t, await a(method, path, { body: b, headers: { authorization: 'bearer s3cret-token' } }), 401, 'UNAUTHORIZED',
      'Invalid authorization format. Use: Bearer <token>');
    isError(t, await a(method, path, { body: b, admin: 'wrong' }), 403, 'FORBIDDEN', 'Invalid admin token');
    isError(t, await a(method, path, { body: b, headers: { authorization: 'Bearer  s3cret-token' } }), 403, 'FORBIDDEN', 'Invalid admin token');
    t.ok(name);
  }
  isError(t, await a('GET', `${M}/${UNKNOWN_ID}`, { headers: { authorization: 'Bearer' } }), 401, 'UNAUTHORIZED',
    'Invalid authorization format. Use: Bearer <token>');
  t.equal(Number((await sec.sql('SELECT count(*)::int AS n FROM dialogs')).rows[0].n), 0, 'nothing was created');

  // Auth before body parsing and before path parsing.
  isError(t, await a('POST', M, { rawBody: '{not json', headers: { 'content-type': 'application/json' } }), 401, 'UNAUTHORIZED',
    'Authorization header required');
  isError(t, await a('POST', M, { rawBody: '{not json' }), 401, 'UNAUTHORIZED', 'Authorization header required');
  isError(t, await a('POST', M, { body: { participants: 'nope' }, admin: 'wrong' }), 403, 'FORBIDDEN', 'Invalid admin token');
  isError(t, await a('GET', `${M}/not-a-uuid`, { admin: 'wrong' }), 403, 'FORBIDDEN', 'Invalid admin token');
  isError(t, await a('GET', `${M}/not-a-uuid`), 401, 'UNAUTHORIZED', 'Authorization header required');
  isError(t, await a('DELETE', `${M}/not-a-uuid/participants/x`, { admin: 'wrong' }), 403, 'FORBIDDEN', 'Invalid admin token');
  // With the right token the same failures surface.
  isError(t, await a('POST', M, { rawBody: '{not json', headers: { 'content-type': 'application/json' }, admin: TOKEN }), 400, 'BAD_REQUEST');
  isError(t, await a('GET', `${M}/not-a-uuid`, { admin: TOKEN }), 400, 'BAD_REQUEST');

  // The right token works everywhere.
  const c = await a('POST', M, { body, admin: TOKEN });
  t.equal(c.status, 200);
  const id = c.json.data.id;
  t.equal((await a('POST', `${M}/search`, { body: { object_id: 'auth-1', object_type: 'tender' }, admin: TOKEN })).json.data?.id, id);
  t.equal((await a('GET', `${M}/${id}`, { admin: TOKEN })).status, 200);
  t.equal((await a('POST', `${M}/${id}/participants`, { body: p('auth-b'), admin: TOKEN })).status, 201);
  t.equal((await a('DELETE', `${M}/${id}/participants/auth-b`, { admin: TOKEN })).status, 204);
  t.equal((await a('PUT', `${M}/${id}/access-scopes`, { body: { access_scopes: [{ scope_level0: ['q'] }] }, admin: TOKEN })).status, 200);
  t.equal((await a('DELETE', `${M}/${id}`, { admin: TOKEN })).status, 204);
  isError(t, await a('GET', `${M}/${id}`, { admin: TOKEN }), 404, 'NOT_FOUND', 'Dialog not found');
});
