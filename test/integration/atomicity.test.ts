// Multi-step writes are all-or-nothing: a failure injected in the middle (a trigger raising on one
// specific row) answers 500 and leaves no partial rows, no counter changes and no events.
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog, type ApiResponse } from '../helpers/api.js';

const srv = await startTestServer();
t.teardown(() => srv.close());
const api = client(srv.url);

const TABLES = ['dialogs', 'dialog_participants', 'dialog_access_scopes', 'messages', 'attachments', 'message_edit_history', 'outbox'];
const SCOPE = { scope_level0: ['t-atom'] };

await srv.sql(`CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'injected failure on %', TG_TABLE_NAME; END $$`);
await srv.sql(`CREATE TRIGGER boom_messages BEFORE INSERT ON messages FOR EACH ROW
  WHEN (NEW.content LIKE '%BOOM-MSG%') EXECUTE FUNCTION test_boom()`);
await srv.sql(`CREATE TRIGGER boom_attachments BEFORE INSERT ON attachments FOR EACH ROW
  WHEN (NEW.filename = 'boom.pdf') EXECUTE FUNCTION test_boom()`);
await srv.sql(`CREATE TRIGGER boom_scopes BEFORE INSERT ON dialog_access_scopes FOR EACH ROW
  WHEN ('BOOM-SCOPE' = ANY (NEW.scope_level0)) EXECUTE FUNCTION test_boom()`);
await srv.sql(`CREATE TRIGGER boom_participants BEFORE INSERT ON dialog_participants FOR EACH ROW
  WHEN (NEW.user_id LIKE 'boom-%') EXECUTE FUNCTION test_boom()`);
await srv.sql(`CREATE TRIGGER boom_dialog_update BEFORE UPDATE ON dialogs FOR EACH ROW
  WHEN (NEW.title = 'BOOM-UPDATE') EXECUTE FUNCTION test_boom()`);

/** Every row of every table, so "nothing changed" is checked exactly. */
async function snapshot(): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const tbl of TABLES) {
    out[tbl] = (await srv.sql(`SELECT to_jsonb(x)::text AS r FROM "${tbl}" x ORDER BY 1`)).rows.map((r) => r.r);
  }
  return out;
}

type Asserts = Pick<typeof t, 'equal' | 'strictSame'>;
function isInternal(t: Asserts, r: ApiResponse): void {
  t.equal(r.status, 500);
  t.strictSame(r.json, { error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } });
}

/** Runs a call that must fail with 500 and change nothing at all. */
async function failsCleanly(t: Asserts, call: () => Promise<ApiResponse>, what: string): Promise<void> {
  const before = await snapshot();
  const events = srv.events.length;
  isInternal(t, await call());
  t.strictSame(await snapshot(), before, `${what}: no row written or changed`);
  t.equal(srv.events.length, events, `${what}: no event published`);
}

const send = (d: string, user: string, body: Record<string, unknown>) => api('POST', `/api/v1/dialogs/${d}/messages`, { user, body });
const att = (d: string, filename: string) => ({ s3_key: `dialogs/${d}/${filename}-${Math.random().toString(36).slice(2)}.pdf`, filename, content_type: 'application/pdf', size: 10 });

t.test('create dialog fails as a whole', async (t) => {
  await failsCleanly(t, () => api('POST', '/api/v1/management/dialogs', {
    body: {
      object_id: 'atom-c1', object_type: 'order', title: 'T',
      participants: [{ user_id: 'c1-a', display_name: 'A' }, { user_id: 'c1-b', display_name: 'B' }],
      access_scopes: [{ scope_level0: ['ok'] }, { scope_level0: ['BOOM-SCOPE'] }],
    },
  }), 'failing scope row');
  await failsCleanly(t, () => api('POST', '/api/v1/management/dialogs', {
    body: {
      object_id: 'atom-c2', object_type: 'order',
      participants: [{ user_id: 'c2-a', display_name: 'A' }, { user_id: 'boom-c2', display_name: 'B' }],
      access_scopes: [SCOPE],
    },
  }), 'failing participant row');
  await failsCleanly(t, () => api('POST', '/api/v1/management/dialogs', {
    body: {
      object_id: 'atom-c3', object_type: 'order',
      participants: [{ user_id: 'c3-a', display_name: 'BOOM-MSG' }],
      access_scopes: [SCOPE],
    },
  }), 'failing chat_created message');
  for (const object_id of ['atom-c1', 'atom-c2', 'atom-c3']) {
    const r = await api('POST', '/api/v1/management/dialogs/search', { body: { object_id, object_type: 'order', access_scopes: [] } });
    t.equal(r.status, 200);
    t.equal(r.json.data, null, `${object_id} does not exist`);
  }
  const l = await api('GET', '/api/v1/dialogs', { user: 'c2-a' });
  t.strictSame(l.json, { data: [] });

  const ok = await api('POST', '/api/v1/management/dialogs', {
    body: { object_id: 'atom-c4', object_type: 'order', participants: [{ user_id: 'c4-a', display_name: 'A' }], access_scopes: [SCOPE] },
  });
  t.equal(ok.status, 200, 'the same call without the marker succeeds');
});

