// Keeps the event log and the processed-command log bounded. Each worker prunes the dialogs of
// the partitions it owns, so the work is split and never repeated; the command log is global and
// pruned in batches by whoever gets there (SKIP LOCKED: workers take disjoint rows). A sweep runs
// passes until the logs are below their cutoff or its time budget is spent, so it keeps up with
// thousands of sends per second.
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { json, query } from '../db/queries/sql.js';

/** Longer than any edge retries a command (MTCHAT_COMMAND_DEADLINE_MS), with a wide margin. */
const COMMAND_LOG_RETENTION_SECS = 24 * 3600;
const BATCH = 5000;
/** One sweep stops after this long even if more is old (the next sweep goes on). */
const SWEEP_BUDGET_MS = 20_000;

export interface RetentionOptions {
  eventRetentionSecs: number;
  intervalMs?: number;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly orm: Orm, private readonly ownedPartitions: () => number[], private readonly opts: RetentionOptions, private readonly log: Logger) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.sweep().then(
        () => undefined,
        (e) => this.log.warn({ err: (e as Error).message }, 'retention sweep failed'),
      ).finally(() => {
        this.running = null;
      });
    }, this.opts.intervalMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Passes until neither log has a full batch of old rows left, or the budget is spent. */
  async sweep(): Promise<void> {
    const until = Date.now() + SWEEP_BUDGET_MS;
    for (;;) {
      const n = await this.pruneOnce();
      if ((n.events < BATCH && n.commands < BATCH) || Date.now() > until) return;
    }
  }

  /** One bounded pass: at most BATCH rows of each log; returns how many rows went. */
  async pruneOnce(now = new Date()): Promise<{ events: number; commands: number }> {
    const em = this.orm.em.fork();
    const partitions = this.ownedPartitions();
    const eventsCutoff = new Date(now.getTime() - this.opts.eventRetentionSecs * 1000);
    const events = partitions.length === 0 ? [] : await query(em, `
      DELETE FROM dialog_events e USING (
        SELECT ev.dialog_id, ev.seq FROM dialog_events ev JOIN dialogs d ON d.id = ev.dialog_id
        WHERE d.partition IN (SELECT (jsonb_array_elements_text(?::jsonb))::int) AND ev.created_at < ?
        LIMIT ${BATCH}) old
      WHERE e.dialog_id = old.dialog_id AND e.seq = old.seq RETURNING 1`, [json(partitions), eventsCutoff]);
    const commandsCutoff = new Date(now.getTime() - COMMAND_LOG_RETENTION_SECS * 1000);
    const commands = await query(em, `
      DELETE FROM command_log WHERE request_id IN (
        SELECT request_id FROM command_log WHERE created_at < ? LIMIT ${BATCH} FOR UPDATE SKIP LOCKED) RETURNING 1`, [commandsCutoff]);
    return { events: events.length, commands: commands.length };
  }
}
