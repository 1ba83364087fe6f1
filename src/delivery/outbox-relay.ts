// Moves outbox rows (written in the command's own transaction) into JetStream.
//
// Per batch, in one transaction: lock rows (SKIP LOCKED: relays on several workers take disjoint
// rows), publish each with its outbox id as Nats-Msg-Id, wait for every PubAck, delete the rows,
// commit. A crash before the commit leaves the rows in place; the next relay publishes them again
// and the stream's duplicate window drops the copies. Nothing is lost, nothing is doubled.
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { formatTime } from '../domain/time.js';
import type { Metrics } from '../observability/metrics.js';
import { envelopeBytes, type WebhookType } from './envelope.js';
import type { DeliveryNames } from './streams.js';

export interface OutboxRelayOptions {
  /** How often the table is polled when nobody nudges (ms). */
  pollMs: number;
  batchSize: number;
}

interface OutboxRow {
  id: string;
  kind: string;
  dialog_id: string | null;
  payload: Record<string, unknown>;
  created_at: Date | string;
}

const WEBHOOK_KINDS = new Set(['webhook.message_new', 'webhook.participant_joined', 'webhook.participant_left']);
// Rows of kinds this version does not know (written by a newer one during a rolling upgrade) are
// left in the table for a relay that understands them.
const KNOWN_KINDS = [...WEBHOOK_KINDS, 'notify.message'];

export class OutboxRelay {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly orm: Orm,
    private readonly js: JetStreamClient,
    private readonly names: DeliveryNames,
    private readonly log: Logger,
    private readonly opts: OutboxRelayOptions = { pollMs: 200, batchSize: 256 },
    private readonly metrics: Metrics | null = null,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Relay now (e.g. right after a commit that wrote outbox rows) instead of at the next poll. */
  nudge(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.loop().finally(() => {
        this.running = null;
      });
    }, ms);
  }

  private async loop(): Promise<void> {
    let delay = this.opts.pollMs;
    try {
      do {
        this.again = false;
        // A full batch means more rows are probably waiting: go on at once.
        while (!this.stopped && (await this.relayBatch()) === this.opts.batchSize);
      } while (this.again && !this.stopped);
    } catch (e) {
      delay = Math.max(this.opts.pollMs, 1000);
      this.log.warn({ err: (e as Error).message }, 'outbox relay failed; retrying');
    }
    if (this.metrics) await this.measure();
    this.schedule(delay);
  }

  /** Backlog and relay lag once per pass: what is left (and how old) after relaying what it could. */
  private async measure(): Promise<void> {
    try {
      const { rows } = (await this.orm.em.getKnex().raw(
        `SELECT count(*)::int AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS lag
           FROM outbox WHERE kind = ANY(?::text[])`,
        [KNOWN_KINDS],
      )) as { rows: { n: number; lag: number }[] };
      this.metrics!.outboxBacklog.set(rows[0].n);
      this.metrics!.outboxRelayLag.set(Math.max(0, rows[0].lag));
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'outbox backlog query failed');
    }
  }

  /** Publishes and removes one batch; returns the number of rows handled. */
  async relayBatch(): Promise<number> {
    const knex = this.orm.em.getKnex();
    return knex.transaction(async (trx) => {
      const { rows } = (await trx.raw(
        `SELECT id, kind, dialog_id, payload, created_at FROM outbox WHERE kind = ANY(?::text[])
         ORDER BY created_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
        [KNOWN_KINDS, this.opts.batchSize],
      )) as { rows: OutboxRow[] };
      if (rows.length === 0) return 0;
      // Issued back to back on one connection, so the stream stores them in this (commit) order.
      const acks = rows.map((r) => {
        const m = this.toMessage(r);
        return this.js.publish(m.subject, m.data, { msgID: r.id });
      });
      await Promise.all(acks);
      await trx.raw(`DELETE FROM outbox WHERE id = ANY(?::uuid[])`, [rows.map((r) => r.id)]);
      return rows.length;
    });
  }

  private toMessage(r: OutboxRow): { subject: string; data: Uint8Array } {
    const dialog = r.dialog_id ?? '_';
    if (WEBHOOK_KINDS.has(r.kind)) {
      const type = r.kind.slice('webhook.'.length) as WebhookType;
      // The outbox id is the event id: every republication carries the same X-Webhook-Id.
      return { subject: this.names.webhookSubject(dialog), data: envelopeBytes(r.id, type, formatTime(r.created_at), r.payload) };
    }
    return { subject: this.names.notifySubject(dialog), data: Buffer.from(JSON.stringify(r.payload)) };
  }
}
