// Attachments end to end against a local S3 that verifies SigV4 (@20minutes/s3rver, in this process):
// presign → real PUT → send → list/download URL → the same bytes; key, MIME, size and count rules;
// presigning is local (the store sees no request while a page is listed); S3 disabled.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { client, createDialog, type Api, type ApiResponse } from '../helpers/api.js';
import { startDevS3, type DevS3 } from '../../src/services/dev-s3.js';
import { loadConfig } from '../../src/config/env.js';

const JOIN_FIRST = 'Not a participant. Join the dialog first.';
const UNKNOWN = '0195a0d1-04aa-7c3e-b1f0-5e6f7a8b9c0d';
const UUID_V7 = '[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
// The spec's allowlist, in the spec's order (messages-and-content.md "Limits").
const ALLOWED = [
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/svg+xml', 'image/bmp', 'image/tiff',
  'application/pdf', 'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/vnd.ms-powerpoint',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation', 'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet', 'application/vnd.oasis.opendocument.presentation', 'application/rtf',
  'text/plain', 'text/csv', 'text/markdown', 'text/html', 'text/xml', 'application/json',
  'application/zip', 'application/x-rar-compressed', 'application/vnd.rar', 'application/x-7z-compressed', 'application/gzip', 'application/x-tar',
  'audio/mpeg', 'audio/wav', 'audio/ogg', 'audio/mp4',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
];
const mimeMessage = (type: string) =>
  `File type '${type}' is not allowed. Allowed types: [${ALLOWED.map((a) => `"${a}"`).join(', ')}]`;
const SIZE_MESSAGE = 'File size must be between 1 byte and 104857600 bytes';

type Asserts = Pick<typeof t, 'equal' | 'strictSame'>;
function isError(t: Asserts, r: ApiResponse, status: number, code: string, message: string): void {
  t.equal(r.status, status, `status ${status} (${code})`);
  t.strictSame(r.json, { error: { code, message } }, message);
}

const s3Env = (dev: DevS3, extra: Record<string, string> = {}): Record<string, string> => ({
  S3_ENDPOINT: dev.config.endpoint, S3_REGION: dev.config.region, S3_ACCESS_KEY_ID: dev.config.accessKeyId,
  S3_SECRET_ACCESS_KEY: dev.config.secretAccessKey, S3_BUCKET: dev.config.bucket, ...extra,
});

// One local S3 for the file, with non-default expiries so the reported values can be told apart.
const dev = await startDevS3({ bucket: 'att-test' });
let devClosed = false;
t.teardown(() => (devClosed ? undefined : dev.close()));
let s3Requests = 0;
dev.onRequest(() => {
  s3Requests++;
});
const srv = await startTestServer(s3Env(dev, { S3_PRESIGN_UPLOAD_EXPIRY: '120', S3_PRESIGN_DOWNLOAD_EXPIRY: '900' }));
t.teardown(() => srv.close());
const api = client(srv.url);

let objNo = 0;
const dialog = (users: string[]) =>
  createDialog(api, { object_id: `att-${++objNo}`, participants: users.map((u) => ({ user_id: u, display_name: u })) });

interface Presigned { upload_url: string; s3_key: string; expires_in: number }
const presign = (a: Api, user: string, body: Record<string, unknown>) => a('POST', '/api/v1/upload/presign', { user, body });
async function presigned(a: Api, user: string, dialogId: string, filename: string, contentType: string, size: number): Promise<Presigned> {
  const r = await presign(a, user, { dialog_id: dialogId, filename, content_type: contentType, size });
  if (r.status !== 200) throw new Error(`presign: ${r.status} ${r.text}`);
  return r.json.data;
}
const put = (url: string, bytes: Uint8Array, contentType: string) =>
  fetch(url, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': contentType } });
/** Presign and upload; returns the attachment item to send. */
async function upload(a: Api, user: string, dialogId: string, filename: string, contentType: string, bytes: Uint8Array) {
  const p = await presigned(a, user, dialogId, filename, contentType, bytes.length);
  const r = await put(p.upload_url, bytes, contentType);
  if (r.status !== 200) throw new Error(`PUT: ${r.status} ${await r.text()}`);
  return { s3_key: p.s3_key, filename, content_type: contentType, size: bytes.length };
}
const send = (a: Api, d: string, user: string, body: Record<string, unknown>) => a('POST', `/api/v1/dialogs/${d}/messages`, { user, body });
const bytesOf = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const randomBytesOf = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) % 256);

