// A cluster (separate OS processes) that delivers webhooks to a local receiver: what the kill -9
// delivery tests share. One worker and one edge are started; the tests kill and add more.
import type { Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, type Cluster, type Proc } from './cluster.js';
import { client, type Api } from './api.js';
import { startReceiver, type Receiver } from './webhook-receiver.js';
import { deliveryNames, type DeliveryNames } from '../../src/delivery/streams.js';

/** Short retries and timeouts, so a test sees several attempts within seconds. */
export const WEBHOOK_TEST_ENV = {
  WEBHOOK_RETRY_BASE_MS: '100',
  WEBHOOK_TIMEOUT_SECS: '1',
  WEBHOOK_MAX_RETRIES: '5',
};

export interface WebhookCluster {
  receiver: Receiver;
  cluster: Cluster;
  nc: NatsConnection;
  jsm: JetStreamManager;
  names: DeliveryNames;
  w1: Proc;
  e1: Proc;
  api: Api;
  /** Sends that needed repeating after a 503 (no owner while a worker starts). */
  repeated: () => number;
  /** A REST send that must succeed at once. */
  restSend(dialog: string, user: string, content: string): Promise<string>;
  sendRepeating(dialog: string, user: string, content: string): Promise<string>;
}

export async function startWebhookCluster(t: Test, secret: string, env: Record<string, string>): Promise<WebhookCluster> {
  const receiver = await startReceiver();
  const cluster = await startCluster({ env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret, ...WEBHOOK_TEST_ENV, ...env } });
  const nc = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222' });
  t.teardown(async () => {
    await nc.close();
    await cluster.close();
    await receiver.close();
  });
  const [w1, e1] = await Promise.all([cluster.spawn('worker', 'w1'), cluster.spawn('edge', 'e1')]).catch((e) => {
    t.comment(cluster.logTails());
    throw e;
  });
  const api = client(e1.url);
  let repeated = 0;
  return {
    receiver, cluster, nc, jsm: await jetstreamManager(nc), names: deliveryNames(cluster.namespace), w1, e1, api,
    repeated: () => repeated,
    async restSend(dialog, user, content) {
      const r = await api('POST', `/api/v1/dialogs/${dialog}/messages`, { user, body: { content } });
      if (r.status !== 200) throw new Error(`REST send failed: ${r.status} ${r.text}`);
      return r.json.data.id;
    },
    /**
     * A send made while no worker owns the dialog: the edge answers 503 once it gives up waiting
     * (20 s, more than a new worker needs unless the machine is very busy); a client repeats it
     * with the same client_msg_id, which cannot double it.
     */
    async sendRepeating(dialog, user, content) {
      const body = { content, client_msg_id: randomUUID() };
      for (let attempt = 1; ; attempt++) {
        const r = await api('POST', `/api/v1/dialogs/${dialog}/messages`, { user, body });
        if (r.status === 200) return r.json.data.id;
        if (r.status !== 503 || attempt === 4) throw new Error(`REST send failed: ${r.status} ${r.text}`);
        repeated++;
        await new Promise((res) => setTimeout(res, 1000));
      }
    },
  };
}
