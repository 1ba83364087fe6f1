import type { RouteDef } from '../route.js';
import type { RouteServices } from '../services.js';
import { dialogRoutes } from './dialogs.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { managementRoutes } from './management.js';
import { messageRoutes } from './messages.js';
import { uploadRoutes } from './uploads.js';

/** The one route table: routing, validation, docs, metrics labels and logs all read it. */
export const buildRoutes = (s: RouteServices): RouteDef[] => [
  ...healthRoutes(s),
  ...docsRoutes(s, buildRoutes),
  ...managementRoutes(s),
  ...dialogRoutes(s),
  ...messageRoutes(s),
  ...uploadRoutes(s),
];
