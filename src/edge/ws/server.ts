// The WebSocket endpoint (docs/protocol.md): upgrade checks, the socket's frames, and shutdown.
// Delivery (which socket gets which event) lives in delivery.ts, commands in commands.ts.
import uWS from 'uWebSockets.js';
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { CommandGateway } from '../../actors/gateway.js';
import type { Subjects } from '../../bus/subjects.js';
import type { Config } from '../../config/env.js';
import type { Orm } from '../../db/orm.js';
import { badRequest } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Storage } from '../../services/storage.js';
import type { IdentityResolver } from '../auth/identity.js';
import type { CorsPolicy } from '../http/cors.js';
import { decodeFrame, negotiate } from './codec.js';
import { WsCommands, errorFrame, type CommandFrame } from './commands.js';
import { CLOSE, Conn, type UserData } from './conn.js';
import { Delivery } from './delivery.js';
import { EventLog } from './event-log.js';
import { FrameError, parseFrame, type ClientFrame } from './frames.js';
import { WsMeter } from './meter.js';
import { STATUS_LINE, identify, wantsResumeHold, type Rejection } from './handshake.js';
import { TokenBucket } from './rate.js';

export const WS_PATH = '/api/v1/ws';
/** Longest a ?resume=1 socket waits for its `resume` frame before going live anyway. */
export const RESUME_WAIT_MS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const SWEEP_MS = 1000;

/** Presence, counted per connection (connId is unique across edges). Optional: null = off. */
/** `dialogs`: the dialogs the socket is (or was, at close) attached to, where a change is announced. */
export interface WsPresence {
  connected(userId: string, connId: string, dialogs: () => Promise<string[]>): unknown;
  disconnected(userId: string, connId: string, dialogs: () => Promise<string[]>): unknown;
  refresh(userId: string, connId: string): unknown;
}

export type WsConfig = Pick<Config,
  'wsMaxBufferedBytes' | 'wsMaxPayloadBytes' | 'wsMaxConnectionsPerUser' | 'wsRateLimitPerSec' | 'wsRateLimitBurst' | 'eventRetentionSecs' | 'jwtLeewaySecs'>;

export interface WsEdgeDeps {
  /** The HTTP server's uWS app (HttpServer#uws): the socket shares its listener. */
  app: TemplatedApp;
  cfg: WsConfig;
  log: Logger;
  identity: IdentityResolver;
  cors: CorsPolicy;
  gateway: CommandGateway;
  orm: Orm;
  nc: NatsConnection;
  subjects: Subjects;
  presence?: WsPresence | null;
  /** Attachment storage, for the same send checks and download URLs as REST. */
  storage?: Storage | null;
  /** Defaults to /api/v1/ws. */
  path?: string;
  resumeWaitMs?: number;
  /** The process's metrics; none are recorded without it. */
  metrics?: Metrics | null;
}

export interface WsStats {
  connections: number;
  dialogFeeds: number;
  userFeeds: number;
  /** Server-initiated closes by close code. */
  closedByServer: Record<number, number>;
}

