// Chat API, message side: send, get, edit, delete, list (paging modes), mark as read.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog, type ApiResponse } from '../helpers/api.js';
import type { DomainEvent } from '../../src/domain/events.js';

const srv = await startTestServer();
t.teardown(() => srv.close());
const api = client(srv.url);

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
const MESSAGE_KEYS = ['id', 'dialog_id', 'sender_id', 'content', 'sent_at', 'last_edited_at', 'reply_to_id', 'message_type'];
const JOIN_FIRST = 'Not a participant. Join the dialog first.';
const TOO_LONG = 'Message content exceeds maximum length of 50000 characters';
const UNKNOWN = '0195a0d1-04aa-7c3e-b1f0-5e6f7a8b9c0d';

let seqNo = 0;
/** A dialog whose participants were added by the host; no system message unless `withSystem`. */
async function dialog(users: string[], withSystem = false): Promise<string> {
  const participants = users.map((u) => ({ user_id: u, display_name: u.toUpperCase() }));
  if (withSystem) return createDialog(api, { object_id: `msg-${++seqNo}`, participants });
  const id = await createDialog(api, { object_id: `msg-${++seqNo}`, participants: [] });
  for (const p of participants) {
    const r = await api('POST', `/api/v1/management/dialogs/${id}/participants`, { body: p });
    if (r.status !== 201) throw new Error(`add participant: ${r.status} ${r.text}`);
  }
  return id;
}

