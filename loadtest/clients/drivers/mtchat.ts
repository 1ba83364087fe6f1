// The service under test: msgpack frames over its WebSocket, legacy ?user_id= identity.
import { msgpackWsDriver } from './msgpack-ws.js';
import type { Driver } from './types.js';

export const mtchatDriver = (baseUrl: string): Driver => msgpackWsDriver('mtchat', baseUrl);
