// A WebSocket test client over real sockets: records every frame (decoded by its opcode: text =
// JSON, binary = msgpack) and lets a test wait for the one it expects.
import WebSocket from 'ws';
import { decode, encode } from '@msgpack/msgpack';

export type Frame = Record<string, any>;
export const MSGPACK = 'mtchat.v1.msgpack';

export interface OpenOptions {
  path?: string;
  query?: Record<string, string>;
  /** Raw query string (without '?'), instead of `query`. */
  rawQuery?: string;
  protocols?: string[];
  headers?: Record<string, string>;
}

export class UpgradeRefused extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`upgrade refused: ${status} ${body}`);
  }
}

function wsUrl(base: string, o: OpenOptions): string {
  const u = new URL(o.path ?? '/api/v1/ws', base.replace(/^http/, 'ws'));
  if (o.rawQuery !== undefined) return `${u.toString()}?${o.rawQuery}`;
  for (const [k, v] of Object.entries(o.query ?? {})) u.searchParams.set(k, v);
  return u.toString();
}

export class TestSocket {
  readonly frames: Frame[] = [];
  /** Whether each frame came as a binary frame. */
  readonly binary: boolean[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const f = (isBinary ? decode(data) : JSON.parse(data.toString('utf8'))) as Frame;
      this.frames.push(f);
      this.binary.push(isBinary);
      for (const w of [...this.waiters]) {
        if (w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(base: string, o: OpenOptions = {}): Promise<TestSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(base, o), o.protocols ?? [], { headers: o.headers });
      const s = new TestSocket(ws);
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body)));
      });
      ws.once('error', (e) => reject(e));
    });
  }

  /** Opens and waits for the `connected` frame. */
  static async connect(base: string, o: OpenOptions = {}): Promise<TestSocket> {
    const s = await TestSocket.open(base, o);
    await s.waitFor((f) => f.type === 'connected');
    return s;
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  /** Sends in the socket's own format. */
  send(obj: unknown): void {
    if (this.ws.protocol === MSGPACK) this.ws.send(encode(obj), { binary: true });
    else this.ws.send(JSON.stringify(obj));
  }

  sendRaw(data: string | Buffer, binary: boolean): void {
    this.ws.send(data, { binary });
  }

  /** The first frame (already received or still to come) matching pred. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 8000): Promise<Frame> {
    const have = this.frames.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out; frames so far: ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  /** Frames of one dialog (by dialog_id), in arrival order. */
  ofDialog(dialogId: string): Frame[] {
    return this.frames.filter((f) => f.dialog_id === dialogId);
  }

  close(): void {
    this.ws.close();
  }
}

/** Tries an upgrade that must fail; returns its HTTP status and plain-text body. */
export async function refusedUpgrade(base: string, o: OpenOptions = {}): Promise<{ status: number; body: string }> {
  try {
    const s = await TestSocket.open(base, o);
    s.close();
  } catch (e) {
    if (e instanceof UpgradeRefused) return { status: e.status, body: e.body };
    throw e;
  }
  throw new Error('upgrade unexpectedly succeeded');
}
