// Chat API, dialog side: list (participating/available/search), get, by-object, join, leave,
// per-user settings and participants. Spec: chat-api.md, data-model.md "Scope matching".
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, type Api } from '../helpers/api.js';

type Obj = Record<string, any>;
type Scope = Record<string, string[]>;

const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const srv = await startTestServer();
t.teardown(() => srv.close());
const api: Api = client(srv.url);

/** Management create; returns the full Dialog shape. */
async function create(body: Obj): Promise<Obj> {
  const r = await api('POST', '/api/v1/management/dialogs', { body: { object_id: 'obj', object_type: 'order', participants: [], ...body } });
  if (r.status !== 200) throw new Error(`create failed: ${r.status} ${r.text}`);
  return r.json.data;
}
async function addP(dialogId: string, p: Obj): Promise<void> {
  const r = await api('POST', `/api/v1/management/dialogs/${dialogId}/participants`, { body: p });
  if (r.status !== 201) throw new Error(`add participant failed: ${r.status} ${r.text}`);
}
async function removeP(dialogId: string, userId: string): Promise<void> {
  const r = await api('DELETE', `/api/v1/management/dialogs/${dialogId}/participants/${encodeURIComponent(userId)}`);
  if (r.status !== 204) throw new Error(`remove participant failed: ${r.status} ${r.text}`);
}
async function send(dialogId: string, user: string, content: string): Promise<Obj> {
  const r = await api('POST', `/api/v1/dialogs/${dialogId}/messages`, { user, body: { content } });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  return r.json.data;
}
async function list(user: string, query: Obj = {}, scope?: Scope) {
  return api('GET', '/api/v1/dialogs', { user, query, scope });
}
async function ids(user: string, query: Obj = {}, scope?: Scope): Promise<string[]> {
  const r = await list(user, query, scope);
  if (r.status !== 200) throw new Error(`list failed: ${r.status} ${r.text}`);
  return r.json.data.map((d: Obj) => d.id);
}
const p = (user_id: string, display_name: string, extra: Obj = {}) => ({ user_id, display_name, ...extra });
const err = (code: string, message: string) => ({ error: { code, message } });
const dialogEvents = (dialogId: string, from = 0) => srv.events.slice(from).filter((e) => e.dialogId === dialogId);
async function messageCount(dialogId: string): Promise<number> {
  const r = await srv.sql('SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1', [dialogId]);
  return r.rows[0].n;
}
const base = (d: Obj) => {
  const v: Obj = {
    id: d.id, object_id: d.object_id, object_type: d.object_type, title: d.title, object_url: d.object_url,
    created_by: d.created_by, created_at: d.created_at,
  };
  if (d.meta !== undefined) v.meta = d.meta;
  return v;
};

t.test('participating list: exact list-item shape', async (t) => {
  const u = 'ls-u';
  // d1: only the chat_created system message; meta, url, title, company present.
  const d1 = await create({
    title: 'Shape one', object_url: 'https://host.example/1', meta: { k: 1 },
    participants: [p(u, 'Una', { company: 'UCo', email: 'una@x.example', phone: '+1' }), p('ls-v', 'Vic')],
  });
  // d2: last message by a current participant, whose display name then changes.
  // Initial participants share one joined_at; their relative order is not specified, so request
  // order and user_id order agree in every dialog below.
  const d2 = await create({ title: 'Shape two', participants: [p(u, 'Una'), p('ls-v', 'Vic')] });
  const m2 = await send(d2.id, 'ls-v', 'hello');
  await srv.sql('UPDATE dialog_participants SET display_name = $1 WHERE dialog_id = $2 AND user_id = $3', ['Victor', d2.id, 'ls-v']);
  // d3: last message by a sender who is no longer a participant (removed: no system message).
  const d3 = await create({ title: null, participants: [p('ls-w', 'Wes'), p(u, 'Una')] });
  const m3 = await send(d3.id, 'ls-w', 'bye');
  await removeP(d3.id, 'ls-w');
  // d4: no messages at all (no initial participants → no chat_created), a legacy row without a name.
  const d4 = await create({ participants: [] });
  await addP(d4.id, p(u, 'Una'));
  await srv.sql('UPDATE dialog_participants SET display_name = NULL WHERE dialog_id = $1 AND user_id = $2', [d4.id, u]);

  const r = await list(u);
  t.equal(r.status, 200);
  t.same(Object.keys(r.json), ['data']);
  const items: Obj[] = r.json.data;
  t.same(items.map((i) => i.id), [d4.id, d3.id, d2.id, d1.id], 'created_at descending');
  const [i4, i3, i2, i1] = items;

  const perUser = { unread_count: 0, is_archived: false, is_pinned: false, notifications_enabled: true };

  // d1
  t.match(i1.last_message.id, UUID_RE);
  t.match(i1.last_message.sent_at, TIME_RE);
  t.strictSame(i1, {
    ...base(d1), participants_count: 2, i_am_participant: true, can_join: false, ...perUser,
    last_message_at: i1.last_message.sent_at,
    last_message: {
      id: i1.last_message.id,
      content: '{"event":"chat_created","participants":[{"company":"UCo","name":"Una"},{"name":"Vic"}]}',
      sent_at: i1.last_message.sent_at, message_type: 'system',
    },
    participants: [{ user_id: u, display_name: 'Una', company: 'UCo' }, { user_id: 'ls-v', display_name: 'Vic' }],
  }, 'system last_message has no sender_id/sender_name; meta present');
  t.strictSame(i1.meta, { k: 1 });
  t.equal(i1.created_by, u);

  // d2
  t.strictSame(i2, {
    ...base(d2), participants_count: 2, i_am_participant: true, can_join: false, ...perUser, unread_count: 1,
    last_message_at: m2.sent_at,
    last_message: { id: m2.id, content: 'hello', sender_id: 'ls-v', sender_name: 'Victor', sent_at: m2.sent_at, message_type: 'user' },
    participants: [{ user_id: u, display_name: 'Una' }, { user_id: 'ls-v', display_name: 'Victor' }],
  }, 'user last_message with the sender\'s current display name');
  t.notOk('meta' in i2, 'meta omitted when null');

  // d3
  t.strictSame(i3, {
    ...base(d3), participants_count: 1, i_am_participant: true, can_join: false, ...perUser, unread_count: 1,
    last_message_at: m3.sent_at,
    last_message: { id: m3.id, content: 'bye', sender_id: 'ls-w', sent_at: m3.sent_at, message_type: 'user' },
    participants: [{ user_id: u, display_name: 'Una' }],
  }, 'sender_name omitted when the sender left');
  t.equal(i3.title, null, 'title present as null');

  // d4
  t.strictSame(i4, {
    ...base(d4), participants_count: 1, i_am_participant: true, can_join: false, ...perUser,
    participants: [{ user_id: u }],
  }, 'no last_message/last_message_at without messages; null display_name/company omitted');
  t.equal(i4.created_by, null);
  t.equal(i4.object_url, null);
  for (const i of items) t.match(i.created_at, TIME_RE);

  // participants omitted (not []) when a dialog has none: seen through the available list.
  const empty = await create({ participants: [], access_scopes: [{ scope_level0: ['ls-tenant'] }] });
  const av = await list('ls-nobody', { type: 'available' }, { scope_level0: ['ls-tenant'] });
  t.equal(av.status, 200);
  t.strictSame(av.json.data, [{ ...base(empty), participants_count: 0, i_am_participant: false, can_join: true }]);
});

