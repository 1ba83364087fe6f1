// presence.update reaches only users who share a dialog with the subject, once per change.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import { query } from '../db/queries/sql.js';
import type { Subjects } from './subjects.js';

const enc = new TextEncoder();

export class PresencePublisher {
  constructor(private readonly orm: Orm, private readonly nc: NatsConnection, private readonly subjects: Subjects, private readonly log: Logger) {}

  /** Tells every co-participant (each once, however many dialogs they share) about a transition. */
  async publish(userId: string, isOnline: boolean): Promise<void> {
    // While the process drains, its sockets close by the thousand; their users reconnect to other
    // edges, which announce them again. Nothing useful can be published any more.
    if (this.nc.isDraining() || this.nc.isClosed()) return;
    try {
      const rows = await query(this.orm.em.fork(), `SELECT DISTINCT p2.user_id FROM dialog_participants p1
        JOIN dialog_participants p2 ON p2.dialog_id = p1.dialog_id AND p2.user_id <> p1.user_id
        WHERE p1.user_id = ?`, [userId]);
      const body = enc.encode(JSON.stringify({ event: { type: 'presence.update', user_id: userId, is_online: isOnline } }));
      for (const r of rows) this.nc.publish(this.subjects.user(r.user_id as string), body);
    } catch (e) {
      this.log.warn({ err: e }, 'presence fan-out failed');
    }
  }
}
