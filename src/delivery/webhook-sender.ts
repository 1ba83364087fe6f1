// Delivers webhook envelopes from the WEBHOOKS stream to the host platform.
//
// - One durable pull consumer shared by every worker: messages are spread across them.
// - Parallel across dialogs, in stream order within a dialog (one promise chain per subject). A
//   retried message is redelivered later and may then overtake newer ones of its dialog; receivers
//   order by the envelope timestamp and de-duplicate on `id`.
// - A failed attempt is retried by delayed redelivery (nak with the delay), never by sleeping: the
//   message leaves this process until it is due again.
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import { dottedEvent, signature } from './envelope.js';
import type { DeliveryNames } from './streams.js';

export interface WebhookSenderOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  /** Retries after the first attempt; then the event goes to the dead-letter subject. */
  maxRetries: number;
  /** Delay before the first retry; doubled for each further one (1 s, 2 s, 4 s … by default). */
  retryBaseMs: number;
  /** Ceiling of the doubling (ms). */
  maxRetryDelayMs: number;
  /** The consumer's ack_wait: waiting and in-flight messages are extended before it runs out. */
  ackWaitMs: number;
  /** Requests in flight at once from this worker (across dialogs). */
  maxConcurrent: number;
}

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; error: string }
  | { kind: 'permanent'; error: string };

/** 2xx delivered; 4xx other than 408/429 permanent; every other status (and network errors) retried. */
export function classifyStatus(status: number): AttemptOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { kind: 'permanent', error: `HTTP ${status}` };
  return { kind: 'retry', error: `HTTP ${status}` };
}

/** Delay before retry number `retry` (1-based): base · 2^(retry−1), capped. */
export const retryDelay = (retry: number, baseMs: number, capMs: number): number =>
  Math.min(capMs, baseMs * 2 ** Math.min(retry - 1, 40));

// Header values must stay on one line.
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').slice(0, 1000);