const send = (d: string, user: string, body: Record<string, unknown>) => api('POST', `/api/v1/dialogs/${d}/messages`, { user, body });
async function sent(d: string, user: string, body: Record<string, unknown>): Promise<any> {
  const r = await send(d, user, body);
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${r.text}`);
  return r.json.data;
}
const list = (d: string, user: string, query: Record<string, string | number> = {}) => api('GET', `/api/v1/dialogs/${d}/messages`, { user, query });
const key = (d: string, ext = 'pdf') => `dialogs/${d}/${randomUUID()}.${ext}`;
const att = (d: string, over: Record<string, unknown> = {}) => ({ s3_key: key(d), filename: 'cmr.pdf', content_type: 'application/pdf', size: 1234, ...over });

type Asserts = Pick<typeof t, 'equal' | 'strictSame'>;
function isError(t: Asserts, r: ApiResponse, status: number, code: string, message: string): void {
  t.equal(r.status, status, `status ${status} (${code})`);
  t.strictSame(r.json, { error: { code, message } }, message);
}
const eventsOf = (d: string): DomainEvent[] => srv.events.filter((e) => e.dialogId === d);
const dbCount = async (sql: string, params: unknown[]) => Number((await srv.sql(sql, params)).rows[0].n);

t.test('send: exact Message shape, with and without attachments', async (t) => {
  const d = await dialog(['s1a', 's1b']);
  const r = await send(d, 's1a', { content: '<p>Truck is at gate 4</p>' });
  t.equal(r.status, 200);
  const m = r.json.data;
  t.strictSame(Object.keys(r.json), ['data']);
  t.strictSame(Object.keys(m), MESSAGE_KEYS, 'all keys, in order, and no attachments key');
  t.match(m.id, UUID_V7);
  t.match(m.sent_at, TIME);
  t.strictSame(m, {
    id: m.id, dialog_id: d, sender_id: 's1a', content: '<p>Truck is at gate 4</p>', sent_at: m.sent_at,
    last_edited_at: null, reply_to_id: null, message_type: 'user',
  });

  const a1 = att(d, { filename: 'scan.pdf', size: 245760 });
  const a2 = att(d, { s3_key: key(d, 'png'), filename: 'photo.png', content_type: 'image/png', size: 1 });
  const a3 = att(d, { s3_key: key(d, 'bin'), filename: 'blob', content_type: '', size: 104857600 });
  const w = await send(d, 's1b', { content: 'see files', attachments: [a1, a2, a3] });
  t.equal(w.status, 200);
  const wm = w.json.data;
  t.strictSame(Object.keys(wm), [...MESSAGE_KEYS, 'attachments']);
  t.equal(wm.attachments.length, 3);
  const expected = [a1, a2, a3].map((a, i) => ({ id: wm.attachments[i].id, filename: a.filename, content_type: a.content_type, size: a.size, url: '' }));
  t.strictSame(wm.attachments, expected, 'attachments in request order; url "" without S3; no width/height/thumbnail_url');
  for (const a of wm.attachments) t.match(a.id, UUID_V7);
  const rows = await srv.sql('SELECT s3_key, filename, content_type, size::int AS size FROM attachments WHERE message_id = $1 ORDER BY created_at, id', [wm.id]);
  t.strictSame(rows.rows, [a1, a2, a3].map((a) => ({ s3_key: a.s3_key, filename: a.filename, content_type: a.content_type, size: a.size })));
});

t.test('send: checks in order', async (t) => {
  const d = await dialog(['s2a']);
  const other = await dialog(['s2z']);

  // 1. unknown dialog wins over everything else.
  isError(t, await send(UNKNOWN, 's2a', { content: 'x'.repeat(60000), attachments: Array.from({ length: 11 }, () => att(d)) }),
    404, 'DIALOG_NOT_FOUND', 'Dialog not found');
  // 2. not a participant wins over body checks.
  isError(t, await send(d, 'stranger', { content: 'x'.repeat(60000), attachments: Array.from({ length: 11 }, () => att(d)) }),
    403, 'FORBIDDEN', JOIN_FIRST);
  isError(t, await send(d, 's2z', { content: 'hi' }), 403, 'FORBIDDEN', JOIN_FIRST);
  // 3. more than 10 attachments, before any per-attachment rule.
  isError(t, await send(d, 's2a', { content: 'x'.repeat(60000), attachments: Array.from({ length: 11 }, () => att(d, { s3_key: '../x', size: 0 })) }),
    400, 'TOO_MANY_ATTACHMENTS', 'Maximum 10 attachments per message');
  const ten = await send(d, 's2a', { content: 'ten', attachments: Array.from({ length: 10 }, () => att(d)) });
  t.equal(ten.status, 200, 'exactly 10 attachments are fine');
  t.equal(ten.json.data.attachments.length, 10);

  // 4. S3 key rules, in the documented order.
  const keyCases: [string, string][] = [
    [`dialogs/${d}/../${other}/x.pdf`, 'Invalid S3 key: path traversal not allowed'],
    [`..%2e/dialogs/${d}/x\0.pdf`, 'Invalid S3 key: path traversal not allowed'],
    [`dialogs/${d}/%2e%2e/x.pdf`, 'Invalid S3 key: encoded characters not allowed'],
    [`dialogs/${d}/%2E%2E/x.pdf`, 'Invalid S3 key: encoded characters not allowed'],
    [`dialogs/${d}/%2Ex\0.pdf`, 'Invalid S3 key: encoded characters not allowed'],
    [`dialogs/${d}/x\0.pdf`, 'Invalid S3 key: null bytes not allowed'],
    [`other/x\0.pdf`, 'Invalid S3 key: null bytes not allowed'],
    [`dialogs/${other}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`dialogs/${d}x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`dialogs/${d.toUpperCase()}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`x/dialogs/${d}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
  ];
  for (const [k, msg] of keyCases) {
    // The key rule comes before the MIME and size rules of the same attachment.
    isError(t, await send(d, 's2a', { content: 'x', attachments: [att(d, { s3_key: k, content_type: 'x/y', size: 0 })] }), 400, 'INVALID_INPUT', msg);
  }
  // Attachments are checked one after another: the first bad one answers.
  isError(t, await send(d, 's2a', { content: 'x', attachments: [att(d, { content_type: 'x/y' }), att(d, { s3_key: '..' })] }),
    400, 'BAD_REQUEST', "File type 'x/y' is not allowed");
  // MIME before size.
  isError(t, await send(d, 's2a', { content: 'x', attachments: [att(d, { content_type: 'x/y', size: 0 })] }), 400, 'BAD_REQUEST', "File type 'x/y' is not allowed");
  isError(t, await send(d, 's2a', { content: 'x', attachments: [att(d, { content_type: 'text/plain; charset=utf-8' })] }),
    400, 'BAD_REQUEST', "File type 'text/plain; charset=utf-8' is not allowed");
  isError(t, await send(d, 's2a', { content: 'x', attachments: [att(d, { content_type: 'Image/PNG' })] }), 400, 'BAD_REQUEST', "File type 'Image/PNG' is not allowed");
  for (const size of [0, -1, 104857601]) {
    // Size before content length.
    isError(t, await send(d, 's2a', { content: 'x'.repeat(50001), attachments: [att(d, { size })] }), 400, 'BAD_REQUEST', 'Invalid file size');
  }

  // 5. content length in UTF-8 bytes of the raw input.
  isError(t, await send(d, 's2a', { content: 'a'.repeat(50001) }), 400, 'INVALID_INPUT', TOO_LONG);
  isError(t, await send(d, 's2a', { content: 'é'.repeat(25001) }), 400, 'INVALID_INPUT', TOO_LONG);
  const max = await send(d, 's2a', { content: 'a'.repeat(50000) });
  t.equal(max.status, 200, '50000 bytes is the maximum');
  t.equal(max.json.data.content.length, 50000);
  const maxMb = await send(d, 's2a', { content: 'é'.repeat(25000) });
  t.equal(maxMb.status, 200, '25000 two-byte characters are 50000 bytes');

  // Nothing was written by any of the refused sends.
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE dialog_id = $1', [d]), 3);
});

t.test('send: empty content and sanitising', async (t) => {
  const d = await dialog(['s3a']);
  for (const content of ['', '   ', '\n\t ', '<p></p>', '<p> </p>', '<script>alert(1)</script>', '<img src=x onerror=alert(1)>']) {
    isError(t, await send(d, 's3a', { content }), 400, 'INVALID_INPUT', 'content is required');
  }
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE dialog_id = $1', [d]), 0);

  const withFile = await send(d, 's3a', { content: '', attachments: [att(d)] });
  t.equal(withFile.status, 200, 'empty content with an attachment is valid');
  t.equal(withFile.json.data.content, '');
  t.equal(withFile.json.data.attachments.length, 1);

  const cases: [string, string][] = [
    ['<p onclick="steal()">Click</p><script>alert(\'x\')</script>', '<p>Click</p>'],
    ['Tom & Jerry > Spike', 'Tom &amp; Jerry &gt; Spike'],
    ['<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'],
    ['<a href="https://example.com" target="_blank">link</a>', '<a href="https://example.com" target="_blank" rel="noopener noreferrer">link</a>'],
    ['<div>text</div>', 'text'],
  ];
  for (const [input, output] of cases) {
    const m = await sent(d, 's3a', { content: input });
    t.equal(m.content, output, `sanitised: ${input}`);
    const stored = await srv.sql('SELECT content FROM messages WHERE id = $1', [m.id]);
    t.equal(stored.rows[0].content, output, 'stored sanitised');
  }
});

t.test('send: reply_to', async (t) => {
  const d = await dialog(['s4a', 's4b'], true);
  const other = await dialog(['s4a']);
  const target = await sent(d, 's4b', { content: 'question' });
  const foreign = await sent(other, 's4a', { content: 'elsewhere' });

  const reply = await send(d, 's4a', { content: 'answer', reply_to: target.id });
  t.equal(reply.status, 200);
  t.equal(reply.json.data.reply_to_id, target.id);
  const upper = await send(d, 's4a', { content: 'answer 2', reply_to: target.id.toUpperCase() });
  t.equal(upper.status, 200);
  t.equal(upper.json.data.reply_to_id, target.id, 'answered lower-case');
  const nul = await send(d, 's4a', { content: 'no reply', reply_to: null });
  t.equal(nul.status, 200);
  t.equal(nul.json.data.reply_to_id, null);

  isError(t, await send(d, 's4a', { content: 'x', reply_to: foreign.id }), 400, 'INVALID_INPUT', 'reply_to message not found in this dialog');
  isError(t, await send(d, 's4a', { content: 'x', reply_to: UNKNOWN }), 400, 'INVALID_INPUT', 'reply_to message not found in this dialog');

  const sys = await srv.sql(`SELECT id FROM messages WHERE dialog_id = $1 AND message_type = 'system'`, [d]);
  t.equal(sys.rows.length, 1, 'chat_created system message');
  const toSys = await send(d, 's4a', { content: 'replying to the system', reply_to: sys.rows[0].id });
  t.equal(toSys.status, 200, 'replying to a system message is allowed');
  t.equal(toSys.json.data.reply_to_id, sys.rows[0].id);
});

t.test('send: reusing an s3_key is a 400, not a 500', async (t) => {
  const d = await dialog(['s5a', 's5b']);
  const a = att(d);
  await sent(d, 's5a', { content: 'first', attachments: [a] });
  const again = await send(d, 's5b', { content: 'second', attachments: [att(d), { ...a, filename: 'other.pdf' }] });
  t.equal(again.status, 400);
  t.equal(again.json.error.code, 'INVALID_INPUT');
  t.equal(again.json.error.message, `Invalid S3 key: already attached to another message: ${a.s3_key}`);
  const k = key(d);
  const twice = await send(d, 's5b', { content: 'twice', attachments: [att(d, { s3_key: k }), att(d, { s3_key: k, filename: 'again.pdf' })] });
  t.equal(twice.status, 400, 'the same key twice in one message');
  t.equal(twice.json.error.code, 'INVALID_INPUT');
  t.equal(twice.json.error.message, 's3_key is used twice in this message');
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE dialog_id = $1', [d]), 1);
  t.equal(await dbCount('SELECT count(*) AS n FROM attachments WHERE s3_key = $1', [a.s3_key]), 1);
});

t.test('send: client_msg_id idempotency', async (t) => {
  const d = await dialog(['s6a', 's6b']);
  const d2 = await dialog(['s6a']);
  const before = eventsOf(d).length;
  const first = await send(d, 's6a', { content: 'once', client_msg_id: 'k-1', attachments: [att(d)] });
  t.equal(first.status, 200);
  const second = await send(d, 's6a', { content: 'once', client_msg_id: 'k-1', attachments: [att(d)] });
  t.equal(second.status, 200);
  t.strictSame(second.json.data, first.json.data, 'the retry answers the first message');
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE dialog_id = $1 AND client_msg_id = $2', [d, 'k-1']), 1);
  t.equal(await dbCount('SELECT count(*) AS n FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.dialog_id = $1', [d]), 1);
  const news = eventsOf(d).slice(before).filter((e) => e.event.type === 'message.new');
  t.equal(news.length, 1, 'one message.new');

  const b = await send(d, 's6b', { content: 'same key, other sender', client_msg_id: 'k-1' });
  t.equal(b.status, 200);
  t.not(b.json.data.id, first.json.data.id, 'different senders may reuse a key');
  const elsewhere = await send(d2, 's6a', { content: 'same key, other dialog', client_msg_id: 'k-1' });
  t.equal(elsewhere.status, 200);
  t.not(elsewhere.json.data.id, first.json.data.id);
  const noKey1 = await sent(d, 's6a', { content: 'no key' });
  const noKey2 = await sent(d, 's6a', { content: 'no key' });
  t.not(noKey1.id, noKey2.id, 'without a key every send is new');
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE dialog_id = $1', [d]), 4);
});

t.test('events after send, edit and delete', async (t) => {
  const d = await dialog(['e1a', 'e1b']);
  const start = eventsOf(d).length;
  const q = await sent(d, 'e1b', { content: 'q' });
  const a1 = att(d);
  const m = await sent(d, 'e1a', { content: '<p>hi</p>', reply_to: q.id, attachments: [a1] });
  const ev = eventsOf(d).slice(start);
  t.equal(ev.length, 2);
  const plain = ev[0];
  t.equal(plain.toParticipants, true);
  t.strictSame(plain.event, { type: 'message.new', id: q.id, dialog_id: d, sender_id: 'e1b', content: 'q', sent_at: q.sent_at, message_type: 'user' },
    'no reply_to_id / attachments keys when there are none');
  const rich = ev[1];
  t.strictSame(rich.event, {
    type: 'message.new', id: m.id, dialog_id: d, sender_id: 'e1a', content: '<p>hi</p>', sent_at: m.sent_at, message_type: 'user',
    reply_to_id: q.id, attachments: [{ id: m.attachments[0].id, filename: a1.filename, content_type: a1.content_type, size: a1.size }],
  });
  t.type(plain.seq, 'number');
  t.ok(rich.seq! > plain.seq!, 'seq increases');
  const stored = await srv.sql('SELECT seq::int AS seq FROM messages WHERE id = $1', [m.id]);
  t.equal(stored.rows[0].seq, rich.seq, 'the message row carries its seq');

  const edit = await api('PUT', `/api/v1/dialogs/${d}/messages/${m.id}`, { user: 'e1a', body: { content: '<p>edited</p>' } });
  t.equal(edit.status, 200);
  const del = await api('DELETE', `/api/v1/dialogs/${d}/messages/${q.id}`, { user: 'e1b' });
  t.equal(del.status, 204);
  const later = eventsOf(d).slice(start + 2);
  t.equal(later.length, 2);
  t.strictSame(later[0].event, { type: 'message.edited', id: m.id, dialog_id: d, content: '<p>edited</p>', last_edited_at: edit.json.data.last_edited_at });
  t.strictSame(later[1].event, { type: 'message.deleted', id: q.id, dialog_id: d });
  t.ok(later.every((e) => e.toParticipants));

  const seqs = eventsOf(d).filter((e) => e.seq !== undefined).map((e) => e.seq!);
  t.ok(seqs.length >= 4);
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seq strictly increasing: ${seqs.join(',')}`);
  const dSeq = await srv.sql('SELECT last_seq::int AS n FROM dialogs WHERE id = $1', [d]);
  t.equal(dSeq.rows[0].n, seqs[seqs.length - 1], 'dialog.last_seq is the last event seq');
  // Other dialogs have their own sequence.
  const other = await dialog(['e1c']);
  await sent(other, 'e1c', { content: 'x' });
  const otherSeqs = eventsOf(other).filter((e) => e.seq !== undefined).map((e) => e.seq!);
  t.strictSame(otherSeqs, [1, 2], 'per-dialog numbering starts at 1');
});

