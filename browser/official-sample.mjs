#!/usr/bin/env node
// Drives Milestone's official WebRTC sample page, unmodified, in Debian's Chromium against a
// gateway (normally our emulator), the way a user would: fill the form, press Start, watch the
// <video>. Prints ONE JSON line with what happened and exits 0 when the scenario's expectation
// held (the video played, or with --expect-failure the page failed as expected), 1 otherwise.
//
//   node browser/official-sample.mjs --gateway http://127.0.0.1:PORT/api --release 2025R2 \
//     --signaling rest|ws --camera GUID --user admin --password admin --artifacts DIR [--ptz]
//     [--stream GUID] [--playback-time ISO --speed N --skip-gaps] [--no-audio]
//     [--until-frame-time ISO] [--wait-console TEXT] [--grab-frames N] [--expect-failure TEXT]...
//
// Scenarios beyond "it plays":
//   --until-frame-time ISO  keep watching until the page's frame-time label reaches ISO; report
//                           every label shown (`frame_times`), e.g. across a recording gap.
//   --wait-console TEXT     keep playing until the page logs TEXT to its console (e.g. its token
//                           refresh), then prove the video still advances (`after_wait`).
//   --grab-frames N         N times, in one animation frame: draw the <video> to a canvas and
//                           read the page's displayed frame time; report both (`grabs`, RGBA in
//                           base64) so the caller can decode the time drawn into the picture.
//   --audio-only            the device is a microphone: the <video> element plays an audio-only
//                           stream (no picture), so "played" means its clock advances with one
//                           audio track and no video track (`audio_only`).
//   --expect-failure TEXT   the page must NOT play and must show (log, console or an HTTP error
//                           body it received) every TEXT given; reports `failure`.
//
// The page is served by a small static server on its own loopback port, so every call to the
// gateway is cross-origin and the gateway's CORS answers are what the browser really gets.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ADAPTER_URL,
  AUDIO_SINCE,
  DEFAULT_SAMPLE_ROOT,
  PLAYBACK_SINCE,
  RELEASES,
  SIGNALING_CHOICE_SINCE,
  closeServer,
  fillForm,
  isLoopbackUrl,
  launchChromium,
  newSamplePage,
  readAdapter,
  releaseFolder,
  serveFolder,
  startButton,
} from './sample-page.mjs';

const PTZ_DIRECTIONS = ['up', 'downLeft', 'home'];
const AUX_NUMBERS = ['2'];
const LOG_EXCERPT_CHARS = 4000;
const CONSOLE_KEEP = 60;
const ERROR_BODY_CHARS = 600;
/** How much the <video> must advance after --wait-console's text to count as still playing. */
const KEEP_PLAYING_S = 2;

function usage(message) {
  process.stderr.write(
    `${message}\nusage: official-sample.mjs --gateway URL --release ${RELEASES.join('|')} ` +
      '--signaling rest|ws --camera GUID --user NAME --password PW --artifacts DIR [--ptz] ' +
      '[--stream GUID] [--playback-time ISO] [--speed N] [--skip-gaps] [--no-audio] ' +
      '[--until-frame-time ISO] [--wait-console TEXT] [--grab-frames N] [--grab-interval-ms N] ' +
      '[--expect-failure TEXT]... [--sample-root DIR] [--timeout-ms N] [--chromium PATH]\n',
  );
  process.exit(2);
}

