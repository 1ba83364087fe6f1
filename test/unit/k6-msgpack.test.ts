// The k6 WebSocket script's own msgpack codec must agree byte for byte with the one the server
// uses (@msgpack/msgpack), for every shape the frames contain.
import t from 'tap';
import { decode as refDecode, encode as refEncode } from '@msgpack/msgpack';
import { decode, encode, type MsgValue } from '../../loadtest/k6/lib/msgpack.js';

const bytes = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');

const samples: [string, MsgValue][] = [
  ['send frame', { type: 'send', id: '3-0-17', dialog_id: '0195a0c2-7d3e-7b41-9f2a-3c5d6e7f8a90', content: '<p>Truck is at gate 4</p>', client_msg_id: 'k6-3-0-17' }],
  ['ack frame', { type: 'ack', id: 'x', message_id: '0195a0d1-04aa-7c3e-b1f0-5e6f7a8b9c0d', seq: 70000, message: { id: 'm', sender_id: null, attachments: [] } }],
  ['resume frame', { type: 'resume', dialogs: { a: 0, b: 127, c: 128, d: 255, e: 256, f: 65535, g: 65536, h: 4294967295, i: 4294967296, j: Number.MAX_SAFE_INTEGER } }],
  ['negative integers', [-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, Number.MIN_SAFE_INTEGER]],
  ['floats', [0.5, -1.25, 1e300, Number.EPSILON]],
  ['booleans and nil', [true, false, null]],
  ['non-ASCII text', { content: 'Grüße — 你好 — 🚚 at gate ④' }],
  ['string lengths', ['', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(65536)]],
  ['container sizes', { small: Array.from({ length: 15 }, (_, i) => i), mid: Array.from({ length: 16 }, (_, i) => i), big: Array.from({ length: 70000 }, () => 1) }],
  ['map of 16 keys', Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i]))],
  ['binary', { blob: new Uint8Array([0, 1, 2, 255]) }],
];

t.test('encode matches @msgpack/msgpack byte for byte', async (t) => {
  for (const [label, v] of samples) t.equal(bytes(encode(v)), bytes(refEncode(v)), label);
});

t.test('decode reads what @msgpack/msgpack writes', async (t) => {
  for (const [label, v] of samples) t.same(decode(refEncode(v)), v, label);
  // The server leaves undefined keys out; so does the encoder here.
  t.same(decode(encode({ a: 1, b: undefined })), { a: 1 });
  t.same(decode(refEncode(-0.1, { forceFloat32: true })), Math.fround(-0.1), 'float32');
});

t.test('encode returns an ArrayBuffer of exactly the frame', async (t) => {
  const buf = encode({ type: 'ping' });
  t.ok(buf instanceof ArrayBuffer);
  t.equal(bytes(buf), '81a474797065a470696e67');
});

t.test('malformed input is refused', async (t) => {
  t.throws(() => decode(new Uint8Array([0xa5, 0x61])), { message: 'msgpack: truncated input' });
  t.throws(() => decode(new Uint8Array([0x01, 0x02])), { message: 'msgpack: trailing bytes' });
  t.throws(() => decode(new Uint8Array([0xc1])), { message: 'msgpack: unsupported type byte 0xc1' });
});
