import t from 'tap';
import { startTestServer } from '../helpers/server.js';
import { client, createDialog } from '../helpers/api.js';

t.test('service answers health and a full send/list round trip', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const api = client(srv.url);

  const health = await api('GET', '/health');
  t.equal(health.status, 200);
  t.same(health.json, { status: 'ok', version: health.json.version });
  t.match(health.json.version, /^\d+\.\d+\.\d+/);

  const ready = await api('GET', '/health/ready');
  t.equal(ready.status, 200);
  t.equal(ready.json.status, 'ready');
  t.same(ready.json.checks, { postgres: true, nats: true, partitions: true, jetstream: true }, 'each dependency reported by name');

  const id = await createDialog(api, { participants: [{ user_id: 'a', display_name: 'A' }, { user_id: 'b', display_name: 'B' }] });
  const sent = await api('POST', `/api/v1/dialogs/${id}/messages`, { user: 'a', body: { content: 'hello' } });
  t.equal(sent.status, 200);
  t.equal(sent.json.data.content, 'hello');

  const list = await api('GET', '/api/v1/dialogs', { user: 'b' });
  t.equal(list.status, 200);
  t.equal(list.json.data.length, 1);
  t.equal(list.json.data[0].unread_count, 1);
  t.equal(list.json.data[0].last_message.content, 'hello');
});

t.test('readiness names Redis and S3 when configured, and a dead Redis does not take the process out of rotation', async (t) => {
  const srv = await startTestServer({ REDIS_URL: 'redis://127.0.0.1:1', MTCHAT_DEV_S3: 'true' });
  t.teardown(() => srv.close());
  const ready = await client(srv.url)('GET', '/health/ready');
  t.equal(ready.status, 200);
  t.same(ready.json, { status: 'ready', checks: { postgres: true, nats: true, partitions: true, jetstream: true, redis: false, s3: true } });
});
