// Binds the route table to uWebSockets.js: CORS, rate limiting, identity, parsing and validation
// happen here in the spec's order; handlers receive typed, validated input and return a result.
import uWS from 'uWebSockets.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { AppError, badRequest } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import { parseScopeHeader } from '../../domain/scope.js';
import type { AdminAuth } from '../auth/admin.js';
import type { IdentityResolver } from '../auth/identity.js';
import type { CorsPolicy } from './cors.js';
import { clientKey, type RateLimiter } from '../../services/rate-limit.js';
import type { Caller, HttpResult, RouteDef } from './route.js';
import type { Metrics } from '../../observability/metrics.js';

export const MAX_BODY_BYTES = 2 * 1024 * 1024;

export interface HttpDeps {
  log: Logger;
  cors: CorsPolicy;
  admin: AdminAuth;
  identity: IdentityResolver;
  /** null when rate limiting is off. */
  limiter: RateLimiter | null;
  trustedProxies: string[];
  /** JWT_SCOPE_CLAIMS configured: the signed scope wins and the header is ignored. */
  scopeFromToken: boolean;
  metrics: Metrics;
}

/** What we read from uWS's request object, which is only valid until the handler first awaits. */
interface RawRequest {
  method: string;
  url: string;
  query: string;
  headers: Record<string, string>;
  params: string[];
  peerIp: string;
  /** Body bytes, collected from the moment the request arrives (routes with a body only). */
  body?: Promise<Buffer>;
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 201: '201 Created', 204: '204 No Content', 400: '400 Bad Request', 401: '401 Unauthorized',
  403: '403 Forbidden', 404: '404 Not Found', 405: '405 Method Not Allowed', 413: '413 Payload Too Large',
  415: '415 Unsupported Media Type', 422: '422 Unprocessable Entity', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};
const statusLine = (s: number) => STATUS_TEXT[s] ?? String(s);

function readRaw(res: HttpResponse, req: HttpRequest, paramCount: number): RawRequest {
  const headers: Record<string, string> = {};
  req.forEach((k, v) => {
    headers[k] = v;
  });
  const params: string[] = [];
  for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i) ?? '');
  return {
    method: req.getCaseSensitiveMethod().toUpperCase(),
    url: req.getUrl(),
    query: req.getQuery() ?? '',
    headers,
    params,
    peerIp: Buffer.from(res.getRemoteAddressAsText()).toString(),
  };
}

const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/;

export class HttpServer {
  private readonly app: TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;
  private inflight = 0;

  constructor(private readonly deps: HttpDeps, routes: RouteDef[]) {
    this.app = uWS.App();
    // Every OPTIONS is a preflight answered by the CORS layer before routing, limits or auth.
    const preflight = (res: HttpResponse, req: HttpRequest) => {
      const origin = req.getHeader('origin') || undefined;
      const requestMethod = req.getHeader('access-control-request-method') || undefined;
      const requestHeaders = req.getHeader('access-control-request-headers') || undefined;
      res.cork(() => {
        res.writeStatus('200 OK');
        for (const [k, v] of deps.cors.preflight({ origin, requestMethod, requestHeaders })) res.writeHeader(k, v);
        res.end();
      });
    };
    this.app.options('/*', preflight);

    const byPath = new Map<string, RouteDef[]>();
    for (const r of routes) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
    for (const [path, defs] of byPath) {
      for (const def of defs) this.register(def);
      // uWS prefers the exact path's `any` (the 405 below) over the '/*' wildcard, so the
      // preflight must be registered on every route path too.
      this.app.options(path, preflight);
      const allowed = defs.map((d) => d.method).join(', ');
      this.app.any(path, (res, req) => this.fallback(res, req, 405, { Allow: allowed }));
    }
    this.app.any('/*', (res, req) => this.fallback(res, req, 404, {}));
  }

