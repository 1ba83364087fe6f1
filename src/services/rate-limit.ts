// Token-bucket rate limiting per client key (spec/configuration.md "Rate limiting").
//
// Bucket: capacity `burst`, refilled continuously at `rps` tokens/s, one token per request.
// A denied request gets Retry-After = ceil(seconds until one token is available), at least 1.
//
// - MemoryRateLimiter: per process, a Map of buckets; full buckets are evicted lazily (a full
//   bucket is indistinguishable from a missing one), so memory stays bounded by the number of
//   keys seen within one full-refill window.
// - RedisRateLimiter: cluster-wide, one atomic Lua script per request. Any Redis error (down,
//   timeout, script failure) falls back to the in-process bucket for that call; a request is
//   never failed because of the limiter.
import { BlockList, isIP } from 'node:net';
import type { Redis } from 'ioredis';

export interface RateDecision {
  allowed: boolean;
  retryAfterSecs: number;
}

export interface RateLimiter {
  take(key: string): Promise<RateDecision>;
  close(): Promise<void>;
}

function checkParams(rps: number, burst: number): void {
  if (!Number.isFinite(rps) || rps <= 0) throw new RangeError(`rate limiter rps must be > 0 (got ${rps})`);
  if (!Number.isFinite(burst) || burst < 1) throw new RangeError(`rate limiter burst must be >= 1 (got ${burst})`);
}

function retryAfterFromMs(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

// ---------------------------------------------------------------------------------------------
// In-process

interface Bucket {
  tokens: number;
  /** clock reading (ms) at which `tokens` was computed */
  at: number;
}

/** Sweep at least this often (ms of the limiter's clock) … */
const SWEEP_INTERVAL_MS = 10_000;
/** … and also whenever the map has grown past this (doubled after each sweep). */
const SWEEP_MIN_SIZE = 1024;

export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep: number;
  private sweepAtSize = SWEEP_MIN_SIZE;

  /**
   * @param now clock in milliseconds; defaults to the monotonic `performance.now()` so wall-clock
   *   jumps neither mint nor swallow tokens.
   */
  constructor(
    private readonly rps: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    checkParams(rps, burst);
    this.lastSweep = now();
  }

  /** number of buckets currently held (full buckets may linger until the next sweep) */
  get size(): number {
    return this.buckets.size;
  }

  take(key: string): Promise<RateDecision> {
    return Promise.resolve(this.takeSync(key));
  }

  takeSync(key: string): RateDecision {
    const now = this.now();
    this.maybeSweep(now);
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = this.level(b, now);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterSecs: 0 };
    }
    return { allowed: false, retryAfterSecs: retryAfterFromMs(((1 - b.tokens) * 1000) / this.rps) };
  }

  /** Drops every bucket that has refilled completely. Called lazily from take(); public for tests. */
  sweep(now: number = this.now()): void {
    for (const [key, b] of this.buckets) {
      if (this.level(b, now) >= this.burst) this.buckets.delete(key);
    }
    this.lastSweep = now;
    this.sweepAtSize = Math.max(SWEEP_MIN_SIZE, this.buckets.size * 2);
  }

  close(): Promise<void> {
    this.buckets.clear();
    return Promise.resolve();
  }

  private level(b: Bucket, now: number): number {
    const elapsed = Math.max(0, now - b.at);
    return Math.min(this.burst, b.tokens + (elapsed * this.rps) / 1000);
  }

  private maybeSweep(now: number): void {
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS || this.buckets.size >= this.sweepAtSize) this.sweep(now);
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

