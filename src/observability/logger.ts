import { pino, type Logger } from 'pino';

export type { Logger };

// Secrets and message bodies must never reach a log line, even when someone logs a whole object.
const REDACT = [
  'authorization', '*.authorization', 'headers.authorization', 'token', '*.token', 'secret', '*.secret',
  'password', '*.password', 'content', '*.content', 'adminApiToken', 'jwtSecrets', '*.jwtSecrets',
];

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: 'mtchat', ...base }, redact: { paths: REDACT, censor: '[redacted]' } });
}