export class WsEdge {
  readonly edgeId = newId();
  private readonly delivery: Delivery;
  private readonly commands: WsCommands;
  private readonly meter: WsMeter;
  private readonly conns = new Set<Conn>();
  private readonly closedByServer: Record<number, number> = {};
  private readonly sweep: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly d: WsEdgeDeps) {
    this.meter = new WsMeter(d.metrics ?? null);
    this.delivery = new Delivery({
      app: d.app, nc: d.nc, subjects: d.subjects, eventLog: new EventLog(d.orm), log: d.log,
      retentionSecs: d.cfg.eventRetentionSecs, topicPrefix: `${this.edgeId}:`, meter: this.meter,
    });
    this.commands = new WsCommands({ gateway: d.gateway, orm: d.orm, storage: d.storage ?? null, log: d.log });
    const maxPayload = d.cfg.wsMaxPayloadBytes;
    d.app.ws<UserData>(d.path ?? WS_PATH, {
      // Frames up to twice the limit are read and refused with 1009; beyond that uWS cuts the
      // connection itself (the client sees 1006) without buffering the frame.
      maxPayloadLength: maxPayload * 2,
      // uWS would silently drop frames past maxBackpressure; the edge closes at its own limit
      // first, so this only bounds the overshoot of the last writes.
      maxBackpressure: d.cfg.wsMaxBufferedBytes * 2 + maxPayload,
      closeOnBackpressureLimit: 0,
      idleTimeout: 0,
      sendPingsAutomatically: false,
      compression: uWS.DISABLED,
      upgrade: (res, req, ctx) => this.upgrade(res, req, ctx),
      open: (ws) => this.open(ws),
      message: (ws, data, isBinary) => this.message(ws.getUserData().conn, data, isBinary),
      close: (ws, code) => this.closed(ws.getUserData().conn, code),
    });
    // Topic fan-out can fill a buffer between two direct writes: look at every socket now and then.
    this.sweep = setInterval(() => {
      for (const c of [...this.conns]) c.checkBuffered();
    }, SWEEP_MS);
    this.sweep.unref();
  }

  stats(): WsStats {
    return {
      connections: this.conns.size, dialogFeeds: this.delivery.feeds.size, userFeeds: this.delivery.userFeeds.size,
      closedByServer: { ...this.closedByServer },
    };
  }

  /** Refuses new sockets, closes open ones with 1001 and drops every NATS subscription. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    for (const c of [...this.conns]) c.close(CLOSE.GOING_AWAY);
    this.delivery.close();
  }

  // ---- upgrade ----------------------------------------------------------------------------

  private upgrade(res: HttpResponse, req: uWS.HttpRequest, ctx: uWS.us_socket_context_t): void {
    // uWS's request object is valid only until this function returns.
    const key = req.getHeader('sec-websocket-key');
    const protocols = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const query = req.getQuery() ?? '';
    if (this.closing) return reject(res, { status: 503, message: 'Server is shutting down' });
    if (!this.d.cors.originAllowed(origin || undefined)) return reject(res, { status: 403, message: 'Origin not allowed' });

    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    // One catch for both the lookup and the upgrade itself: a throw in either must not become an
    // unhandled rejection (which ends the process).
    identify(this.d.identity, query, this.d.cfg.jwtLeewaySecs).then((who) => {
      if (state.aborted) return;
      if ('status' in who) return reject(res, who);
      if (this.closing) return reject(res, { status: 503, message: 'Server is shutting down' });
      // uWS runs `open` inside upgrade(), so the count cannot go stale between check and use.
      if (this.delivery.connectionsOf(who.userId) >= this.d.cfg.wsMaxConnectionsPerUser) return reject(res, { status: 429, message: 'Too many connections for this user' });
      const { format, protocol } = negotiate(protocols);
      const conn = new Conn(
        who.userId, format, who.closeAt, wantsResumeHold(query),
        new TokenBucket(this.d.cfg.wsRateLimitPerSec, this.d.cfg.wsRateLimitBurst), this.d.cfg.wsMaxBufferedBytes,
        (c, code) => this.countServerClose(c, code), this.meter,
      );
      res.cork(() => res.upgrade<UserData>({ conn }, key, protocol, extensions, ctx));
    }).catch((e) => {
      this.d.log.error({ err: e }, 'websocket upgrade failed');
      try {
        if (!state.aborted) reject(res, { status: 500, message: 'Internal server error' });
      } catch {
        /* the response was already used up by the failed upgrade */
      }
    });
  }

  private countServerClose(_c: Conn, code: number): void {
    this.closedByServer[code] = (this.closedByServer[code] ?? 0) + 1;
    if (code === CLOSE.SLOW_CONSUMER[0]) this.meter.slowConsumer();
  }

  // ---- socket -----------------------------------------------------------------------------

  private open(ws: WebSocket<UserData>): void {
    const conn = ws.getUserData().conn;
    conn.ws = ws;
    this.conns.add(conn);
    this.meter.opened(conn.format);
    this.d.log.debug({ userId: conn.userId, format: conn.format, conn: conn.id }, 'websocket open');
    if (conn.expiresAt !== null) this.expireAt(conn, conn.expiresAt);
    if (conn.holdForResume) {
      const t = setTimeout(() => this.delivery.endHold(conn), this.d.resumeWaitMs ?? RESUME_WAIT_MS);
      t.unref();
      conn.timers.push(t);
    }
    this.delivery.add(conn);
    this.presence('connected', conn, async () => {
      await conn.ready;
      return [...conn.dialogs.keys()];
    });
  }

  private expireAt(conn: Conn, at: number): void {
    const wait = at - Date.now();
    if (wait <= 0) return conn.close(CLOSE.TOKEN_EXPIRED);
    const t = setTimeout(() => this.expireAt(conn, at), Math.min(wait, MAX_TIMER_MS));
    t.unref();
    conn.timers.push(t);
  }

  private closed(conn: Conn, code: number): void {
    conn.closed = true;
    for (const t of conn.timers) clearTimeout(t);
    this.conns.delete(conn);
    this.meter.closed(conn.format);
    const attached = [...conn.dialogs.keys()];
    this.delivery.remove(conn);
    this.d.log.debug({ userId: conn.userId, conn: conn.id, code }, 'websocket closed');
    // While the edge shuts down its sockets close by the thousand and their users reconnect to
    // other edges: Redis still forgets the connection, but nobody is told of an offline moment.
    const announce = this.closing ? [] : attached;
    this.presence('disconnected', conn, async () => announce);
  }

  private presence(what: 'connected' | 'disconnected' | 'refresh', conn: Conn, dialogs: () => Promise<string[]> = async () => []): void {
    const p = this.d.presence;
    if (!p) return;
    try {
      Promise.resolve(p[what](conn.userId, `${this.edgeId}:${conn.id}`, dialogs)).catch((e) => this.d.log.warn({ err: e }, `presence ${what} failed`));
    } catch (e) {
      this.d.log.warn({ err: e }, `presence ${what} failed`);
    }
  }

  private message(conn: Conn, data: ArrayBuffer, isBinary: boolean): void {
    if (conn.closed) return;
    const receivedAt = performance.now();
    this.meter.frameIn(conn.format, data.byteLength);
    if (data.byteLength > this.d.cfg.wsMaxPayloadBytes) return conn.close(CLOSE.TOO_BIG);
    if (!conn.bucket.take()) {
      this.meter.rateLimited();
      // Refused frames are not even decoded; a client that keeps going is cut off.
      if (conn.bucket.strikes >= this.d.cfg.wsRateLimitBurst) return conn.close(CLOSE.RATE_LIMITED);
      conn.afterGreeting(() => conn.send({ type: 'error', code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please slow down.' }));
      return;
    }
    // The frame's bytes are only valid during this call: decode now, answer in turn.
    const decoded = decodeFrame(data, isBinary);
    if (!decoded.ok) {
      const answer = errorFrame(badRequest(decoded.message));
      return conn.afterGreeting(() => conn.send(answer));
    }
    let frame: ClientFrame;
    try {
      frame = parseFrame(decoded.value);
    } catch (e) {
      if (e instanceof FrameError) {
        const answer = errorFrame(e.error, e.id);
        return conn.afterGreeting(() => conn.send(answer));
      }
      throw e;
    }
    conn.afterGreeting(() => this.dispatch(conn, frame, receivedAt));
  }

  private dispatch(conn: Conn, f: ClientFrame, receivedAt: number): void {
    switch (f.type) {
      case 'ping':
        conn.send({ type: 'pong' });
        this.presence('refresh', conn);
        return;
      case 'ignored':
        return;
      case 'resume':
        this.meter.resumeRequested();
        this.delivery.resume(conn, f.dialogs, f.id).catch((e) => {
          this.d.log.error({ err: e, userId: conn.userId }, 'resume failed');
          conn.close(CLOSE.INTERNAL);
        });
        return;
      default:
        this.runCommand(conn, f, receivedAt);
    }
  }

  /** One socket's commands on one dialog run one after another, in the order they arrived. */
  private runCommand(conn: Conn, f: CommandFrame, receivedAt: number): void {
    const prev = conn.commands.get(f.dialogId) ?? Promise.resolve();
    const next = prev.then(async () => {
      const answer = await this.commands.run(conn.userId, f);
      conn.send(answer);
      if (f.type === 'send' && answer.type === 'ack') this.meter.sendAcked(receivedAt);
    });
    conn.commands.set(f.dialogId, next);
    void next.finally(() => {
      if (conn.commands.get(f.dialogId) === next) conn.commands.delete(f.dialogId);
    });
  }
}

function reject(res: HttpResponse, r: Rejection): void {
  res.cork(() => {
    res.writeStatus(STATUS_LINE[r.status] ?? String(r.status));
    res.writeHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(r.message);
  });
}
