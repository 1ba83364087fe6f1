// Reads the edge needs for delivery: a user's dialogs, join points, and the per-dialog event log
// (dialog_events) for backfill and resume. Every method is one statement (two for `range`).
import type { Orm } from '../../db/orm.js';
import { rawQuery } from '../../db/raw.js';

// Plain pg (no EntityManager per read): these run for every socket that connects.
const uuidIn = (p: string) => `= ANY(ARRAY(SELECT (jsonb_array_elements_text(${p}::jsonb))::uuid))`;
const json = (v: unknown): string => JSON.stringify(v);

/** A logged event as it goes on the wire: the flat WireEvent plus its `seq`. */
export type LoggedEvent = Record<string, unknown> & { type: string; seq: number };

export interface RangeOptions {
  limit: number;
  /** Only rows younger than this many seconds (resume honours the configured retention). */
  retentionSecs?: number;
}

export class EventLog {
  constructor(private readonly orm: Orm) {}

  private run(sql: string, params: unknown[]) {
    return rawQuery(this.orm, sql, params);
  }

  /** The user's dialogs with each dialog's last sequence number, read in one snapshot. */
  async userDialogs(userId: string): Promise<{ dialogId: string; lastSeq: number }[]> {
    const rows = await this.run(
      `SELECT p.dialog_id, d.last_seq FROM dialog_participants p JOIN dialogs d ON d.id = p.dialog_id WHERE p.user_id = $1`,
      [userId],
    );
    return rows.map((r) => ({ dialogId: r.dialog_id as string, lastSeq: Number(r.last_seq) }));
  }

  /** Last sequence number per existing dialog. */
  async lastSeqs(dialogIds: string[]): Promise<Map<string, number>> {
    const rows = await this.run(`SELECT id, last_seq FROM dialogs WHERE id ${uuidIn('$1')}`, [json(dialogIds)]);
    return new Map(rows.map((r) => [r.id as string, Number(r.last_seq)]));
  }

  /** Per dialog the user is a participant of: the first seq it may see and the dialog's last seq. */
  async joinedSeqs(userId: string, dialogIds: string[]): Promise<Map<string, { joinedSeq: number; lastSeq: number }>> {
    const rows = await this.run(
      `SELECT p.dialog_id, p.joined_seq, d.last_seq FROM dialog_participants p JOIN dialogs d ON d.id = p.dialog_id
        WHERE p.user_id = $1 AND p.dialog_id ${uuidIn('$2')}`,
      [userId, json(dialogIds)],
    );
    return new Map(rows.map((r) => [r.dialog_id as string, { joinedSeq: Number(r.joined_seq), lastSeq: Number(r.last_seq) }]));
  }

  /**
   * Events with from <= seq <= to, in order. A message.new / message.edited whose message has been
   * deleted since comes without its content (and attachments): only the later message.deleted
   * tells the rest.
   */
  async range(dialogId: string, from: number, to: number, o: RangeOptions): Promise<LoggedEvent[]> {
    const retained = o.retentionSecs !== undefined ? ` AND created_at >= now() - make_interval(secs => $5)` : '';
    const params: unknown[] = [dialogId, from, to, o.limit];
    if (o.retentionSecs !== undefined) params.push(o.retentionSecs);
    const rows = await this.run(
      `SELECT seq, payload FROM dialog_events WHERE dialog_id = $1 AND seq >= $2 AND seq <= $3${retained} ORDER BY seq LIMIT $4`,
      params,
    );
    const events = rows.map((r) => {
      const payload = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>;
      return { ...payload, seq: Number(r.seq) } as LoggedEvent;
    });
    const messageIds = [...new Set(events.filter(isMessageContent).map((e) => e.id as string))];
    if (messageIds.length > 0) {
      const alive = new Set((await this.run(`SELECT id FROM messages WHERE id ${uuidIn('$1')}`, [json(messageIds)])).map((r) => r.id as string));
      for (const e of events) {
        if (isMessageContent(e) && !alive.has(e.id as string)) {
          delete e.content;
          delete e.attachments;
        }
      }
    }
    return events;
  }
}

const isMessageContent = (e: LoggedEvent): boolean => (e.type === 'message.new' || e.type === 'message.edited') && typeof e.id === 'string';