function positiveInteger(text, name) {
  const value = Number.parseInt(text, 10);
  if (!Number.isFinite(value) || value <= 0 || String(value) !== String(text).trim()) {
    usage(`--${name} must be a positive integer`);
  }
  return value;
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
        stream: { type: 'string' },
        'playback-time': { type: 'string' },
        speed: { type: 'string' },
        'skip-gaps': { type: 'boolean', default: false },
        'no-audio': { type: 'boolean', default: false },
        'audio-only': { type: 'boolean', default: false },
        'until-frame-time': { type: 'string' },
        'wait-console': { type: 'string' },
        'grab-frames': { type: 'string' },
        'grab-interval-ms': { type: 'string', default: '250' },
        'expect-failure': { type: 'string', multiple: true, default: [] },
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
  const release = values.release;
  if (!RELEASES.includes(release)) usage(`unknown release ${release}`);
  if (!['rest', 'ws'].includes(values.signaling)) usage('--signaling must be rest or ws');
  const hasChoice = release >= SIGNALING_CHOICE_SINCE;
  if (values.signaling === 'ws' && !hasChoice) usage(`release ${release} has no WebSocket signaling`);
  if (values.ptz && !hasChoice) usage(`release ${release} has no PTZ commands`);
  const playbackFields = values.stream || values['playback-time'] || values.speed || values['skip-gaps'];
  if (playbackFields && release < PLAYBACK_SINCE) usage(`release ${release} has no stream or playback fields`);
  if (values['no-audio'] && release < AUDIO_SINCE) usage(`release ${release} has no includeAudio checkbox`);
  if (values['audio-only'] && release < AUDIO_SINCE) usage(`release ${release} has no microphone devices`);
  if (values['until-frame-time'] && Number.isNaN(Date.parse(values['until-frame-time']))) {
    usage('--until-frame-time must be an ISO 8601 time');
  }
  const expectFailure = values['expect-failure'];
  const watching = values['until-frame-time'] || values['wait-console'] || values['grab-frames'] || values.ptz;
  if (expectFailure.length > 0 && watching) usage('--expect-failure cannot be combined with watching the video');
  return {
    ...values,
    hasChoice,
    expectFailure,
    sampleRoot: values['sample-root'],
    timeoutMs: positiveInteger(values['timeout-ms'], 'timeout-ms'),
    grabFrames: values['grab-frames'] ? positiveInteger(values['grab-frames'], 'grab-frames') : 0,
    grabIntervalMs: positiveInteger(values['grab-interval-ms'], 'grab-interval-ms'),
  };
}

/** Resolves with performance.now() in the page once `predicate` holds, polled per frame. */
async function pageTimeWhen(page, predicate, arg, timeout) {
  const handle = await page.waitForFunction(predicate, arg, { polling: 'raf', timeout });
  return handle.jsonValue();
}

