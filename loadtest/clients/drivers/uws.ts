// The limit: loadtest/limits/uws-echo.ts speaks the same msgpack frames, with no persistence.
import { msgpackWsDriver } from './msgpack-ws.js';
import type { Driver } from './types.js';

export const uwsDriver = (baseUrl: string): Driver => msgpackWsDriver('uws', baseUrl);
