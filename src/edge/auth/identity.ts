import type { Config } from '../../config/env.js';
import { AppError, badRequest } from '../../domain/errors.js';
import { JwtVerifier, type VerifiedToken } from './jwt.js';

export interface Identity {
  userId: string;
  /** Scope from signed claims; null unless JWT_SCOPE_CLAIMS is configured. */
  tokenScope: VerifiedToken['scope'];
  expiresAt: number | null;
}

/**
 * Who is acting. In JWT mode only the verified claim counts: a `user_id` query parameter is
 * accepted (the original SDK always sends it) and ignored. In legacy mode the query names the user.
 */
export class IdentityResolver {
  private readonly verifier: JwtVerifier | null;
  constructor(cfg: Config) {
    this.verifier = cfg.jwtEnabled ? new JwtVerifier(cfg) : null;
  }
  get jwt(): boolean {
    return this.verifier !== null;
  }

  /** `query` is the raw query string (without `?`). */
  async fromRest(authorization: string | undefined, query: string): Promise<Identity> {
    if (this.verifier) {
      if (authorization === undefined || !authorization.startsWith('Bearer ')) {
        throw new AppError(401, 'UNAUTHORIZED', 'Authorization header required');
      }
      return this.viaToken(authorization.slice(7));
    }
    const userId = firstOf(query, 'user_id', 'sender_id');
    if (userId === undefined) throw badRequest('user_id query parameter required');
    if (userId === '') throw badRequest('user_id cannot be empty');
    return { userId, tokenScope: null, expiresAt: null };
  }

  async viaToken(token: string): Promise<Identity> {
    if (!this.verifier) throw new Error('JWT is not enabled');
    const v = await this.verifier.verify(token);
    return { userId: v.userId, tokenScope: v.scope, expiresAt: v.expiresAt };
  }
}

// As the original, a pair without `=` (`?user_id`) names nobody and is skipped; URLSearchParams
// would read it as an empty value. Pairs are form-decoded (`+` is a space), matching the SDK.
function firstOf(query: string, ...keys: string[]): string | undefined {
  for (const part of query.split('&')) {
    if (!part.includes('=')) continue;
    for (const [k, v] of new URLSearchParams(part)) if (keys.includes(k)) return v;
  }
  return undefined;
}
