// Authorisation matrix: every dialog-scoped Chat endpoint × four kinds of caller, with the exact
// status and code the spec gives each cell (chat-api.md; review-findings B3, B6, B8, B11, B17).
// Every cell gets a fresh dialog, so successful writes in one cell cannot change another.
//
// Callers:
// - participant: added by the host; sends the dialog's matching scope header;
// - former:      joined through scope matching, sent a message, then left; sends no scope header
//                (with the matching header they would simply be a potential participant again);
// - potential:   scope header matches the dialog, never joined;
// - stranger:    scope header that matches nothing.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { startTestServer } from '../helpers/server.js';
import { client, type Api, type ApiResponse } from '../helpers/api.js';

type Obj = Record<string, any>;
type Scope = Record<string, string[]>;
type Role = 'participant' | 'former' | 'potential' | 'stranger';
const ROLES: Role[] = ['participant', 'former', 'potential', 'stranger'];

const srv = await startTestServer();
t.teardown(() => srv.close());
const api: Api = client(srv.url);
const RUN = randomBytes(4).toString('hex');
/** Every message sent in a matrix dialog contains this; non-participants must never see it. */
const MARKER = `SECRETMARK${RUN}`;

interface Cell {
  i: number;
  dialogId: string;
  objectType: string;
  objectId: string;
  tenant: string;
  /** The owner's message (contains the marker). */
  markerMsg: string;
  /** A message the caller sent themself (participant and former only). */
  ownMsg: string | null;
  caller: string;
  scope: Scope | undefined;
  /** Contact details of the people in the dialog other than the caller. */
  secrets: string[];
}

