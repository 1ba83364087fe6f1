// The peer: Socket.IO over its websocket transport, acknowledgement callbacks for sends.
import { io, type Socket } from 'socket.io-client';
import type { Driver, DriverConn, Handlers } from './types.js';

interface Ack {
  ok: boolean;
  code?: string;
  message_id?: string;
}

export function socketioDriver(baseUrl: string): Driver {
  return {
    name: 'socketio',
    connect(userId: string, h: Handlers, timeoutMs: number): Promise<DriverConn> {
      return new Promise((resolve, reject) => {
        const socket: Socket = io(baseUrl, {
          transports: ['websocket'],
          query: { user_id: userId },
          forceNew: true,
          reconnection: false,
          timeout: timeoutMs,
        });
        let greeted = false;
        const timer = setTimeout(() => {
          if (!greeted) {
            socket.disconnect();
            reject(new Error('timeout'));
          }
        }, timeoutMs);
        const conn: DriverConn = {
          send(corrId, dialogId, content, clientMsgId) {
            socket.emit('send', { id: corrId, dialog_id: dialogId, content, client_msg_id: clientMsgId }, (a: Ack) => {
              if (a && a.ok) h.ack(userId, corrId);
              else h.error(userId, corrId, a?.code ?? 'ERROR');
            });
          },
          async close() {
            socket.disconnect();
          },
        };
        // The server emits `connected` once the socket has joined its dialogs' rooms.
        socket.on('connected', () => {
          greeted = true;
          clearTimeout(timer);
          resolve(conn);
        });
        socket.on('message.new', (m: { content?: string }) => h.message(userId, typeof m?.content === 'string' ? m.content : ''));
        socket.on('connect_error', (e) => {
          if (!greeted) {
            clearTimeout(timer);
            reject(e);
          }
        });
        socket.on('disconnect', (reason) => {
          if (greeted && reason !== 'io client disconnect') h.closed(userId, reason === 'io server disconnect' ? 4000 : 1006);
        });
      });
    },
  };
}
