import { v7, validate, version } from 'uuid';

// uuid's v7 keeps a counter within one millisecond, so ids from one process sort in creation order.
export const newId = (): string => v7();

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Any RFC 4122 layout (ids of the original's rows may be v4); answered in lower case. */
export function parseUuid(s: string): string | null {
  return UUID_RE.test(s) ? s.toLowerCase() : null;
}
export const isUuidV7 = (s: string): boolean => validate(s) && version(s) === 7;
