// A host platform for tests: an HTTP server on loopback that records every webhook attempt and
// answers as the test tells it to (per dialog, per attempt of an event).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { DeliveryNames } from '../../src/delivery/streams.js';

export type Answer = number | 'drop' | 'hang';

export interface Attempt {
  /** 1-based attempt number of this X-Webhook-Id. */
  n: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: string;
  json: any;
  answer: Answer;
}

export interface Receiver {
  url: string;
  attempts: Attempt[];
  /** Attempts answered with 2xx. */
  delivered(): Attempt[];
  /** How to answer attempt n of an event of this dialog (default 200). */
  rules: Map<string, (n: number) => Answer>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const attempts: Attempt[] = [];
  const counts = new Map<string, number>();
  const rules = new Map<string, (n: number) => Answer>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      let json: any = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* recorded as is */
      }
      const id = String(req.headers['x-webhook-id'] ?? '');
      const n = (counts.get(id) ?? 0) + 1;
      counts.set(id, n);
      const rule = rules.get(json?.payload?.dialog_id ?? '');
      const answer: Answer = rule ? rule(n) : 200;
      attempts.push({ n, headers: req.headers, raw, body, json, answer });
      if (answer === 'drop') req.socket.destroy();
      else if (answer === 'hang') return;
      else res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/mtchat`,
    attempts,
    rules,
    delivered: () => attempts.filter((a) => typeof a.answer === 'number' && a.answer >= 200 && a.answer < 300),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** What a receiver must do: HMAC-SHA256 over the raw body, constant-time compare. */
export function validSignature(secret: string, a: Pick<Attempt, 'raw' | 'headers'>): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(a.raw).digest('hex')}`);
  const got = Buffer.from(String(a.headers['x-webhook-signature'] ?? ''));
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Polls until the predicate holds (no timing assertion: it fails only when the state never comes). */
export async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Nothing left to deliver: the outbox is empty and both delivery consumers have settled every message. */
export async function deliveryIdle(
  sql: (text: string) => Promise<{ rows: { n: number }[] }>,
  jsm: JetStreamManager,
  names: DeliveryNames,
): Promise<boolean> {
  const { rows } = await sql('SELECT count(*)::int AS n FROM outbox');
  if (rows[0].n !== 0) return false;
  for (const [s, c] of [[names.webhooksStream, names.webhookConsumer], [names.notifyStream, names.notifyConsumer]]) {
    const ci = await jsm.consumers.info(s, c);
    if (ci.num_pending !== 0 || ci.num_ack_pending !== 0) return false;
  }
  return true;
}

/** Attempts whose X-Webhook-Id was seen before with another body or signature (there must be none). */
export function differingRepeats(attempts: Attempt[]): Attempt[] {
  const bodies = new Map<string, string>();
  return attempts.filter((a) => {
    const id = String(a.headers['x-webhook-id']);
    const key = `${a.body}|${a.headers['x-webhook-signature']}`;
    if (!bodies.has(id)) bodies.set(id, key);
    return bodies.get(id) !== key;
  });
}
