// NATS side of delivery: one subscription per dialog (reference counted by this edge's sockets)
// and one per user. A dialog feed turns the subject's messages back into the gap-free sequence
// (late or duplicate messages dropped, holes filled from dialog_events) and hands each event on
// exactly once, in seq order.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { decodeJson } from '../../bus/nats.js';
import { userToken, type Subjects } from '../../bus/subjects.js';
import { userShardOf } from '../../domain/partition.js';
import type { Conn } from './conn.js';
import type { EventLog, LoggedEvent } from './event-log.js';

const PAGE = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/** What a dialog subject carries (cluster contract). */
interface DialogMessage {
  seq: number | null;
  event: Record<string, unknown> & { type: string };
  /** Commit time (epoch ms), for the delivery latency metric; absent from older workers. */
  t?: number;
}

export type FeedEvent = Record<string, unknown> & { type: string; seq?: number };

export class DialogFeed {
  refs = 0;
  /** Highest seq handed on; everything up to it is committed and in dialog_events. */
  lastSeq = 0;
  /** Sockets subscribed to this dialog's topics. */
  readonly live = new Set<Conn>();
  disposed = false;
  ready!: Promise<void>;
  chain!: Promise<void>;
  sub: Subscription | null = null;
  constructor(readonly dialogId: string) {}
}

export interface DialogFeedHost {
  /**
   * Fan one event out to the dialog's sockets (called in seq order, never twice for a seq).
   * `committedAt` (epoch ms) comes with events that arrived live from NATS, not from the log.
   */
  emit(feed: DialogFeed, event: FeedEvent, committedAt?: number): void;
}

