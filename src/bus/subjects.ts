// Every NATS name this service creates, derived from the deployment's namespace, so that two
// deployments (or two test runs) sharing one NATS server never see each other's traffic.

import { userShardOf } from '../domain/partition.js';

/** User ids are arbitrary strings; subject tokens may not hold '.', '*', '>' or whitespace. */
export const userToken = (userId: string): string => Buffer.from(userId, 'utf8').toString('base64url') || '_';

export class Subjects {
  constructor(readonly ns: string) {}
  /** Events every participant of the dialog receives, carrying the dialog's sequence number. */
  dialog(dialogId: string): string {
    return `${this.ns}.d.${dialogId}`;
  }
  /** Per-user events and membership changes; the shard token lets an edge take a whole shard with one subscription. */
  user(userId: string): string {
    return `${this.ns}.u.${userShardOf(userId)}.${userToken(userId)}`;
  }
  /** Every user subject of one shard. */
  userShard(shard: number): string {
    return `${this.ns}.u.${shard}.*`;
  }
  /** Commands for a partition's owner (request/reply). */
  command(partition: number): string {
    return `${this.ns}.cmd.${partition}`;
  }
  /** KV bucket holding partition leases (bucket names allow only [A-Za-z0-9_-]). */
  get leaseBucket(): string {
    return `${this.ns}_leases`;
  }
  /** KV bucket where live workers announce themselves, for an even spread of partitions. */
  get workerBucket(): string {
    return `${this.ns}_workers`;
  }
}
