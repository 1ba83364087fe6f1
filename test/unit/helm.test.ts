// Static checks of the Helm chart (no helm binary here): values against the strict schema,
// every template reference resolvable, the kinds and wiring the deployment needs, and the
// dashboard and alerts querying only metrics that exist.
import t, { type Test } from 'tap';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml, parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'helm/mtchat');
const TEMPLATES = join(CHART, 'templates');
const read = (p: string) => readFileSync(p, 'utf8');

const values = parseYaml(read(join(CHART, 'values.yaml'))) as Record<string, any>;
const schema = JSON.parse(read(join(CHART, 'values.schema.json')));
const templateFiles = readdirSync(TEMPLATES).sort();
const templates = new Map(templateFiles.map((f) => [f, read(join(TEMPLATES, f))]));
const manifestFiles = templateFiles.filter((f) => f.endsWith('.yaml'));
const metricList = JSON.parse(read(join(CHART, 'metric-names.json')));
const metricTypes = new Map<string, string>(
  [...Object.entries(metricList.metrics), ...Object.entries(metricList.defaultMetrics)]
    .filter(([name]) => !name.startsWith('$'))
    .map(([name, def]) => [name, (def as { type: string }).type]),
);

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  return ajv.compile(schema);
}

function deepMerge(base: any, over: any): any {
  if (over === null || typeof over !== 'object' || Array.isArray(over)) return over;
  const out: Record<string, any> = { ...(base && typeof base === 'object' && !Array.isArray(base) ? base : {}) };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(out[k], v);
  return out;
}

/** Value at a dotted path, or a marker when any segment is missing. */
const MISSING = Symbol('missing');
function at(obj: any, path: string[]): unknown {
  let cur = obj;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !(seg in cur)) return MISSING;
    cur = cur[seg];
  }
  return cur;
}

/** Template actions with their trimmed bodies, comments dropped. */
function actions(src: string): string[] {
  return [...src.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)].map((m) => m[1]).filter((a) => !a.startsWith('/*'));
}

/**
 * Crude rendering for structure checks: whole-line actions vanish, inline ones become a scalar.
 * Not Helm, but it makes every manifest's static YAML parseable and its kinds readable.
 */
function crudeRender(src: string): string {
  return src
    .split('\n')
    .filter((l) => !/^\s*\{\{[\s\S]*\}\}\s*$/.test(l) || /:\s*\{\{/.test(l) || /^\s*-\s/.test(l) || /\}\}\s*:/.test(l))
    .map((l) => l.replace(/\{\{-?[\s\S]*?-?\}\}/g, 'x0'))
    .join('\n');
}

function manifestDocs(t: Test, file: string) {
  return parseAllDocuments(crudeRender(templates.get(file)!)).map((d) => {
    t.same(d.errors.map((e) => e.message), [], `${file} parses as YAML once its actions are stubbed`);
    return d.toJS() as Record<string, any> | null;
  }).filter((d): d is Record<string, any> => d !== null);
}

t.test('values.yaml validates against values.schema.json', async (t) => {
  const validate = validator();
  const ok = validate(values);
  t.same(validate.errors ?? [], [], 'no schema errors');
  t.equal(ok, true);
  t.equal(schema.additionalProperties, false, 'unknown top-level keys are refused');
  t.equal(schema.properties.edge.additionalProperties, false);
  t.equal(schema.properties.config.additionalProperties, false);
  t.equal(schema.properties.secrets.additionalProperties, false);
});

t.test('a deliberately wrong values file is rejected with each fault named', async (t) => {
  const wrong = parseYaml(read(join(ROOT, 'test/fixtures/helm/wrong-values.yaml')));
  const validate = validator();
  // Helm validates the user's file merged over the chart's defaults.
  t.equal(validate(deepMerge(values, wrong)), false);
  const errs = (validate.errors ?? []).map((e: ErrorObject) => ({
    path: e.instancePath, keyword: e.keyword, extra: (e.params as any).additionalProperty ?? null,
  }));
  const has = (path: string, keyword: string, extra: string | null = null) =>
    t.ok(errs.some((e) => e.path === path && e.keyword === keyword && e.extra === extra), `${keyword} at "${path}"${extra ? ` (${extra})` : ''}`);
  has('/edge/replicaCount', 'type');
  has('/edge', 'additionalProperties', 'replicas');
  has('/config/logLevel', 'enum');
  has('/config/rateLimit/enabled', 'type');
  has('', 'additionalProperties', 'ingres');

  // Each fault alone is enough.
  for (const [label, patch] of [
    ['wrong type', { edge: { replicaCount: 'three' } }],
    ['unknown key', { worker: { autoscaling: { targetMemory: 80 } } }],
    ['unknown secret', { secrets: { jwtSecret: 'x' } }],
    ['malformed PDB bound', { edge: { podDisruptionBudget: { minAvailable: 'half' } } }],
  ] as const) {
    t.equal(validator()(deepMerge(values, patch)), false, `${label} is rejected`);
  }
});

