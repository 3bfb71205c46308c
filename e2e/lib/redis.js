// A real redis-server on a free loopback port, without persistence, as tests/it/harness.rs runs
// it; ready once it answers PING.
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { freePort, spawnChild, stopChild, waitFor } from './proc.js';

/** Send PING, resolve true on +PONG (false on anything else, within a second). */
export function ping(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** Start redis-server; retries on a new port if the reserved one was taken meanwhile. */
export async function startRedis({ logStream } = {}) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawnChild(
      'redis-server',
      // In the temp directory: never load an RDB file some other server left behind.
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--dbfilename', `lgw-e2e-${port}.rdb`],
      { logStream },
    );
    const up = await waitFor('redis-server to answer PING', 10_000, async () => {
      if (child.done) return 'exited';
      return (await ping(port)) && 'up';
    });
    if (up === 'up') {
      return { port, url: `redis://127.0.0.1:${port}/0`, stop: () => stopChild(child) };
    }
    if (attempt >= 2) throw new Error('redis-server did not start (is it installed? scripts/test installs it)');
  }
}
