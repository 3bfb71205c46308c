// The single-logout demo (scripts/demo): node-oidc-provider on :3000 behind the gateway on :8080
// (admin :9090), three relying parties on :8081-:8083, sessions in memory or, with
// --redis URL, in Redis. Same code as the e2e tests (lib/stack.js), fixed ports so the URLs
// can be documented. Options: --redis URL, --fc-delay MS (how long each RP takes to answer its
// front-channel iframe, default 1500, so the iframes can be watched; 0 answers at once),
// --free-ports (any free ports instead: test/demo.test.js runs the demo so). Ctrl-C (SIGINT) or
// SIGTERM stops everything it started, then it exits 0.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { visibleIframeTemplates } from './lib/demo-templates.js';
import { artifactsDir } from './lib/paths.js';
import { onStop } from './lib/proc.js';
import { RP_SPECS, startStack } from './lib/stack.js';

const DEMO_PORTS = { gateway: 8080, admin: 9090, op: 3000, rps: [8081, 8082, 8083] };

const { values } = parseArgs({
  options: {
    redis: { type: 'string' },
    'fc-delay': { type: 'string', default: '1500' },
    'free-ports': { type: 'boolean', default: false },
  },
});
const delay = Number(values['fc-delay']);
if (!Number.isInteger(delay) || delay < 0) throw new Error('--fc-delay takes milliseconds');

const logPath = join(artifactsDir(), 'demo-gateway.log');
let stack;
try {
  stack = await startStack({
    redis: values.redis ?? false,
    ports: values['free-ports'] ? undefined : DEMO_PORTS,
    frontchannel: Object.fromEntries(RP_SPECS.map((r) => [r.clientId, delay || 'answer'])),
    templatesDir: visibleIframeTemplates(),
    logPath,
    // Plain http: a person's browser would not trust the test suite's CA.
    tls: false,
  });
} catch (e) {
  console.error(`demo: could not start: ${e.message}`);
  if (!values['free-ports'] && (e.code === 'EADDRINUSE' || e.portTaken)) {
    console.error(`demo: ports ${Object.values(DEMO_PORTS).flat().join(', ')} must be free`);
  }
  process.exit(1);
}

onStop(() => stack.stop());

const [rp1, rp2, rp3] = stack.rps;
console.log(`
logout-gateway demo: node-oidc-provider behind the gateway, three relying parties
(session store: ${stack.redisUrl ? `redis ${stack.redisUrl}` : 'memory'})

  Open ${rp1.origin}/ and sign in as alice / wonderland (or bob / builder),
  then open ${rp2.origin}/ and ${rp3.origin}/ and sign in there too (single sign-on: no form).
  Press "Sign out" on any of them: the gateway's page loads each RP's front-channel iframe,
  the RPs get back-channel logout tokens, and you land on that RP's signed-out page.
  Each RP shows what it recorded at /recorded.

  gateway (issuer) ${stack.issuer}   discovery: ${stack.issuer}/.well-known/openid-configuration
  gateway admin    ${stack.gateway.admin}/metrics
  upstream OP      ${stack.op.url} (node-oidc-provider; browsers reach it through the gateway)
  gateway config   ${stack.gateway.config}
  gateway log      ${logPath}

Ctrl-C stops everything.`);
