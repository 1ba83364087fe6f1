// Partition leases in NATS KV. A lease is the key `p<partition>` holding the owner's worker id;
// the bucket's max age (ttl) is the lease length, so a dead owner's keys vanish by themselves.
//
// Takeover bound: a worker that dies renewed its leases at most `tickMs` before dying; the keys
// expire `leaseTtlMs` after that renewal, and a survivor's next tick (at most `tickMs` later)
// creates them. So a dead worker's partitions are owned again within ≈ leaseTtlMs + tickMs
// (7.5 s with the defaults), plus the server's expiry sweep lag (well under a second).
// The registry heartbeat is written before the renewals of the same tick, so a dead worker drops
// out of the count no later than its leases expire and the survivors' fair share already covers them.
import { Kvm, type KV } from '@nats-io/kv';
import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { PARTITION_COUNT } from '../domain/partition.js';
import type { Subjects } from '../bus/subjects.js';
import type { Metrics } from '../observability/metrics.js';

export interface LeaseOptions {
  leaseTtlMs?: number;
  tickMs?: number;
  workerId?: string;
  /** The process's metrics; none are recorded without it. */
  metrics?: Metrics | null;
}

export interface LeaseHooks {
  /** The partition is ours: start serving it. */
  acquired(p: number): void;
  /** Stop serving the partition; resolves once its in-flight work is done (then the key is deleted, or it already expired). */
  relinquish(p: number, reason: 'lost' | 'released'): Promise<void>;
}

interface Lease {
  revision: number;
  renewedAt: number;
  releasing: boolean;
  /** Drained and about to be deleted: renewing it now would race the delete's revision check. */
  drained?: boolean;
}

