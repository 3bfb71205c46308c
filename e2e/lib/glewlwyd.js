// A second real upstream OP: Glewlwyd 2.7 (Debian's `glewlwyd`, a C server) on SQLite, set up
// through its own admin API as an operator would: the OpenID Connect plugin `oidc` (issuer
// `<gateway origin>/api/oidc`, its default settings: ID tokens without `sid`), one user, and a
// confidential client per relying party. Its `external_url` is the gateway's origin, so its
// redirects (to its sign-in page and back) stay on the gateway.
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { freePort, spawnChild, stopChild, waitFor } from './proc.js';

export const GLEWLWYD = '/usr/bin/glewlwyd';
const DEBIAN_CONF = '/etc/glewlwyd/glewlwyd.conf';
const INIT_SQL = '/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz';

/** What the gateway's config needs (see gateway.js). */
export const GLEWLWYD_OP = {
  name: 'Glewlwyd',
  issuerPath: '/api/oidc',
  endSessionPath: '/api/oidc/end_session',
  sessionCookies: ['GLEWLWYD2_SESSION_ID'],
  sessionCookiePaths: [],
};

export const GLEWLWYD_USER = { username: 'alice', password: 'wonderland' };

/** Glewlwyd's registration of an RP (Apache RPs, see apache-rp.js). */
function client(rp) {
  return {
    client_id: rp.clientId,
    name: rp.name,
    description: rp.name,
    confidential: true,
    password: rp.clientSecret,
    redirect_uri: [rp.redirectUri],
    authorization_type: ['code', 'refresh_token'],
    scope: ['openid'],
    token_endpoint_auth_method: ['client_secret_basic'],
    post_logout_redirect_uri: rp.loggedOutUrl,
    enabled: true,
  };
}

/** The OIDC plugin: Glewlwyd's defaults where it has them, a fresh RSA key, PKCE allowed. */
function plugin(issuer) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs1', format: 'pem' });
  const cert = publicKey.export({ type: 'spki', format: 'pem' });
  return {
    module: 'oidc',
    name: 'oidc',
    display_name: 'OpenID Connect',
    enabled: true,
    parameters: {
      iss: issuer,
      'jwt-type': 'rsa',
      'jwt-key-size': '256',
      key,
      cert,
      'access-token-duration': 3600,
      'refresh-token-duration': 1209600,
      'code-duration': 600,
      'refresh-token-rolling': true,
      'allow-non-oidc': false,
      'auth-type-code-enabled': true,
      'auth-type-token-enabled': false,
      'auth-type-id-token-enabled': true,
      'auth-type-none-enabled': false,
      'auth-type-password-enabled': false,
      'auth-type-client-enabled': false,
      'auth-type-device-enabled': false,
      'auth-type-refresh-enabled': true,
      scope: [],
      'additional-parameters': [],
      claims: [],
      'jwks-show': true,
      'secret-type': 'pairwise',
      'address-claim': { type: 'no', formatted: '', street_address: '', locality: '', region: '', postal_code: '', country: '', mandatory: false },
      'name-claim': 'no',
      'name-claim-scope': [],
      'email-claim': 'no',
      'email-claim-scope': [],
      'scope-claim': 'no',
      'scope-claim-scope': [],
      'allowed-scope': ['openid'],
      'pkce-allowed': true,
      'pkce-method-plain-allowed': false,
      'request-parameter-allow': false,
      'introspection-revocation-allowed': false,
      'register-client-allowed': false,
      // Glewlwyd's default: no session management, hence no `sid` in ID tokens.
      'session-management-allowed': false,
      'subject-type': 'public',
    },
  };
}

/** One admin API call with the admin session `cookie`; throws unless 200. */
async function admin(url, cookie, method, path, body) {
  const r = await fetch(`${url}/api${path}`, {
    method,
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 200) throw new Error(`Glewlwyd ${method} ${path}: HTTP ${r.status} ${await r.text()}`);
}

/**
 * Start Glewlwyd for a gateway at `origin` with `rps` registered. Resolves { url, issuer, stop }:
 * `url` is where the gateway's upstream.url points.
 */
export async function startGlewlwyd({ origin, rps, logPath }) {
  const dir = mkdtempSync(join(tmpdir(), 'lgw-glewlwyd-'));
  const db = join(dir, 'glewlwyd.db');
  const init = spawnSync('sqlite3', [db], { input: gunzipSync(readFileSync(INIT_SQL)) });
  if (init.status !== 0) throw new Error(`sqlite3: ${init.stderr}`);
  const port = await freePort();
  // Debian's configuration, with the port, public URL, log and database of this run.
  const conf = readFileSync(DEBIAN_CONF, 'utf8')
    .replace(/^port=.*$/m, `port=${port}`)
    // Without a trailing slash: Glewlwyd joins "/api/…" and "/login.html" to it.
    .replace(/^external_url=.*$/m, `external_url="${origin}"`)
    // Its web pages (the sign-in page the authorization endpoint sends the browser to).
    .replace(/^#\s*static_files_path=.*$/m, 'static_files_path="/usr/share/glewlwyd/webapp/"')
    .replace(/^log_file=.*$/m, `log_file="${join(dir, 'glewlwyd.log')}"`)
    .replace(/^@include.*$/m, `database =\n{\n  type = "sqlite3"\n  path = "${db}"\n};`);
  const confPath = join(dir, 'glewlwyd.conf');
  writeFileSync(confPath, conf);
  const log = createWriteStream(logPath ?? join(dir, 'stdout.log'));
  const child = spawnChild(GLEWLWYD, [`--config-file=${confPath}`], { logStream: log });
  const url = `http://127.0.0.1:${port}`;
  const up = await waitFor('Glewlwyd to answer', 15_000, async () => {
    if (child.done) return 'exited';
    try {
      return (await fetch(`${url}/api/user/`)).status === 401 && 'up';
    } catch {
      return false;
    }
  });
  if (up !== 'up') throw new Error(`Glewlwyd did not start: ${readFileSync(join(dir, 'glewlwyd.log'), 'utf8').slice(-2000)}`);
  // The administrator of a fresh database (admin / password), as its documentation says.
  const login = await fetch(`${url}/api/auth/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'password' }),
  });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
  if (login.status !== 200 || !cookie) throw new Error(`Glewlwyd admin login: HTTP ${login.status}`);
  const issuer = `${origin}${GLEWLWYD_OP.issuerPath}`;
  await admin(url, cookie, 'POST', '/mod/plugin/', plugin(issuer));
  await admin(url, cookie, 'POST', '/user/', {
    ...GLEWLWYD_USER,
    name: 'Alice',
    email: 'alice@example.org',
    scope: ['openid', 'g_profile'],
    enabled: true,
  });
  for (const rp of rps) await admin(url, cookie, 'POST', '/client/', client(rp));
  return {
    url,
    issuer,
    log: () => readFileSync(join(dir, 'glewlwyd.log'), 'utf8'),
    stop: async () => {
      await stopChild(child);
      log.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
