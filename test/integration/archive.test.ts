// Auto-archive: inactive dialogs of the owned partitions are archived on ARCHIVE_CRON, the users
// whose state changed are told, and a new user message brings the dialog back for everyone.
import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../../src/config/env.js';
import { ArchiveSweeper } from '../../src/delivery/archive-sweeper.js';
import { startDelivery } from '../../src/delivery/index.js';
import { partitionOf } from '../../src/domain/partition.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';
import { until } from '../helpers/webhook-receiver.js';

// The service's own sweeper (if its worker runs one) never fires during the test; the tests drive
// sweeps themselves: directly, and through startDelivery with a schedule of every second.
const env = { ARCHIVE_CRON: '0 0 0 1 1 *', ARCHIVE_AFTER_SECS: '3600' };
const srv = await startTestServer(env);
t.teardown(() => srv.close());
const api = client(srv.url);
const M = '/api/v1/management/dialogs';
const owned = new Set<number>();
/** Partitions of dialogs that must stay with "another worker" for the whole test. */
const foreign = new Set<number>();

const people = (prefix: string, ...users: string[]) => users.map((u) => ({ user_id: `${prefix}-${u}`, display_name: u.toUpperCase() }));
/** Makes a dialog look untouched for two hours: created then, every message sent then. */
async function age(id: string): Promise<void> {
  await srv.sql(`UPDATE dialogs SET created_at = now() - interval '2 hours' WHERE id = $1`, [id]);
  await srv.sql(`UPDATE messages SET sent_at = now() - interval '2 hours' WHERE dialog_id = $1`, [id]);
}
async function ownedDialog(body: Record<string, unknown>): Promise<string> {
  let id = await createDialog(api, body);
  while (foreign.has(partitionOf(id))) id = await createDialog(api, body);
  owned.add(partitionOf(id));
  return id;
}
const archivedFlags = async (id: string) =>
  (await srv.sql('SELECT user_id, is_archived FROM dialog_participants WHERE dialog_id = $1 ORDER BY user_id', [id])).rows.map((r) => [r.user_id, r.is_archived]);
const archivedEvents = (from = 0, ids?: string[]) => srv.events.slice(from)
  .filter((e) => e.event.type === 'dialog.archived' && (!ids || ids.includes(e.dialogId)))
  .map((e) => ({ dialogId: e.dialogId, toParticipants: e.toParticipants, toUsers: e.toUsers, event: e.event }));
const archivedTo = (dialogId: string, user: string): Partial<DomainEvent> =>
  ({ dialogId, toParticipants: false, toUsers: [user], event: { type: 'dialog.archived', dialog_id: dialogId } });
const byKey = (a: Partial<DomainEvent>, b: Partial<DomainEvent>) =>
  `${a.dialogId}${a.toUsers}`.localeCompare(`${b.dialogId}${b.toUsers}`);

t.test('an invalid ARCHIVE_CRON refuses to start', async (t) => {
  t.throws(() => loadConfig({ ARCHIVE_CRON: '*/5 * * * *' }), { message: 'Invalid configuration: ARCHIVE_CRON must have six fields, seconds first' }, 'five fields');
  t.throws(() => new ArchiveSweeper(srv.app.orm, srv.app.bus, () => [], { cron: '99 * * * * *', afterSecs: 1, batchSize: 10 }, srv.app.log), 'the sweeper refuses an invalid schedule');
});

