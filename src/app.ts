// Composition root: builds every component from the Config and wires them together.
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Config } from './config/env.js';
import { DirectGateway } from './actors/gateway.js';
import { LocalEventBus } from './bus/local-bus.js';
import { ensureDatabase, initOrm, migrate, type Orm } from './db/orm.js';
import { AdminAuth } from './edge/auth/admin.js';
import { IdentityResolver } from './edge/auth/identity.js';
import { CorsPolicy } from './edge/http/cors.js';
import { assertNativeUws } from './edge/http/native-check.js';
import { HttpServer } from './edge/http/server.js';
import type { RouteServices } from './edge/http/services.js';
import { buildRoutes } from './edge/http/routes/index.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { Presence } from './services/presence.js';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './services/rate-limit.js';

// package.json sits one level up from src/ and two from dist/src/.
const pkgUrl = ['../package.json', '../../package.json'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u));
export const VERSION: string = pkgUrl ? JSON.parse(readFileSync(pkgUrl, 'utf8')).version : 'unknown';

export interface RunningApp {
  port: number;
  http: HttpServer;
  metrics: Metrics;
  orm: Orm;
  bus: LocalEventBus;
  log: Logger;
  close(): Promise<void>;
}

export async function startApp(cfg: Config, log: Logger = createLogger(cfg.logLevel)): Promise<RunningApp> {
  assertNativeUws();
  warnAboutInsecureSettings(cfg, log);

  await ensureDatabase(cfg.databaseUrl);
  const orm = await initOrm(cfg, log);
  await migrate(cfg, orm, log);

  const redis = cfg.redisUrl ? new Redis(cfg.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: false }) : null;
  redis?.on('error', (e) => log.warn({ err: e.message }, 'redis error'));

  let limiter: RateLimiter | null = null;
  if (cfg.rateLimitEnabled) {
    const memory = new MemoryRateLimiter(cfg.rateLimitRps, cfg.rateLimitBurst);
    limiter = redis
      ? new RedisRateLimiter(redis, {
          rps: cfg.rateLimitRps, burst: cfg.rateLimitBurst, prefix: `${cfg.namespace}:rl:`, fallback: memory,
          onFallback: (e) => log.warn({ err: e.message }, 'rate limiter fell back to the in-process bucket'),
        })
      : memory;
  }

  const metrics = createMetrics();
  const presence = redis ? new Presence(redis, `${cfg.namespace}:presence:`) : null;
  const bus = new LocalEventBus();
  const gateway = new DirectGateway(orm, bus, { persistOutbox: cfg.webhook !== null }, log);
  const services: RouteServices = {
    orm,
    gateway,
    version: VERSION,
    signUrl: () => '',
    online: presence ? (ids) => presence.online(ids) : async () => new Set(),
    metricsText: () => metrics.registry.metrics(),
    readiness: async () => ({ postgres: await orm.isConnected() && (await pingDb(orm)) }),
  };
  const http = new HttpServer(
    {
      log, cors: new CorsPolicy(cfg), admin: new AdminAuth(cfg.adminApiToken), identity: new IdentityResolver(cfg),
      limiter, trustedProxies: cfg.trustedProxies, scopeFromToken: cfg.jwtScopeClaims !== null, metrics,
    },
    buildRoutes(services),
  );
  const port = await http.listen(cfg.host, cfg.port);
  log.info({ port, role: cfg.role, namespace: cfg.namespace, version: VERSION }, 'mtchat listening');

  return {
    port, http, metrics, orm, bus, log,
    async close() {
      await http.close();
      await limiter?.close();
      redis?.disconnect();
      await orm.close(true);
    },
  };
}

async function pingDb(orm: Orm): Promise<boolean> {
  try {
    await orm.em.fork().getConnection().execute('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

function warnAboutInsecureSettings(cfg: Config, log: Logger): void {
  if (!cfg.adminApiToken) log.warn('ADMIN_API_TOKEN is not set: the Management API is OPEN to anyone who can reach this port');
  if (!cfg.jwtEnabled) log.warn('JWT_AUTH_ENABLED is off: legacy mode, the user_id query parameter names the acting user');
  for (const s of cfg.jwtSecrets) if (Buffer.byteLength(s) < 32) log.warn('a JWT secret is shorter than 32 bytes');
}
