// The example OP's own sign-in page (node-oidc-provider leaves interactions to the deployer):
// GET /interaction/:uid shows a username/password form, POST /interaction/:uid/login checks the
// password and finishes the login prompt. Consent is never asked (op.js loadExistingGrant grants
// the requested scopes), so this is the one page a person or the browser in the tests types into.
import { escapeHtml, page } from './html.js';

/** The accounts the example OP knows: username -> password and claims. */
export const ACCOUNTS = {
  alice: { password: 'wonderland', name: 'Alice Liddell', email: 'alice@example.org' },
  bob: { password: 'builder', name: 'Bob Builder', email: 'bob@example.org' },
};

function loginPage(uid, { error, login = '' } = {}) {
  const hint = Object.entries(ACCOUNTS).map(([u, a]) => `<code>${u}</code> / <code>${a.password}</code>`).join(', ');
  return page('Sign in: example OP', `
<h1>Example OP: sign in</h1>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/login" id="login-form">
  <label>Username <input name="login" id="login" autocomplete="username" required value="${escapeHtml(login)}"></label>
  <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
  <button type="submit" id="sign-in">Sign in</button>
</form>
<p class="muted">Demo accounts: ${hint}</p>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16_384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

/** Check the typed credentials; on success the provider redirects back to the authorization. */
async function submitLogin(provider, req, res, uid, send) {
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const account = Object.hasOwn(ACCOUNTS, login) ? ACCOUNTS[login] : undefined;
  if (!account || account.password !== form.get('password')) {
    send(200, loginPage(uid, { error: 'Wrong username or password.', login }));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
}

/**
 * Handle an interaction request for `provider`; returns false when `req` is not one (the caller
 * hands it to the provider then).
 */
export async function handleInteraction(provider, req, res) {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(new URL(req.url, 'http://x').pathname);
  if (!m) return false;
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== m[1] || details.prompt.name !== 'login') send(400, page('Error', '<p>Unexpected interaction.</p>'));
    else if (req.method === 'GET' && !m[2]) send(200, loginPage(details.uid));
    else if (req.method === 'POST' && m[2]) await submitLogin(provider, req, res, details.uid, send);
    else send(405, page('Error', '<p>Method not allowed.</p>'));
  } catch (e) {
    // An expired or unknown interaction (e.g. a reloaded old form): say so instead of a 500.
    if (!res.headersSent) send(400, page('Error', `<p>Sign-in could not continue: ${escapeHtml(e.message)}</p>`));
  }
  return true;
}
