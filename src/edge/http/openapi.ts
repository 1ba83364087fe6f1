// OpenAPI 3.1 document built from the route table: typebox schemas are JSON Schema 2020-12, which
// is OpenAPI 3.1's schema dialect, so they go in as they are (minus typebox's symbol keys).
import type { TSchema } from '@sinclair/typebox';
import type { AuthKind, RouteDef } from './route.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export interface OpenApiInfo {
  title?: string;
  version: string;
  description?: string;
}

/** A plain JSON copy of a typebox schema: symbol keys (Kind, Optional, …) and functions dropped. */
export function toJsonSchema(schema: TSchema): JsonObject {
  return copy(schema) as JsonObject;
}

function copy(v: unknown): Json {
  if (Array.isArray(v)) return v.map(copy);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    // Object.keys skips symbol keys, which is where typebox keeps its own metadata.
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'function') out[k] = copy(x);
    }
    return out;
  }
  return v as Json;
}

/** `/a/:id/b` → `/a/{id}/b` */
export const openApiPath = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** `GET /api/v1/dialogs/:id/messages` → `getDialogsIdMessages`: stable and unique per method and path. */
export function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v1\//, '/')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1));
  return method.toLowerCase() + words.join('');
}

const tagOf = (path: string): string => {
  const segs = path.replace(/^\/api\/v1\//, '/').split('/').filter(Boolean);
  return segs[0] === 'dialogs' && segs.includes('messages') ? 'messages' : segs[0] ?? 'root';
};

export const SECURITY_SCHEMES: JsonObject = {
  adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_TOKEN: the Management API' },
  userJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'HS256 JWT; the user id is in JWT_USER_ID_CLAIM (JWT_AUTH_ENABLED)' },
  legacyUserId: { type: 'apiKey', in: 'query', name: 'user_id', description: 'Legacy mode (JWT_AUTH_ENABLED off): the acting user id' },
};

function securityOf(auth: AuthKind): Json[] {
  if (auth === 'admin') return [{ adminToken: [] }];
  if (auth === 'user') return [{ userJwt: [] }, { legacyUserId: [] }];
  return [];
}

const ERROR_SCHEMA: JsonObject = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
};

function parameters(where: 'path' | 'query', schema: TSchema | undefined): Json[] {
  if (!schema) return [];
  const s = toJsonSchema(schema);
  const props = (s.properties ?? {}) as JsonObject;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => {
    const param: JsonObject = { name, in: where, required: where === 'path' || required.has(name), schema: p };
    const description = (p as JsonObject).description;
    if (typeof description === 'string') param.description = description;
    return param;
  });
}

function operation(r: RouteDef): JsonObject {
  const status = r.successStatus ?? 200;
  const success: JsonObject = { description: r.summary };
  if (status !== 204) success.content = { 'application/json': { schema: r.response ? toJsonSchema(r.response) : { type: 'object' } } };
  const op: JsonObject = {
    operationId: operationId(r.method, r.path),
    summary: r.summary,
    tags: [tagOf(r.path)],
    security: securityOf(r.auth),
    responses: { [String(status)]: success, default: { $ref: '#/components/responses/Error' } },
  };
  const params = [...parameters('path', r.params), ...parameters('query', r.query)];
  if (r.scope === 'read') {
    params.push({
      name: 'X-Scope-Config', in: 'header', required: false, schema: { type: 'string' },
      description: 'Base64 JSON of the caller\'s scope levels (ignored when JWT_SCOPE_CLAIMS is set)',
    });
  }
  if (params.length) op.parameters = params;
  if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: toJsonSchema(r.body) } } };
  return op;
}

export function buildOpenApi(routes: RouteDef[], info: OpenApiInfo): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const r of routes) {
    const p = (paths[openApiPath(r.path)] ??= {});
    p[r.method.toLowerCase()] = operation(r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: info.title ?? 'mtchat API',
      version: info.version,
      description: info.description ?? 'Management API (admin token), Chat API (one user) and health. The WebSocket protocol is in docs/protocol.md.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: SECURITY_SCHEMES,
      schemas: { Error: ERROR_SCHEMA },
      responses: {
        Error: {
          description: 'Error: the status and error.code say which',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
