#!/usr/bin/env node
// Time to first frame of Milestone's official sample page in Chromium against our emulator, beside
// our own client's time to first frame against the same emulator process, in one command:
//
//   cargo build --release -p xprotect-webrtc && node browser/sample-ttff.mjs [--runs 10]
//
// The page: from the Start click (performance.now() just before it) to the first frame the
// compositor presents (a requestVideoFrameCallback armed on the page's <video> before the click),
// so login, signaling, ICE, DTLS, the first keyframe, decoding and painting are all inside. Each
// run is a fresh browser context and page (nothing cached, no warm connections) in one Chromium;
// one unrecorded warm-up run per signaling first. REST, then WebSocket (2025R1+ pages).
//
// Our client: `xprotect-webrtc bench --gateway <same emulator> --ttff-runs N`, whose figure runs
// from the start of login to the first keyframe out of the depacketiser (no decoding, no paint).
//
// Prints a Markdown table and, with --json FILE, every raw number.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_SAMPLE_ROOT,
  REPO_ROOT,
  RELEASES,
  SIGNALING_CHOICE_SINCE,
  armFirstFrameProbe,
  closeServer,
  fillForm,
  firstFramePresentedAt,
  launchChromium,
  newSamplePage,
  readAdapter,
  releaseFolder,
  serveFolder,
  startButton,
} from './sample-page.mjs';

const CAMERA = '6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B';
const RUN_TIMEOUT_MS = 20000;
const EMULATOR_START_TIMEOUT_MS = 20000;

function usage(message) {
  process.stderr.write(
    `${message}\nusage: sample-ttff.mjs [--runs N] [--release ${RELEASES.join('|')}] [--bin PATH] ` +
      '[--no-client] [--json FILE] [--sample-root DIR] [--chromium PATH]\n',
  );
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        runs: { type: 'string', default: '10' },
        release: { type: 'string', default: '2025R2' },
        bin: {
          type: 'string',
          default: process.env.XPROTECT_WEBRTC_BIN || join(REPO_ROOT, 'target', 'release', 'xprotect-webrtc'),
        },
        'no-client': { type: 'boolean', default: false },
        json: { type: 'string' },
        'sample-root': { type: 'string', default: process.env.XPROTECT_SAMPLE_ROOT || DEFAULT_SAMPLE_ROOT },
        chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
      },
      strict: true,
    }));
  } catch (error) {
    usage(error.message);
  }
  const runs = Number.parseInt(values.runs, 10);
  if (!Number.isFinite(runs) || runs <= 0) usage('--runs must be a positive integer');
  if (!RELEASES.includes(values.release)) usage(`unknown release ${values.release}`);
  return { ...values, runs, bin: resolve(values.bin), sampleRoot: values['sample-root'] };
}

/** Starts `xprotect-webrtc emulator --port 0` and resolves with its gateway URL and the child. */
function startEmulator(bin, release) {
  return new Promise((resolveStart, rejectStart) => {
    const child = spawn(bin, ['emulator', '--port', '0', '--release', release], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let seen = '';
    const timer = setTimeout(() => {
      child.kill();
      rejectStart(new Error(`the emulator printed no URL within ${EMULATOR_START_TIMEOUT_MS} ms`));
    }, EMULATOR_START_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectStart(new Error(`cannot run ${bin} (cargo build --release -p xprotect-webrtc): ${error.message}`));
    });
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const match = /running at (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        child.stdout.resume();
        resolveStart({ child, url: match[1] });
      }
    });
  });
}

function summary(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const p90 = sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)];
  return { median, p90, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length };
}

/** One page run: fresh context, load, fill, Start, first presented frame. */
async function pageRun(browser, adapterSource, pageUrl, gateway, release, signaling) {
  const { context, page } = await newSamplePage(browser, adapterSource);
  try {
    page.setDefaultTimeout(RUN_TIMEOUT_MS);
    await page.goto(pageUrl, { waitUntil: 'load' });
    await fillForm(page, { gateway, device: CAMERA, user: 'admin', password: 'admin' });
    const start = await startButton(page, release, signaling);
    await armFirstFrameProbe(page);
    const clickedAt = await page.evaluate(() => performance.now());
    await start.click();
    const presentedAt = await firstFramePresentedAt(page, RUN_TIMEOUT_MS);
    // The page's own figure, from its start() to "connected" (login, signaling, ICE, DTLS).
    const log = await page.evaluate(() => document.getElementById('diagnostics')?.innerText ?? '');
    const connected = /Establishing connection time: (\d+) ms/.exec(log);
    return { first_frame_ms: presentedAt - clickedAt, connected_ms: connected ? Number(connected[1]) : NaN };
  } finally {
    await context.close().catch(() => {});
  }
}