t.test('presign → PUT → send → list and download URL give back the same bytes', async (t) => {
  const d = await dialog(['h1a', 'h1b']);
  const bytes = randomBytesOf(4096);
  const r = await presign(api, 'h1a', { dialog_id: d.toUpperCase(), filename: 'CMR Scan.PDF', content_type: 'application/pdf', size: bytes.length });
  t.equal(r.status, 200);
  t.strictSame(Object.keys(r.json.data), ['upload_url', 's3_key', 'expires_in']);
  const p: Presigned = r.json.data;
  t.match(p.s3_key, new RegExp(`^dialogs/${d}/${UUID_V7}\\.pdf$`), 'key: dialogs/<lower-case dialog>/<v7>.<ext>');
  t.equal(p.expires_in, 120, 'the configured upload expiry');
  const u = new URL(p.upload_url);
  t.equal(`${u.origin}${u.pathname}`, `${dev.config.endpoint}/att-test/${p.s3_key}`, 'path-style URL on the endpoint');
  t.equal(u.searchParams.get('X-Amz-Expires'), '120');
  t.equal(u.searchParams.get('X-Amz-SignedHeaders'), 'content-type;host', 'Content-Type is bound into the signature');
  t.equal(u.searchParams.get('x-amz-checksum-crc32'), null, 'no checksum of an empty body in the URL');

  t.equal((await put(p.upload_url, bytes, 'application/pdf')).status, 200, 'real upload with the returned URL');

  const item = { s3_key: p.s3_key, filename: 'CMR Scan.PDF', content_type: 'application/pdf', size: bytes.length };
  const s = await send(api, d, 'h1a', { content: '', attachments: [item] });
  t.equal(s.status, 200, 'empty content with an attachment is valid');
  const a = s.json.data.attachments[0];
  t.strictSame(Object.keys(a), ['id', 'filename', 'content_type', 'size', 'url'], 'no width/height/thumbnail_url');
  t.strictSame({ ...a, id: 'x', url: 'x' }, { id: 'x', filename: 'CMR Scan.PDF', content_type: 'application/pdf', size: 4096, url: 'x' });
  t.match(a.id, new RegExp(`^${UUID_V7}$`));
  const got = await fetch(a.url);
  t.equal(got.status, 200);
  t.equal(got.headers.get('content-disposition'), null, 'inert types are not forced to download');
  t.strictSame(new Uint8Array(await got.arrayBuffer()), bytes, 'send response URL fetches the bytes');
  t.equal(new URL(a.url).searchParams.get('X-Amz-Expires'), '900', 'the configured download expiry');

  const l = await api('GET', `/api/v1/dialogs/${d}/messages`, { user: 'h1b' });
  t.equal(l.status, 200);
  const la = l.json.data.messages.at(-1).attachments;
  t.equal(la.length, 1);
  t.equal(la[0].id, a.id);
  t.strictSame(await bytesOf(la[0].url), bytes, 'list URL fetches the bytes');

  const du = await api('GET', `/api/v1/attachments/${a.id.toUpperCase()}/url`, { user: 'h1b' });
  t.equal(du.status, 200);
  t.strictSame(Object.keys(du.json.data), ['url', 'thumbnail_url', 'expires_in']);
  t.equal(du.json.data.thumbnail_url, null, 'present as null');
  t.equal(du.json.data.expires_in, 900);
  t.strictSame(await bytesOf(du.json.data.url), bytes, 'download URL fetches the bytes');

  const row = await srv.sql('SELECT s3_key, filename, content_type, size::int AS size FROM attachments WHERE id = $1', [a.id]);
  t.strictSame(row.rows, [item]);
});

