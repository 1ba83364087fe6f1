// Entry point: `--role edge|worker|all` (or MTCHAT_ROLE). Loads .env, validates config, starts, drains on SIGTERM.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/env.js';
import { startApp } from './app.js';
import { createLogger } from './observability/logger.js';

const { values } = parseArgs({ options: { role: { type: 'string' } }, strict: true });
if (existsSync('.env')) process.loadEnvFile('.env');
if (values.role) process.env.MTCHAT_ROLE = values.role;

let cfg;
try {
  cfg = loadConfig(process.env);
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    process.exit(2);
  }
  throw e;
}

const log = createLogger(cfg.logLevel, { role: cfg.role });
const app = await startApp(cfg, log).catch((e) => {
  log.fatal({ err: e }, 'start-up failed');
  process.exit(1);
});

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'draining');
    app.close().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
