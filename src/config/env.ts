// The one place that reads the environment. Everything else receives a Config.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { CronExpressionParser } from 'cron-parser';

const Int = (o: { minimum?: number; maximum?: number } = {}) => Type.Integer(o);
// Documented boolean spellings. The original treated everything but `true`/`1` as false;
// we refuse anything else so a typo never silently disables a feature.
const BOOL_TRUE = new Set(['true', '1']);
const BOOL_FALSE = new Set(['false', '0']);

export const ConfigSchema = Type.Object({
  nodeEnv: Type.String(),
  production: Type.Boolean(),
  role: Type.Union([Type.Literal('all'), Type.Literal('edge'), Type.Literal('worker')]),
  host: Type.String({ minLength: 1 }),
  port: Int({ minimum: 0, maximum: 65535 }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
  namespace: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  allowInsecure: Type.Boolean(),

  databaseUrl: Type.String({ minLength: 1 }),
  dbMaxConnections: Int({ minimum: 1, maximum: 1000 }),
  dbMinConnections: Int({ minimum: 0, maximum: 1000 }),
  dbAcquireTimeoutSecs: Int({ minimum: 1 }),
  dbIdleTimeoutSecs: Int({ minimum: 1 }),
  dbMaxLifetimeSecs: Int({ minimum: 1 }),

  adminApiToken: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),

  jwtEnabled: Type.Boolean(),
  jwtSecrets: Type.Array(Type.String({ minLength: 1 })),
  jwtUserIdClaim: Type.String({ minLength: 1 }),
  jwtValidateExp: Type.Boolean(),
  jwtLeewaySecs: Int({ minimum: 0, maximum: 86400 }),
  jwtAudience: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  jwtIssuer: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  jwtScopeClaims: Type.Union([Type.Tuple([Type.String(), Type.String(), Type.String()]), Type.Null()]),

  corsOrigins: Type.Union([Type.Literal('*'), Type.Array(Type.String())]),
  corsMethods: Type.Union([Type.Literal('*'), Type.Array(Type.String())]),
  corsHeaders: Type.Union([Type.Literal('*'), Type.Array(Type.String())]),
  corsCredentials: Type.Boolean(),
  corsMaxAge: Int({ minimum: 0 }),

  rateLimitEnabled: Type.Boolean(),
  rateLimitRps: Int({ minimum: 1 }),
  rateLimitBurst: Int({ minimum: 1 }),
  trustedProxies: Type.Array(Type.String()),

  redisUrl: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
  natsUrl: Type.String({ minLength: 1 }),
  leaseTtlMs: Int({ minimum: 500, maximum: 600_000 }),
  leaseTickMs: Int({ minimum: 100, maximum: 60_000 }),
  mailboxCapacity: Int({ minimum: 1 }),
  maxBatch: Int({ minimum: 1, maximum: 10_000 }),
  batchConcurrency: Int({ minimum: 1, maximum: 1000 }),
  commandDeadlineMs: Int({ minimum: 100 }),

  /** WebSocket edge (docs/protocol.md): a socket whose unsent output passes this is closed (4008). */
  wsMaxBufferedBytes: Int({ minimum: 1024 }),
  /** Largest client frame; bigger frames close the socket (1009). */
  wsMaxPayloadBytes: Int({ minimum: 1024 }),
  wsMaxConnectionsPerUser: Int({ minimum: 1 }),
  /** Per-socket token bucket for client frames. */
  wsRateLimitPerSec: Int({ minimum: 1 }),
  wsRateLimitBurst: Int({ minimum: 1 }),
  /** How long dialog_events rows stay resumable. */
  eventRetentionSecs: Int({ minimum: 1 }),

  s3: Type.Union([
    Type.Object({
      endpoint: Type.String(), region: Type.String(), accessKeyId: Type.String(), secretAccessKey: Type.String(),
      bucket: Type.String(), publicEndpoint: Type.String(), uploadExpirySecs: Int({ minimum: 1 }), downloadExpirySecs: Int({ minimum: 1 }),
    }),
    Type.Null(),
  ]),
  /** Set when an in-process development S3 should be started (outside production, S3_ENDPOINT unset). */
  devS3: Type.Union([Type.Object({ uploadExpirySecs: Int({ minimum: 1 }), downloadExpirySecs: Int({ minimum: 1 }) }), Type.Null()]),

  webhook: Type.Union([Type.Object({ url: Type.String(), secret: Type.String() }), Type.Null()]),
  webhookMaxRetries: Int({ minimum: 0, maximum: 100 }),
  webhookTimeoutSecs: Int({ minimum: 1, maximum: 600 }),
  /** First retry delay; each further retry doubles it (1 s, 2 s, 4 s … in the original). */
  webhookRetryBaseMs: Int({ minimum: 1, maximum: 3_600_000 }),
  /** Replicas of the delivery streams (3 on a production JetStream cluster, see docs/delivery.md). */
  jetstreamReplicas: Int({ minimum: 1, maximum: 5 }),
  notificationConcurrency: Int({ minimum: 1 }),
  notificationDelayMs: Int({ minimum: 0 }),
  archiveCron: Type.String(),
  archiveAfterSecs: Int({ minimum: 1 }),
});
export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly variable: string, reason: string) {
    super(`Invalid configuration: ${variable} ${reason}`);
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}
function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (BOOL_TRUE.has(v)) return true;
  if (BOOL_FALSE.has(v)) return false;
  throw new ConfigError(name, `must be one of true, 1, false, 0 (got "${v}")`);
}
function int(env: Env, name: string, dflt: number, opts: { zeroMeansDefault?: boolean } = {}): number {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (!/^-?[0-9]+$/.test(v.trim())) throw new ConfigError(name, `must be an integer (got "${v}")`);
  const n = Number(v.trim());
  if (!Number.isSafeInteger(n)) throw new ConfigError(name, `is out of range (got "${v}")`);
  return opts.zeroMeansDefault && n === 0 ? dflt : n;
}
function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}
function starOrList(env: Env, name: string, dflt: '*' | string[]): '*' | string[] {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (v.trim() === '*') return '*';
  const items = list(v);
  for (const item of items) {
    // Header values must be visible ASCII; the original crashed on such entries, we name them.
    if (!/^[\x21-\x7e]+$/.test(item)) throw new ConfigError(name, `contains an entry that is not a valid header value: "${item}"`);
  }
  return items;
}