t.test('presign: extension sanitised; empty type and the size bounds accepted', async (t) => {
  const d = await dialog(['x1']);
  const cases: [string, string][] = [
    ['report.PDF', 'pdf'], ['README', 'readme'], ['', 'bin'], ['archive.tar.gz', 'gz'], ['x.../../etc', 'etc'],
    ['evil.p%2eh\0p', 'p2ehp'], ['photo.jpeg ', 'jpeg'], ['x.ÄÖü', 'bin'], ['x.', 'bin'], [`x.${'Ab1'.repeat(10)}`, 'ab1ab1ab1ab1ab1a'],
    ['file.<script>', 'script'], ['отчёт.docx', 'docx'],
  ];
  for (const [filename, ext] of cases) {
    const p = await presigned(api, 'x1', d, filename, 'application/pdf', 10);
    t.match(p.s3_key, new RegExp(`^dialogs/${d}/${UUID_V7}\\.${ext}$`), `${JSON.stringify(filename)} → .${ext}`);
  }
  const empty = await presign(api, 'x1', { dialog_id: d, filename: 'blob', content_type: '', size: 104857600 });
  t.equal(empty.status, 200, 'empty type and the maximum size');
  const one = await presign(api, 'x1', { dialog_id: d, filename: 'a.txt', content_type: 'text/plain', size: 1 });
  t.equal(one.status, 200, 'one byte');
  // A sanitised key uploads and sends like any other.
  const item = await upload(api, 'x1', d, 'README', 'text/plain', new TextEncoder().encode('read me'));
  t.equal((await send(api, d, 'x1', { content: 'r', attachments: [item] })).status, 200);
});

t.test('presign errors: MIME, size, unknown dialog, non-participant, in the spec order', async (t) => {
  const d = await dialog(['p1']);
  const body = (over: Record<string, unknown>) => ({ dialog_id: d, filename: 'a.bin', content_type: 'application/pdf', size: 10, ...over });
  for (const type of ['application/x-msdownload', 'text/plain; charset=utf-8', 'IMAGE/PNG', ' image/png']) {
    isError(t, await presign(api, 'p1', body({ content_type: type })), 400, 'UNSUPPORTED_FILE_TYPE', mimeMessage(type));
  }
  for (const size of [0, -5, 104857601]) {
    isError(t, await presign(api, 'p1', body({ size })), 400, 'FILE_TOO_LARGE', SIZE_MESSAGE);
  }
  isError(t, await presign(api, 'p1', body({ dialog_id: UNKNOWN })), 404, 'DIALOG_NOT_FOUND', 'Dialog not found');
  isError(t, await presign(api, 'outsider', body({})), 403, 'FORBIDDEN', JOIN_FIRST);
  // Order: MIME before size before the dialog.
  isError(t, await presign(api, 'p1', body({ dialog_id: UNKNOWN, content_type: 'x/y', size: 0 })), 400, 'UNSUPPORTED_FILE_TYPE', mimeMessage('x/y'));
  isError(t, await presign(api, 'outsider', body({ dialog_id: UNKNOWN, size: 0 })), 400, 'FILE_TOO_LARGE', SIZE_MESSAGE);
  isError(t, await presign(api, 'outsider', body({ dialog_id: UNKNOWN })), 404, 'DIALOG_NOT_FOUND', 'Dialog not found');
  // Wrong shape is the framework's 422.
  const shape = await presign(api, 'p1', { dialog_id: d, filename: 'a', content_type: 'text/plain' });
  t.equal(shape.status, 422);
  t.equal(shape.json.error.code, 'INVALID_INPUT');
  const noUser = await api('POST', '/api/v1/upload/presign', { body: body({}) });
  t.equal(noUser.status, 400, 'no identity');
});

t.test('active content is served as a download (finding B21)', async (t) => {
  const d = await dialog(['ac1']);
  const html = new TextEncoder().encode('<script>alert(1)</script>');
  const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
  const items = [
    await upload(api, 'ac1', d, 'page.html', 'text/html', html),
    await upload(api, 'ac1', d, 'logo.svg', 'image/svg+xml', svg),
  ];
  const s = await send(api, d, 'ac1', { content: 'files', attachments: items });
  t.equal(s.status, 200);
  const [a1, a2] = s.json.data.attachments;
  for (const [a, name, bytes, type] of [[a1, 'page.html', html, 'text/html'], [a2, 'logo.svg', svg, 'image/svg+xml']] as const) {
    const r = await fetch(a.url);
    t.equal(r.status, 200);
    t.equal(r.headers.get('content-disposition'), `attachment; filename="${name}"`, `${type} forced to download`);
    t.equal(r.headers.get('content-type'), type);
    t.strictSame(new Uint8Array(await r.arrayBuffer()), bytes);
    const du = await api('GET', `/api/v1/attachments/${a.id}/url`, { user: 'ac1' });
    t.equal((await fetch(du.json.data.url)).headers.get('content-disposition'), `attachment; filename="${name}"`, 'download URL too');
  }
  // Names the quoted form cannot carry also get the exact UTF-8 name (checked in the signed URL).
  const odd = await send(api, d, 'ac1', {
    content: 'odd', attachments: [{ ...(await upload(api, 'ac1', d, 'x.html', 'text/html', html)), filename: 'Отчёт "1".html' }],
  });
  t.equal(odd.status, 200);
  t.equal(new URL(odd.json.data.attachments[0].url).searchParams.get('response-content-disposition'),
    `attachment; filename="_____ _1_.html"; filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%221%22.html`);
});