export class DialogFeeds {
  private readonly feeds = new Map<string, DialogFeed>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly eventLog: EventLog,
    private readonly host: DialogFeedHost,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.feeds.size;
  }

  get(dialogId: string): DialogFeed | undefined {
    return this.feeds.get(dialogId);
  }

  /**
   * Takes a reference on each dialog's feed, subscribing where this edge had none. A new feed
   * starts at the dialog's last_seq read after the subscription is in place on the server, so
   * everything later arrives on it and everything before is in the log.
   */
  acquire(dialogIds: string[]): DialogFeed[] {
    const created: DialogFeed[] = [];
    const out = dialogIds.map((id) => {
      let f = this.feeds.get(id);
      if (!f) {
        f = new DialogFeed(id);
        this.feeds.set(id, f);
        const feed = f;
        f.sub = this.nc.subscribe(this.subjects.dialog(id), {
          callback: (err, msg) => {
            if (err) return this.log.warn({ err: err.message, dialogId: id }, 'dialog subscription error');
            feed.chain = feed.chain.then(() => this.process(feed, msg)).catch((e) => this.log.error({ err: e, dialogId: id }, 'dialog feed failed'));
          },
        });
        created.push(f);
      }
      f.refs++;
      return f;
    });
    if (created.length > 0) {
      const init = this.init(created);
      for (const f of created) {
        f.ready = init;
        f.chain = init;
      }
    }
    return out;
  }

  release(dialogId: string): void {
    const f = this.feeds.get(dialogId);
    if (!f) return;
    if (--f.refs > 0) return;
    f.disposed = true;
    this.feeds.delete(dialogId);
    try {
      f.sub?.unsubscribe();
    } catch {
      /* connection already closed */
    }
  }

  closeAll(): void {
    for (const id of [...this.feeds.keys()]) {
      const f = this.feeds.get(id)!;
      f.refs = 1;
      this.release(id);
    }
  }

  /**
   * Brings the feed up to `seq` (known committed) from the log if its NATS messages have not
   * arrived yet; live sockets get the filled events in order, later duplicates are dropped.
   */
  syncTo(feed: DialogFeed, seq: number): Promise<void> {
    const step = feed.chain.then(async () => {
      if (!feed.disposed && feed.lastSeq < seq) await this.fill(feed, seq);
    });
    feed.chain = step.catch((e) => this.log.error({ err: e, dialogId: feed.dialogId }, 'dialog feed failed'));
    return step;
  }

  private async init(feeds: DialogFeed[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.nc.flush();
        const seqs = await this.eventLog.lastSeqs(feeds.map((f) => f.dialogId));
        for (const f of feeds) f.lastSeq = seqs.get(f.dialogId) ?? 0;
        return;
      } catch (e) {
        if (feeds.every((f) => f.disposed)) return;
        this.log.warn({ err: e, attempt }, 'dialog feed start failed, retrying');
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  private async process(feed: DialogFeed, msg: Msg): Promise<void> {
    if (feed.disposed) return;
    let m: DialogMessage;
    try {
      m = decodeJson<DialogMessage>(msg.data);
      if (typeof m?.event?.type !== 'string') throw new Error('no event');
    } catch (e) {
      this.log.warn({ err: (e as Error).message, dialogId: feed.dialogId }, 'undecodable dialog message dropped');
      return;
    }
    const seq = typeof m.seq === 'number' ? m.seq : null;
    const t = typeof m.t === 'number' ? m.t : undefined;
    if (seq === null) return this.host.emit(feed, m.event, t);
    if (seq <= feed.lastSeq) return;
    // A NATS message went missing (or arrived late): the log has every committed event.
    if (seq > feed.lastSeq + 1) await this.fill(feed, seq - 1);
    if (feed.disposed || seq <= feed.lastSeq) return;
    feed.lastSeq = seq;
    this.host.emit(feed, { ...m.event, seq }, t);
  }

  private async fill(feed: DialogFeed, to: number): Promise<void> {
    while (!feed.disposed && feed.lastSeq < to) {
      const rows: LoggedEvent[] = await this.eventLog.range(feed.dialogId, feed.lastSeq + 1, to, { limit: PAGE });
      if (feed.disposed) return;
      for (const e of rows) {
        if (e.seq <= feed.lastSeq) continue;
        feed.lastSeq = e.seq;
        this.host.emit(feed, e);
      }
      // Rows past retention are gone for good: skip the hole rather than wait for it.
      if (rows.length < PAGE) feed.lastSeq = Math.max(feed.lastSeq, to);
    }
  }
}

/** What a user subject carries (cluster contract). */
export type UserMessage =
  | { membership: 'joined'; dialog_id: string }
  | { seq?: number | null; event: FeedEvent };

export interface UserFeedHost {
  onUserMessage(userId: string, m: UserMessage): Promise<void>;
}

interface UserFeed {
  refs: number;
  userId: string;
  chain: Promise<void>;
}

interface ShardSub {
  /** Users of the shard with sockets on this edge. */
  users: number;
  sub: Subscription;
  /** Resolves once the server has the subscription. */
  ready: Promise<void>;
}

/**
 * Per-user messages, one subscription per shard of users (userShardOf) rather than per user: a
 * subscription costs about 1.5 KB of heap, and an edge holds every shard long before it holds
 * every user. Messages of users without a socket here are dropped on arrival.
 */
export class UserFeeds {
  /** By subject token (userToken), which is what arrives. */
  private readonly feeds = new Map<string, UserFeed>();
  private readonly shards = new Map<number, ShardSub>();

  constructor(private readonly nc: NatsConnection, private readonly subjects: Subjects, private readonly host: UserFeedHost, private readonly log: Logger) {}

  get size(): number {
    return this.feeds.size;
  }

  /** Resolves when the user's messages are subscribed on the server. */
  acquire(userId: string): Promise<void> {
    const token = userToken(userId);
    const existing = this.feeds.get(token);
    if (existing) {
      existing.refs++;
      return this.shards.get(userShardOf(userId))!.ready;
    }
    this.feeds.set(token, { refs: 1, userId, chain: Promise.resolve() });
    const shard = userShardOf(userId);
    let s = this.shards.get(shard);
    if (!s) {
      s = { users: 0, ready: Promise.resolve(), sub: this.nc.subscribe(this.subjects.userShard(shard), { callback: (err, msg) => this.deliver(err, msg) }) };
      // The SUB goes out before the PING, so the PONG proves the server has it.
      s.ready = this.nc.flush().catch((e) => this.log.warn({ err: e }, 'nats flush failed'));
      this.shards.set(shard, s);
    }
    s.users++;
    return s.ready;
  }

  private deliver(err: Error | null, msg: Msg): void {
    if (err) return this.log.warn({ err: err.message }, 'user subscription error');
    const feed = this.feeds.get(msg.subject.slice(msg.subject.lastIndexOf('.') + 1));
    if (!feed) return;
    let m: UserMessage;
    try {
      m = decodeJson<UserMessage>(msg.data);
    } catch {
      return this.log.warn('undecodable user message dropped');
    }
    // One user's messages are handled strictly in arrival order.
    feed.chain = feed.chain.then(() => this.host.onUserMessage(feed.userId, m)).catch((e) => this.log.error({ err: e }, 'user message failed'));
  }

  release(userId: string): void {
    const token = userToken(userId);
    const f = this.feeds.get(token);
    if (!f || --f.refs > 0) return;
    this.feeds.delete(token);
    const shard = userShardOf(userId);
    const s = this.shards.get(shard);
    if (!s || --s.users > 0) return;
    this.shards.delete(shard);
    try {
      s.sub.unsubscribe();
    } catch {
      /* connection already closed */
    }
  }

  closeAll(): void {
    for (const f of [...this.feeds.values()]) {
      f.refs = 1;
      this.release(f.userId);
    }
  }
}