async function ok(r: Promise<ApiResponse>, status: number, what: string): Promise<ApiResponse> {
  const res = await r;
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.text}`);
  return res;
}

let counter = 0;
async function setup(role: Role): Promise<Cell> {
  const i = counter++;
  const tenant = `mx-t-${i}`;
  const objectType = 'mx';
  const objectId = `mx-obj-${i}`;
  const owner = `mx-own-${i}`;
  const ownerEmail = `owner${i}@secret-${RUN}.example`;
  const ownerPhone = `+7${RUN.replace(/\D/g, '')}${i}9`.slice(0, 20);
  const created = await ok(api('POST', '/api/v1/management/dialogs', {
    body: {
      object_type: objectType, object_id: objectId, title: `Matrix ${i}`,
      participants: [{ user_id: owner, display_name: 'Owner', company: 'OwnCo', email: ownerEmail, phone: ownerPhone }],
      access_scopes: [{ scope_level0: [tenant] }],
    },
  }), 200, 'create');
  const dialogId: string = created.json.data.id;
  const sendAs = async (user: string, content: string) =>
    (await ok(api('POST', `/api/v1/dialogs/${dialogId}/messages`, { user, body: { content } }), 200, 'send')).json.data.id as string;
  const markerMsg = await sendAs(owner, `<p>${MARKER} owner ${i}</p>`);

  const caller = `mx-${role}-${i}`;
  let ownMsg: string | null = null;
  let scope: Scope | undefined;
  if (role === 'participant') {
    await ok(api('POST', `/api/v1/management/dialogs/${dialogId}/participants`, {
      body: { user_id: caller, display_name: 'Pat', email: `pat${i}@member.example`, phone: '+100' },
    }), 201, 'add participant');
    ownMsg = await sendAs(caller, `${MARKER} participant ${i}`);
    scope = { scope_level0: [tenant] };
  } else if (role === 'former') {
    await ok(api('POST', `/api/v1/dialogs/${dialogId}/join`, {
      user: caller, scope: { scope_level0: [tenant] }, body: { display_name: 'Fay', company: 'FCo', email: `fay${i}@former.example` },
    }), 200, 'join');
    ownMsg = await sendAs(caller, `${MARKER} former ${i}`);
    await ok(api('POST', `/api/v1/dialogs/${dialogId}/leave`, { user: caller }), 200, 'leave');
    scope = undefined;
  } else if (role === 'potential') {
    scope = { scope_level0: [tenant] };
  } else {
    scope = { scope_level0: [`nomatch-${i}`], scope_level1: ['x'], scope_level2: ['y'] };
  }
  return { i, dialogId, objectType, objectId, tenant, markerMsg, ownMsg, caller, scope, secrets: [ownerEmail, ownerPhone] };
}

interface Expect {
  status: number;
  /** Error code and message; absent for successes. */
  code?: string;
  message?: string;
  /** Extra assertions on a success body. */
  check?: (t: Test, r: ApiResponse, c: Cell) => void;
}
interface Endpoint {
  name: string;
  call: (c: Cell) => Promise<ApiResponse>;
  expect: Record<Role, Expect>;
}

const E = (status: number, code: string, message: string): Expect => ({ status, code, message });
const JOIN_FIRST = 'Not a participant. Join the dialog first.';
const notParticipantSetting = E(403, 'NOT_PARTICIPANT', 'Not a participant');
const joinFirst = E(403, 'FORBIDDEN', JOIN_FIRST);
const d = (c: Cell) => `/api/v1/dialogs/${c.dialogId}`;
const m = (c: Cell, id: string) => `/api/v1/dialogs/${c.dialogId}/messages/${id}`;
/** The message a caller would try to change: their own when they have one, else the owner's. */
const target = (c: Cell) => c.ownMsg ?? c.markerMsg;
const req = (method: string, path: string, c: Cell, body?: unknown) => api(method, path, { user: c.caller, scope: c.scope, body });

const settingRow = (action: string, status: string): Endpoint => ({
  name: action,
  call: (c) => req('POST', `${d(c)}/${action}`, c),
  expect: {
    participant: { status: 200, check: (t, r) => t.equal(r.text, `{"status":"${status}"}`) },
    former: notParticipantSetting, potential: notParticipantSetting, stranger: notParticipantSetting,
  },
});

const ENDPOINTS: Endpoint[] = [
  {
    name: 'get dialog',
    call: (c) => req('GET', d(c), c),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.id, c.dialogId);
          t.equal(r.json.data.i_am_participant, true);
          t.equal(r.json.data.can_join, false);
          t.equal(r.json.data.participants_count, 2);
        },
      },
      former: E(403, 'SCOPE_MISMATCH', 'No access to this dialog'),
      potential: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.id, c.dialogId);
          t.equal(r.json.data.i_am_participant, false);
          t.equal(r.json.data.can_join, true);
          t.notOk('participants' in r.json.data);
          t.notOk('participants_count' in r.json.data);
        },
      },
      stranger: E(403, 'SCOPE_MISMATCH', 'No access to this dialog'),
    },
  },
  {
    name: 'get dialog by object',
    call: (c) => req('GET', `/api/v1/dialogs/by-object/${c.objectType}/${c.objectId}`, c),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.id, c.dialogId);
          t.equal(r.json.data.i_am_participant, true);
          t.ok(r.json.data.last_message.content.includes(MARKER), 'participants see the last message');
          t.notOk('unread_count' in r.json.data);
        },
      },
      former: { status: 200, check: (t, r) => t.equal(r.text, '{"data":null}') },
      potential: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.id, c.dialogId);
          t.equal(r.json.data.i_am_participant, false);
          t.equal(r.json.data.can_join, true);
          t.notOk('last_message' in r.json.data);
        },
      },
      stranger: { status: 200, check: (t, r) => t.equal(r.text, '{"data":null}') },
    },
  },
  {
    name: 'list dialogs by object',
    call: (c) => req('GET', `/api/v1/dialogs/by-object/${c.objectType}/${c.objectId}/list`, c),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.same(r.json.data.map((x: Obj) => x.id), [c.dialogId]);
          t.equal(r.json.data[0].i_am_participant, true);
          t.equal(r.json.data[0].unread_count, 0);
        },
      },
      former: { status: 200, check: (t, r) => t.equal(r.text, '{"data":[]}') },
      potential: {
        status: 200,
        check: (t, r, c) => {
          t.same(r.json.data.map((x: Obj) => x.id), [c.dialogId]);
          t.equal(r.json.data[0].can_join, true);
          t.notOk('last_message' in r.json.data[0]);
          t.notOk('unread_count' in r.json.data[0]);
        },
      },
      stranger: { status: 200, check: (t, r) => t.equal(r.text, '{"data":[]}') },
    },
  },
  {
    name: 'join',
    call: (c) => req('POST', `${d(c)}/join`, c, { display_name: 'Joiner', company: 'JCo' }),
    expect: {
      participant: E(400, 'BAD_REQUEST', 'Already a participant'),
      former: E(400, 'BAD_REQUEST', 'X-Scope-Config header required'),
      potential: { status: 200, check: (t, r, c) => t.equal(r.text, `{"dialog_id":"${c.dialogId}","status":"joined"}`) },
      stranger: E(403, 'FORBIDDEN', 'No access to join this dialog'),
    },
  },
  {
    name: 'leave',
    call: (c) => req('POST', `${d(c)}/leave`, c),
    expect: {
      participant: { status: 200, check: (t, r) => t.equal(r.text, '{"status":"left"}') },
      former: notParticipantSetting, potential: notParticipantSetting, stranger: notParticipantSetting,
    },
  },
  settingRow('archive', 'archived'),
  settingRow('unarchive', 'unarchived'),
  settingRow('pin', 'pinned'),
  settingRow('unpin', 'unpinned'),
  {
    name: 'notifications',
    call: (c) => req('POST', `${d(c)}/notifications`, c, { enabled: false }),
    expect: {
      participant: { status: 200, check: (t, r) => t.equal(r.text, '{"status":"disabled"}') },
      former: notParticipantSetting, potential: notParticipantSetting, stranger: notParticipantSetting,
    },
  },
  {
    name: 'mark as read',
    call: (c) => req('POST', `${d(c)}/read`, c, { last_read_message_id: c.markerMsg }),
    expect: {
      participant: { status: 200, check: (t, r) => t.equal(r.text, '{"success":true}') },
      former: E(403, 'FORBIDDEN', 'Not a participant'),
      potential: E(403, 'FORBIDDEN', 'Not a participant'),
      stranger: E(403, 'FORBIDDEN', 'Not a participant'),
    },
  },
  {
    name: 'list participants',
    call: (c) => req('GET', `${d(c)}/participants`, c),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.same(r.json.data.map((x: Obj) => x.user_id), [`mx-own-${c.i}`, c.caller]);
          t.equal(r.json.data[0].email, c.secrets[0], 'participants see contact details');
        },
      },
      former: E(403, 'FORBIDDEN', 'Not a participant'),
      potential: {
        status: 200,
        check: (t, r, c) => {
          t.same(r.json.data.map((x: Obj) => x.user_id), [`mx-own-${c.i}`]);
          t.strictSame([r.json.data[0].email, r.json.data[0].phone, r.json.data[0].last_read_message_id], [null, null, null]);
        },
      },
      stranger: E(403, 'FORBIDDEN', 'Not a participant'),
    },
  },
  {
    name: 'list messages',
    call: (c) => req('GET', `${d(c)}/messages`, c),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => t.ok(r.json.data.messages.some((x: Obj) => x.id === c.markerMsg)),
      },
      former: joinFirst, potential: joinFirst, stranger: joinFirst,
    },
  },
  {
    name: 'send message',
    call: (c) => req('POST', `${d(c)}/messages`, c, { content: 'hello from the matrix' }),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.sender_id, c.caller);
          t.equal(r.json.data.content, 'hello from the matrix');
        },
      },
      former: joinFirst, potential: joinFirst, stranger: joinFirst,
    },
  },
  {
    name: 'get message',
    call: (c) => req('GET', m(c, c.markerMsg), c),
    expect: {
      participant: { status: 200, check: (t, r, c) => t.equal(r.json.data.id, c.markerMsg) },
      former: joinFirst, potential: joinFirst, stranger: joinFirst,
    },
  },
  {
    // The former participant edits their own message (B8); the others can only try the owner's.
    name: 'edit message',
    call: (c) => req('PUT', m(c, target(c)), c, { content: 'edited by the matrix' }),
    expect: {
      participant: {
        status: 200,
        check: (t, r, c) => {
          t.equal(r.json.data.id, c.ownMsg);
          t.equal(r.json.data.content, 'edited by the matrix');
        },
      },
      former: joinFirst,
      potential: E(403, 'NOT_MESSAGE_AUTHOR', 'Can only edit own messages'),
      stranger: E(403, 'NOT_MESSAGE_AUTHOR', 'Can only edit own messages'),
    },
  },
  {
    name: 'delete message',
    call: (c) => req('DELETE', m(c, target(c)), c),
    expect: {
      participant: { status: 204, check: (t, r) => t.equal(r.text, '') },
      former: joinFirst,
      potential: E(403, 'NOT_MESSAGE_AUTHOR', 'Can only delete own messages'),
      stranger: E(403, 'NOT_MESSAGE_AUTHOR', 'Can only delete own messages'),
    },
  },
];

for (const ep of ENDPOINTS) {
  t.test(ep.name, async (t) => {
    for (const role of ROLES) {
      const c = await setup(role);
      const want = ep.expect[role];
      const before = await srv.sql('SELECT id, content, last_edited_at FROM messages WHERE dialog_id = $1 ORDER BY id', [c.dialogId]);
      const r = await ep.call(c);
      t.equal(r.status, want.status, `${ep.name} as ${role}: status`);
      if (want.code !== undefined) {
        t.strictSame(r.json, { error: { code: want.code, message: want.message } }, `${ep.name} as ${role}: error body`);
        // A refused request changes no message.
        const after = await srv.sql('SELECT id, content, last_edited_at FROM messages WHERE dialog_id = $1 ORDER BY id', [c.dialogId]);
        t.strictSame(after.rows, before.rows, `${ep.name} as ${role}: messages unchanged`);
      } else {
        want.check?.(t, r, c);
      }
      if (role !== 'participant') {
        t.notOk(r.text.includes(MARKER), `${ep.name} as ${role}: no message content in the response`);
        for (const s of c.secrets) t.notOk(r.text.includes(s), `${ep.name} as ${role}: no contact details of others`);
      }
    }
  });
}

// The marker check is only meaningful if participants do get the content.
t.test('the marker is visible to participants (control)', async (t) => {
  const c = await setup('participant');
  const r = await req('GET', `${d(c)}/messages`, c);
  t.equal(r.status, 200);
  t.ok(r.text.includes(MARKER));
  const p = await req('GET', `${d(c)}/participants`, c);
  t.ok(p.text.includes(c.secrets[0]) && p.text.includes(c.secrets[1]));
});

// Unknown dialogs: the same endpoints answer as the spec says for a missing dialog.
t.test('unknown dialog', async (t) => {
  const c = await setup('participant');
  const ghost: Cell = { ...c, dialogId: '00000000-0000-7000-8000-0000000000aa', objectId: 'mx-ghost' };
  const expectations: [string, () => Promise<ApiResponse>, number, string, string][] = [
    ['get dialog', () => req('GET', d(ghost), ghost), 404, 'DIALOG_NOT_FOUND', 'Dialog not found'],
    ['join', () => req('POST', `${d(ghost)}/join`, ghost, { display_name: 'J', company: '' }), 404, 'DIALOG_NOT_FOUND', 'Dialog not found'],
    ['leave', () => req('POST', `${d(ghost)}/leave`, ghost), 404, 'DIALOG_NOT_FOUND', 'Dialog not found'],
    ['archive', () => req('POST', `${d(ghost)}/archive`, ghost), 403, 'NOT_PARTICIPANT', 'Not a participant'],
    ['unarchive', () => req('POST', `${d(ghost)}/unarchive`, ghost), 403, 'NOT_PARTICIPANT', 'Not a participant'],
    ['pin', () => req('POST', `${d(ghost)}/pin`, ghost), 403, 'NOT_PARTICIPANT', 'Not a participant'],
    ['unpin', () => req('POST', `${d(ghost)}/unpin`, ghost), 403, 'NOT_PARTICIPANT', 'Not a participant'],
    ['notifications', () => req('POST', `${d(ghost)}/notifications`, ghost, { enabled: true }), 403, 'NOT_PARTICIPANT', 'Not a participant'],
    ['read', () => req('POST', `${d(ghost)}/read`, ghost, { last_read_message_id: c.markerMsg }), 404, 'NOT_FOUND', 'Dialog not found'],
    ['participants', () => req('GET', `${d(ghost)}/participants`, ghost), 403, 'FORBIDDEN', 'Not a participant'],
    ['list messages', () => req('GET', `${d(ghost)}/messages`, ghost), 403, 'FORBIDDEN', JOIN_FIRST],
    ['send', () => req('POST', `${d(ghost)}/messages`, ghost, { content: 'x' }), 404, 'DIALOG_NOT_FOUND', 'Dialog not found'],
    ['edit', () => req('PUT', m(ghost, c.markerMsg), ghost, { content: 'x' }), 404, 'MESSAGE_NOT_FOUND', 'Message not found'],
    ['delete', () => req('DELETE', m(ghost, c.markerMsg), ghost), 404, 'MESSAGE_NOT_FOUND', 'Message not found'],
  ];
  for (const [name, call, status, code, message] of expectations) {
    const r = await call();
    t.equal(r.status, status, `${name}: status`);
    t.strictSame(r.json, { error: { code, message } }, `${name}: body`);
  }
  const byObj = await req('GET', `/api/v1/dialogs/by-object/mx/mx-ghost`, ghost);
  t.equal(byObj.text, '{"data":null}');
  const byObjList = await req('GET', `/api/v1/dialogs/by-object/mx/mx-ghost/list`, ghost);
  t.equal(byObjList.text, '{"data":[]}');
});