t.test('tampered URLs are refused by the store', async (t) => {
  const d = await dialog(['tm1']);
  const bytes = randomBytesOf(100);
  const p = await presigned(api, 'tm1', d, 'a.png', 'image/png', bytes.length);
  const flip = (url: string) => url.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
  t.not(flip(p.upload_url), p.upload_url);
  t.equal((await put(flip(p.upload_url), bytes, 'image/png')).status, 403, 'one signature character changed');
  t.equal((await put(p.upload_url, bytes, 'image/jpeg')).status, 403, 'another Content-Type than presigned');
  t.equal((await put(p.upload_url.replace('.png?', '.html?'), bytes, 'image/png')).status, 403, 'another key');
  const item = { s3_key: p.s3_key, filename: 'a.png', content_type: 'image/png', size: 100 };
  isError(t, await send(api, d, 'tm1', { content: 'x', attachments: [item] }), 400, 'BAD_REQUEST', `File not found in storage: ${p.s3_key}`);

  t.equal((await put(p.upload_url, bytes, 'image/png')).status, 200, 'the genuine URL still works');
  const s = await send(api, d, 'tm1', { content: 'x', attachments: [item] });
  t.equal(s.status, 200);
  const url: string = s.json.data.attachments[0].url;
  t.equal((await fetch(flip(url))).status, 403, 'tampered download signature');
  t.equal((await fetch(url.replace('X-Amz-Expires=900', 'X-Amz-Expires=999'))).status, 403, 'tampered expiry');
  t.equal((await fetch(url)).status, 200);
});

t.test('listing 50 messages with 100 attachments makes no request to S3', async (t) => {
  const d = await dialog(['z1', 'z2']);
  const bytes = new TextEncoder().encode('z');
  const items = await Promise.all(Array.from({ length: 100 }, (_, i) => upload(api, 'z1', d, `f${i}.txt`, 'text/plain', bytes)));
  for (let i = 0; i < 50; i++) {
    const r = await send(api, d, 'z1', { content: `m${i}`, attachments: items.slice(2 * i, 2 * i + 2) });
    if (r.status !== 200) throw new Error(`send: ${r.status} ${r.text}`);
  }
  const before = s3Requests;
  const l = await api('GET', `/api/v1/dialogs/${d}/messages`, { user: 'z2', query: { limit: 50 } });
  const du = await api('GET', `/api/v1/attachments/${l.json.data.messages[0].attachments[0].id}/url`, { user: 'z2' });
  t.equal(s3Requests - before, 0, 'presigning is local computation');
  t.equal(l.status, 200);
  t.equal(du.status, 200);
  const urls: string[] = l.json.data.messages.flatMap((m: { attachments: { url: string }[] }) => m.attachments.map((a) => a.url));
  t.equal(urls.length, 100);
  t.equal(new Set(urls).size, 100);
  t.strictSame(await bytesOf(urls[99]), bytes);
  t.equal(s3Requests - before, 1, 'the counter does see requests');
});

