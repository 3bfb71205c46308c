// An example relying party: a small Node server that signs in with the authorization code flow
// (PKCE, nonce, state) through the gateway, keeps the ID token it received, logs out at the
// gateway's end_session endpoint with id_token_hint, post_logout_redirect_uri and state, and
// records what the gateway's logout sends it: front-channel calls (iss, sid) and verified
// back-channel logout tokens. `records` is what tests assert on (also served at /recorded).
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { verifyLogoutToken } from './logout-token.js';
import { frontchannelPage, homePage, loggedOutPage, messagePage } from './rp-pages.js';
import { close, listen } from './proc.js';

const rand = () => randomBytes(18).toString('base64url');

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

async function readBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65_536) throw new Error('body too large');
  }
  return body;
}

/**
 * Start a relying party. `issuer` is the gateway's origin. `frontchannel`: 'answer' (default),
 * 'hang' (record the call, never answer: a broken RP) or a delay in ms before answering (the
 * demo, so a person can see the iframes). All RPs share the host 127.0.0.1, whose cookies are
 * shared across ports, so each RP's cookies carry its client_id in their names.
 */
export async function startRp({ name, clientId, clientSecret, issuer, port = 0, accent = '#0969da', frontchannel = 'answer' }) {
  const rp = { name, clientId, clientSecret, issuer, accent, peers: [], origin: '' };
  rp.records = { logins: [], authErrors: [], logoutStates: [], loggedOut: [], frontchannel: [], backchannel: [], backchannelRejected: [] };
  const sessions = new Map(); // local session id -> what the RP knows about the signed-in user
  const pending = new Map(); // state -> { nonce, verifier }
  const sessionCookie = `${clientId}_session`;
  const txCookie = `${clientId}_tx`;
  let discovery;
  let jwks;

  async function op() {
    if (!discovery) {
      const r = await fetch(`${issuer}/.well-known/openid-configuration`);
      if (r.status !== 200) throw new Error(`discovery: HTTP ${r.status}`);
      const doc = await r.json();
      if (doc.issuer !== issuer) throw new Error(`discovery issuer ${doc.issuer} is not ${issuer}`);
      discovery = doc;
      jwks = createRemoteJWKSet(new URL(doc.jwks_uri));
    }
    return discovery;
  }

  const html = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(body);
  };
  const redirect = (res, location, headers = {}) => {
    res.writeHead(303, { location, 'cache-control': 'no-store', ...headers });
    res.end();
  };
  const currentSession = (req) => sessions.get(cookies(req)[sessionCookie]);

  async function login(req, res, url) {
    const d = await op();
    const state = rand();
    const nonce = rand();
    const verifier = rand() + rand();
    pending.set(state, { nonce, verifier, prompt: url.searchParams.get('prompt') });
    const auth = new URL(d.authorization_endpoint);
    auth.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: `${rp.origin}/callback`,
      scope: 'openid profile email',
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...(url.searchParams.get('prompt') === 'none' ? { prompt: 'none' } : {}),
    }).toString();
    redirect(res, auth.href, { 'set-cookie': `${txCookie}=${state}; Path=/; HttpOnly; SameSite=Lax` });
  }

  async function callback(req, res, url) {
    const state = url.searchParams.get('state');
    const tx = pending.get(state);
    if (!tx || cookies(req)[txCookie] !== state) return html(res, 400, messagePage(rp, 'Error', 'Unknown or foreign state.'));
    pending.delete(state);
    const error = url.searchParams.get('error');
    if (error) {
      rp.records.authErrors.push({ error, state, prompt: tx.prompt, iss: url.searchParams.get('iss') });
      return html(res, 200, homePage(rp, undefined, `The OP answered ${error}.`));
    }
    const d = await op();
    const tokenResponse = await fetch(d.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: url.searchParams.get('code'), redirect_uri: `${rp.origin}/callback`, code_verifier: tx.verifier }),
    });
    const tokens = await tokenResponse.json();
    if (tokenResponse.status !== 200) throw new Error(`token endpoint: HTTP ${tokenResponse.status} ${JSON.stringify(tokens)}`);
    const { payload } = await jwtVerify(tokens.id_token, jwks, { issuer, audience: clientId, algorithms: ['RS256'] });
    if (payload.nonce !== tx.nonce) throw new Error('nonce mismatch');
    const info = await fetch(d.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const claims = info.status === 200 ? await info.json() : {};
    const session = { sub: payload.sub, sid: payload.sid, iss: payload.iss, name: claims.name, idToken: tokens.id_token, accessToken: tokens.access_token };
    const local = rand();
    sessions.set(local, session);
    rp.records.logins.push({ sub: payload.sub, sid: payload.sid, idToken: tokens.id_token, accessToken: tokens.access_token, sessionState: url.searchParams.get('session_state'), at: Date.now() });
    redirect(res, '/', { 'set-cookie': [`${sessionCookie}=${local}; Path=/; HttpOnly; SameSite=Lax`, `${txCookie}=; Path=/; Max-Age=0`] });
  }

  async function logout(req, res) {
    const session = currentSession(req);
    if (!session) return html(res, 200, homePage(rp, undefined));
    const d = await op();
    const state = rand();
    rp.records.logoutStates.push(state);
    const end = new URL(d.end_session_endpoint);
    end.search = new URLSearchParams({ id_token_hint: session.idToken, post_logout_redirect_uri: `${rp.origin}/logged-out`, state }).toString();
    redirect(res, end.href);
  }

  /** Drop every local session the OP's `sid` names (what a front- or back-channel logout means). */
  function endLocal(sid) {
    let ended = false;
    for (const [k, s] of sessions) if (s.sid === sid) ended = sessions.delete(k) || ended;
    return ended;
  }

  function frontchannelLogout(req, res, url) {
    const iss = url.searchParams.get('iss');
    const sid = url.searchParams.get('sid');
    // Sec-Fetch-Dest tells that the browser loaded this in an iframe (not some server fetching it).
    rp.records.frontchannel.push({ iss, sid, dest: req.headers['sec-fetch-dest'], at: Date.now() });
    if (frontchannel === 'hang') return; // a broken RP: the connection stays open, no answer
    const outcome = iss !== issuer ? 'foreign' : endLocal(sid) ? 'ended' : 'none';
    const body = frontchannelPage(rp, sid, outcome);
    if (typeof frontchannel !== 'number') return html(res, 200, body);
    // The demo: show the text at once but finish the response (the iframe's load event, which the
    // gateway's page waits for) only after the delay, so a person can watch the iframes.
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.write(body);
    setTimeout(() => res.end(), frontchannel);
  }

  async function backchannelLogout(req, res) {
    const token = new URLSearchParams(await readBody(req)).get('logout_token');
    try {
      await op();
      const { payload, header } = await verifyLogoutToken(token ?? '', { issuer, clientId, jwks });
      endLocal(payload.sid);
      rp.records.backchannel.push({ sid: payload.sid, sub: payload.sub, jti: payload.jti, aud: payload.aud, iss: payload.iss, typ: header.typ, kid: header.kid, at: Date.now() });
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    } catch (e) {
      rp.records.backchannelRejected.push({ reason: e.message, at: Date.now() });
      res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ error: 'invalid_request' }));
    }
  }

  /** What was recorded, without the tokens themselves. */
  function recorded(res) {
    const r = rp.records;
    const body = { ...r, logins: r.logins.map(({ sub, sid, at }) => ({ sub, sid, at })) };
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body, null, 2));
  }

  async function route(req, res) {
    const url = new URL(req.url, rp.origin);
    const get = req.method === 'GET';
    switch (url.pathname) {
      case '/': return get && html(res, 200, homePage(rp, currentSession(req), undefined, discovery?.end_session_endpoint));
      case '/login': return get && login(req, res, url);
      case '/callback': return get && callback(req, res, url);
      case '/logout': return get && logout(req, res);
      case '/logged-out': {
        const state = url.searchParams.get('state');
        rp.records.loggedOut.push({ state, url: req.url, at: Date.now() });
        return get && html(res, 200, loggedOutPage(rp, state, rp.records.logoutStates.includes(state)));
      }
      case '/frontchannel-logout': return get && frontchannelLogout(req, res, url);
      case '/backchannel-logout': return req.method === 'POST' && backchannelLogout(req, res);
      case '/recorded': return get && recorded(res);
      default: return false;
    }
  }

  const server = createServer((req, res) => {
    route(req, res)
      .then((handled) => {
        if (handled === false) html(res, 404, messagePage(rp, 'Not found', req.url));
      })
      .catch((e) => {
        if (!res.headersSent) html(res, 500, messagePage(rp, 'Error', e.message));
      });
  });
  const bound = await listen(server, port);
  rp.origin = `http://127.0.0.1:${bound}`;
  rp.stop = () => close(server);
  return rp;
}
