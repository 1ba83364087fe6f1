// Settings and helpers shared by the k6 scripts. Everything comes from environment variables
// (k6 run -e NAME=value), with defaults for a local `npm start`.
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import http from 'k6/http';
import { fail } from 'k6';

const env = (name: string, dflt: string): string => __ENV[name] ?? dflt;
const num = (name: string, dflt: number): number => {
  const v = Number(env(name, String(dflt)));
  if (!Number.isFinite(v)) fail(`${name} must be a number`);
  return v;
};

export const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8080').replace(/\/$/, '');
export const WS_URL = env('WS_URL', BASE_URL.replace(/^http/, 'ws') + '/api/v1/ws');
/** Management API token (ADMIN_API_TOKEN); empty for an open Management API. */
export const ADMIN_TOKEN = env('ADMIN_TOKEN', '');
/** HS256 secret (one of JWT_SECRETS): users authenticate with signed tokens. Empty: legacy user_id. */
export const JWT_SECRET = env('JWT_SECRET', '');
export const DIALOGS = num('DIALOGS', 100);
export const PARTICIPANTS = num('PARTICIPANTS', 10);
/** p99 thresholds (ms) and the error-rate threshold (fraction). */
export const P99_MS = num('P99_MS', 500);
export const MAX_ERROR_RATE = num('MAX_ERROR_RATE', 0.01);
/** Keeps runs apart: object ids and user ids carry it. */
export const RUN_ID = env('RUN_ID', 'k6');

export const userId = (dialogIndex: number, participant: number): string => `${RUN_ID}-u${dialogIndex}-${participant}`;

function b64url(s: string): string {
  return encoding.b64encode(s, 'rawurl');
}

/** A signed HS256 token for `sub`, as the host platform would issue it. */
export function jwtFor(sub: string): string {
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + 3600 }))}`;
  return `${unsigned}.${crypto.hmac('sha256', JWT_SECRET, unsigned, 'base64rawurl')}`;
}

/** Query string and headers that identify `user` in the configured mode. */
export function userAuth(user: string): { query: string; headers: Record<string, string> } {
  if (JWT_SECRET) return { query: '', headers: { Authorization: `Bearer ${jwtFor(user)}` } };
  return { query: `user_id=${encodeURIComponent(user)}`, headers: {} };
}

/** The WebSocket URL for `user`: credentials travel in the query string. */
export function wsUrlFor(user: string): string {
  const q = JWT_SECRET ? `token=${encodeURIComponent(jwtFor(user))}` : `user_id=${encodeURIComponent(user)}`;
  return `${WS_URL}?${q}`;
}

export function adminHeaders(): Record<string, string> {
  const h: Record<string, string> = { 'Content-Type': 'application/json' };
  if (ADMIN_TOKEN) h.Authorization = `Bearer ${ADMIN_TOKEN}`;
  return h;
}

export interface Dialog {
  id: string;
  users: string[];
}

/** Creates one dialog through the Management API; `undefined` when the request failed. */
export function createDialog(index: number, tags: Record<string, string> = {}): Dialog | undefined {
  const users = Array.from({ length: PARTICIPANTS }, (_, p) => userId(index, p));
  const res = http.post(
    `${BASE_URL}/api/v1/management/dialogs`,
    JSON.stringify({
      object_id: `${RUN_ID}-obj-${index}`,
      object_type: 'loadtest',
      title: `Load test ${index}`,
      participants: users.map((u) => ({ user_id: u, display_name: `User ${u}` })),
    }),
    { headers: adminHeaders(), tags: { name: 'POST /api/v1/management/dialogs', ...tags } },
  );
  if (res.status !== 200) return undefined;
  const id = res.json('data.id');
  return typeof id === 'string' ? { id, users } : undefined;
}

/** setup(): the dialogs every VU works in. */
export function createDialogs(count: number): Dialog[] {
  const out: Dialog[] = [];
  for (let i = 0; i < count; i++) {
    const d = createDialog(i, { phase: 'setup' });
    if (!d) fail(`setup: creating dialog ${i} failed`);
    out.push(d);
  }
  return out;
}
