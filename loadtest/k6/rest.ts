// REST load: the host platform creates dialogs (Management API) while users list their dialogs
// and send messages (Chat API). Run: k6 run loadtest/k6/rest.ts -e BASE_URL=… [-e ADMIN_TOKEN=…]
// [-e JWT_SECRET=…]. Thresholds fail the run on p99 latency and on the error rate.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { BASE_URL, DIALOGS, MAX_ERROR_RATE, P99_MS, createDialog, createDialogs, userAuth, type Dialog } from './lib/common.ts';

const errors = new Rate('mtchat_errors');
const sendDuration = new Trend('mtchat_send_duration', true);
const listDuration = new Trend('mtchat_list_duration', true);

const RATE = Number(__ENV.RATE ?? 200);
const DURATION = __ENV.DURATION ?? '1m';

export const options: Options = {
  setupTimeout: '5m',
  scenarios: {
    // The host platform opening dialogs for business objects.
    management: {
      executor: 'constant-arrival-rate', exec: 'management', rate: Math.max(1, Math.round(RATE / 20)), timeUnit: '1s',
      duration: DURATION, preAllocatedVUs: 5, maxVUs: 50,
    },
    // Users: list dialogs, then send into one of them.
    chat: {
      executor: 'constant-arrival-rate', exec: 'chat', rate: RATE, timeUnit: '1s',
      duration: DURATION, preAllocatedVUs: 20, maxVUs: 200,
    },
  },
  thresholds: {
    http_req_failed: [`rate<${MAX_ERROR_RATE}`],
    mtchat_errors: [`rate<${MAX_ERROR_RATE}`],
    checks: [`rate>${1 - MAX_ERROR_RATE}`],
    'http_req_duration{scenario:chat}': [`p(99)<${P99_MS}`],
    'http_req_duration{scenario:management}': [`p(99)<${P99_MS}`],
    mtchat_send_duration: [`p(99)<${P99_MS}`],
    mtchat_list_duration: [`p(99)<${P99_MS}`],
  },
};

export function setup(): { dialogs: Dialog[] } {
  return { dialogs: createDialogs(DIALOGS) };
}

export function management(): void {
  // Fresh object ids past the setup range, unique across VUs and iterations.
  const d = createDialog(DIALOGS + 1_000_000 + exec.scenario.iterationInTest);
  errors.add(d === undefined);
  check(d, { 'management create → 200 with an id': (x) => x !== undefined });
}

export function chat(data: { dialogs: Dialog[] }): void {
  const i = exec.scenario.iterationInTest;
  const dialog = data.dialogs[i % data.dialogs.length];
  const user = dialog.users[Math.floor(i / data.dialogs.length) % dialog.users.length];
  const auth = userAuth(user);
  const q = auth.query ? `?${auth.query}` : '';

  const list = http.get(`${BASE_URL}/api/v1/dialogs${q}`, { headers: auth.headers, tags: { name: 'GET /api/v1/dialogs' } });
  listDuration.add(list.timings.duration);
  const listed = check(list, {
    'list dialogs → 200': (r) => r.status === 200,
    'list dialogs → the dialog is there': (r) => r.status === 200 && (r.json('data.#.id') as string[]).includes(dialog.id),
  });
  errors.add(!listed);

  const sent = http.post(
    `${BASE_URL}/api/v1/dialogs/${dialog.id}/messages${q}`,
    JSON.stringify({ content: `<p>k6 message ${i}</p>`, client_msg_id: `k6-${exec.vu.idInTest}-${i}` }),
    { headers: { ...auth.headers, 'Content-Type': 'application/json' }, tags: { name: 'POST /api/v1/dialogs/:dialog_id/messages' } },
  );
  sendDuration.add(sent.timings.duration);
  const ok = check(sent, {
    'send → 200': (r) => r.status === 200,
    'send → message in the dialog': (r) => r.status === 200 && r.json('data.dialog_id') === dialog.id,
  });
  errors.add(!ok);
}
