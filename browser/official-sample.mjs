#!/usr/bin/env node
// Drives Milestone's official WebRTC sample page, unmodified, in Debian's Chromium against a
// gateway (normally our emulator), the way a user would: fill the form, press Start, watch the
// <video>. Prints ONE JSON line with what happened and exits 0 when the video played, 1 otherwise.
//
//   node browser/official-sample.mjs --gateway http://127.0.0.1:PORT/api --release 2025R2 \
//     --signaling rest|ws --camera GUID --user admin --password admin --artifacts DIR [--ptz]
//
// The page is served by a small static server on its own loopback port, so every call to the
// gateway is cross-origin and the gateway's CORS answers (preflights with Authorization) are what
// the browser really gets. That is also why no Playwright `route` is installed: with any route
// active, Playwright answers CORS preflights itself and the gateway would never see them. The one
// external script the page loads (adapter-latest.js) is answered through a CDP Fetch pattern that
// matches only that URL, and every other non-loopback host is made unresolvable in the browser.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..');
// CI lays shared/ beside the clone of the repository, as on a developer's machine.
const DEFAULT_SAMPLE_ROOT = resolve(REPO_ROOT, '..', 'shared', 'reference', 'milestone-webrtc-sample');
const ADAPTER_URL = 'https://webrtc.github.io/adapter/adapter-latest.js';
const ADAPTER_FILE = join(HERE, 'node_modules', 'webrtc-adapter', 'out', 'adapter.js');
const RELEASES = ['2023R1', '2023R3', '2024R1', '2024R2', '2025R1', '2025R2'];
// Releases whose page has the REST/WebSocket tabs, the `commands` data channel and PTZ buttons.
const SIGNALING_CHOICE_SINCE = '2025R1';
const PTZ_DIRECTIONS = ['up', 'downLeft', 'home'];
const AUX_NUMBERS = ['2'];
const LOG_EXCERPT_CHARS = 4000;
const CONSOLE_KEEP = 60;

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function usage(message) {
  process.stderr.write(
    `${message}\nusage: official-sample.mjs --gateway URL --release ${RELEASES.join('|')} ` +
      '--signaling rest|ws --camera GUID --user NAME --password PW --artifacts DIR [--ptz] ' +
      '[--sample-root DIR] [--timeout-ms N] [--chromium PATH]\n',
  );
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        gateway: { type: 'string' },
        release: { type: 'string' },
        signaling: { type: 'string', default: 'rest' },
        camera: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        artifacts: { type: 'string' },
        ptz: { type: 'boolean', default: false },
        'sample-root': { type: 'string', default: process.env.XPROTECT_SAMPLE_ROOT || DEFAULT_SAMPLE_ROOT },
        'timeout-ms': { type: 'string', default: '30000' },
        chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
      },
      strict: true,
    }));
  } catch (error) {
    usage(error.message);
  }
  for (const name of ['gateway', 'release', 'camera', 'user', 'password', 'artifacts']) {
    if (!values[name]) usage(`--${name} is required`);
  }
  if (!RELEASES.includes(values.release)) usage(`unknown release ${values.release}`);
  if (!['rest', 'ws'].includes(values.signaling)) usage('--signaling must be rest or ws');
  const hasChoice = values.release >= SIGNALING_CHOICE_SINCE;
  if (values.signaling === 'ws' && !hasChoice) usage(`release ${values.release} has no WebSocket signaling`);
  if (values.ptz && !hasChoice) usage(`release ${values.release} has no PTZ commands`);
  const timeoutMs = Number.parseInt(values['timeout-ms'], 10);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage('--timeout-ms must be a positive integer');
  return { ...values, timeoutMs, hasChoice, sampleRoot: values['sample-root'] };
}