const enc = new TextEncoder();
const key = (p: number) => `p${p}`;
const isWrongRevision = (e: unknown) =>
  e instanceof JetStreamApiError &&
  (e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

export class PartitionLeases {
  readonly workerId: string;
  readonly leaseTtlMs: number;
  readonly tickMs: number;
  private leases?: KV;
  private workers?: KV;
  private readonly owned = new Map<number, Lease>();
  private timer?: NodeJS.Timeout;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly releasing = new Set<Promise<boolean>>();
  private lastTickOk = 0;
  /** Where this worker starts looking for free partitions, so workers mostly try different keys. */
  private readonly offset: number;
  private readonly metrics: Metrics | null;
  /** Partitions another worker held at the last tick: acquiring one of them is a takeover. */
  private heldByOthers = new Set<number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly hooks: LeaseHooks,
    private readonly log: Logger,
    opts: LeaseOptions = {},
  ) {
    this.leaseTtlMs = opts.leaseTtlMs ?? 6000;
    this.tickMs = opts.tickMs ?? 1500;
    this.workerId = opts.workerId ?? `w-${randomBytes(6).toString('hex')}`;
    this.offset = randomBytes(2).readUInt16BE() % PARTITION_COUNT;
    this.metrics = opts.metrics ?? null;
  }

  ownedPartitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /** True while the last successful tick is recent enough for our leases to be valid. */
  healthy(): boolean {
    return !this.stopped && Date.now() - this.lastTickOk < this.leaseTtlMs;
  }

  async start(): Promise<void> {
    const kvm = new Kvm(this.nc);
    const opts = { ttl: this.leaseTtlMs, history: 1, storage: StorageType.File };
    this.leases = await kvm.create(this.subjects.leaseBucket, opts);
    this.workers = await kvm.create(this.subjects.workerBucket, opts);
    await this.runTick();
  }

  /** Stops ticking, lets every partition finish its work, then deletes the keys so others take over at once. */
  async stop(): Promise<void> {
    this.halt();
    await this.ticking;
    const results = await Promise.all([...this.ownedPartitions().map((p) => this.release(p)), ...this.releasing]);
    const failed = results.filter((ok) => ok === false).length;
    if (failed > 0) this.log.warn({ workerId: this.workerId, failed }, 'some leases could not be deleted; they will expire');
    await this.workers?.delete(this.workerId).catch(() => undefined);
  }

  /** Stops ticking without touching NATS. */
  halt(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Halts and forgets every lease without releasing it: what a crash looks like to the others (fault tests). */
  abandon(): void {
    this.halt();
    this.owned.clear();
    this.metrics?.partitionsOwned.set(0);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runTick(), this.tickMs);
  }

  private runTick(): Promise<void> {
    this.ticking = this.tick()
      .then(() => {
        this.lastTickOk = Date.now();
      })
      .catch((err) => this.log.warn({ err: (err as Error).message, workerId: this.workerId }, 'lease tick failed'))
      .finally(() => this.schedule());
    return this.ticking;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    await this.workers!.put(this.workerId, enc.encode(String(Date.now())));
    await this.renewAll();
    if (this.stopped) return;
    const live = await this.countWorkers();
    const taken = new Set<string>();
    for await (const k of await this.leases!.keys()) taken.add(k);
    const heldBefore = this.heldByOthers;
    this.heldByOthers = new Set([...taken].map((k) => Number(k.slice(1))).filter((p) => !this.owned.has(p)));
    const share = Math.ceil(PARTITION_COUNT / Math.max(1, live));
    const serving = [...this.owned].filter(([, l]) => !l.releasing).map(([p]) => p);
    let acquired = 0;
    if (serving.length > share) {
      // A worker joined: hand back the surplus so it can take its share.
      for (const p of serving.slice(share)) {
        const r = this.release(p).finally(() => this.releasing.delete(r));
        this.releasing.add(r);
      }
    } else if (serving.length < share) {
      acquired = await this.acquire(share - serving.length, taken, heldBefore);
    }
    this.metrics?.partitionsOwned.set(this.owned.size);
    this.metrics?.partitionsUnowned.set(Math.max(0, PARTITION_COUNT - taken.size - acquired));
  }

  private async renewAll(): Promise<void> {
    const now = Date.now();
    const lost: number[] = [];
    let lastErr = '';
    await Promise.all(
      [...this.owned].filter(([, l]) => !l.drained).map(async ([p, lease]) => {
        try {
          lease.revision = await this.leases!.update(key(p), enc.encode(this.workerId), lease.revision);
          lease.renewedAt = Date.now();
        } catch (err) {
          // Someone else holds the key now (we paused past the ttl), or we could not renew for so long
          // that another worker may take it any moment: stop serving before that can happen.
          if (isWrongRevision(err) || now - lease.renewedAt > Math.max(this.tickMs, this.leaseTtlMs - 2 * this.tickMs)) {
            lastErr = (err as Error).message;
            lost.push(p);
            this.owned.delete(p);
            void this.hooks.relinquish(p, 'lost').catch(() => undefined);
          }
        }
      }),
    );
    // One line per tick: during an outage every partition is lost at once.
    if (lost.length > 0) this.log.warn({ partitions: lost, workerId: this.workerId, err: lastErr }, 'partition leases lost');
  }

  private async countWorkers(): Promise<number> {
    let n = 0;
    for await (const _ of await this.workers!.keys()) n++;
    return n;
  }

  /** Takes up to `wanted` partitions whose keys were not `taken`; returns how many it got. */
  private async acquire(wanted: number, taken: Set<string>, heldBefore: Set<number>): Promise<number> {
    let got = 0;
    const free: number[] = [];
    for (let i = 0; i < PARTITION_COUNT && free.length < wanted; i++) {
      const p = (this.offset + i) % PARTITION_COUNT;
      if (!taken.has(key(p)) && !this.owned.has(p)) free.push(p);
    }
    await Promise.all(
      free.map(async (p) => {
        try {
          const revision = await this.leases!.create(key(p), enc.encode(this.workerId));
          try {
            if (this.stopped) throw new Error('stopping');
            this.hooks.acquired(p);
          } catch (err) {
            // Never hold a lease we do not serve: commands would time out until it expired.
            await this.leases!.delete(key(p), { previousSeq: revision }).catch(() => undefined);
            throw err;
          }
          this.owned.set(p, { revision, renewedAt: Date.now(), releasing: false });
          got++;
          if (heldBefore.has(p)) this.metrics?.leaseTakeovers.inc();
        } catch (err) {
          if (!isWrongRevision(err) && !this.stopped) this.log.warn({ partition: p, err: (err as Error).message }, 'lease acquisition failed');
        }
      }),
    );
    return got;
  }

  /**
   * Keeps renewing while the partition drains, then deletes the key with its revision (never someone
   * else's). Resolves false when the key could not be deleted (it then expires with the ttl).
   */
  private async release(p: number): Promise<boolean> {
    const lease = this.owned.get(p);
    if (!lease || lease.releasing) return true;
    lease.releasing = true;
    await this.hooks.relinquish(p, 'released').catch(() => undefined);
    if (this.owned.get(p) !== lease) return true; // lost while draining
    lease.drained = true;
    await this.ticking; // a renewal in flight would change the revision under the delete
    this.owned.delete(p);
    this.metrics?.partitionsOwned.set(this.owned.size);
    try {
      await this.leases!.delete(key(p), { previousSeq: lease.revision });
      return true;
    } catch (err) {
      if (!this.stopped) this.log.warn({ partition: p, err: (err as Error).message }, 'lease release failed; it will expire');
      return false;
    }
  }
}
