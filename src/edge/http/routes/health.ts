import { route, type RouteDef } from '../route.js';
import type { RouteServices } from '../services.js';

export function healthRoutes(s: RouteServices): RouteDef[] {
  return [
    route({
      method: 'GET', path: '/health', auth: 'none', summary: 'Liveness', exemptFromRateLimit: true,
      handler: async () => ({ status: 200, body: { status: 'ok', version: s.version } }),
    }),
    route({
      method: 'GET', path: '/health/ready', auth: 'none', summary: 'Readiness, with each dependency by name', exemptFromRateLimit: true,
      handler: async () => {
        const { ready, checks } = await s.readiness();
        return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not_ready', checks } };
      },
    }),
    route({
      method: 'GET', path: '/metrics', auth: 'none', summary: 'Prometheus metrics', exemptFromRateLimit: true,
      handler: async () => ({ status: 200, raw: { contentType: 'text/plain; version=0.0.4; charset=utf-8', text: await s.metricsText() } }),
    }),
  ];
}
