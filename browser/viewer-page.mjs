// Drives our own viewer page (served by `xprotect-webrtc view`, or the xprotect-viewer crate in a
// test) in Debian's Chromium like a user: log in, pick a camera, choose the signaling, start, wait
// for playing video with a frame time over it, optionally press a PTZ button and an aux button,
// and keep a screenshot. Prints one JSON line with what the page showed; exits 0 whenever it
// could report (the caller judges the verdict), 1 on a driver failure.
//
//   node viewer-page.mjs --url http://127.0.0.1:8088/ --user admin --password admin \
//     --signaling ws [--ptz left] [--aux 2] [--expect-login-error] --screenshot out.png
//     [--playback-time ISO --speed 2 --skip-gaps] [--wait-frame-time-at-least ISO] [--grabs N]
//
// --grabs N: N times, 150 ms apart, draws the shown <video> frame to a canvas in the same
// animation frame as it reads the page's frame time, and reports both (pixels as base64 RGBA)
// so the caller can compare the page's time with the time drawn into the picture. Works for live
// as for playback (the emulator draws the capture time into live frames too).
//
// Reconnect (main player or grid): --fault-url URL --fault JSON: once the video played a
// second, POSTs the fault (the emulator's control endpoint, e.g. {"fault":"drop_sessions"})
// and waits until every view has a new session on screen and its frame time is --advance-ms
// past where it was. --wait-replacements N: then (or alone) waits until every view replaced its
// session N times (WebSocket sessions before their token expires), sampling the frame time
// four times a second all along. Both report the players' state (reconnects, replacements, take-overs).

import { parseArgs } from 'node:util';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { launchChromium } from './sample-page.mjs';

