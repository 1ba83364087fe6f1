// One client socket: identity, wire format, the dialogs it is attached to, and the one place
// that writes to it (so every write is followed by the buffered-bytes check).
import type { WebSocket } from 'uWebSockets.js';
import { Outgoing, type WireFormat } from './codec.js';
import type { WsMeter } from './meter.js';
import { TokenBucket } from './rate.js';

/** Close codes (docs/protocol.md "Close codes"). */
export const CLOSE = {
  GOING_AWAY: [1001, 'server shutting down'],
  TOO_BIG: [1009, 'message too big'],
  TOKEN_EXPIRED: [4001, 'token expired'],
  SLOW_CONSUMER: [4008, 'slow consumer'],
  RATE_LIMITED: [4029, 'rate limit exceeded'],
  INTERNAL: [1011, 'internal error'],
} as const satisfies Record<string, readonly [number, string]>;
export type CloseReason = (typeof CLOSE)[keyof typeof CLOSE];

/** A dialog this socket receives, or is about to once its backlog is sent. */
export interface Attachment {
  dialogId: string;
  /** Subscribed to the dialog's topic: live events flow. */
  live: boolean;
  /** Serialises backfill / resume work on this dialog for this socket. */
  chain: Promise<void>;
  /** First seq to send when the attachment goes live (backlog from the event log). */
  from: number;
  /** A seq known to be committed when the attachment was asked for (never a client's claim). */
  committed: number;
  /** Resume requested: the backlog honours retention and may answer resync_required. */
  resumed: boolean;
  /** While the socket waits for its `resume` (connected with ?resume=1): released by it. */
  held: { promise: Promise<void>; release: () => void } | null;
}

export interface UserData {
  conn: Conn;
}

let nextId = 1;

export class Conn {
  readonly id = nextId++;
  ws: WebSocket<UserData> | null = null;
  closed = false;
  /** Dialogs this socket is attached to (pending or live). */
  readonly dialogs = new Map<string, Attachment>();
  /** Seq of the participant.left that detached a dialog: the same event via the user subject is not repeated. */
  readonly leftAt = new Map<string, number>();
  /** Resolves once the user's dialogs are attached (or the socket closed first). */
  ready: Promise<void> = Promise.resolve();
  /** Per-dialog chains of client commands: one socket's commands on a dialog run in order. */
  readonly commands = new Map<string, Promise<void>>();
  readonly timers: NodeJS.Timeout[] = [];
  /** `connected` has been sent; until then the socket's own frames wait their turn. */
  private greeted = false;
  private waiting: (() => void)[] = [];

  constructor(
    readonly userId: string,
    readonly format: WireFormat,
    /** Epoch ms after which the socket is closed (token expiry); null = never. */
    readonly expiresAt: number | null,
    /** Connected with ?resume=1: nothing goes live until the `resume` frame (or its wait ends). */
    public holdForResume: boolean,
    readonly bucket: TokenBucket,
    private readonly maxBuffered: number,
    /** Told of every close the server initiates (stats). */
    private readonly onServerClose: (c: Conn, code: number) => void,
    private readonly meter: WsMeter,
  ) {}

  /**
   * Sends `connected`, which is sent once the user's dialogs are known: every event committed after
   * it reaches the socket. Work queued by afterGreeting runs right after, in order.
   */
  greet(): void {
    if (this.greeted || this.closed) return;
    this.greeted = true;
    this.send({ type: 'connected', employee_id: this.userId });
    const w = this.waiting;
    this.waiting = [];
    for (const fn of w) fn();
  }

  /** Runs fn now, or after `connected` if that has not been sent yet (it is always the first frame). */
  afterGreeting(fn: () => void): void {
    if (this.greeted) fn();
    else this.waiting.push(fn);
  }

  /** Writes one frame; false when the socket is gone (or went over its buffer and was closed). */
  send(out: Outgoing | Record<string, unknown>): boolean {
    if (this.closed || !this.ws) return false;
    const o = out instanceof Outgoing ? out : new Outgoing(out);
    const bytes = o.bytes(this.format);
    this.ws.send(bytes, this.format === 'msgpack');
    this.meter.frameOut(this.format, bytes.byteLength);
    return this.checkBuffered();
  }

  /** Publishes to a topic's subscribers other than this socket. */
  publishFrom(topic: string, bytes: Uint8Array, binary: boolean): void {
    if (this.closed || !this.ws) return;
    this.ws.publish(topic, bytes, binary);
  }

  /** Closes the socket with 4008 once its unsent output passes the limit. */
  checkBuffered(): boolean {
    if (this.closed || !this.ws) return false;
    if (this.ws.getBufferedAmount() > this.maxBuffered) {
      this.close(CLOSE.SLOW_CONSUMER);
      return false;
    }
    return true;
  }

  close([code, reason]: CloseReason): void {
    if (this.closed || !this.ws) return;
    this.onServerClose(this, code);
    // uWS runs the close handler synchronously inside end().
    this.ws.end(code, reason);
  }
}
