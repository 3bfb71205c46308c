// Debian's Prometheus server, scraping given targets every second, with the shipped alert rules
// loaded; for e2e/test/dashboard.test.js. Ready once its HTTP API answers.
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';
import { freePort, spawnChild, stopChild, waitFor } from './proc.js';

/** Start prometheus scraping `targets` (host:port of admin listeners) as job `job`. */
export async function startPrometheus({ targets, job = 'logout-gateway', logPath }) {
  const dir = mkdtempSync(join(tmpdir(), 'lgw-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
      `rule_files: [${JSON.stringify(join(repoRoot, 'deploy/prometheus/alerts.yaml'))}]`,
      'scrape_configs:',
      `  - job_name: ${job}`,
      `    static_configs: [{targets: ${JSON.stringify(targets)}}]`,
      '',
    ].join('\n'),
  );
  const log = createWriteStream(logPath ?? join(dir, 'prometheus.log'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawnChild(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h'],
      { logStream: log },
    );
    const url = `http://127.0.0.1:${port}`;
    const up = await waitFor('prometheus to answer', 20_000, async () => {
      if (child.done) return 'exited';
      return (await fetch(`${url}/-/ready`).then((r) => r.status === 200).catch(() => false)) && 'up';
    });
    if (up === 'up') {
      return {
        url,
        /** Run an instant query; resolves the API's `data.result`. */
        query: async (q) => {
          const r = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: q })}`);
          const body = await r.json();
          if (body.status !== 'success') throw new Error(`query ${q}: ${body.error ?? r.status}`);
          return body.data.result;
        },
        api: async (path) => (await (await fetch(`${url}${path}`)).json()).data,
        stop: async () => {
          await stopChild(child);
          log.end();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (attempt >= 2) throw new Error('prometheus did not start (scripts/e2e installs Debian\'s prometheus package)');
  }
}
