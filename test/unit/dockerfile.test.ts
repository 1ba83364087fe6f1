// No Docker engine here: the Dockerfile is parsed and its properties checked instead.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | null;
  body: Instruction[];
}

/** Instructions in order: comments dropped, backslash continuations joined. */
function parseDockerfile(src: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let cur = '';
  for (const raw of src.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push((cur + line).trim());
    cur = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const ins = { op: m[1].toUpperCase(), args: m[2] };
    if (ins.op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      const image = f[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args.get(a ?? b) ?? '');
      stages.push({ from: image, name: f[2] ?? null, body: [] });
    } else if (stages.length === 0 && ins.op === 'ARG') {
      const [k, v = ''] = ins.args.split('=');
      args.set(k, v);
    } else if (stages.length > 0) {
      stages[stages.length - 1].body.push(ins);
    }
  }
  return { args, stages };
}

const dockerfile = read('Dockerfile');
const { stages } = parseDockerfile(dockerfile);
const build = stages[0];
const runtime = stages[stages.length - 1];
const idx = (s: Stage, pred: (i: Instruction) => boolean) => s.body.findIndex(pred);
const isRun = (re: RegExp) => (i: Instruction) => i.op === 'RUN' && re.test(i.args);
/** A COPY's sources: every argument but the flags and the destination. */
const sources = (i: Instruction) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1).map((a) => a.replace(/^\.\//, '').replace(/\/$/, '') || '.');
const copiesManifests = (i: Instruction) =>
  i.op === 'COPY' && !i.args.includes('--from') && (/\bpackage\*\.json\b/.test(i.args) || (/\bpackage\.json\b/.test(i.args) && /\bpackage-lock\.json\b/.test(i.args)));

t.test('multi-stage: a build stage and a slim glibc runtime', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`);
  t.ok(build.name, 'the build stage is named');
  t.equal(runtime.from, 'node:20-bookworm-slim');
  for (const s of stages) {
    t.notMatch(s.from, /alpine/i, `${s.from}: uWebSockets.js needs glibc`);
    t.match(s.from, /^node:20-/, `${s.from}: Node 20`);
  }
  const instructions = dockerfile.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  t.notMatch(instructions, /alpine/i, 'no Alpine image anywhere (ARG defaults included)');
});

t.test('build stage: manifests and npm ci before the sources, then npm run build', async (t) => {
  const manifests = idx(build, copiesManifests);
  const ci = idx(build, isRun(/\bnpm ci\b/));
  const firstSource = idx(build, (i) => i.op === 'COPY' && sources(i).some((s) => s === 'src' || s === 'migrations' || s === '.'));
  const compile = idx(build, isRun(/\bnpm run build\b/));
  t.ok(manifests >= 0, 'package*.json copied');
  t.ok(ci > manifests, 'npm ci after the manifests');
  t.ok(firstSource > ci, 'sources copied only after npm ci (the dependency layer stays cached)');
  t.ok(compile > firstSource, 'npm run build after the sources');
  t.notMatch(build.body[ci].args, /--omit=dev/, 'the build needs the dev dependencies (typescript)');
  t.notOk(build.body.some((i) => i.op === 'COPY' && sources(i).includes('.')), 'no COPY . (would bust the cache on any change)');
});

t.test('runtime stage: production dependencies, compiled output only, non-root, node dist/src/main.js', async (t) => {
  const manifests = idx(runtime, copiesManifests);
  const ci = idx(runtime, isRun(/\bnpm ci\b.*--omit=dev/));
  const dist = idx(runtime, (i) => i.op === 'COPY' && i.args.includes(`--from=${build.name}`) && /\/dist\b/.test(i.args));
  t.ok(manifests >= 0 && ci > manifests, 'npm ci --omit=dev after the manifests');
  t.ok(dist > ci, 'dist copied from the build stage after the dependency layer');
  t.notOk(runtime.body.some((i) => i.op === 'COPY' && !i.args.includes('--from') && sources(i).some((s) => ['src', 'test', 'migrations', '.'].includes(s))), 'no sources or tests in the runtime');
  t.notOk(runtime.body.some(isRun(/\bnpm (run build|install)\b|\btsc\b/)), 'nothing is compiled or installed ad hoc at runtime');

  const users = runtime.body.filter((i) => i.op === 'USER');
  t.equal(users.length, 1);
  const user = users[0].args.split(':')[0];
  t.notOk(['root', '0', ''].includes(user), `USER ${user} is not root`);
  t.ok(idx(runtime, (i) => i.op === 'USER') < idx(runtime, (i) => i.op === 'CMD'), 'USER before CMD');

  const cmd = runtime.body.filter((i) => i.op === 'CMD');
  t.equal(cmd.length, 1);
  t.same(JSON.parse(cmd[0].args), ['node', 'dist/src/main.js'], 'exec form: node is PID 1 and gets SIGTERM');
  t.notOk(runtime.body.some((i) => i.op === 'ENTRYPOINT'), 'no ENTRYPOINT: the chart passes command and args');
  t.ok(runtime.body.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args)));

  // dist/src/main.js is what `npm run build` emits for src/main.ts.
  const pkg = JSON.parse(read('package.json'));
  const tsconfig = JSON.parse(read('tsconfig.json'));
  const buildConfig = JSON.parse(read('tsconfig.build.json'));
  t.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json');
  t.equal(tsconfig.compilerOptions.outDir, 'dist');
  t.equal(tsconfig.compilerOptions.rootDir, '.');
  t.ok(buildConfig.include.includes('src') && buildConfig.include.includes('migrations'));
  t.equal(pkg.scripts['start:prod'], 'node dist/src/main.js');
});

t.test('.dockerignore keeps dependencies, tests, VCS data, build output and env files out', async (t) => {
  const patterns = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const p of ['node_modules', 'test', '.git', 'dist', '.tap', '.env']) t.ok(patterns.includes(p), `${p} is ignored`);
  t.ok(patterns.some((p) => p === '.env.*' || p === '*.env' || p === '**/.env*'), 'env variants are ignored');
  // What the build copies must stay in the context.
  const copied = build.body.filter((i) => i.op === 'COPY' && !i.args.includes('--from')).flatMap(sources);
  t.ok(copied.length >= 4);
  for (const base of copied) {
    t.notOk(patterns.some((p) => p === base || (p.includes('*') && new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`).test(base))), `${base} is in the build context`);
  }
});