t.test('participating list: order is created_at desc with id as tie-break', async (t) => {
  const u = 'ord-u';
  const made: string[] = [];
  for (let i = 0; i < 4; i++) made.push((await create({ title: `ord ${i}`, participants: [p(u, 'O')] })).id);
  t.same(await ids(u), [...made].reverse());
  // Equal creation times: ids decide, newest (greatest) first.
  await srv.sql(`UPDATE dialogs SET created_at = '2030-01-01T00:00:00Z' WHERE id = ANY($1::uuid[])`, [made]);
  t.same(await ids(u), [...made].sort().reverse());
  // created_at wins over id.
  await srv.sql(`UPDATE dialogs SET created_at = '2031-01-01T00:00:00Z' WHERE id = $1`, [made[0]]);
  t.same(await ids(u), [made[0], ...[...made.slice(1)].sort().reverse()]);
});

t.test('list dialogs: limit, offset and query validation; constant statement count', async (t) => {
  const u = 'bulk-u';
  for (let batch = 0; batch < 101; batch += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, 101 - batch) }, (_, k) =>
        create({ title: `bulk ${batch + k}`, participants: [p(u, 'Bulk', { company: 'BCo' }), p(`bulk-o${(batch + k) % 3}`, 'Other')] }),
      ),
    );
  }
  const all = await ids(u, { limit: 100 });
  t.equal(all.length, 100, 'limit=100');
  t.equal((await ids(u)).length, 50, 'default limit 50');
  t.same(await ids(u), all.slice(0, 50));
  t.equal((await ids(u, { limit: 101 })).length, 100, 'limit above 100 clamped');
  t.equal((await ids(u, { limit: 100000 })).length, 100, 'limit far above 100 clamped');
  const zero = await list(u, { limit: 0 });
  t.equal(zero.status, 200);
  t.strictSame(zero.json, { data: [] }, 'limit=0 gives []');
  t.same(await ids(u, { limit: 3, offset: -5 }), all.slice(0, 3), 'negative offset is 0');
  t.same(await ids(u, { limit: 3, offset: 2 }), all.slice(2, 5));
  t.equal((await ids(u, { limit: 10, offset: 98 })).length, 3, '101 dialogs, offset 98');

  const neg = await list(u, { limit: -1 });
  t.equal(neg.status, 400);
  t.equal(neg.json.error.code, 'INVALID_INPUT');
  t.type(neg.json.error.message, 'string');
  const abc = await list(u, { limit: 'abc' });
  t.equal(abc.status, 400);
  t.equal(abc.json.error.code, 'BAD_REQUEST');
  const offAbc = await list(u, { offset: 'x' });
  t.equal(offAbc.status, 400);
  t.equal(offAbc.json.error.code, 'BAD_REQUEST');
  const arch = await list(u, { archived: '1' });
  t.equal(arch.status, 400);
  t.equal(arch.json.error.code, 'BAD_REQUEST');
  const bogus = await list(u, { type: 'bogus' });
  t.equal(bogus.status, 400);
  t.strictSame(bogus.json, err('BAD_REQUEST', 'Invalid type parameter'));

  // No N+1: the page size does not change the number of statements.
  const one = await srv.countStatements(() => list(u, { limit: 1 }));
  const fifty = await srv.countStatements(() => list(u, { limit: 50 }));
  t.equal(one.result.json.data.length, 1);
  t.equal(fifty.result.json.data.length, 50);
  t.ok(one.statements.length > 0, 'statements are counted');
  t.equal(fifty.statements.length, one.statements.length, 'participating: same statement count for 1 and 50 items');

  // The same for the available list (50 dialogs reachable by one scope).
  const tenant = 'bulk-avail';
  for (let batch = 0; batch < 50; batch += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, k) =>
      create({ title: `avail ${batch + k}`, participants: [p('bulk-x', 'X', { company: 'XCo' })], access_scopes: [{ scope_level0: [tenant] }] })));
  }
  const a1 = await srv.countStatements(() => list('bulk-av', { type: 'available', limit: 1 }, { scope_level0: [tenant] }));
  const a50 = await srv.countStatements(() => list('bulk-av', { type: 'available', limit: 50 }, { scope_level0: [tenant] }));
  t.equal(a1.result.json.data.length, 1);
  t.equal(a50.result.json.data.length, 50);
  t.equal(a50.statements.length, a1.statements.length, 'available: same statement count for 1 and 50 items');
});

