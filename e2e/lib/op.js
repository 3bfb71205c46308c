// The upstream OP: node-oidc-provider on its own loopback port, its issuer set to the gateway's
// origin (browsers and RPs only ever talk to it through the gateway). It knows the relying
// parties' redirect and post-logout URIs, and their back-channel logout URIs too: not because it
// will ever send a logout token (its end_session endpoint, the only place it would, is answered by
// the gateway) but because node-oidc-provider puts `sid` into a client's ID tokens only when
// that client has backchannel_logout_uri and backchannel_logout_session_required. Without a sid
// the gateway could not tie an RP's hint to the session it learned.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { ACCOUNTS, handleInteraction } from './op-login.js';
import { close, listen } from './proc.js';

/** Auto-consent: every client gets the scopes it asks for, once the user has signed in. */
async function loadExistingGrant(ctx) {
  const { session, client, provider, result } = ctx.oidc;
  if (!session.accountId) return undefined;
  const grantId = result?.consent?.grantId || session.grantIdFor(client.clientId);
  if (grantId) return provider.Grant.find(grantId);
  const grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  grant.addOIDCScope('openid profile email');
  await grant.save();
  return grant;
}

async function findAccount(ctx, id) {
  const a = Object.hasOwn(ACCOUNTS, id) ? ACCOUNTS[id] : undefined;
  if (!a) return undefined;
  return { accountId: id, claims: () => ({ sub: id, name: a.name, email: a.email, email_verified: true }) };
}

/** The OP's registration of one RP (see rp.js for the paths; an Apache RP brings its own). */
function clientMetadata(rp) {
  if (rp.opMetadata) return rp.opMetadata;
  return {
    client_id: rp.clientId,
    client_secret: rp.clientSecret,
    client_name: rp.name,
    redirect_uris: [`${rp.origin}/callback`],
    post_logout_redirect_uris: [`${rp.origin}/logged-out`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: `${rp.origin}/backchannel-logout`,
    backchannel_logout_session_required: true,
  };
}

/**
 * Start the OP for `issuer` with `rps` registered. `port` 0 picks a free one. Resolves
 * { url, stop }: `url` is where the gateway's upstream.url points.
 */
export async function startOp({ issuer, rps, port = 0 }) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'op-e2e-1' };
  const provider = new Provider(issuer, {
    clients: rps.map(clientMetadata),
    jwks: { keys: [jwk] },
    findAccount,
    loadExistingGrant,
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'profile', 'email'],
    features: { devInteractions: { enabled: false }, backchannelLogout: { enabled: true } },
    // Signed cookies, as a production OP would have: `_session` plus `_session.sig`. SameSite=Lax
    // (v9's default): v8's default, None, needs Secure, which an http origin cannot set, so the
    // browser would keep only the `_session.legacy` copy (the gateway config lists both names).
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      long: { httpOnly: true, sameSite: 'lax' },
    },
    pkce: { required: () => true, methods: ['S256'] },
    // Explicit lifetimes (seconds), short as in a test, and without the library's notices.
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  // The gateway sends X-Forwarded-Proto/-Host for the browser's view; trust them.
  provider.proxy = true;
  const callback = provider.callback();
  const server = createServer(async (req, res) => {
    if (!(await handleInteraction(provider, req, res))) callback(req, res);
  });
  const bound = await listen(server, port);
  return { url: `http://127.0.0.1:${bound}`, provider, stop: () => close(server) };
}
