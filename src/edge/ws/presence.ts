// Glue between the socket lifecycle and presence: Redis counts connections, and only the first
// open / last close of a user is announced to the users who share a dialog with them.
import type { PresencePublisher } from '../../bus/presence-publisher.js';
import type { Presence } from '../../services/presence.js';
import type { WsPresence } from './server.js';

export function socketPresence(presence: Presence, publisher: PresencePublisher): WsPresence {
  return {
    async connected(userId, connId, dialogs) {
      if (await presence.connected(userId, connId)) publisher.publish(userId, true, await dialogs());
    },
    async disconnected(userId, connId, dialogs) {
      if (await presence.disconnected(userId, connId)) publisher.publish(userId, false, await dialogs());
    },
    refresh: (userId, connId) => presence.refresh(userId, connId),
  };
}
