// The batched send path: many sends in one transaction must behave exactly as the same sends one
// after another — later sends see earlier ones, a failing send fails alone, nothing is doubled.
import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';
import { executeSends } from '../../src/actors/send-batch.js';
import { newId } from '../../src/domain/ids.js';
import type { CommandEnvelope } from '../../src/actors/registry.js';
import type { SendCmd } from '../../src/actors/handlers/messages.js';

const srv = await startTestServer({});
t.teardown(() => srv.close());
const api = client(srv.url);
const who = (id: string) => ({ user_id: id, display_name: id });
const A = await createDialog(api, { participants: [who('sb-a'), who('sb-b')] });
const B = await createDialog(api, { participants: [who('sb-c'), who('sb-d')] });

const env = (cmd: Partial<SendCmd> & { dialog_id: string; user_id: string }, requestId = newId()): CommandEnvelope => ({
  name: 'sendMessage', dialogId: cmd.dialog_id, requestId,
  cmd: { content: 'x', attachments: [], client_msg_id: null, reply_to: null, ...cmd },
});
const run = (envs: CommandEnvelope[]) => executeSends(srv.app.orm, envs, { persistOutbox: true }, srv.app.log);
const result = (r: { ok: boolean }) => (r as { ok: true; result: { message: { id: string; seq: number; content: string }; created: boolean } }).result;

t.test('one batch across two dialogs: order, seq, duplicates, keys used earlier in the batch', async (t) => {
  const key = `dialogs/${A}/batch-file.pdf`;
  const first = env({ dialog_id: A, user_id: 'sb-a', content: 'one', client_msg_id: 'c-1' });
  const envs = [
    first,
    env({ dialog_id: B, user_id: 'sb-c', content: "it's $j$ a \\ tricky 'one'" }),
    env({ dialog_id: A, user_id: 'sb-b', content: 'two' }),
    { ...first }, // the same request again (an edge retry that arrived meanwhile)
    env({ dialog_id: A, user_id: 'sb-a', content: 'one again', client_msg_id: 'c-1' }), // same client id, new request
    env({ dialog_id: A, user_id: 'sb-x', content: 'stranger' }),
    env({ dialog_id: A, user_id: 'sb-a', content: '   ' }),
    env({ dialog_id: newId(), user_id: 'sb-a', content: 'nowhere' }),
    env({ dialog_id: 'not-a-uuid', user_id: 'sb-a', content: 'bad id' }),
    env({ dialog_id: A, user_id: 'sb-b', content: 'reply', attachments: [{ s3_key: key, filename: 'f.pdf', content_type: 'application/pdf', size: 3 }] }),
    env({ dialog_id: A, user_id: 'sb-a', content: 'same file', attachments: [{ s3_key: key, filename: 'f.pdf', content_type: 'application/pdf', size: 3 }] }),
  ];
  const seqOf = async (id: string) => Number((await srv.sql('SELECT last_seq FROM dialogs WHERE id = $1', [id])).rows[0].last_seq);
  const [a0, b0] = [await seqOf(A), await seqOf(B)]; // creation logged its own events
  const out = await run(envs);
  const r = out.replies;
  t.equal(r.length, envs.length, 'one reply per command, in order');
  t.ok(r[0].ok && r[1].ok && r[2].ok);
  t.same([result(r[0]).message.seq, result(r[2]).message.seq], [a0 + 1, a0 + 2], "dialog A's sends are numbered in batch order");
  t.equal(result(r[1]).message.seq, b0 + 1, 'dialog B counts on its own');
  t.equal(result(r[1]).message.content, "it's $j$ a \\ tricky 'one'", 'text with quotes, backslashes and dollar tags is stored as sent');
  t.same(r[3], r[0], 'the repeated request gets the first answer');
  t.equal(result(r[4]).created, false, 'same client_msg_id: the first message again');
  t.equal(result(r[4]).message.id, result(r[0]).message.id);
  t.match(r[5], { ok: false, error: { status: 403, code: 'FORBIDDEN' } }, 'a non-participant fails alone');
  t.match(r[6], { ok: false, error: { status: 400, code: 'INVALID_INPUT', message: 'content is required' } });
  t.match(r[7], { ok: false, error: { status: 404, code: 'DIALOG_NOT_FOUND' } });
  t.match(r[8], { ok: false, error: { status: 404, code: 'DIALOG_NOT_FOUND' } }, 'a malformed id is not found, and fails nothing else');
  t.ok(r[9].ok, 'the first use of a key');
  t.match(r[10], { ok: false, error: { code: 'INVALID_INPUT', message: `Invalid S3 key: already attached to another message: ${key}` } }, 'the key used earlier in the same batch');
  t.same(out.events[3], [], 'a repeated request publishes nothing');

  const rows = (await srv.sql(`SELECT content, seq FROM messages WHERE dialog_id = $1 AND message_type = 'user' ORDER BY seq`, [A])).rows;
  t.same(rows.map((x: { content: string }) => x.content), ['one', 'two', 'reply'], 'exactly the successful sends are stored');
  const d = (await srv.sql('SELECT last_seq, user_msg_count FROM dialogs WHERE id = $1', [A])).rows[0];
  t.same([Number(d.last_seq), Number(d.user_msg_count)], [a0 + 3, 3]);
  const events = (await srv.sql('SELECT seq FROM dialog_events WHERE dialog_id = $1 AND seq > $2 ORDER BY seq', [A, a0])).rows.map((x: { seq: string }) => Number(x.seq));
  t.same(events, [a0 + 1, a0 + 2, a0 + 3], 'one logged event per stored message, gap-free');
  const outbox = (await srv.sql(`SELECT kind FROM outbox WHERE dialog_id = $1 ORDER BY kind`, [A])).rows.map((x: { kind: string }) => x.kind);
  t.same(outbox, ['notify.message', 'notify.message', 'notify.message', 'webhook.message_new', 'webhook.message_new', 'webhook.message_new'], 'two outbox rows per stored message');
  const me = (await srv.sql(`SELECT user_id, read_mark, last_read_message_id, unread_count FROM dialog_participants WHERE dialog_id = $1 ORDER BY user_id`, [A])).rows;
  t.match(me[1], { user_id: 'sb-b', read_mark: '3', last_read_message_id: result(r[9]).message.id, unread_count: 0 }, "a sender's read state ends at its last send of the batch");
  t.match(me[0], { user_id: 'sb-a', read_mark: '1', last_read_message_id: result(r[0]).message.id });
});

