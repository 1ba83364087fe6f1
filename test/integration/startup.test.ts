import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the real entry point and collects how it ended. */
function runMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b) => (output += b));
    child.stderr.on('data', (b) => (output += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

t.test('refuses to run on the uWebSockets.js JavaScript fallback', async (t) => {
  const r = await runMain({ UWS_USE_FALLBACK: '1' });
  t.equal(r.code, 1);
  t.match(r.output, /JavaScript fallback instead of the native binary/);
});

t.test('refuses to start on a bad variable and names it', async (t) => {
  const r = await runMain({ RATE_LIMIT_ENABLED: 'yes' });
  t.equal(r.code, 2);
  t.match(r.output, /RATE_LIMIT_ENABLED must be one of true, 1, false, 0/);
});

t.test('production refuses an open Management API unless explicitly allowed', async (t) => {
  const r = await runMain({ NODE_ENV: 'production', JWT_AUTH_ENABLED: 'true', JWT_SECRET: 'x'.repeat(32) });
  t.equal(r.code, 2);
  t.match(r.output, /ADMIN_API_TOKEN must be set in production/);
  t.notMatch(r.output, /x{32}/, 'the secret is never printed');
});
