// Steps the scenarios share: set up a stack and a browser per test file (torn down in `after`,
// whatever happened), sign in to every RP as a person would, wait for what RPs record.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { decodeJwt } from 'jose';
import { launchBrowser, notAPng, screenshot } from '../lib/browser.js';
import { artifactsDir } from '../lib/paths.js';
import { waitFor } from '../lib/proc.js';
import { startStack } from '../lib/stack.js';

/**
 * Start a stack (real redis-server, node-oidc-provider, three RPs, the gateway binary) and
 * Chromium before the file's tests; `ctx` gets { stack, browser, page, visited }. `visited`
 * lists every URL any frame of the page navigated to, in order.
 */
export function useStack(name, stackOpts = {}, browserOpts = {}) {
  const ctx = { visited: [] };
  before(async () => {
    ctx.stack = await startStack({ redis: true, logPath: join(artifactsDir(), `${name}-gateway.log`), ...stackOpts });
    ctx.browser = await launchBrowser(undefined, browserOpts);
    ctx.page = await ctx.browser.newPage();
    ctx.page.setDefaultTimeout(15_000);
    ctx.page.on('framenavigated', (f) => ctx.visited.push(f.url()));
  }, { timeout: 60_000 });
  after(async () => {
    await ctx.browser?.close().catch(() => {});
    await ctx.stack?.stop();
  }, { timeout: 30_000 });
  return ctx;
}

/**
 * Take the screenshot `name` of `page` and assert it: a non-empty PNG image in
 * target/e2e-artifacts/ (the artifacts a person looks at must exist). Resolves its path.
 */
export async function assertScreenshot(page, name) {
  const path = await screenshot(page, name);
  assert.equal(notAPng(path), null, `screenshot ${name}`);
  return path;
}

/** Wait until the top-level page is at a URL starting with `prefix` and has finished loading. */
export async function waitForPage(page, prefix, timeoutMs = 15_000) {
  await waitFor(`the browser to reach ${prefix} (now at ${page.url()})`, timeoutMs, () => page.url().startsWith(prefix));
  await page.waitForFunction(() => document.readyState === 'complete', { timeout: timeoutMs });
}