t.test('reply_to an earlier message, and unarchive once per dialog', async (t) => {
  const C = await createDialog(api, { participants: [who('sb-e'), who('sb-f')] });
  await srv.sql('UPDATE dialog_participants SET is_archived = true WHERE dialog_id = $1', [C]);
  const first = await run([env({ dialog_id: C, user_id: 'sb-e', content: 'base' })]);
  t.same(first.events[0].map((e) => e.event.type), ['dialog.unarchived', 'message.new'], 'unarchived first, then the message');
  const base = result(first.replies[0]).message.id;
  await srv.sql('UPDATE dialog_participants SET is_archived = true WHERE dialog_id = $1', [C]);
  const id = newId();
  const out = await run([
    env({ dialog_id: C, user_id: 'sb-f', content: 'answer', reply_to: base }, id),
    env({ dialog_id: C, user_id: 'sb-e', content: 'again' }),
  ]);
  t.same(out.events.map((es) => es.map((e) => e.event.type)), [['dialog.unarchived', 'message.new'], ['message.new']], 'one dialog.unarchived for the batch');
  t.equal((await srv.sql('SELECT count(*)::int n FROM dialog_participants WHERE dialog_id = $1 AND is_archived', [C])).rows[0].n, 0, 'everyone unarchived');
  const bad = await run([env({ dialog_id: C, user_id: 'sb-f', content: 'to nothing', reply_to: newId() }), env({ dialog_id: C, user_id: 'sb-f', content: 'fine' })]);
  t.match(bad.replies[0], { ok: false, error: { code: 'INVALID_INPUT', message: 'reply_to message not found in this dialog' } });
  t.ok(bad.replies[1].ok, 'its neighbour is unaffected');
});

t.test('text PostgreSQL cannot store is refused per send, and a client id with spaces cannot pass for another', async (t) => {
  const D = await createDialog(api, { participants: [who('sb-g'), who('sb-g x'), who('sb-h')] });
  const out = await run([
    env({ dialog_id: D, user_id: 'sb-g', content: 'nul id', client_msg_id: 'a\0b' }),
    env({ dialog_id: D, user_id: 'sb-g', content: 'nul file', attachments: [{ s3_key: `dialogs/${D}/f.pdf`, filename: 'f\0.pdf', content_type: 'application/pdf', size: 3 }] }),
    env({ dialog_id: D, user_id: 'sb-g', content: 'first', client_msg_id: 'x y' }),
    env({ dialog_id: D, user_id: 'sb-g x', content: 'second', client_msg_id: 'y' }),
  ]);
  t.match(out.replies[0], { ok: false, error: { status: 400, code: 'INVALID_INPUT', message: 'client_msg_id must not contain null bytes' } });
  t.match(out.replies[1], { ok: false, error: { status: 400, code: 'INVALID_INPUT', message: 'filename must not contain null bytes' } });
  t.ok(out.replies[2].ok && out.replies[3].ok, 'the batch around them is stored');
  t.equal(result(out.replies[3]).created, true, "('sb-g x', 'y') is not ('sb-g', 'x y')");
  t.not(result(out.replies[3]).message.id, result(out.replies[2]).message.id);
});
