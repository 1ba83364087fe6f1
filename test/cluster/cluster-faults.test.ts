// The cluster as separate OS processes (edges and workers on their own ports, one PostgreSQL, one
// NATS) and what survives kill -9: a worker under load, an edge under load. (Webhooks and
// notifications under kill -9 have clusters of their own: webhooks-kill, notifications-kill.)
// Subtests run one after another in this one file, so no two fault tests ever overlap; the load is
// fixed and modest, pools small, leases short (docs/configuration.md).
//
// What is checked against what:
// - every client's view of a dialog: per socket, seq increases by exactly 1 from where the socket's
//   view starts; over all of a client's sockets, after resume, exactly joined_seq..last_seq; the
//   event at each seq is the same for every client and is the one in dialog_events;
// - every send: one row per client_msg_id, whose id and seq are those of every ack it got;
//   a socket's acks of one dialog come in send order with increasing seq;
// - partitions of a killed worker move within the documented bound (lease TTL + tick).
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { decode } from '@msgpack/msgpack';
import { startCluster, type Cluster, type Proc } from '../helpers/cluster.js';
import { client, createDialog, type Api } from '../helpers/api.js';
import { MSGPACK, TestSocket, type Frame } from '../helpers/ws-client.js';
import { startReceiver, until } from '../helpers/webhook-receiver.js';
import { partitionOf } from '../../src/domain/partition.js';

// The whole file stays well under four minutes; fail rather than hang.
t.setTimeout(230_000);

const LEASE_TTL_MS = 3000;
const LEASE_TICK_MS = 500;
/** docs/configuration.md: "a dead worker's partitions move within TTL + tick". */
const TAKEOVER_BOUND_MS = LEASE_TTL_MS + LEASE_TICK_MS;
/** Expiry sweep of the NATS server and scheduling on a loaded 2-core machine. */
const TAKEOVER_SLACK_MS = 2500;
/**
 * Acks of a dead worker's dialogs resume after the takeover plus the gateway's retry pause (at most
 * 1 s); a request that reached the worker just before it died waits out its 5 s attempt timeout.
 */
const ACK_GAP_MARGIN_MS = 3000;
const SEND_EVERY_MS = 50;
const SECRET = 'cluster-whsec-0123456789abcdef';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

const receiver = await startReceiver();
const cluster: Cluster = await startCluster({
  env: {
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_BASE_MS: '100',
    WEBHOOK_TIMEOUT_SECS: '1',
    WEBHOOK_MAX_RETRIES: '5',
    // Notification checks stay parked in the stream: they are not under test here.
    NOTIFICATION_DELAY_MS: '600000',
    // The load (one frame per 50 ms per socket) must not meet the per-socket frame limit.
    WS_RATE_LIMIT_PER_SEC: '200',
    WS_RATE_LIMIT_BURST: '400',
  },
});
const allClients: Client[] = [];
t.teardown(async () => {
  for (const c of allClients) c.terminate();
  await cluster.close();
  await receiver.close();
});

let w1: Proc, w2: Proc, e1: Proc, e2: Proc;
const started = Date.now();
try {
  // Worker ids are learnt from the worker bucket, so workers start one at a time.
  [w1, e1, e2] = await Promise.all([cluster.spawn('worker', 'w1'), cluster.spawn('edge', 'e1'), cluster.spawn('edge', 'e2')]);
  w2 = await cluster.spawn('worker', 'w2');
  await cluster.waitBalanced([w1.workerId!, w2.workerId!]);
} catch (e) {
  t.comment(cluster.logTails());
  throw e;
}
t.comment(`cluster of 2 edges + 2 workers ready and balanced in ${Date.now() - started} ms`);

// ---- a WebSocket client that keeps everything it saw ----------------------------------------

interface Send {
  cid: string;
  dialog: string;
  cmid: string;
  content: string;
  socket: SockRec;
  /** The send this one repeats (same client_msg_id). */
  retryOf?: Send;
  ack?: { seq: number; messageId: string; at: number };
  error?: Frame;
  /** Its socket closed before an answer came. */
  lost?: boolean;
}

interface SockRec {
  n: number;
  edge: Proc;
  sock: TestSocket;
  /** Last seen seq per dialog named in this socket's resume. */
  from: Map<string, number>;
  /** Seqs per dialog in arrival order. */
  seqs: Map<string, number[]>;
  /** Acks in arrival order. */
  acks: Send[];
}

