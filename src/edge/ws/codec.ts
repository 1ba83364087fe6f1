// The two wire formats of the WebSocket (docs/protocol.md "Wire formats"): JSON text frames (the
// default, the original's shapes) and msgpack binary frames. Both carry the same keys and values.
import { decode, encode } from '@msgpack/msgpack';

export type WireFormat = 'json' | 'msgpack';
export const FORMATS: readonly WireFormat[] = ['json', 'msgpack'];

export const MSGPACK_PROTOCOL = 'mtchat.v1.msgpack';
/** Optional explicit name for the default format, for clients that must offer a subprotocol. */
export const JSON_PROTOCOL = 'mtchat.v1.json';

export interface Negotiated {
  format: WireFormat;
  /** The subprotocol to echo in the upgrade response; '' when the client asked for none we speak. */
  protocol: string;
}

/** Picks the format from `Sec-WebSocket-Protocol` (a comma list, in the client's preference order). */
export function negotiate(header: string): Negotiated {
  for (const p of header.split(',').map((s) => s.trim())) {
    if (p === MSGPACK_PROTOCOL) return { format: 'msgpack', protocol: p };
    if (p === JSON_PROTOCOL) return { format: 'json', protocol: p };
  }
  return { format: 'json', protocol: '' };
}

const utf8 = new TextEncoder();

export function encodeFor(format: WireFormat, value: unknown): Uint8Array {
  return format === 'json' ? utf8.encode(JSON.stringify(value)) : encode(value, { ignoreUndefined: true });
}

/**
 * One outgoing frame, encoded at most once per format however many sockets it goes to.
 * `value` must not change after construction.
 */
export class Outgoing {
  private json?: Uint8Array;
  private msgpack?: Uint8Array;
  constructor(readonly value: Record<string, unknown>) {}
  bytes(format: WireFormat): Uint8Array {
    if (format === 'json') return (this.json ??= encodeFor('json', this.value));
    return (this.msgpack ??= encodeFor('msgpack', this.value));
  }
}

export type Decoded = { ok: true; value: unknown } | { ok: false; message: string };

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Text frames are JSON, binary frames msgpack, whatever format the socket speaks. */
export function decodeFrame(data: ArrayBuffer, isBinary: boolean): Decoded {
  const bytes = new Uint8Array(data);
  if (isBinary) {
    try {
      return { ok: true, value: decode(bytes) };
    } catch {
      return { ok: false, message: 'Malformed frame: not valid msgpack' };
    }
  }
  try {
    return { ok: true, value: JSON.parse(utf8Strict.decode(bytes)) };
  } catch {
    return { ok: false, message: 'Malformed frame: not valid JSON' };
  }
}
