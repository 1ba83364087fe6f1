// Delivers committed events to the edges over NATS core (fast, best effort: a client that misses
// one closes the gap by seq from dialog_events). Formats are the cluster contract.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { DomainEvent } from '../domain/events.js';
import type { EventPublisher } from './local-bus.js';
import { encodeJson } from './nats.js';
import type { Subjects } from './subjects.js';

export class NatsEventPublisher implements EventPublisher {
  /** Publishes that threw (connection closed, subject too long…); exposed for metrics. */
  failures = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly log: Logger,
    /** In-process observers (tests, an edge in the same process) see the same events in the same order. */
    private readonly local?: EventPublisher,
  ) {}

  publish(events: DomainEvent[]): void {
    // Called right after the commit: edges measure delivery latency (commit → socket) from it.
    const t = Date.now();
    for (const e of events) {
      // The joiner's sockets must subscribe to the dialog before its events flow; NATS keeps the
      // order of one connection's publishes, so the signal goes first.
      if (e.event.type === 'participant.joined' && e.seq !== undefined) {
        this.send(this.subjects.user(e.event.user_id), { membership: 'joined', dialog_id: e.dialogId });
      }
      const body = { seq: e.seq ?? null, event: e.event, t };
      if (e.toParticipants) this.send(this.subjects.dialog(e.dialogId), body);
      for (const uid of e.toUsers ?? []) this.send(this.subjects.user(uid), body);
    }
    if (this.local) {
      try {
        this.local.publish(events);
      } catch (err) {
        this.failures++;
        this.log.warn({ err }, 'local event observer failed');
      }
    }
  }

  private send(subject: string, body: unknown): void {
    try {
      this.nc.publish(subject, encodeJson(body));
    } catch (err) {
      this.failures++;
      this.log.warn({ err: (err as Error).message, subject }, 'event publish failed');
    }
  }
}