t.test('every .Values reference in the templates exists in values.yaml', async (t) => {
  let count = 0;
  for (const [file, src] of templates) {
    for (const m of src.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const path = m[1].slice(1).split('.');
      t.not(at(values, path), MISSING, `${file}: .Values.${path.join('.')}`);
      count++;
    }
  }
  t.ok(count > 50, `templates read their settings from values (${count} references)`);
  // The shared pod template reads the role's block (.role.x): it must exist for both roles.
  const helpers = templates.get('_helpers.tpl')!;
  const roleRefs = [...new Set([...helpers.matchAll(/\.role((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1].slice(1)))];
  t.ok(roleRefs.length >= 5);
  for (const r of roleRefs) {
    for (const role of ['edge', 'worker']) t.not(at(values, [role, ...r.split('.')]), MISSING, `.Values.${role}.${r}`);
  }
});

t.test('templates are well formed: balanced blocks, defined includes, existing files', async (t) => {
  const defined = new Set([...templates.get('_helpers.tpl')!.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]));
  for (const [file, src] of templates) {
    t.equal((src.match(/\{\{/g) ?? []).length, (src.match(/\}\}/g) ?? []).length, `${file}: {{ and }} pair up`);
    let depth = 0;
    for (const a of actions(src)) {
      if (/^(if|range|with|define|block)\b/.test(a)) depth++;
      else if (a === 'end') depth--;
      t.ok(depth >= 0, `${file}: no stray end`);
      for (const inc of a.matchAll(/\binclude\s+"([^"]+)"/g)) t.ok(defined.has(inc[1]), `${file}: include "${inc[1]}" is defined`);
      for (const f of a.matchAll(/\.Files\.Get\s+"([^"]+)"/g)) t.ok(existsSync(join(CHART, f[1])), `${file}: ${f[1]} exists`);
    }
    t.equal(depth, 0, `${file}: every block is closed`);
  }
});

t.test('the chart has the required kinds, each labelled the standard way', async (t) => {
  const kinds: string[] = [];
  const byKind = new Map<string, Record<string, any>[]>();
  for (const f of manifestFiles) {
    for (const d of manifestDocs(t, f)) {
      t.type(d.apiVersion, 'string', `${f}: apiVersion`);
      kinds.push(d.kind);
      byKind.set(d.kind, [...(byKind.get(d.kind) ?? []), d]);
    }
    t.match(templates.get(f)!, /include "mtchat\.(labels|componentLabels)"/, `${f}: carries the chart's labels`);
  }
  t.same(kinds.sort(), [
    'ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'HorizontalPodAutoscaler', 'HorizontalPodAutoscaler',
    'Ingress', 'PodDisruptionBudget', 'PodDisruptionBudget', 'PrometheusRule', 'Secret', 'Service', 'Service',
    'ServiceMonitor',
  ]);
  const api = (k: string) => [...new Set(byKind.get(k)!.map((d) => d.apiVersion))];
  t.same(api('Deployment'), ['apps/v1']);
  t.same(api('HorizontalPodAutoscaler'), ['autoscaling/v2']);
  t.same(api('PodDisruptionBudget'), ['policy/v1']);
  t.same(api('Ingress'), ['networking.k8s.io/v1']);
  t.same(api('ServiceMonitor'), ['monitoring.coreos.com/v1']);
  t.same(api('PrometheusRule'), ['monitoring.coreos.com/v1']);

  const helpers = templates.get('_helpers.tpl')!;
  for (const l of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version',
    'app.kubernetes.io/managed-by', 'app.kubernetes.io/component', 'app.kubernetes.io/part-of', 'helm.sh/chart']) {
    t.match(helpers, new RegExp(`^${l.replace(/[./]/g, '\\$&')}: `, 'm'), `${l} is set by _helpers.tpl`);
  }
});

