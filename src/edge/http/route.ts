import type { TSchema, Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { ScopeLevels } from '../../domain/scope.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type AuthKind = 'none' | 'admin' | 'user';
/** How a route reads X-Scope-Config: not at all, or when present (join then demands it itself). */
export type ScopeUse = 'ignore' | 'read';

export interface HttpResult {
  status: number;
  /** JSON-serialised when defined; undefined means an empty body. */
  body?: unknown;
  /** A non-JSON body (e.g. the Prometheus text format) sent as is. */
  raw?: { contentType: string; text: string };
  headers?: Record<string, string>;
}

export interface Caller {
  userId: string;
  /** The user's scope: from signed token claims when configured, else the header; null when neither. */
  scope: ScopeLevels | null;
}

export interface RequestContext<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  reqId: string;
  log: Logger;
  params: P;
  query: Q;
  body: B;
  /** Present on `user` routes. */
  caller: Caller;
}

export interface RouteDef<PS extends TSchema = TSchema, QS extends TSchema = TSchema, BS extends TSchema = TSchema> {
  method: Method;
  /** uWS pattern, `:name` for parameters. */
  path: string;
  auth: AuthKind;
  scope?: ScopeUse;
  summary: string;
  params?: PS;
  query?: QS;
  body?: BS;
  /** Documented response schema (OpenAPI); not enforced at run time. */
  response?: TSchema;
  successStatus?: number;
  /** Health and metrics are never rate limited: probes must see the truth under load. */
  exemptFromRateLimit?: boolean;
  /** A message send: its successful answers also feed mtchat_send_latency_seconds (receipt → committed answer). */
  measuresSend?: boolean;
  handler: (ctx: RequestContext<Static<PS>, Static<QS>, Static<BS>>) => Promise<HttpResult>;
}

/** Keeps each route's handler typed by its own schemas while the table holds them uniformly. */
export function route<PS extends TSchema, QS extends TSchema, BS extends TSchema>(def: RouteDef<PS, QS, BS>): RouteDef {
  return def as unknown as RouteDef;
}

export const ok = (body: unknown, status = 200): HttpResult => ({ status, body });
export const data = (value: unknown, status = 200): HttpResult => ({ status, body: { data: value } });
export const noContent = (): HttpResult => ({ status: 204 });
