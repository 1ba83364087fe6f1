// Durable delivery on a worker: outbox relay, webhook sender, smart notifications (only when
// webhooks are configured) and the auto-archive sweeper (always).
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { EventPublisher } from '../bus/local-bus.js';
import type { Config } from '../config/env.js';
import type { Orm } from '../db/orm.js';
import type { Metrics } from '../observability/metrics.js';
import { ArchiveSweeper } from './archive-sweeper.js';
import { Notifier } from './notifications.js';
import { OutboxRelay } from './outbox-relay.js';
import { deliveryNames, ensureStreams, streamsPresent } from './streams.js';
import { WebhookSender } from './webhook-sender.js';

export { ArchiveSweeper } from './archive-sweeper.js';
export { Notifier } from './notifications.js';
export { OutboxRelay } from './outbox-relay.js';
export { WebhookSender } from './webhook-sender.js';
export { deleteStreams, deliveryNames, ensureStreams } from './streams.js';
export { listDeadLetters, replayDeadLetters } from './dlq.js';

export interface DeliveryDeps {
  cfg: Config;
  orm: Orm;
  nc: NatsConnection;
  log: Logger;
  /** Where dialog.archived events go (the process's event publisher). */
  publisher: EventPublisher;
  /** Partitions this worker owns right now; read at every sweep. */
  ownedPartitions: () => number[];
  /** Outbox poll interval (ms); a nudge relays at once. */
  outboxPollMs?: number;
  /** The process's metrics; none are recorded without it. */
  metrics?: Metrics | null;
}

export interface Delivery {
  /** Relays the outbox now; call after a commit that wrote outbox rows. */
  nudge(): void;
  /** True when the streams exist (or webhooks are off and none are needed). */
  ready(): Promise<boolean>;
  /** Stops consuming and relaying; call before closing the NATS connection and the ORM. */
  stop(): Promise<void>;
}

export async function startDelivery(deps: DeliveryDeps): Promise<Delivery> {
  const { cfg, orm, nc, publisher, ownedPartitions } = deps;
  const metrics = deps.metrics ?? null;
  const log = deps.log.child({ component: 'delivery' });
  const names = deliveryNames(cfg.namespace);
  const stops: (() => Promise<void>)[] = [];
  let relay: OutboxRelay | null = null;
  let jsm: JetStreamManager | null = null;

  if (cfg.webhook) {
    const timeoutMs = cfg.webhookTimeoutSecs * 1000;
    const ackWaitMs = Math.max(30_000, 2 * timeoutMs + 5_000);
    jsm = await ensureStreams(nc, cfg.namespace, { replicas: cfg.jetstreamReplicas, webhookAckWaitMs: ackWaitMs }, log);
    const js = jetstream(nc);

    const sender = new WebhookSender(js, names, {
      url: cfg.webhook.url, secret: cfg.webhook.secret, timeoutMs, maxRetries: cfg.webhookMaxRetries,
      retryBaseMs: cfg.webhookRetryBaseMs, maxRetryDelayMs: Math.max(cfg.webhookRetryBaseMs, 3_600_000), ackWaitMs, maxConcurrent: 64,
    }, log.child({ part: 'webhooks' }), metrics);
    await sender.start();
    stops.push(() => sender.stop());

    const notifier = new Notifier(orm, js, names, { delayMs: cfg.notificationDelayMs, maxAttempts: 10 }, log.child({ part: 'notifications' }), metrics);
    await notifier.start();
    stops.push(() => notifier.stop());

    relay = new OutboxRelay(orm, js, names, log.child({ part: 'outbox' }), { pollMs: deps.outboxPollMs ?? 200, batchSize: 256 }, metrics);
    relay.start();
    const r = relay;
    stops.push(() => r.stop());
  }

  const sweeper = new ArchiveSweeper(orm, publisher, ownedPartitions, {
    cron: cfg.archiveCron, afterSecs: cfg.archiveAfterSecs, batchSize: 10_000,
  }, log.child({ part: 'archive' }));
  sweeper.start();
  stops.push(() => sweeper.stop());

  log.info({ webhooks: cfg.webhook !== null, archiveCron: cfg.archiveCron }, 'delivery started');
  return {
    nudge: () => relay?.nudge(),
    ready: async () => (jsm ? streamsPresent(jsm, cfg.namespace) : true),
    async stop() {
      // In reverse start order: the sweeper, the relay (nothing new enters the streams), then the
      // consumers. A copy, so a second stop() runs in the same order.
      for (const s of [...stops].reverse()) await s();
    },
  };
}
