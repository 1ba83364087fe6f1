// Every metric this service exports, in one registry, one prefix, no per-user or per-dialog labels.
// Names are fixed in helm/mtchat/metric-names.json so the dashboard and alerts stay in step.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mtchat_' });
  const r = { registers: [registry] };
  return {
    registry,
    httpRequests: new Counter({ name: 'mtchat_http_requests_total', help: 'HTTP requests by route template and status', labelNames: ['method', 'route', 'status'] as const, ...r }),
    httpDuration: new Histogram({ name: 'mtchat_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'] as const, buckets: LATENCY_BUCKETS, ...r }),
    wsConnections: new Gauge({ name: 'mtchat_ws_connections', help: 'Open WebSocket connections by wire format', labelNames: ['format'] as const, ...r }),
    wsFrames: new Counter({ name: 'mtchat_ws_frames_total', help: 'WebSocket frames', labelNames: ['direction', 'format'] as const, ...r }),
    wsBytes: new Counter({ name: 'mtchat_ws_bytes_total', help: 'WebSocket payload bytes', labelNames: ['direction', 'format'] as const, ...r }),
    sendLatency: new Histogram({ name: 'mtchat_send_latency_seconds', help: 'Edge receipt of a send to its committed ack', buckets: LATENCY_BUCKETS, ...r }),
    deliveryLatency: new Histogram({ name: 'mtchat_delivery_latency_seconds', help: 'Commit to edge publish of an event', buckets: LATENCY_BUCKETS, ...r }),
    mailboxDepth: new Gauge({ name: 'mtchat_actor_mailbox_depth', help: 'Commands waiting in dialog mailboxes of this worker', ...r }),
    batchSize: new Histogram({ name: 'mtchat_actor_batch_size', help: 'Commands per unit of work', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], ...r }),
    commitDuration: new Histogram({ name: 'mtchat_actor_commit_duration_seconds', help: 'Duration of one batched unit of work', buckets: LATENCY_BUCKETS, ...r }),
    partitionsOwned: new Gauge({ name: 'mtchat_partitions_owned', help: 'Partitions this worker owns', ...r }),
    partitionsUnowned: new Gauge({ name: 'mtchat_partitions_unowned', help: 'Partitions without a live lease, as seen by this worker', ...r }),
    leaseTakeovers: new Counter({ name: 'mtchat_lease_takeovers_total', help: 'Partitions acquired after another owner', ...r }),
    natsRequestDuration: new Histogram({ name: 'mtchat_nats_request_duration_seconds', help: 'Command request/reply round trips', buckets: LATENCY_BUCKETS, ...r }),
    natsRequestTimeouts: new Counter({ name: 'mtchat_nats_request_timeouts_total', help: 'Command requests that timed out or found no owner', ...r }),
    outboxBacklog: new Gauge({ name: 'mtchat_outbox_backlog', help: 'Outbox rows not yet relayed', ...r }),
    outboxRelayLag: new Gauge({ name: 'mtchat_outbox_relay_lag_seconds', help: 'Age of the oldest outbox row', ...r }),
    webhookDeliveries: new Counter({ name: 'mtchat_webhook_deliveries_total', help: 'Webhook delivery outcomes', labelNames: ['outcome'] as const, ...r }),
    webhookAttempts: new Counter({ name: 'mtchat_webhook_attempts_total', help: 'Webhook HTTP attempts', ...r }),
    webhookDeadLetters: new Counter({ name: 'mtchat_webhook_dead_letters_total', help: 'Webhooks moved to dead letters', ...r }),
    notifications: new Counter({ name: 'mtchat_notifications_total', help: 'Smart notification checks by outcome', labelNames: ['outcome'] as const, ...r }),
    slowConsumerDisconnects: new Counter({ name: 'mtchat_ws_slow_consumer_disconnects_total', help: 'Sockets closed for exceeding the buffer limit', ...r }),
    rateLimitRejections: new Counter({ name: 'mtchat_rate_limit_rejections_total', help: 'Requests or frames refused by a rate limit', labelNames: ['transport'] as const, ...r }),
    resumeRequests: new Counter({ name: 'mtchat_resume_requests_total', help: 'WebSocket resume requests', ...r }),
    resyncRequired: new Counter({ name: 'mtchat_resync_required_total', help: 'Dialogs whose gap was beyond retention on resume', ...r }),
    overloadRejections: new Counter({ name: 'mtchat_overload_rejections_total', help: 'Commands refused because a mailbox was full', ...r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
