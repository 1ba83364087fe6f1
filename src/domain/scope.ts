import { badRequest, invalidInput } from './errors.js';
import { MAX_SCOPE_VALUE, byteLength } from './limits.js';

export interface ScopeLevels {
  scope_level0: string[];
  scope_level1: string[];
  scope_level2: string[];
}
export const LEVELS = ['scope_level0', 'scope_level1', 'scope_level2'] as const;

/** A scope row matches when every level is a wildcard (empty) or shares a value with the user. */
export function scopeRowMatches(row: ScopeLevels, user: ScopeLevels): boolean {
  return LEVELS.every((l) => row[l].length === 0 || row[l].some((v) => user[l].includes(v)));
}
export const accessibleByScope = (rows: ScopeLevels[], user: ScopeLevels): boolean =>
  rows.some((r) => scopeRowMatches(r, user));

/** Sorted, de-duplicated levels: the form find-dialog compares. */
export function normaliseScope(s: ScopeLevels): ScopeLevels {
  const norm = (a: string[]) => [...new Set(a)].sort();
  return { scope_level0: norm(s.scope_level0), scope_level1: norm(s.scope_level1), scope_level2: norm(s.scope_level2) };
}
const scopeKey = (s: ScopeLevels) => JSON.stringify(normaliseScope(s));

/** Set equality of two scope collections, ignoring the order of scopes and of values. */
export function scopeSetsEqual(a: ScopeLevels[], b: ScopeLevels[]): boolean {
  if (a.length !== b.length) return false;
  const ka = new Set(a.map(scopeKey));
  const kb = new Set(b.map(scopeKey));
  for (const k of ka) if (!kb.has(k)) return false;
  for (const k of kb) if (!ka.has(k)) return false;
  return true;
}

export function checkScopeValues(s: ScopeLevels): void {
  for (const l of LEVELS) {
    for (const v of s[l]) {
      if (v.length === 0) throw invalidInput(`${l} values must not be empty`);
      if (byteLength(v) > MAX_SCOPE_VALUE) throw invalidInput(`${l} values exceed maximum length of ${MAX_SCOPE_VALUE} characters`);
    }
  }
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses the X-Scope-Config header value (standard, padded base64 of a JSON object).
 * Returns null when the header is absent; a value that is not visible ASCII counts as absent.
 */
export function parseScopeHeader(value: string | undefined): ScopeLevels | null {
  if (value === undefined || value === '' || !/^[\x21-\x7e]*$/.test(value)) return null;
  if (!BASE64_RE.test(value)) throw badRequest('Invalid X-Scope-Config: not valid base64');
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  } catch {
    throw badRequest('Invalid X-Scope-Config: not valid JSON');
  }
  const scope = scopeFromObject(doc);
  if (!scope) throw badRequest('Invalid X-Scope-Config: not valid JSON');
  return scope;
}

/** A JSON object whose optional level keys are arrays of strings; null when it is not. */
export function scopeFromObject(doc: unknown): ScopeLevels | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return null;
  const out: ScopeLevels = { scope_level0: [], scope_level1: [], scope_level2: [] };
  for (const l of LEVELS) {
    const v = (doc as Record<string, unknown>)[l];
    if (v === undefined) continue;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return null;
    out[l] = v as string[];
  }
  return out;
}