const identity = (f: Frame): string =>
  f.type === 'message.read' ? `${f.type}|${f.user_id}|${f.last_read_message_id}`
    : String(f.type).startsWith('participant.') ? `${f.type}|${f.user_id}` : `${f.type}|${f.id}`;

class Client {
  readonly sockets: SockRec[] = [];
  cur: SockRec | null = null;
  /** dialog → seq → first frame seen with it. */
  readonly events = new Map<string, Map<number, Frame>>();
  readonly conflicts: string[] = [];
  readonly stray: Frame[] = [];
  readonly sends: Send[] = [];
  private readonly byCid = new Map<string, Send>();
  /** Correlation ids of other commands sent by the test itself (answers awaited with waitFor). */
  private readonly ownIds = new Set<string>();
  private n = 0;
  private rr = 0;
  /** Where to reconnect when the socket drops unexpectedly (null: stay away). */
  reconnectTo: Proc | null = null;
  reconnecting: Promise<void> | null = null;

  constructor(readonly user: string, readonly msgpack: boolean, readonly dialogs: string[] = []) {
    allClients.push(this);
  }

  lastSeen(d: string): number {
    return Math.max(0, ...(this.events.get(d)?.keys() ?? []));
  }

  /** Opens a ?resume=1 socket, resumes every dialog from the last seq seen, waits for `resumed`. */
  async connect(edge: Proc): Promise<void> {
    const sock = await TestSocket.connect(edge.url, { query: { user_id: this.user, resume: '1' }, protocols: this.msgpack ? [MSGPACK] : [] });
    const rec: SockRec = { n: this.sockets.length + 1, edge, sock, from: new Map(), seqs: new Map(), acks: [] };
    this.sockets.push(rec);
    // Frames already received (in the chunk that carried `connected`) first, then every later one.
    for (const f of sock.frames) this.onFrame(rec, f);
    sock.ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(rec, (isBinary ? decode(data) : JSON.parse(data.toString('utf8'))) as Frame));
    void sock.closed.then(() => this.onClosed(rec));
    const rid = `r-${this.user}-${rec.n}`;
    const dialogs: Record<string, number> = {};
    for (const d of this.dialogs) {
      dialogs[d] = this.lastSeen(d);
      rec.from.set(d, dialogs[d]);
    }
    sock.send({ type: 'resume', id: rid, dialogs });
    await sock.waitFor((f) => f.type === 'resumed' && f.id === rid, 15_000);
    this.cur = rec;
  }

  private onFrame(rec: SockRec, f: Frame): void {
    if ((f.type === 'ack' || f.type === 'error') && this.ownIds.has(f.id)) return;
    if (f.type === 'ack' || (f.type === 'error' && typeof f.id === 'string' && this.byCid.has(f.id))) {
      const s = this.byCid.get(f.id);
      if (!s || s.ack || s.error) return void this.stray.push(f);
      if (f.type === 'ack') {
        s.ack = { seq: f.seq, messageId: f.message_id, at: Date.now() };
        rec.acks.push(s);
      } else s.error = f;
      return;
    }
    if (f.type === 'error') return void this.stray.push(f);
    if (typeof f.seq === 'number' && typeof f.dialog_id === 'string') {
      let list = rec.seqs.get(f.dialog_id);
      if (!list) rec.seqs.set(f.dialog_id, (list = []));
      list.push(f.seq);
      let m = this.events.get(f.dialog_id);
      if (!m) this.events.set(f.dialog_id, (m = new Map()));
      const prev = m.get(f.seq);
      if (!prev) m.set(f.seq, f);
      else if (identity(prev) !== identity(f)) this.conflicts.push(`${f.dialog_id}#${f.seq}: ${identity(prev)} vs ${identity(f)}`);
    }
  }

  private onClosed(rec: SockRec): void {
    for (const s of this.sends) if (s.socket === rec && !s.ack && !s.error) s.lost = true;
    if (this.cur !== rec) return;
    this.cur = null;
    const to = this.reconnectTo;
    if (to) {
      this.reconnecting = this.connect(to)
        .catch((e) => void this.stray.push({ type: 'reconnect-failed', message: (e as Error).message }))
        .finally(() => (this.reconnecting = null));
    }
  }

  /** Sends on the current socket; null while there is none. */
  send(dialog: string, retryOf?: Send): Send | null {
    const rec = this.cur;
    if (!rec) return null;
    const s: Send = {
      cid: `${this.user}-${++this.n}`, dialog, socket: rec, retryOf,
      cmid: retryOf?.cmid ?? randomUUID(), content: retryOf?.content ?? `${this.user} says ${this.n}`,
    };
    this.sends.push(s);
    this.byCid.set(s.cid, s);
    rec.sock.send({ type: 'send', id: s.cid, dialog_id: dialog, content: s.content, client_msg_id: s.cmid });
    return s;
  }

  /** Any other command on the current socket; resolves with its answer. */
  command(frame: { id: string } & Record<string, unknown>): Promise<Frame> {
    this.ownIds.add(frame.id);
    this.cur!.sock.send(frame);
    return this.cur!.sock.waitFor((f) => (f.type === 'ack' || f.type === 'error') && f.id === frame.id);
  }

  sendNext(): Send | null {
    if (!this.cur) return null;
    return this.send(this.dialogs[this.rr++ % this.dialogs.length]);
  }

  /** Sends that got neither an ack nor a retry that was acked. */
  unanswered(): Send[] {
    const ackedCmids = new Set(this.sends.filter((s) => s.ack).map((s) => s.cmid));
    return this.sends.filter((s) => !s.retryOf && !ackedCmids.has(s.cmid));
  }

  pending(): Send[] {
    return this.sends.filter((s) => !s.ack && !s.error && !s.lost);
  }

  /** Drops the current socket without a close frame; its unanswered sends are lost. */
  drop(): void {
    const rec = this.cur;
    this.cur = null;
    rec?.sock.ws.terminate();
  }

  /** Abrupt: no close frame (what a dying network looks like). */
  terminate(): void {
    this.reconnectTo = null;
    for (const r of this.sockets) r.sock.ws.terminate();
  }

  async close(): Promise<void> {
    this.reconnectTo = null;
    const rec = this.cur;
    if (!rec) return;
    rec.sock.close();
    await rec.sock.closed;
  }
}

