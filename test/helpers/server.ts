// Starts the real service in-process against a database of its own, on an ephemeral port.
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/env.js';
import { startApp, type RunningApp } from '../../src/app.js';
import { onStatement } from '../../src/db/orm.js';
import { createLogger } from '../../src/observability/logger.js';
import type { DomainEvent } from '../../src/domain/events.js';

/** Removes every JetStream stream (KV buckets included) this run's namespace created. */
export async function deleteNamespaceStreams(namespace: string): Promise<void> {
  const nc = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222' });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const info of jsm.streams.list()) {
      if (info.config.name.includes(namespace)) await jsm.streams.delete(info.config.name);
    }
  } finally {
    await nc.close();
  }
}

export const PG_BASE = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

export interface TestServer {
  url: string;
  app: RunningApp;
  dbName: string;
  namespace: string;
  /** Every event published after commit, in order. */
  events: DomainEvent[];
  /** Counts SQL statements sent while fn runs. */
  countStatements<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }>;
  /** A plain pg client on the test database, for assertions and fault injection. */
  sql(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const dbName = `mtchat_test_${id}`;
  const namespace = `t_${id}`;
  const cfg = loadConfig({
    DATABASE_URL: `${PG_BASE}/${dbName}`,
    DATABASE_MIN_CONNECTIONS: '0',
    DATABASE_MAX_CONNECTIONS: '5',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    MTCHAT_NAMESPACE: namespace,
    // No storage unless a test asks for it (S3_* variables, or MTCHAT_DEV_S3: 'true').
    MTCHAT_DEV_S3: 'false',
    ...env,
  });
  const app = await startApp(cfg, createLogger(cfg.logLevel));
  const events: DomainEvent[] = [];
  app.bus.subscribe((e) => {
    events.push(e);
  });
  const client = new pg.Client({ connectionString: `${PG_BASE}/${dbName}` });
  await client.connect();
  return {
    url: `http://127.0.0.1:${app.port}`,
    app,
    dbName,
    namespace,
    events,
    async countStatements(fn) {
      const statements: string[] = [];
      const off = onStatement(app.orm, (s) => statements.push(s));
      try {
        const result = await fn();
        return { result, statements };
      } finally {
        off();
      }
    },
    sql: (text, params) => client.query(text, params as unknown[]),
    async close() {
      await client.end();
      await app.close();
      await deleteNamespaceStreams(namespace);
      const admin = new pg.Client({ connectionString: `${PG_BASE}/postgres` });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
      await admin.end();
    },
  };
}
