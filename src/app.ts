// Composition root: builds every component from the Config and wires them together.
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from './config/env.js';
import { LocalFirstGateway } from './actors/local-gateway.js';
import { NatsGateway } from './actors/nats-gateway.js';
import { Worker } from './actors/worker.js';
import { RetentionSweeper } from './actors/retention.js';
import { startDelivery, type Delivery } from './delivery/index.js';
import { connectNats } from './bus/nats.js';
import { NatsEventPublisher } from './bus/nats-publisher.js';
import { Subjects } from './bus/subjects.js';
import { LocalEventBus } from './bus/local-bus.js';
import { ensureDatabase, initOrm, migrate, type Orm } from './db/orm.js';
import { AdminAuth } from './edge/auth/admin.js';
import { IdentityResolver } from './edge/auth/identity.js';
import { CorsPolicy } from './edge/http/cors.js';
import { assertNativeUws } from './edge/http/native-check.js';
import { HttpServer } from './edge/http/server.js';
import { WsEdge } from './edge/ws/server.js';
import { socketPresence } from './edge/ws/presence.js';
import { PresencePublisher } from './bus/presence-publisher.js';
import type { RouteServices } from './edge/http/services.js';
import { buildRoutes } from './edge/http/routes/index.js';
import { healthRoutes } from './edge/http/routes/health.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { Presence } from './services/presence.js';
import { openStorage } from './services/storage.js';
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
  /** Present in the worker and all roles. */
  worker: Worker | null;
  ws: WsEdge | null;
  nc: NatsConnection;
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
  const nc = await connectNats(cfg.natsUrl, `mtchat-${cfg.role}`, log);
  const subjects = new Subjects(cfg.namespace);
  // In-process observers (tests, and the edge of an `all` process) see events in publish order.
  const bus = new LocalEventBus();
  const publisher = new NatsEventPublisher(nc, subjects, log, bus);

  const isWorker = cfg.role !== 'edge';
  const isEdge = cfg.role !== 'worker';
  // Attachments are an edge concern: a worker never presigns or checks objects.
  const files = isEdge ? await openStorage(cfg, log) : { storage: null, close: async () => undefined };
  let worker: Worker | null = null;
  let delivery: Delivery | null = null;
  if (isWorker) {
    worker = new Worker(nc, subjects, orm, publisher, log, {
      persistOutbox: cfg.webhook !== null, leaseTtlMs: cfg.leaseTtlMs, tickMs: cfg.leaseTickMs,
      mailboxCapacity: cfg.mailboxCapacity, maxBatch: cfg.maxBatch, maxConcurrentBatches: cfg.batchConcurrency, metrics,
      // Delivery starts after the worker (it needs the owned partitions): reached through `delivery` below.
      outboxWritten: () => delivery?.nudge(),
    });
    await worker.start();
  }
  const w = worker;
  const retention = w ? new RetentionSweeper(orm, () => w.ownedPartitions(), { eventRetentionSecs: cfg.eventRetentionSecs }, log) : null;
  retention?.start();
  delivery = w
    ? await startDelivery({ cfg, orm, nc, log, publisher, ownedPartitions: () => w.ownedPartitions(), metrics })
    : null;
  const natsGateway = new NatsGateway(nc, subjects, log, { deadlineMs: cfg.commandDeadlineMs, metrics });
  const gateway = w ? new LocalFirstGateway(w.owner, natsGateway) : natsGateway;
  const services: RouteServices = {
    orm,
    gateway,
    version: VERSION,
    storage: files.storage,
    online: presence ? (ids) => presence.online(ids) : async () => new Set(),
    metricsText: () => metrics.registry.metrics(),
    readiness: async () => {
      // All at once, the optional S3 probe bounded to 1 s: the whole answer stays inside the
      // probe's 2 s timeout even when S3 is slow.
      const [postgres, jetstream, s3] = await Promise.all([
        pingDb(orm),
        delivery ? delivery.ready() : Promise.resolve(null),
        files.storage ? files.storage.reachable(1000) : Promise.resolve(null),
      ]);
      const required: Record<string, boolean> = {
        postgres,
        nats: !nc.isClosed() && nc.info !== undefined,
        ...(worker ? { partitions: worker.isReady() } : {}),
        ...(jetstream !== null ? { jetstream } : {}),
      };
      // Without Redis presence is off and limits are per process; without S3 uploads fail: both
      // are reported, neither takes the process out of rotation.
      const optional: Record<string, boolean> = {
        ...(redis ? { redis: redis.status === 'ready' } : {}),
        ...(s3 !== null ? { s3 } : {}),
      };
      return { ready: Object.values(required).every(Boolean), checks: { ...required, ...optional } };
    },
  };
  const cors = new CorsPolicy(cfg);
  const identity = new IdentityResolver(cfg);
  const http = new HttpServer(
    {
      log, cors, admin: new AdminAuth(cfg.adminApiToken), identity,
      limiter, trustedProxies: cfg.trustedProxies, scopeFromToken: cfg.jwtScopeClaims !== null, metrics,
    },
    // A worker serves only its probes and metrics; the API lives on the edges.
    isEdge ? buildRoutes(services) : healthRoutes(services),
  );
  const ws = isEdge
    ? new WsEdge({
        app: http.uws, cfg, log, identity, cors, gateway, orm, nc, subjects, storage: files.storage, metrics,
        presence: presence ? socketPresence(presence, new PresencePublisher(nc, subjects, log)) : null,
      })
    : null;
  const port = await http.listen(cfg.host, cfg.port);
  log.info({ port, role: cfg.role, namespace: cfg.namespace, version: VERSION }, 'mtchat listening');

  return {
    port, http, metrics, orm, bus, log, worker, ws, nc,
    async close() {
      // Sockets first (1001), so clients reconnect elsewhere while requests in flight finish.
      await ws?.close();
      await http.close();
      await delivery?.stop();
      await retention?.stop();
      // Answer every accepted command, then hand the partitions over at once.
      await worker?.stop();
      await limiter?.close();
      redis?.disconnect();
      await files.close();
      await nc.drain().catch(() => undefined);
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