async function measurePage(options, gateway) {
  const folder = await releaseFolder(options.sampleRoot, options.release);
  const adapterSource = await readAdapter();
  const server = await serveFolder(folder);
  const browser = await launchChromium(options.chromium, RUN_TIMEOUT_MS);
  const pageUrl = `http://127.0.0.1:${server.address().port}/index.html`;
  const signalings = options.release >= SIGNALING_CHOICE_SINCE ? ['rest', 'ws'] : ['rest'];
  const figures = {};
  try {
    for (const signaling of signalings) {
      await pageRun(browser, adapterSource, pageUrl, gateway, options.release, signaling);
      const runs = [];
      for (let i = 0; i < options.runs; i += 1) {
        runs.push(await pageRun(browser, adapterSource, pageUrl, gateway, options.release, signaling));
      }
      const connected = summary(runs.map((run) => run.connected_ms));
      figures[signaling] = {
        runs,
        ...summary(runs.map((run) => run.first_frame_ms)),
        connected_median: connected?.median ?? NaN,
      };
      process.stderr.write(`sample-ttff: page ${signaling}: median ${figures[signaling].median.toFixed(1)} ms\n`);
    }
  } finally {
    await browser.close().catch(() => {});
    closeServer(server);
  }
  return figures;
}

/** Our client's figure from `bench` against the same emulator (its load step kept minimal). */
async function measureClient(options, gateway) {
  const dir = await mkdtemp(join(tmpdir(), 'sample-ttff-'));
  const jsonPath = join(dir, 'bench.json');
  try {
    const args = [
      'bench', '--gateway', gateway, '--user', 'admin', '--camera', CAMERA,
      '--ttff-runs', String(options.runs), '--no-playback', '--no-export',
      // `bench` always runs a load step; one session for a second costs ~2 s and is ignored here.
      '--sessions', '1', '--duration', '1s', '--json', jsonPath,
    ];
    await new Promise((done, fail) => {
      const child = spawn(options.bin, args, {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, XPROTECT_PASSWORD: 'admin' },
      });
      child.once('error', fail);
      child.once('exit', (code) => (code === 0 ? done() : fail(new Error(`bench exited with ${code}`))));
    });
    const report = JSON.parse(await readFile(jsonPath, 'utf8'));
    const figures = {};
    for (const figure of report.ttff ?? []) {
      if (figure.stack !== 'ours' || !figure.first_frame) continue;
      const signaling = String(figure.signaling).toLowerCase().startsWith('w') ? 'ws' : 'rest';
      figures[signaling] = {
        ...figure.first_frame,
        connected: figure.phase_medians?.connected ?? NaN,
        n: figure.runs?.length ?? null,
        failures: figure.failures,
      };
    }
    return figures;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function table(options, page, client) {
  const cell = (figure, key) => (figure && Number.isFinite(figure[key]) ? figure[key].toFixed(1) : '–');
  const lines = [
    `Time to first frame, ms, ${options.runs} runs per row, release ${options.release} page, one emulator:`,
    '',
    '| signaling | client | median | p90 | min | max | connected (median) |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const signaling of ['rest', 'ws']) {
    const name = signaling === 'ws' ? 'WebSocket' : 'REST';
    if (page[signaling]) {
      const f = page[signaling];
      lines.push(`| ${name} | official sample in Chromium (click → first frame painted) | ${cell(f, 'median')} | ${cell(f, 'p90')} | ${cell(f, 'min')} | ${cell(f, 'max')} | ${cell(f, 'connected_median')} |`);
    }
    if (client?.[signaling]) {
      const f = client[signaling];
      lines.push(`| ${name} | ours (login → first keyframe) | ${cell(f, 'median')} | ${cell(f, 'p90')} | ${cell(f, 'min')} | ${cell(f, 'max')} | ${cell(f, 'connected')} |`);
    }
  }
  return lines.join('\n');
}

async function main() {
  const options = parseOptions();
  const { child, url } = await startEmulator(options.bin, options.release);
  const stop = () => child.kill();
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    const page = await measurePage(options, url);
    const client = options['no-client'] ? null : await measureClient(options, url);
    process.stdout.write(`${table(options, page, client)}\n`);
    if (options.json) {
      await writeFile(options.json, `${JSON.stringify({ release: options.release, runs: options.runs, page, client }, null, 2)}\n`);
    }
  } finally {
    stop();
  }
}

main().catch((error) => {
  process.stderr.write(`sample-ttff: ${error?.message ?? error}\n`);
  process.exitCode = 1;
});