t.test('participating list: archived filter', async (t) => {
  const u = 'arcf-u';
  const a = await create({ title: 'arcf a', participants: [p(u, 'A'), p('arcf-v', 'V')] });
  const b = await create({ title: 'arcf b', participants: [p(u, 'A'), p('arcf-v', 'V')] });
  const r = await api('POST', `/api/v1/dialogs/${a.id}/archive`, { user: u });
  t.equal(r.status, 200);
  t.same(await ids(u, { archived: 'true' }), [a.id]);
  t.same(await ids(u, { archived: 'false' }), [b.id]);
  t.same(await ids(u), [b.id, a.id]);
  // Per user: the other participant has not archived anything.
  t.same(await ids('arcf-v', { archived: 'true' }), []);
  // Ignored for the available list.
  const av = await create({ title: 'arcf avail', participants: [], access_scopes: [{ scope_level0: ['arcf-t'] }] });
  t.same(await ids(u, { type: 'available', archived: 'true' }, { scope_level0: ['arcf-t'] }), [av.id]);
});

t.test('participating list: scope rule applies only with the header', async (t) => {
  const u = 'psc-u';
  const noScopes = await create({ title: 'psc none', participants: [p(u, 'U')] });
  const mine = await create({ title: 'psc mine', participants: [p(u, 'U')], access_scopes: [{ scope_level0: ['psc-t1'] }] });
  const other = await create({ title: 'psc other', participants: [p(u, 'U')], access_scopes: [{ scope_level0: ['psc-t2'] }] });
  t.same(await ids(u, {}, { scope_level0: ['psc-t1'] }), [mine.id, noScopes.id], 'other tenant dropped, no-scope dialog kept');
  t.same(await ids(u, {}, { scope_level0: ['psc-t2'] }), [other.id, noScopes.id]);
  t.same(await ids(u), [other.id, mine.id, noScopes.id], 'no header: no filtering');
  t.same(await ids(u, {}, {}), [noScopes.id], 'header with empty levels only keeps dialogs without scopes');
});

t.test('available list', async (t) => {
  const noHeader = await list('av-u', { type: 'available' });
  t.equal(noHeader.status, 400);
  t.strictSame(noHeader.json, err('BAD_REQUEST', 'X-Scope-Config header required for available dialogs'));

  const T = 'av-t';
  const u = 'av-u';
  const open = await create({ title: 'av open', participants: [p('av-o', 'Owner', { company: 'OCo' })], access_scopes: [{ scope_level0: [T] }] });
  const hist = await send(open.id, 'av-o', 'secret history');
  const joinedAlready = await create({ title: 'av mine', participants: [p(u, 'U')], access_scopes: [{ scope_level0: [T] }] });
  // Several matching scope rows: the dialog still appears once.
  const multi = await create({
    title: 'av multi', participants: [],
    access_scopes: [{ scope_level0: [T] }, { scope_level0: [T], scope_level1: ['d1'] }, { scope_level0: ['zzz', T] }],
  });
  await create({ title: 'av none', participants: [] }); // no scope rows: reachable by nobody
  await create({ title: 'av foreign', participants: [], access_scopes: [{ scope_level0: ['av-other'] }] });

  const r = await list(u, { type: 'available' }, { scope_level0: [T] });
  t.equal(r.status, 200);
  t.same(r.json.data.map((d: Obj) => d.id), [multi.id, open.id], 'accessible, not a participant, each dialog once');
  const openItem = r.json.data[1];
  t.strictSame(openItem, {
    ...base(open), participants_count: 1, i_am_participant: false, can_join: true, last_message_at: hist.sent_at,
    participants: [{ user_id: 'av-o', display_name: 'Owner', company: 'OCo' }],
  }, 'no per-user keys, no last_message');
  t.notOk(r.text.includes('secret history'), 'no message content before joining');
  t.notOk(r.json.data.some((d: Obj) => d.id === joinedAlready.id));

  // Scope semantics.
  const S = 'av-sem';
  const wild = await create({ title: 'sem wild', participants: [], access_scopes: [{ scope_level0: [S] }] });
  const dept = await create({ title: 'sem dept', participants: [], access_scopes: [{ scope_level0: [S], scope_level1: ['dept'] }] });
  const role = await create({
    title: 'sem role', participants: [], access_scopes: [{ scope_level0: [S], scope_level1: ['dept'], scope_level2: ['role'] }],
  });
  const allWild = await create({ title: 'sem all-wild', participants: [], access_scopes: [{}] });
  const av = (scope: Scope) => ids('av-sem-u', { type: 'available', limit: 100 }, scope);
  const ofMine = (xs: string[]) => xs.filter((x) => [wild.id, dept.id, role.id, allWild.id].includes(x));
  t.same(ofMine(await av({ scope_level0: [S] })), [allWild.id, wild.id], 'empty row levels are wildcards; empty user level matches only wildcards');
  t.same(ofMine(await av({ scope_level0: [S], scope_level1: ['dept'] })), [allWild.id, dept.id, wild.id]);
  t.same(ofMine(await av({ scope_level0: [S], scope_level1: ['dept'], scope_level2: ['other'] })), [allWild.id, dept.id, wild.id],
    'all three levels must pass');
  t.same(ofMine(await av({ scope_level0: ['x', S], scope_level1: ['y', 'dept'], scope_level2: ['role'] })),
    [allWild.id, role.id, dept.id, wild.id], 'any shared value on each level');
  t.same(ofMine(await av({ scope_level0: ['nomatch'] })), [allWild.id], 'no shared value: only the all-wildcard row');
  t.same(ofMine(await av({ scope_level0: [S.toUpperCase()] })), [allWild.id], 'comparison is case-sensitive');
  // The all-wildcard dialog would be available to every header in later subtests: retire it.
  const retire = await api('PUT', `/api/v1/management/dialogs/${allWild.id}/access-scopes`, { body: { access_scopes: [] } });
  t.equal(retire.status, 200);
});

