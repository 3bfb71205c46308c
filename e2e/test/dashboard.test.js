// The Grafana dashboard (deploy/grafana/logout-gateway.json) and the alert rules
// (deploy/prometheus/alerts.yaml) against real data. Debian's Prometheus scrapes the gateway of a
// full stack every second while the browser signs in to three RPs and logs out (front-channel
// iframes, back-channel notices, passthrough); then every query of every panel, with Grafana's
// variables set as a user leaves them (all jobs, all instances, a 5m rate interval), must return
// at least one series with a finite value, and every alert rule must evaluate without error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { artifactsDir, repoRoot } from '../lib/paths.js';
import { startPrometheus } from '../lib/prometheus.js';
import { waitFor } from '../lib/proc.js';
import { signInEverywhere, useStack, waitForPage } from './helpers.js';

const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/logout-gateway.json'), 'utf8'));
const ctx = useStack('dashboard');
let prom;

after(async () => prom?.stop(), { timeout: 30_000 });

/** Every query of the dashboard, with its panel's title. */
const queries = () =>
  dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })));

/** A query as Grafana sends it with the dashboard's variables at "All" and a 5m rate interval. */
const expand = (expr) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*').replaceAll('$instance', '.*');

/** Resolve the first value of `q` once it is a number above `min`. */
async function until(what, q, min = 0) {
  return waitFor(what, 30_000, async () => {
    const r = await prom.query(q);
    const v = r.length ? Number(r[0].value[1]) : NaN;
    return v > min ? v : false;
  });
}

test('the dashboard is well formed: unique panel ids, panels inside the 24-column grid without overlap, every query on the data source variable', () => {
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, `panel ids: ${ids}`);
  const cells = new Map();
  for (const p of dashboard.panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title}: ${JSON.stringify(p.gridPos)}`);
    for (let i = x; i < x + w; i++)
      for (let j = y; j < y + h; j++) {
        assert.ok(!cells.has(`${i},${j}`), `${p.title} overlaps ${cells.get(`${i},${j}`)}`);
        cells.set(`${i},${j}`, p.title);
      }
    for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${datasource}', `${p.title} ${t.refId}`);
  }
  const vars = dashboard.templating.list.map((v) => v.name);
  assert.deepEqual(vars, ['datasource', 'job', 'instance']);
  assert.ok(queries().length >= 20, `${queries().length} queries`);
  for (const { panel, expr } of queries()) assert.match(expr, /job=~"\$job", instance=~"\$instance"/, `${panel} filters by the variables`);
});

test('traffic: sign-in at three RPs and a single logout with front- and back-channel, scraped by Prometheus', async () => {
  const admin = new URL(ctx.stack.gateway.admin).host;
  prom = await startPrometheus({ targets: [admin], logPath: join(artifactsDir(), 'dashboard-prometheus.log') });
  await until('Prometheus scraping the gateway', 'up{job="logout-gateway"}', 0.5);
  await signInEverywhere(ctx);
  const [rp1] = ctx.stack.rps;
  await ctx.page.goto(`${rp1.origin}/`);
  await ctx.page.click('#logout');
  await waitForPage(ctx.page, `${rp1.origin}/logged-out`);
  // Scraped after the logout and its back-channel deliveries.
  await until('the logout scraped', 'sum(logout_gateway_logouts_total{outcome="redirect"})');
  await until('back-channel deliveries scraped', 'sum(logout_gateway_backchannel_deliveries_total{result="success"})', 2);
  await until('front-channel iframes scraped', 'sum(logout_gateway_frontchannel_iframes_total)', 2);
  // The logout page reported its three iframes as loaded (its beacon, the logout's receipt).
  await until('front-channel reports scraped', 'sum(logout_gateway_frontchannel_results_total{result="loaded"})', 2);
});

test('every panel query returns data from the real scrape', async () => {
  const empty = [];
  for (const { panel, refId, expr } of queries()) {
    const result = await prom.query(expand(expr));
    const finite = result.filter((s) => Number.isFinite(Number(s.value[1])));
    if (!finite.length) empty.push(`${panel} (${refId}): ${expand(expr)} -> ${JSON.stringify(result).slice(0, 200)}`);
  }
  assert.deepEqual(empty, [], 'queries without data');
});

test('every alert rule loads into the real Prometheus and evaluates against the real series without error, and none fires on a healthy gateway', async () => {
  await waitFor('the rules evaluated', 15_000, async () => {
    const groups = (await prom.api('/api/v1/rules')).groups;
    const rules = groups.flatMap((g) => g.rules);
    return rules.length > 0 && rules.every((r) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001'));
  });
  const rules = (await prom.api('/api/v1/rules')).groups.flatMap((g) => g.rules);
  const shipped = readFileSync(join(repoRoot, 'deploy/prometheus/alerts.yaml'), 'utf8').match(/^ {6}- alert: /gm).length;
  assert.equal(rules.length, shipped);
  assert.deepEqual(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`), []);
  const firing = rules.filter((r) => r.state === 'firing').map((r) => r.name);
  assert.deepEqual(firing, [], 'a healthy gateway under normal traffic fires nothing');
});