t.test('get message', async (t) => {
  const d = await dialog(['g1a', 'g1b']);
  const m = await sent(d, 'g1a', { content: 'with file', attachments: [att(d)] });
  const r = await api('GET', `/api/v1/dialogs/${d}/messages/${m.id}`, { user: 'g1b' });
  t.equal(r.status, 200);
  t.strictSame(Object.keys(r.json.data), MESSAGE_KEYS, 'no attachments key, even when it has some');
  const { attachments: _a, ...plain } = m;
  t.strictSame(r.json.data, plain);
  const upper = await api('GET', `/api/v1/dialogs/${d.toUpperCase()}/messages/${m.id.toUpperCase()}`, { user: 'g1b' });
  t.equal(upper.status, 200);
  t.equal(upper.json.data.id, m.id);

  isError(t, await api('GET', `/api/v1/dialogs/${d}/messages/${UNKNOWN}`, { user: 'g1a' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  const other = await dialog(['g1a']);
  const foreign = await sent(other, 'g1a', { content: 'elsewhere' });
  isError(t, await api('GET', `/api/v1/dialogs/${d}/messages/${foreign.id}`, { user: 'g1a' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await api('GET', `/api/v1/dialogs/${d}/messages/${m.id}`, { user: 'g1z' }), 403, 'FORBIDDEN', JOIN_FIRST);
  isError(t, await api('GET', `/api/v1/dialogs/${UNKNOWN}/messages/${m.id}`, { user: 'g1a' }), 403, 'FORBIDDEN', JOIN_FIRST);
  const noUser = await api('GET', `/api/v1/dialogs/${d}/messages/${m.id}`);
  isError(t, noUser, 400, 'BAD_REQUEST', 'user_id query parameter required');
});

t.test('edit message', async (t) => {
  const d = await dialog(['ed1a', 'ed1b', 'ed1c'], true);
  const m = await sent(d, 'ed1a', { content: '<p>v1</p>' });
  const url = (id: string) => `/api/v1/dialogs/${d}/messages/${id}`;

  isError(t, await api('PUT', url(UNKNOWN), { user: 'ed1a', body: { content: 'x' } }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await api('PUT', `/api/v1/dialogs/${UNKNOWN}/messages/${m.id}`, { user: 'ed1a', body: { content: 'x' } }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await api('PUT', url(m.id), { user: 'ed1b', body: { content: 'x' } }), 403, 'NOT_MESSAGE_AUTHOR', 'Can only edit own messages');
  isError(t, await api('PUT', url(m.id), { user: 'stranger', body: { content: 'x' } }), 403, 'NOT_MESSAGE_AUTHOR', 'Can only edit own messages');
  const sys = (await srv.sql(`SELECT id FROM messages WHERE dialog_id = $1 AND message_type = 'system'`, [d])).rows[0].id;
  isError(t, await api('PUT', url(sys), { user: 'ed1a', body: { content: 'x' } }), 403, 'NOT_MESSAGE_AUTHOR', 'Can only edit own messages');
  isError(t, await api('PUT', url(m.id), { user: 'ed1a', body: { content: 'a'.repeat(50001) } }), 400, 'INVALID_INPUT', TOO_LONG);
  isError(t, await api('PUT', url(m.id), { user: 'ed1a', body: { content: 'ж'.repeat(25001) } }), 400, 'INVALID_INPUT', TOO_LONG);
  for (const content of ['', '  ', '<p></p>']) {
    isError(t, await api('PUT', url(m.id), { user: 'ed1a', body: { content } }), 400, 'INVALID_INPUT', 'content is required');
  }
  t.equal(await dbCount('SELECT count(*) AS n FROM message_edit_history WHERE message_id = $1', [m.id]), 0, 'refused edits leave no history');

  const r = await api('PUT', url(m.id), { user: 'ed1a', body: { content: '<p onclick="x()">v2</p>' } });
  t.equal(r.status, 200);
  t.strictSame(Object.keys(r.json.data), MESSAGE_KEYS);
  t.strictSame(r.json.data, { ...m, content: '<p>v2</p>', last_edited_at: r.json.data.last_edited_at });
  t.match(r.json.data.last_edited_at, TIME);
  const r3 = await api('PUT', url(m.id), { user: 'ed1a', body: { content: 'v3' } });
  t.equal(r3.status, 200);
  const hist = await srv.sql('SELECT old_content, edited_at FROM message_edit_history WHERE message_id = $1 ORDER BY edited_at, id', [m.id]);
  t.strictSame(hist.rows.map((h) => h.old_content), ['<p>v1</p>', '<p>v2</p>'], 'history holds the content before each edit');
  t.equal(new Date(hist.rows[1].edited_at).toISOString(), new Date(r3.json.data.last_edited_at).toISOString(), 'same moment as last_edited_at');
  const got = await api('GET', url(m.id), { user: 'ed1b' });
  t.equal(got.json.data.content, 'v3');
  t.equal(got.json.data.last_edited_at, r3.json.data.last_edited_at);

  // Empty content is allowed only when the message has attachments.
  const withFile = await sent(d, 'ed1a', { content: 'caption', attachments: [att(d)] });
  const cleared = await api('PUT', url(withFile.id), { user: 'ed1a', body: { content: '' } });
  t.equal(cleared.status, 200);
  t.equal(cleared.json.data.content, '');
  t.notOk('attachments' in cleared.json.data);

  // A former participant can no longer edit.
  const c = await sent(d, 'ed1c', { content: 'mine' });
  t.equal((await api('POST', `/api/v1/dialogs/${d}/leave`, { user: 'ed1c' })).status, 200);
  isError(t, await api('PUT', url(c.id), { user: 'ed1c', body: { content: 'changed' } }), 403, 'FORBIDDEN', JOIN_FIRST);
  t.equal((await srv.sql('SELECT content FROM messages WHERE id = $1', [c.id])).rows[0].content, 'mine');
});

t.test('delete message', async (t) => {
  const d = await dialog(['dl1a', 'dl1b', 'dl1c'], true);
  const url = (id: string) => `/api/v1/dialogs/${d}/messages/${id}`;
  const target = await sent(d, 'dl1a', { content: 'to be deleted', attachments: [att(d)] });
  await api('PUT', url(target.id), { user: 'dl1a', body: { content: 'edited once' } });
  const reply = await sent(d, 'dl1b', { content: 'reply', reply_to: target.id });
  const last = await sent(d, 'dl1a', { content: 'last' });
  // dl1c reads up to the target; dl1b's pointer is its own reply.
  t.equal((await api('POST', `/api/v1/dialogs/${d}/read`, { user: 'dl1c', body: { last_read_message_id: target.id } })).status, 200);
  const unreadBefore = await srv.sql(`SELECT user_id, (p.unread_count + d.user_msg_count - p.read_mark)::int AS n FROM dialog_participants p
    JOIN dialogs d ON d.id = p.dialog_id WHERE p.dialog_id = $1 ORDER BY user_id`, [d]);

  isError(t, await api('DELETE', url(UNKNOWN), { user: 'dl1a' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await api('DELETE', url(target.id), { user: 'dl1b' }), 403, 'NOT_MESSAGE_AUTHOR', 'Can only delete own messages');
  const sys = (await srv.sql(`SELECT id FROM messages WHERE dialog_id = $1 AND message_type = 'system'`, [d])).rows[0].id;
  isError(t, await api('DELETE', url(sys), { user: 'dl1a' }), 403, 'NOT_MESSAGE_AUTHOR', 'Can only delete own messages');

  const r = await api('DELETE', url(target.id), { user: 'dl1a' });
  t.equal(r.status, 204);
  t.equal(r.text, '', 'empty body');
  isError(t, await api('GET', url(target.id), { user: 'dl1a' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await api('DELETE', url(target.id), { user: 'dl1a' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found');

  const gotReply = await api('GET', url(reply.id), { user: 'dl1a' });
  t.equal(gotReply.json.data.reply_to_id, null, 'replies lose their reply_to_id');
  const parts = await api('GET', `/api/v1/dialogs/${d}/participants`, { user: 'dl1c' });
  const c = parts.json.data.find((p: any) => p.user_id === 'dl1c');
  t.equal(c.last_read_message_id, null, 'read pointer at the deleted message becomes null');
  t.equal(parts.json.data.find((p: any) => p.user_id === 'dl1b').last_read_message_id, reply.id, 'other pointers untouched');
  const unreadAfter = await srv.sql(`SELECT user_id, (p.unread_count + d.user_msg_count - p.read_mark)::int AS n FROM dialog_participants p
    JOIN dialogs d ON d.id = p.dialog_id WHERE p.dialog_id = $1 ORDER BY user_id`, [d]);
  t.strictSame(unreadAfter.rows, unreadBefore.rows, 'unread counts unchanged');
  const cList = await api('GET', '/api/v1/dialogs', { user: 'dl1c' });
  t.equal(cList.json.data.find((x: any) => x.id === d).unread_count, 2, 'dl1c still counts the reply and the last message');
  t.equal(await dbCount('SELECT count(*) AS n FROM attachments WHERE message_id = $1', [target.id]), 0, 'attachments cascade');
  t.equal(await dbCount('SELECT count(*) AS n FROM message_edit_history WHERE message_id = $1', [target.id]), 0, 'history cascades');

  // With the pointer gone, first-unread falls back to the first message of the page.
  const page = await list(d, 'dl1c');
  t.equal(page.json.data.first_unread_message_id, page.json.data.messages[0].id);

  // A former participant can no longer delete.
  t.equal((await api('POST', `/api/v1/dialogs/${d}/leave`, { user: 'dl1a' })).status, 200);
  isError(t, await api('DELETE', url(last.id), { user: 'dl1a' }), 403, 'FORBIDDEN', JOIN_FIRST);
  t.equal(await dbCount('SELECT count(*) AS n FROM messages WHERE id = $1', [last.id]), 1);
});

t.test('list messages: paging modes', async (t) => {
  const d = await dialog(['l1a', 'l1b', 'l1c', 'l1d']);
  const ids: string[] = [];
  for (let i = 1; i <= 7; i++) ids.push((await sent(d, 'l1a', { content: `m${i}` })).id);
  // Distinct, well-separated send times make the first-unread rule deterministic.
  await srv.sql(`UPDATE messages m SET sent_at = '2026-01-01T00:00:00Z'::timestamptz + (x.i * interval '1 second')
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM messages WHERE dialog_id = $1) x WHERE x.id = m.id`, [d]);
  const m = (i: number) => ids[i - 1];
  const page = async (query: Record<string, string | number>, user = 'l1a') => {
    const r = await list(d, user, query);
    t.equal(r.status, 200, JSON.stringify(query));
    return r.json.data;
  };
  const idsOf = (p: any) => p.messages.map((x: any) => x.id);
  const shape = (p: any, want: string[], before: boolean, after: boolean, msg: string) => {
    t.strictSame(idsOf(p), want, `${msg}: rows`);
    t.equal(p.has_more_before, before, `${msg}: has_more_before`);
    t.equal(p.has_more_after, after, `${msg}: has_more_after`);
  };

  const full = await page({});
  t.strictSame(Object.keys(full), ['messages', 'has_more_before', 'has_more_after'], 'sender has read everything: no first_unread key');
  shape(full, ids, false, false, 'latest default');
  t.strictSame(Object.keys(full.messages[0]), MESSAGE_KEYS);
  t.equal(full.messages[0].sent_at, '2026-01-01T00:00:01Z');
  shape(await page({ limit: 3 }), [m(5), m(6), m(7)], true, false, 'latest 3');
  shape(await page({ limit: 7 }), ids, true, false, 'latest: count >= limit');
  shape(await page({ limit: 8 }), ids, false, false, 'latest 8');
  shape(await page({ limit: 0 }), [], true, false, 'limit=0 quirk');
  shape(await page({ limit: 0, before: m(4) }), [], true, false, 'limit=0 before');

  shape(await page({ before: m(5), limit: 2 }), [m(3), m(4)], true, false, 'before');
  shape(await page({ before: m(3), limit: 5 }), [m(1), m(2)], false, false, 'before, short page');
  shape(await page({ before: m(1) }), [], false, false, 'before the first');
  shape(await page({ after: m(2), limit: 3 }), [m(3), m(4), m(5)], true, true, 'after');
  shape(await page({ after: m(5), limit: 3 }), [m(6), m(7)], true, false, 'after, short page');
  shape(await page({ after: m(7) }), [], true, false, 'after the last');
  shape(await page({ after: m(4), before: m(2), limit: 2 }), [m(5), m(6)], true, true, 'after wins over before');

  shape(await page({ around: m(4), limit: 4 }), [m(2), m(3), m(4), m(5), m(6)], true, true, 'around middle');
  shape(await page({ around: m(2), limit: 4 }), [m(1), m(2), m(3), m(4)], false, true, 'around near start');
  shape(await page({ around: m(7), limit: 4 }), [m(5), m(6), m(7)], true, false, 'around the last');
  shape(await page({ around: m(6), limit: 4 }), [m(4), m(5), m(6), m(7)], true, false, 'around: only h from the target');
  shape(await page({ around: m(4), limit: 5 }), [m(2), m(3), m(4), m(5), m(6)], true, true, 'around odd limit');
  shape(await page({ around: m(4), limit: 1 }), [m(4)], true, true, 'around limit 1: just the target');
  shape(await page({ around: m(4) }), ids, false, false, 'around default limit');
  shape(await page({ around: m(4), after: m(6), before: m(2), limit: 2 }), [m(3), m(4), m(5)], true, true, 'around wins');
  // A cursor need not exist: a v7 id older than everything.
  shape(await page({ around: '00000000-0000-7000-8000-000000000000', limit: 4 }), [m(1), m(2), m(3)], false, true, 'around a missing id');
  shape(await page({ before: 'ffffffff-ffff-7fff-bfff-ffffffffffff', limit: 2 }), [m(6), m(7)], true, false, 'before a missing id');
  shape(await page({ before: m(5).toUpperCase(), limit: 2 }), [m(3), m(4)], true, false, 'upper-case cursor');

  // first_unread_message_id: l1b never read anything (pointer null) → first of the page.
  t.equal((await page({ limit: 3 }, 'l1b')).first_unread_message_id, m(5));
  t.equal((await page({ before: m(3) }, 'l1b')).first_unread_message_id, m(1));
  t.notOk('first_unread_message_id' in (await page({ after: m(7) }, 'l1b')), 'empty page: omitted');
  t.notOk('first_unread_message_id' in (await page({ around: m(4), limit: 4 }, 'l1b')), 'never in around mode');
  // l1c read up to m3 → first on the page sent later than m3.
  t.equal((await api('POST', `/api/v1/dialogs/${d}/read`, { user: 'l1c', body: { last_read_message_id: m(3) } })).status, 200);
  t.equal((await page({}, 'l1c')).first_unread_message_id, m(4));
  t.equal((await page({ limit: 2 }, 'l1c')).first_unread_message_id, m(6), 'first later message on this page');
  t.notOk('first_unread_message_id' in (await page({ before: m(3) }, 'l1c')), 'nothing later on the page');
  t.notOk('first_unread_message_id' in (await page({ before: m(4), limit: 1 }, 'l1c')), 'the read message itself is not unread');
  t.notOk('first_unread_message_id' in (await page({ after: m(1), limit: 2 }, 'l1c')), 'page ends at the read message');
  t.equal((await page({ after: m(2), limit: 3 }, 'l1c')).first_unread_message_id, m(4), 'read message on the page');
  t.notOk('first_unread_message_id' in (await page({ around: m(5), limit: 4 }, 'l1c')), 'never in around mode');
  const keys = Object.keys(await page({}, 'l1c'));
  t.strictSame(keys, ['messages', 'first_unread_message_id', 'has_more_before', 'has_more_after']);

  // Errors.
  isError(t, await list(d, 'stranger'), 403, 'FORBIDDEN', JOIN_FIRST);
  isError(t, await list(UNKNOWN, 'l1a'), 403, 'FORBIDDEN', JOIN_FIRST);
  const neg = await list(d, 'l1a', { limit: -1 });
  t.equal(neg.status, 400);
  t.equal(neg.json.error.code, 'INVALID_INPUT');
  t.equal(neg.json.error.message, 'limit must not be negative');
  const badQueries: Record<string, string>[] = [{ before: 'not-a-uuid' }, { after: '123' }, { around: `${m(1)}x` }, { limit: 'abc' }];
  for (const q of badQueries) {
    const r = await list(d, 'l1a', q);
    t.equal(r.status, 400, JSON.stringify(q));
    t.equal(r.json.error.code, 'BAD_REQUEST');
    t.match(r.json.error.message, /^Invalid query parameter/);
  }
});

t.test('list messages: limit clamped to 200, attachments on the page', async (t) => {
  const d = await dialog(['l2a']);
  const first = await sent(d, 'l2a', { content: 'with files', attachments: [att(d, { filename: 'b.pdf' }), att(d, { filename: 'a.pdf' })] });
  for (let i = 0; i < 204; i++) await sent(d, 'l2a', { content: `n${i}` });
  const r = await list(d, 'l2a', { limit: 500 });
  t.equal(r.status, 200);
  t.equal(r.json.data.messages.length, 200);
  t.equal(r.json.data.has_more_before, true);
  const all = await list(d, 'l2a', { around: first.id, limit: 1000 });
  t.equal(all.json.data.messages.length, 101, 'around: h = floor(200 / 2) → 0 before, 101 from the target');
  const got = all.json.data.messages[0];
  t.equal(got.id, first.id);
  t.strictSame(got.attachments, first.attachments, 'attachments ordered by creation, url ""');
  t.strictSame(got.attachments.map((a: any) => a.filename), ['b.pdf', 'a.pdf']);
  t.notOk('attachments' in all.json.data.messages[1]);
});

t.test('list messages: no N+1', async (t) => {
  const small = await dialog(['n1a']);
  const big = await dialog(['n1a']);
  await sent(small, 'n1a', { content: 'only', attachments: [att(small)] });
  for (let i = 0; i < 50; i++) {
    await sent(big, 'n1a', i % 5 === 0 ? { content: `m${i}`, attachments: [att(big), att(big)] } : { content: `m${i}` });
  }
  const one = await srv.countStatements(() => list(small, 'n1a'));
  const fifty = await srv.countStatements(() => list(big, 'n1a'));
  t.equal(one.result.json.data.messages.length, 1);
  t.equal(fifty.result.json.data.messages.length, 50);
  t.equal(fifty.result.json.data.messages.filter((m: any) => m.attachments).length, 10);
  t.ok(one.statements.length > 0);
  t.equal(fifty.statements.length, one.statements.length, `same statement count (${one.statements.length})`);
  const around = await srv.countStatements(() => list(big, 'n1a', { around: fifty.result.json.data.messages[20].id }));
  t.equal(around.statements.length, one.statements.length, 'around mode too');
});

t.test('mark as read', async (t) => {
  const d = await dialog(['r1a', 'r1b']);
  const other = await dialog(['r1a']);
  const m1 = await sent(d, 'r1a', { content: 'one' });
  const m2 = await sent(d, 'r1a', { content: 'two' });
  const m3 = await sent(d, 'r1a', { content: 'three' });
  const foreign = await sent(other, 'r1a', { content: 'elsewhere' });
  const read = (user: string, id: string, dialogId = d) => api('POST', `/api/v1/dialogs/${dialogId}/read`, { user, body: { last_read_message_id: id } });
  const pointer = async () => (await api('GET', `/api/v1/dialogs/${d}/participants`, { user: 'r1b' })).json.data.find((p: any) => p.user_id === 'r1b');

  isError(t, await read('r1b', m1.id, UNKNOWN), 404, 'NOT_FOUND', 'Dialog not found');
  isError(t, await read('stranger', m1.id), 403, 'FORBIDDEN', 'Not a participant');
  isError(t, await read('stranger', UNKNOWN), 403, 'FORBIDDEN', 'Not a participant');
  isError(t, await read('r1b', UNKNOWN), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  isError(t, await read('r1b', foreign.id), 404, 'MESSAGE_NOT_FOUND', 'Message not found');
  t.equal((await pointer()).last_read_message_id, null, 'refused reads change nothing');

  const before = eventsOf(d).length;
  const r = await read('r1b', m2.id);
  t.equal(r.status, 200);
  t.strictSame(r.json, { success: true });
  t.equal(r.text, '{"success":true}');
  const ev = eventsOf(d).slice(before);
  t.equal(ev.length, 1);
  t.strictSame(ev[0].event, { type: 'message.read', dialog_id: d, user_id: 'r1b', last_read_message_id: m2.id });
  t.equal(ev[0].toParticipants, true);
  t.type(ev[0].seq, 'number');
  let p = await pointer();
  t.equal(p.last_read_message_id, m2.id);
  t.equal(p.unread_count, 1, 'm3 is still unread');

  // Never backwards: an older (or the same) id is a success that changes nothing and emits nothing.
  const n = eventsOf(d).length;
  for (const id of [m1.id, m2.id]) {
    const back = await read('r1b', id);
    t.equal(back.status, 200);
    t.strictSame(back.json, { success: true });
  }
  t.equal(eventsOf(d).length, n, 'no event');
  p = await pointer();
  t.equal(p.last_read_message_id, m2.id);
  t.equal(p.unread_count, 1);

  const fwd = await read('r1b', m3.id.toUpperCase());
  t.equal(fwd.status, 200);
  p = await pointer();
  t.equal(p.last_read_message_id, m3.id);
  t.equal(p.unread_count, 0);
  t.equal(eventsOf(d).length, n + 1);
});