t.test('search: title or any participant company, case-insensitive, wildcards literal', async (t) => {
  const u = 'srch-u';
  const alpha = await create({ title: 'Project ALPHA', participants: [p(u, 'U')] });
  const acme = await create({ title: 'other', participants: [p(u, 'U'), p('srch-v', 'V', { company: 'Acme Logistics' })] });
  const pct = await create({ title: '100% done', participants: [p(u, 'U')] });
  const und = await create({ title: 'a_b', participants: [p(u, 'U')] });
  const axb = await create({ title: 'axb', participants: [p(u, 'U')] });
  const bare = await create({ title: null, participants: [p(u, 'U')] });

  t.same(await ids(u, { search: 'alpha' }), [alpha.id], 'title, case-insensitive');
  t.same(await ids(u, { search: 'aCmE' }), [acme.id], "another participant's company");
  t.same(await ids(u, { search: '%' }), [pct.id], '% is literal');
  t.same(await ids(u, { search: 'a_b' }), [und.id], '_ is literal');
  t.same(await ids(u, { search: '_' }), [und.id]);
  t.same(await ids(u, { search: '' }), [bare.id, axb.id, und.id, pct.id, acme.id, alpha.id], 'empty search is ignored');
  t.same(await ids(u, { search: 'nothing-like-this' }), []);
  // Available list searches too.
  const s1 = await create({ title: 'Srch Avail', participants: [], access_scopes: [{ scope_level0: ['srch-t'] }] });
  await create({ title: 'unrelated', participants: [], access_scopes: [{ scope_level0: ['srch-t'] }] });
  t.same(await ids('srch-x', { type: 'available', search: 'srch av' }, { scope_level0: ['srch-t'] }), [s1.id]);
});

t.test('get dialog', async (t) => {
  const T = 'gd-t';
  const d = await create({
    title: 'gd', meta: { a: [1] }, participants: [p('gd-a', 'Ann', { company: 'ACo' }), p('gd-b', 'Bob')], access_scopes: [{ scope_level0: [T] }],
  });
  await send(d.id, 'gd-a', 'gd secret');

  const unknown = await api('GET', '/api/v1/dialogs/00000000-0000-7000-8000-000000000000', { user: 'gd-a', scope: { scope_level0: [T] } });
  t.equal(unknown.status, 404);
  t.strictSame(unknown.json, err('DIALOG_NOT_FOUND', 'Dialog not found'));

  const member = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-a' });
  t.equal(member.status, 200);
  t.strictSame(member.json, {
    data: {
      ...base(d), i_am_participant: true, can_join: false, participants_count: 2,
      participants: [{ user_id: 'gd-a', display_name: 'Ann', company: 'ACo' }, { user_id: 'gd-b', display_name: 'Bob' }],
    },
  }, 'participant: counts and summaries, no per-user keys, no last message');
  // A participant keeps access with a header of another tenant; can_join stays false with a matching one.
  const memberOther = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-a', scope: { scope_level0: ['gd-other'] } });
  t.equal(memberOther.status, 200);
  t.equal(memberOther.json.data.i_am_participant, true);
  const memberMatch = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-b', scope: { scope_level0: [T] } });
  t.equal(memberMatch.json.data.can_join, false);

  const potential = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-c', scope: { scope_level0: [T] } });
  t.equal(potential.status, 200);
  t.strictSame(potential.json, { data: { ...base(d), i_am_participant: false, can_join: true } }, 'potential: no participants');
  t.notOk(potential.text.includes('gd secret'));

  const noHeader = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-c' });
  t.equal(noHeader.status, 403);
  t.strictSame(noHeader.json, err('SCOPE_MISMATCH', 'No access to this dialog'));
  const wrongTenant = await api('GET', `/api/v1/dialogs/${d.id}`, { user: 'gd-c', scope: { scope_level0: ['gd-other'] } });
  t.equal(wrongTenant.status, 403);
  t.strictSame(wrongTenant.json, err('SCOPE_MISMATCH', 'No access to this dialog'));
  const badId = await api('GET', '/api/v1/dialogs/not-a-uuid', { user: 'gd-a' });
  t.equal(badId.status, 400);
  t.equal(badId.json.error.code, 'BAD_REQUEST');
});

t.test('get dialog by object', async (t) => {
  const T = 'bo-t';
  const path = (type: string, id: string) => `/api/v1/dialogs/by-object/${type}/${id}`;
  const older = await create({ object_type: 'bo', object_id: 'o1', title: 'older', participants: [p('bo-o', 'Owner')], access_scopes: [{ scope_level0: [T] }] });
  const foreign = await create({
    object_type: 'bo', object_id: 'o1', title: 'foreign', participants: [p('bo-m', 'Mia'), p('bo-o', 'Owner')], access_scopes: [{ scope_level0: ['bo-x'] }],
  });
  const fm = await send(foreign.id, 'bo-m', 'foreign msg');

  // Potential participant of tenant T: the newer foreign dialog is not accessible.
  const pot = await api('GET', path('bo', 'o1'), { user: 'bo-p', scope: { scope_level0: [T] } });
  t.equal(pot.status, 200);
  t.strictSame(pot.json, {
    data: { ...base(older), participants_count: 1, i_am_participant: false, can_join: true, last_message_at: pot.json.data.last_message_at,
      participants: [{ user_id: 'bo-o', display_name: 'Owner' }] },
  }, 'newest accessible; no last_message for non-participants');
  t.match(pot.json.data.last_message_at, TIME_RE);

  // Participant of the foreign dialog acting as tenant T: participant branch filtered by scope.
  const asT = await api('GET', path('bo', 'o1'), { user: 'bo-m', scope: { scope_level0: [T] } });
  t.equal(asT.json.data.id, older.id);
  // Without a header the participant branch is unfiltered: the foreign dialog is newest.
  const member = await api('GET', path('bo', 'o1'), { user: 'bo-m' });
  t.equal(member.status, 200);
  t.strictSame(member.json.data, {
    ...base(foreign), participants_count: 2, i_am_participant: true, can_join: false, last_message_at: fm.sent_at,
    last_message: { id: fm.id, content: 'foreign msg', sender_id: 'bo-m', sender_name: 'Mia', sent_at: fm.sent_at, message_type: 'user' },
    participants: [{ user_id: 'bo-m', display_name: 'Mia' }, { user_id: 'bo-o', display_name: 'Owner' }],
  }, 'per-user keys absent even for participants');

  // A newer accessible dialog wins.
  const newest = await create({ object_type: 'bo', object_id: 'o1', title: 'newest', participants: [], access_scopes: [{ scope_level0: [T] }] });
  const pot2 = await api('GET', path('bo', 'o1'), { user: 'bo-p', scope: { scope_level0: [T] } });
  t.equal(pot2.json.data.id, newest.id);
  t.notOk('participants' in pot2.json.data, 'participants omitted when none');

  // Dialogs exist for the object but only for another tenant: null, no existence leak.
  await create({ object_type: 'bo', object_id: 'o2', title: 'hidden', participants: [p('bo-o', 'Owner')], access_scopes: [{ scope_level0: ['bo-x'] }] });
  const leak = await api('GET', path('bo', 'o2'), { user: 'bo-p', scope: { scope_level0: [T] } });
  t.equal(leak.status, 200);
  t.equal(leak.text, '{"data":null}');
  const noHeader = await api('GET', path('bo', 'o2'), { user: 'bo-p' });
  t.equal(noHeader.text, '{"data":null}');
  const nothing = await api('GET', path('bo', 'never'), { user: 'bo-p', scope: { scope_level0: [T] } });
  t.equal(nothing.text, '{"data":null}');
  // Path segments are percent-decoded.
  const spaced = await create({ object_type: 'bo', object_id: 'a b', participants: [p('bo-s', 'S')] });
  const dec = await api('GET', path('bo', 'a%20b'), { user: 'bo-s' });
  t.equal(dec.json.data.id, spaced.id);
});

