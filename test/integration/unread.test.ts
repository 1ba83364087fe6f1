// Unread counts as every client sees them (list dialogs, Management get, participants endpoint),
// and the cost of a send, which must not grow with the number of participants.
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';

const srv = await startTestServer();
t.teardown(() => srv.close());
const api = client(srv.url);

type Asserts = Pick<typeof t, 'equal' | 'ok' | 'strictSame'>;

/**
 * Every participant's unread count, read three ways; asserts the three agree, that the
 * participants endpoint shows neutral 0 for other people's rows, and that `gone` users no
 * longer see the dialog.
 */
async function counts(t: Asserts, d: string, gone: string[] = []): Promise<Record<string, number>> {
  const mg = await api('GET', `/api/v1/management/dialogs/${d}`);
  t.equal(mg.status, 200);
  const byMg: Record<string, number> = {};
  for (const p of mg.json.data.participants) byMg[p.user_id] = p.unread_count;
  await Promise.all(Object.keys(byMg).map(async (u) => {
    const l = await api('GET', '/api/v1/dialogs', { user: u });
    const item = l.json.data.find((x: any) => x.id === d);
    t.equal(item?.unread_count, byMg[u], `list dialogs agrees for ${u}`);
    const ps = await api('GET', `/api/v1/dialogs/${d}/participants`, { user: u });
    t.equal(ps.status, 200);
    for (const p of ps.json.data) {
      t.equal(p.unread_count, p.user_id === u ? byMg[u] : 0, `participants endpoint as ${u}: row ${p.user_id}`);
    }
  }));
  for (const u of gone) {
    const l = await api('GET', '/api/v1/dialogs', { user: u });
    t.equal(l.json.data.find((x: any) => x.id === d), undefined, `${u} no longer lists the dialog`);
  }
  return byMg;
}

const send = async (d: string, user: string, content: string): Promise<string> => {
  const r = await api('POST', `/api/v1/dialogs/${d}/messages`, { user, body: { content } });
  if (r.status !== 200) throw new Error(`send: ${r.status} ${r.text}`);
  return r.json.data.id;
};
const read = async (d: string, user: string, id: string) => {
  const r = await api('POST', `/api/v1/dialogs/${d}/read`, { user, body: { last_read_message_id: id } });
  if (r.status !== 200) throw new Error(`read: ${r.status} ${r.text}`);
};
const SCOPE = { scope_level0: ['t-unread'] };
const join = async (d: string, user: string, name: string) => {
  const r = await api('POST', `/api/v1/dialogs/${d}/join`, { user, scope: SCOPE, body: { display_name: name, company: '' } });
  if (r.status !== 200) throw new Error(`join: ${r.status} ${r.text}`);
};
const leave = async (d: string, user: string) => {
  const r = await api('POST', `/api/v1/dialogs/${d}/leave`, { user });
  if (r.status !== 200) throw new Error(`leave: ${r.status} ${r.text}`);
};
const messageCount = async (d: string) => Number((await srv.sql('SELECT count(*) AS n FROM messages WHERE dialog_id = $1', [d])).rows[0].n);

t.test('unread counts through a scenario', async (t) => {
  const d = await createDialog(api, {
    object_id: 'unread-1', participants: [{ user_id: 'ua', display_name: 'Anna' }, { user_id: 'ub', display_name: 'Boris' }],
    access_scopes: [SCOPE],
  });
  t.strictSame(await counts(t, d), { ua: 0, ub: 0 }, 'the chat_created system message counts for nobody');

  await send(d, 'ua', 'm1');
  t.strictSame(await counts(t, d), { ua: 0, ub: 1 }, 'send: +1 for others, sender 0');
  const m2 = await send(d, 'ua', 'm2');
  t.strictSame(await counts(t, d), { ua: 0, ub: 2 });
  await send(d, 'ub', 'm3');
  t.strictSame(await counts(t, d), { ua: 1, ub: 0 }, 'sending resets the sender');

  t.equal(await messageCount(d), 4);
  await join(d, 'uc', 'Carl');
  t.strictSame(await counts(t, d), { ua: 1, ub: 0, uc: 4 }, 'join: every message before the join (all types); the join message counts for nobody');

  const add = await api('POST', `/api/v1/management/dialogs/${d}/participants`, { body: { user_id: 'ud', display_name: 'Dana' } });
  t.equal(add.status, 201);
  t.strictSame(await counts(t, d), { ua: 1, ub: 0, uc: 4, ud: 0 }, 'management add starts at 0 despite history');

  const m4 = await send(d, 'ua', 'm4');
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 5, ud: 1 });

  await read(d, 'uc', m4);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 0, ud: 1 }, 'read to the newest message: 0');

  const m5 = await send(d, 'ua', 'm5');
  const m6 = await send(d, 'ua', 'm6');
  t.strictSame(await counts(t, d), { ua: 0, ub: 3, uc: 2, ud: 3 });

  await read(d, 'ub', m5);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 2, ud: 3 }, 'read to an older message: later user messages from others (m6)');
  await read(d, 'ud', m2);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 2, ud: 4 }, 'pointer null → m2: m3 (ub), m4, m5, m6 (ua); the join message is not counted');
  await read(d, 'uc', m2);
  await read(d, 'uc', m4);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 2, ud: 4 }, 'an older or equal pointer changes nothing');

  const del = await api('DELETE', `/api/v1/dialogs/${d}/messages/${m6}`, { user: 'ua' });
  t.equal(del.status, 204);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 2, ud: 4 }, 'deleting a message changes no count');

  await send(d, 'ub', 'm7');
  t.strictSame(await counts(t, d), { ua: 1, ub: 0, uc: 3, ud: 5 });

  await leave(d, 'uc');
  t.strictSame(await counts(t, d, ['uc']), { ua: 1, ub: 0, ud: 5 }, 'the leave message counts for nobody');
  // chat_created, m1, m2, m3, uc joined, m4, m5, m7, uc left (m6 is gone).
  t.equal(await messageCount(d), 9);
  await join(d, 'uc', 'Carl');
  t.strictSame(await counts(t, d), { ua: 1, ub: 0, uc: 9, ud: 5 }, 'rejoin: every message now in the dialog');

  const m8 = await send(d, 'ua', 'm8');
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 10, ud: 6 });
  await read(d, 'uc', m8);
  await read(d, 'ub', m8);
  await read(d, 'ud', m8);
  t.strictSame(await counts(t, d), { ua: 0, ub: 0, uc: 0, ud: 0 });

  // Management remove and re-add: the re-added participant starts at 0 again.
  await send(d, 'ua', 'm9');
  t.equal((await api('DELETE', `/api/v1/management/dialogs/${d}/participants/ud`)).status, 204);
  t.strictSame(await counts(t, d, ['ud']), { ua: 0, ub: 1, uc: 1 });
  t.equal((await api('POST', `/api/v1/management/dialogs/${d}/participants`, { body: { user_id: 'ud', display_name: 'Dana' } })).status, 201);
  t.strictSame(await counts(t, d), { ua: 0, ub: 1, uc: 1, ud: 0 });
});

