// Smart notifications: "this message is still unread by this recipient", NOTIFICATION_DELAY_MS
// after it was sent.
//
// One NOTIFY message per user message (never one per recipient). It is held back by delayed
// redelivery — nak(remaining delay): it waits in the stream, not in a worker slot — so the number
// of notifications in their delay is bounded only by the consumer's max_ack_pending. When due, one
// query finds the recipients that still qualify and each gets a `notification_pending` envelope in
// the WEBHOOKS stream, keyed message × recipient: Nats-Msg-Id drops copies within the duplicate
// window, and the envelope id is derived from the pair, so any later copy has the same X-Webhook-Id.
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { formatTime } from '../domain/time.js';
import type { Metrics } from '../observability/metrics.js';
import { envelopeBytes, notificationId, uuidV7Millis } from './envelope.js';
import type { DeliveryNames } from './streams.js';

export interface NotifyPayload {
  dialog_id: string;
  message_id: string;
  sender_id: string;
}

export interface NotifierOptions {
  delayMs: number;
  /** Failed checks (database or stream errors) are retried this many times with doubling delays. */
  maxAttempts: number;
}

interface RecipientRow {
  recipient_id: string;
  object_id: string;
  object_type: string;
  title: string | null;
  sender_company: string | null;
  id: string;
  sender_id: string | null;
  content: string;
  reply_to_id: string | null;
  sent_at: Date | string;
  message_type: string;
}

// Recipients that still qualify, with everything the payload needs, in one statement: a participant
// now and already when the message was sent, not the sender, notifications on, the message not
// read (read pointers only move forward and v7 ids sort by time), and the message still there.
const RECIPIENTS_SQL = `
  SELECT p.user_id AS recipient_id, d.object_id, d.object_type, d.title,
         (SELECT s.company FROM dialog_participants s WHERE s.dialog_id = m.dialog_id AND s.user_id = m.sender_id) AS sender_company,
         m.id, m.sender_id, m.content, m.reply_to_id, m.sent_at, m.message_type
    FROM messages m
    JOIN dialogs d ON d.id = m.dialog_id
    JOIN dialog_participants p ON p.dialog_id = m.dialog_id
   WHERE m.id = ? AND m.dialog_id = ?
     AND p.user_id IS DISTINCT FROM m.sender_id
     AND p.notifications_enabled
     AND (p.last_read_message_id IS NULL OR p.last_read_message_id < m.id)
     AND p.joined_at <= m.sent_at
   ORDER BY p.user_id`;

export class Notifier {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private readonly active = new Set<Promise<void>>();

  constructor(
    private readonly orm: Orm,
    private readonly js: JetStreamClient,
    private readonly names: DeliveryNames,
    private readonly opts: NotifierOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics | null = null,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.names.notifyStream, this.names.notifyConsumer);
    this.messages = await consumer.consume({ max_messages: 512 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) {
        // A handler that throws (a closed connection on ack/nak) must not become an unhandled
        // rejection, which ends the process: the message comes back after ack_wait.
        const p = this.handle(m)
          .catch((e) => this.log.error({ err: (e as Error).message, seq: m.seq }, 'notification handling failed'))
          .finally(() => this.active.delete(p));
        this.active.add(p);
      }
    })().catch((e) => this.log.error({ err: (e as Error).message }, 'notification consumer stopped'));
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
    await Promise.allSettled([...this.active]);
  }

  private async handle(m: JsMsg): Promise<void> {
    let n: NotifyPayload;
    try {
      n = m.json<NotifyPayload>();
      if (typeof n?.message_id !== 'string' || typeof n.dialog_id !== 'string') throw new Error('not a notify entry');
    } catch {
      this.log.error({ seq: m.seq }, 'unreadable notification entry dropped');
      m.term(); // no reason: NATS 2.9 does not parse "+TERM reason" and leaves the message pending
      return;
    }
    const sentAt = uuidV7Millis(n.message_id) ?? m.time.getTime();
    const remaining = sentAt + this.opts.delayMs - Date.now();
    if (remaining > 0) {
      m.nak(remaining);
      return;
    }
    try {
      const recipients = await this.notify(n);
      m.ack();
      // Per due check (one per message): some recipient notified, or everyone had read it / muted it.
      this.metrics?.notifications.inc({ outcome: recipients.length > 0 ? 'emitted' : 'suppressed' });
    } catch (e) {
      const attempt = m.info.deliveryCount;
      if (attempt >= this.opts.maxAttempts) {
        this.log.error({ err: (e as Error).message, message_id: n.message_id, attempt }, 'notification check failed; giving up');
        m.term();
        return;
      }
      const delay = Math.min(60_000, 500 * 2 ** Math.min(attempt - 1, 10));
      this.log.warn({ err: (e as Error).message, message_id: n.message_id, attempt, delay }, 'notification check failed; retrying');
      m.nak(delay);
    }
  }

  /** Publishes the due notifications of one message; returns the recipients. */
  async notify(n: NotifyPayload): Promise<string[]> {
    const { rows } = (await this.orm.em.getKnex().raw(RECIPIENTS_SQL, [n.message_id, n.dialog_id])) as { rows: RecipientRow[] };
    const timestamp = formatTime(new Date());
    await Promise.all(rows.map((r) => {
      const message: Record<string, unknown> = { id: r.id, content: r.content, created_at: formatTime(r.sent_at), message_type: r.message_type };
      if (r.sender_id !== null) message.sender_id = r.sender_id;
      if (r.reply_to_id !== null) message.reply_to = r.reply_to_id;
      const payload: Record<string, unknown> = {
        dialog_id: n.dialog_id, object_id: r.object_id, object_type: r.object_type, recipient_id: r.recipient_id,
      };
      if (r.title !== null) payload.chat_title = r.title;
      if (r.sender_company !== null) payload.sender_company = r.sender_company;
      payload.message = message;
      const body = envelopeBytes(notificationId(n.message_id, r.recipient_id), 'notification_pending', timestamp, payload);
      return this.js.publish(this.names.webhookSubject(n.dialog_id), body, { msgID: `${n.message_id}:${r.recipient_id}` });
    }));
    return rows.map((r) => r.recipient_id);
  }
}
