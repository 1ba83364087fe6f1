import type { Em } from '../orm.js';
import type { ScopeLevels } from '../../domain/scope.js';

export type Row = Record<string, any>;

/** Runs one raw statement in the EntityManager's current transaction, if any. */
export function query(em: Em, sql: string, params: unknown[] = []): Promise<Row[]> {
  return em.getConnection().execute(sql, params as any[], 'all', em.getTransactionContext());
}

/**
 * The driver would expand a JS array into a list of placeholders, so arrays travel as one JSON
 * parameter and are unpacked in SQL.
 */
export const json = (v: unknown): string => JSON.stringify(v);
export const TEXT_ARRAY = `ARRAY(SELECT jsonb_array_elements_text(?::jsonb))`;
/** `col ${UUID_IN}` matches a JSON list of ids; `= ANY(ARRAY(...))` lets the planner use the index. */
export const UUID_IN = `= ANY(ARRAY(SELECT (jsonb_array_elements_text(?::jsonb))::uuid))`;

/** CTE `us` with the caller's three scope levels; join it with `CROSS JOIN us`. */
export const userScopeCte = (scope: ScopeLevels): [string, unknown[]] => [
  `us AS (SELECT ${TEXT_ARRAY} AS l0, ${TEXT_ARRAY} AS l1, ${TEXT_ARRAY} AS l2)`,
  [json(scope.scope_level0), json(scope.scope_level1), json(scope.scope_level2)],
];

/** "Accessible by scope": some scope row of dialog `d` matches the caller on all three levels. */
export const SCOPE_MATCH = `EXISTS (SELECT 1 FROM dialog_access_scopes s WHERE s.dialog_id = d.id
  AND (cardinality(s.scope_level0) = 0 OR s.scope_level0 && us.l0)
  AND (cardinality(s.scope_level1) = 0 OR s.scope_level1 && us.l1)
  AND (cardinality(s.scope_level2) = 0 OR s.scope_level2 && us.l2))`;
export const HAS_NO_SCOPES = `NOT EXISTS (SELECT 1 FROM dialog_access_scopes s0 WHERE s0.dialog_id = d.id)`;

/** Case-insensitive substring pattern with LIKE's wildcards taken literally. */
export const likePattern = (s: string): string => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
export const SEARCH_MATCH = `(d.title ILIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM dialog_participants ps
  WHERE ps.dialog_id = d.id AND ps.company ILIKE ? ESCAPE '\\'))`;