t.test('constant send cost: 2 vs 200 participants', async (t) => {
  const small = await createDialog(api, {
    object_id: 'cost-small', participants: Array.from({ length: 2 }, (_, i) => ({ user_id: `cs-${i}`, display_name: `S${i}` })),
  });
  const big = await createDialog(api, {
    object_id: 'cost-big', participants: Array.from({ length: 200 }, (_, i) => ({ user_id: `cb-${i}`, display_name: `B${i}` })),
  });

  // A row trigger on every table logs each inserted/updated/deleted row into a side table.
  await srv.sql(`CREATE TABLE test_row_log (tbl text NOT NULL, op text NOT NULL)`);
  await srv.sql(`CREATE FUNCTION test_row_log_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO test_row_log VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$`);
  const tables = (await srv.sql(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'test_row_log'`)).rows.map((r) => r.tablename as string);
  t.ok(['dialogs', 'dialog_participants', 'messages', 'attachments', 'message_edit_history', 'dialog_access_scopes'].every((x) => tables.includes(x)));
  for (const tbl of tables) {
    await srv.sql(`CREATE TRIGGER test_row_log_trg AFTER INSERT OR UPDATE OR DELETE ON "${tbl}" FOR EACH ROW EXECUTE FUNCTION test_row_log_fn()`);
  }
  t.teardown(async () => {
    for (const tbl of tables) await srv.sql(`DROP TRIGGER IF EXISTS test_row_log_trg ON "${tbl}"`);
  });

  const measure = async (d: string, sender: string) => {
    await send(d, sender, 'warm-up');
    await srv.sql('TRUNCATE test_row_log');
    const { statements } = await srv.countStatements(() => send(d, sender, 'measured'));
    const rows = await srv.sql('SELECT tbl, op, count(*)::int AS n FROM test_row_log GROUP BY tbl, op ORDER BY tbl, op');
    return { statements: statements.length, rows: rows.rows as { tbl: string; op: string; n: number }[] };
  };
  const s = await measure(small, 'cs-0');
  const b = await measure(big, 'cb-0');
  t.ok(s.statements > 0);
  t.equal(b.statements, s.statements, `same number of SQL statements (${s.statements})`);
  t.strictSame(b.rows, s.rows, `same rows written: ${JSON.stringify(s.rows)}`);
  const participantRows = s.rows.filter((r) => r.tbl === 'dialog_participants').reduce((n, r) => n + r.n, 0);
  t.equal(participantRows, 1, 'only the sender row is written');
  t.strictSame(s.rows.filter((r) => r.tbl === 'messages'), [{ tbl: 'messages', op: 'INSERT', n: 1 }]);

  // Every participant sees the right count: 2 messages from cb-0, then one from cb-7.
  await send(big, 'cb-7', 'from seven');
  const expected: Record<string, number> = {};
  for (let i = 0; i < 200; i++) expected[`cb-${i}`] = i === 0 ? 1 : i === 7 ? 0 : 3;
  const mg = await api('GET', `/api/v1/management/dialogs/${big}`);
  t.strictSame(Object.fromEntries(mg.json.data.participants.map((p: any) => [p.user_id, p.unread_count])), expected, 'management view');
  const seen: Record<string, number> = {};
  for (let i = 0; i < 200; i += 25) {
    await Promise.all(Array.from({ length: 25 }, async (_, j) => {
      const u = `cb-${i + j}`;
      const l = await api('GET', '/api/v1/dialogs', { user: u });
      seen[u] = l.json.data.find((x: any) => x.id === big)?.unread_count;
    }));
  }
  t.strictSame(seen, expected, 'list dialogs view of every participant');
  const own = await api('GET', `/api/v1/dialogs/${big}/participants`, { user: 'cb-42' });
  t.equal(own.json.data.length, 200);
  t.equal(own.json.data.find((p: any) => p.user_id === 'cb-42').unread_count, 3);
  t.strictSame(await counts(t, small), { 'cs-0': 0, 'cs-1': 2 });
});