// ---- shared steps and checks ---------------------------------------------------------------

const people = (...ids: string[]) => ids.map((id) => ({ user_id: id, display_name: id.toUpperCase() }));

async function lastSeqs(dialogs: string[]): Promise<Map<string, number>> {
  const r = await cluster.sql('SELECT id::text, last_seq FROM dialogs WHERE id = ANY($1::uuid[])', [dialogs]);
  return new Map(r.rows.map((x) => [x.id, Number(x.last_seq)]));
}

async function joinedSeqs(dialogs: string[]): Promise<Map<string, number>> {
  const r = await cluster.sql('SELECT dialog_id::text, user_id, joined_seq FROM dialog_participants WHERE dialog_id = ANY($1::uuid[])', [dialogs]);
  return new Map(r.rows.map((x) => [`${x.dialog_id}|${x.user_id}`, Number(x.joined_seq)]));
}

/** Every answer is in, for every send whose socket is still open. */
async function settle(clients: Client[], timeoutMs = 30_000): Promise<void> {
  await until('every send on an open socket answered', () => clients.every((c) => c.pending().length === 0), timeoutMs);
}

/** Repeats every send that got no ack, with the same client_msg_id, until each one is acked. */
async function retryUnanswered(t: Test, clients: Client[]): Promise<number> {
  let retried = 0;
  for (let round = 1; round <= 3; round++) {
    const todo = clients.flatMap((c) => c.unanswered().map((s) => ({ c, s })));
    if (todo.length === 0) break;
    for (const { c, s } of todo) {
      if (!c.send(s.dialog, s)) throw new Error(`${c.user} has no socket to retry on`);
      retried++;
    }
    await settle(clients);
  }
  t.same(clients.flatMap((c) => c.unanswered().map((s) => `${c.user}:${s.cmid}`)), [], 'every send is acknowledged in the end (same client_msg_id on retry)');
  return retried;
}

async function caughtUp(clients: Client[], timeoutMs = 20_000): Promise<Map<string, number>> {
  const dialogs = [...new Set(clients.flatMap((c) => c.dialogs))];
  const last = await lastSeqs(dialogs);
  await until('every client has every dialog up to its last seq', () => clients.every((c) => c.dialogs.every((d) => c.lastSeen(d) >= last.get(d)!)), timeoutMs);
  return last;
}