/** Click `selector` and wait for the navigation (with all its HTTP redirects) to finish. */
export async function clickAndWait(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

/**
 * Sign in to rp1 by typing into the OP's own login form (served through the gateway), then to
 * rp2 and rp3, which must get single sign-on: no login form on their way back. `screenshots`
 * saves the login form and rp1's signed-in page as artifacts; `wrongFirst` types a wrong password
 * first.
 */
export async function signInEverywhere(ctx, { user = 'alice', password = 'wonderland', screenshots = false, wrongFirst = false } = {}) {
  const { page, stack } = ctx;
  const [rp1, ...others] = stack.rps;
  await page.goto(`${rp1.origin}/login`);
  assert.ok(page.url().startsWith(`${stack.issuer}/interaction/`), `the OP's login form, through the gateway: ${page.url()}`);
  if (wrongFirst) {
    // The form really checks: a wrong password keeps the browser at the OP with an error.
    await page.type('#login', user);
    await page.type('#password', `${password}-wrong`);
    await clickAndWait(page, '#sign-in');
    assert.ok(page.url().startsWith(`${stack.issuer}/interaction/`), `still at the OP: ${page.url()}`);
    assert.equal(await page.$eval('#error', (e) => e.textContent), 'Wrong username or password.');
    await page.$eval('#login', (e) => { e.value = ''; });
  }
  await page.type('#login', user);
  await page.type('#password', password);
  if (screenshots) await assertScreenshot(page, 'op-login-page');
  await clickAndWait(page, '#sign-in');
  await assertSignedIn(page, rp1, user);
  if (screenshots) await assertScreenshot(page, 'rp1-signed-in');
  for (const rp of others) {
    const from = ctx.visited.length;
    await page.goto(`${rp.origin}/login`);
    await assertSignedIn(page, rp, user);
    const seen = ctx.visited.slice(from);
    assert.ok(!seen.some((u) => u.includes('/interaction/')), `${rp.clientId} got SSO, no login form: ${seen.join(' ')}`);
  }
}

export async function assertSignedIn(page, rp, user) {
  assert.equal(new URL(page.url()).origin, rp.origin, `back at ${rp.clientId}: ${page.url()}`);
  const status = await page.$eval('#status', (e) => e.dataset.state);
  assert.equal(status, 'signed-in', `${rp.clientId} shows the signed-in state`);
  assert.equal(await page.$eval('#sub', (e) => e.textContent), user);
}

/** The claims of the (last) ID token `rp` received through the code flow. */
export function idTokenClaims(rp) {
  const login = rp.records.logins.at(-1);
  assert.ok(login, `${rp.clientId} signed in`);
  return decodeJwt(login.idToken);
}

/** Wait until every RP recorded something in `records[kind]`; resolves { clientId: entries }. */
export async function waitForEach(rps, kind, timeoutMs = 10_000) {
  const now = () => rps.map((rp) => `${rp.clientId}: ${JSON.stringify(rp.records[kind])}${kind === 'backchannel' ? ` rejected ${JSON.stringify(rp.records.backchannelRejected)}` : ''}`);
  await waitFor(`every RP to record a ${kind} call`, timeoutMs, () => rps.every((rp) => rp.records[kind].length > 0)).catch((e) => {
    throw new Error(`${e.message}; recorded: ${now().join('; ')}`);
  });
  return Object.fromEntries(rps.map((rp) => [rp.clientId, rp.records[kind]]));
}

/** Assert each RP's front-channel URL was loaded by the browser, in an iframe, with iss and ITS sid. */
export function assertFrontchannel(rps, issuer) {
  for (const rp of rps) {
    const { sid } = idTokenClaims(rp);
    assert.deepEqual(
      rp.records.frontchannel.map(({ iss, sid: s, dest }) => ({ iss, sid: s, dest })),
      [{ iss: issuer, sid, dest: 'iframe' }],
      `${rp.clientId}: one front-channel call from the browser's iframe with iss and the sid of its own ID token`,
    );
  }
}

/** Assert each RP got exactly one valid logout token naming its own sid and the subject. */
export async function assertBackchannel(rps, issuer) {
  await waitForEach(rps, 'backchannel');
  for (const rp of rps) {
    const { sid, sub } = idTokenClaims(rp);
    assert.deepEqual(rp.records.backchannelRejected, [], `${rp.clientId} refused no logout token`);
    const [token, ...more] = rp.records.backchannel;
    assert.equal(more.length, 0, `${rp.clientId}: one logout token`);
    assert.deepEqual(
      { iss: token.iss, aud: token.aud, sid: token.sid, sub: token.sub, typ: token.typ },
      { iss: issuer, aud: rp.clientId, sid, sub, typ: 'logout+jwt' },
    );
  }
}

/**
 * A prompt=none authorization request for an Apache RP (`rp.redirectUri`) through the gateway, at
 * the OP's authorization endpoint from discovery: the error it answers at the RP's redirect URI
 * ('code' when it signed the browser in).
 */
export async function promptNoneAt(ctx, rp) {
  const { page, stack } = ctx;
  const doc = await (await fetch(`${stack.issuer}/.well-known/openid-configuration`)).json();
  const q = new URLSearchParams({
    client_id: rp.clientId,
    response_type: 'code',
    scope: 'openid',
    prompt: 'none',
    redirect_uri: rp.redirectUri,
    state: 'st',
    nonce: 'n',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  const from = ctx.visited.length;
  await page.goto(`${doc.authorization_endpoint}?${q}`, { waitUntil: 'load' });
  const back = ctx.visited.slice(from).find((u) => u.startsWith(rp.redirectUri));
  assert.ok(back, `back at ${rp.clientId}'s redirect URI: ${ctx.visited.slice(from).join(' ')}`);
  const u = new URL(back);
  return u.searchParams.get('error') ?? (u.searchParams.get('code') ? 'code' : 'nothing');
}

/** The status of the OP's userinfo endpoint (from discovery, through the gateway) for `token`. */
export async function userinfoStatusAt(stack, token) {
  const doc = await (await fetch(`${stack.issuer}/.well-known/openid-configuration`)).json();
  return (await fetch(doc.userinfo_endpoint, { headers: { authorization: `Bearer ${token}` } })).status;
}

