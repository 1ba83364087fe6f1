// presence.update reaches the users who share a dialog with the subject: one message per dialog
// of the subject on the dialog's subject, which every edge fans out with a uWS topic publish.
// Per co-participant messages cost a write per socket (a connect storm into dialogs of 200 is
// millions of them); per dialog, a user who shares several dialogs with the subject gets the
// (idempotent) update once per shared dialog.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { encodeJson } from './nats.js';
import type { Subjects } from './subjects.js';

export class PresencePublisher {
  constructor(private readonly nc: NatsConnection, private readonly subjects: Subjects, private readonly log: Logger) {}

  /** Announces a transition in the user's dialogs (those its socket was attached to: no query needed). */
  publish(userId: string, isOnline: boolean, dialogIds: Iterable<string>): void {
    // Nothing can be published on a closing connection (a closing edge announces nothing anyway).
    if (this.nc.isDraining() || this.nc.isClosed()) return;
    try {
      const body = encodeJson({ seq: null, event: { type: 'presence.update', user_id: userId, is_online: isOnline } });
      for (const id of dialogIds) this.nc.publish(this.subjects.dialog(id), body);
    } catch (e) {
      this.log.warn({ err: e }, 'presence fan-out failed');
    }
  }
}
