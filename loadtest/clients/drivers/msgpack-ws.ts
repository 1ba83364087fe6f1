// A msgpack WebSocket client for the mtchat protocol (docs/protocol.md), shared by the mtchat
// driver and the uWS limit server, which speaks the same frames.
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';
import type { Driver, DriverConn, Handlers } from './types.js';

export const MSGPACK_PROTOCOL = 'mtchat.v1.msgpack';

// fixmap header, then "type" (0xa4 + 4 bytes), then "message.new" (0xab + 11 bytes).
const MESSAGE_NEW_PREFIX = Buffer.concat([Buffer.from([0xa4]), Buffer.from('type'), Buffer.from([0xab]), Buffer.from('message.new')]);

/** True when the frame is a msgpack map whose first key is type = "message.new". */
function isMessageNew(b: Buffer): boolean {
  if (b.length < 1 + MESSAGE_NEW_PREFIX.length) return false;
  const h = b[0];
  if (!((h >= 0x80 && h <= 0x8f) || h === 0xde)) return false;
  const off = h === 0xde ? 3 : 1;
  return b.compare(MESSAGE_NEW_PREFIX, 0, MESSAGE_NEW_PREFIX.length, off, off + MESSAGE_NEW_PREFIX.length) === 0;
}

type Frame = Record<string, unknown>;

export function msgpackWsDriver(name: string, baseUrl: string): Driver {
  const wsBase = baseUrl.replace(/^http/, 'ws');
  return {
    name,
    connect(userId: string, h: Handlers, timeoutMs: number): Promise<DriverConn> {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(`${wsBase}/api/v1/ws?user_id=${encodeURIComponent(userId)}`, [MSGPACK_PROTOCOL], {
          perMessageDeflate: false,
          handshakeTimeout: timeoutMs,
        });
        let greeted = false;
        const timer = setTimeout(() => {
          if (!greeted) {
            ws.terminate();
            reject(new Error('timeout'));
          }
        }, timeoutMs);
        const conn: DriverConn = {
          send(corrId, dialogId, content, clientMsgId) {
            ws.send(encode({ type: 'send', id: corrId, dialog_id: dialogId, content, client_msg_id: clientMsgId }));
          },
          close() {
            return new Promise<void>((r) => {
              if (ws.readyState === WebSocket.CLOSED) return r();
              ws.once('close', () => r());
              ws.close(1000);
              setTimeout(() => {
                ws.terminate();
                r();
              }, 2000).unref();
            });
          },
        };
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          if (isBinary && isMessageNew(data) && !h.interested(userId)) return h.message(userId, null);
          let f: Frame;
          try {
            f = (isBinary ? decode(data) : JSON.parse(data.toString('utf8'))) as Frame;
          } catch {
            return h.error(userId, undefined, 'UNDECODABLE');
          }
          switch (f.type) {
            case 'message.new':
              return h.message(userId, typeof f.content === 'string' ? f.content : '');
            case 'ack':
              return h.ack(userId, String(f.id));
            case 'error':
              return h.error(userId, typeof f.id === 'string' ? f.id : undefined, String(f.code));
            case 'connected':
              greeted = true;
              clearTimeout(timer);
              return resolve(conn);
            default:
              return;
          }
        });
        ws.on('unexpected-response', (_req, res) => {
          clearTimeout(timer);
          reject(new Error(`http ${res.statusCode}`));
          ws.terminate();
        });
        ws.on('error', (e) => {
          if (!greeted) {
            clearTimeout(timer);
            reject(e);
          }
        });
        ws.on('close', (code) => {
          if (greeted) h.closed(userId, code);
          else {
            clearTimeout(timer);
            reject(new Error(`closed ${code} before connected`));
          }
        });
      });
    },
  };
}