/** Gap-free, duplicate-free, one order per dialog, and that order is the event log's. */
async function checkViews(t: Test, clients: Client[]): Promise<void> {
  const last = await caughtUp(clients);
  const dialogs = [...last.keys()];
  const joined = await joinedSeqs(dialogs);
  const log = await cluster.sql('SELECT dialog_id::text, seq, payload FROM dialog_events WHERE dialog_id = ANY($1::uuid[])', [dialogs]);
  const logged = new Map(log.rows.map((r) => [`${r.dialog_id}#${r.seq}`, identity(r.payload)]));

  const holes: string[] = [];
  const sockGaps: string[] = [];
  const mismatches: string[] = [];
  let events = 0;
  for (const c of clients) {
    for (const d of c.dialogs) {
      const first = Math.max(1, joined.get(`${d}|${c.user}`)!);
      const have = [...(c.events.get(d)?.keys() ?? [])].sort((a, b) => a - b);
      if (JSON.stringify(have) !== JSON.stringify(range(first, last.get(d)!))) holes.push(`${c.user} ${d}: ${first}..${last.get(d)} expected, got ${have.join(',')}`);
      for (const [seq, f] of c.events.get(d) ?? []) {
        events++;
        if (logged.get(`${d}#${seq}`) !== identity(f)) mismatches.push(`${c.user} ${d}#${seq}: ${identity(f)} vs log ${logged.get(`${d}#${seq}`)}`);
      }
      for (const rec of c.sockets) {
        const seqs = rec.seqs.get(d) ?? [];
        const start = Math.max((rec.from.get(d) ?? 0) + 1, first);
        if (JSON.stringify(seqs) !== JSON.stringify(range(start, start + seqs.length - 1))) {
          sockGaps.push(`${c.user} socket ${rec.n} (${rec.edge.name}) ${d}: from ${start}, got ${seqs.join(',')}`);
        }
      }
    }
  }
  t.same(holes, [], `every client has exactly joined_seq..last_seq of each of its dialogs (${events} events checked)`);
  t.same(sockGaps, [], 'per socket and dialog, seq increases by exactly 1 from where its view starts');
  t.same(mismatches, [], 'the event at each seq is the one in the event log, for every client (one order per dialog)');
  t.same(clients.flatMap((c) => c.conflicts), [], 'no seq ever carried two different events');
  t.same(clients.flatMap((c) => c.stray), [], 'no unexpected errors or answers');
}

/** One row per client_msg_id, matching every ack; acks of a socket's dialog come in send order. */
async function checkSends(
  t: Test, clients: Client[], restCount: number, changed: { deleted?: string[]; edited?: Map<string, string> } = {},
): Promise<void> {
  const dialogs = [...new Set(clients.flatMap((c) => c.dialogs))];
  const r = await cluster.sql(
    `SELECT id::text, dialog_id::text, sender_id, client_msg_id, seq, content FROM messages WHERE dialog_id = ANY($1::uuid[]) AND message_type = 'user'`,
    [dialogs],
  );
  const byKey = new Map<string, any[]>();
  for (const row of r.rows) {
    if (row.client_msg_id === null) continue;
    const k = `${row.sender_id}|${row.client_msg_id}`;
    byKey.set(k, [...(byKey.get(k) ?? []), row]);
  }
  const sent = new Set(clients.flatMap((c) => c.sends.map((s) => `${c.user}|${s.cmid}`)));
  t.equal(r.rows.filter((x) => x.client_msg_id === null).length, restCount, 'REST sends: one row each');
  t.same([...byKey.keys()].filter((k) => !sent.has(k)), [], 'no row that nobody sent');
  const deleted = new Set(changed.deleted ?? []);
  const sentOf = (k: string) => clients.flatMap((c) => c.sends.filter((s) => `${c.user}|${s.cmid}` === k && s.ack));
  const gone = [...sent].filter((k) => sentOf(k).some((s) => deleted.has(s.ack!.messageId)));
  t.same([...sent].filter((k) => !gone.includes(k) && byKey.get(k)?.length !== 1), [], `every client_msg_id is in PostgreSQL exactly once (${sent.size} sends)`);
  t.same(gone.filter((k) => byKey.has(k)), [], 'but for the deleted ones');

  const wrong: string[] = [];
  const disorder: string[] = [];
  let acks = 0;
  for (const c of clients) {
    for (const s of c.sends) {
      if (!s.ack) continue;
      acks++;
      if (deleted.has(s.ack.messageId)) continue;
      const row = byKey.get(`${c.user}|${s.cmid}`)?.[0];
      const content = changed.edited?.get(s.ack.messageId) ?? s.content;
      if (!row || row.id !== s.ack.messageId || Number(row.seq) !== s.ack.seq || row.content !== content || row.dialog_id !== s.dialog) {
        wrong.push(`${c.user} ${s.cid}: ack ${JSON.stringify(s.ack)} vs row ${JSON.stringify(row)}`);
      }
    }
    for (const rec of c.sockets) {
      for (const d of c.dialogs) {
        const firstTries = rec.acks.filter((s) => s.dialog === d && !s.retryOf);
        const seqs = firstTries.map((s) => s.ack!.seq);
        if (seqs.some((q, i) => i > 0 && q <= seqs[i - 1])) disorder.push(`${c.user} socket ${rec.n} ${d}: seqs ${seqs.join(',')}`);
        const sentOrder = c.sends.filter((s) => s.socket === rec && s.dialog === d && !s.retryOf && s.ack).map((s) => s.cid);
        if (JSON.stringify(sentOrder) !== JSON.stringify(firstTries.map((s) => s.cid))) disorder.push(`${c.user} socket ${rec.n} ${d}: acks not in send order`);
      }
    }
  }
  t.same(wrong, [], `every ack (${acks}, retries included) names the row's id and seq`);
  t.same(disorder, [], "a socket's acks of a dialog come in send order with increasing seq");
}

/** The longest pause between two acks of the dialog (over all clients), from `from` on. */
function longestAckGap(clients: Client[], dialog: string, from: number): number {
  const times = clients.flatMap((c) => c.sends.filter((s) => s.dialog === dialog && s.ack && s.ack.at >= from).map((s) => s.ack!.at)).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  return gap;
}

async function restSend(api: Api, dialog: string, user: string, content: string): Promise<string> {
  const r = await api('POST', `/api/v1/dialogs/${dialog}/messages`, { user, body: { content } });
  if (r.status !== 200) throw new Error(`REST send failed: ${r.status} ${r.text}`);
  return r.json.data.id;
}

const dumpOnFailure = (t: Test) => t.teardown(() => {
  if (!t.passing()) t.comment(cluster.logTails(30));
});

// ---- tests -----------------------------------------------------------------------------------

t.test('cluster: users on two edges exchange messages; one order per dialog, seq strictly increasing; REST on either edge', async (t) => {
  dumpOnFailure(t);
  const api1 = client(e1.url);
  const api2 = client(e2.url);
  const d1 = await createDialog(api1, { object_id: randomUUID(), participants: people('k-a', 'k-b') });
  const d2 = await createDialog(api2, { object_id: randomUUID(), participants: people('k-a', 'k-b', 'k-c', 'k-d') });
  const d3 = await createDialog(api1, { object_id: randomUUID(), participants: people('k-a', 'k-c', 'k-d') });
  const a = new Client('k-a', true, [d1, d2, d3]);
  const b = new Client('k-b', false, [d1, d2]);
  const c = new Client('k-c', false, [d2, d3]);
  const d = new Client('k-d', true, [d2, d3]);
  const clients = [a, b, c, d];
  await Promise.all([a.connect(e1), b.connect(e2), c.connect(e1), d.connect(e2)]);
  t.same([a, b, c, d].map((x) => [x.cur!.edge.name, x.cur!.sock.protocol]), [['e1', MSGPACK], ['e2', ''], ['e1', ''], ['e2', MSGPACK]], 'msgpack and JSON sockets on both edges');

  // Everyone sends at once, so commands from both edges interleave in every dialog.
  for (let i = 0; i < 6; i++) for (const x of clients) x.sendNext();
  await settle(clients);
  t.same(clients.flatMap((x) => x.sends.filter((s) => !s.ack).map((s) => s.error)), [], 'every WS send acknowledged');

  // Other event types, through the other edge's REST and the sockets.
  const aFirstInD2 = a.sends.find((s) => s.dialog === d2)!;
  const edit = await api2('PUT', `/api/v1/dialogs/${d2}/messages/${aFirstInD2.ack!.messageId}`, { user: 'k-a', body: { content: 'edited on e2' } });
  t.equal(edit.status, 200, 'edit over REST on e2');
  t.equal(edit.json.data.content, 'edited on e2');
  const dLastInD2 = d.sends.filter((s) => s.dialog === d2).at(-1)!;
  const del = await api1('DELETE', `/api/v1/dialogs/${d2}/messages/${dLastInD2.ack!.messageId}`, { user: 'k-d' });
  t.equal(del.status, 204, 'delete over REST on e1');
  const restId = await restSend(api2, d1, 'k-b', 'from REST on e2');
  t.same(await b.command({ type: 'read', id: 'read-1', dialog_id: d1, last_read_message_id: restId }), { type: 'ack', id: 'read-1', ok: true }, 'read over the socket');

  await checkViews(t, clients);
  await checkSends(t, clients, 1, { deleted: [dLastInD2.ack!.messageId], edited: new Map([[aFirstInD2.ack!.messageId, 'edited on e2']]) });
  const newOf = (x: Client, dlg: string) => [...(x.events.get(dlg)?.values() ?? [])].filter((f) => f.type === 'message.new').map((f) => f.id);
  t.same(newOf(b, d1), newOf(a, d1), 'a (e1, msgpack) and b (e2, JSON) see the same messages of d1 in the same order');
  const fromA = a.sends.filter((s) => s.dialog === d2).map((s) => s.ack!.messageId);
  t.same(newOf(d, d2).filter((id) => fromA.includes(id)), fromA, "a's messages reach d on the other edge in a's order");
  const acked = clients.flatMap((x) => x.sends.map((s) => [s.ack!.messageId, s.ack!.seq]));
  const seen = new Map(clients.flatMap((x) => [...x.events.values()].flatMap((m) => [...m.values()])).filter((f) => f.type === 'message.new').map((f) => [f.id, f.seq]));
  t.same(acked.filter(([id, seq]) => seen.get(id) !== seq), [], "each ack's seq is the seq its message.new carried");

  // REST reads agree on both edges.
  const list1 = await api1('GET', `/api/v1/dialogs/${d2}/messages`, { user: 'k-c', query: { limit: 100 } });
  const list2 = await api2('GET', `/api/v1/dialogs/${d2}/messages`, { user: 'k-c', query: { limit: 100 } });
  t.equal(list1.status, 200);
  t.equal(list2.status, 200);
  t.same(list1.json, list2.json, 'the same page from either edge');
  const kept = clients.flatMap((x) => x.sends.filter((s) => s.dialog === d2).map((s) => s.ack!.messageId)).filter((id) => id !== dLastInD2.ack!.messageId);
  const userMessages = list1.json.data.messages.filter((m: any) => m.message_type === 'user').map((m: any) => m.id);
  t.same(userMessages.sort(), kept.sort(), 'every user message of d2 but the deleted one');
  t.equal(list1.json.data.messages.find((m: any) => m.id === aFirstInD2.ack!.messageId)?.content, 'edited on e2');
  for (const x of clients) await x.close();
});

t.test('kill -9 of a worker under load: takeover within the bound, every ack exactly once in order, gap-free resume', async (t) => {
  dumpOnFailure(t);
  const victim = w1;
  const survivor = w2;
  const api1 = client(e1.url);
  const api2 = client(e2.url);
  // Three dialogs owned by each worker; each user has two of each.
  const slots = { victim: [] as string[], survivor: [] as string[] };
  for (let tries = 0; slots.victim.length < 3 || slots.survivor.length < 3; tries++) {
    if (tries > 40) throw new Error('could not place dialogs on both workers');
    const id = await createDialog(api1, { object_id: randomUUID(), participants: [] });
    const owner = cluster.owners.get(partitionOf(id));
    const side = owner === victim.workerId ? slots.victim : owner === survivor.workerId ? slots.survivor : null;
    if (side && side.length < 3) side.push(id);
  }
  const [v0, v1, v2] = slots.victim;
  const [s0, s1, s2] = slots.survivor;
  const members: Record<string, string[]> = {
    [v0]: ['f-a', 'f-c', 'f-d'], [v1]: ['f-a', 'f-b'], [v2]: ['f-b', 'f-c', 'f-d'],
    [s0]: ['f-a', 'f-c', 'f-d'], [s1]: ['f-a', 'f-b'], [s2]: ['f-b', 'f-c', 'f-d'],
  };
  for (const [dlg, users] of Object.entries(members)) {
    for (const u of users) {
      const r = await api2('POST', `/api/v1/management/dialogs/${dlg}/participants`, { body: { user_id: u, display_name: u } });
      t.equal(r.status, 201, `${u} added`);
    }
  }
  const dialogsOf = (u: string) => Object.keys(members).filter((dlg) => members[dlg].includes(u));
  const a = new Client('f-a', true, dialogsOf('f-a'));
  const b = new Client('f-b', false, dialogsOf('f-b'));
  const c = new Client('f-c', false, dialogsOf('f-c'));
  const d = new Client('f-d', true, dialogsOf('f-d'));
  const clients = [a, b, c, d];
  await Promise.all([a.connect(e1), b.connect(e2), c.connect(e1), d.connect(e2)]);

  const victimParts = new Set([...cluster.owners].filter(([, o]) => o === victim.workerId).map(([p]) => p));
  // 4 sockets × one send per 50 ms for 6 s, round robin over each one's dialogs. The worker dies
  // at 1.5 s; d's socket drops 0.4 s later with sends unanswered and comes back through the other edge.
  const LOAD_MS = 6000;
  const KILL_AT = 1500;
  const DROP_AT = KILL_AT + 400;
  const BACK_AT = KILL_AT + 1400;
  const t0 = Date.now();
  let killedAt = 0;
  let dropped = false;
  let back: Promise<void> | null = null;
  while (Date.now() - t0 < LOAD_MS) {
    const el = Date.now() - t0;
    if (!killedAt && el >= KILL_AT) {
      killedAt = Date.now();
      await cluster.kill(victim);
    }
    if (!dropped && el >= DROP_AT) {
      dropped = true;
      d.drop();
    }
    if (!back && el >= BACK_AT) back = d.connect(e1);
    for (const x of clients) x.sendNext();
    await sleep(SEND_EVERY_MS);
  }
  await back;
  t.equal((await victim.exited).signal, 'SIGKILL', 'the victim died of SIGKILL');

  // Takeover, as seen in the lease bucket.
  await until('the survivor owns every partition of the victim', () => [...victimParts].every((p) => cluster.owners.get(p) === survivor.workerId), 20_000);
  const takeover = Math.max(...[...victimParts].map((p) => cluster.history.get(p)!.find((h) => h.at >= killedAt && h.owner === survivor.workerId)!.at - killedAt));
  t.comment(`takeover of ${victimParts.size} partitions: ${takeover} ms after the kill (bound ${TAKEOVER_BOUND_MS} ms)`);
  t.ok(takeover < TAKEOVER_BOUND_MS + TAKEOVER_SLACK_MS, `partitions moved within the bound: ${takeover} ms < ${TAKEOVER_BOUND_MS} + ${TAKEOVER_SLACK_MS} ms`);

  await settle(clients);
  const gapsV = slots.victim.map((dlg) => longestAckGap(clients, dlg, t0));
  const gapsS = slots.survivor.map((dlg) => longestAckGap(clients, dlg, t0));
  const gap = Math.max(...gapsV);
  t.comment(`longest ack gap: victim's dialogs ${gapsV.join('/')} ms, survivor's ${gapsS.join('/')} ms`);
  t.ok(gap < TAKEOVER_BOUND_MS + ACK_GAP_MARGIN_MS, `acks of the victim's dialogs resumed within the bound: ${gap} ms < ${TAKEOVER_BOUND_MS} + ${ACK_GAP_MARGIN_MS} ms`);
  const ackedAfter = (dlg: string) => clients.some((x) => x.sends.some((s) => s.dialog === dlg && s.ack && s.ack.at > killedAt + takeover));
  t.ok(slots.victim.every((dlg) => clients.some((x) => x.sends.some((s) => s.dialog === dlg && s.ack && s.ack.at < killedAt))), "the victim's dialogs were acked before the kill");
  t.ok(slots.victim.every(ackedAfter), 'and after the takeover');

  const lostByD = d.sends.filter((s) => s.lost).length;
  t.ok(lostByD > 0, `d's dropped socket left sends without an answer (${lostByD})`);
  const errors = clients.flatMap((x) => x.sends.filter((s) => s.error).map((s) => s.error!.code));
  const retried = await retryUnanswered(t, clients);
  t.comment(`sends: ${clients.reduce((n, x) => n + x.sends.filter((s) => !s.retryOf).length, 0)}, retried with the same client_msg_id: ${retried} (errors: ${errors.join(',') || 'none'})`);
  const reacked = d.sends.filter((s) => s.retryOf?.lost && s.ack);
  t.equal(reacked.length, lostByD, 'every unanswered send of d acknowledged on retry');

  // Everyone goes away; more happens meanwhile (REST on both edges); everyone resumes elsewhere.
  for (const x of clients) await x.close();
  let rest = 0;
  for (const [i, dlg] of Object.keys(members).entries()) {
    await restSend(i % 2 ? api1 : api2, dlg, members[dlg][0], `while everyone was away ${i}`);
    rest++;
  }
  await Promise.all([a.connect(e2), b.connect(e1), c.connect(e2), d.connect(e2)]);
  await checkSends(t, clients, rest);
  await checkViews(t, clients);
  for (const x of clients) await x.close();
});

t.test('kill -9 of an edge: its clients reconnect to the other edge, resume gap-free, and keep sending', async (t) => {
  dumpOnFailure(t);
  const api2 = client(e2.url);
  const g0 = await createDialog(api2, { object_id: randomUUID(), participants: people('g-a', 'g-b', 'g-c', 'g-d') });
  const g1 = await createDialog(api2, { object_id: randomUUID(), participants: people('g-a', 'g-c') });
  const g2 = await createDialog(api2, { object_id: randomUUID(), participants: people('g-b', 'g-d') });
  const g3 = await createDialog(api2, { object_id: randomUUID(), participants: people('g-a', 'g-d') });
  const a = new Client('g-a', true, [g0, g1, g3]);
  const b = new Client('g-b', false, [g0, g2]);
  const c = new Client('g-c', false, [g0, g1]);
  const d = new Client('g-d', true, [g0, g2, g3]);
  const clients = [a, b, c, d];
  await Promise.all([a.connect(e1), b.connect(e1), c.connect(e2), d.connect(e2)]);
  a.reconnectTo = e2;
  b.reconnectTo = e2;

  const LOAD_MS = 4000;
  const KILL_AT = 1500;
  const t0 = Date.now();
  let killedAt = 0;
  while (Date.now() - t0 < LOAD_MS) {
    if (!killedAt && Date.now() - t0 >= KILL_AT) {
      killedAt = Date.now();
      await cluster.kill(e1);
    }
    for (const x of clients) x.sendNext();
    await sleep(SEND_EVERY_MS);
  }
  t.equal((await e1.exited).signal, 'SIGKILL', 'e1 died of SIGKILL');
  await until('a and b are back', () => a.cur !== null && b.cur !== null, 15_000);
  const closes = await Promise.all([a, b].map((x) => x.sockets[0].sock.closed));
  t.same(closes.map((x) => x.code), [1006, 1006], 'their sockets to e1 ended without a close frame');
  t.same([a, b].map((x) => x.cur!.edge.name), ['e2', 'e2'], 'both reconnected to e2');
  t.ok([a, b].every((x) => x.sends.some((s) => s.socket.edge === e2 && s.ack)), 'and their sends continued there');

  await settle(clients);
  const lost = clients.reduce((n, x) => n + x.sends.filter((s) => s.lost).length, 0);
  const retried = await retryUnanswered(t, clients);
  t.comment(`sends: ${clients.reduce((n, x) => n + x.sends.filter((s) => !s.retryOf).length, 0)}, lost with e1: ${lost}, retried: ${retried}`);
  await restSend(api2, g0, 'g-c', 'after the edge died');
  await checkSends(t, clients, 1);
  await checkViews(t, clients);
  for (const x of clients) await x.close();
});

t.test('graceful stop: SIGTERM drains and exits 0', async (t) => {
  const worker = cluster.procs.find((p) => p.role === 'worker' && p.alive())!;
  t.same(await cluster.stop(e2), { code: 0, signal: null }, 'edge');
  t.same(await cluster.stop(worker), { code: 0, signal: null }, 'worker');
  t.comment(`whole file: ${Date.now() - started} ms`);
});
