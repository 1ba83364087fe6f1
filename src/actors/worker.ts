// The worker role: holds partition leases and serves the commands of the partitions it holds.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Orm } from '../db/orm.js';
import type { EventPublisher } from '../bus/local-bus.js';
import type { Subjects } from '../bus/subjects.js';
import { PartitionLeases, type LeaseOptions } from './leases.js';
import { PartitionOwner, type PartitionOwnerOptions } from './partition-owner.js';

export interface WorkerOptions extends LeaseOptions, PartitionOwnerOptions {}

export class Worker {
  readonly owner: PartitionOwner;
  readonly leases: PartitionLeases;
  private started = false;

  constructor(nc: NatsConnection, subjects: Subjects, orm: Orm, publisher: EventPublisher, log: Logger, opts: WorkerOptions) {
    this.owner = new PartitionOwner(nc, subjects, orm, publisher, log, opts);
    this.leases = new PartitionLeases(
      nc,
      subjects,
      { acquired: (p) => this.owner.serve(p), relinquish: (p) => this.owner.release(p) },
      log,
      opts,
    );
  }

  get id(): string {
    return this.leases.workerId;
  }

  /** Creates the KV buckets if needed, registers this worker and takes a first share of partitions. */
  async start(): Promise<void> {
    await this.leases.start();
    this.started = true;
  }

  /** Graceful: stops taking commands, answers every accepted one, then deletes its leases so others take over at once. */
  async stop(): Promise<void> {
    this.started = false;
    await this.leases.stop();
    await this.owner.stop();
  }

  /** Stops the lease timers without releasing anything (what a crash looks like to the others). For fault tests. */
  abandon(): void {
    this.started = false;
    this.leases.abandon();
  }

  ownedPartitions(): number[] {
    return this.leases.ownedPartitions();
  }

  /** Ready while it keeps its lease bookkeeping alive (a worker may rightly own no partition when there are many). */
  isReady(): boolean {
    return this.started && this.leases.healthy();
  }
}