t.test('list dialogs by object', async (t) => {
  const T = 'bl-t';
  const u = 'bl-u';
  const path = '/api/v1/dialogs/by-object/bl/obj/list';
  const mk = (title: string, participants: Obj[], scopes: Obj[]) =>
    create({ object_type: 'bl', object_id: 'obj', title, participants, access_scopes: scopes });
  const p1 = await mk('p1 scoped', [p('bl-o', 'Owner'), p(u, 'U')], [{ scope_level0: [T] }]);
  const m1 = await send(p1.id, 'bl-o', 'p1 msg');
  const p2 = await mk('p2 unscoped', [p(u, 'U')], []);
  const p3 = await mk('p3 other tenant', [p(u, 'U')], [{ scope_level0: ['bl-x'] }]);
  const a1 = await mk('a1 available', [p('bl-o', 'Owner', { company: 'OCo' })], [{ scope_level0: [T] }]);
  await send(a1.id, 'bl-o', 'a1 secret');
  await mk('x1 foreign', [p('bl-o', 'Owner')], [{ scope_level0: ['bl-x'] }]);
  await create({ object_type: 'bl', object_id: 'other-obj', title: 'other obj', participants: [p(u, 'U')], access_scopes: [{ scope_level0: [T] }] });
  const H = { scope_level0: [T] };
  const get = (query: Obj, scope?: Scope) => api('GET', path, { user: u, query, scope });
  const idsOf = async (query: Obj, scope?: Scope) => {
    const r = await get(query, scope);
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    return r.json.data.map((d: Obj) => d.id);
  };

  const both = await get({}, H);
  t.equal(both.status, 200);
  t.same(both.json.data.map((d: Obj) => d.id), [a1.id, p2.id, p1.id], 'both branches, newest first; other tenant and other object excluded');
  const [ia1, , ip1] = both.json.data;
  t.strictSame(ip1, {
    ...base(p1), participants_count: 2, i_am_participant: true, can_join: false,
    unread_count: 1, is_archived: false, is_pinned: false, notifications_enabled: true, last_message_at: m1.sent_at,
    last_message: { id: m1.id, content: 'p1 msg', sender_id: 'bl-o', sender_name: 'Owner', sent_at: m1.sent_at, message_type: 'user' },
    participants: [{ user_id: 'bl-o', display_name: 'Owner' }, { user_id: u, display_name: 'U' }],
  });
  t.strictSame(ia1, {
    ...base(a1), participants_count: 1, i_am_participant: false, can_join: true, last_message_at: ia1.last_message_at,
    participants: [{ user_id: 'bl-o', display_name: 'Owner', company: 'OCo' }],
  });
  t.notOk(both.text.includes('a1 secret'));

  t.same(await idsOf({ type: 'participating' }, H), [p2.id, p1.id]);
  t.same(await idsOf({ type: 'available' }, H), [a1.id], 'B11: available branch excludes own dialogs');
  t.same(await idsOf({ archived: 'true' }, H), [a1.id], 'B11: archived filter cannot be bypassed through the potential branch');
  t.same(await idsOf({ archived: 'false' }, H), [a1.id, p2.id, p1.id]);
  const arch = await api('POST', `/api/v1/dialogs/${p1.id}/archive`, { user: u });
  t.equal(arch.status, 200);
  t.same(await idsOf({ archived: 'true' }, H), [a1.id, p1.id]);
  t.same(await idsOf({ archived: 'false' }, H), [a1.id, p2.id]);
  t.same(await idsOf({ type: 'available', archived: 'true' }, H), [a1.id], 'archived ignored for type=available');
  t.same(await idsOf({ search: 'unscoped' }, H), [p2.id]);
  t.same(await idsOf({ search: 'AVAIL' }, H), [a1.id]);

  // Without the header: only participant dialogs, unfiltered by scope.
  t.same(await idsOf({}), [p3.id, p2.id, p1.id]);
  t.same(await idsOf({ type: 'available' }), [], 'type=available without header is [] (not an error)');

  const bogus = await get({ type: 'bogus' }, H);
  t.equal(bogus.status, 400);
  t.strictSame(bogus.json, err('BAD_REQUEST', 'Invalid type parameter'));
  const badArchived = await get({ archived: 'yes' }, H);
  t.equal(badArchived.status, 400);
  t.equal(badArchived.json.error.code, 'BAD_REQUEST');
  const empty = await api('GET', '/api/v1/dialogs/by-object/bl/nothing/list', { user: u, scope: H });
  t.equal(empty.text, '{"data":[]}');
});

