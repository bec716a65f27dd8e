// Checks the conventions of packaging/grafana/dashboards/*.json that the schema types cannot express:
// provisioning settings, the datasource/host variables, unique panel ids with descriptions, Prometheus
// targets on ${datasource}, only $host, $hostname, $gpu and $__rate_interval in queries, instance=~"$host"
// (or, for a fleet controller's per-machine series and vasthost_rig_info, hostname=~"$hostname") on every
// selector, and every metric name documented in docs/metrics.md. Prints one line per problem; exit 1 if any.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const dir = process.env.VASTHOST_DASHBOARDS_DIR ?? join(repo, 'packaging/grafana/dashboards');
const problems = [];

// Metric families from docs/metrics.md tables: | `name` | type | …
const documented = new Map();
for (const line of readFileSync(join(repo, 'docs/metrics.md'), 'utf8').split('\n')) {
  const m = /^\| `(vasthost_[a-z0-9_]+)` \| ([a-z]+) \|/.exec(line);
  if (m) documented.set(m[1], m[2]);
}
if (documented.size === 0) problems.push('docs/metrics.md: no metric table rows found');
function isDocumented(name) {
  if (documented.has(name)) return true;
  const h = /^(.*)_(bucket|sum|count)$/.exec(name);
  return Boolean(h && documented.get(h[1]) === 'histogram');
}

const ALLOWED_VARS = new Set(['host', 'hostname', 'gpu', '__rate_interval']);
function checkExpr(where, expr) {
  for (const m of expr.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (!ALLOWED_VARS.has(m[1])) problems.push(`${where}: variable $${m[1]} (only $host, $hostname, $gpu, $__rate_interval)`);
  }
  // A rig agent's series on the controller's dashboard carry no hostname of their own: they are selected by
  // their join to vasthost_rig_info{hostname=~"$hostname"} (group_left(hostname)), which counts as the filter.
  const joinedByHostname = /group_left\(hostname\)\s*vasthost_rig_info\{[^}]*hostname=~"\$hostname"/.test(expr);
  for (const m of expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?/g)) {
    const name = m[1];
    if (!name.startsWith('vasthost_')) continue;
    if (!isDocumented(name)) problems.push(`${where}: ${name} is not in docs/metrics.md`);
    if (joinedByHostname && !m[2]) continue;
    if (!m[2] || !(m[2].includes('instance=~"$host"') || m[2].includes('hostname=~"$hostname"'))) problems.push(`${where}: ${name} without instance=~"$host" (or hostname=~"$hostname")`);
  }
  if (/\$__range\b/.test(expr)) problems.push(`${where}: $__range`);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const uids = new Set();
for (const file of files) {
  const d = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const at = (s) => `${file}: ${s}`;
  if (uids.has(d.uid)) problems.push(at(`duplicate uid ${d.uid}`));
  uids.add(d.uid);
  if (!(d.schemaVersion >= 39)) problems.push(at('schemaVersion below 39'));
  if (d.editable !== true) problems.push(at('editable is not true'));
  if (d.time?.from !== 'now-6h') problems.push(at('time.from is not now-6h'));
  if (d.refresh !== '30s') problems.push(at('refresh is not 30s'));
  if (!d.tags?.includes('vasthost')) problems.push(at('tag vasthost missing'));
  for (const k of ['__inputs', '__requires', '__elements']) if (k in d) problems.push(at(`${k} in a provisioned dashboard`));
  const vars = Object.fromEntries((d.templating?.list ?? []).map((v) => [v.name, v]));
  if (vars.datasource?.type !== 'datasource' || vars.datasource?.query !== 'prometheus') problems.push(at('variable datasource (type datasource, query prometheus) missing'));
  if (vars.host?.type !== 'query') problems.push(at('query variable host missing'));
  for (const v of Object.values(vars)) {
    if (v.includeAll && v.allValue !== '.+') problems.push(at(`variable ${v.name}: includeAll without allValue ".+"`));
    // The host variable lists instances of one documented family itself (it cannot filter on $host).
    const own = v.name === 'host' && /^label_values\((vasthost_[a-z0-9_]+), instance\)$/.exec(v.query ?? '');
    if (own && !isDocumented(own[1])) problems.push(at(`variable host: ${own[1]} is not in docs/metrics.md`));
    if (typeof v.query === 'string' && v.type === 'query' && !own) checkExpr(at(`variable ${v.name}`), v.query);
  }
  if (!(d.links ?? []).some((l) => /\/d\/vasthost-/.test(l.url ?? '') || l.tags?.includes('vasthost'))) problems.push(at('no link to the other VastHost dashboard'));

  const ids = new Set();
  const walk = (panels) => {
    for (const p of panels) {
      const where = at(`panel ${p.id} "${p.title}"`);
      if (typeof p.id !== 'number') problems.push(`${where}: no numeric id`);
      else if (ids.has(p.id)) problems.push(`${where}: duplicate id`);
      ids.add(p.id);
      if (p.type === 'row') {
        walk(p.panels ?? []);
        continue;
      }
      if (!p.description) problems.push(`${where}: no description`);
      if (!p.targets?.length) problems.push(`${where}: no targets`);
      const refIds = new Set();
      for (const t of p.targets ?? []) {
        if (!t.expr) problems.push(`${where}: target without expr`);
        if (!t.refId || refIds.has(t.refId)) problems.push(`${where}: missing or duplicate refId`);
        refIds.add(t.refId);
        if (t.datasource?.type !== 'prometheus' || t.datasource?.uid !== '${datasource}') problems.push(`${where}: target datasource is not {type: prometheus, uid: \${datasource}}`);
        if (t.expr) checkExpr(`${where} ${t.refId}`, t.expr);
      }
    }
  };
  walk(d.panels ?? []);
}

for (const p of problems) console.error(p);
if (problems.length) {
  console.error(`lint: ${problems.length} problem(s) in ${files.length} dashboard(s)`);
  process.exit(1);
}
console.log(`lint: ${files.length} dashboard(s) follow the conventions; metric names checked against ${documented.size} documented families`);
