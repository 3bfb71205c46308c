// The configs the suite generates (lib/gateway.js) pass the binary's `check`, for both stores
// and both template directories, before any stack starts: drift between the generator and the
// gateway's keys fails here with the gateway's own message.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkConfig, gatewayYaml } from '../lib/gateway.js';

const rps = ['rp-one', 'rp-two'].map((clientId, i) => ({ clientId, origin: `http://127.0.0.1:${4100 + i}` }));

for (const redisUrl of ['redis://127.0.0.1:6390/0', undefined]) {
  test(`the generated config passes check (${redisUrl ? 'redis' : 'memory'} store)`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'lgw-e2e-config-'));
    try {
      const path = join(dir, 'proxy.yaml');
      writeFileSync(path, gatewayYaml({ port: 4000, adminPort: 4001, upstreamUrl: 'http://127.0.0.1:4002', rps, redisUrl }));
      checkConfig(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a config the gateway rejects fails checkConfig with the gateway\'s message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lgw-e2e-config-'));
  try {
    const path = join(dir, 'proxy.yaml');
    const yaml = gatewayYaml({ port: 4000, adminPort: 4001, upstreamUrl: 'http://127.0.0.1:4002', rps }).replace('frontchannel_timeout:', 'frontchanel_timeout:');
    writeFileSync(path, yaml);
    assert.throws(() => checkConfig(path), /end_session\.frontchanel_timeout: unknown field/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
