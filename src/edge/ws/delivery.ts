// Which socket gets which event, and in what order (docs/protocol.md "Delivery", "Resume").
//
// The rule that keeps every socket gap-free and duplicate-free: a socket goes live on a dialog
// (subscribes to its uWS topic) only in the same tick in which it has been sent every logged event
// up to the feed's lastSeq. Until then it is "attached but pending": its backlog comes from
// dialog_events, in pages, and anything the feed hands on meanwhile is in the log by the time the
// next page is read. Live events after that reach it through the topic, encoded once per format.
import type { TemplatedApp } from 'uWebSockets.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Subjects } from '../../bus/subjects.js';
import { FORMATS, Outgoing, type WireFormat } from './codec.js';
import { CLOSE, type Attachment, type Conn } from './conn.js';
import type { EventLog } from './event-log.js';
import type { WsMeter } from './meter.js';
import { DialogFeeds, UserFeeds, type DialogFeed, type DialogFeedHost, type FeedEvent, type UserFeedHost, type UserMessage } from './feeds.js';

const PAGE = 500;

export interface DeliveryDeps {
  app: TemplatedApp;
  nc: NatsConnection;
  subjects: Subjects;
  eventLog: EventLog;
  log: Logger;
  retentionSecs: number;
  /** Distinguishes this edge's topics from another WsEdge on the same uWS app. */
  topicPrefix: string;
  meter: WsMeter;
}

interface AttachRequest {
  dialogId: string;
  from: number;
  /** Known committed (from the database, not the client). */
  committed: number;
  resumed?: boolean;
}

function deferred(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((r) => {
    release = r;
  });
  return { promise, release };
}

export class Delivery implements DialogFeedHost, UserFeedHost {
  readonly feeds: DialogFeeds;
  readonly userFeeds: UserFeeds;
  /** This edge's open sockets by user. */
  readonly users = new Map<string, Set<Conn>>();

  constructor(private readonly d: DeliveryDeps) {
    this.feeds = new DialogFeeds(d.nc, d.subjects, d.eventLog, this, d.log);
    this.userFeeds = new UserFeeds(d.nc, d.subjects, this, d.log);
  }

  topic(dialogId: string, format: WireFormat): string {
    return `${this.d.topicPrefix}${dialogId}/${format === 'json' ? 'j' : 'm'}`;
  }

  connectionsOf(userId: string): number {
    return this.users.get(userId)?.size ?? 0;
  }

  // ---- socket lifecycle -------------------------------------------------------------------

  /** A socket opened: greet it and attach every dialog of its user. */
  add(conn: Conn): void {
    let set = this.users.get(conn.userId);
    if (!set) this.users.set(conn.userId, (set = new Set()));
    set.add(conn);
    conn.ready = this.start(conn).catch((e) => this.fail(conn, e, 'attaching dialogs failed'));
  }

  private async start(conn: Conn): Promise<void> {
    // The user subject first, so a membership change after the snapshot below is not missed.
    await this.userFeeds.acquire(conn.userId);
    const dialogs = await this.d.eventLog.userDialogs(conn.userId);
    if (conn.closed) return;
    // The snapshot's last_seq is where this socket's view starts; anything later is backfilled,
    // so every event committed after `connected` reaches the socket.
    conn.greet();
    this.attach(conn, dialogs.map((x) => ({ dialogId: x.dialogId, from: x.lastSeq + 1, committed: x.lastSeq })));
  }

  remove(conn: Conn): void {
    for (const a of conn.dialogs.values()) {
      this.feeds.get(a.dialogId)?.live.delete(conn);
      a.held?.release();
      this.feeds.release(a.dialogId);
    }
    conn.dialogs.clear();
    const set = this.users.get(conn.userId);
    set?.delete(conn);
    if (set?.size === 0) this.users.delete(conn.userId);
    this.userFeeds.release(conn.userId);
  }

  /** The socket cannot be kept consistent (database down…): the client reconnects and resumes. */
  private fail(conn: Conn, e: unknown, what: string): void {
    if (conn.closed) return;
    this.d.log.error({ err: e, userId: conn.userId }, what);
    conn.close(CLOSE.INTERNAL);
  }

  // ---- attachments ------------------------------------------------------------------------

  private current(conn: Conn, a: Attachment): boolean {
    return !conn.closed && conn.dialogs.get(a.dialogId) === a;
  }

  private attach(conn: Conn, reqs: AttachRequest[]): Attachment[] {
    const fresh = reqs.filter((r) => !conn.dialogs.has(r.dialogId));
    const feeds = this.feeds.acquire(fresh.map((r) => r.dialogId));
    return fresh.map((r, i) => {
      const a: Attachment = {
        dialogId: r.dialogId, live: false, from: r.from, committed: r.committed, resumed: r.resumed ?? false,
        held: conn.holdForResume && !r.resumed ? deferred() : null, chain: Promise.resolve(),
      };
      conn.dialogs.set(r.dialogId, a);
      a.chain = this.backfill(conn, a, feeds[i]).catch((e) => this.fail(conn, e, 'backfill failed'));
      return a;
    });
  }