t.test('send: every bad key, MIME, size and count case gets its spec code, and nothing reaches S3', async (t) => {
  const d = await dialog(['k1', 'k2']);
  const other = await dialog(['k1']);
  const good = (over: Record<string, unknown> = {}) => ({ s3_key: `dialogs/${d}/${randomUUID()}.pdf`, filename: 'a.pdf', content_type: 'application/pdf', size: 10, ...over });
  const before = s3Requests;
  const keyCases: [string, string][] = [
    [`dialogs/${d}/../${other}/x.pdf`, 'Invalid S3 key: path traversal not allowed'],
    [`dialogs/${d}/..`, 'Invalid S3 key: path traversal not allowed'],
    [`dialogs/${d}/%2e%2e/x.pdf`, 'Invalid S3 key: encoded characters not allowed'],
    [`dialogs/${d}/%2E%2E/x.pdf`, 'Invalid S3 key: encoded characters not allowed'],
    [`dialogs/${d}/x\0.pdf`, 'Invalid S3 key: null bytes not allowed'],
    [`dialogs/${other}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`dialogs/${d}x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`dialogs/${d.toUpperCase()}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    [`/dialogs/${d}/x.pdf`, 'Invalid S3 key: file does not belong to this dialog'],
    ['', 'Invalid S3 key: file does not belong to this dialog'],
  ];
  for (const [k, msg] of keyCases) {
    isError(t, await send(api, d, 'k1', { content: 'x', attachments: [good({ s3_key: k })] }), 400, 'INVALID_INPUT', msg);
  }
  for (const type of ['text/plain; charset=utf-8', 'application/x-msdownload', 'Image/png']) {
    isError(t, await send(api, d, 'k1', { content: 'x', attachments: [good({ content_type: type })] }), 400, 'BAD_REQUEST', `File type '${type}' is not allowed`);
  }
  for (const size of [0, -1, 104857601]) {
    isError(t, await send(api, d, 'k1', { content: 'x', attachments: [good({ size })] }), 400, 'BAD_REQUEST', 'Invalid file size');
  }
  isError(t, await send(api, d, 'k1', { content: 'x', attachments: Array.from({ length: 11 }, () => good()) }),
    400, 'TOO_MANY_ATTACHMENTS', 'Maximum 10 attachments per message');
  // Dialog and participation come before any attachment check.
  isError(t, await send(api, UNKNOWN, 'k1', { content: 'x', attachments: [good({ s3_key: '..' })] }), 404, 'DIALOG_NOT_FOUND', 'Dialog not found');
  isError(t, await send(api, d, 'outsider', { content: 'x', attachments: [good({ s3_key: '..' })] }), 403, 'FORBIDDEN', JOIN_FIRST);
  isError(t, await send(api, d, 'k1', { content: 'x', attachments: [good({ s3_key: '..' }), ...Array.from({ length: 10 }, () => good())] }),
    400, 'TOO_MANY_ATTACHMENTS', 'Maximum 10 attachments per message');
  t.equal(s3Requests - before, 0, 'invalid sends never reach the store');
  t.equal(Number((await srv.sql('SELECT count(*) AS n FROM messages WHERE dialog_id = $1 AND message_type = $2', [d, 'user'])).rows[0].n), 0, 'nothing stored');
});

t.test('send: a missing object is 400 "File not found in storage", checked per attachment in order', async (t) => {
  const d = await dialog(['mo1']);
  const stored = await upload(api, 'mo1', d, 'ok.txt', 'text/plain', new TextEncoder().encode('ok'));
  const missing = { s3_key: `dialogs/${d}/${randomUUID()}.pdf`, filename: 'gone.pdf', content_type: 'application/pdf', size: 10 };
  const notFound = `File not found in storage: ${missing.s3_key}`;
  isError(t, await send(api, d, 'mo1', { content: 'x', attachments: [missing] }), 400, 'BAD_REQUEST', notFound);
  isError(t, await send(api, d, 'mo1', { content: 'x', attachments: [stored, missing] }), 400, 'BAD_REQUEST', notFound);
  // The first failing attachment decides, as in a sequential walk.
  isError(t, await send(api, d, 'mo1', { content: 'x', attachments: [stored, missing, { ...stored, s3_key: '../x' }] }), 400, 'BAD_REQUEST', notFound);
  isError(t, await send(api, d, 'mo1', { content: 'x', attachments: [stored, { ...missing, content_type: 'x/y' }, missing] }),
    400, 'BAD_REQUEST', "File type 'x/y' is not allowed");
  isError(t, await send(api, d, 'mo1', { content: 'x', attachments: [{ ...stored, size: 0 }, missing] }), 400, 'BAD_REQUEST', 'Invalid file size');
  // Attachments are checked before the content length.
  isError(t, await send(api, d, 'mo1', { content: 'x'.repeat(50001), attachments: [missing] }), 400, 'BAD_REQUEST', notFound);
  isError(t, await send(api, d, 'mo1', { content: 'x'.repeat(50001), attachments: [stored] }),
    400, 'INVALID_INPUT', 'Message content exceeds maximum length of 50000 characters');
  t.equal(Number((await srv.sql('SELECT count(*) AS n FROM messages WHERE dialog_id = $1 AND message_type = $2', [d, 'user'])).rows[0].n), 0, 'nothing stored');
  t.equal((await send(api, d, 'mo1', { content: 'x', attachments: [stored] })).status, 200);
});

t.test('attachment URL: unknown → 404, non-participant → 403', async (t) => {
  const d = await dialog(['au1']);
  const item = await upload(api, 'au1', d, 'a.txt', 'text/plain', new TextEncoder().encode('a'));
  const s = await send(api, d, 'au1', { content: 'x', attachments: [item] });
  const id: string = s.json.data.attachments[0].id;
  isError(t, await api('GET', `/api/v1/attachments/${UNKNOWN}/url`, { user: 'au1' }), 404, 'ATTACHMENT_NOT_FOUND', 'Attachment not found');
  isError(t, await api('GET', `/api/v1/attachments/${id}/url`, { user: 'outsider' }), 403, 'FORBIDDEN', JOIN_FIRST);
  const left = await api('POST', `/api/v1/dialogs/${d}/leave`, { user: 'au1' });
  t.equal(left.status, 200);
  isError(t, await api('GET', `/api/v1/attachments/${id}/url`, { user: 'au1' }), 403, 'FORBIDDEN', JOIN_FIRST);
  t.equal((await api('GET', '/api/v1/attachments/not-a-uuid/url', { user: 'au1' })).status, 400);
});

t.test('presigned URLs are signed for S3_PUBLIC_ENDPOINT (finding B20)', async (t) => {
  // A plain TCP relay stands in for the public host (a reverse proxy or a port mapping).
  const sockets = new Set<Socket>();
  const relay: Server = createServer((c) => {
    const up = connect(Number(new URL(dev.config.endpoint).port), '127.0.0.1');
    for (const s of [c, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const publicEndpoint = `http://127.0.0.1:${(relay.address() as { port: number }).port}`;
  const pub = await startTestServer(s3Env(dev, { S3_PUBLIC_ENDPOINT: publicEndpoint }));
  t.teardown(async () => {
    await pub.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => relay.close(resolve));
  });
  const papi = client(pub.url);
  const d = await createDialog(papi, { object_id: 'pub-1', participants: [{ user_id: 'pe1', display_name: 'PE' }] });
  const bytes = randomBytesOf(64);
  const p = await presigned(papi, 'pe1', d, 'a.bin', 'application/zip', bytes.length);
  t.ok(p.upload_url.startsWith(`${publicEndpoint}/att-test/dialogs/${d}/`), 'public host, same URL shape');
  t.equal(p.expires_in, 300, 'default upload expiry');
  const internal = p.upload_url.replace(publicEndpoint, dev.config.endpoint);
  t.equal((await put(internal, bytes, 'application/zip')).status, 403, 'the signature covers the public host');
  t.equal((await put(p.upload_url, bytes, 'application/zip')).status, 200, 'valid through the public host');
  const s = await send(papi, d, 'pe1', { content: 'x', attachments: [{ s3_key: p.s3_key, filename: 'a.bin', content_type: 'application/zip', size: 64 }] });
  t.equal(s.status, 200, 'the existence check uses the internal endpoint');
  const url: string = s.json.data.attachments[0].url;
  t.ok(url.startsWith(`${publicEndpoint}/att-test/`));
  t.equal(new URL(url).searchParams.get('X-Amz-Expires'), '3600', 'default download expiry');
  t.strictSame(await bytesOf(url), bytes);
});

t.test('S3 not configured (production-like): presign and URL answer 500, send gives url ""', async (t) => {
  const off: TestServer = await startTestServer({ NODE_ENV: 'production', MTCHAT_ALLOW_INSECURE: 'true' });
  t.teardown(() => off.close());
  const oapi = client(off.url);
  const d = await createDialog(oapi, { object_id: 'off-1', participants: [{ user_id: 'of1', display_name: 'OF' }] });
  const internal = (r: ApiResponse) => isError(t, r, 500, 'INTERNAL_ERROR', 'Internal server error');
  internal(await presign(oapi, 'of1', { dialog_id: d, filename: 'a.pdf', content_type: 'application/pdf', size: 10 }));
  internal(await presign(oapi, 'of1', { dialog_id: UNKNOWN, filename: 'a.exe', content_type: 'x/y', size: 0 }));
  internal(await oapi('GET', `/api/v1/attachments/${UNKNOWN}/url`, { user: 'of1' }));
  const before = s3Requests;
  const item = { s3_key: `dialogs/${d}/${randomUUID()}.pdf`, filename: 'a.pdf', content_type: 'application/pdf', size: 10 };
  const s = await send(oapi, d, 'of1', { content: 'x', attachments: [item] });
  t.equal(s.status, 200, 'no existence check without storage');
  t.strictSame(s.json.data.attachments.map((a: { url: string }) => a.url), ['']);
  isError(t, await send(oapi, d, 'of1', { content: 'x', attachments: [{ ...item, s3_key: '../x' }] }), 400, 'INVALID_INPUT', 'Invalid S3 key: path traversal not allowed');
  const l = await oapi('GET', `/api/v1/dialogs/${d}/messages`, { user: 'of1' });
  t.strictSame(l.json.data.messages.at(-1).attachments.map((a: { url: string }) => a.url), ['']);
  internal(await oapi('GET', `/api/v1/attachments/${s.json.data.attachments[0].id}/url`, { user: 'of1' }));
  t.equal(s3Requests, before);
});

t.test('outside production with no S3_ENDPOINT, a development S3 runs in-process', async (t) => {
  const mine = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('mtchat-dev-s3-')));
  const before = mine();
  const dv = await startTestServer({ MTCHAT_DEV_S3: 'true' });
  let closed = false;
  t.teardown(() => (closed ? undefined : dv.close()));
  const created = [...mine()].filter((n) => !before.has(n));
  t.equal(created.length, 1, 'a temporary directory of its own');
  const dapi = client(dv.url);
  const d = await createDialog(dapi, { object_id: 'dev-1', participants: [{ user_id: 'dv1', display_name: 'DV' }] });
  const bytes = randomBytesOf(256);
  const item = await upload(dapi, 'dv1', d, 'x.pdf', 'application/pdf', bytes);
  const s = await send(dapi, d, 'dv1', { content: 'x', attachments: [item] });
  t.equal(s.status, 200);
  const url: string = s.json.data.attachments[0].url;
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mtchat-dev\/dialogs\//, 'loopback, its own bucket');
  t.strictSame(await bytesOf(url), bytes);
  const ghost = `dialogs/${d}/${randomUUID()}.pdf`;
  isError(t, await send(dapi, d, 'dv1', { content: 'x', attachments: [{ ...item, s3_key: ghost }] }), 400, 'BAD_REQUEST', `File not found in storage: ${ghost}`);
  closed = true;
  await dv.close();
  t.equal(existsSync(join(tmpdir(), created[0])), false, 'removed at shutdown');
});