async function exercisePtz(page, remaining, result) {
  // The page keeps its channel in a script-level `let`, which page functions can read by name.
  await page.waitForFunction(
    () => typeof dataChannel !== 'undefined' && dataChannel?.readyState === 'open',
    undefined,
    { timeout: remaining() },
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
  await page.waitForFunction(() => dataChannel.bufferedAmount === 0, undefined, { timeout: remaining() });
}

/**
 * Every distinct frame-time label the page shows, sampled once per animation frame, until the
 * label's time reaches `untilIso`. The label is `MM/DD hh:mm:ss` in UTC (no year, no ms).
 */
async function watchFrameTimes(page, untilIso, remaining) {
  return page.evaluate(
    ({ untilMs, timeoutMs }) =>
      new Promise((resolveWatch) => {
        const year = new Date(untilMs).getUTCFullYear();
        const labelTime = (text) => {
          const match = /^(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(text.trim());
          return match ? Date.UTC(year, match[1] - 1, match[2], match[3], match[4], match[5]) : null;
        };
        const video = document.querySelector('#videoCtl');
        const quality = () => video.getVideoPlaybackQuality?.().totalVideoFrames ?? null;
        const started = performance.now();
        const seen = [];
        const step = () => {
          const label = document.getElementById('frameTimeLabel')?.innerText ?? '';
          if (label && seen[seen.length - 1]?.label !== label) {
            seen.push({
              label,
              at_ms: Math.round(performance.now() - started),
              current_time_s: video.currentTime,
              decoded_frames: quality(),
            });
          }
          const time = labelTime(label);
          if (time !== null && time >= untilMs) {
            resolveWatch({ reached: true, labels: seen });
          } else if (performance.now() - started > timeoutMs) {
            resolveWatch({ reached: false, labels: seen });
          } else {
            requestAnimationFrame(step);
          }
        };
        requestAnimationFrame(step);
      }),
    { untilMs: Date.parse(untilIso), timeoutMs: remaining() },
  );
}

/**
 * `count` times, `intervalMs` apart: in one animation-frame callback (after the page's own
 * frame-time update of that frame), draw the <video> at its natural size to a canvas and read the
 * page's displayed frame time. Pixels go out as base64 RGBA for the caller to decode.
 */
async function grabFrames(page, count, intervalMs) {
  return page.evaluate(
    async ({ count, intervalMs }) => {
      const video = document.querySelector('#videoCtl');
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const context = canvas.getContext('2d', { willReadFrequently: true });
      const toBase64 = (bytes) => {
        let binary = '';
        const chunk = 0x8000;
        for (let i = 0; i < bytes.length; i += chunk) {
          binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
        }
        return btoa(binary);
      };
      const grabs = [];
      for (let i = 0; i < count; i += 1) {
        await new Promise((done) => setTimeout(done, intervalMs));
        const grab = await new Promise((done) =>
          requestAnimationFrame(() => {
            // Both in the same task: nothing can present a new frame in between.
            const label = document.getElementById('frameTimeLabel')?.innerText ?? '';
            // 2024R2+ keep the shown time in a script-level `frameDate` (ms precision).
            const frameDateMs =
              typeof frameDate !== 'undefined' && frameDate instanceof Date ? frameDate.getTime() : null;
            const startMs = typeof frameStartTime === 'number' ? frameStartTime : null;
            context.drawImage(video, 0, 0, canvas.width, canvas.height);
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            done({ label, frameDateMs, startMs, pixels });
          }),
        );
        grabs.push({
          label: grab.label,
          frame_date_ms: grab.frameDateMs,
          frame_start_ms: grab.startMs,
          width: canvas.width,
          height: canvas.height,
          rgba_base64: toBase64(grab.pixels),
        });
      }
      return grabs;
    },
    { count, intervalMs },
  );
}

/** A microphone session: the <video> element's clock advances on an audio-only stream. */
async function playAudioOnly(page, clickedAt, remaining, result) {
  const playingAt = await pageTimeWhen(
    page,
    () => {
      const video = document.querySelector('#videoCtl');
      return video.srcObject && video.currentTime > 0.5 && !video.paused ? performance.now() : false;
    },
    undefined,
    remaining(),
  );
  result.audio_only = await page.evaluate(() => {
    const video = document.querySelector('#videoCtl');
    return {
      audio_tracks: video.srcObject.getAudioTracks().length,
      video_tracks: video.srcObject.getVideoTracks().length,
      receiver_kinds: peerConnection.getReceivers().map((r) => r.track.kind),
      current_time_s: video.currentTime,
      label: document.getElementById('frameTimeLabel')?.innerText ?? null,
      page_now_ms: Date.now(),
    };
  });
  result.frame_time_label = result.audio_only.label;
  result.time_to_playing_ms = Math.round(playingAt - clickedAt);
  result.ok = result.audio_only.audio_tracks === 1 && result.audio_only.video_tracks === 0 && result.errors.length === 0;
}

/** Plays until the page logs `text`, then proves the <video> keeps advancing. */
async function playUntilConsole(page, consoleSeen, text, remaining) {
  const started = Date.now();
  while (!consoleSeen.some((line) => line.includes(text))) {
    // The console handler runs on node's side; a page round trip per animation frame lets it in.
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(done)));
    if (remaining() <= 1) throw new Error(`the page never logged "${text}"`);
  }
  const consoleAtMs = Date.now() - started;
  const before = await page.evaluate(() => document.querySelector('#videoCtl').currentTime);
  await page.waitForFunction(
    ({ before, advance }) => {
      const video = document.querySelector('#videoCtl');
      return !video.paused && video.currentTime >= before + advance;
    },
    { before, advance: KEEP_PLAYING_S },
    { polling: 'raf', timeout: remaining() },
  );
  const after = await page.evaluate(() => document.querySelector('#videoCtl').currentTime);
  return { text, console_at_ms: consoleAtMs, current_time_before_s: before, current_time_after_s: after };
}

/** Waits until every expected text shows up somewhere the page exposes it; never throws. */
async function awaitFailure(page, expected, consoleSeen, errorBodies, remaining) {
  const readLog = () => page.evaluate(() => document.getElementById('diagnostics')?.innerText ?? '');
  const found = (log) => {
    const haystack = [log, ...consoleSeen, ...errorBodies].join('\n');
    return expected.filter((text) => haystack.includes(text));
  };
  let hit = found(await readLog());
  while (hit.length < expected.length && remaining() > 1) {
    // A page round trip also lets node's console and response handlers run.
    await page.evaluate(() => new Promise((done) => setTimeout(done, 50)));
    hit = found(await readLog());
  }
  return { found: hit, missing: expected.filter((text) => !hit.includes(text)) };
}