t.test('edge and worker Deployments: own role, own scaling, probes, drain-matched grace period', async (t) => {
  for (const role of ['edge', 'worker']) {
    const dep = templates.get(`deployment-${role}.yaml`)!;
    t.match(dep, `include "mtchat.podTemplate" (dict "ctx" . "component" "${role}" "role" .Values.${role})`);
    t.match(dep, `replicas: {{ .Values.${role}.replicaCount }}`);
    t.match(dep, `{{- if not .Values.${role}.autoscaling.enabled }}`, 'the HPA owns replicas when enabled');
    t.match(templates.get(`hpa-${role}.yaml`)!, `name: {{ include "mtchat.fullname" . }}-${role}`);
    t.match(templates.get(`pdb-${role}.yaml`)!, `"component" "${role}"`);
  }
  const pod = templates.get('_helpers.tpl')!;
  t.match(pod, 'args: ["--role", {{ .component | quote }}]');
  t.match(pod, 'command: ["node", "dist/src/main.js"]', 'args must not replace the image command');
  t.match(pod, /livenessProbe:\n\s+httpGet:\n\s+path: \{\{ \$root\.Values\.probes\.liveness\.path \}\}/);
  t.match(pod, /readinessProbe:\n\s+httpGet:\n\s+path: \{\{ \$root\.Values\.probes\.readiness\.path \}\}/);
  t.equal(values.probes.liveness.path, '/health');
  t.equal(values.probes.readiness.path, '/health/ready');
  t.match(pod, 'terminationGracePeriodSeconds: {{ include "mtchat.terminationGracePeriodSeconds" $root }}');
  t.match(pod, '{{- add .Values.shutdown.preStopSleepSeconds .Values.shutdown.drainSeconds .Values.shutdown.releaseSeconds -}}');
  t.match(pod, 'command: ["sleep", {{ $root.Values.shutdown.preStopSleepSeconds | quote }}]');
  // The drain in values must cover the server's own bound on waiting for requests in flight.
  const server = read(join(ROOT, 'src/edge/http/server.ts'));
  const drainMs = Number(/close\(drainMs = (\d+)\)/.exec(server)?.[1]);
  t.ok(drainMs > 0, 'the HTTP server declares its drain bound');
  t.ok(values.shutdown.drainSeconds * 1000 >= drainMs, `shutdown.drainSeconds (${values.shutdown.drainSeconds}) covers ${drainMs} ms`);

  // Traffic goes to edges only; workers are reachable for scraping.
  const svc = manifestDocs(t, 'service.yaml');
  t.equal(svc.length, 2);
  t.match(templates.get('service.yaml')!, /selector:\n\s+\{\{- include "mtchat.componentSelectorLabels" \(dict "ctx" \. "component" "edge"\)/);
  t.equal(svc[1].spec.clusterIP, 'None');
});

t.test('ConfigMap and Secret carry every variable an operator sets', async (t) => {
  const doc = read(join(ROOT, 'docs/configuration.md'));
  const documented = new Set<string>();
  for (const line of doc.split('\n').filter((l) => l.startsWith('| `'))) {
    const first = line.split('|')[1];
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]);
  }
  t.ok(documented.size > 40, `docs list the variables (${documented.size})`);
  const cm = manifestDocs(t, 'configmap.yaml')[0].data as Record<string, string>;
  const secret = manifestDocs(t, 'secret.yaml')[0].stringData as Record<string, string>;
  t.same(Object.keys(secret).sort(), ['ADMIN_API_TOKEN', 'DATABASE_URL', 'JWT_SECRETS', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'WEBHOOK_SECRET']);
  // Set elsewhere, or aliases the chart deliberately leaves out.
  const notInConfig: Record<string, string> = {
    PORT: 'set on the container from containerPort',
    MTCHAT_ROLE: 'each Deployment passes --role',
    JWT_SECRET: 'superseded by JWT_SECRETS (Secret)',
    NOTIFICATION_DELAY_SECS: 'alias of NOTIFICATION_DELAY_MS',
  };
  for (const v of documented) {
    if (v in notInConfig) continue;
    t.ok(v in cm || v in secret, `${v} is rendered by the chart`);
  }
  for (const v of Object.keys(secret)) t.notOk(v in cm, `${v} stays out of the ConfigMap`);
  t.match(templates.get('_helpers.tpl')!, /name: PORT\n\s+value: \{\{ \$root\.Values\.containerPort \| quote \}\}/);
});