/** A static file server for one folder on 127.0.0.1:0; refuses anything outside the folder. */
async function serveFolder(root) {
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

function isLoopbackUrl(text) {
  try {
    const host = new URL(text).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    // data:, blob: and about: URLs never leave the browser.
    return true;
  }
}

/** Answers the page's adapter.js request from the npm package, and nothing else. */
async function interceptAdapter(context, page, adapterSource) {
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
}

async function fillForm(page, options) {
  await page.fill('#apiGatewayUrl', options.gateway);
  // 2025R2 renamed the camera field to deviceId (a camera or a microphone).
  const deviceField = (await page.locator('#deviceId').count()) > 0 ? '#deviceId' : '#cameraId';
  await page.fill(deviceField, options.camera);
  await page.fill('#username', options.user);
  await page.fill('#password', options.password);
}

/** The Start button of the chosen signaling (2025R1+ show REST and WebSocket tabs). */
async function startButton(page, options) {
  if (!options.hasChoice) return page.getByRole('button', { name: 'Start', exact: true });
  const tab = options.signaling === 'ws' ? 'websocket' : 'rest';
  await page.getByRole('button', { name: tab === 'websocket' ? 'WebSocket' : 'REST', exact: true }).click();
  return page.locator(`#${tab}`).getByRole('button', { name: 'Start', exact: true });
}

/** Resolves with performance.now() in the page once `predicate` holds, polled per frame. */
async function pageTimeWhen(page, predicate, arg, timeout) {
  const handle = await page.waitForFunction(predicate, arg, { polling: 'raf', timeout });
  return handle.jsonValue();
}

async function exercisePtz(page, deadline, result) {
  // The page keeps its channel in a script-level `let`, which page functions can read by name.
  await page.waitForFunction(
    () => typeof dataChannel !== 'undefined' && dataChannel?.readyState === 'open',
    undefined,
    { timeout: Math.max(1, deadline - Date.now()) },
  );
  result.ptz = { sent: [], inline_click: null };
  // The sample's arrow buttons use inline handlers `onclick="command('up')"`. In current Chromium
  // `command` inside an inline handler resolves to the button's own `command` property (Invoker
  // Commands API), not to the page's global function, so a click throws and sends nothing. Record
  // what one click does, then call the page's global functions as the buttons meant to.
  const errorsBefore = result.errors.length;
  await page.getByRole('button', { name: '\u2191', exact: true }).click();
  // The click's exception is reported by the renderer while it handles the click; a round trip
  // through the same renderer afterwards guarantees that report has arrived before we look.
  await page.evaluate(() => new Promise((done) => setTimeout(done, 0)));
  const clickErrors = result.errors.slice(errorsBefore);
  result.ptz.inline_click = clickErrors.length > 0 ? `threw: ${clickErrors.join('; ')}` : 'no error';
  result.errors.splice(errorsBefore);
  for (const direction of PTZ_DIRECTIONS) {
    await page.evaluate((d) => window.command(d), direction);
    result.ptz.sent.push({ method: 'ptzMove', direction });
  }
  for (const auxNumber of AUX_NUMBERS) {
    await page.evaluate((n) => window.aux(n), auxNumber);
    result.ptz.sent.push({ method: 'setAux', auxNumber, on: true });
  }
  // Everything handed to the channel has left the browser once nothing is buffered.
  await page.waitForFunction(() => dataChannel.bufferedAmount === 0, undefined, {
    timeout: Math.max(1, deadline - Date.now()),
  });
}

async function run(options, result) {
  const releaseDir = resolve(options.sampleRoot, options.release);
  if (!(await stat(join(releaseDir, 'index.html')).catch(() => null))) {
    throw new Error(`official sample not found at ${releaseDir} (set --sample-root or XPROTECT_SAMPLE_ROOT)`);
  }
  const adapterSource = await readFile(ADAPTER_FILE).catch(() => {
    throw new Error(`${ADAPTER_FILE} missing: run \`npm ci --prefix browser\``);
  });
  await mkdir(options.artifacts, { recursive: true });
  const deadline = Date.now() + options.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const server = await serveFolder(releaseDir);
  let browser;
  try {
    const pageUrl = `http://127.0.0.1:${server.address().port}/index.html`;
    browser = await chromium.launch({
      executablePath: options.chromium,
      headless: true,
      timeout: remaining(),
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
        // Nothing but loopback resolves (the 2023R1 page names a public STUN server, for one).
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.setDefaultTimeout(remaining());
    page.on('console', (message) => {
      // SDP dumps are long and say nothing the journal does not; keep their first line.
      result.console.push(`${message.type()}: ${message.text().split('\n', 1)[0]}`);
      if (result.console.length > CONSOLE_KEEP) result.console.shift();
    });
    page.on('pageerror', (error) => result.errors.push(`page error: ${error.message}`));
    page.on('request', (request) => {
      if (!isLoopbackUrl(request.url()) && request.url() !== ADAPTER_URL) {
        result.errors.push(`blocked non-loopback request: ${request.url()}`);
      }
    });
    page.on('response', (response) => {
      if (response.status() >= 400) {
        result.http_errors.push(`${response.request().method()} ${response.url()} -> ${response.status()}`);
      }
    });
    page.on('requestfailed', (request) => {
      if (isLoopbackUrl(request.url())) {
        result.errors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
      }
    });
    await interceptAdapter(context, page, adapterSource);

    await page.goto(pageUrl, { waitUntil: 'load', timeout: remaining() });
    if (!(await page.evaluate(() => typeof window.adapter === 'object'))) {
      result.errors.push('adapter.js did not load');
    }
    await fillForm(page, options);
    const start = await startButton(page, options);
    const clickedAt = await page.evaluate(() => performance.now());
    await start.click();

    const firstFrameAt = await pageTimeWhen(
      page,
      () => {
        const video = document.querySelector('#videoCtl');
        return video && video.videoWidth > 0 && video.readyState >= 2 ? performance.now() : false;
      },
      undefined,
      remaining(),
    );
    const startedAt = await page.evaluate(() => document.querySelector('#videoCtl').currentTime);
    const playingAt = await pageTimeWhen(
      page,
      (since) => {
        const video = document.querySelector('#videoCtl');
        return video.currentTime > since && !video.paused ? performance.now() : false;
      },
      startedAt,
      remaining(),
    );
    const video = await page.evaluate(() => {
      const v = document.querySelector('#videoCtl');
      // 2023R3+ show each frame's time (start time + RTP milliseconds) above the video.
      const label = document.getElementById('frameTimeLabel')?.innerText ?? null;
      return { width: v.videoWidth, height: v.videoHeight, currentTime: v.currentTime, label };
    });
    result.frame_time_label = video.label;
    result.video_width = video.width;
    result.video_height = video.height;
    result.video_current_time_s = video.currentTime;
    result.time_to_first_frame_ms = Math.round(firstFrameAt - clickedAt);
    result.time_to_playing_ms = Math.round(playingAt - clickedAt);

    if (options.ptz) await exercisePtz(page, deadline, result);

    const screenshot = join(options.artifacts, `${options.release}-${options.signaling}${options.ptz ? '-ptz' : ''}.png`);
    // Starting scrolled the page down to the buttons; the video is at the top.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshot, fullPage: true, timeout: remaining() });
    result.screenshot = screenshot;
    result.ok = result.video_width > 0 && result.errors.length === 0;
  } finally {
    result.page_log = await collectPageLog(browser).catch(() => result.page_log);
    await browser?.close().catch(() => {});
    server.close();
    server.closeAllConnections?.();
  }
}

async function collectPageLog(browser) {
  const page = browser?.contexts()[0]?.pages()[0];
  if (!page) return null;
  const text = await page.evaluate(() => document.getElementById('diagnostics')?.innerText ?? '', undefined);
  return text.length > LOG_EXCERPT_CHARS ? `${text.slice(0, LOG_EXCERPT_CHARS)}…` : text;
}

function pageConnectTime(log) {
  const match = /Establishing connection time: (\d+) ms/.exec(log ?? '');
  return match ? Number(match[1]) : null;
}

async function main() {
  const options = parseOptions();
  const result = {
    ok: false,
    release: options.release,
    signaling: options.signaling,
    ptz_requested: options.ptz,
    video_width: 0,
    video_height: 0,
    time_to_first_frame_ms: null,
    time_to_playing_ms: null,
    page_connect_ms: null,
    page_log: null,
    console: [],
    http_errors: [],
    errors: [],
  };
  // A hung browser must not outlive the run: the whole attempt gets the timeout plus a margin
  // for launching and closing.
  const watchdog = setTimeout(() => {
    result.errors.push(`watchdog: no result within ${options.timeoutMs + 15000} ms`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(1);
  }, options.timeoutMs + 15000);
  try {
    await run(options, result);
  } catch (error) {
    result.ok = false;
    result.errors.push(String(error?.message ?? error).split('\n').slice(0, 6).join('\n'));
  }
  clearTimeout(watchdog);
  result.page_connect_ms = pageConnectTime(result.page_log);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
}

main();