t.test('the local S3 stops and deletes its directory', async (t) => {
  t.equal(existsSync(dev.directory), true);
  devClosed = true;
  await dev.close();
  t.equal(existsSync(dev.directory), false);
});

t.test('MTCHAT_DEV_S3: on by default outside production, only without S3_ENDPOINT, refused in production', async (t) => {
  t.strictSame(loadConfig({}).devS3, { uploadExpirySecs: 300, downloadExpirySecs: 3600 });
  t.strictSame(loadConfig({ S3_PRESIGN_UPLOAD_EXPIRY: '60' }).devS3, { uploadExpirySecs: 60, downloadExpirySecs: 3600 });
  t.equal(loadConfig({ MTCHAT_DEV_S3: 'false' }).devS3, null);
  t.equal(loadConfig({ S3_ENDPOINT: 'http://minio:9000' }).devS3, null, 'an endpoint, even with S3 incomplete, means no fake');
  const prod = { NODE_ENV: 'production', MTCHAT_ALLOW_INSECURE: 'true' };
  t.equal(loadConfig(prod).devS3, null);
  t.equal(loadConfig(prod).s3, null);
  t.throws(() => loadConfig({ ...prod, MTCHAT_DEV_S3: 'true' }), { message: 'Invalid configuration: MTCHAT_DEV_S3 must not be on in production' });
  t.throws(() => loadConfig({ MTCHAT_DEV_S3: 'yes' }), { message: /MTCHAT_DEV_S3 must be one of true, 1, false, 0/ });
});
