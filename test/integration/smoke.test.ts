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
