// JetStream streams and durable consumers of the delivery pipeline, created idempotently at start.
//
// Durability: the streams use file storage and `JETSTREAM_REPLICAS` replicas. In production run a
// three-node JetStream cluster with JETSTREAM_REPLICAS=3: a publish is acknowledged only once a
// quorum has stored it, so losing one node loses nothing. NATS 2.9 fsyncs every two minutes by
// default (`sync_interval` in the server config, 2.10+: set `always` where replication alone is not
// trusted, e.g. a single-node deployment). docs/delivery.md has the full list.
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiCodes, JetStreamApiError, jetstreamManager, ReplayPolicy,
  RetentionPolicy, StorageType, type ConsumerConfig, type JetStreamManager, type StreamConfig,
} from '@nats-io/jetstream';
import type { Logger } from 'pino';

/** Long enough to catch every redelivery of a crashed relay or sender (the issue asks for ≥ 2 min). */
export const DUPLICATE_WINDOW_MS = 5 * 60_000;

export interface DeliveryNames {
  webhooksStream: string;
  notifyStream: string;
  dlqStream: string;
  webhookSubject(dialogId: string): string;
  notifySubject(dialogId: string): string;
  /** Where exhausted webhooks go (with the original body and headers). */
  dlqWebhooks: string;
  webhookConsumer: string;
  notifyConsumer: string;
}

export function deliveryNames(ns: string): DeliveryNames {
  return {
    webhooksStream: `${ns}_WEBHOOKS`,
    notifyStream: `${ns}_NOTIFY`,
    dlqStream: `${ns}_DLQ`,
    webhookSubject: (id) => `${ns}.wh.${id}`,
    notifySubject: (id) => `${ns}.nt.${id}`,
    dlqWebhooks: `${ns}.dlq.webhooks`,
    webhookConsumer: 'webhook-sender',
    notifyConsumer: 'notifier',
  };
}

export interface StreamOptions {
  replicas: number;
  /** Ack deadline of the webhook consumer: must exceed one request (the sender also extends it). */
  webhookAckWaitMs: number;
}

function streamConfigs(ns: string, o: StreamOptions): (Partial<StreamConfig> & { name: string })[] {
  const n = deliveryNames(ns);
  const common: Partial<StreamConfig> = {
    storage: StorageType.File,
    num_replicas: o.replicas,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    discard: DiscardPolicy.Old,
  };
  return [
    // Work queues: a message is gone once its consumer acknowledged (or terminated) it.
    { ...common, name: n.webhooksStream, subjects: [`${ns}.wh.>`], retention: RetentionPolicy.Workqueue },
    { ...common, name: n.notifyStream, subjects: [`${ns}.nt.>`], retention: RetentionPolicy.Workqueue },
    // Dead letters stay until an operator replays (or deletes) them.
    { ...common, name: n.dlqStream, subjects: [`${ns}.dlq.>`], retention: RetentionPolicy.Limits },
  ];
}

function consumerConfigs(ns: string, o: StreamOptions): [string, Partial<ConsumerConfig>][] {
  const n = deliveryNames(ns);
  const base: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    // Attempts are counted by the consumers themselves (dead letter after WEBHOOK_MAX_RETRIES):
    // a server-side limit would drop a message silently.
    max_deliver: -1,
  };
  return [
    // Messages waiting for a delayed retry count as pending: the cap is far above any normal backlog.
    [n.webhooksStream, { ...base, durable_name: n.webhookConsumer, ack_wait: nanos(o.webhookAckWaitMs), max_ack_pending: 20_000 }],
    // Every message spends NOTIFICATION_DELAY_MS pending: this cap, not a worker count, bounds throughput.
    [n.notifyStream, { ...base, durable_name: n.notifyConsumer, ack_wait: nanos(30_000), max_ack_pending: 100_000 }],
  ];
}

const isNotFound = (e: unknown, code: number): boolean => e instanceof JetStreamApiError && e.code === code;

/** Creates missing streams and consumers; updates the mutable settings of existing ones. Safe to run concurrently. */
export async function ensureStreams(nc: NatsConnection, ns: string, o: StreamOptions, log: Logger): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  for (const cfg of streamConfigs(ns, o)) {
    try {
      await jsm.streams.info(cfg.name);
      try {
        await jsm.streams.update(cfg.name, cfg);
      } catch (e) {
        // e.g. a replica count the cluster cannot satisfy: keep the stream as it is.
        log.warn({ err: (e as Error).message, stream: cfg.name }, 'could not update stream settings');
      }
    } catch (e) {
      if (!isNotFound(e, JetStreamApiCodes.StreamNotFound)) throw e;
      await addIgnoringRace(() => jsm.streams.add(cfg));
    }
  }
  for (const [stream, cfg] of consumerConfigs(ns, o)) {
    try {
      await jsm.consumers.info(stream, cfg.durable_name!);
      await jsm.consumers.update(stream, cfg.durable_name!, { ack_wait: cfg.ack_wait, max_ack_pending: cfg.max_ack_pending, max_deliver: cfg.max_deliver });
    } catch (e) {
      if (!isNotFound(e, JetStreamApiCodes.ConsumerNotFound)) throw e;
      await addIgnoringRace(() => jsm.consumers.add(stream, cfg));
    }
  }
  return jsm;
}

// Two workers starting together both see "not found"; the second add fails with "already in use"
// and the first one's object is what we wanted anyway.
async function addIgnoringRace(add: () => Promise<unknown>): Promise<void> {
  try {
    await add();
  } catch (e) {
    if (!/already in use|already exists/i.test((e as Error).message)) throw e;
  }
}

/** True when all three streams exist (readiness). */
export async function streamsPresent(jsm: JetStreamManager, ns: string): Promise<boolean> {
  const n = deliveryNames(ns);
  try {
    for (const s of [n.webhooksStream, n.notifyStream, n.dlqStream]) await jsm.streams.info(s);
    return true;
  } catch {
    return false;
  }
}

/** Removes the namespace's streams (tests, tear-down of a namespace). */
export async function deleteStreams(nc: NatsConnection, ns: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const n = deliveryNames(ns);
  for (const s of [n.webhooksStream, n.notifyStream, n.dlqStream]) {
    await jsm.streams.delete(s).catch(() => undefined);
  }
}
