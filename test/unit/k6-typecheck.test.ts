// k6 cannot be installed here: the scripts are type-checked against @types/k6 instead, and
// bundled the way `npm run loadtest:bundle` does, to show they need nothing but k6's own modules.
import t from 'tap';
import ts from 'typescript';
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K6 = join(ROOT, 'loadtest/k6');
const CONFIG = join(K6, 'tsconfig.json');

function loadConfig(): ts.ParsedCommandLine {
  const raw = ts.readConfigFile(CONFIG, ts.sys.readFile);
  if (raw.error) throw new Error(ts.flattenDiagnosticMessageText(raw.error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(raw.config, ts.sys, dirname(CONFIG));
}
const format = (ds: readonly ts.Diagnostic[]) => ds.map((d) => {
  const where = d.file ? `${d.file.fileName.replace(ROOT, '')}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1} ` : '';
  return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
});

const parsed = loadConfig();
const program = ts.createProgram(parsed.fileNames, parsed.options);

t.test('tsc -p loadtest/k6/tsconfig.json --noEmit reports nothing', async (t) => {
  t.same(format(parsed.errors), [], 'the tsconfig itself is valid');
  t.equal(parsed.options.noEmit, true);
  t.equal(parsed.options.strict, true);
  t.same(parsed.options.types, ['k6']);
  const roots = parsed.fileNames.map((f) => f.replace(K6 + '/', '')).sort();
  t.same(roots, ['lib/common.ts', 'lib/msgpack.ts', 'rest.ts', 'ws.ts']);
  // The k6 module declarations really are what the scripts resolved against.
  const k6Files = program.getSourceFiles().map((f) => f.fileName).filter((f) => f.includes('/@types/k6/'));
  for (const m of ['websockets', 'http', 'metrics', 'timers', 'execution', 'options']) {
    t.ok(k6Files.some((f) => f.endsWith(`/@types/k6/${m}/index.d.ts`)), `k6/${m} types are in the program`);
  }
  t.same(format(ts.getPreEmitDiagnostics(program)), [], 'zero diagnostics');
});

t.test('the check is not vacuous: a misuse of k6/websockets is reported', async (t) => {
  const bad = join(K6, '__misuse__.ts');
  const source = [
    "import { WebSocket } from 'k6/websockets';",
    "const ws = new WebSocket('ws://x', null, { headers: { a: 'b' } });",
    'ws.send(42);', // numbers are not frames
    "ws.binaryType = 'text';",
  ].join('\n');
  const host = ts.createCompilerHost(parsed.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === bad ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === bad || fileExists(name);
  const p = ts.createProgram([...parsed.fileNames, bad], parsed.options, host, program);
  const diags = format(ts.getPreEmitDiagnostics(p, p.getSourceFile(bad)));
  t.equal(diags.length, 2, diags.join('\n'));
  t.match(diags[0], /__misuse__\.ts:3 Argument of type 'number' is not assignable/);
  t.match(diags[1], /__misuse__\.ts:4 Type '"text"' is not assignable to type 'BinaryType'/);
});

t.test('each script bundles with its msgpack encoder and imports only k6 modules', async (t) => {
  const out = await build({
    entryPoints: [join(K6, 'rest.ts'), join(K6, 'ws.ts')],
    bundle: true, format: 'esm', platform: 'neutral', target: 'es2020', write: false,
    external: ['k6', 'k6/*'], outdir: '/bundle', logLevel: 'silent',
  });
  t.same(out.errors, []);
  const files = new Map(out.outputFiles.map((f) => [f.path.replace('/bundle/', ''), f.text]));
  t.same([...files.keys()].sort(), ['rest.js', 'ws.js']);
  for (const [name, js] of files) {
    const imports = [...js.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    t.ok(imports.length > 0);
    t.same(imports.filter((m) => m !== 'k6' && !m.startsWith('k6/')), [], `${name}: only k6 modules are left to import`);
    t.notMatch(js, /\brequire\(/, `${name}: no CommonJS left`);
  }
  const ws = files.get('ws.js')!;
  t.match(ws, '"mtchat.v1.msgpack"', 'the socket asks for the msgpack subprotocol');
  t.match(ws, /function encode\(/, 'the encoder is in the bundle');
  t.match(ws, /function decode\(/, 'the decoder is in the bundle');
  t.match(ws, /binaryType = "arraybuffer"/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.match(pkg.scripts['loadtest:bundle'], /^esbuild loadtest\/k6\/rest\.ts loadtest\/k6\/ws\.ts --bundle /);
});

t.test('thresholds: p99 and error rate in both scripts', async (t) => {
  for (const f of ['rest.ts', 'ws.ts']) {
    const src = readFileSync(join(K6, f), 'utf8');
    t.match(src, /thresholds: \{/, `${f}: has thresholds`);
    t.match(src, /\[`p\(99\)<\$\{P99_MS/, `${f}: a p99 threshold`);
    t.match(src, /\[`rate<\$\{MAX_ERROR_RATE\}`\]/, `${f}: an error-rate threshold`);
  }
  const rest = readFileSync(join(K6, 'rest.ts'), 'utf8');
  for (const route of ['POST /api/v1/management/dialogs', 'GET /api/v1/dialogs', 'POST /api/v1/dialogs/:dialog_id/messages']) {
    t.ok(rest.includes(route) || readFileSync(join(K6, 'lib/common.ts'), 'utf8').includes(route), `rest drives ${route}`);
  }
  const ws = readFileSync(join(K6, 'ws.ts'), 'utf8');
  t.match(ws, "from 'k6/websockets'");
  t.match(ws, /ws\.send\(encode\(\{ type: 'send', id, dialog_id: dialog\.id, content: .*, client_msg_id: /);
});
