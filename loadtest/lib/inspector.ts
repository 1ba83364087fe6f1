// Reads a server's heap from outside through its inspector port (node --inspect=127.0.0.1:<port>):
// forces a full GC and reports heap usage, so idle-socket memory can be told apart from garbage.
import WebSocket from 'ws';

export interface HeapUsage {
  usedSize: number;
  totalSize: number;
}

export async function collectGarbage(port: number): Promise<HeapUsage> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(list[0].webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const call = (method: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const my = ++id;
      const onMsg = (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown>; error?: unknown };
        if (m.id !== my) return;
        ws.off('message', onMsg);
        if (m.error) reject(new Error(JSON.stringify(m.error)));
        else resolve(m.result ?? {});
      };
      ws.on('message', onMsg);
      ws.send(JSON.stringify({ id: my, method }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const u = await call('Runtime.getHeapUsage');
    return { usedSize: Number(u.usedSize), totalSize: Number(u.totalSize) };
  } finally {
    ws.close();
  }
}
