// The served OpenAPI document covers the whole route table, with each route's own schemas,
// and is a valid OpenAPI 3.1 document.
import t from 'tap';
import { Type } from '@sinclair/typebox';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startTestServer } from '../helpers/server.js';
import { client } from '../helpers/api.js';
import { buildRoutes } from '../../src/edge/http/routes/index.js';
import { buildOpenApi, openApiPath, toJsonSchema } from '../../src/edge/http/openapi.js';
import type { RouteServices } from '../../src/edge/http/services.js';
import type { RouteDef } from '../../src/edge/http/route.js';

const ADMIN = 'openapi-admin-token-0123456789abcdef';
const SECRET = 'openapi-jwt-secret-0123456789abcdef0123';

// Building the table reads no service; handlers are never called here.
const routes: RouteDef[] = buildRoutes({ version: 'test' } as RouteServices);
/** What a typebox schema looks like on the wire: symbol keys gone. */
const plain = (s: unknown) => JSON.parse(JSON.stringify(s));

t.test('GET /api/v1/openapi.json', async (t) => {
  // Admin token and JWT on: the document must still need no credentials.
  const srv = await startTestServer({ ADMIN_API_TOKEN: ADMIN, JWT_AUTH_ENABLED: 'true', JWT_SECRETS: SECRET });
  t.teardown(() => srv.close());
  const api = client(srv.url);
  const res = await api('GET', '/api/v1/openapi.json');
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  const doc = res.json;
  t.equal(doc.openapi, '3.1.0');
  t.equal(doc.info.version, (await api('GET', '/health')).json.version, 'versioned like the service');
  t.equal(doc.info.title, 'mtchat API');

  t.test('every registered route is documented with its parameters and body', async (t) => {
    t.ok(routes.length >= 20, `${routes.length} routes`);
    const opCount = Object.values(doc.paths).reduce((n: number, p: any) => n + Object.keys(p).length, 0);
    t.equal(opCount, routes.length, 'no operation the table does not have');
    const opIds = new Set<string>();
    for (const r of routes) {
      const label = `${r.method} ${r.path}`;
      const op = doc.paths[openApiPath(r.path)]?.[r.method.toLowerCase()];
      if (!t.ok(op, `${label} is documented`)) continue;
      t.equal(op.summary, r.summary, `${label}: summary`);
      t.notOk(opIds.has(op.operationId), `${label}: operationId ${op.operationId} is unique`);
      opIds.add(op.operationId);

      const params: any[] = op.parameters ?? [];
      const pathNames = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
      const inPath = params.filter((p) => p.in === 'path');
      t.same(inPath.map((p) => p.name), pathNames, `${label}: path parameters in path order`);
      for (const p of inPath) {
        t.equal(p.required, true, `${label}: path parameter ${p.name} is required`);
        t.same(p.schema, plain(r.params!.properties[p.name]), `${label}: ${p.name} schema`);
      }
      const inQuery = params.filter((p) => p.in === 'query');
      const qs = r.query ? plain(r.query) : { properties: {}, required: [] };
      t.same(inQuery.map((p) => p.name).sort(), Object.keys(qs.properties).sort(), `${label}: query parameters`);
      for (const p of inQuery) {
        t.equal(p.required, (qs.required ?? []).includes(p.name), `${label}: query ${p.name} required flag`);
        t.same(p.schema, qs.properties[p.name], `${label}: query ${p.name} schema`);
      }
      const scopeHeader = params.filter((p) => p.in === 'header' && p.name === 'X-Scope-Config');
      t.equal(scopeHeader.length, r.scope === 'read' ? 1 : 0, `${label}: X-Scope-Config documented iff read`);

      if (r.body) {
        t.equal(op.requestBody?.required, true, `${label}: body required`);
        t.same(op.requestBody?.content?.['application/json']?.schema, plain(r.body), `${label}: request body schema`);
      } else {
        t.equal(op.requestBody, undefined, `${label}: no body`);
      }

      const status = String(r.successStatus ?? 200);
      t.same(Object.keys(op.responses).sort(), [status, 'default'].sort(), `${label}: responses`);
      t.same(op.responses.default, { $ref: '#/components/responses/Error' });
      const ok = op.responses[status];
      if (status === '204') t.equal(ok.content, undefined, `${label}: 204 has no body`);
      else if (r.response) t.same(ok.content['application/json'].schema, plain(r.response), `${label}: response schema`);
      else t.same(ok.content['application/json'].schema, { type: 'object' });

      const security = { none: [], admin: [{ adminToken: [] }], user: [{ userJwt: [] }, { legacyUserId: [] }] }[r.auth];
      t.same(op.security, security, `${label}: security for auth ${r.auth}`);
    }
    t.same(Object.keys(doc.components.securitySchemes).sort(), ['adminToken', 'legacyUserId', 'userJwt']);
    t.same(doc.components.securitySchemes.adminToken, { type: 'http', scheme: 'bearer', description: 'ADMIN_API_TOKEN: the Management API' });
    t.equal(doc.components.securitySchemes.userJwt.bearerFormat, 'JWT');
    t.same(
      { in: doc.components.securitySchemes.legacyUserId.in, name: doc.components.securitySchemes.legacyUserId.name, type: doc.components.securitySchemes.legacyUserId.type },
      { in: 'query', name: 'user_id', type: 'apiKey' },
    );
    const self = doc.paths['/api/v1/openapi.json']?.get;
    t.same(self?.security, [], 'the document itself needs no credentials');
    t.ok(doc.paths['/api/v1/dialogs/{dialog_id}/messages/{id}'], ':param became {param}');
    t.notOk(Object.keys(doc.paths).some((p) => p.includes(':')), 'no uWS-style parameter left');
  });

  t.test('the document is valid OpenAPI 3.1 and its schemas valid JSON Schema 2020-12', async (t) => {
    const v = new Validator();
    const result = await v.validate(doc);
    t.same(result.errors ?? [], [], 'no validation errors');
    t.equal(result.valid, true);
    t.equal(v.version, '3.1');

    // The validator is not vacuous: a broken copy fails.
    const broken = structuredClone(doc);
    delete broken.info;
    broken.paths['/api/v1/dialogs'].get.responses = 'none';
    t.equal((await new Validator().validate(broken)).valid, false, 'a broken document is rejected');

    const ajv = new Ajv2020({ strict: true });
    let compiled = 0;
    const visit = (node: unknown, key: string) => {
      if (node === null || typeof node !== 'object') return;
      if (key === 'schema' && !('$ref' in node)) {
        ajv.compile(node as object);
        compiled++;
      }
      for (const [k, v] of Object.entries(node)) visit(v, k);
    };
    visit(doc.paths, '');
    t.ok(compiled >= routes.length, `${compiled} schemas compile`);
  });

  t.test('the served document is the one built from the table', async (t) => {
    t.same(doc, plain(buildOpenApi(routes, { version: doc.info.version })));
  });
});

t.test('toJsonSchema drops typebox symbol keys and keeps JSON Schema keywords', async (t) => {
  const s = toJsonSchema(Type.Object({ a: Type.Optional(Type.String({ minLength: 1 })), b: Type.Union([Type.Integer(), Type.Null()]) }));
  t.same(s, {
    type: 'object',
    properties: { a: { type: 'string', minLength: 1 }, b: { anyOf: [{ type: 'integer' }, { type: 'null' }] } },
    required: ['b'],
  });
  const symbols = (o: unknown): number => (o && typeof o === 'object'
    ? Object.getOwnPropertySymbols(o).length + Object.values(o).reduce((n: number, v) => n + symbols(v), 0)
    : 0);
  t.equal(symbols(s), 0);
  t.ok(symbols(Type.Object({ a: Type.Optional(Type.String()) })) > 0, 'typebox itself does carry symbols');
});
