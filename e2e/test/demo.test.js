// The demo (scripts/demo runs e2e/demo.js), on free ports so it can run beside anything: it
// prints the URL to open, that URL and the gateway it names answer, and Ctrl-C (SIGINT) stops
// it cleanly: exit status 0, and nothing it started is left listening.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../lib/proc.js';

const demoJs = fileURLToPath(new URL('../demo.js', import.meta.url));
let demo;
let output = '';
const exited = () => demo.exitCode !== null || demo.signalCode !== null;

after(() => {
  if (demo && !exited()) demo.kill('SIGKILL');
});

/** The first capture of `re` in what the demo printed so far. */
const printed = (re) => output.match(re)?.[1];

test('the demo starts on free ports and prints a URL that answers', { timeout: 60_000 }, async () => {
  demo = spawn(process.execPath, [demoJs, '--free-ports', '--fc-delay', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout.on('data', (d) => { output += d; });
  demo.stderr.on('data', (d) => { output += d; });
  const url = await waitFor('the demo to print the URL to open', 45_000, () => {
    if (exited()) throw new Error(`the demo exited (${demo.exitCode ?? demo.signalCode}):\n${output}`);
    return printed(/Open (http:\/\/127\.0\.0\.1:\d+\/)/);
  });
  assert.ok(!url.endsWith(':8081/'), `a free port, not the documented default: ${url}`);
  const page = await fetch(url);
  assert.equal(page.status, 200, `${url} answers`);
  assert.match(await page.text(), /Sign in/i);
  const issuer = printed(/gateway \(issuer\) (http:\/\/127\.0\.0\.1:\d+)/);
  assert.ok(issuer, `the demo names its gateway:\n${output}`);
  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(discovery.status, 200);
  assert.equal((await discovery.json()).end_session_endpoint, `${issuer}/session/end`, 'published by the gateway');
});

test('Ctrl-C stops the demo cleanly: exit 0, its gateway no longer listening', { timeout: 30_000 }, async () => {
  assert.ok(demo && !exited(), 'the demo is running');
  const issuer = printed(/gateway \(issuer\) (http:\/\/127\.0\.0\.1:\d+)/);
  demo.kill('SIGINT');
  await waitFor('the demo to exit', 15_000, exited);
  assert.equal(demo.exitCode, 0, `exit status 0:\n${output}`);
  await assert.rejects(fetch(`${issuer}/`), 'the gateway it started is gone');
});
