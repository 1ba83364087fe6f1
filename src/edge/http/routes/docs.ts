// The API's own description, generated from the route table it is served by.
import { buildOpenApi } from '../openapi.js';
import { route, type RouteDef } from '../route.js';
import type { RouteServices } from '../services.js';

/** `table` is the full route table builder (passed in, so this module needs no import cycle). */
export function docsRoutes(s: RouteServices, table: (s: RouteServices) => RouteDef[]): RouteDef[] {
  let doc: ReturnType<typeof buildOpenApi> | undefined;
  return [
    route({
      method: 'GET', path: '/api/v1/openapi.json', auth: 'none', summary: 'OpenAPI 3.1 document of this API',
      handler: async () => {
        // Built on first request: the table is complete only once buildRoutes has returned.
        doc ??= buildOpenApi(table(s), { version: s.version });
        return { status: 200, body: doc };
      },
    }),
  ];
}
