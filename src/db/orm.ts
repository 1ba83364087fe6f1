import { MikroORM, defineConfig, type EntityManager } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/env.js';
import { ALL_ENTITIES } from './entities.js';
import { onRawStatement } from './raw.js';
import { migrationsList } from '../../migrations/index.js';

export type Orm = MikroORM;
export type Em = EntityManager;

// Any fixed number works; it only has to be the same in every process of one deployment.
const MIGRATION_LOCK_KEY = 0x6d7463; // "mtc"

function dbName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** Creates the configured database when it does not exist yet (development convenience). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const name = dbName(databaseUrl);
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } catch (e) {
        // Another process created it between our check and our CREATE.
        if ((e as { code?: string }).code !== '42P04') throw e;
      }
    }
  } finally {
    await client.end();
  }
}

export interface StatementListener {
  (sql: string): void;
}

export async function initOrm(cfg: Config, log: Logger): Promise<Orm> {
  const orm = await MikroORM.init(
    defineConfig({
      clientUrl: cfg.databaseUrl,
      entities: ALL_ENTITIES,
      extensions: [Migrator],
      migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false },
      pool: {
        min: cfg.dbMinConnections,
        max: cfg.dbMaxConnections,
        acquireTimeoutMillis: cfg.dbAcquireTimeoutSecs * 1000,
        idleTimeoutMillis: cfg.dbIdleTimeoutSecs * 1000,
      },
      driverOptions: { connection: { application_name: `mtchat-${cfg.role}` } },
      discovery: { warnWhenNoEntities: false },
      allowGlobalContext: false,
      forceUtcTimezone: true,
      ensureDatabase: false,
      debug: false,
      logger: (m) => log.debug({ orm: m }),
    }),
  );
  return orm;
}

/**
 * Runs pending migrations. A session advisory lock makes concurrent starts safe: one process
 * migrates, the others wait on the lock and then find nothing left to do.
 */
export async function migrate(cfg: Config, orm: Orm, log: Logger): Promise<void> {
  const lock = new pg.Client({ connectionString: cfg.databaseUrl });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const done = await orm.getMigrator().up();
    if (done.length) log.info({ migrations: done.map((m) => m.name) }, 'migrations applied');
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lock.end();
  }
}

/** Calls listener for every SQL statement the ORM's connection pool sends (tests count them). */
export function onStatement(orm: Orm, listener: StatementListener): () => void {
  const knex = orm.em.getKnex();
  const handler = (q: { sql: string }) => listener(q.sql);
  knex.on('query', handler);
  const offRaw = onRawStatement(orm, listener);
  return () => {
    knex.off('query', handler);
    offRaw();
  };
}
