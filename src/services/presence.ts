// Presence in Redis, counted per connection: a user with two tabs stays online until the last one
// closes (or, after a crash, until its entry's TTL lapses). Without Redis there is no presence.
import type { Redis } from 'ioredis';

/** Spec values: entries live 60 s, clients ping every 30 s. */
export const PRESENCE_TTL_MS = 60_000;
const LOOKUP_TIMEOUT_MS = 2_000;

// KEYS[1] = the user's connection set; ARGV = now, ttl, connection id.
// Returns the number of live connections after the change, so the caller sees 0→1 and 1→0.
const CONNECT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`;
const DISCONNECT = `
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])`;
const REFRESH = `
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`;

type Scripted = Redis & Record<'presenceConnect' | 'presenceDisconnect' | 'presenceRefresh', (key: string, now: number, ttl: number, conn: string) => Promise<number>>;

export class Presence {
  private readonly redis: Scripted;
  constructor(redis: Redis, private readonly prefix: string, private readonly ttlMs = PRESENCE_TTL_MS) {
    redis.defineCommand('presenceConnect', { numberOfKeys: 1, lua: CONNECT });
    redis.defineCommand('presenceDisconnect', { numberOfKeys: 1, lua: DISCONNECT });
    redis.defineCommand('presenceRefresh', { numberOfKeys: 1, lua: REFRESH });
    this.redis = redis as Scripted;
  }

  private key(userId: string): string {
    return `${this.prefix}${userId}`;
  }

  /** Registers a connection; true when the user just came online. */
  async connected(userId: string, connId: string): Promise<boolean> {
    return (await this.redis.presenceConnect(this.key(userId), Date.now(), this.ttlMs, connId)) === 1;
  }

  /** Removes a connection; true when it was the user's last one. */
  async disconnected(userId: string, connId: string): Promise<boolean> {
    return (await this.redis.presenceDisconnect(this.key(userId), Date.now(), this.ttlMs, connId)) === 0;
  }

  /** A client ping keeps its connection alive for another TTL. */
  async refresh(userId: string, connId: string): Promise<void> {
    await this.redis.presenceRefresh(this.key(userId), Date.now(), this.ttlMs, connId);
  }

  /** Who among `ids` is online; everybody offline when Redis does not answer within 2 s. */
  async online(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const now = Date.now();
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.zcount(this.key(id), now, '+inf');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), LOOKUP_TIMEOUT_MS);
    });
    try {
      const results = await Promise.race([pipeline.exec(), timeout]);
      if (!results) return new Set();
      return new Set(ids.filter((_, i) => !results[i][0] && Number(results[i][1]) > 0));
    } catch {
      return new Set();
    } finally {
      clearTimeout(timer);
    }
  }
}
