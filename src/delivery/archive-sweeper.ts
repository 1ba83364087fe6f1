// Auto-archive: on ARCHIVE_CRON, the participants of dialogs inactive for ARCHIVE_AFTER_SECS are
// archived. A dialog's activity time is its newest message's sent_at (user or system), or its
// created_at when it has none (finding B15: a fresh empty dialog is not archived at once). Each
// worker sweeps only the partitions it owns, so exactly one sweeper handles each dialog.
import { CronExpressionParser } from 'cron-parser';
import type { Logger } from 'pino';
import type { EventPublisher } from '../bus/local-bus.js';
import type { Orm } from '../db/orm.js';
import type { DomainEvent } from '../domain/events.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ArchiveSweeperOptions {
  cron: string;
  afterSecs: number;
  /** Dialogs handled per sweep at most; the rest wait for the next one. */
  batchSize: number;
}

export interface ArchivedRow {
  dialog_id: string;
  user_id: string;
}

const ACTIVITY = (d: string) =>
  `COALESCE((SELECT max(m.sent_at) FROM messages m WHERE m.dialog_id = ${d}.id), ${d}.created_at)`;

// Statement 1 locks the candidates (skipping dialogs a command holds right now). Statement 2 runs
// after the locks are held, with a fresh snapshot, and re-checks inactivity: a message committed
// before the lock is seen, and a send that comes after it waits for this commit and then unarchives.
const CANDIDATES_SQL = `
  SELECT d.id FROM dialogs d
   WHERE d.partition = ANY(?::smallint[])
     AND ${ACTIVITY('d')} < ?
     AND EXISTS (SELECT 1 FROM dialog_participants p WHERE p.dialog_id = d.id AND NOT p.is_archived)
   ORDER BY d.id
   LIMIT ?
   FOR UPDATE OF d SKIP LOCKED`;
const ARCHIVE_SQL = `
  UPDATE dialog_participants p SET is_archived = true
    FROM dialogs d
   WHERE d.id = ANY(?::uuid[]) AND p.dialog_id = d.id AND NOT p.is_archived
     AND ${ACTIVITY('d')} < ?
  RETURNING p.dialog_id, p.user_id`;

export class ArchiveSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly orm: Orm,
    private readonly publisher: EventPublisher,
    private readonly ownedPartitions: () => number[],
    private readonly opts: ArchiveSweeperOptions,
    private readonly log: Logger,
  ) {
    CronExpressionParser.parse(opts.cron); // an invalid schedule fails at start, not at the first run
  }

  start(): void {
    this.stopped = false;
    this.scheduleNext();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    const next = CronExpressionParser.parse(this.opts.cron, { currentDate: new Date() }).next().toDate();
    this.waitUntil(next);
  }

  // setTimeout overflows past ~24.8 days (and then fires at once), so far-off runs wait in steps.
  private waitUntil(next: Date): void {
    const delay = Math.max(0, next.getTime() - Date.now());
    if (delay > MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.waitUntil(next), MAX_TIMER_MS);
      this.timer.unref();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.sweepOnce()
        .catch((e) => this.log.error({ err: (e as Error).message }, 'auto-archive sweep failed'))
        .finally(() => {
          this.running = null;
          this.scheduleNext(); // never two sweeps at once: the next run is planned after this one
        });
    }, delay);
    this.timer.unref();
  }

  /** One sweep of the owned partitions: at most two statements and one transaction, whatever the data. */
  async sweepOnce(now: Date = new Date()): Promise<ArchivedRow[]> {
    const partitions = this.ownedPartitions();
    if (partitions.length === 0) return [];
    const cutoff = new Date(now.getTime() - this.opts.afterSecs * 1000);
    const knex = this.orm.em.getKnex();
    const archived = await knex.transaction(async (trx) => {
      const { rows: dialogs } = (await trx.raw(CANDIDATES_SQL, [partitions, cutoff, this.opts.batchSize])) as { rows: { id: string }[] };
      if (dialogs.length === 0) return [];
      const { rows } = (await trx.raw(ARCHIVE_SQL, [dialogs.map((d) => d.id), cutoff])) as { rows: ArchivedRow[] };
      return rows;
    });
    if (archived.length > 0) {
      // Only the users whose state changed are told.
      const events: DomainEvent[] = archived.map((r) => ({
        dialogId: r.dialog_id, toParticipants: false, toUsers: [r.user_id], event: { type: 'dialog.archived', dialog_id: r.dialog_id },
      }));
      this.publisher.publish(events);
      this.log.info({ dialogs: new Set(archived.map((r) => r.dialog_id)).size, participants: archived.length }, 'auto-archived inactive dialogs');
    }
    return archived;
  }
}
