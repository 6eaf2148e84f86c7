/**
 * hub.ts's redirect policy on a real local server: a redirect to plain http off loopback is
 * refused before any request goes there; the token follows a redirect within the hub's
 * origin; repo ids that could escape the destination folder are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRepoId, HubError, hubFetch, hubOptionsFromEnv } from '../../../server/src/models/hub';

test('redirects: http off loopback refused, same-origin hops keep the token', async () => {
  const seen: { path: string; auth?: string }[] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url!, auth: req.headers.authorization });
    if (req.url === '/away') return void res.writeHead(302, { location: 'http://example.com/file' }).end();
    if (req.url === '/moved') return void res.writeHead(307, { location: '/here' }).end();
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const get = hubFetch({ endpoint, token: 't0k' });
    await assert.rejects(get(`${endpoint}/away`, {}), (e: unknown) => e instanceof HubError && /http:\/\/example\.com is not https/.test(e.message));
    const res = await get(`${endpoint}/moved`, {});
    assert.equal(await res.text(), 'ok');
    assert.deepEqual(seen.map((s) => [s.path, s.auth]), [['/away', 'Bearer t0k'], ['/moved', 'Bearer t0k'], ['/here', 'Bearer t0k']]);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('repo ids and endpoints', () => {
  assert.equal(checkRepoId('Qwen/Qwen2.5-VL-3B-Instruct'), 'Qwen/Qwen2.5-VL-3B-Instruct');
  for (const bad of ['../x', 'Qwen/..', 'Qwen', 'a/b/c', '/abs', 'Qwen/x y']) assert.throws(() => checkRepoId(bad), HubError, bad);
  assert.deepEqual(hubOptionsFromEnv({ HF_ENDPOINT: 'https://mirror.example/', HF_TOKEN: 'env' }), { endpoint: 'https://mirror.example', token: 'env' });
  assert.equal(hubOptionsFromEnv({ HF_TOKEN: 'env' }, 'setting').token, 'setting');
  assert.equal(hubOptionsFromEnv({}).endpoint, 'https://huggingface.co');
  assert.throws(() => hubOptionsFromEnv({ HF_ENDPOINT: 'http://mirror.example' }), /not https/);
});
