// Dead-lettered webhooks: `npm run dlq:list` prints them, `npm run dlq:replay [-- <webhook id|dlq seq> ...]`
// puts them (all, or the named ones) back into delivery with the same X-Webhook-Id and body.
// Reads NATS_URL and MTCHAT_NAMESPACE (or DATABASE_URL, from which the namespace defaults) like the service.
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../src/config/env.js';
import { listDeadLetters, replayDeadLetters, type DeadLetter } from '../src/delivery/dlq.js';

const [command, ...selectors] = process.argv.slice(2);
if (command !== 'list' && command !== 'replay') {
  console.error('usage: tsx scripts/dlq.ts list | replay [<webhook id | dlq seq> ...]');
  process.exit(2);
}
const cfg = loadConfig();
const nc = await connect({ servers: cfg.natsUrl.split(',').map((s) => s.trim()).filter(Boolean), name: 'mtchat-dlq' });
const selected = (d: DeadLetter) => selectors.length === 0 || selectors.includes(String(d.seq)) || (d.webhookId !== null && selectors.includes(d.webhookId));
try {
  if (command === 'list') {
    const all = (await listDeadLetters(nc, cfg.namespace)).filter(selected);
    for (const d of all) {
      console.log(JSON.stringify({ seq: d.seq, id: d.webhookId, event: d.event, attempts: d.attempts, failed_at: d.failedAt, last_error: d.lastError, subject: d.subject, body: d.body }));
    }
    console.error(`${all.length} dead letter(s) in ${cfg.namespace}_DLQ`);
  } else {
    const done = await replayDeadLetters(nc, cfg.namespace, selected);
    for (const d of done) console.log(`replayed ${d.webhookId ?? '?'} (dlq seq ${d.seq})`);
    console.error(`${done.length} dead letter(s) replayed`);
  }
} finally {
  await nc.close();
}