t.test('dashboard: one row per concern, every query uses a known metric', async (t) => {
  const dash = JSON.parse(read(join(CHART, 'dashboards/mtchat.json')));
  const rows = dash.panels.filter((p: any) => p.type === 'row').map((p: any) => p.title);
  t.same(rows, ['Traffic', 'Latency', 'Cluster / actors', 'Delivery', 'Errors', 'Runtime']);
  const graphs = dash.panels.filter((p: any) => p.type !== 'row');
  t.ok(graphs.length >= 25);
  const ids = dash.panels.map((p: any) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const used = new Set<string>();
  for (const p of graphs) {
    t.ok(p.targets.length > 0, `${p.title} queries something`);
    for (const target of p.targets) {
      const names = [...target.expr.matchAll(/\bmtchat_[a-z0-9_]+/g)].map((m: RegExpMatchArray) => m[0]);
      t.ok(names.length > 0, `${p.title}: ${target.expr}`);
      for (const n of names) {
        const family = familyOf(n);
        t.ok(family, `${p.title}: ${n} is a known metric`);
        if (family) used.add(family);
      }
    }
  }
  for (const v of dash.templating.list) {
    if (v.type === 'query') for (const n of v.definition.matchAll(/\bmtchat_[a-z0-9_]+/g)) t.ok(familyOf(n[0]), `variable ${v.name}: ${n[0]}`);
  }
  const custom = Object.keys(metricList.metrics);
  t.same(custom.filter((m) => !used.has(m)), [], 'every mtchat metric is on the dashboard');
  t.ok(['mtchat_nodejs_eventloop_lag_seconds', 'mtchat_nodejs_gc_duration_seconds', 'mtchat_nodejs_heap_size_used_bytes', 'mtchat_process_cpu_seconds_total'].every((m) => used.has(m)), 'runtime row shows the Node defaults');

  // The chart ships it as a ConfigMap labelled for Grafana's sidecar.
  const cm = templates.get('dashboard-configmap.yaml')!;
  t.match(cm, '{{ .Values.metrics.dashboard.labelKey }}: {{ .Values.metrics.dashboard.labelValue | quote }}');
  t.match(cm, '{{ .Files.Get "dashboards/mtchat.json" | indent 4 }}');
  t.equal(values.metrics.dashboard.labelKey, 'grafana_dashboard');
});

t.test('the metric list follows the naming rules: prefix, counters end in _total, no per-user labels', async (t) => {
  // prom-client names two gauges *_total; they are its defaults, not ours.
  const promClientGauges = new Set(['mtchat_nodejs_active_handles_total', 'mtchat_nodejs_active_requests_total']);
  for (const [name, type] of metricTypes) {
    t.match(name, /^mtchat_[a-z0-9_]+$/);
    if (type === 'counter') t.match(name, /_total$/, `${name}: a counter ends in _total`);
    else if (!promClientGauges.has(name)) t.notMatch(name, /_total$/, `${name}: only counters end in _total`);
    if (type === 'histogram') t.match(name, /_(seconds|bytes|size)$/, `${name}: a histogram names its unit`);
    for (const label of (metricList.metrics[name] ?? metricList.defaultMetrics[name]).labels as string[]) {
      t.notOk(['user_id', 'dialog_id', 'user', 'dialog'].includes(label), `${name}: no per-user or per-dialog label`);
    }
  }
});

t.test('PrometheusRule: the alerts that should wake someone', async (t) => {
  const [rule] = manifestDocs(t, 'prometheusrule.yaml');
  const rules = rule.spec.groups.flatMap((g: any) => g.rules);
  t.same(rules.map((r: any) => r.alert), [
    'MtchatDeliveryBacklogGrowing', 'MtchatWebhookDeadLetters', 'MtchatPartitionUnowned',
    'MtchatHighErrorRatio', 'MtchatSendLatencyP99High', 'MtchatHttpLatencyP99High',
  ]);
  for (const r of rules) {
    t.ok(['critical', 'warning'].includes(r.labels.severity), `${r.alert}: severity`);
    t.type(r.annotations.summary, 'string');
    for (const n of r.expr.matchAll(/\bmtchat_[a-z0-9_]+/g)) t.ok(familyOf(n[0]), `${r.alert}: ${n[0]} is a known metric`);
  }
  const unowned = rules.find((r: any) => r.alert === 'MtchatPartitionUnowned');
  t.match(unowned.expr, /max\(mtchat_partitions_unowned\{[^}]*\}\) > 0/);
  t.equal(unowned.for, '1m');
  const src = templates.get('prometheusrule.yaml')!;
  t.match(src, 'status=~"5.."');
  t.match(src, 'mtchat_webhook_dead_letters_total');
  t.match(src, 'deriv(sum(mtchat_outbox_backlog');
  t.match(src, 'histogram_quantile(0.99, sum by (le) (rate(mtchat_send_latency_seconds_bucket');
});

t.test('Chart.yaml: appVersion is the package version (the default image tag)', async (t) => {
  const chart = parseYaml(read(join(CHART, 'Chart.yaml')));
  const pkg = JSON.parse(read(join(ROOT, 'package.json')));
  t.equal(chart.apiVersion, 'v2');
  t.equal(chart.name, 'mtchat');
  t.equal(chart.appVersion, pkg.version);
});

/** The family a sample name belongs to (histograms add _bucket, _sum, _count), or undefined. */
function familyOf(sample: string): string | undefined {
  if (metricTypes.has(sample)) return sample;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  if (m && metricTypes.get(m[1]) === 'histogram') return m[1];
  return undefined;
}
