// A small msgpack encoder/decoder for the WebSocket frames the load scripts exchange (maps,
// arrays, strings, integers, floats, booleans, nil, binary). Dependency-free and free of k6 and
// Node APIs, so k6 runs it as part of the script and the test suite checks it against
// @msgpack/msgpack.

export type MsgValue = null | boolean | number | string | Uint8Array | MsgValue[] | { [k: string]: MsgValue | undefined };

function utf8Encode(s: string, out: number[]): void {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
}

function utf8Decode(b: Uint8Array, start: number, end: number): string {
  let s = '';
  let i = start;
  while (i < end) {
    const c = b[i++];
    let cp: number;
    if (c < 0x80) cp = c;
    else if (c < 0xe0) cp = ((c & 31) << 6) | (b[i++] & 63);
    else if (c < 0xf0) cp = ((c & 15) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63);
    else cp = ((c & 7) << 18) | ((b[i++] & 63) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023));
    } else {
      s += String.fromCharCode(cp);
    }
  }
  return s;
}

function u16(out: number[], n: number): void {
  out.push((n >> 8) & 255, n & 255);
}
function u32(out: number[], n: number): void {
  out.push((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function float64(out: number[], n: number): void {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, n);
  out.push(0xcb);
  for (let i = 0; i < 8; i++) out.push(dv.getUint8(i));
}

function int(out: number[], n: number): void {
  if (n >= 0) {
    if (n < 128) out.push(n);
    else if (n < 256) out.push(0xcc, n);
    else if (n < 65536) { out.push(0xcd); u16(out, n); }
    else if (n < 4294967296) { out.push(0xce); u32(out, n); }
    else { out.push(0xcf); u32(out, Math.floor(n / 4294967296)); u32(out, n >>> 0); }
  } else {
    if (n >= -32) out.push(n & 255);
    else if (n >= -128) out.push(0xd0, n & 255);
    else if (n >= -32768) { out.push(0xd1); u16(out, n & 65535); }
    else if (n >= -2147483648) { out.push(0xd2); u32(out, n >>> 0); }
    else { out.push(0xd3); u32(out, Math.floor(n / 4294967296) >>> 0); u32(out, n >>> 0); }
  }
}

function header(out: number[], n: number, fix: number, fixMax: number, b8: number | null, b16: number, b32: number): void {
  if (n <= fixMax) out.push(fix | n);
  else if (b8 !== null && n < 256) out.push(b8, n);
  else if (n < 65536) { out.push(b16); u16(out, n); }
  else { out.push(b32); u32(out, n); }
}

function write(out: number[], v: MsgValue | undefined): void {
  if (v === null || v === undefined) out.push(0xc0);
  else if (v === false) out.push(0xc2);
  else if (v === true) out.push(0xc3);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) int(out, v);
    else float64(out, v);
  } else if (typeof v === 'string') {
    const bytes: number[] = [];
    utf8Encode(v, bytes);
    header(out, bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    for (const b of bytes) out.push(b);
  } else if (v instanceof Uint8Array) {
    header(out, v.length, 0xc4, -1, 0xc4, 0xc5, 0xc6);
    for (const b of v) out.push(b);
  } else if (Array.isArray(v)) {
    header(out, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const x of v) write(out, x);
  } else {
    // Keys with undefined values are left out, as JSON.stringify would.
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    header(out, keys.length, 0x80, 15, null, 0xde, 0xdf);
    for (const k of keys) {
      write(out, k);
      write(out, v[k]);
    }
  }
}

/** One value → one binary frame's bytes (an ArrayBuffer of exactly that length). */
export function encode(v: MsgValue): ArrayBuffer {
  const out: number[] = [];
  write(out, v);
  return new Uint8Array(out).buffer;
}

class Reader {
  private pos = 0;
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private take(n: number): number {
    const p = this.pos;
    if (p + n > this.b.length) throw new Error('msgpack: truncated input');
    this.pos += n;
    return p;
  }
  private str(n: number): string {
    const p = this.take(n);
    return utf8Decode(this.b, p, p + n);
  }
  private bin(n: number): Uint8Array {
    const p = this.take(n);
    return this.b.slice(p, p + n);
  }
  private arr(n: number): MsgValue[] {
    const a: MsgValue[] = [];
    for (let i = 0; i < n; i++) a.push(this.value());
    return a;
  }
  private map(n: number): { [k: string]: MsgValue } {
    const m: { [k: string]: MsgValue } = {};
    for (let i = 0; i < n; i++) {
      const k = this.value();
      m[String(k)] = this.value();
    }
    return m;
  }
  value(): MsgValue {
    const t = this.b[this.take(1)];
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 256;
    if ((t & 0xf0) === 0x80) return this.map(t & 15);
    if ((t & 0xf0) === 0x90) return this.arr(t & 15);
    if ((t & 0xe0) === 0xa0) return this.str(t & 31);
    const dv = this.dv;
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(dv.getUint8(this.take(1)));
      case 0xc5: return this.bin(dv.getUint16(this.take(2)));
      case 0xc6: return this.bin(dv.getUint32(this.take(4)));
      case 0xca: return dv.getFloat32(this.take(4));
      case 0xcb: return dv.getFloat64(this.take(8));
      case 0xcc: return dv.getUint8(this.take(1));
      case 0xcd: return dv.getUint16(this.take(2));
      case 0xce: return dv.getUint32(this.take(4));
      case 0xcf: { const p = this.take(8); return dv.getUint32(p) * 4294967296 + dv.getUint32(p + 4); }
      case 0xd0: return dv.getInt8(this.take(1));
      case 0xd1: return dv.getInt16(this.take(2));
      case 0xd2: return dv.getInt32(this.take(4));
      case 0xd3: { const p = this.take(8); return dv.getInt32(p) * 4294967296 + dv.getUint32(p + 4); }
      case 0xd9: return this.str(dv.getUint8(this.take(1)));
      case 0xda: return this.str(dv.getUint16(this.take(2)));
      case 0xdb: return this.str(dv.getUint32(this.take(4)));
      case 0xdc: return this.arr(dv.getUint16(this.take(2)));
      case 0xdd: return this.arr(dv.getUint32(this.take(4)));
      case 0xde: return this.map(dv.getUint16(this.take(2)));
      case 0xdf: return this.map(dv.getUint32(this.take(4)));
      default: throw new Error(`msgpack: unsupported type byte 0x${t.toString(16)}`);
    }
  }
  done(): boolean {
    return this.pos === this.b.length;
  }
}

/** One binary frame → its value. Throws on malformed or trailing bytes. */
export function decode(data: ArrayBuffer | Uint8Array): MsgValue {
  const r = new Reader(data instanceof Uint8Array ? data : new Uint8Array(data));
  const v = r.value();
  if (!r.done()) throw new Error('msgpack: trailing bytes');
  return v;
}
