import t from 'tap';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/env.js';
import { ensureDatabase, initOrm, migrate } from '../../src/db/orm.js';
import { partitionOf } from '../../src/domain/partition.js';
import { createLogger } from '../../src/observability/logger.js';
import { Migration20261204000001_baseline } from '../../migrations/Migration20261204000001_baseline.js';
import { PG_BASE } from '../helpers/server.js';

const log = createLogger('silent');

async function withDatabase(t: { teardown(fn: () => Promise<void>): void }, fn: (url: string, sql: pg.Client) => Promise<void>): Promise<void> {
  const name = `mtchat_test_mig_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = `${PG_BASE}/${name}`;
  await ensureDatabase(url);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  t.teardown(async () => {
    await sql.end();
    const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  });
  await fn(url, sql);
}

t.test('several processes starting at once: one migrates, the others wait and find nothing to do', async (t) => {
  await withDatabase(t, async (url, sql) => {
    const cfg = loadConfig({ DATABASE_URL: url, DATABASE_MIN_CONNECTIONS: '0', DATABASE_MAX_CONNECTIONS: '2' });
    const orms = await Promise.all([1, 2, 3, 4].map(() => initOrm(cfg, log)));
    await Promise.all(orms.map((o) => migrate(cfg, o, log)));
    await Promise.all(orms.map((o) => o.close(true)));
    const { rows } = await sql.query('SELECT name FROM mikro_orm_migrations ORDER BY id');
    t.same(rows.map((r) => r.name), ['Migration20261204000001_baseline', 'Migration20261204000002_cluster', 'Migration20261204000003_events', 'Migration20261204000004_archive_activity', 'Migration20261205000001_participant_order'], 'each migration applied exactly once');
  });
});

t.test("an existing database of the original is adopted and backfilled, not rejected", async (t) => {
  await withDatabase(t, async (url, sql) => {
    // Build the original's schema the way the original would have left it.
    const baseline = new Migration20261204000001_baseline(undefined as never, undefined as never);
    await baseline.up();
    for (const q of baseline.getQueries()) await sql.query(typeof q === 'string' ? q : q.toString());
    const dialogId = '0195a0c2-7d3e-4b41-9f2a-3c5d6e7f8a90';
    await sql.query(`INSERT INTO dialogs (id, object_id, object_type) VALUES ($1, 'o', 't')`, [dialogId]);
    await sql.query(`INSERT INTO dialog_participants (user_id, dialog_id, unread_count) VALUES ('u1', $1, 2), ('u2', $1, 0)`, [dialogId]);
    await sql.query(`INSERT INTO messages (id, dialog_id, sender_id, content) VALUES
      ('0195a0c2-7d3e-4b41-9f2a-000000000001', $1, 'u2', 'a'), ('0195a0c2-7d3e-4b41-9f2a-000000000002', $1, 'u2', 'b')`, [dialogId]);

    const cfg = loadConfig({ DATABASE_URL: url, DATABASE_MIN_CONNECTIONS: '0', DATABASE_MAX_CONNECTIONS: '2' });
    const orm = await initOrm(cfg, log);
    await migrate(cfg, orm, log);
    await orm.close(true);

    const d = (await sql.query('SELECT partition, user_msg_count::int AS c, last_seq::int AS s FROM dialogs')).rows[0];
    t.equal(d.partition, partitionOf(dialogId), 'SQL backfill computes the same partition as the application');
    t.equal(d.c, 2, 'user message clock backfilled');
    t.equal(d.s, 0);
    const p = (await sql.query(`SELECT user_id, (unread_count + ${d.c} - read_mark)::int AS unread FROM dialog_participants ORDER BY user_id`)).rows;
    t.same(p, [{ user_id: 'u1', unread: 2 }, { user_id: 'u2', unread: 0 }], 'unread counts a client sees are unchanged');
  });
});