t.test('send fails as a whole', async (t) => {
  const d = await createDialog(api, {
    object_id: 'atom-s', participants: [{ user_id: 's-a', display_name: 'A' }, { user_id: 's-b', display_name: 'B' }],
  });
  const first = await send(d, 's-a', { content: 'before' });
  t.equal(first.status, 200);
  // s-b archived the dialog: a send unarchives it, so a failed send must leave it archived.
  t.equal((await api('POST', `/api/v1/dialogs/${d}/archive`, { user: 's-b' })).status, 200);
  const counters = async () => (await srv.sql('SELECT last_seq::int AS s, user_msg_count::int AS c FROM dialogs WHERE id = $1', [d])).rows[0];
  const c0 = await counters();

  await failsCleanly(t, () => send(d, 's-a', { content: 'x BOOM-MSG x' }), 'failing message row');
  await failsCleanly(t, () => send(d, 's-a', { content: 'with files', attachments: [att(d, 'fine'), att(d, 'boom.pdf')] }), 'failing second attachment');
  await failsCleanly(t, () => send(d, 's-a', { content: '', attachments: [att(d, 'boom.pdf')] }), 'failing only attachment');
  await failsCleanly(t, () => send(d, 's-b', { content: 'BOOM-MSG', client_msg_id: 'retry-1' }), 'failing keyed send');
  t.strictSame(await counters(), c0, 'last_seq and user_msg_count unchanged');
  const b = await api('GET', '/api/v1/dialogs', { user: 's-b' });
  t.equal(b.json.data[0].is_archived, true, 'still archived');
  t.equal(b.json.data[0].unread_count, 1);

  // More failures than the pool has connections: none is leaked.
  for (let i = 0; i < 8; i++) isInternal(t, await send(d, 's-a', { content: `BOOM-MSG ${i}` }));

  const events = srv.events.length;
  const ok = await send(d, 's-b', { content: 'after', client_msg_id: 'retry-1' });
  t.equal(ok.status, 200, 'the server still answers');
  t.equal(ok.json.data.content, 'after', 'the failed keyed send left no idempotency record');
  const published = srv.events.slice(events);
  t.strictSame(published.map((e) => e.event.type), ['dialog.unarchived', 'message.new']);
  t.equal(published[1].seq, c0.s + 1, 'no gap in the sequence');
  t.strictSame(await counters(), { s: c0.s + 1, c: c0.c + 1 });
  const a = await api('GET', '/api/v1/dialogs', { user: 's-a' });
  t.equal(a.json.data[0].unread_count, 1);

  // A failure on the dialog row update itself (the counters) rolls back the message insert.
  const d2 = await createDialog(api, { object_id: 'atom-s2', title: 'BOOM-UPDATE', participants: [{ user_id: 's-a', display_name: 'A' }] });
  await failsCleanly(t, () => send(d2, 's-a', { content: 'hello', attachments: [att(d2, 'fine')] }), 'failing dialog update');
  const health = await api('GET', '/health/ready');
  t.equal(health.status, 200);
});

t.test('join fails as a whole', async (t) => {
  const d = await createDialog(api, { object_id: 'atom-j', participants: [{ user_id: 'j-a', display_name: 'A' }], access_scopes: [SCOPE] });
  await send(d, 'j-a', { content: 'hello' });
  const join = (user: string, display_name: string) =>
    api('POST', `/api/v1/dialogs/${d}/join`, { user, scope: SCOPE, body: { display_name, company: 'Co' } });

  await failsCleanly(t, () => join('boom-joiner', 'Joe'), 'failing participant row');
  await failsCleanly(t, () => join('j-b', 'BOOM-MSG'), 'failing join system message');
  const parts = await api('GET', `/api/v1/dialogs/${d}/participants`, { user: 'j-a' });
  t.strictSame(parts.json.data.map((p: any) => p.user_id), ['j-a']);
  const list = await api('GET', `/api/v1/dialogs/${d}/messages`, { user: 'j-b' });
  t.equal(list.status, 403, 'j-b is not a participant');

  const ok = await join('j-b', 'Bea');
  t.equal(ok.status, 200, 'the server still answers');
  t.strictSame(ok.json, { status: 'joined', dialog_id: d });
  const mine = await api('GET', '/api/v1/dialogs', { user: 'j-b' });
  t.equal(mine.json.data[0].unread_count, 2, 'chat_created and hello; nothing from the failed attempts');
});