const { values: options } = parseArgs({
  options: {
    url: { type: 'string' },
    user: { type: 'string', default: 'admin' },
    password: { type: 'string', default: '' },
    signaling: { type: 'string', default: 'ws' },
    camera: { type: 'string' },
    ptz: { type: 'string' },
    aux: { type: 'string' },
    'playback-time': { type: 'string' },
    speed: { type: 'string' },
    'skip-gaps': { type: 'boolean', default: false },
    'no-audio': { type: 'boolean', default: false },
    'wait-frame-time-at-least': { type: 'string' },
    grabs: { type: 'string', default: '0' },
    'wait-token-refresh': { type: 'boolean', default: false },
    stream: { type: 'string' },
    snapshot: { type: 'boolean', default: false },
    grid: { type: 'string' },
    'fault-url': { type: 'string' },
    fault: { type: 'string' },
    'advance-ms': { type: 'string', default: '2000' },
    'wait-replacements': { type: 'string', default: '0' },
    'expect-login-error': { type: 'boolean', default: false },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
if (!options.url) {
  console.error('viewer-page.mjs: --url is required');
  process.exit(1);
}
const timeout = Number(options.timeout);
const deadline = Date.now() + timeout;
const remaining = () => Math.max(1000, deadline - Date.now());
// Never hang the caller: a watchdog reports and ends the process.
const watchdog = setTimeout(() => {
  console.error('viewer-page.mjs: watchdog fired');
  process.exit(1);
}, timeout + 15000);

const result = { ok: false, console_errors: [], gateway_requests: [], outside_requests: [] };
const browser = await launchChromium(options.chromium, remaining());
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const origin = new URL(options.url).origin;
  page.on('console', (message) => {
    if (message.type() === 'error') result.console_errors.push(message.text());
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin !== origin && !['data:', 'blob:'].includes(url.protocol)) result.outside_requests.push(request.url());
    else if (url.pathname.startsWith('/gateway/')) result.gateway_requests.push(`${request.method()} ${url.pathname}`);
  });

  page.on('websocket', (socket) => {
    const url = new URL(socket.url());
    if (url.host !== new URL(origin).host) result.outside_requests.push(socket.url());
    else result.gateway_requests.push(`WEBSOCKET ${url.pathname}`);
  });

  await page.goto(options.url, { timeout: remaining() });
  await page.fill('#user', options.user);
  await page.fill('#password', options.password);
  await page.click('#login');

  if (options['expect-login-error']) {
    await page.locator('#error').waitFor({ state: 'visible', timeout: remaining() });
    result.error = await page.locator('#error').textContent();
    result.password_field_after = await page.inputValue('#password');
    result.ok = true;
  } else {
    await page.locator('#stream-panel').waitFor({ state: 'visible', timeout: remaining() });
    result.cameras = await page.locator('#camera > option').allTextContents();
    result.microphones = await page.locator('#camera optgroup option').allTextContents();
    if (options.camera) await page.selectOption('#camera', { label: options.camera });
    // The stream list loads after the camera list; wait for more than the default entry.
    // A microphone has none.
    await page.waitForFunction(
      () =>
        document.querySelector('#camera').selectedOptions[0]?.dataset.kind === 'microphone' ||
        document.querySelectorAll('#stream option').length > 1,
      undefined,
      { timeout: remaining() },
    );
    result.streams = await page.locator('#stream option').allTextContents();
    if (options.stream) await page.selectOption('#stream', { label: options.stream });
    await page.check(`input[name=signaling][value=${options.signaling}]`);
    if (options['playback-time']) {
      await page.check('input[name=mode][value=playback]');
      await page.fill('#playback-time', options['playback-time']);
      if (options.speed) await page.fill('#speed', options.speed);
      await page.setChecked('#skip-gaps', options['skip-gaps']);
    }
    if (options['no-audio']) await page.setChecked('#audio', false);
  }
  if (!options['expect-login-error'] && options.grid) {
    // Several cameras at once: one grid tile per name, each its own session.
    const names = options.grid.split(',');
    for (const name of names) {
      await page.selectOption('#camera', { label: name });
      await page.click('#add-tile');
    }
    await page.waitForFunction(
      (count) =>
        [...document.querySelectorAll('#grid .tile')].filter(
          (tile) => tile.dataset.playing === 'true' && tile.querySelector('.tile-time').dataset.ms,
        ).length === count || !document.querySelector('#error').hidden,
      names.length,
      { timeout: remaining() },
    );
    result.error = (await page.locator('#error').isVisible()) ? await page.locator('#error').textContent() : null;
    result.grid = await page.evaluate(() =>
      [...document.querySelectorAll('#grid .tile')].map((tile) => ({
        name: tile.querySelector('figcaption').firstChild.textContent,
        width: tile.querySelector('video').videoWidth,
        frame_time_ms: Number(tile.querySelector('.tile-time').dataset.ms),
      })),
    );
    result.page_now_ms = await page.evaluate(() => Date.now());
    result.ok = !result.error;
    if (result.ok) await faultAndWatch(page, 'grid');
  } else if (!options['expect-login-error']) {
    await page.click('#start');
    await page.waitForFunction(
      () => document.querySelector('#video').dataset.playing === 'true' || !document.querySelector('#error').hidden,
      undefined,
      { timeout: remaining() },
    );
    result.error = (await page.locator('#error').isVisible()) ? await page.locator('#error').textContent() : null;
    if (!result.error) {
      // A frame time over the video, from the frame callback of a frame actually shown.
      await page.waitForFunction(() => document.querySelector('#frame-time').dataset.ms, undefined, {
        timeout: remaining(),
      });
      if (options['wait-frame-time-at-least']) {
        await page.waitForFunction(
          (atLeast) => Number(document.querySelector('#frame-time').dataset.ms) >= atLeast,
          Date.parse(options['wait-frame-time-at-least']),
          { timeout: remaining() },
        );
      }
      const grabCount = Number(options.grabs);
      if (grabCount > 0) result.grabs = await grabFrames(page, grabCount, 150);
      const shown = await page.evaluate(() => ({
        width: document.querySelector('#video').videoWidth,
        height: document.querySelector('#video').videoHeight,
        frameTime: document.querySelector('#frame-time').textContent,
        frameTimeMs: Number(document.querySelector('#frame-time').dataset.ms),
        pageNowMs: Date.now(),
      }));
      Object.assign(result, {
        video_width: shown.width,
        video_height: shown.height,
        frame_time: shown.frameTime,
        frame_time_ms: shown.frameTimeMs,
        page_now_ms: shown.pageNowMs,
      });
      if (options.ptz || options.aux) {
        await page.waitForSelector('#commands[data-open=true]', { timeout: remaining() });
        if (options.ptz) await page.click(`[data-ptz=${options.ptz}]`);
        if (options.aux) await page.click(`[data-aux="${options.aux}"]`);
        result.commands_state = await page.locator('#commands-state').textContent();
      }
      if (options['wait-token-refresh']) {
        await page.waitForFunction(() => document.querySelector('#login-state').textContent.includes('refreshed'), undefined, {
          timeout: remaining(),
        });
        result.login_state = await page.locator('#login-state').textContent();
      }
      if (options.snapshot) {
        await page.click('#snapshot');
        await page.locator('#snapshot-link').waitFor({ state: 'visible', timeout: remaining() });
        result.snapshot = await page.evaluate(() => {
          const link = document.querySelector('#snapshot-link');
          return {
            width: Number(link.dataset.width),
            height: Number(link.dataset.height),
            bytes: Number(link.dataset.bytes),
            download: link.download,
          };
        });
      }
      // Wait for one statistics round so the diagnostics panel shows the candidate pair.
      await page.waitForFunction(() => document.querySelector('#diag-pair').textContent !== '–', undefined, {
        timeout: remaining(),
      });
      result.diagnostics = await page.evaluate(() => ({
        ice: document.querySelector('#diag-ice').textContent,
        pair: document.querySelector('#diag-pair').textContent,
        video: document.querySelector('#diag-video').textContent,
        clock: document.querySelector('#diag-clock').textContent,
        events: [...document.querySelectorAll('#diag-events li')].map((item) => item.textContent),
      }));
      await faultAndWatch(page, 'main');
      result.audio_tracks = await page.evaluate(() => document.querySelector('#video').srcObject?.getAudioTracks().length ?? 0);
      result.status = await page.locator('#status').textContent();
      result.ok = true;
    }
  }
  if (options.screenshot) {
    await mkdir(dirname(options.screenshot), { recursive: true });
    await page.screenshot({ path: options.screenshot, timeout: remaining() });
    result.screenshot = options.screenshot;
  }
} catch (error) {
  result.driver_error = String(error?.message ?? error);
} finally {
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(JSON.stringify(result));

/**
 * Every view's frame time, connection state and counters (`which`: 'main' or 'grid'); the
 * players' own reports come with it (viewerReport in the page).
 */
function readViews(page, which) {
  return page.evaluate((which) => {
    const views =
      which === 'main'
        ? [{ time: document.querySelector('#frame-time'), state: document.querySelector('#diag-connection') }]
        : [...document.querySelectorAll('#grid .tile')].map((tile) => ({
            time: tile.querySelector('.tile-time'),
            state: tile.querySelector('.tile-state'),
          }));
    return views.map(({ time, state }) => ({
      frame_ms: Number(time.dataset.ms),
      state: state.dataset.state ?? null,
      takeovers: Number(state.dataset.reconnects ?? 0) + Number(state.dataset.replacements ?? 0),
      text: state.textContent,
    }));
  }, which);
}

/** --fault and --wait-replacements (see the head of this file); fills result.samples and result.players. */
async function faultAndWatch(page, which) {
  const replacements = Number(options['wait-replacements']);
  if (!options.fault && replacements <= 0) return;
  result.samples = [];
  const sample = async () => {
    result.samples.push({ at_ms: Date.now(), views: await readViews(page, which) });
  };
  const sampler = setInterval(() => sample().catch(() => {}), 250);
  try {
    if (options.fault) {
      // Play a second first: the fault must hit a session that delivered frames.
      const start = await readViews(page, which);
      await page.waitForFunction(
        ({ which, start }) => {
          const times =
            which === 'main'
              ? [Number(document.querySelector('#frame-time').dataset.ms)]
              : [...document.querySelectorAll('#grid .tile-time')].map((time) => Number(time.dataset.ms));
          return times.every((time, i) => time >= start[i].frame_ms + 1000);
        },
        { which, start },
        { timeout: remaining() },
      );
      const before = await readViews(page, which);
      result.before_fault = before;
      const answer = await fetch(options['fault-url'], {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: options.fault,
      });
      result.fault_status = answer.status;
      result.fault_at_ms = Date.now();
      if (!answer.ok) throw new Error(`the fault was refused: HTTP ${answer.status} ${await answer.text()}`);
      const advance = Number(options['advance-ms']);
      await page.waitForFunction(
        ({ which, before, advance }) => {
          const views =
            which === 'main'
              ? [[document.querySelector('#frame-time'), document.querySelector('#diag-connection')]]
              : [...document.querySelectorAll('#grid .tile')].map((tile) => [
                  tile.querySelector('.tile-time'),
                  tile.querySelector('.tile-state'),
                ]);
          return views.every(([time, state], i) => {
            const takeovers = Number(state.dataset.reconnects ?? 0) + Number(state.dataset.replacements ?? 0);
            return takeovers > before[i].takeovers && Number(time.dataset.ms) >= before[i].frame_ms + advance;
          });
        },
        { which, before, advance },
        { timeout: remaining() },
      );
      result.recovered_at_ms = Date.now();
    }
    if (replacements > 0) {
      await page.waitForFunction(
        ({ which, replacements }) => {
          const states =
            which === 'main'
              ? [document.querySelector('#diag-connection')]
              : [...document.querySelectorAll('#grid .tile-state')];
          return states.every((state) => Number(state.dataset.replacements ?? 0) >= replacements);
        },
        { which, replacements },
        { timeout: remaining() },
      );
      result.replaced_at_ms = Date.now();
    }
  } finally {
    clearInterval(sampler);
  }
  await sample();
  result.players = await page.evaluate(() => viewerReport());
  result.diagnostics_events = await page.evaluate(() =>
    [...document.querySelectorAll('#diag-events li')].map((item) => item.textContent),
  );
}

async function grabFrames(page, count, intervalMs) {
  return page.evaluate(
    async ({ count, intervalMs }) => {
      const video = document.querySelector('#video');
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const context = canvas.getContext('2d', { willReadFrequently: true });
      const toBase64 = (bytes) => {
        let binary = '';
        for (let i = 0; i < bytes.length; i += 0x8000) {
          binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return btoa(binary);
      };
      const grabs = [];
      for (let i = 0; i < count; i += 1) {
        await new Promise((done) => setTimeout(done, intervalMs));
        const grab = await new Promise((done) =>
          requestAnimationFrame(() => {
            // Frame callbacks run before animation-frame callbacks: the page's time is that of
            // the frame drawn here.
            const shownMs = Number(document.querySelector('#frame-time').dataset.ms);
            context.drawImage(video, 0, 0, canvas.width, canvas.height);
            done({ shownMs, pixels: context.getImageData(0, 0, canvas.width, canvas.height).data });
          }),
        );
        grabs.push({ shown_ms: grab.shownMs, width: canvas.width, height: canvas.height, rgba_base64: toBase64(grab.pixels) });
      }
      return grabs;
    },
    { count, intervalMs },
  );
}
