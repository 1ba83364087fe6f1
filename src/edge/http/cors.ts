// CORS answers as pure functions of the configuration and the request headers (no I/O).
//
// Differences from the original (spec/configuration.md "CORS"):
// - credentials together with a `*` list never fails: the request's Origin / requested method /
//   requested headers are mirrored instead;
// - with headers `*`, preflights mirror Access-Control-Request-Headers, because a literal `*`
//   does not cover `Authorization` in browsers;
// - with an origin list, a non-matching Origin gets no Access-Control-Allow-Origin, but the other
//   CORS headers are still sent (browsers then refuse the response).
import type { Config } from '../../config/env.js';

export interface CorsRequest {
  origin?: string;
  /** Access-Control-Request-Method */
  requestMethod?: string;
  /** Access-Control-Request-Headers */
  requestHeaders?: string;
}

export type CorsConfig = Pick<Config, 'corsOrigins' | 'corsMethods' | 'corsHeaders' | 'corsCredentials' | 'corsMaxAge'>;

const ALLOW_ORIGIN = 'Access-Control-Allow-Origin';
const ALLOW_METHODS = 'Access-Control-Allow-Methods';
const ALLOW_HEADERS = 'Access-Control-Allow-Headers';
const ALLOW_CREDENTIALS = 'Access-Control-Allow-Credentials';
const MAX_AGE = 'Access-Control-Max-Age';
const VARY = 'Vary';

// RFC 9110 token: what a method or a header name may look like. Anything mirrored from the
// request is filtered through this so no attacker-chosen bytes (CR/LF, spaces, …) reach a header.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// An Origin value is mirrored only if it is visible ASCII (no CR/LF/space injection).
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

function normalizeOrigin(o: string): string {
  return o.trim().replace(/\/+$/, '').toLowerCase();
}

function sanitizeHeaderList(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0 && TOKEN.test(s));
  return names.length > 0 ? names.map((s) => s.toLowerCase()).join(',') : undefined;
}

export class CorsPolicy {
  /** null = any origin */
  private readonly origins: ReadonlySet<string> | null;
  private readonly credentials: boolean;
  /** precomputed `Access-Control-Allow-Methods` for a list, null for `*` */
  private readonly methodsJoined: string | null;
  /** precomputed `Access-Control-Allow-Headers` for a list, null for `*` */
  private readonly headersJoined: string | null;
  private readonly maxAge: string;

  constructor(cfg: CorsConfig) {
    this.credentials = cfg.corsCredentials;
    this.origins = cfg.corsOrigins === '*' || cfg.corsOrigins.includes('*')
      ? null
      : new Set(cfg.corsOrigins.map(normalizeOrigin).filter((o) => o.length > 0));
    this.methodsJoined = cfg.corsMethods === '*' || cfg.corsMethods.includes('*')
      ? null
      : cfg.corsMethods.filter((m) => TOKEN.test(m)).join(',');
    this.headersJoined = cfg.corsHeaders === '*' || cfg.corsHeaders.includes('*')
      ? null
      : cfg.corsHeaders.filter((h) => TOKEN.test(h)).join(',');
    this.maxAge = String(cfg.corsMaxAge);
  }

  /** whether a WebSocket/handshake Origin is allowed (no Origin header = allowed, non-browser client) */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined || origin === '') return true;
    return this.matches(origin);
  }

  /** list mode: whether the (present) Origin is one of the configured origins; `*`: always */
  private matches(origin: string): boolean {
    if (this.origins === null) return true;
    return VISIBLE_ASCII.test(origin) && this.origins.has(normalizeOrigin(origin));
  }

  /** headers for a preflight (OPTIONS) answer: 200 empty body */
  preflight(req: CorsRequest): [string, string][] {
    const out: [string, string][] = [];
    const vary: string[] = [];
    this.addOrigin(req, out, vary);

    // Methods
    if (this.methodsJoined !== null) {
      if (this.methodsJoined !== '') out.push([ALLOW_METHODS, this.methodsJoined]);
    } else if (!this.credentials) {
      out.push([ALLOW_METHODS, '*']);
    } else {
      // `*` is taken literally by browsers when credentials are on: mirror the requested method.
      vary.push('Access-Control-Request-Method');
      const m = req.requestMethod?.trim();
      if (m !== undefined && TOKEN.test(m)) out.push([ALLOW_METHODS, m]);
    }

    // Headers
    if (this.headersJoined !== null) {
      if (this.headersJoined !== '') out.push([ALLOW_HEADERS, this.headersJoined]);
    } else {
      // `*` never covers Authorization, and is literal with credentials: mirror what was asked for.
      vary.push('Access-Control-Request-Headers');
      const mirrored = sanitizeHeaderList(req.requestHeaders);
      if (mirrored !== undefined) out.push([ALLOW_HEADERS, mirrored]);
      else if (!this.credentials) out.push([ALLOW_HEADERS, '*']);
    }

    if (this.credentials) out.push([ALLOW_CREDENTIALS, 'true']);
    out.push([MAX_AGE, this.maxAge]);
    if (vary.length > 0) out.push([VARY, vary.join(', ')]);
    return out;
  }

  /** headers added to every normal response */
  actual(req: CorsRequest): [string, string][] {
    const out: [string, string][] = [];
    const vary: string[] = [];
    this.addOrigin(req, out, vary);
    if (this.credentials) out.push([ALLOW_CREDENTIALS, 'true']);
    if (vary.length > 0) out.push([VARY, vary.join(', ')]);
    return out;
  }

  private addOrigin(req: CorsRequest, out: [string, string][], vary: string[]): void {
    const origin = req.origin;
    const present = origin !== undefined && origin !== '';
    if (this.origins === null) {
      if (!this.credentials) {
        out.push([ALLOW_ORIGIN, '*']);
        return;
      }
      // `*` is not allowed together with credentials: mirror the request's Origin.
      vary.push('Origin');
      if (present && VISIBLE_ASCII.test(origin)) out.push([ALLOW_ORIGIN, origin]);
      return;
    }
    // The answer depends on Origin even when it is left out, so caches must key on it.
    vary.push('Origin');
    if (present && this.matches(origin)) out.push([ALLOW_ORIGIN, origin]);
  }
}
