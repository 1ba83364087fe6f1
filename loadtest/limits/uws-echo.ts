// The limit for the socket side: uWebSockets.js with nothing behind it. It speaks the service's
// msgpack frames, subscribes each socket to its dialogs' topics at connect (membership from the
// layout file the bench writes), and answers a send by publishing message.new to the dialog's
// topic (encoded once) and acking the sender: no database, no broker.
//
// Env: PORT, LAYOUT_FILE (JSON: {dialogs: [{id, members}]}).
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import uWS from 'uWebSockets.js';
import { decode, encode } from '@msgpack/msgpack';

const PROTOCOL = 'mtchat.v1.msgpack';
const port = Number(process.env.PORT ?? 8091);
const layout = JSON.parse(readFileSync(process.env.LAYOUT_FILE ?? '', 'utf8')) as { dialogs: { id: string; members: string[] }[] };
const dialogsOf = new Map<string, string[]>();
const members = new Map<string, Set<string>>();
for (const d of layout.dialogs) {
  members.set(d.id, new Set(d.members));
  for (const u of d.members) {
    let l = dialogsOf.get(u);
    if (!l) dialogsOf.set(u, (l = []));
    l.push(d.id);
  }
}
const seqs = new Map<string, number>();

interface UserData {
  userId: string;
}

const app = uWS.App();
app.ws<UserData>('/api/v1/ws', {
  compression: uWS.DISABLED,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxPayloadLength: 512 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  upgrade: (res, req, ctx) => {
    const userId = new URLSearchParams(req.getQuery() ?? '').get('user_id');
    const protocols = req.getHeader('sec-websocket-protocol');
    if (!userId) {
      res.writeStatus('400 Bad Request').end('Missing user_id query parameter');
      return;
    }
    res.upgrade<UserData>(
      { userId },
      req.getHeader('sec-websocket-key'),
      protocols.split(',').map((s) => s.trim()).includes(PROTOCOL) ? PROTOCOL : '',
      req.getHeader('sec-websocket-extensions'),
      ctx,
    );
  },
  open: (ws) => {
    const u = ws.getUserData().userId;
    for (const d of dialogsOf.get(u) ?? []) ws.subscribe(d);
    ws.send(encode({ type: 'connected', employee_id: u }), true);
  },
  message: (ws, data) => {
    let f: Record<string, unknown>;
    try {
      f = decode(new Uint8Array(data)) as Record<string, unknown>;
    } catch {
      ws.send(encode({ type: 'error', code: 'BAD_REQUEST', message: 'Malformed frame: not valid msgpack' }), true);
      return;
    }
    if (f.type !== 'send' || typeof f.dialog_id !== 'string' || typeof f.content !== 'string') return;
    const userId = ws.getUserData().userId;
    if (!members.get(f.dialog_id)?.has(userId)) {
      ws.send(encode({ type: 'error', id: f.id, code: 'FORBIDDEN', message: 'Not a participant. Join the dialog first.' }), true);
      return;
    }
    const seq = (seqs.get(f.dialog_id) ?? 0) + 1;
    seqs.set(f.dialog_id, seq);
    const id = randomUUID();
    const sentAt = new Date().toISOString();
    const event = { type: 'message.new', id, dialog_id: f.dialog_id, content: f.content, sent_at: sentAt, message_type: 'user', sender_id: userId, seq };
    app.publish(f.dialog_id, encode(event), true);
    const message = {
      id, dialog_id: f.dialog_id, sender_id: userId, content: f.content, sent_at: sentAt,
      last_edited_at: null, reply_to_id: null, message_type: 'user',
    };
    ws.send(encode({ type: 'ack', id: f.id, message_id: id, seq, message }), true);
  },
});
app.get('/health', (res) => {
  res.end('ok');
});
app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`uws-echo: cannot listen on ${port}`);
    process.exit(1);
  }
  console.log(`uws-echo listening on ${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