t.test('join', async (t) => {
  const T = 'jn-t';
  const H = { scope_level0: [T] };
  const d = await create({ title: 'jn', participants: [p('jn-o', 'Owner'), p('jn-p', 'Pia')], access_scopes: [{ scope_level0: [T] }] });
  await send(d.id, 'jn-o', 'one');
  await send(d.id, 'jn-o', 'two');
  const arch = await api('POST', `/api/v1/dialogs/${d.id}/archive`, { user: 'jn-p' });
  t.equal(arch.status, 200);
  const joinPath = `/api/v1/dialogs/${d.id}/join`;
  const body = { display_name: 'Cat', company: 'Z' };

  const noHeader = await api('POST', joinPath, { user: 'jn-c', body });
  t.equal(noHeader.status, 400);
  t.strictSame(noHeader.json, err('BAD_REQUEST', 'X-Scope-Config header required'));
  const unknown = await api('POST', '/api/v1/dialogs/00000000-0000-7000-8000-000000000001/join', { user: 'jn-c', scope: H, body });
  t.equal(unknown.status, 404);
  t.strictSame(unknown.json, err('DIALOG_NOT_FOUND', 'Dialog not found'));
  const already = await api('POST', joinPath, { user: 'jn-o', scope: H, body });
  t.equal(already.status, 400);
  t.strictSame(already.json, err('BAD_REQUEST', 'Already a participant'));
  const noAccess = await api('POST', joinPath, { user: 'jn-c', scope: { scope_level0: ['jn-other'] }, body });
  t.equal(noAccess.status, 403);
  t.strictSame(noAccess.json, err('FORBIDDEN', 'No access to join this dialog'));

  // Validation (after the access checks).
  const invalid: [Obj, number, string, string | null][] = [
    [{ display_name: '   ', company: 'Z' }, 400, 'INVALID_INPUT', 'display_name is required'],
    [{ display_name: '', company: 'Z' }, 400, 'INVALID_INPUT', 'display_name is required'],
    [{ display_name: 'x'.repeat(201), company: 'Z' }, 400, 'INVALID_INPUT', 'display_name exceeds maximum length of 200 characters'],
    [{ display_name: 'Я'.repeat(101), company: 'Z' }, 400, 'INVALID_INPUT', 'display_name exceeds maximum length of 200 characters'],
    [{ display_name: 'Cat', company: 'c'.repeat(201) }, 400, 'INVALID_INPUT', 'company exceeds maximum length of 200 characters'],
    [{ display_name: 'Cat', company: 'Z', email: 'e'.repeat(255) }, 400, 'INVALID_INPUT', 'email exceeds maximum length of 254 characters'],
    [{ display_name: 'Cat', company: 'Z', phone: '1'.repeat(51) }, 400, 'INVALID_INPUT', 'phone exceeds maximum length of 50 characters'],
    [{ display_name: 'Cat' }, 422, 'INVALID_INPUT', null],
    [{ company: 'Z' }, 422, 'INVALID_INPUT', null],
    [{ display_name: 'Cat', company: 5 }, 422, 'INVALID_INPUT', null],
  ];
  for (const [b, status, code, message] of invalid) {
    const r = await api('POST', joinPath, { user: 'jn-c', scope: H, body: b });
    t.equal(r.status, status, `${JSON.stringify(b).slice(0, 60)} → ${status}`);
    t.equal(r.json?.error?.code, code);
    if (message !== null) t.equal(r.json.error.message, message);
  }
  t.equal(await messageCount(d.id), 3, 'failed joins wrote nothing');

  const mark = srv.events.length;
  const ok = await api('POST', joinPath, { user: 'jn-c', scope: H, body });
  t.equal(ok.status, 200);
  t.equal(ok.text, `{"dialog_id":"${d.id}","status":"joined"}`);
  t.strictSame(ok.json, { dialog_id: d.id, status: 'joined' });

  const items: Obj[] = (await list('jn-c')).json.data;
  const mine = items.find((i) => i.id === d.id)!;
  t.equal(mine.unread_count, 3, 'joiner starts with every earlier message unread (all types)');
  const sysContent = '{"company":"Z","event":"participant_joined","name":"Cat"}';
  t.equal(mine.last_message.content, sysContent);
  t.equal(mine.last_message.message_type, 'system');
  t.notOk('sender_id' in mine.last_message);
  t.same(mine.participants.map((x: Obj) => x.user_id), ['jn-o', 'jn-p', 'jn-c']);
  const pia = (await list('jn-p')).json.data.find((i: Obj) => i.id === d.id);
  t.equal(pia.unread_count, 2, 'join message does not increase other counts');
  t.equal(pia.is_archived, true, 'join message does not unarchive');
  const row = await srv.sql('SELECT joined_as, company, email FROM dialog_participants WHERE dialog_id = $1 AND user_id = $2', [d.id, 'jn-c']);
  t.strictSame(row.rows, [{ joined_as: 'joined', company: 'Z', email: null }]);

  const evs = dialogEvents(d.id, mark);
  t.same(evs.map((e) => e.event.type), ['message.new', 'participant.joined']);
  const [mn, pj] = evs;
  t.equal(mn.event.type === 'message.new' && mn.event.content, sysContent);
  t.equal(mn.event.type === 'message.new' && mn.event.message_type, 'system');
  t.notOk('sender_id' in mn.event);
  t.strictSame(pj.event, { type: 'participant.joined', dialog_id: d.id, user_id: 'jn-c' });
  t.type(mn.seq, 'number');
  t.equal(pj.seq, mn.seq! + 1, 'consecutive sequence numbers');

  const again = await api('POST', joinPath, { user: 'jn-c', scope: H, body });
  t.strictSame([again.status, again.json], [400, err('BAD_REQUEST', 'Already a participant')]);

  // company may be "".
  const emptyCo = await api('POST', joinPath, { user: 'jn-e', scope: H, body: { display_name: 'Eve', company: '' } });
  t.equal(emptyCo.status, 200);
  const last = await srv.sql('SELECT content FROM messages WHERE dialog_id = $1 ORDER BY id DESC LIMIT 1', [d.id]);
  t.equal(last.rows[0].content, '{"company":"","event":"participant_joined","name":"Eve"}');
});

