import type { DomainEvent } from '../domain/events.js';

export interface EventPublisher {
  /** Called after commit, in commit order. Must not throw: delivery is best effort, clients resume by seq. */
  publish(events: DomainEvent[]): void;
}

export type EventListener = (e: DomainEvent) => void;

/** In-process publisher: the single-process delivery path, and what tests observe. */
export class LocalEventBus implements EventPublisher {
  private readonly listeners = new Set<EventListener>();
  subscribe(l: EventListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  publish(events: DomainEvent[]): void {
    for (const e of events) for (const l of this.listeners) l(e);
  }
}