async function run(options, result) {
  const releaseDir = await releaseFolder(options.sampleRoot, options.release);
  const adapterSource = await readAdapter();
  await mkdir(options.artifacts, { recursive: true });
  const deadline = Date.now() + options.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());

  const server = await serveFolder(releaseDir);
  let browser;
  let page;
  const consoleSeen = [];
  const errorBodies = [];
  try {
    const pageUrl = `http://127.0.0.1:${server.address().port}/index.html`;
    browser = await launchChromium(options.chromium, remaining());
    ({ page } = await newSamplePage(browser, adapterSource));
    page.setDefaultTimeout(remaining());
    page.on('console', (message) => {
      consoleSeen.push(message.text());
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
        const what = `${response.request().method()} ${response.url()} -> ${response.status()}`;
        result.http_errors.push(what);
        response
          .text()
          .then((body) => errorBodies.push(`${what}: ${body.slice(0, ERROR_BODY_CHARS)}`))
          .catch(() => {});
      }
    });
    page.on('requestfailed', (request) => {
      if (isLoopbackUrl(request.url())) {
        result.errors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
      }
    });

    await page.goto(pageUrl, { waitUntil: 'load', timeout: remaining() });
    if (!(await page.evaluate(() => typeof window.adapter === 'object'))) {
      result.errors.push('adapter.js did not load');
    }
    await fillForm(page, {
      gateway: options.gateway,
      device: options.camera,
      user: options.user,
      password: options.password,
      stream: options.stream,
      playbackTime: options['playback-time'],
      speed: options.speed,
      skipGaps: options.release >= PLAYBACK_SINCE ? options['skip-gaps'] : undefined,
      includeAudio: options['no-audio'] ? false : undefined,
    });
    const start = await startButton(page, options.release, options.signaling);
    const clickedAt = await page.evaluate(() => performance.now());
    await start.click();

    if (options.expectFailure.length > 0) {
      result.failure = await awaitFailure(page, options.expectFailure, consoleSeen, errorBodies, remaining);
      result.video_width = await page.evaluate(() => document.querySelector('#videoCtl').videoWidth);
      result.http_error_bodies = errorBodies.slice();
      result.ok = result.failure.missing.length === 0 && result.video_width === 0;
      return;
    }

    if (options['audio-only']) {
      await playAudioOnly(page, clickedAt, remaining, result);
      return;
    }
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

    if (options.ptz) await exercisePtz(page, remaining, result);
    if (options.grabFrames > 0) result.grabs = await grabFrames(page, options.grabFrames, options.grabIntervalMs);
    if (options['until-frame-time']) {
      const watched = await watchFrameTimes(page, options['until-frame-time'], remaining);
      result.frame_times = watched.labels;
      if (!watched.reached) result.errors.push(`the frame time never reached ${options['until-frame-time']}`);
    }
    if (options['wait-console']) {
      result.after_wait = await playUntilConsole(page, consoleSeen, options['wait-console'], remaining);
    }

    const suffix = [options.ptz && 'ptz', options['playback-time'] && 'playback', options['wait-console'] && 'wait']
      .filter(Boolean)
      .join('-');
    const screenshot = join(options.artifacts, `${options.release}-${options.signaling}${suffix ? `-${suffix}` : ''}.png`);
    // Starting scrolled the page down to the buttons; the video is at the top.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshot, fullPage: true, timeout: remaining() });
    result.screenshot = screenshot;
    result.ok = result.video_width > 0 && result.errors.length === 0;
  } finally {
    result.page_log = await collectPageLog(page).catch(() => result.page_log);
    result.http_error_bodies = errorBodies.slice();
    await browser?.close().catch(() => {});
    closeServer(server);
  }
}

async function collectPageLog(page) {
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
    http_error_bodies: [],
    errors: [],
  };
  // A hung browser must not outlive the run: the whole attempt gets the timeout plus a margin
  // for launching and closing.
  const watchdog = setTimeout(() => {
    result.errors.push(`watchdog: no result within ${options.timeoutMs + 15000} ms`);
    printAndExit(result, 1);
  }, options.timeoutMs + 15000);
  try {
    await run(options, result);
  } catch (error) {
    result.ok = false;
    result.errors.push(String(error?.message ?? error).split('\n').slice(0, 6).join('\n'));
  }
  clearTimeout(watchdog);
  result.page_connect_ms = pageConnectTime(result.page_log);
  printAndExit(result, result.ok ? 0 : 1);
}

/** Writes the verdict line and exits once it is flushed: writes to a pipe are asynchronous, and
 * exiting at once would cut a line longer than the pipe's buffer (frame grabs are megabytes). */
function printAndExit(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

main();