function defaultNamespace(databaseUrl: string): string {
  let db = 'mtchat';
  try {
    db = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || db;
  } catch {
    /* validated below */
  }
  return db.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = str(env, 'NODE_ENV') ?? 'development';
  const production = nodeEnv === 'production';
  const databaseUrl = str(env, 'DATABASE_URL') ?? 'postgres://postgres:postgres@localhost:5432/multitenancy_chat';
  try {
    const u = new URL(databaseUrl);
    if (!/^postgres(ql)?:$/.test(u.protocol)) throw new Error();
  } catch {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// URL');
  }

  const role = (str(env, 'MTCHAT_ROLE') ?? 'all') as Config['role'];
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info') as Config['logLevel'];

  const jwtEnabled = bool(env, 'JWT_AUTH_ENABLED', false);
  // JWT_SECRETS wins whenever it is set at all (even empty), as in the original.
  const secretsRaw = env.JWT_SECRETS !== undefined ? env.JWT_SECRETS : env.JWT_SECRET;
  const secretsVar = env.JWT_SECRETS !== undefined ? 'JWT_SECRETS' : 'JWT_SECRET';
  const jwtSecrets = list(secretsRaw);
  if (jwtEnabled && jwtSecrets.length === 0) {
    throw new ConfigError(secretsVar, 'must hold at least one non-empty secret when JWT_AUTH_ENABLED is on');
  }
  const scopeClaims = list(str(env, 'JWT_SCOPE_CLAIMS'));
  if (scopeClaims.length !== 0 && scopeClaims.length !== 3) {
    throw new ConfigError('JWT_SCOPE_CLAIMS', 'must name exactly three claims (levels 0, 1, 2), comma-separated');
  }

  const s3Endpoint = str(env, 'S3_ENDPOINT');
  const s3Region = str(env, 'S3_REGION');
  const s3Key = str(env, 'S3_ACCESS_KEY_ID');
  const s3Secret = str(env, 'S3_SECRET_ACCESS_KEY');
  const s3Bucket = str(env, 'S3_BUCKET');
  const uploadExpirySecs = int(env, 'S3_PRESIGN_UPLOAD_EXPIRY', 300);
  const downloadExpirySecs = int(env, 'S3_PRESIGN_DOWNLOAD_EXPIRY', 3600);
  const s3 = s3Endpoint && s3Region && s3Key && s3Secret && s3Bucket
    ? {
        endpoint: s3Endpoint, region: s3Region, accessKeyId: s3Key, secretAccessKey: s3Secret, bucket: s3Bucket,
        publicEndpoint: str(env, 'S3_PUBLIC_ENDPOINT') ?? s3Endpoint, uploadExpirySecs, downloadExpirySecs,
      }
    : null;
  const devS3Wanted = bool(env, 'MTCHAT_DEV_S3', !production);
  // A fake store in production would accept uploads and lose them at the next restart.
  if (production && devS3Wanted) throw new ConfigError('MTCHAT_DEV_S3', 'must not be on in production');
  const devS3 = devS3Wanted && s3Endpoint === undefined ? { uploadExpirySecs, downloadExpirySecs } : null;

  // An empty WEBHOOK_URL/SECRET counts as unset (the original then failed every delivery).
  const whUrl = str(env, 'WEBHOOK_URL');
  const whSecret = str(env, 'WEBHOOK_SECRET');
  if (whUrl !== undefined) {
    try {
      const u = new URL(whUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    } catch {
      throw new ConfigError('WEBHOOK_URL', 'must be an http(s) URL');
    }
  }

  const archiveCron = str(env, 'ARCHIVE_CRON') ?? '0 */5 * * * *';
  if (archiveCron.trim().split(/\s+/).length !== 6) throw new ConfigError('ARCHIVE_CRON', 'must have six fields, seconds first');
  try {
    CronExpressionParser.parse(archiveCron);
  } catch (e) {
    throw new ConfigError('ARCHIVE_CRON', `is not a valid cron expression: ${(e as Error).message}`);
  }

  const delaySecs = str(env, 'NOTIFICATION_DELAY_SECS');
  const notificationDelayMs = str(env, 'NOTIFICATION_DELAY_MS') !== undefined
    ? int(env, 'NOTIFICATION_DELAY_MS', 1000)
    : delaySecs !== undefined ? int(env, 'NOTIFICATION_DELAY_SECS', 1) * 1000 : 1000;

  const cfg: Config = {
    nodeEnv,
    production,
    role,
    host: str(env, 'HOST') ?? '0.0.0.0',
    port: int(env, 'PORT', 8080),
    logLevel,
    namespace: str(env, 'MTCHAT_NAMESPACE') ?? defaultNamespace(databaseUrl),
    allowInsecure: bool(env, 'MTCHAT_ALLOW_INSECURE', false),
    databaseUrl,
    dbMaxConnections: int(env, 'DATABASE_MAX_CONNECTIONS', 20),
    dbMinConnections: int(env, 'DATABASE_MIN_CONNECTIONS', 5),
    dbAcquireTimeoutSecs: int(env, 'DATABASE_ACQUIRE_TIMEOUT_SECS', 30),
    dbIdleTimeoutSecs: int(env, 'DATABASE_IDLE_TIMEOUT_SECS', 600),
    dbMaxLifetimeSecs: int(env, 'DATABASE_MAX_LIFETIME_SECS', 1800),
    adminApiToken: str(env, 'ADMIN_API_TOKEN') ?? null,
    jwtEnabled,
    jwtSecrets,
    jwtUserIdClaim: str(env, 'JWT_USER_ID_CLAIM') ?? 'sub',
    jwtValidateExp: bool(env, 'JWT_VALIDATE_EXP', true),
    jwtLeewaySecs: int(env, 'JWT_LEEWAY_SECS', 60),
    jwtAudience: str(env, 'JWT_AUDIENCE') ?? null,
    jwtIssuer: str(env, 'JWT_ISSUER') ?? null,
    jwtScopeClaims: scopeClaims.length === 3 ? [scopeClaims[0], scopeClaims[1], scopeClaims[2]] : null,
    corsOrigins: starOrList(env, 'CORS_ALLOWED_ORIGINS', '*'),
    corsMethods: starOrList(env, 'CORS_ALLOWED_METHODS', ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']),
    corsHeaders: starOrList(env, 'CORS_ALLOWED_HEADERS', '*'),
    corsCredentials: bool(env, 'CORS_ALLOW_CREDENTIALS', false),
    corsMaxAge: int(env, 'CORS_MAX_AGE', 3600),
    rateLimitEnabled: bool(env, 'RATE_LIMIT_ENABLED', false),
    rateLimitRps: int(env, 'RATE_LIMIT_RPS', 100, { zeroMeansDefault: true }),
    rateLimitBurst: int(env, 'RATE_LIMIT_BURST', 50, { zeroMeansDefault: true }),
    trustedProxies: list(str(env, 'RATE_LIMIT_TRUSTED_PROXIES')),
    redisUrl: str(env, 'REDIS_URL') ?? null,
    natsUrl: str(env, 'NATS_URL') ?? '127.0.0.1:4222',
    leaseTtlMs: int(env, 'MTCHAT_LEASE_TTL_MS', 6000),
    leaseTickMs: int(env, 'MTCHAT_LEASE_TICK_MS', 1500),
    mailboxCapacity: int(env, 'MTCHAT_MAILBOX_CAPACITY', 1000),
    maxBatch: int(env, 'MTCHAT_MAX_BATCH', 64),
    batchConcurrency: int(env, 'MTCHAT_BATCH_CONCURRENCY', 4),
    commandDeadlineMs: int(env, 'MTCHAT_COMMAND_DEADLINE_MS', 20000),
    wsMaxBufferedBytes: int(env, 'WS_MAX_BUFFERED_BYTES', 1024 * 1024),
    wsMaxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', 256 * 1024),
    wsMaxConnectionsPerUser: int(env, 'WS_MAX_CONNECTIONS_PER_USER', 20),
    wsRateLimitPerSec: int(env, 'WS_RATE_LIMIT_PER_SEC', 20),
    wsRateLimitBurst: int(env, 'WS_RATE_LIMIT_BURST', 40),
    eventRetentionSecs: int(env, 'EVENT_RETENTION_SECS', 604800),
    s3,
    devS3,
    webhook: whUrl !== undefined && whSecret !== undefined ? { url: whUrl, secret: whSecret } : null,
    webhookMaxRetries: int(env, 'WEBHOOK_MAX_RETRIES', 3),
    webhookTimeoutSecs: int(env, 'WEBHOOK_TIMEOUT_SECS', 10),
    webhookRetryBaseMs: int(env, 'WEBHOOK_RETRY_BASE_MS', 1000),
    jetstreamReplicas: int(env, 'JETSTREAM_REPLICAS', 1),
    notificationConcurrency: int(env, 'NOTIFICATION_CONCURRENCY', 4),
    notificationDelayMs,
    archiveCron,
    archiveAfterSecs: int(env, 'ARCHIVE_AFTER_SECS', 259200),
  };

  const firstError = Value.Errors(ConfigSchema, cfg).First();
  if (firstError) throw new ConfigError(variableFor(firstError.path), `is invalid: ${firstError.message}`);
  if (cfg.dbMinConnections > cfg.dbMaxConnections) {
    throw new ConfigError('DATABASE_MIN_CONNECTIONS', 'must not exceed DATABASE_MAX_CONNECTIONS');
  }

  if (cfg.leaseTickMs * 2 > cfg.leaseTtlMs) {
    throw new ConfigError('MTCHAT_LEASE_TICK_MS', 'must be at most half of MTCHAT_LEASE_TTL_MS, so a lease is renewed before it expires');
  }

  if (production && !cfg.allowInsecure) {
    if (!cfg.adminApiToken) {
      throw new ConfigError('ADMIN_API_TOKEN', 'must be set in production (or set MTCHAT_ALLOW_INSECURE=true to run the Management API open)');
    }
    if (!cfg.jwtEnabled) {
      throw new ConfigError('JWT_AUTH_ENABLED', 'must be on in production (legacy user_id mode lets anyone act as anyone; set MTCHAT_ALLOW_INSECURE=true to allow it)');
    }
  }
  return cfg;
}

// Maps a schema path back to the variable a person would have to fix.
const VARIABLE_BY_FIELD: Record<string, string> = {
  wsMaxBufferedBytes: 'WS_MAX_BUFFERED_BYTES', wsMaxPayloadBytes: 'WS_MAX_PAYLOAD_BYTES', wsMaxConnectionsPerUser: 'WS_MAX_CONNECTIONS_PER_USER',
  wsRateLimitPerSec: 'WS_RATE_LIMIT_PER_SEC', wsRateLimitBurst: 'WS_RATE_LIMIT_BURST', eventRetentionSecs: 'EVENT_RETENTION_SECS',
  role: 'MTCHAT_ROLE', host: 'HOST', port: 'PORT', logLevel: 'LOG_LEVEL', namespace: 'MTCHAT_NAMESPACE',
  dbMaxConnections: 'DATABASE_MAX_CONNECTIONS', dbMinConnections: 'DATABASE_MIN_CONNECTIONS',
  dbAcquireTimeoutSecs: 'DATABASE_ACQUIRE_TIMEOUT_SECS', dbIdleTimeoutSecs: 'DATABASE_IDLE_TIMEOUT_SECS',
  dbMaxLifetimeSecs: 'DATABASE_MAX_LIFETIME_SECS', jwtLeewaySecs: 'JWT_LEEWAY_SECS', corsMaxAge: 'CORS_MAX_AGE',
  rateLimitRps: 'RATE_LIMIT_RPS', rateLimitBurst: 'RATE_LIMIT_BURST', webhookMaxRetries: 'WEBHOOK_MAX_RETRIES',
  webhookTimeoutSecs: 'WEBHOOK_TIMEOUT_SECS', webhookRetryBaseMs: 'WEBHOOK_RETRY_BASE_MS', jetstreamReplicas: 'JETSTREAM_REPLICAS',
  notificationConcurrency: 'NOTIFICATION_CONCURRENCY',
  notificationDelayMs: 'NOTIFICATION_DELAY_MS', leaseTtlMs: 'MTCHAT_LEASE_TTL_MS', leaseTickMs: 'MTCHAT_LEASE_TICK_MS',
  mailboxCapacity: 'MTCHAT_MAILBOX_CAPACITY', maxBatch: 'MTCHAT_MAX_BATCH', batchConcurrency: 'MTCHAT_BATCH_CONCURRENCY', commandDeadlineMs: 'MTCHAT_COMMAND_DEADLINE_MS', archiveAfterSecs: 'ARCHIVE_AFTER_SECS', s3: 'S3_PRESIGN_UPLOAD_EXPIRY / S3_PRESIGN_DOWNLOAD_EXPIRY',
  devS3: 'S3_PRESIGN_UPLOAD_EXPIRY / S3_PRESIGN_DOWNLOAD_EXPIRY',
};
function variableFor(path: string): string {
  const field = path.split('/')[1] ?? path;
  return VARIABLE_BY_FIELD[field] ?? field;
}
