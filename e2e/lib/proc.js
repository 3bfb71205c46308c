// Process and port plumbing shared by the e2e tests and the demo: free loopback ports, polling
// with a deadline (never a sleep as synchronisation), and child processes that are always ended
// when this Node process ends, however it ends.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** A loopback port nobody listens on right now (small race: the gateway cannot report a port-0 bind). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Poll `probe` until it returns a truthy value (which is returned) or `timeoutMs` passes (throws,
 * naming `what` and the last error). The 25 ms pause is between probes, not a guess at timing.
 */
export async function waitFor(what, timeoutMs, probe) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await delay(25);
  }
}

// Every child we started, so an exit of any kind (test failure, uncaught error, Ctrl-C) ends them.
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

// What SIGINT/SIGTERM runs before exiting 0 (the demo's clean stop); without it they exit 130 at
// once (tests). A second signal during the stop exits at once too (the handlers are `once`).
let stopHook = null;
export function onStop(fn) {
  stopHook = fn;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    if (!stopHook) process.exit(130);
    await stopHook().catch((e) => console.error(`stopping: ${e.message}`));
    process.exit(0);
  });
}

// setpriv (util-linux) makes the kernel SIGKILL the child if we die without running any handler
// (SIGKILL, OOM): no gateway or redis-server outlives its test run.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Spawn a child whose stdout and stderr go to `logStream`; it is killed when we exit. */
export function spawnChild(cmd, args, { logStream, env } = {}) {
  const [file, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  children.add(child);
  // `done` turns true when the child exited or could not be started at all (ENOENT).
  child.done = false;
  child.exited = new Promise((resolve) => {
    const finish = (how) => {
      child.done = true;
      children.delete(child);
      resolve(how);
    };
    child.once('exit', (code, signal) => finish({ code, signal }));
    child.once('error', (e) => {
      logStream?.write(`spawn ${cmd} failed: ${e.message}\n`);
      finish({ error: e });
    });
  });
  if (logStream) {
    child.stdout.pipe(logStream, { end: false });
    child.stderr.pipe(logStream, { end: false });
  } else {
    child.stdout.resume();
    child.stderr.resume();
  }
  return child;
}

/** Ask a child to stop (SIGTERM), escalate to SIGKILL after `graceMs`, and wait for it. */
export async function stopChild(child, graceMs = 3000) {
  if (!children.has(child)) return;
  child.kill('SIGTERM');
  const escalate = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(escalate);
}

/** Listen an http.Server on 127.0.0.1 (port 0: any free port) and resolve its port. */
export function listen(server, port = 0, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

/** Close an http.Server, ending keep-alive and hanging connections too. */
export function close(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