t.test('one sweep: inactive dialogs of owned partitions archived, events only to users whose state changed', async (t) => {
  const sweeper = new ArchiveSweeper(srv.app.orm, srv.app.bus, () => [...owned], { cron: '0 0 0 1 1 *', afterSecs: 3600, batchSize: 1000 }, srv.app.log);

  const old = await ownedDialog({ object_id: 'ar-old', participants: people('ar1', 'a', 'b', 'c') });
  t.equal((await api('POST', `/api/v1/dialogs/${old}/archive`, { user: 'ar1-c' })).status, 200, 'c archived it by hand');
  await age(old);
  // Created empty, filled through the Management API: no message at all (finding B15).
  const emptyFresh = await ownedDialog({ object_id: 'ar-empty-fresh', participants: [] });
  t.equal((await api('POST', `${M}/${emptyFresh}/participants`, { body: { user_id: 'ar2-x', display_name: 'X' } })).status, 201);
  await srv.sql('DELETE FROM messages WHERE dialog_id = $1', [emptyFresh]);
  const emptyOld = await ownedDialog({ object_id: 'ar-empty-old', participants: [] });
  t.equal((await api('POST', `${M}/${emptyOld}/participants`, { body: { user_id: 'ar3-y', display_name: 'Y' } })).status, 201);
  await srv.sql('DELETE FROM messages WHERE dialog_id = $1', [emptyOld]);
  await age(emptyOld);
  const recent = await ownedDialog({ object_id: 'ar-recent', participants: people('ar4', 'a', 'b') });
  await age(recent);
  t.equal((await api('POST', `/api/v1/dialogs/${recent}/messages`, { user: 'ar4-a', body: { content: 'still here' } })).status, 200);
  const allArchived = await ownedDialog({ object_id: 'ar-all', participants: people('ar5', 'a') });
  t.equal((await api('POST', `/api/v1/dialogs/${allArchived}/archive`, { user: 'ar5-a' })).status, 200);
  await age(allArchived);
  let other = await createDialog(api, { object_id: 'ar-other', participants: people('ar6', 'a') });
  while (owned.has(partitionOf(other))) other = await createDialog(api, { object_id: 'ar-other', participants: people('ar6', 'a') });
  foreign.add(partitionOf(other));
  await age(other);

  const from = srv.events.length;
  const first = await srv.countStatements(() => sweeper.sweepOnce());
  t.same(first.result.map((r) => `${r.dialog_id}/${r.user_id}`).sort(), [`${old}/ar1-a`, `${old}/ar1-b`, `${emptyOld}/ar3-y`].sort(), 'exactly the changed participants');
  t.same(await archivedFlags(old), [['ar1-a', true], ['ar1-b', true], ['ar1-c', true]]);
  t.same(await archivedFlags(emptyOld), [['ar3-y', true]], 'an empty dialog created long ago is archived');
  t.same(await archivedFlags(emptyFresh), [['ar2-x', false]], 'an empty dialog created just now is not (B15)');
  t.same(await archivedFlags(recent), [['ar4-a', false], ['ar4-b', false]], 'a recent message keeps the dialog active');
  t.same(await archivedFlags(other), [['ar6-a', false]], 'another worker\'s partition is not swept');
  t.same(archivedEvents(from).sort(byKey), [archivedTo(old, 'ar1-a'), archivedTo(old, 'ar1-b'), archivedTo(emptyOld, 'ar3-y')].sort(byKey),
    'dialog.archived to a and b (not c, who had archived it) and y; nobody else');

  // More inactive dialogs, same statements: the sweep's cost in queries does not grow with the data.
  const more = [];
  for (let i = 0; i < 3; i++) {
    const id = await ownedDialog({ object_id: `ar-more-${i}`, participants: people(`ar7${i}`, 'a', 'b') });
    await age(id);
    more.push(id);
  }
  const second = await srv.countStatements(() => sweeper.sweepOnce());
  t.equal(second.result.length, 6, 'three dialogs × two participants');
  t.equal(second.statements.length, first.statements.length, 'constant number of statements per sweep');
  t.ok(second.statements.length <= 4, `at most a transaction and two statements (got ${second.statements.length})`);

  const third = await sweeper.sweepOnce();
  t.same(third, [], 'nothing left to do: the sweep is idempotent');
});

t.test('on ARCHIVE_CRON: archived, then unarchived for everyone by a new user message', async (t) => {
  const nc = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222' });
  const cfg = loadConfig({ ...env, ARCHIVE_CRON: '* * * * * *', MTCHAT_NAMESPACE: srv.namespace });
  const delivery = await startDelivery({ cfg, orm: srv.app.orm, nc, log: srv.app.log, publisher: srv.app.bus, ownedPartitions: () => [...owned] });
  t.teardown(async () => {
    await delivery.stop();
    await nc.close();
  });

  const from = srv.events.length;
  const d = await ownedDialog({ object_id: 'ar-live', participants: people('ar8', 'a', 'b') });
  await age(d);
  await until('the scheduled sweep archives it', () => archivedEvents(from, [d]).length === 2);
  t.same(archivedEvents(from, [d]).sort(byKey), [archivedTo(d, 'ar8-a'), archivedTo(d, 'ar8-b')]);
  t.same(await archivedFlags(d), [['ar8-a', true], ['ar8-b', true]]);

  const before = srv.events.length;
  const sent = await api('POST', `/api/v1/dialogs/${d}/messages`, { user: 'ar8-a', body: { content: 'back again' } });
  t.equal(sent.status, 200);
  const after = srv.events.slice(before).filter((e) => e.dialogId === d);
  t.same(after.map((e) => [e.event.type, e.toParticipants]), [['dialog.unarchived', true], ['message.new', true]], 'dialog.unarchived to all participants, before message.new');
  t.same(await archivedFlags(d), [['ar8-a', false], ['ar8-b', false]]);

  // A probe aged after the send is archived by a later sweep; that sweep left the active dialog alone.
  const probe = await ownedDialog({ object_id: 'ar-probe', participants: people('ar9', 'a') });
  await age(probe);
  await until('a later sweep', () => archivedEvents(before, [probe]).length === 1);
  t.same(await archivedFlags(d), [['ar8-a', false], ['ar8-b', false]], 'not archived again');
  t.same(archivedEvents(before, [d]), [], 'no further dialog.archived for it');
});