t.test('join: concurrent double join gives one success', async (t) => {
  const T = 'cj-t';
  const d = await create({ title: 'cj', participants: [p('cj-o', 'Owner')], access_scopes: [{ scope_level0: [T] }] });
  const rs = await Promise.all(Array.from({ length: 5 }, () =>
    api('POST', `/api/v1/dialogs/${d.id}/join`, { user: 'cj-u', scope: { scope_level0: [T] }, body: { display_name: 'Cj', company: 'C' } })));
  t.same(rs.map((r) => r.status).sort(), [200, 400, 400, 400, 400]);
  for (const r of rs.filter((x) => x.status === 400)) t.strictSame(r.json, err('BAD_REQUEST', 'Already a participant'));
  const n = await srv.sql(`SELECT count(*)::int AS n FROM messages WHERE dialog_id = $1 AND content LIKE '%participant_joined%'`, [d.id]);
  t.equal(n.rows[0].n, 1, 'one system message');
  const c = await srv.sql('SELECT count(*)::int AS n FROM dialog_participants WHERE dialog_id = $1', [d.id]);
  t.equal(c.rows[0].n, 2);
});

t.test('leave', async (t) => {
  const d = await create({ title: 'lv', participants: [p('lv-o', 'Owner'), p('oleg', 'Oleg'), p('lv-n', 'Nameless')] });
  const unknown = await api('POST', '/api/v1/dialogs/00000000-0000-7000-8000-000000000002/leave', { user: 'oleg' });
  t.equal(unknown.status, 404);
  t.strictSame(unknown.json, err('DIALOG_NOT_FOUND', 'Dialog not found'));

  const before = await messageCount(d.id);
  let mark = srv.events.length;
  const stranger = await api('POST', `/api/v1/dialogs/${d.id}/leave`, { user: 'lv-x' });
  t.equal(stranger.status, 403);
  t.strictSame(stranger.json, err('NOT_PARTICIPANT', 'Not a participant'));
  t.equal(await messageCount(d.id), before, 'no system message');
  t.same(dialogEvents(d.id, mark), [], 'no event');

  mark = srv.events.length;
  const r = await api('POST', `/api/v1/dialogs/${d.id}/leave`, { user: 'oleg' });
  t.equal(r.status, 200);
  t.equal(r.text, '{"status":"left"}');
  const evs = dialogEvents(d.id, mark);
  t.same(evs.map((e) => e.event.type), ['message.new', 'participant.left']);
  const leftDoc = '{"event":"participant_left","name":"Oleg"}';
  t.equal(evs[0].event.type === 'message.new' && evs[0].event.content, leftDoc);
  t.strictSame(evs[1].event, { type: 'participant.left', dialog_id: d.id, user_id: 'oleg' });
  t.ok(evs[1].toUsers?.includes('oleg'), 'the leaver is told too');
  t.equal(evs[1].seq, evs[0].seq! + 1);
  const last = await srv.sql('SELECT content, message_type, sender_id FROM messages WHERE dialog_id = $1 ORDER BY id DESC LIMIT 1', [d.id]);
  t.strictSame(last.rows[0], { content: leftDoc, message_type: 'system', sender_id: null });
  t.same(await ids('oleg'), [], 'no longer listed');
  const again = await api('POST', `/api/v1/dialogs/${d.id}/leave`, { user: 'oleg' });
  t.strictSame([again.status, again.json], [403, err('NOT_PARTICIPANT', 'Not a participant')]);

  // A legacy row without a name leaves as "Участник".
  await srv.sql('UPDATE dialog_participants SET display_name = NULL WHERE dialog_id = $1 AND user_id = $2', [d.id, 'lv-n']);
  const n = await api('POST', `/api/v1/dialogs/${d.id}/leave`, { user: 'lv-n' });
  t.equal(n.status, 200);
  const l2 = await srv.sql('SELECT content FROM messages WHERE dialog_id = $1 ORDER BY id DESC LIMIT 1', [d.id]);
  t.equal(l2.rows[0].content, '{"event":"participant_left","name":"Участник"}');
});

t.test('archive, unarchive, pin, unpin, notifications', async (t) => {
  const d = await create({ title: 'st', participants: [p('st-a', 'A'), p('st-b', 'B'), p('st-c', 'C')] });
  const post = (user: string, action: string, body?: Obj) => api('POST', `/api/v1/dialogs/${d.id}/${action}`, { user, body });
  const item = async (user: string) => (await list(user)).json.data.find((i: Obj) => i.id === d.id);
  const flags = (i: Obj) => [i.is_archived, i.is_pinned, i.notifications_enabled];

  const mark = srv.events.length;
  for (const [action, status] of [['pin', 'pinned'], ['archive', 'archived']]) {
    const r = await post('st-a', action);
    t.equal(r.status, 200);
    t.equal(r.text, `{"status":"${status}"}`);
  }
  t.same(flags(await item('st-a')), [true, true, true], 'archiving does not unpin');
  t.same(flags(await item('st-b')), [false, false, true], 'other participants unaffected');
  const off = await post('st-a', 'notifications', { enabled: false });
  t.equal(off.status, 200);
  t.equal(off.text, '{"status":"disabled"}');
  t.same(flags(await item('st-a')), [true, true, false]);
  t.same(flags(await item('st-b')), [false, false, true]);
  const un = await post('st-a', 'unarchive');
  t.equal(un.text, '{"status":"unarchived"}');
  const unp = await post('st-a', 'unpin');
  t.equal(unp.text, '{"status":"unpinned"}');
  const on = await post('st-a', 'notifications', { enabled: true });
  t.equal(on.text, '{"status":"enabled"}');
  t.same(flags(await item('st-a')), [false, false, true]);
  t.same(dialogEvents(d.id, mark), [], 'no events for per-user settings');

  const missing = await post('st-a', 'notifications', {});
  t.equal(missing.status, 422);
  t.equal(missing.json.error.code, 'INVALID_INPUT');
  const wrongType = await post('st-a', 'notifications', { enabled: 'yes' });
  t.equal(wrongType.status, 422);

  const unknownId = '00000000-0000-7000-8000-000000000003';
  for (const action of ['archive', 'unarchive', 'pin', 'unpin', 'notifications']) {
    const body = action === 'notifications' ? { enabled: true } : undefined;
    const stranger = await post('st-x', action, body);
    t.equal(stranger.status, 403, `${action} by a stranger`);
    t.strictSame(stranger.json, err('NOT_PARTICIPANT', 'Not a participant'));
    const unk = await api('POST', `/api/v1/dialogs/${unknownId}/${action}`, { user: 'st-a', body });
    t.equal(unk.status, 403, `${action} on an unknown dialog`);
    t.strictSame(unk.json, err('NOT_PARTICIPANT', 'Not a participant'));
  }

  // A new user message unarchives for everyone, dialog.unarchived before message.new.
  t.equal((await post('st-a', 'archive')).status, 200);
  t.equal((await post('st-b', 'archive')).status, 200);
  t.equal((await post('st-b', 'pin')).status, 200);
  const m2 = srv.events.length;
  await send(d.id, 'st-c', 'wake up');
  t.same(flags(await item('st-a')), [false, false, true]);
  t.same(flags(await item('st-b')), [false, true, true], 'pin untouched');
  const evs = dialogEvents(d.id, m2);
  t.same(evs.map((e) => e.event.type), ['dialog.unarchived', 'message.new']);
  t.strictSame(evs[0].event, { type: 'dialog.unarchived', dialog_id: d.id });
  t.equal(evs[0].toParticipants, true);
  // Nobody archived: no dialog.unarchived.
  const m3 = srv.events.length;
  await send(d.id, 'st-c', 'again');
  t.same(dialogEvents(d.id, m3).map((e) => e.event.type), ['message.new']);
});

