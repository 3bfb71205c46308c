// The whole set-up, shared by the tests and the demo: three relying parties, node-oidc-provider as
// the upstream OP, optionally a redis-server, and the gateway in front of the OP. Tests use free
// ports (`ports` omitted); the demo passes its fixed, documented ones.
import { startApacheRps } from './apache-rp.js';
import { startGateway } from './gateway.js';
import { GLEWLWYD_OP, startGlewlwyd } from './glewlwyd.js';
import { startOp } from './op.js';
import { freePort } from './proc.js';
import { startRedis } from './redis.js';
import { startRp } from './rp.js';
import { suiteTls } from './tls.js';

/** The example relying parties: client_id, display name, page colour. */
export const RP_SPECS = [
  { clientId: 'rp1', name: 'RP 1 (Mail)', accent: '#0969da' },
  { clientId: 'rp2', name: 'RP 2 (Calendar)', accent: '#8250df' },
  { clientId: 'rp3', name: 'RP 3 (Files)', accent: '#bf3989' },
];

/**
 * Start everything; resolves { gateway, op, rps, issuer, redisUrl, stop }.
 * opts: redis (true: spawn one; a URL: use it; false: memory store), fcTimeout (gateway's
 * end_session.frontchannel_timeout), frontchannel ({ rp3: 'hang' } etc., see rp.js),
 * ports ({ gateway, admin, op, rps: [..] }; omitted: free ports), logPath (gateway log),
 * sessionManagement (true: the gateway serves Session Management 1.0, `session_management`),
 * templatesDir (the demo's copy with visible iframes), apache ([{ clientId, name, logout }]:
 * Apache + mod_auth_openidc RPs besides the three, see apache-rp.js), tls (default: the suite's
 * test CA when NODE_EXTRA_CA_CERTS names it, see tls.js; false: plain http, as the demo runs):
 * the gateway's only public listener is then https, and the issuer an https origin.
 */
export async function startStack(opts = {}) {
  // Everything started so far, stopped in reverse order on failure or by the returned stop().
  const started = [];
  const stopAll = async () => {
    while (started.length) await started.pop().stop().catch(() => {});
  };
  try {
    let redisUrl;
    if (opts.redis === true) {
      const redis = await startRedis();
      started.push(redis);
      redisUrl = redis.url;
    } else if (typeof opts.redis === 'string') {
      redisUrl = opts.redis;
    }
    // The OP's issuer is the gateway's origin, so the gateway's port comes first. If someone takes
    // it before the gateway binds, start the OP and RPs again with new ports.
    for (let attempt = 0; ; attempt++) {
      const parts = [];
      try {
        const stack = await startOnce(opts, redisUrl, parts);
        started.push(...parts);
        return { ...stack, stop: stopAll };
      } catch (e) {
        while (parts.length) await parts.pop().stop().catch(() => {});
        if (!e.portTaken || opts.ports || attempt >= 2) throw e;
      }
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
}

async function startOnce(opts, redisUrl, parts) {
  const p = opts.ports ?? {};
  const port = p.gateway ?? (await freePort());
  const adminPort = p.admin ?? (await freePort());
  const tls = opts.tls === false ? null : (opts.tls ?? suiteTls());
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  if (opts.op === 'glewlwyd') return startGlewlwydStack(opts, { port, adminPort, origin: issuer, redisUrl, tls }, parts);
  const rps = [];
  for (const [i, spec] of RP_SPECS.entries()) {
    const rp = await startRp({
      ...spec,
      clientSecret: `${spec.clientId}-secret-not-for-production`,
      issuer,
      port: p.rps?.[i] ?? 0,
      frontchannel: opts.frontchannel?.[spec.clientId] ?? 'answer',
    });
    parts.push(rp);
    rps.push(rp);
  }
  for (const rp of rps) rp.peers = rps.filter((o) => o !== rp);
  // Apache with mod_auth_openidc as further RPs (opts.apache: [{ clientId, name, logout }]).
  let apache;
  if (opts.apache?.length) {
    const specs = opts.apache.map((s) => ({ ...s, clientSecret: `${s.clientId}-secret-not-for-production` }));
    apache = await startApacheRps({ issuer, specs, logPath: opts.apacheLogPath, caFile: tls?.ca });
    parts.push(apache);
    rps.push(...apache.rps);
  }
  const op = await startOp({ issuer, rps, port: p.op ?? 0 });
  parts.push(op);
  const gateway = await startGateway(
    { port, adminPort, upstreamUrl: op.url, rps, redisUrl, fcTimeout: opts.fcTimeout, templatesDir: opts.templatesDir, tls, sessionManagement: opts.sessionManagement },
    { logPath: opts.logPath },
  );
  parts.push(gateway);
  return { gateway, op, rps, issuer, redisUrl, apache, tls };
}

/**
 * Glewlwyd as the upstream OP instead, with only Apache RPs (opts.apache): resolves the same
 * shape; `issuer` is Glewlwyd's (`<origin>/api/oidc`), `origin` the gateway's.
 */
async function startGlewlwydStack(opts, { port, adminPort, origin, redisUrl, tls }, parts) {
  const issuer = `${origin}${GLEWLWYD_OP.issuerPath}`;
  const specs = (opts.apache ?? []).map((s) => ({ ...s, clientSecret: `${s.clientId}-secret-not-for-production` }));
  const apache = await startApacheRps({ issuer, specs, logPath: opts.apacheLogPath, caFile: tls?.ca });
  parts.push(apache);
  const op = await startGlewlwyd({ origin, rps: apache.rps, logPath: opts.opLogPath });
  parts.push(op);
  const gateway = await startGateway(
    { port, adminPort, upstreamUrl: op.url, rps: apache.rps, redisUrl, fcTimeout: opts.fcTimeout, op: GLEWLWYD_OP, tls },
    { logPath: opts.logPath },
  );
  parts.push(gateway);
  return { gateway, op, rps: apache.rps, issuer, origin, redisUrl, apache, tls };
}

