import t from 'tap';
import { RetentionSweeper } from '../../src/actors/retention.js';
import { PARTITION_COUNT, partitionOf } from '../../src/domain/partition.js';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';

t.test('old events and command records are pruned; recent ones and other partitions stay', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api = client(srv.url);
  const id = await createDialog(api, { participants: [{ user_id: 'a', display_name: 'A' }] });
  for (let i = 0; i < 3; i++) await api('POST', `/api/v1/dialogs/${id}/messages`, { user: 'a', body: { content: `m${i}` } });
  // Age the first two events and every command record by ten days.
  await srv.sql(`UPDATE dialog_events SET created_at = now() - interval '10 days' WHERE dialog_id = $1 AND seq <= 2`, [id]);
  await srv.sql(`UPDATE command_log SET created_at = now() - interval '10 days'`);
  const commandsBefore = Number((await srv.sql('SELECT count(*) FROM command_log')).rows[0].count);

  const log = srv.app.log;
  const notMine = new RetentionSweeper(srv.app.orm, () => [...Array(PARTITION_COUNT).keys()].filter((p) => p !== partitionOf(id)), { eventRetentionSecs: 86400 }, log);
  const first = await notMine.pruneOnce();
  t.equal(first.events, 0, 'a worker never prunes a partition it does not own');

  const mine = new RetentionSweeper(srv.app.orm, () => [partitionOf(id)], { eventRetentionSecs: 86400 }, log);
  const second = await mine.pruneOnce();
  t.equal(second.events, 2, 'the owner prunes its own old events');
  t.equal(second.commands, 0, 'the command log was already pruned by the first pass');
  const seqs = (await srv.sql('SELECT seq::int FROM dialog_events WHERE dialog_id = $1 ORDER BY seq', [id])).rows.map((r) => r.seq);
  t.same(seqs, [3, 4], 'events older than the retention are gone, recent ones stay');
  t.equal(first.commands, commandsBefore, 'command records older than a day are pruned');
});

t.test('a sweep goes on past one batch until everything old is gone (it keeps up with a high send rate)', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  await srv.sql(`INSERT INTO command_log (request_id, result, created_at)
    SELECT 'old-' || g, 'null'::jsonb, now() - interval '10 days' FROM generate_series(1, 12001) g`);
  await srv.sql(`INSERT INTO command_log (request_id, result, created_at) VALUES ('fresh', 'null'::jsonb, now())`);
  const sweeper = new RetentionSweeper(srv.app.orm, () => [], { eventRetentionSecs: 86400 }, srv.app.log);
  await sweeper.sweep();
  const left = (await srv.sql(`SELECT request_id FROM command_log WHERE request_id LIKE 'old-%' OR request_id = 'fresh'`)).rows;
  t.same(left.map((r) => r.request_id), ['fresh'], '12,001 old records (more than two batches) gone in one sweep, the fresh one kept');
});
