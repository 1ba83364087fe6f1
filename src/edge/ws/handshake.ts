// Who is connecting, decided before the upgrade (spec realtime.md "Connecting"). Failures are
// plain-text HTTP answers; the token itself never reaches a log line.
import { AppError } from '../../domain/errors.js';
import type { IdentityResolver } from '../auth/identity.js';

export interface Rejection {
  status: number;
  message: string;
}

export const STATUS_LINE: Record<number, string> = {
  400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

/**
 * The first value of `key`, form-decoded (`+` is a space), as the original does for the socket.
 * A pair without `=` names nothing (`?user_id` alone is "missing"), as on REST.
 */
export function queryValue(query: string, key: string): string | undefined {
  for (const part of query.split('&')) {
    if (!part.includes('=')) continue;
    for (const [k, v] of new URLSearchParams(part)) if (k === key) return v;
  }
  return undefined;
}

export interface Who {
  userId: string;
  /** Epoch ms when the socket must close (token expiry plus leeway); null = never. */
  closeAt: number | null;
}

export async function identify(identity: IdentityResolver, query: string, leewaySecs: number): Promise<Who | Rejection> {
  if (identity.jwt) {
    const token = queryValue(query, 'token');
    if (token === undefined) return { status: 401, message: 'token query parameter required' };
    try {
      const id = await identity.viaToken(token);
      // REST accepts the token until exp + leeway; the socket lives exactly as long.
      return { userId: id.userId, closeAt: id.expiresAt === null ? null : id.expiresAt + leewaySecs * 1000 };
    } catch (e) {
      if (e instanceof AppError) return { status: e.status, message: e.message };
      throw e;
    }
  }
  const userId = queryValue(query, 'user_id');
  if (userId === undefined) return { status: 400, message: 'Missing user_id query parameter' };
  if (userId === '') return { status: 400, message: 'user_id cannot be empty' };
  return { userId, closeAt: null };
}

/** `?resume=1` (or `true`): hold live delivery until the client's `resume` frame. */
export const wantsResumeHold = (query: string): boolean => ['1', 'true'].includes(queryValue(query, 'resume') ?? '');
