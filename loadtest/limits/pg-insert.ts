// The limit for the durable side: PostgreSQL taking the same message rows as fast as it can, in
// multi-row INSERTs of BATCH rows over POOL_SIZE connections (the service's pool size), no ORM.
// MODE=messages inserts message rows only; MODE=full inserts, per message, the rows the service
// writes for a send (message, dialog event, command-log entry) in one transaction per batch.
// Prints one JSON line: {mode, messages, rows, ms, messagesPerSec, rowsPerSec, batchMs, cpuUs}.
//
// Env: DATABASE_URL, POOL_SIZE, BATCH, DURATION_MS, MODE, LAYOUT_FILE, CONTENT_BYTES.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { summarize } from '../lib/stats.js';

const poolSize = Number(process.env.POOL_SIZE ?? 20);
const batch = Number(process.env.BATCH ?? 500);
const durationMs = Number(process.env.DURATION_MS ?? 8000);
const mode = process.env.MODE === 'full' ? 'full' : 'messages';
const contentBytes = Number(process.env.CONTENT_BYTES ?? 64);
const layout = JSON.parse(readFileSync(process.env.LAYOUT_FILE ?? '', 'utf8')) as { dialogs: { id: string; members: string[] }[] };
const dialogs = layout.dialogs;
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: poolSize });

// Far above anything the service assigns (and apart per mode), so (dialog_id, seq) stays unique.
const seqBase = mode === 'full' ? 2_000_000_000 : 1_000_000_000;
const seqOf = new Map<string, number>();
let turn = 0;
const padding = 'x'.repeat(contentBytes);

function rows(n: number) {
  const ids: string[] = [], dialogIds: string[] = [], senders: string[] = [], contents: string[] = [], seqs: number[] = [], cmids: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = dialogs[turn++ % dialogs.length];
    const seq = (seqOf.get(d.id) ?? seqBase) + 1;
    seqOf.set(d.id, seq);
    ids.push(randomUUID());
    dialogIds.push(d.id);
    senders.push(d.members[seq % d.members.length]);
    contents.push(`<p>limit #${seq}# ${padding}</p>`);
    seqs.push(seq);
    cmids.push(randomUUID());
  }
  return { ids, dialogIds, senders, contents, seqs, cmids };
}

const INSERT_MESSAGES = `INSERT INTO messages (id, dialog_id, sender_id, content, sent_at, message_type, seq, client_msg_id)
  SELECT id, dialog_id, sender_id, content, now(), 'user', seq, cmid
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS t(id, dialog_id, sender_id, content, seq, cmid)`;
const INSERT_EVENTS = `INSERT INTO dialog_events (dialog_id, seq, payload, created_at)
  SELECT dialog_id, seq, json_build_object('type', 'message.new', 'id', id, 'dialog_id', dialog_id, 'sender_id', sender_id,
    'content', content, 'sent_at', now(), 'message_type', 'user')::jsonb, now()
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[]) AS t(id, dialog_id, sender_id, content, seq)`;
const INSERT_COMMANDS = `INSERT INTO command_log (request_id, result, created_at)
  SELECT rid, json_build_object('message_id', id)::jsonb, now() FROM unnest($1::text[], $2::uuid[]) AS t(rid, id)`;

let messages = 0;
const batchMs: number[] = [];
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const stopAt = t0 + durationMs;

async function worker(): Promise<void> {
  while (performance.now() < stopAt) {
    const r = rows(batch);
    const t = performance.now();
    if (mode === 'messages') {
      await pool.query(INSERT_MESSAGES, [r.ids, r.dialogIds, r.senders, r.contents, r.seqs, r.cmids]);
    } else {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(INSERT_MESSAGES, [r.ids, r.dialogIds, r.senders, r.contents, r.seqs, r.cmids]);
        await c.query(INSERT_EVENTS, [r.ids, r.dialogIds, r.senders, r.contents, r.seqs]);
        await c.query(INSERT_COMMANDS, [r.cmids, r.ids]);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    }
    batchMs.push(performance.now() - t);
    messages += batch;
  }
}

await Promise.all(Array.from({ length: poolSize }, () => worker()));
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const rowsPerMessage = mode === 'full' ? 3 : 1;
console.log(JSON.stringify({
  mode, batch, poolSize, messages, rows: messages * rowsPerMessage, ms: Math.round(ms),
  messagesPerSec: Math.round((messages * 1000) / ms), rowsPerSec: Math.round((messages * rowsPerMessage * 1000) / ms),
  batchMs: summarize(batchMs), cpuUs: cpu.user + cpu.system,
}));
await pool.end();
