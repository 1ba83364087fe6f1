import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../domain/errors.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Management API guard. The token is read once (constructor) and compared by digest in constant time. */
export class AdminAuth {
  private readonly expected: Buffer | null;
  constructor(token: string | null) {
    this.expected = token ? digest(token) : null;
  }
  get open(): boolean {
    return this.expected === null;
  }
  check(authorization: string | undefined): void {
    if (!this.expected) return;
    if (authorization === undefined) throw new AppError(401, 'UNAUTHORIZED', 'Authorization header required');
    if (!authorization.startsWith('Bearer ')) {
      throw new AppError(401, 'UNAUTHORIZED', 'Invalid authorization format. Use: Bearer <token>');
    }
    if (!timingSafeEqual(digest(authorization.slice(7)), this.expected)) {
      throw new AppError(403, 'FORBIDDEN', 'Invalid admin token');
    }
  }
}