  private async backfill(conn: Conn, a: Attachment, feed: DialogFeed): Promise<void> {
    await feed.ready;
    if (a.held) await a.held.promise;
    await this.catchUp(conn, a, feed);
  }

  /** Sends the log from a.from up to the feed's lastSeq, then goes live in the same tick. */
  private async catchUp(conn: Conn, a: Attachment, feed: DialogFeed): Promise<void> {
    if (!this.current(conn, a)) return;
    // A feed whose NATS messages lag behind what this socket must start after is filled from the
    // log first; otherwise the socket would go live too early and see events before its start.
    const target = Math.min(a.from - 1, a.committed);
    if (feed.lastSeq < target) await this.feeds.syncTo(feed, target);
    let next = a.from;
    let first = true;
    for (;;) {
      if (!this.current(conn, a)) return;
      const last = feed.lastSeq;
      if (last < next) break;
      const checkRetention = first && a.resumed;
      const rows = await this.d.eventLog.range(a.dialogId, next, last, { limit: PAGE, retentionSecs: checkRetention ? this.d.retentionSecs : undefined });
      if (!this.current(conn, a)) return;
      if (checkRetention && (rows.length === 0 || rows[0].seq !== next)) {
        // The events the client misses are no longer kept: it must reload the dialog.
        this.d.meter.resyncRequired();
        if (!conn.send({ type: 'resync_required', dialog_id: a.dialogId })) return;
        break;
      }
      first = false;
      for (const e of rows) {
        if (!conn.send(new Outgoing(e))) return;
        if (e.type === 'participant.left' && e.user_id === conn.userId) {
          this.detach(conn, a.dialogId, e.seq);
          return;
        }
        next = e.seq + 1;
      }
      if (rows.length < PAGE) next = Math.max(next, last + 1);
    }
    a.live = true;
    a.resumed = false;
    conn.ws!.subscribe(this.topic(a.dialogId, conn.format));
    feed.live.add(conn);
  }

  private goPending(conn: Conn, a: Attachment): void {
    if (!a.live) return;
    a.live = false;
    conn.ws!.unsubscribe(this.topic(a.dialogId, conn.format));
    this.feeds.get(a.dialogId)?.live.delete(conn);
  }

  /** Stops a dialog's delivery to this socket (`leftSeq`: the participant.left that ended it). */
  detach(conn: Conn, dialogId: string, leftSeq: number | null): void {
    if (leftSeq !== null) conn.leftAt.set(dialogId, Math.max(leftSeq, conn.leftAt.get(dialogId) ?? 0));
    const a = conn.dialogs.get(dialogId);
    if (!a) return;
    conn.dialogs.delete(dialogId);
    a.held?.release();
    if (a.live && !conn.closed) conn.ws!.unsubscribe(this.topic(dialogId, conn.format));
    this.feeds.get(dialogId)?.live.delete(conn);
    this.feeds.release(dialogId);
  }

  /** Ends the wait of a socket that connected with ?resume=1. */
  endHold(conn: Conn): void {
    if (!conn.holdForResume) return;
    conn.holdForResume = false;
    for (const a of conn.dialogs.values()) {
      const h = a.held;
      a.held = null;
      h?.release();
    }
  }

  // ---- resume -----------------------------------------------------------------------------

  /** Replays, per dialog, what the client missed since `lastSeen` (never before it joined). */
  async resume(conn: Conn, dialogs: Map<string, number>, id: string | undefined): Promise<void> {
    await conn.ready;
    if (conn.closed) return;
    const ids = [...dialogs.keys()];
    const joined = ids.length > 0 ? await this.d.eventLog.joinedSeqs(conn.userId, ids) : new Map<string, { joinedSeq: number; lastSeq: number }>();
    if (conn.closed) return;
    const waits: Promise<void>[] = [];
    const fresh: AttachRequest[] = [];
    for (const [dialogId, lastSeen] of dialogs) {
      const j = joined.get(dialogId);
      if (j === undefined) continue; // not a participant: nothing of it is sent
      const from = Math.max(lastSeen + 1, j.joinedSeq);
      const a = conn.dialogs.get(dialogId);
      if (!a) {
        fresh.push({ dialogId, from, committed: j.lastSeq, resumed: true });
      } else if (a.held) {
        a.from = from;
        a.committed = Math.max(a.committed, j.lastSeq);
        a.resumed = true;
        const h = a.held;
        a.held = null;
        h.release();
        waits.push(a.chain);
      } else {
        // Already attached: back to pending, then replay from the requested point.
        a.chain = a.chain.then(async () => {
          const feed = this.feeds.get(dialogId);
          if (!this.current(conn, a) || !feed) return;
          this.goPending(conn, a);
          a.from = from;
          a.committed = Math.max(a.committed, j.lastSeq);
          a.resumed = true;
          await this.catchUp(conn, a, feed);
        }).catch((e) => this.fail(conn, e, 'resume failed'));
        waits.push(a.chain);
      }
    }
    for (const a of this.attach(conn, fresh)) waits.push(a.chain);
    this.endHold(conn);
    await Promise.all(waits);
    conn.send(id === undefined ? { type: 'resumed' } : { type: 'resumed', id });
  }