// Time source: the script reads the Redis server's TIME rather than taking the client's clock as
// an argument. Every app node sharing a bucket then uses one clock; with client time, a node whose
// clock runs ahead would mint tokens (and one running behind would see "negative" elapsed time).
// Redis >= 5 replicates scripts by effects, so calling TIME before a write is allowed there (the
// guarded replicate_commands() call covers 3.2/4; it is a no-op on 7).
//
// Lua numbers travel as %.17g strings into HSET, so fractional token counts survive; the reply is
// {allowed (0/1), wait_ms (integer)} because Lua numbers are truncated to integers in replies.
const TOKEN_BUCKET_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', KEYS[1], 'tk', 'ts')
local tokens = tonumber(h[1])
local ts = tonumber(h[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tk', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {allowed, wait_ms}
`;

const COMMAND = 'mtchatTokenBucket';

type WithTokenBucket = Redis & {
  [COMMAND](key: string, rps: number, burst: number): Promise<unknown>;
};

export interface RedisRateLimiterOptions {
  rps: number;
  burst: number;
  /** key prefix, e.g. `${namespace}:rl:` */
  prefix: string;
  /** used for a call whenever Redis fails */
  fallback: MemoryRateLimiter;
  onFallback?: (err: Error) => void;
  /**
   * Upper bound (ms) on one Redis round trip before the call falls back; guards against a client
   * configured with an offline queue/retries that would otherwise hold the request. Default 250.
   */
  timeoutMs?: number;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: WithTokenBucket;
  private readonly rps: number;
  private readonly burst: number;
  private readonly prefix: string;
  private readonly fallback: MemoryRateLimiter;
  private readonly onFallback: ((err: Error) => void) | undefined;
  private readonly timeoutMs: number;

  /** The Redis connection is borrowed: close() does not quit it. */
  constructor(redis: Redis, opts: RedisRateLimiterOptions) {
    checkParams(opts.rps, opts.burst);
    this.rps = opts.rps;
    this.burst = opts.burst;
    this.prefix = opts.prefix;
    this.fallback = opts.fallback;
    this.onFallback = opts.onFallback;
    this.timeoutMs = opts.timeoutMs ?? 250;
    // defineCommand sends EVALSHA and transparently re-sends EVAL on NOSCRIPT.
    // Defining it again on a shared connection just replaces the identical definition.
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
    this.redis = redis as WithTokenBucket;
  }

  async take(key: string): Promise<RateDecision> {
    try {
      const reply = await this.withTimeout(this.redis[COMMAND](this.prefix + key, this.rps, this.burst));
      if (!Array.isArray(reply) || reply.length < 2) throw new Error(`unexpected rate-limit script reply: ${JSON.stringify(reply)}`);
      const allowed = Number(reply[0]) === 1;
      return allowed ? { allowed: true, retryAfterSecs: 0 } : { allowed: false, retryAfterSecs: retryAfterFromMs(Number(reply[1])) };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      try {
        this.onFallback?.(err);
      } catch {
        /* a failing observer must not fail the request */
      }
      return this.fallback.take(key);
    }
  }

  async close(): Promise<void> {
    await this.fallback.close();
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`rate-limit Redis call timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    // A late reply after a timeout only means the token was also taken in Redis: conservative.
    p.catch(() => {});
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

// ---------------------------------------------------------------------------------------------
// Client key

function stripPort(raw: string): string {
  const s = raw.trim();
  // [v6]:port or [v6]
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) return bracket[1];
  // v4:port (a bare IPv6 has more than one colon)
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(s);
  if (v4port) return v4port[1];
  return s;
}

/** Normalizes an address for comparison; '' when it is not an IP address. */
function normalizeIp(raw: string): string {
  let ip = stripPort(raw);
  // IPv4-mapped IPv6 (dual-stack sockets report ::ffff:a.b.c.d)
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) ip = mapped[1];
  const zone = ip.indexOf('%');
  if (zone !== -1 && isIP(ip.slice(0, zone)) === 6) ip = ip.slice(0, zone);
  const v = isIP(ip);
  if (v === 4) return ip;
  if (v === 6) return ip.toLowerCase();
  return '';
}

interface ProxyMatcher {
  has(ip: string): boolean;
}

// The trustedProxies array comes from Config and is the same object for the process lifetime.
const matcherCache = new WeakMap<string[], ProxyMatcher>();

function proxyMatcher(trustedProxies: string[]): ProxyMatcher {
  const cached = matcherCache.get(trustedProxies);
  if (cached) return cached;
  const list = new BlockList();
  let any = false;
  for (const entry of trustedProxies) {
    const e = entry.trim();
    const slash = e.indexOf('/');
    try {
      if (slash === -1) {
        const ip = normalizeIp(e);
        const v = isIP(ip);
        if (v === 0) continue; // not an address: ignored
        list.addAddress(ip, v === 4 ? 'ipv4' : 'ipv6');
      } else {
        const base = normalizeIp(e.slice(0, slash));
        const bits = e.slice(slash + 1);
        const v = isIP(base);
        if (v === 0 || !/^\d{1,3}$/.test(bits)) continue;
        const prefix = Number(bits);
        if (prefix > (v === 4 ? 32 : 128)) continue;
        list.addSubnet(base, prefix, v === 4 ? 'ipv4' : 'ipv6');
      }
      any = true;
    } catch {
      /* malformed entry: ignored */
    }
  }
  const matcher: ProxyMatcher = {
    has(ip: string): boolean {
      if (!any) return false;
      const v = isIP(ip);
      return v !== 0 && list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
    },
  };
  matcherCache.set(trustedProxies, matcher);
  return matcher;
}

/**
 * Key for a request: `u:<userId>` when known, else `ip:<client ip>`.
 * X-Forwarded-For is honoured only when the socket peer is a trusted proxy (exact IPs or CIDRs):
 * the hops are walked from the right, skipping trusted proxies, and the first untrusted hop is
 * the client. If that hop is not a valid address, the last trusted address seen is used instead;
 * if every hop is trusted, the leftmost one is used.
 */
export function clientKey(userId: string | null, peerIp: string, xForwardedFor: string | undefined, trustedProxies: string[]): string {
  if (userId !== null && userId !== '') return `u:${userId}`;
  const peer = normalizeIp(peerIp) || peerIp.trim();
  if (xForwardedFor === undefined || trustedProxies.length === 0) return `ip:${peer}`;
  const trusted = proxyMatcher(trustedProxies);
  if (!trusted.has(peer)) return `ip:${peer}`;
  const hops = xForwardedFor.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]);
    if (hop === '') break; // garbage: keep the nearest address a trusted proxy vouched for
    client = hop;
    if (!trusted.has(hop)) break;
  }
  return `ip:${client}`;
}