  /** The uWS app, for the WebSocket layer to attach its behaviour to the same listener. */
  get uws(): TemplatedApp {
    return this.app;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (token) => {
        if (!token) return reject(new Error(`cannot listen on ${host}:${port}`));
        this.listenSocket = token;
        resolve(uWS.us_socket_local_port(token));
      });
    });
  }

  /** Stops accepting connections and waits (bounded) for requests in flight. */
  async close(drainMs = 5000): Promise<void> {
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    const until = Date.now() + drainMs;
    while (this.inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  private fallback(res: HttpResponse, req: HttpRequest, status: number, headers: Record<string, string>): void {
    const origin = req.getHeader('origin') || undefined;
    const message = status === 404 ? 'Not found' : 'Method not allowed';
    const code = status === 404 ? 'NOT_FOUND' : 'METHOD_NOT_ALLOWED';
    // Routing failures get a request id like every other error response.
    const incomingId = req.getHeader('x-request-id');
    const reqId = incomingId && REQUEST_ID_RE.test(incomingId) ? incomingId : newId();
    res.cork(() => {
      res.writeStatus(statusLine(status));
      res.writeHeader('X-Request-Id', reqId);
      for (const [k, v] of this.deps.cors.actual({ origin })) res.writeHeader(k, v);
      for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
      res.writeHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ error: { code, message } }));
    });
  }

  private register(def: RouteDef): void {
    const paramNames = [...def.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]);
    const bind = {
      GET: this.app.get, POST: this.app.post, PUT: this.app.put, DELETE: this.app.del,
    }[def.method].bind(this.app);
    bind(def.path, (res, req) => {
      const raw = readRaw(res, req, paramNames.length);
      const state = { aborted: false };
      res.onAborted(() => {
        state.aborted = true;
      });
      // uWS hands body chunks only to an onData attached before this callback returns; the
      // pipeline awaits real async work first (JWT verification, rate limiter), so a later
      // attach would miss the body and the request would hang.
      if (def.body) {
        raw.body = readBody(res, state);
        raw.body.catch(() => {});
      }
      this.inflight++;
      void this.handle(def, paramNames, raw, res, state).finally(() => {
        this.inflight--;
      });
    });
  }

  private async handle(def: RouteDef, paramNames: string[], raw: RawRequest, res: HttpResponse, state: { aborted: boolean }): Promise<void> {
    const started = performance.now();
    const incomingId = raw.headers['x-request-id'];
    const reqId = incomingId && REQUEST_ID_RE.test(incomingId) ? incomingId : newId();
    const log = this.deps.log.child({ reqId });
    let result: HttpResult;
    try {
      result = await this.pipeline(def, paramNames, raw, res, state, reqId, log);
    } catch (e) {
      result = this.errorResult(e, log);
    }
    if (state.aborted) return;
    const cors = this.deps.cors.actual({ origin: raw.headers.origin });
    const body = result.raw?.text ?? (result.body === undefined ? undefined : JSON.stringify(result.body));
    const contentType = result.raw?.contentType ?? 'application/json';
    res.cork(() => {
      res.writeStatus(statusLine(result.status));
      res.writeHeader('X-Request-Id', reqId);
      for (const [k, v] of cors) res.writeHeader(k, v);
      for (const [k, v] of Object.entries(result.headers ?? {})) res.writeHeader(k, v);
      if (body !== undefined) {
        res.writeHeader('Content-Type', contentType);
        res.end(body);
      } else {
        res.end();
      }
    });
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.httpRequests.inc({ method: def.method, route: def.path, status: String(result.status) });
    this.deps.metrics.httpDuration.observe({ method: def.method, route: def.path }, seconds);
    if (def.measuresSend && result.status < 300) this.deps.metrics.sendLatency.observe(seconds);
    log.info({ method: def.method, route: def.path, status: result.status, ms: Math.round(seconds * 10000) / 10 }, 'request');
  }

  private errorResult(e: unknown, log: Logger): HttpResult {
    if (e instanceof AppError) {
      return { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: e.headers };
    }
    log.error({ err: e }, 'unhandled error');
    return { status: 500, body: { error: { code: 'INTERNAL_ERROR', message: 'Internal server error' } } };
  }

  private async pipeline(
    def: RouteDef, paramNames: string[], raw: RawRequest, res: HttpResponse, state: { aborted: boolean }, reqId: string, log: Logger,
  ): Promise<HttpResult> {
    const query = new URLSearchParams(raw.query);
    const d = this.deps;

    // Rate limit first (as the original), keyed by the user when one can be named cheaply.
    let identityError: unknown = null;
    let caller: Caller | null = null;
    if (def.auth === 'user') {
      try {
        const id = await d.identity.fromRest(raw.headers.authorization, raw.query);
        caller = { userId: id.userId, scope: id.tokenScope };
      } catch (e) {
        identityError = e;
      }
    }
    if (d.limiter && !def.exemptFromRateLimit) {
      const key = clientKey(caller?.userId ?? null, raw.peerIp, raw.headers['x-forwarded-for'], d.trustedProxies);
      const decision = await d.limiter.take(key);
      if (!decision.allowed) {
        d.metrics.rateLimitRejections.inc({ transport: 'http' });
        throw new AppError(429, 'RATE_LIMIT_EXCEEDED', 'Too many requests. Please slow down.', { 'Retry-After': String(decision.retryAfterSecs) });
      }
    }
    if (def.auth === 'admin') d.admin.check(raw.headers.authorization);
    if (identityError) throw identityError;

    if (caller && def.scope === 'read' && !d.scopeFromToken) {
      caller.scope = parseScopeHeader(raw.headers['x-scope-config']);
    }

    const params: Record<string, string> = {};
    paramNames.forEach((name, i) => {
      params[name] = safeDecode(raw.params[i]);
    });
    if (def.params) validate(def.params, params, 400, 'BAD_REQUEST', 'Invalid path parameter');

    const q: Record<string, unknown> = {};
    if (def.query) {
      for (const key of Object.keys((def.query as unknown as { properties: object }).properties)) {
        const v = query.get(key);
        if (v !== null) q[key] = v;
      }
      const converted = Value.Convert(def.query, q) as Record<string, unknown>;
      validate(def.query, converted, 400, 'BAD_REQUEST', 'Invalid query parameter');
      Object.assign(q, converted);
    }

    let body: unknown = undefined;
    if (def.body) {
      const ct = raw.headers['content-type'];
      if (!ct || ct.split(';')[0].trim().toLowerCase() !== 'application/json') {
        throw new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Expected request with `Content-Type: application/json`');
      }
      const declared = raw.headers['content-length'];
      if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
      const bytes = await (raw.body ?? readBody(res, state));
      try {
        body = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw badRequest('Failed to parse the request body as JSON');
      }
      validate(def.body, body, 422, 'INVALID_INPUT', 'Invalid request body');
    }

    return def.handler({ reqId, log, params, query: q, body, caller: caller as Caller });
  }
}

const tooLarge = () => new AppError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds the limit of ${MAX_BODY_BYTES} bytes`);

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest('Invalid path parameter: bad percent-encoding');
  }
}

/** Also used by the WebSocket commands, whose errors must read exactly as the REST twin's. */
export function validate(schema: TSchema, value: unknown, status: number, code: 'BAD_REQUEST' | 'INVALID_INPUT', prefix: string): void {
  const first = Value.Errors(schema, value).First();
  if (first) {
    const where = first.path ? ` at ${first.path.replace(/^\//, '').replace(/\//g, '.')}` : '';
    throw new AppError(status, code, `${prefix}${where}: ${first.message}`);
  }
}

/** Collects the body, refusing it as soon as it passes the limit rather than after buffering it. */
function readBody(res: HttpResponse, state: { aborted: boolean }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((ab, isLast) => {
      if (failed) return;
      size += ab.byteLength;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        return reject(tooLarge());
      }
      // uWS reuses the ArrayBuffer after this callback returns, so copy it.
      chunks.push(Buffer.from(ab.slice(0)));
      if (isLast) resolve(Buffer.concat(chunks));
    });
    if (state.aborted) reject(new Error('aborted'));
  });
}
