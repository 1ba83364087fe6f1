// The peer: the chat a TypeScript team would otherwise write. Socket.IO with its Redis adapter,
// one room per dialog (joined at connect from the participants table), every message sanitised
// and persisted to PostgreSQL (same pool size as the service) before it is acknowledged and
// emitted to the room. A plain list-dialogs endpoint with the obvious query serves scenario 5.
//
// Env: PORT, DATABASE_URL, REDIS_URL, POOL_SIZE, KEY_PREFIX.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import sanitizeHtml from 'sanitize-html';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';

const port = Number(process.env.PORT ?? 8090);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 20) });
const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sub = pub.duplicate();

const LIST_SQL = `
  SELECT d.id, d.object_id, d.object_type, d.title, d.created_at, p.unread_count, p.is_archived, p.is_pinned,
    (SELECT count(*)::int FROM dialog_participants c WHERE c.dialog_id = d.id) AS participants_count,
    lm.id AS last_message_id, lm.content AS last_message_content, lm.sender_id AS last_message_sender, lm.sent_at AS last_message_at
  FROM dialog_participants p
  JOIN dialogs d ON d.id = p.dialog_id
  LEFT JOIN LATERAL (SELECT m.id, m.content, m.sender_id, m.sent_at FROM messages m
                     WHERE m.dialog_id = d.id ORDER BY m.sent_at DESC LIMIT 1) lm ON true
  WHERE p.user_id = $1
  ORDER BY d.created_at DESC, d.id DESC
  LIMIT $2`;

const http = createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://x');
  if (u.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (req.method === 'GET' && u.pathname === '/api/v1/dialogs') {
    const userId = u.searchParams.get('user_id');
    const limit = Math.min(100, Number(u.searchParams.get('limit') ?? 50));
    if (!userId) {
      res.writeHead(400).end();
      return;
    }
    pool.query(LIST_SQL, [userId, limit]).then(
      (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: r.rows })),
      () => res.writeHead(500).end(),
    );
    return;
  }
  // socket.io handles its own path; anything else is not ours.
  if (!u.pathname.startsWith('/socket.io')) res.writeHead(404).end();
});

const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  adapter: createAdapter(pub, sub, { key: `${process.env.KEY_PREFIX ?? 'bench'}:socket.io` }),
});

interface SendFrame {
  id?: string;
  dialog_id?: unknown;
  content?: unknown;
  client_msg_id?: unknown;
}

io.on('connection', (socket) => {
  const userId = socket.handshake.query.user_id;
  if (typeof userId !== 'string' || userId === '') {
    socket.disconnect(true);
    return;
  }
  socket.on('send', async (f: SendFrame, ack: (r: unknown) => void) => {
    if (typeof ack !== 'function') return;
    if (!f || typeof f.dialog_id !== 'string' || typeof f.content !== 'string' || f.content.length === 0) {
      return ack({ ok: false, code: 'INVALID_INPUT' });
    }
    if (!socket.rooms.has(f.dialog_id)) return ack({ ok: false, code: 'FORBIDDEN' });
    const content = sanitizeHtml(f.content);
    const id = randomUUID();
    try {
      const r = await pool.query(
        'INSERT INTO messages (id, dialog_id, sender_id, content, client_msg_id) VALUES ($1, $2, $3, $4, $5) RETURNING sent_at',
        [id, f.dialog_id, userId, content, typeof f.client_msg_id === 'string' ? f.client_msg_id : null],
      );
      const message = {
        id, dialog_id: f.dialog_id, sender_id: userId, content,
        sent_at: (r.rows[0].sent_at as Date).toISOString(), message_type: 'user',
      };
      io.to(f.dialog_id).emit('message.new', message);
      ack({ ok: true, message_id: id, message });
    } catch {
      ack({ ok: false, code: 'INTERNAL_ERROR' });
    }
  });
  pool.query('SELECT dialog_id FROM dialog_participants WHERE user_id = $1', [userId]).then(
    (r) => {
      socket.join(r.rows.map((row) => row.dialog_id as string));
      socket.emit('connected', { employee_id: userId });
    },
    () => socket.disconnect(true),
  );
});

http.listen(port, '127.0.0.1', () => console.log(`socketio-peer listening on ${port}`));

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    io.close();
    Promise.allSettled([pool.end(), pub.quit(), sub.quit()]).finally(() => process.exit(0));
  });
}
