// Dead letters of webhook delivery: listing and replay (used by scripts/dlq.ts and tests).
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { newId } from '../domain/ids.js';
import { deliveryNames } from './streams.js';

export interface DeadLetter {
  /** Sequence in the DLQ stream. */
  seq: number;
  /** The WEBHOOKS subject the event came from (its dialog). */
  subject: string;
  webhookId: string | null;
  event: string | null;
  lastError: string | null;
  attempts: number | null;
  failedAt: string | null;
  /** The exact envelope bytes, as they were sent. */
  body: string;
}

export async function listDeadLetters(nc: NatsConnection, ns: string): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(nc);
  const n = deliveryNames(ns);
  const info = await jsm.streams.info(n.dlqStream).catch((e: unknown) => {
    // No stream yet: webhooks never ran in this namespace, so there is nothing dead either.
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound) return null;
    throw e;
  });
  const out: DeadLetter[] = [];
  if (!info) return out;
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const sm = await jsm.streams.getMessage(n.dlqStream, { seq }).catch(() => null);
    if (!sm) continue; // deleted (replayed) in between
    const h = sm.header;
    const attempts = h?.get('Mtchat-Attempts');
    out.push({
      seq: sm.seq,
      subject: h?.get('Mtchat-Subject') || '',
      webhookId: h?.get('X-Webhook-Id') || null,
      event: h?.get('X-Webhook-Event') || null,
      lastError: h?.get('Mtchat-Last-Error') || null,
      attempts: attempts ? Number(attempts) : null,
      failedAt: h?.get('Mtchat-Failed-At') || null,
      body: Buffer.from(sm.data).toString('utf8'),
    });
  }
  return out;
}

/**
 * Puts dead letters back into the WEBHOOKS stream — same body, so the same X-Webhook-Id and
 * signature; a new Nats-Msg-Id, so the duplicate window does not swallow them — and removes them
 * from the DLQ once the stream has stored them. `filter` selects by webhook id or DLQ sequence.
 */
export async function replayDeadLetters(nc: NatsConnection, ns: string, filter?: (d: DeadLetter) => boolean): Promise<DeadLetter[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const n = deliveryNames(ns);
  const replayed: DeadLetter[] = [];
  for (const d of await listDeadLetters(nc, ns)) {
    if (filter && !filter(d)) continue;
    if (!d.subject) continue; // not a webhook dead letter
    await js.publish(d.subject, Buffer.from(d.body, 'utf8'), { msgID: `replay:${newId()}` });
    await jsm.streams.deleteMessage(n.dlqStream, d.seq, false);
    replayed.push(d);
  }
  return replayed;
}
