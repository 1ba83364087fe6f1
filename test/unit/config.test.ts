import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config/env.js';

type Env = Record<string, string | undefined>;

interface Asserts {
  ok(...args: any[]): unknown;
  equal(...args: any[]): unknown;
  match(...args: any[]): unknown;
}

/** Asserts loadConfig(env) throws a ConfigError naming `variable` (in .variable and in the message). */
function refuses(t: Asserts, env: Env, variable: string, what: string): void {
  let err: unknown = null;
  try {
    loadConfig(env);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError, `${what}: ConfigError thrown`);
  if (err instanceof ConfigError) {
    t.equal(err.variable, variable, `${what}: names ${variable}`);
    t.match(err.message, variable, `${what}: message names ${variable}`);
  }
}

t.test('defaults match spec/configuration.md', async (t) => {
  const c = loadConfig({});
  t.equal(c.port, 8080, 'PORT');
  t.equal(c.host, '0.0.0.0', 'binds 0.0.0.0');
  t.equal(c.logLevel, 'info', 'LOG_LEVEL');
  t.equal(c.nodeEnv, 'development');
  t.equal(c.production, false);
  t.equal(c.allowInsecure, false);

  t.equal(c.databaseUrl, 'postgres://postgres:postgres@localhost:5432/multitenancy_chat', 'DATABASE_URL');
  t.equal(c.dbMaxConnections, 20, 'DATABASE_MAX_CONNECTIONS');
  t.equal(c.dbMinConnections, 5, 'DATABASE_MIN_CONNECTIONS');
  t.equal(c.dbAcquireTimeoutSecs, 30, 'DATABASE_ACQUIRE_TIMEOUT_SECS');
  t.equal(c.dbIdleTimeoutSecs, 600, 'DATABASE_IDLE_TIMEOUT_SECS');
  t.equal(c.dbMaxLifetimeSecs, 1800, 'DATABASE_MAX_LIFETIME_SECS');

  t.equal(c.adminApiToken, null, 'ADMIN_API_TOKEN unset → open');

  t.equal(c.jwtEnabled, false, 'JWT_AUTH_ENABLED');
  t.same(c.jwtSecrets, [], 'no secrets');
  t.equal(c.jwtUserIdClaim, 'sub', 'JWT_USER_ID_CLAIM');
  t.equal(c.jwtValidateExp, true, 'JWT_VALIDATE_EXP');
  t.equal(c.jwtLeewaySecs, 60, 'JWT_LEEWAY_SECS');
  t.equal(c.jwtAudience, null, 'JWT_AUDIENCE');
  t.equal(c.jwtIssuer, null, 'JWT_ISSUER');
  t.equal(c.jwtScopeClaims, null, 'JWT_SCOPE_CLAIMS');

  t.equal(c.corsOrigins, '*', 'CORS_ALLOWED_ORIGINS');
  t.same(c.corsMethods, ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'], 'CORS_ALLOWED_METHODS');
  t.equal(c.corsHeaders, '*', 'CORS_ALLOWED_HEADERS');
  t.equal(c.corsCredentials, false, 'CORS_ALLOW_CREDENTIALS');
  t.equal(c.corsMaxAge, 3600, 'CORS_MAX_AGE');

  t.equal(c.rateLimitEnabled, false, 'RATE_LIMIT_ENABLED');
  t.equal(c.rateLimitRps, 100, 'RATE_LIMIT_RPS');
  t.equal(c.rateLimitBurst, 50, 'RATE_LIMIT_BURST');

  t.equal(c.redisUrl, null, 'REDIS_URL');
  t.equal(c.s3, null, 'S3 disabled');
  t.equal(c.webhook, null, 'webhooks disabled');
  t.equal(c.webhookMaxRetries, 3, 'retry count 3');
  t.equal(c.webhookTimeoutSecs, 10, 'timeout 10 s');

  t.equal(c.notificationConcurrency, 4, 'NOTIFICATION_CONCURRENCY');
  t.equal(c.notificationDelayMs, 1000, 'notification delay stays 1 s');
  t.equal(c.archiveCron, '0 */5 * * * *', 'ARCHIVE_CRON');
  t.equal(c.archiveAfterSecs, 259200, 'ARCHIVE_AFTER_SECS');
  t.equal(c.namespace, 'multitenancy_chat', 'namespace from the default database name');
});

t.test('explicit values are read', async (t) => {
  const c = loadConfig({
    PORT: '9090', DATABASE_MAX_CONNECTIONS: '7', DATABASE_MIN_CONNECTIONS: '2', CORS_MAX_AGE: '60',
    CORS_ALLOWED_ORIGINS: ' https://a.example , http://localhost:3000 ,', CORS_ALLOWED_METHODS: '*', CORS_ALLOWED_HEADERS: 'Authorization, Content-Type',
    RATE_LIMIT_ENABLED: '1', RATE_LIMIT_RPS: '5', RATE_LIMIT_BURST: '9', ADMIN_API_TOKEN: 'tok', REDIS_URL: 'redis://r:6379',
    ARCHIVE_CRON: '*/10 * * * * *', ARCHIVE_AFTER_SECS: '60', NOTIFICATION_CONCURRENCY: '2',
  });
  t.equal(c.port, 9090);
  t.equal(c.dbMaxConnections, 7);
  t.equal(c.dbMinConnections, 2);
  t.equal(c.corsMaxAge, 60);
  t.same(c.corsOrigins, ['https://a.example', 'http://localhost:3000'], 'comma list trimmed, empty parts dropped');
  t.equal(c.corsMethods, '*');
  t.same(c.corsHeaders, ['Authorization', 'Content-Type']);
  t.equal(c.rateLimitEnabled, true);
  t.equal(c.rateLimitRps, 5);
  t.equal(c.rateLimitBurst, 9);
  t.equal(c.adminApiToken, 'tok');
  t.equal(c.redisUrl, 'redis://r:6379');
  t.equal(c.archiveCron, '*/10 * * * * *');
  t.equal(c.archiveAfterSecs, 60);
  t.equal(c.notificationConcurrency, 2);
  t.equal(loadConfig({ ADMIN_API_TOKEN: '' }).adminApiToken, null, 'empty ADMIN_API_TOKEN → open');
});

t.test('booleans: only true/1/false/0', async (t) => {
  for (const name of ['JWT_AUTH_ENABLED', 'CORS_ALLOW_CREDENTIALS', 'RATE_LIMIT_ENABLED', 'JWT_VALIDATE_EXP', 'MTCHAT_ALLOW_INSECURE']) {
    const extra: Env = name === 'JWT_AUTH_ENABLED' ? { JWT_SECRET: 's' } : {};
    for (const bad of ['TRUE', 'yes', 'on', 'False', ' true']) refuses(t, { ...extra, [name]: bad }, name, `${name}=${JSON.stringify(bad)}`);
  }
  t.equal(loadConfig({ RATE_LIMIT_ENABLED: 'true' }).rateLimitEnabled, true);
  t.equal(loadConfig({ RATE_LIMIT_ENABLED: '1' }).rateLimitEnabled, true);
  t.equal(loadConfig({ RATE_LIMIT_ENABLED: 'false' }).rateLimitEnabled, false);
  t.equal(loadConfig({ RATE_LIMIT_ENABLED: '0' }).rateLimitEnabled, false);
  t.equal(loadConfig({ CORS_ALLOW_CREDENTIALS: '1' }).corsCredentials, true);
  t.equal(loadConfig({ JWT_VALIDATE_EXP: 'false' }).jwtValidateExp, false);
  t.equal(loadConfig({ JWT_AUTH_ENABLED: '1', JWT_SECRET: 's' }).jwtEnabled, true);
  t.equal(loadConfig({ RATE_LIMIT_ENABLED: '' }).rateLimitEnabled, false, 'empty → default');
});

t.test('numbers: non-numeric values refuse to start, naming the variable', async (t) => {
  refuses(t, { PORT: 'http' }, 'PORT', 'PORT=http');
  refuses(t, { PORT: '80a' }, 'PORT', 'PORT=80a');
  refuses(t, { PORT: '1.5' }, 'PORT', 'PORT=1.5');
  refuses(t, { PORT: '70000' }, 'PORT', 'PORT out of range');
  refuses(t, { DATABASE_MAX_CONNECTIONS: 'twenty' }, 'DATABASE_MAX_CONNECTIONS', 'DATABASE_MAX_CONNECTIONS=twenty');
  refuses(t, { DATABASE_MAX_CONNECTIONS: '0' }, 'DATABASE_MAX_CONNECTIONS', 'DATABASE_MAX_CONNECTIONS=0');
  refuses(t, { DATABASE_MIN_CONNECTIONS: 'x' }, 'DATABASE_MIN_CONNECTIONS', 'DATABASE_MIN_CONNECTIONS=x');
  refuses(t, { CORS_MAX_AGE: 'hour' }, 'CORS_MAX_AGE', 'CORS_MAX_AGE=hour');
  refuses(t, { RATE_LIMIT_RPS: 'fast' }, 'RATE_LIMIT_RPS', 'RATE_LIMIT_RPS=fast');
  refuses(t, { ARCHIVE_AFTER_SECS: '3d' }, 'ARCHIVE_AFTER_SECS', 'ARCHIVE_AFTER_SECS=3d');
});

t.test('JWT secrets', async (t) => {
  refuses(t, { JWT_AUTH_ENABLED: 'true' }, 'JWT_SECRET', 'enabled without any secret');
  refuses(t, { JWT_AUTH_ENABLED: 'true', JWT_SECRET: ' , ' }, 'JWT_SECRET', 'JWT_SECRET with only empty parts');
  refuses(t, { JWT_AUTH_ENABLED: 'true', JWT_SECRETS: '', JWT_SECRET: 'fallback-secret' }, 'JWT_SECRETS', 'JWT_SECRETS set but empty wins over JWT_SECRET');
  refuses(t, { JWT_AUTH_ENABLED: 'true', JWT_SECRETS: ' ,, ', JWT_SECRET: 'fallback-secret' }, 'JWT_SECRETS', 'JWT_SECRETS with only blanks');

  t.same(loadConfig({ JWT_AUTH_ENABLED: 'true', JWT_SECRETS: ' one , two,,three ' }).jwtSecrets, ['one', 'two', 'three'], 'split, trimmed, empties dropped');
  t.same(loadConfig({ JWT_AUTH_ENABLED: 'true', JWT_SECRETS: 'a', JWT_SECRET: 'b' }).jwtSecrets, ['a'], 'JWT_SECRETS takes precedence');
  t.same(loadConfig({ JWT_AUTH_ENABLED: 'true', JWT_SECRET: 'x,y' }).jwtSecrets, ['x', 'y'], 'JWT_SECRET with a comma becomes two secrets');
  t.same(loadConfig({ JWT_SECRETS: '' }).jwtSecrets, [], 'JWT off: empty secrets are fine');
  t.same(loadConfig({ JWT_AUTH_ENABLED: 'true', JWT_SECRET: 's', JWT_SCOPE_CLAIMS: 'a, b ,c' }).jwtScopeClaims, ['a', 'b', 'c']);
  refuses(t, { JWT_SCOPE_CLAIMS: 'a,b' }, 'JWT_SCOPE_CLAIMS', 'two scope claims');
  t.equal(loadConfig({ JWT_USER_ID_CLAIM: 'uid' }).jwtUserIdClaim, 'uid');
  t.equal(loadConfig({ JWT_AUDIENCE: 'chat', JWT_ISSUER: 'me' }).jwtAudience, 'chat');
});

t.test('ARCHIVE_CRON must be a valid six-field expression', async (t) => {
  refuses(t, { ARCHIVE_CRON: '*/5 * * * *' }, 'ARCHIVE_CRON', 'five fields');
  refuses(t, { ARCHIVE_CRON: 'every five minutes please' }, 'ARCHIVE_CRON', 'garbage');
  refuses(t, { ARCHIVE_CRON: '0 */5 * * * * *' }, 'ARCHIVE_CRON', 'seven fields');
  refuses(t, { ARCHIVE_CRON: '0 99 * * * *' }, 'ARCHIVE_CRON', 'minute out of range');
  t.equal(loadConfig({ ARCHIVE_CRON: '30 0 3 * * *' }).archiveCron, '30 0 3 * * *');
});

t.test('production safety', async (t) => {
  refuses(t, { NODE_ENV: 'production', JWT_AUTH_ENABLED: 'true', JWT_SECRET: 's' }, 'ADMIN_API_TOKEN', 'production without ADMIN_API_TOKEN');
  refuses(t, { NODE_ENV: 'production', ADMIN_API_TOKEN: 'tok' }, 'JWT_AUTH_ENABLED', 'production without JWT');
  refuses(t, { NODE_ENV: 'production', ADMIN_API_TOKEN: 'tok', JWT_AUTH_ENABLED: 'false' }, 'JWT_AUTH_ENABLED', 'production with JWT off');
  const ok = loadConfig({ NODE_ENV: 'production', ADMIN_API_TOKEN: 'tok', JWT_AUTH_ENABLED: 'true', JWT_SECRET: 's' });
  t.equal(ok.production, true);
  const insecure = loadConfig({ NODE_ENV: 'production', MTCHAT_ALLOW_INSECURE: 'true' });
  t.equal(insecure.production, true, 'MTCHAT_ALLOW_INSECURE=true allows both');
  t.equal(insecure.adminApiToken, null);
  t.equal(insecure.jwtEnabled, false);
  refuses(t, { NODE_ENV: 'production', MTCHAT_ALLOW_INSECURE: 'false' }, 'ADMIN_API_TOKEN', 'MTCHAT_ALLOW_INSECURE=false');
  t.equal(loadConfig({ NODE_ENV: 'test' }).production, false, 'only "production" is production');
});

t.test('rate limit zero means default', async (t) => {
  t.equal(loadConfig({ RATE_LIMIT_RPS: '0' }).rateLimitRps, 100);
  t.equal(loadConfig({ RATE_LIMIT_BURST: '0' }).rateLimitBurst, 50);
  refuses(t, { RATE_LIMIT_RPS: '-1' }, 'RATE_LIMIT_RPS', 'negative rps');
});

t.test('webhooks: both must be set, empty counts as unset', async (t) => {
  t.same(loadConfig({ WEBHOOK_URL: 'https://h.example/hook', WEBHOOK_SECRET: 'k' }).webhook, { url: 'https://h.example/hook', secret: 'k' });
  t.equal(loadConfig({ WEBHOOK_URL: '', WEBHOOK_SECRET: 'k' }).webhook, null, 'empty URL');
  t.equal(loadConfig({ WEBHOOK_URL: 'https://h.example/hook', WEBHOOK_SECRET: '' }).webhook, null, 'empty secret');
  t.equal(loadConfig({ WEBHOOK_URL: 'https://h.example/hook' }).webhook, null, 'secret missing');
  t.equal(loadConfig({ WEBHOOK_SECRET: 'k' }).webhook, null, 'URL missing');
  refuses(t, { WEBHOOK_URL: 'not a url', WEBHOOK_SECRET: 'k' }, 'WEBHOOK_URL', 'invalid URL');
});

t.test('S3: enabled only with all five', async (t) => {
  const all: Env = {
    S3_ENDPOINT: 'http://minio:9000', S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'ak', S3_SECRET_ACCESS_KEY: 'sk', S3_BUCKET: 'b',
  };
  t.same(loadConfig(all).s3, {
    endpoint: 'http://minio:9000', region: 'us-east-1', accessKeyId: 'ak', secretAccessKey: 'sk', bucket: 'b',
    publicEndpoint: 'http://minio:9000', uploadExpirySecs: 300, downloadExpirySecs: 3600,
  }, 'defaults: public endpoint = endpoint, 300 / 3600');
  const custom = loadConfig({ ...all, S3_PUBLIC_ENDPOINT: 'https://s3.example', S3_PRESIGN_UPLOAD_EXPIRY: '60', S3_PRESIGN_DOWNLOAD_EXPIRY: '120' }).s3;
  t.equal(custom?.publicEndpoint, 'https://s3.example');
  t.equal(custom?.uploadExpirySecs, 60);
  t.equal(custom?.downloadExpirySecs, 120);
  for (const name of Object.keys(all)) {
    t.equal(loadConfig({ ...all, [name]: undefined }).s3, null, `${name} missing → disabled`);
  }
  t.equal(loadConfig({ ...all, S3_BUCKET: '' }).s3, null, 'empty bucket → disabled');
});

t.test('MTCHAT_NAMESPACE', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/chat_prod' }).namespace, 'chat_prod', 'derived from the database name');
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://u@db/my.chat-db' }).namespace, 'my_chat-db', 'unsafe characters replaced');
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u@db:5432/chat_prod', MTCHAT_NAMESPACE: 'blue' }).namespace, 'blue', 'explicit wins');
  refuses(t, { MTCHAT_NAMESPACE: 'has space' }, 'MTCHAT_NAMESPACE', 'invalid namespace');
  refuses(t, { DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL', 'not postgres');
});

t.test('CORS entries must be visible ASCII', async (t) => {
  refuses(t, { CORS_ALLOWED_ORIGINS: 'https://a.example,https://bad example' }, 'CORS_ALLOWED_ORIGINS', 'space inside an origin');
  refuses(t, { CORS_ALLOWED_ORIGINS: 'https://ä.example' }, 'CORS_ALLOWED_ORIGINS', 'non-ASCII origin');
  refuses(t, { CORS_ALLOWED_ORIGINS: 'https://a.example\r\nX-Evil: 1' }, 'CORS_ALLOWED_ORIGINS', 'CRLF');
  refuses(t, { CORS_ALLOWED_HEADERS: 'Authorization,X\tTab' }, 'CORS_ALLOWED_HEADERS', 'tab in a header name');
  refuses(t, { CORS_ALLOWED_METHODS: 'GET,PÖST' }, 'CORS_ALLOWED_METHODS', 'non-ASCII method');
  t.same(loadConfig({ CORS_ALLOWED_ORIGINS: 'https://a.example' }).corsOrigins, ['https://a.example']);
  t.equal(loadConfig({ CORS_ALLOWED_ORIGINS: ' * ' }).corsOrigins, '*');
});
