// WebSocket load over the binary protocol: every VU is one participant holding a msgpack socket
// (subprotocol mtchat.v1.msgpack), sending into its dialog and receiving everyone's messages.
// Measures send→ack and send→delivery (its own message.new coming back through the fan-out).
// Run: k6 run loadtest/k6/ws.ts -e BASE_URL=… [-e ADMIN_TOKEN=…] [-e JWT_SECRET=…]
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { clearInterval, setInterval, setTimeout } from 'k6/timers';
import { WebSocket, type MessageEvent, type ErrorEvent } from 'k6/websockets';
import { DIALOGS, MAX_ERROR_RATE, P99_MS, createDialogs, wsUrlFor, type Dialog } from './lib/common.ts';
import { decode, encode, type MsgValue } from './lib/msgpack.ts';

export const PROTOCOL = 'mtchat.v1.msgpack';
const VUS = Number(__ENV.VUS ?? 100);
const DURATION = __ENV.DURATION ?? '1m';
const SESSION_MS = Number(__ENV.SESSION_SECONDS ?? 30) * 1000;
const SEND_INTERVAL_MS = Number(__ENV.SEND_INTERVAL_MS ?? 1000);

const sendAck = new Trend('ws_send_ack', true);
const sendDelivery = new Trend('ws_send_delivery', true);
const connectTime = new Trend('ws_connect', true);
const errors = new Rate('ws_errors');
const deliveries = new Counter('ws_deliveries');
const framesIn = new Counter('ws_frames_in');

export const options: Options = {
  setupTimeout: '5m',
  scenarios: {
    sockets: { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '10s' },
  },
  thresholds: {
    ws_send_ack: [`p(99)<${P99_MS}`],
    ws_send_delivery: [`p(99)<${P99_MS * 2}`],
    ws_errors: [`rate<${MAX_ERROR_RATE}`],
    checks: [`rate>${1 - MAX_ERROR_RATE}`],
  },
};

export function setup(): { dialogs: Dialog[] } {
  return { dialogs: createDialogs(Math.min(DIALOGS, VUS)) };
}

type Frame = { [k: string]: MsgValue | undefined };

function asFrame(data: MessageEvent['data']): Frame | null {
  if (!(data instanceof ArrayBuffer)) return null;
  const v = decode(data);
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? v : null;
}

export default function (data: { dialogs: Dialog[] }): void {
  const vu = exec.vu.idInTest - 1;
  const dialog = data.dialogs[vu % data.dialogs.length];
  const user = dialog.users[Math.floor(vu / data.dialogs.length) % dialog.users.length];
  const iteration = exec.vu.iterationInScenario;

  const opened = Date.now();
  const ws = new WebSocket(wsUrlFor(user), null, {
    headers: { 'Sec-WebSocket-Protocol': PROTOCOL },
    tags: { name: 'GET /api/v1/ws' },
  });
  ws.binaryType = 'arraybuffer';

  /** Correlation id → when it was sent; message id → when it was sent (for the delivery). */
  const pendingAcks = new Map<string, number>();
  const pendingDelivery = new Map<string, number>();
  let counter = 0;
  let connected = false;
  let timer: number | undefined;

  ws.onopen = () => {
    connectTime.add(Date.now() - opened);
  };

  ws.onmessage = (e?: MessageEvent) => {
    if (!e) return;
    framesIn.add(1);
    const f = asFrame(e.data);
    if (!check(f, { 'frame is a msgpack object': (x) => x !== null }) || f === null) {
      errors.add(true);
      return;
    }
    switch (f.type) {
      case 'connected': {
        connected = check(f, { 'connected names the user': (x) => x.employee_id === user });
        errors.add(!connected);
        timer = setInterval(() => {
          const id = `${vu}-${iteration}-${counter++}`;
          pendingAcks.set(id, Date.now());
          ws.send(encode({ type: 'send', id, dialog_id: dialog.id, content: `<p>k6 ${id}</p>`, client_msg_id: `k6-${id}` }));
        }, SEND_INTERVAL_MS);
        break;
      }
      case 'ack': {
        const id = String(f.id);
        const sent = pendingAcks.get(id);
        if (sent === undefined) break;
        pendingAcks.delete(id);
        const ok = check(f, {
          'ack carries message_id and seq': (x) => typeof x.message_id === 'string' && typeof x.seq === 'number',
        });
        errors.add(!ok);
        if (!ok) break;
        const now = Date.now();
        sendAck.add(now - sent);
        // The message.new may even beat the ack; then its delivery is measured at the ack.
        const early = pendingDelivery.get(String(f.message_id));
        if (early === -1) {
          pendingDelivery.delete(String(f.message_id));
          sendDelivery.add(now - sent);
        } else {
          pendingDelivery.set(String(f.message_id), sent);
        }
        break;
      }
      case 'message.new': {
        deliveries.add(1);
        if (f.sender_id !== user) break;
        const id = String(f.id);
        const sent = pendingDelivery.get(id);
        if (sent === undefined) pendingDelivery.set(id, -1);
        else {
          pendingDelivery.delete(id);
          sendDelivery.add(Date.now() - sent);
        }
        break;
      }
      case 'error':
        errors.add(true);
        check(f, { 'no error frame': () => false });
        break;
      default:
        // presence.update, participant.*, pong and the rest: counted as frames in only.
        break;
    }
  };

  ws.onerror = (e?: ErrorEvent) => {
    errors.add(true);
    check(e, { 'socket error': () => false });
  };

  setTimeout(() => {
    if (timer !== undefined) clearInterval(timer);
    // Give the last sends a moment to be acknowledged before they count as lost.
    setTimeout(() => {
      for (let i = 0; i < pendingAcks.size; i++) errors.add(true);
      check(pendingAcks.size, { 'every send was acknowledged': (n) => n === 0 });
      check(connected, { 'socket got connected': (c) => c });
      ws.close(1000, 'done');
    }, Math.min(2000, SEND_INTERVAL_MS * 2));
  }, SESSION_MS);
}