  // ---- feeds ------------------------------------------------------------------------------

  /** A dialog event, in seq order, exactly once: to the live sockets of the dialog. */
  emit(feed: DialogFeed, event: FeedEvent, committedAt?: number): void {
    const out = new Outgoing(event);
    if (event.type === 'participant.left' && typeof event.user_id === 'string') {
      for (const c of [...feed.live]) {
        if (c.userId !== event.user_id) continue;
        // Written directly, which first flushes what uWS queued for this socket from the topic:
        // uWS drops a subscriber's queued topic messages when it unsubscribes.
        c.send(out);
        this.detach(c, feed.dialogId, event.seq ?? null);
      }
    }
    if (event.type === 'presence.update' && typeof event.user_id === 'string') {
      this.emitPresence(feed, out, event.user_id);
      return;
    }
    this.publishToDialog(feed, out);
    if (committedAt !== undefined) this.d.meter.delivered(committedAt);
    // (Deleting from a Set while iterating it is safe: a closed socket leaves feed.live.)
    for (const c of feed.live) c.checkBuffered();
  }

  private publishToDialog(feed: DialogFeed, out: Outgoing, from?: Conn): void {
    for (const f of FORMATS) {
      const topic = this.topic(feed.dialogId, f);
      const n = this.d.app.numSubscribers(topic);
      if (n > 0) {
        const bytes = out.bytes(f);
        if (from) from.publishFrom(topic, bytes, f === 'msgpack');
        else this.d.app.publish(topic, bytes, f === 'msgpack');
        this.d.meter.frameOut(f, bytes.byteLength, from?.dialogs.get(feed.dialogId)?.live && from.format === f ? n - 1 : n);
      }
    }
  }

  /**
   * Presence goes to the dialog's sockets except the subject's own. A user comes online with one
   * socket (its first), published from that socket so uWS leaves it out; only when several of
   * the subject's sockets are attached (tabs opened at once) does it fall back to one write each.
   */
  private emitPresence(feed: DialogFeed, out: Outgoing, subject: string): void {
    let own: Conn | null = null;
    let ownCount = 0;
    for (const c of feed.live) {
      if (c.userId !== subject) continue;
      own = c;
      ownCount++;
    }
    if (ownCount <= 1) return this.publishToDialog(feed, out, own ?? undefined);
    for (const c of [...feed.live]) if (c.userId !== subject) c.send(out);
  }

  async onUserMessage(userId: string, m: UserMessage): Promise<void> {
    const conns = this.users.get(userId);
    if (!conns || conns.size === 0) return;
    if ('membership' in m) {
      if (m.membership !== 'joined' || typeof m.dialog_id !== 'string') return;
      const dialogId = m.dialog_id;
      if (![...conns].some((c) => !c.dialogs.has(dialogId))) return;
      // Backfill from the join point: the joiner misses nothing of what it may see.
      const j = (await this.d.eventLog.joinedSeqs(userId, [dialogId])).get(dialogId);
      if (j === undefined) return; // already gone again; its participant.left follows
      for (const c of this.users.get(userId) ?? []) {
        if (c.closed || c.dialogs.has(dialogId)) continue;
        c.leftAt.delete(dialogId);
        this.attach(c, [{ dialogId, from: j.joinedSeq, committed: j.joinedSeq - 1 }]);
      }
      return;
    }
    const event = m.event;
    if (!event || typeof event.type !== 'string') return;
    const seq = typeof m.seq === 'number' ? m.seq : null;
    const dialogId = typeof event.dialog_id === 'string' ? event.dialog_id : null;
    const out = new Outgoing(seq === null ? event : { ...event, seq });
    for (const c of [...conns]) {
      if (seq !== null && dialogId !== null) {
        // A sequenced event of an attached dialog comes through the dialog feed (or its backlog).
        if (c.dialogs.has(dialogId)) continue;
        if ((c.leftAt.get(dialogId) ?? 0) >= seq) continue;
      }
      c.send(out);
      if (event.type === 'participant.left' && event.user_id === userId && dialogId !== null) this.detach(c, dialogId, seq);
    }
  }

  close(): void {
    this.feeds.closeAll();
    this.userFeeds.closeAll();
  }
}
