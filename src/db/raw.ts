// Plain node-postgres on a connection borrowed from the ORM's pool (same pool, same size), for
// the hot path: no query builder, and statements without parameters can share a round trip
// ("BEGIN; SELECT …", "WITH … ; COMMIT").
import type pg from 'pg';
import type { Orm } from './orm.js';

export type Row = Record<string, any>;

export interface RawTx {
  /** One statement with $n parameters. */
  query(text: string, values: unknown[]): Promise<Row[]>;
  /** Statements without parameters in one round trip; the rows of each. */
  script(text: string): Promise<Row[][]>;
}

type Listener = (sql: string) => void;
const listeners = new WeakMap<Orm, Set<Listener>>();

/** Tests count statements: every statement sent here is reported like the ORM's own. */
export function onRawStatement(orm: Orm, l: Listener): () => void {
  let set = listeners.get(orm);
  if (!set) listeners.set(orm, (set = new Set()));
  set.add(l);
  return () => set.delete(l);
}

interface KnexClient {
  acquireConnection(): Promise<pg.Client>;
  releaseConnection(c: pg.Client): Promise<void>;
}

/**
 * Runs `fn` in a transaction on one pooled connection. `begin` is sent together with BEGIN; `fn`
 * sends the rest and its last script ends with COMMIT (see `commitWith`). Rolls back on error.
 */
export async function rawTransaction<T>(orm: Orm, begin: string, fn: (tx: RawTx, first: Row[]) => Promise<T>): Promise<T> {
  const knex = orm.em.getKnex() as unknown as { client: KnexClient };
  const conn = await knex.client.acquireConnection();
  const heard = listeners.get(orm);
  const tx: RawTx = {
    async query(text, values) {
      heard?.forEach((l) => l(text));
      return (await conn.query(text, values)).rows;
    },
    async script(text) {
      heard?.forEach((l) => l(text));
      const res = (await conn.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
      return (Array.isArray(res) ? res : [res]).map((r) => r.rows);
    },
  };
  try {
    const [, first] = await tx.script(`BEGIN; ${begin}`);
    return await fn(tx, first);
  } catch (e) {
    // Harmless when nothing is open (a failed BEGIN, or a failure after COMMIT).
    await conn.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    await knex.client.releaseConnection(conn);
  }
}

/** One statement outside any transaction, on a pooled connection (reads on hot paths). */
export async function rawQuery(orm: Orm, text: string, values: unknown[]): Promise<Row[]> {
  const knex = orm.em.getKnex() as unknown as { client: KnexClient };
  const conn = await knex.client.acquireConnection();
  try {
    listeners.get(orm)?.forEach((l) => l(text));
    return (await conn.query(text, values)).rows;
  } finally {
    await knex.client.releaseConnection(conn);
  }
}

/** `text` with COMMIT in the same round trip: the caller's last script of a rawTransaction. */
export const commitWith = (text: string): string => `${text}; COMMIT`;

/**
 * A JSON value as a literal, for statements without parameters: dollar-quoted with a tag the text
 * does not contain, so nothing inside needs escaping (escapeLiteral walks every character in JS).
 */
export function jsonLiteral(v: unknown): string {
  const text = JSON.stringify(v);
  let tag = 'j';
  while (text.includes(`$${tag}$`)) tag += 'j';
  return `$${tag}$${text}$${tag}$::jsonb`;
}
