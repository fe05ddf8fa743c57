// What every driver of Milestone's official sample page needs: serve one release of the page from
// its own loopback origin, launch Debian's Chromium so that WebRTC works on a loopback-only host,
// answer the page's one external script (adapter.js) without the internet, fill the form and find
// the Start button of the chosen signaling. Used by official-sample.mjs (conformance scenarios)
// and sample-ttff.mjs (time to first frame).
//
// Why no Playwright `route`: with any route active, Playwright answers CORS preflights itself and
// the gateway would never see them; the adapter is answered through a CDP Fetch pattern that
// matches only its URL, and every other non-loopback host is unresolvable in the browser.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '..');
// CI lays shared/ beside the clone of the repository, as on a developer's machine.
export const DEFAULT_SAMPLE_ROOT = resolve(REPO_ROOT, '..', 'shared', 'reference', 'milestone-webrtc-sample');
export const ADAPTER_URL = 'https://webrtc.github.io/adapter/adapter-latest.js';
const ADAPTER_FILE = join(HERE, 'node_modules', 'webrtc-adapter', 'out', 'adapter.js');
export const RELEASES = ['2023R1', '2023R3', '2024R1', '2024R2', '2025R1', '2025R2'];
// Releases whose page has the REST/WebSocket tabs, the `commands` data channel and PTZ buttons.
export const SIGNALING_CHOICE_SINCE = '2025R1';
// Releases whose page has stream, playback and STUN/TURN fields.
export const PLAYBACK_SINCE = '2023R3';
// Releases whose page has the includeAudio checkbox and the deviceId field.
export const AUDIO_SINCE = '2025R2';

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A static file server for one folder on 127.0.0.1:0; refuses anything outside the folder. */
export async function serveFolder(root) {
  const rootWithSep = root.endsWith(sep) ? root : root + sep;
  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const relative = decodeURIComponent(url.pathname).replace(/^\/+/, '') || 'index.html';
      if (relative === 'favicon.ico') {
        // The sample has none; an empty answer keeps a 404 out of the page's console.
        response.writeHead(204).end();
        return;
      }
      const file = normalize(join(root, relative));
      if (!file.startsWith(rootWithSep) || request.method !== 'GET') {
        response.writeHead(request.method === 'GET' ? 403 : 405).end();
        return;
      }
      const info = await stat(file);
      if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      response.writeHead(200, {
        'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'Content-Length': info.size,
        'Cache-Control': 'no-store',
      });
      createReadStream(file).pipe(response);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, '127.0.0.1', resolveListen);
  });
  return server;
}

/** Stops a server from serveFolder, dropping kept-alive connections. */
export function closeServer(server) {
  server.close();
  server.closeAllConnections?.();
}

/** The release's folder, checked to hold the page. */
export async function releaseFolder(sampleRoot, release) {
  const folder = resolve(sampleRoot, release);
  if (!(await stat(join(folder, 'index.html')).catch(() => null))) {
    throw new Error(`official sample not found at ${folder} (set --sample-root or XPROTECT_SAMPLE_ROOT)`);
  }
  return folder;
}

/** adapter.js from the npm package, which the page would load from the internet. */
export async function readAdapter() {
  return readFile(ADAPTER_FILE).catch(() => {
    throw new Error(`${ADAPTER_FILE} missing: run \`npm ci --prefix browser\``);
  });
}

export function isLoopbackUrl(text) {
  try {
    const host = new URL(text).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    // data:, blob: and about: URLs never leave the browser.
    return true;
  }
}

/** Debian's Chromium, headless, set up so that WebRTC gathers loopback candidates. */
export async function launchChromium(executablePath, timeout) {
  return chromium.launch({
    executablePath,
    headless: true,
    timeout,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Loopback-only host: without these Chromium gathers no ICE candidates (STACK.md).
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-ui-for-media-stream',
      // A hidden headless page must still render every frame (rVFC, canvas grabs).
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      // Nothing but loopback resolves (the 2023R1 page names a public STUN server, for one).
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    ],
  });
}

/** A fresh context and page whose adapter.js request is answered from `adapterSource`. */
export async function newSamplePage(browser, adapterSource) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.grantPermissions(['camera', 'microphone']);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (event) => {
    const answer =
      event.request.url === ADAPTER_URL
        ? cdp.send('Fetch.fulfillRequest', {
            requestId: event.requestId,
            responseCode: 200,
            responseHeaders: [
              { name: 'Content-Type', value: 'text/javascript; charset=utf-8' },
              { name: 'Access-Control-Allow-Origin', value: '*' },
            ],
            body: adapterSource.toString('base64'),
          })
        : cdp.send('Fetch.failRequest', { requestId: event.requestId, errorReason: 'BlockedByClient' });
    answer.catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: ADAPTER_URL, requestStage: 'Request' }] });
  return { context, page };
}

/**
 * Fills the form like a user. `form` holds gateway, device, user, password and optionally
 * stream, playbackTime, speed, skipGaps, includeAudio (each only where the release has the field).
 */
export async function fillForm(page, form) {
  await page.fill('#apiGatewayUrl', form.gateway);
  // 2025R2 renamed the camera field to deviceId (a camera or a microphone).
  const deviceField = (await page.locator('#deviceId').count()) > 0 ? '#deviceId' : '#cameraId';
  await page.fill(deviceField, form.device);
  await page.fill('#username', form.user);
  await page.fill('#password', form.password);
  const optional = [
    ['#streamId', form.stream],
    ['#playbackTime', form.playbackTime],
    ['#speed', form.speed],
  ];
  for (const [selector, value] of optional) {
    if (value === undefined || value === null || value === '') continue;
    if ((await page.locator(selector).count()) === 0) throw new Error(`this release's page has no ${selector} field`);
    await page.fill(selector, String(value));
  }
  for (const [selector, checked] of [
    ['#skipGaps', form.skipGaps],
    ['#includeAudio', form.includeAudio],
  ]) {
    if (checked === undefined || checked === null) continue;
    if ((await page.locator(selector).count()) === 0) {
      if (checked) throw new Error(`this release's page has no ${selector} checkbox`);
      continue;
    }
    await page.setChecked(selector, checked);
  }
}

/** The Start button of the chosen signaling (2025R1+ show REST and WebSocket tabs). */
export async function startButton(page, release, signaling) {
  if (release < SIGNALING_CHOICE_SINCE) return page.getByRole('button', { name: 'Start', exact: true });
  const tab = signaling === 'ws' ? 'websocket' : 'rest';
  await page.getByRole('button', { name: tab === 'websocket' ? 'WebSocket' : 'REST', exact: true }).click();
  return page.locator(`#${tab}`).getByRole('button', { name: 'Start', exact: true });
}

/**
 * Arms a one-shot `requestVideoFrameCallback` on the page's <video>, so the first frame the
 * compositor presents is timed (performance.now()), whenever the page attaches its stream.
 */
export async function armFirstFrameProbe(page) {
  await page.evaluate(() => {
    const video = document.querySelector('#videoCtl');
    window.__firstFramePresentedAt = null;
    video.requestVideoFrameCallback((now) => {
      window.__firstFramePresentedAt = now;
    });
  });
}

/** Resolves with the probe's time once the first frame was presented. */
export async function firstFramePresentedAt(page, timeout) {
  const handle = await page.waitForFunction(() => window.__firstFramePresentedAt, undefined, {
    polling: 'raf',
    timeout,
  });
  return handle.jsonValue();
}