export class WebhookSender {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  /** Per-dialog tail of the delivery chain. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Messages this process holds (waiting in a chain or in flight), by stream sequence. */
  private readonly held = new Map<number, JsMsg>();
  private readonly inflight = new Set<AbortController>();
  private keepAlive: NodeJS.Timeout | null = null;
  private stopping = false;
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];

  constructor(
    private readonly js: JetStreamClient,
    private readonly names: DeliveryNames,
    private readonly opts: WebhookSenderOptions,
    private readonly log: Logger,
    /**
     * mtchat_webhook_deliveries_total{outcome}: each handling of an event ends as `delivered` (2xx),
     * `retried` (failed, redelivery scheduled), `dead_lettered` (moved to the DLQ) or `failed` (not
     * concluded: the dead-letter publish or the handling itself failed; it is tried again).
     */
    private readonly metrics: Metrics | null = null,
  ) {}

  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.names.webhooksStream, this.names.webhookConsumer);
    this.messages = await consumer.consume({ max_messages: 256 });
    // Messages queued behind a slow request of their dialog must not be redelivered meanwhile.
    this.keepAlive = setInterval(() => {
      for (const m of this.held.values()) m.working();
    }, Math.max(1000, Math.floor(this.opts.ackWaitMs / 3)));
    this.keepAlive.unref();
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) this.enqueue(m);
    })().catch((e) => this.log.error({ err: (e as Error).message }, 'webhook consumer stopped'));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close();
    for (const c of this.inflight) c.abort();
    await this.loop;
    await Promise.allSettled([...this.chains.values()]);
    if (this.keepAlive) clearInterval(this.keepAlive);
  }

  private enqueue(m: JsMsg): void {
    // An ack_wait redelivery of a message we still hold: the copy we hold settles it.
    if (this.held.has(m.seq)) return;
    this.held.set(m.seq, m);
    const key = m.subject;
    const tail = this.chains.get(key) ?? Promise.resolve();
    const next = tail.then(() => this.handle(m)).catch((e) => {
      this.metrics?.webhookDeliveries.inc({ outcome: 'failed' });
      this.log.error({ err: (e as Error).message, seq: m.seq }, 'webhook handling failed');
      m.nak(this.opts.retryBaseMs);
    }).finally(() => {
      this.held.delete(m.seq);
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    this.chains.set(key, next);
  }

  private async handle(m: JsMsg): Promise<void> {
    if (this.stopping) {
      m.nak(); // another worker (or our successor) takes it at once
      return;
    }
    const attempt = m.info.deliveryCount;
    let env: { id: string; type: string };
    try {
      env = JSON.parse(Buffer.from(m.data).toString('utf8')) as { id: string; type: string };
    } catch {
      await this.deadLetter(m, 'body is not a JSON envelope', attempt);
      return;
    }
    await this.acquireSlot();
    let outcome: AttemptOutcome | null;
    try {
      outcome = this.stopping ? null : await this.attempt(m.data, env);
    } finally {
      this.releaseSlot();
    }
    if (outcome === null) {
      m.nak(); // interrupted by stop(): not the receiver's fault
      return;
    }
    if (outcome.kind === 'delivered') {
      m.ack();
      this.metrics?.webhookDeliveries.inc({ outcome: 'delivered' });
      return;
    }
    const retriesDone = attempt - 1;
    if (outcome.kind === 'retry' && retriesDone < this.opts.maxRetries) {
      const delay = retryDelay(retriesDone + 1, this.opts.retryBaseMs, this.opts.maxRetryDelayMs);
      this.log.info({ id: env.id, attempt, delay, err: outcome.error }, 'webhook attempt failed; retrying');
      m.nak(delay);
      this.metrics?.webhookDeliveries.inc({ outcome: 'retried' });
      return;
    }
    this.log.warn({ id: env.id, attempt, err: outcome.error }, 'webhook dead-lettered');
    await this.deadLetter(m, outcome.error, attempt, env);
  }

  private async acquireSlot(): Promise<void> {
    if (this.active < this.opts.maxConcurrent) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next(); // the slot passes on directly
    else this.active--;
  }

  /** One POST. Null when aborted by stop(). */
  private async attempt(body: Uint8Array, env: { id: string; type: string }): Promise<AttemptOutcome | null> {
    const ctrl = new AbortController();
    this.inflight.add(ctrl);
    this.metrics?.webhookAttempts.inc();
    // The timeout is a plain timer on a controller we hold, not AbortSignal.any([…,
    // AbortSignal.timeout()]): on Node 20 that combination keeps the timeout signal only weakly,
    // and a garbage collection during the request cancels its timer. The request then never ends,
    // and neither does its dialog's chain, whose messages keepAlive extends for ever.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort();
    }, this.opts.timeoutMs);
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: this.requestHeaders(body, env),
        body: new Uint8Array(body) as Uint8Array<ArrayBuffer>,
        redirect: 'follow',
        signal: ctrl.signal,
      });
      await res.arrayBuffer().catch(() => undefined); // frees the connection for reuse
      return classifyStatus(res.status);
    } catch (e) {
      if (timedOut) return { kind: 'retry', error: `timeout after ${this.opts.timeoutMs} ms` };
      if (ctrl.signal.aborted) return null;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      return { kind: 'retry', error: err.cause?.code ?? err.cause?.message ?? err.message };
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ctrl);
    }
  }

  private requestHeaders(body: Uint8Array, env: { id: string; type: string }): Record<string, string> {
    return {
      'Content-Type': 'application/json',
      'X-Webhook-Signature': signature(this.opts.secret, body),
      'X-Webhook-Event': dottedEvent(env.type),
      'X-Webhook-Id': env.id,
    };
  }

  /** Keeps the exact body, the request headers and the last error; then the stream forgets the event. */
  private async deadLetter(m: JsMsg, error: string, attempts: number, env?: { id: string; type: string }): Promise<void> {
    const h = natsHeaders();
    h.set('Mtchat-Subject', m.subject);
    if (env) for (const [k, v] of Object.entries(this.requestHeaders(m.data, env))) h.set(k, v);
    h.set('Mtchat-Last-Error', oneLine(error));
    h.set('Mtchat-Attempts', String(attempts));
    h.set('Mtchat-Failed-At', new Date().toISOString());
    try {
      // Keyed by the stream sequence: a crash between this publish and term() does not double it.
      await this.js.publish(this.names.dlqWebhooks, m.data, { headers: h, msgID: `${this.names.webhooksStream}:${m.seq}` });
      // No reason argument: NATS 2.9 does not parse "+TERM <reason>" and would keep the message pending.
      m.term();
      this.metrics?.webhookDeliveries.inc({ outcome: 'dead_lettered' });
      this.metrics?.webhookDeadLetters.inc();
    } catch (e) {
      this.metrics?.webhookDeliveries.inc({ outcome: 'failed' });
      this.log.error({ err: (e as Error).message }, 'could not dead-letter a webhook; will retry');
      m.nak(this.opts.retryBaseMs);
    }
  }
}
