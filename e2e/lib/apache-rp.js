// Relying parties nobody here wrote: Debian's Apache with mod_auth_openidc, one virtual host per
// RP, each on its own loopback address (127.0.0.2, .3, …), so every RP is its own site: its
// cookies are its own and the gateway's front-channel iframes are cross-site, where
// mod_auth_openidc finds the session by iss and sid in its server-side cache, not by cookie.
//
// Each RP protects /protected/ (a page that names the signed-in user), with its redirect URI at
// /protected/redirect_uri. mod_auth_openidc's own logout entry points are used as they are:
// RP-initiated `?logout=<url>`, front-channel `?logout=get`, back-channel `?logout=backchannel`.
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnChild, stopChild, waitFor } from './proc.js';

const MODULES = '/usr/lib/apache2/modules';
export const APACHE = '/usr/sbin/apache2';

/**
 * One RP's description for the OP's client registration and the gateway's clients: block.
 * `logout`: 'front' (front-channel only), 'back' (back-channel only) or 'both'.
 */
function rpOf(spec, host, port) {
  const origin = `http://${host}:${port}`;
  const redirectUri = `${origin}/protected/redirect_uri`;
  const front = spec.logout === 'front' || spec.logout === 'both';
  const back = spec.logout === 'back' || spec.logout === 'both';
  return {
    ...spec,
    kind: 'apache',
    host,
    port,
    origin,
    redirectUri,
    protectedUrl: `${origin}/protected/`,
    loggedOutUrl: `${origin}/logged-out.html`,
    // RP-initiated logout: mod_auth_openidc ends its session, then sends the browser to the
    // end_session_endpoint with id_token_hint and this URI as post_logout_redirect_uri.
    logoutUrl: `${redirectUri}?logout=${encodeURIComponent(`${origin}/logged-out.html`)}`,
    opMetadata: {
      client_id: spec.clientId,
      client_secret: spec.clientSecret,
      client_name: spec.name,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [`${origin}/logged-out.html`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      // node-oidc-provider puts sid into ID tokens only for clients with this.
      backchannel_logout_uri: `${redirectUri}?logout=backchannel`,
      backchannel_logout_session_required: true,
    },
    gatewayClient: {
      post_logout_redirect_uris: [`${origin}/logged-out.html`],
      ...(front ? { frontchannel_logout_uri: `${redirectUri}?logout=get`, frontchannel_logout_session_required: true } : {}),
      ...(back ? { backchannel_logout_uri: `${redirectUri}?logout=backchannel`, backchannel_logout_session_required: true } : {}),
    },
  };
}

function vhost(rp, issuer, dir) {
  return `
<VirtualHost ${rp.host}:${rp.port}>
  ServerName ${rp.host}
  DocumentRoot "${dir}/www"
  OIDCProviderMetadataURL ${issuer}/.well-known/openid-configuration
  OIDCClientID ${rp.clientId}
  OIDCClientSecret ${rp.clientSecret}
  OIDCRedirectURI ${rp.redirectUri}
  OIDCCryptoPassphrase ${rp.clientId}-passphrase-not-secret
  OIDCScope "openid"
  OIDCPKCEMethod S256
  OIDCCookie ${rp.clientId}_session
  OIDCCacheType shm
  OIDCSessionType server-cache
  OIDCDefaultLoggedOutURL ${rp.loggedOutUrl}
  OIDCProviderTokenEndpointAuth client_secret_basic
  # <redirect_uri>?info=json shows the session's access token (the tests check it is refused).
  OIDCInfoHook access_token
  <Location /protected/>
    AuthType openid-connect
    Require valid-user
  </Location>
</VirtualHost>
`;
}

/**
 * Start one Apache serving `specs` (each { clientId, clientSecret, name, logout }) for `issuer`;
 * `caFile`: the CA mod_auth_openidc trusts for an https issuer (copied where www-data reads it).
 */
export async function startApacheRps({ issuer, specs, logPath, caFile }) {
  const dir = mkdtempSync(join(tmpdir(), 'lgw-apache-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www', 'protected'), { recursive: true });
  // Static pages: a test only needs to tell "signed in" (the protected page served) from "sent
  // to the OP" (a redirect to its authorization endpoint).
  writeFileSync(join(dir, 'www', 'protected', 'index.html'), '<!doctype html><title>signed in</title><h1 id="in">signed in</h1>\n');
  writeFileSync(join(dir, 'www', 'logged-out.html'), '<!doctype html><title>logged out</title><h1 id="out">logged out</h1>\n');
  if (caFile) writeFileSync(join(dir, 'ca.pem'), readFileSync(caFile), { mode: 0o644 });
  const rps = [];
  for (const [i, spec] of specs.entries()) {
    rps.push(rpOf(spec, `127.0.0.${i + 2}`, await freePort()));
  }
  const conf = `
ServerRoot "${dir}"
PidFile "${dir}/httpd.pid"
ErrorLog "${dir}/error.log"
LogLevel warn auth_openidc:info
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule mime_module ${MODULES}/mod_mime.so
LoadModule dir_module ${MODULES}/mod_dir.so
LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so
TypesConfig /etc/mime.types
DirectoryIndex index.html
User www-data
Group www-data
ServerName localhost
Mutex file:${dir}
${caFile ? `OIDCCABundlePath "${dir}/ca.pem"` : ''}
${rps.map((r) => `Listen ${r.host}:${r.port}`).join('\n')}
${rps.map((r) => vhost(r, issuer, dir)).join('\n')}
`;
  const confPath = join(dir, 'httpd.conf');
  writeFileSync(confPath, conf);
  const logFile = logPath ?? join(dir, 'stdout.log');
  const log = createWriteStream(logFile);
  const child = spawnChild(APACHE, ['-f', confPath, '-DFOREGROUND'], { logStream: log });
  const up = await waitFor('Apache to answer', 15_000, async () => {
    if (child.done) return 'exited';
    try {
      const r = await fetch(rps[0].loggedOutUrl);
      return r.status === 200 && 'up';
    } catch {
      return false;
    }
  });
  if (up !== 'up') {
    await new Promise((resolve) => log.end(resolve));
    const read = (f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch {
        return '';
      }
    };
    throw new Error(`Apache did not start:\n${read(logFile)}${read(join(dir, 'error.log'))}`);
  }
  return {
    rps,
    errorLog: () => readFileSync(join(dir, 'error.log'), 'utf8'),
    stop: async () => {
      await stopChild(child);
      log.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