t.test('list participants', async (t) => {
  const T = 'pt-t';
  const d = await create({
    title: 'pt', access_scopes: [{ scope_level0: [T] }],
    participants: [
      p('pt-a', 'Ann', { company: 'ACo', email: 'ann@pt.example', phone: '+100' }),
      p('pt-b', 'Bob', { email: 'bob@pt.example', phone: '+200' }),
    ],
  });
  const mb = await send(d.id, 'pt-b', 'from bob');
  const ma = await send(d.id, 'pt-a', 'from ann');
  for (const [u, a] of [['pt-a', 'archive'], ['pt-a', 'pin'], ['pt-b', 'archive'], ['pt-b', 'pin']]) {
    t.equal((await api('POST', `/api/v1/dialogs/${d.id}/${a}`, { user: u })).status, 200);
  }
  t.equal((await api('POST', `/api/v1/dialogs/${d.id}/notifications`, { user: 'pt-b', body: { enabled: false } })).status, 200);
  const joined = await api('POST', `/api/v1/dialogs/${d.id}/join`, { user: 'pt-c', scope: { scope_level0: [T] }, body: { display_name: 'Cy', company: 'CCo' } });
  t.equal(joined.status, 200);

  const path = `/api/v1/dialogs/${d.id}/participants`;
  const ab = await api('GET', path, { user: 'pt-b' });
  t.equal(ab.status, 200);
  const rows: Obj[] = ab.json.data;
  t.same(rows.map((r) => r.user_id), ['pt-a', 'pt-b', 'pt-c'], 'ordered by joined_at');
  for (const r of rows) t.match(r.joined_at, TIME_RE);
  const neutral = { unread_count: 0, is_archived: false, is_pinned: false, notifications_enabled: true };
  t.strictSame(rows[0], {
    dialog_id: d.id, user_id: 'pt-a', joined_at: rows[0].joined_at, joined_as: 'participant', ...neutral,
    last_read_message_id: ma.id, display_name: 'Ann', company: 'ACo', email: 'ann@pt.example', phone: '+100', is_online: false,
  }, "another participant's settings are neutral, contact and read pointer visible to a participant");
  t.strictSame(rows[1], {
    dialog_id: d.id, user_id: 'pt-b', joined_at: rows[1].joined_at, joined_as: 'participant',
    notifications_enabled: false, last_read_message_id: mb.id, unread_count: 1, display_name: 'Bob', company: null,
    email: 'bob@pt.example', phone: '+200', is_archived: true, is_pinned: true, is_online: false,
  }, "the caller's own row is real");
  t.strictSame(rows[2], {
    dialog_id: d.id, user_id: 'pt-c', joined_at: rows[2].joined_at, joined_as: 'joined', ...neutral,
    last_read_message_id: null, display_name: 'Cy', company: 'CCo', email: null, phone: null, is_online: false,
  });
  // Joiner's own unread count is real (3 messages before joining).
  const ac = await api('GET', path, { user: 'pt-c' });
  t.equal(ac.json.data[2].unread_count, 3);
  t.equal(ac.json.data[1].unread_count, 0);

  // Potential participant: allowed, no contact details, no read pointers, neutral settings.
  const pot = await api('GET', path, { user: 'pt-q', scope: { scope_level0: [T] } });
  t.equal(pot.status, 200);
  t.equal(pot.json.data.length, 3);
  for (const r of pot.json.data) {
    t.strictSame([r.email, r.phone, r.last_read_message_id], [null, null, null], `${r.user_id}: hidden from non-participants`);
    t.strictSame([r.unread_count, r.is_archived, r.is_pinned, r.notifications_enabled, r.is_online], [0, false, false, true, false]);
  }
  t.notOk(pot.text.includes('@pt.example'));
  t.notOk(pot.text.includes('+100'));

  for (const [user, scope] of [['pt-q', undefined], ['pt-q', { scope_level0: ['pt-other'] }]] as [string, Scope | undefined][]) {
    const r = await api('GET', path, { user, scope });
    t.equal(r.status, 403);
    t.strictSame(r.json, err('FORBIDDEN', 'Not a participant'));
  }
  const unknown = await api('GET', '/api/v1/dialogs/00000000-0000-7000-8000-000000000004/participants', { user: 'pt-a', scope: { scope_level0: [T] } });
  t.equal(unknown.status, 403);
  t.strictSame(unknown.json, err('FORBIDDEN', 'Not a participant'));
});
