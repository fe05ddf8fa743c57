// The viewer page: log in through the gateway's IDP, list cameras, play live or recorded video
// over REST or WebSocket signaling, show the time of the frame on screen, send PTZ/aux commands.
// Every gateway call goes to /gateway/… on this page's own origin; the server forwards it to the
// one gateway it was started for (no CORS needed on the gateway). Protocol: PROTOCOL.md §1–§5.
'use strict';

const GATEWAY = '/gateway';
const CLIENT_ID = 'VmsClient';
// Refresh this long before the token expires (the sample uses the same margin, PROTOCOL.md §1.4).
const REFRESH_MARGIN_S = 60;
const CANDIDATE_POLL_MS = 200;
const TWO_POW_32 = 2 ** 32;
const STATS_INTERVAL_MS = 1000;
const MAX_EVENTS = 200;
// Reconnecting, as the Rust client does: 200 ms doubling up to 10 s, jittered.
const BACKOFF_INITIAL_MS = 200;
const BACKOFF_FACTOR = 2;
const BACKOFF_CAP_MS = 10_000;
// ICE "disconnected" often heals by itself; this long, it counts as a loss.
const DISCONNECTED_GRACE_MS = 2000;
// No new frame for this long while playing live is a loss (cameras send 10–30 fps), as for the
// Rust client; playback gets longer (a GOP the gateway has to fetch and encode may come late).
const STALL_LIVE_MS = 2000;
const STALL_PLAYBACK_MS = 3000;
// After this long without a frame callback, the decoded-frame count is noted to compare with
// when the stall limit is reached (frame callbacks stop for elements the browser does not paint).
const STALL_SUSPECT_MS = 1000;
// Playback without skip-gaps sends nothing while a gap lasts: only a long silence is a loss.
const STALL_IN_GAPS_MS = 30_000;
// A session that shows nothing this long after it was asked for is given up and made anew.
const FIRST_FRAME_TIMEOUT_MS = 15_000;
const WATCHDOG_INTERVAL_MS = 500;
// A new live session shows its frames this long unseen first: its clock settles (FrameClock.refine).
const LIVE_SETTLE_MS = 500;
// A playback replacement starts this far (× speed) ahead of the frame on screen.
const PLAYBACK_LEAD_MS = 1000;
// WebSocket sessions are replaced a quarter of the token's lifetime before it expires, 3–30 s.
const REPLACE_MARGIN_MIN_MS = 3000;
const REPLACE_MARGIN_MAX_MS = 30_000;
// A refresh that failed for a passing reason is tried again this soon.
const TOKEN_RETRY_MS = 5000;

const $ = (id) => document.getElementById(id);

// --- errors and status ---------------------------------------------------------------------

/** Shows an error exactly as the gateway (or the proxy) sent it. */
function showError(text) {
  const box = $('error');
  box.textContent = text;
  box.hidden = false;
  logEvent(text, true);
}

/** One line in the diagnostics panel's event list (never a token or a password). */
function logEvent(text, isError = false) {
  const list = $('diag-events');
  const item = document.createElement('li');
  item.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  if (isError) item.className = 'error';
  list.append(item);
  while (list.children.length > MAX_EVENTS) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setStatus(text) {
  $('status').textContent = text;
}


/** A failed response as readable text: OAuth error_description, a message field, or the body. */
async function describeFailure(what, response) {
  const body = await response.text();
  let detail = body.trim();
  try {
    const json = JSON.parse(body);
    // OAuth errors carry a code and a description (PROTOCOL.md §1.3); show both as sent.
    const text = json.error_description || json.message;
    if (json.error && text) detail = `${json.error}: ${text}`;
    else detail = text || json.error || JSON.stringify(json);
  } catch {
    // Not JSON: an HTML error page or plain text, shown as it came.
  }
  return `${what}: HTTP ${response.status}${detail ? ` — ${detail}` : ''}`;
}

/**
 * A failure with what a retry loop needs to know: the HTTP status or JSON-RPC code as the
 * gateway sent it, whether a new attempt can help, and whether a fresh token must come first.
 */
class GatewayError extends Error {
  constructor(message, { status = null, retry = true, reauth = false } = {}) {
    super(message);
    this.status = status;
    this.retry = retry;
    this.reauth = reauth;
  }
}

/**
 * Whether an HTTP status is worth another attempt. `sessionPath`: the call names an existing
 * session, whose 404 means the gateway dropped it (a new session helps); on the create call a 404
 * is an unknown device (nothing helps). 401 needs a fresh token first; 408/429/5xx pass.
 */
function classifyStatus(status, sessionPath) {
  if (status === 401) return { retry: true, reauth: true };
  if (status === 404) return { retry: sessionPath, reauth: false };
  return { retry: status === 408 || status === 429 || status >= 500, reauth: false };
}

/** A JSON-RPC error code from the WebSocket (HTTP-like codes, or ONVIF 1001–1003, §3.7). */
function classifyRpcCode(code) {
  if (code === 401) return { retry: true, reauth: true };
  return { retry: ![400, 403, 404].includes(code), reauth: false };
}

/** Anything thrown by fetch or our code as a GatewayError; a network failure may pass. */
function asGatewayError(error) {
  if (error instanceof GatewayError) return error;
  return new GatewayError(error?.message ?? String(error), { retry: true });
}

// --- tokens (memory only) ------------------------------------------------------------------

/** `expiresAt`/`lifetimeMs`: of the access token, so WebSocket sessions know when theirs ends. */
const auth = { access: null, refresh: null, timer: null, expiresAt: 0, lifetimeMs: 0, refreshing: null };

async function requestToken(form) {
  const response = await fetch(`${GATEWAY}/IDP/connect/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  if (!response.ok) {
    // 400 invalid_grant: the password or the refresh token is refused for good (§1.3).
    throw new GatewayError(await describeFailure('Login refused', response), {
      status: response.status,
      retry: response.status === 408 || response.status === 429 || response.status >= 500,
    });
  }
  const token = await response.json();
  auth.access = token.access_token;
  // The refresh token may rotate: keep the newest (PROTOCOL.md §1.4).
  if (token.refresh_token) auth.refresh = token.refresh_token;
  const expiresIn = Number(token.expires_in) || 3600;
  auth.lifetimeMs = expiresIn * 1000;
  auth.expiresAt = Date.now() + auth.lifetimeMs;
  scheduleRefresh(expiresIn);
}

function scheduleRefresh(expiresIn) {
  clearTimeout(auth.timer);
  const delay = Math.max(5, expiresIn - REFRESH_MARGIN_S) * 1000;
  auth.timer = setTimeout(onRefreshTimer, delay);
}

async function onRefreshTimer() {
  try {
    await refreshTokens();
  } catch (error) {
    showError(`Token refresh failed: ${error.message}`);
    // A passing failure (gateway restarting): try again while the token still holds.
    if (error.retry && auth.expiresAt > Date.now()) {
      clearTimeout(auth.timer);
      auth.timer = setTimeout(onRefreshTimer, TOKEN_RETRY_MS);
    }
  }
}

/**
 * Refreshes the access token (once, however many callers ask at the same time) and pushes it to
 * every REST session. Rejects with `retry: false` when the refresh token is refused for good:
 * the password is not kept, so only a new login helps.
 */
function refreshTokens() {
  if (!auth.refreshing) {
    auth.refreshing = (async () => {
      if (!auth.refresh) {
        throw new GatewayError('the gateway gave no refresh token: log in again', { retry: false });
      }
      try {
        await requestToken({ grant_type: 'refresh_token', refresh_token: auth.refresh, client_id: CLIENT_ID });
      } catch (error) {
        const failure = asGatewayError(error);
        if (!failure.retry) failure.message = `${failure.message} (log in again)`;
        throw failure;
      }
      $('login-state').textContent = `logged in (token refreshed ${new Date().toLocaleTimeString()})`;
      // A REST session keeps a token of its own for its media (PROTOCOL.md §2.6).
      await Promise.all([session, ...tiles].filter(Boolean).map((each) => each.tokenRefreshed()));
    })().finally(() => {
      auth.refreshing = null;
    });
  }
  return auth.refreshing;
}

/** A token that holds at least `validMs` more (a new session is about to be made with it). */
async function freshToken(validMs) {
  if (auth.expiresAt - Date.now() < validMs) await refreshTokens();
}

async function gatewayFetch(path, init = {}) {
  const headers = { ...(init.headers || {}), Authorization: `Bearer ${auth.access}` };
  if (init.body) headers['Content-Type'] = 'application/json';
  return fetch(`${GATEWAY}/${path}`, { ...init, headers });
}

/** `sessionPath`: see classifyStatus. */
async function gatewayJson(what, path, init, sessionPath = false) {
  let response;
  try {
    response = await gatewayFetch(path, init);
  } catch (error) {
    throw new GatewayError(`${what}: ${error.message}`, { retry: true });
  }
  if (!response.ok) {
    throw new GatewayError(await describeFailure(what, response), {
      status: response.status,
      ...classifyStatus(response.status, sessionPath),
    });
  }
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

// --- login and cameras ---------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  clearError();
  const user = $('user').value;
  const password = $('password');
  $('login').disabled = true;
  try {
    await requestToken({ grant_type: 'password', username: user, password: password.value, client_id: CLIENT_ID });
    $('login-state').textContent = `logged in as ${user}`;
    await loadCameras();
    $('login-panel').hidden = true;
    $('stream-panel').hidden = false;
  } catch (error) {
    showError(error.message);
  } finally {
    // The password is used once and not kept, not even in the form.
    password.value = '';
    $('login').disabled = false;
  }
}

async function loadCameras() {
  const answer = await gatewayJson('Camera list refused', 'rest/v1/cameras');
  const cameras = Array.isArray(answer) ? answer : answer.array || answer.data || [];
  const select = $('camera');
  select.replaceChildren();
  for (const camera of cameras) {
    const option = document.createElement('option');
    option.value = camera.id;
    option.textContent = camera.displayName || camera.name || camera.id;
    select.append(option);
  }
  if (!cameras.length) showError('The gateway lists no cameras for this user.');
  logEvent(`${cameras.length} camera(s) listed`);
  await loadMicrophones();
  await loadStreams();
}

/** Microphones play alone as audio-only sessions (deviceId = the microphone, 2025 R2+). */
async function loadMicrophones() {
  try {
    const answer = await gatewayJson('Microphone list refused', 'rest/v1/microphones');
    const microphones = Array.isArray(answer) ? answer : answer.array || [];
    if (!microphones.length) return;
    const group = document.createElement('optgroup');
    group.label = 'Microphones (audio only)';
    for (const microphone of microphones) {
      const option = new Option(microphone.displayName || microphone.name || microphone.id, microphone.id);
      option.dataset.kind = 'microphone';
      group.append(option);
    }
    $('camera').append(group);
    logEvent(`${microphones.length} microphone(s) listed`);
  } catch (error) {
    // Gateways before 2025 R2 stream no microphone alone; cameras still play.
    logEvent(error.message, true);
  }
}

function selectedIsMicrophone() {
  return $('camera').selectedOptions[0]?.dataset.kind === 'microphone';
}

/** The camera's stream usages (PROTOCOL.md §11.E); `streamReferenceId` is WebRTC's streamId. */
async function loadStreams() {
  const select = $('stream');
  select.replaceChildren(new Option('camera default', ''));
  const camera = $('camera').value;
  if (!camera || selectedIsMicrophone()) return;
  try {
    const answer = await gatewayJson('Stream list refused', `rest/v1/cameras/${encodeURIComponent(camera)}/streams`);
    const groups = Array.isArray(answer) ? answer : answer.array || [];
    for (const stream of groups.flatMap((group) => group.stream || [])) {
      if (!stream.streamReferenceId) continue;
      const label = `${stream.displayName || stream.name || stream.streamReferenceId}${stream.liveDefault ? ' (live default)' : ''}`;
      select.append(new Option(label, stream.streamReferenceId));
    }
  } catch (error) {
    // Older gateways or users without Config API rights: the default stream still plays.
    logEvent(`${error.message} (using the camera's default stream)`, true);
  }
}

// --- frame time (PROTOCOL.md §4.2) -------------------------------------------------------------

/**
 * Start reference + RTP time, with the 32-bit RTP timestamp unwrapped: milliseconds for video,
 * 8 kHz PCMU samples for audio (`unitsPerMs` 1 or 8).
 *
 * Playback knows its start reference up front (the requested time). Live does not: RTP 0 is the
 * gateway's first frame of the session, so the reference is the wall-clock arrival of the first
 * frame minus its RTP time, fixed once by `anchor` (as our Rust client does, PROTOCOL.md §4.2).
 * The page's clock when Start was pressed would trail the drawn time by the whole set-up time.
 */
class FrameClock {
  constructor(startRef, unitsPerMs = 1) {
    this.startRef = startRef;
    this.unitsPerMs = unitsPerMs;
    this.last = null;
    this.wraps = 0;
    // What the start reference came from, for the diagnostics panel.
    this.source = startRef === null ? null : 'the requested playback time';
  }

  get anchored() {
    return this.startRef !== null;
  }

  /** Live: `wallMs` is when the packet with `rtpTimestamp` arrived (ms since the Unix epoch). */
  anchor(wallMs, rtpTimestamp, source) {
    this.startRef = wallMs - rtpTimestamp / this.unitsPerMs;
    this.source = source;
  }

  /**
   * Live, while a new session plays unseen: keep the earliest (arrival − RTP). A joining session
   * may first get frames the camera encoded earlier (the current GOP) in a burst; those arrive
   * late for their RTP time, the real-time frames after them do not (PROTOCOL.md §4.2).
   */
  refine(wallMs, rtpTimestamp) {
    const candidate = wallMs - rtpTimestamp / this.unitsPerMs;
    if (candidate < this.startRef) this.startRef = candidate;
  }

  timeOf(rtpTimestamp) {
    if (this.last !== null && rtpTimestamp < this.last && this.last - rtpTimestamp > TWO_POW_32 / 2) {
      this.wraps += 1;
    }
    this.last = rtpTimestamp;
    return new Date(this.startRef + (rtpTimestamp + this.wraps * TWO_POW_32) / this.unitsPerMs);
  }
}

// A performance.now()-based time is far below this; a Unix-epoch time in ms is far above it.
const EPOCH_MS_FLOOR = 1e12;

/** A DOMHighResTimeStamp as Unix-epoch ms, whether it is relative to timeOrigin or to the epoch. */
function wallOf(highResTime) {
  return highResTime > EPOCH_MS_FLOOR ? highResTime : performance.timeOrigin + highResTime;
}

/**
 * Live video: when the frame shown first arrived, from its frame-callback metadata. `receiveTime`
 * is when its last packet came off the network; `presentationTime` (when it went to the
 * compositor, after decoding) and the page's clock in the callback are later, so only fallbacks.
 */
function arrivalOfFrame(metadata) {
  if (Number.isFinite(metadata.receiveTime) && metadata.receiveTime > 0) {
    return { wall: wallOf(metadata.receiveTime), source: 'first frame receiveTime − RTP' };
  }
  if (Number.isFinite(metadata.presentationTime) && metadata.presentationTime > 0) {
    return { wall: wallOf(metadata.presentationTime), source: 'first frame presentationTime − RTP' };
  }
  return { wall: Date.now(), source: 'page clock at the first frame callback − RTP' };
}

// --- options -------------------------------------------------------------------------------------

/** The main player (a Player), or null when stopped. */
let session = null;

function readOptions() {
  const playback = document.querySelector('input[name=mode]:checked').value === 'playback';
  const time = $('playback-time').value.trim();
  // Live anchors at the first frame instead (FrameClock.anchor).
  const startRef = playback ? Date.parse(time) : null;
  if (playback && Number.isNaN(startRef)) {
    throw new Error('Playback needs a time, e.g. 2025-01-15T12:04:50Z');
  }
  const speed = Number($('speed').value || '1');
  if (playback && !(speed > 0 && speed <= 32)) throw new Error('Speed must be above 0 and at most 32.');
  const iceUrl = $('ice-url').value.trim();
  const ice = iceUrl
    ? { url: iceUrl, username: $('ice-user').value || undefined, credential: $('ice-credential').value || undefined }
    : null;
  const microphone = selectedIsMicrophone();
  return {
    camera: $('camera').value,
    microphone,
    stream: $('stream').value || null,
    ice,
    signaling: document.querySelector('input[name=signaling]:checked').value,
    playback: playback ? { time: new Date(startRef).toISOString(), speed, skipGaps: $('skip-gaps').checked } : null,
    // The gateway sends audio at speed 1 only (PROTOCOL.md §2.1).
    // A microphone session must ask for audio (PROTOCOL.md §2.1).
    audio: microphone || ($('audio').checked && (!playback || speed === 1)),
    startRef,
  };
}


// --- one gateway session ------------------------------------------------------------------------

/**
 * One gateway session and its peer connection: signals, plays into an element, reports every
 * frame and its own loss to its `player` (which decides about reconnecting), never retries itself.
 *
 * `view`: where the player shows video: `{ video, frameTime, name, main }`. Only the main player
 * has the commands channel, the status line and the diagnostics panel; grid tiles just play.
 */
class Session {
  constructor(options, view, player) {
    this.view = view;
    this.player = player;
    this.options = options;
    this.closed = false;
    this.lost = null;
    this.id = null;
    // Shown: plays in view.video and writes the frame time; otherwise plays unseen (staging).
    this.visible = false;
    this.element = null;
    this.stream = null;
    this.receiver = null;
    this.audioTimer = null;
    this.disconnectTimer = null;
    this.createdAt = performance.now();
    this.firstFrameAt = null;
    this.lastFrameAt = null;
    this.lastFrameMs = null;
    this.firstFrameMs = null;
    // framesDecoded (or audio packets) at the last stall check, see stillReceiving.
    this.mediaCount = -1;
    // The same STUN/TURN servers go to the gateway and to our own peer connection (§4.5).
    const ice = options.ice;
    this.pc = new RTCPeerConnection({
      iceServers: ice ? [{ urls: ice.url, username: ice.username, credential: ice.credential }] : [],
    });
    this.clock = new FrameClock(options.startRef, options.microphone ? 8 : 1);
    this.channel = null;
    this.pc.ontrack = (event) => this.onTrack(event);
    this.pc.oniceconnectionstatechange = () => {
      if (this.visible) {
        this.status(`ICE ${this.pc.iceConnectionState}`);
        if (view.main) $('diag-ice').textContent = this.pc.iceConnectionState;
      }
      this.log(`ICE ${this.pc.iceConnectionState}`);
    };
    this.pc.onconnectionstatechange = () => this.onConnectionState();
    this.stats = view.main ? setInterval(() => this.updateStats(), STATS_INTERVAL_MS) : null;
    this.lastVideo = null;
  }

  /**
   * ICE/DTLS as a loss signal: failed at once, disconnected once it lasted DISCONNECTED_GRACE_MS
   * (ICE often recovers from a short outage by itself), closed when we did not close it.
   */
  onConnectionState() {
    const state = this.pc.connectionState;
    clearTimeout(this.disconnectTimer);
    if (state === 'failed' || (state === 'closed' && !this.closed)) {
      this.fail(new GatewayError(`the peer connection ${state}`));
    } else if (state === 'disconnected') {
      this.disconnectTimer = setTimeout(() => {
        if (this.pc.connectionState === 'disconnected') {
          this.fail(new GatewayError(`the peer connection stayed disconnected for ${DISCONNECTED_GRACE_MS} ms`));
        }
      }, DISCONNECTED_GRACE_MS);
    }
  }

  /** Ends this session for a reason the player learns of (once). */
  fail(error) {
    if (this.closed || this.lost) return;
    this.lost = asGatewayError(error);
    this.log(`session lost: ${this.lost.message}`);
    this.player.onSessionLost(this, this.lost);
  }

  /** The live start reference is fixed: say from what (diagnostics panel and event list). */
  onClockAnchored(source) {
    if (this.view.main && this.visible) $('diag-clock').textContent = `live: ${source}`;
    this.log(`frame time anchored: ${source}, start reference ${new Date(this.clock.startRef).toISOString()}`);
  }

  status(text) {
    if (this.view.main && this.visible) setStatus(text);
  }

  log(text) {
    const tag = this.id ? ` ${this.id.slice(0, 8)}` : '';
    logEvent(this.view.main ? `${tag ? `[session${tag}] ` : ''}${text}` : `[${this.view.name}${tag}] ${text}`);
  }

  /** Candidate pair, bitrate, frames and audio packets from getStats, once a second. */
  async updateStats() {
    if (this.closed || !this.visible) return;
    const report = await this.pc.getStats();
    let pairId = null;
    report.forEach((entry) => {
      if (entry.type === 'transport' && entry.selectedCandidatePairId) pairId = entry.selectedCandidatePairId;
    });
    const pair = pairId && report.get(pairId);
    if (pair) {
      const describe = (id) => {
        const candidate = report.get(id);
        return candidate ? `${candidate.candidateType} ${candidate.address ?? '?'}:${candidate.port} ${candidate.protocol}` : '?';
      };
      $('diag-pair').textContent = `local ${describe(pair.localCandidateId)} ⇄ remote ${describe(pair.remoteCandidateId)}`;
    }
    report.forEach((entry) => {
      if (entry.type !== 'inbound-rtp') return;
      if (entry.kind === 'video') {
        const now = entry.timestamp;
        const bits = entry.bytesReceived * 8;
        const rate = this.lastVideo ? ((bits - this.lastVideo.bits) / (now - this.lastVideo.now)) : 0;
        this.lastVideo = { bits, now };
        $('diag-video').textContent =
          `${entry.frameWidth ?? '?'}x${entry.frameHeight ?? '?'}, ${entry.framesDecoded ?? 0} frames decoded, ` +
          `${entry.framesDropped ?? 0} dropped, ${Math.round(rate)} kbit/s, ${entry.packetsLost ?? 0} packets lost`;
      } else if (entry.kind === 'audio') {
        $('diag-audio').textContent = `${entry.packetsReceived ?? 0} packets, ${entry.packetsLost ?? 0} lost`;
      }
    });
  }

  onTrack(event) {
    const wanted = this.options.microphone ? 'audio' : 'video';
    if (event.track.kind !== wanted) return;
    // The gateway puts audio and video in one stream; the video element plays both.
    this.stream = event.streams[0] || new MediaStream([event.track]);
    this.receiver = event.receiver;
    // The gateway closing DTLS (it dropped the session) says so sooner than ICE does.
    const transport = event.receiver.transport;
    transport?.addEventListener('statechange', () => {
      if (['closed', 'failed'].includes(transport.state)) this.fail(new GatewayError(`DTLS ${transport.state} by the gateway`));
    });
    this.playIn(this.element);
  }

  /** Plays in `video` from now on; `visible`: that is the view's own element (not staging). */
  show(video, visible) {
    this.element = video;
    this.visible = visible;
    if (visible && this.view.main) {
      $('diag-clock').textContent = this.clock.anchored ? `${this.options.playback ? '' : 'live: '}${this.clock.source}` : 'live: waiting for the first frame';
    }
    if (this.stream) this.playIn(video);
  }

  playIn(video) {
    if (!video || !this.stream) return;
    video.srcObject = this.stream;
    if (this.options.microphone) this.watchAudio();
    else this.watchFrames(video);
  }

  /** A frame (or audio packet) with media time `time` is on screen now. */
  onMedia(time) {
    const now = performance.now();
    this.firstFrameAt ??= now;
    this.firstFrameMs ??= time.getTime();
    this.lastFrameAt = now;
    this.lastFrameMs = time.getTime();
    this.mediaCount = -1;
    if (this.visible) {
      const label = this.view.frameTime;
      label.textContent = this.options.microphone ? `${time.toISOString()} (audio)` : time.toISOString();
      label.dataset.ms = String(this.lastFrameMs);
    }
    this.player.onFrame(this);
  }

  watchFrames(video) {
    const onFrame = (_now, metadata) => {
      if (this.closed || this.element !== video) return;
      // rVFC metadata carries the RTP timestamp of the frame being shown; the receiver's
      // synchronization sources are the fallback (the last packet received, not shown).
      let rtp = metadata.rtpTimestamp;
      if (rtp === undefined) rtp = this.receiver.getSynchronizationSources()[0]?.rtpTimestamp;
      if (rtp !== undefined) {
        if (!this.clock.anchored) {
          const arrival = arrivalOfFrame(metadata);
          this.clock.anchor(arrival.wall, rtp, arrival.source);
          this.onClockAnchored(this.clock.source);
        } else if (!this.visible && !this.options.playback) {
          this.clock.refine(arrivalOfFrame(metadata).wall, rtp);
        }
        this.onMedia(this.clock.timeOf(rtp));
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  /** Audio only: the newest packet's RTP time, ten times a second (there are no video frames). */
  watchAudio() {
    if (this.audioTimer) return;
    let previous = null;
    this.audioTimer = setInterval(() => {
      if (this.closed) {
        clearInterval(this.audioTimer);
        return;
      }
      const source = this.receiver.getSynchronizationSources()[0];
      // Unchanged RTP time: no new packet, which must not count as media for the watchdog.
      if (source?.rtpTimestamp === undefined || source.rtpTimestamp === previous) return;
      previous = source.rtpTimestamp;
      if (!this.clock.anchored) {
        // `timestamp`: when the newest packet's audio was delivered to the track (webrtc-pc
        // §5.4.5). Read at the first poll, that packet is among the first, and its own RTP time
        // is subtracted, so the reference does not depend on which packet it is.
        const known = Number.isFinite(source.timestamp) && source.timestamp > 0;
        this.clock.anchor(
          known ? wallOf(source.timestamp) : Date.now(),
          source.rtpTimestamp,
          known ? 'first audio packet timestamp − RTP/8' : 'page clock at the first audio poll − RTP/8',
        );
        this.onClockAnchored(this.clock.source);
      }
      this.onMedia(this.clock.timeOf(source.rtpTimestamp));
    }, 100);
  }

  /**
   * Whether media still comes in although no frame callback came: frame callbacks stop for a
   * video the browser does not paint (a tile scrolled away, a hidden tab), decoding does not.
   * `null` the first time: the count to compare with is taken now, the answer comes next time.
   */
  async stillReceiving() {
    let count = 0;
    (await this.pc.getStats()).forEach((entry) => {
      if (entry.type !== 'inbound-rtp') return;
      if (entry.kind === 'video') count += entry.framesDecoded ?? 0;
      else if (this.options.microphone) count += entry.packetsReceived ?? 0;
    });
    const previous = this.mediaCount;
    this.mediaCount = count;
    return previous < 0 ? null : count > previous;
  }

  /** Answers the gateway's offer; returns the answer as the wire wants it (a JSON string). */
  async answer(offerText) {
    const offer = typeof offerText === 'string' ? JSON.parse(offerText) : offerText;
    await this.pc.setRemoteDescription(offer);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    return JSON.stringify(this.pc.localDescription);
  }

  /** The `commands` channel, opened after the answer (PROTOCOL.md §2.5, §5.1). */
  openCommands() {
    if (!this.view.main) return;
    const channel = this.pc.createDataChannel('commands', { protocol: 'videoos-commands' });
    // Only the session on screen speaks for the PTZ pad; a replaced one closes quietly.
    const mine = () => this.player.current === this && !this.closed;
    channel.onopen = () => {
      this.log('commands channel open');
      if (!mine()) return;
      $('commands-state').textContent = 'commands channel open';
      $('commands').dataset.open = 'true';
    };
    channel.onclose = () => {
      // Closed by the gateway (SCTP ended): the session is over, say it before ICE does.
      if (!this.closed) this.fail(new GatewayError('the gateway closed the commands channel'));
      if (!mine()) return;
      $('commands-state').textContent = 'commands channel closed';
      delete $('commands').dataset.open;
    };
    channel.onmessage = (event) => {
      $('commands-state').textContent = `gateway: ${event.data}`;
    };
    this.channel = channel;
    $('commands').hidden = false;
  }

  /** When the player shows this session: its commands channel speaks for the pad. */
  onShown() {
    if (!this.view.main) return;
    if (this.channel?.readyState === 'open') {
      $('commands-state').textContent = 'commands channel open';
      $('commands').dataset.open = 'true';
    }
  }

  send(method, params) {
    if (this.channel?.readyState !== 'open') {
      showError('The commands channel is not open (yet).');
      return false;
    }
    this.channel.send(JSON.stringify({ ApiVersion: '1.0', type: 'request', method, params }));
    this.log(`sent ${method} ${JSON.stringify(params)}`);
    $('commands-state').textContent = `sent ${method} ${JSON.stringify(params)}`;
    return true;
  }

  close() {
    this.closed = true;
    clearInterval(this.stats);
    clearInterval(this.audioTimer);
    clearTimeout(this.disconnectTimer);
    this.channel?.close();
    this.pc.close();
  }

  /** The instant by which this session must be replaced (WebSocket: its token's expiry). */
  get replaceAt() {
    return Infinity;
  }

  async tokenRefreshed() {}
}

/** REST signaling (PROTOCOL.md §2): POST the session, PATCH the answer, trickle both ways. */
class RestSession extends Session {
  async start() {
    const o = this.options;
    const body = {
      deviceId: o.camera,
      // Gateways before 2025 R2 read cameraId; a microphone needs 2025 R2 anyway.
      cameraId: o.microphone ? undefined : o.camera,
      resolution: 'notInUse',
      includeAudio: o.audio,
      // REST names the field `url` (PROTOCOL.md §2.1).
      iceServers: o.ice ? [{ url: o.ice.url, username: o.ice.username, credential: o.ice.credential }] : [],
    };
    if (o.stream) body.streamId = o.stream;
    if (o.playback) {
      body.playbackTimeNode = { playbackTime: o.playback.time, speed: o.playback.speed, skipGaps: o.playback.skipGaps };
    }
    this.status('creating the session (REST)');
    const created = await gatewayJson('Session refused', 'REST/v1/WebRTC/Session', {
      method: 'POST',
      body: JSON.stringify(body),
    });
    this.id = created.sessionId;
    this.log(`REST session created${o.playback ? ` at ${o.playback.time}` : ''}, offer received`);
    this.pc.onicecandidate = (event) => {
      if (event.candidate && !this.closed) this.postCandidate(event.candidate);
    };
    const answer = await this.answer(created.offerSDP);
    await gatewayJson('Answer refused', `REST/v1/WebRTC/Session/${this.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ answerSDP: answer }),
    }, true);
    this.log('answer sent (PATCH)');
    this.openCommands();
    this.pollCandidates();
  }

  async postCandidate(candidate) {
    try {
      await gatewayJson('Candidate refused', `REST/v1/WebRTC/IceCandidates/${this.id}`, {
        method: 'POST',
        body: JSON.stringify({ candidates: [JSON.stringify(candidate)] }),
      }, true);
    } catch (error) {
      if (!this.closed) this.fail(error);
    }
  }

  /** The list is cumulative (PROTOCOL.md §2.4): add each new string once, until connected. */
  async pollCandidates() {
    const added = new Set();
    while (!this.closed && !this.lost && ['new', 'checking'].includes(this.pc.iceConnectionState)) {
      try {
        const answer = await gatewayJson('Candidate poll refused', `REST/v1/WebRTC/IceCandidates/${this.id}`, undefined, true);
        for (const text of answer.candidates || []) {
          if (added.has(text)) continue;
          added.add(text);
          const init = typeof text === 'string' ? JSON.parse(text) : text;
          this.log(`server candidate ${init.candidate}`);
          await this.pc.addIceCandidate(init);
        }
      } catch (error) {
        if (!this.closed) this.fail(error);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, CANDIDATE_POLL_MS));
    }
  }

  /** A 404 here is the gateway saying it dropped the session: that is a loss. */
  async tokenRefreshed() {
    if (this.closed || this.lost || !this.id) return;
    try {
      await gatewayJson('Token update refused', `REST/v1/WebRTC/Session/${this.id}`, {
        method: 'PATCH',
        body: JSON.stringify({ token: auth.access }),
      }, true);
      this.log('session token updated (PATCH)');
    } catch (error) {
      if (error.status === 404) this.fail(error);
      else this.log(error.message);
    }
  }
}

/** WebSocket signaling (PROTOCOL.md §3): register, connect, answer the invite, trickle. */
class WsSession extends Session {
  start() {
    // WebSocket sessions cannot take a new token (§3.7): this one's ends the session.
    this.tokenExpiresAt = auth.expiresAt;
    this.tokenLifetimeMs = auth.lifetimeMs;
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const socket = new WebSocket(`${scheme}://${location.host}${GATEWAY}/ws/webrtc/v1`);
      this.socket = socket;
      this.pending = [];
      this.ready = false;
      const send = (message) => socket.send(JSON.stringify({ jsonrpc: '2.0', ...message }));
      this.pc.onicecandidate = (event) => {
        if (!event.candidate || this.closed) return;
        const trickle = () =>
          send({ method: 'trickle', params: { session: this.id, candidate: JSON.stringify(event.candidate) } });
        if (this.id) trickle();
        else this.pending.push(trickle);
      };
      socket.onopen = () => {
        this.status('registering (WebSocket)');
        this.log('WebSocket open, register sent');
        send({ method: 'register', params: { authorization: auth.access }, id: 1 });
      };
      socket.onerror = () => reject(new GatewayError('The signaling WebSocket failed (see the proxy answer in the network log).'));
      socket.onclose = (event) => {
        if (this.closed) return;
        const reason = `The signaling WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`;
        if (!this.ready) {
          reject(new GatewayError(reason));
          return;
        }
        // Media outlives signaling (PROTOCOL.md §3.7), but nothing more can be said about this
        // session (no error notice, no trickle): the player replaces it while it still plays.
        this.signalingLost = reason;
        this.log(reason);
        this.player.onSignalingLost(this);
      };
      socket.onmessage = async (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          this.log(`unreadable signaling message: ${event.data}`);
          return;
        }
        try {
          await this.onMessage(message, send, resolve, reject);
        } catch (error) {
          reject(asGatewayError(error));
          if (this.ready) this.fail(error);
        }
      };
    });
  }

  get replaceAt() {
    return this.tokenExpiresAt - replaceMargin(this.tokenLifetimeMs);
  }

  async onMessage(message, send, resolve, reject) {
    if (message.error) {
      const code = Number(message.error.code);
      const error = new GatewayError(
        `Gateway error: ${message.error.code ?? ''} ${message.error.message ?? JSON.stringify(message.error)}`,
        { status: code, ...classifyRpcCode(code) },
      );
      if (message.id === 1 || message.id === 2) reject(error);
      else this.log(error.message);
      return;
    }
    if (message.id === 1) {
      this.status('connecting (WebSocket)');
      const o = this.options;
      const params = { authorization: auth.access, peer: o.camera, includeAudio: o.audio };
      if (o.stream) params.streamId = o.stream;
      // WebSocket names the field `urls`, as browsers do (PROTOCOL.md §3.4).
      if (o.ice) params.iceServers = [{ urls: o.ice.url, username: o.ice.username, credential: o.ice.credential }];
      if (o.playback) {
        params.playbackTime = o.playback.time;
        params.playbackSpeed = o.playback.speed;
        params.skipGaps = o.playback.skipGaps;
      }
      send({ method: 'connect', params, id: 2 });
    } else if (message.id === 2 && message.result) {
      this.id = message.result.session;
      this.log(`WebSocket session connected${this.options.playback ? ` at ${this.options.playback.time}` : ''}`);
      for (const trickle of this.pending.splice(0)) trickle();
    } else if (message.method === 'invite') {
      if (this.id && message.params?.session !== this.id) return;
      this.id = message.params.session;
      this.log('invite (offer) received');
      const answer = await this.answer(message.params.offer);
      send({ id: message.id, result: { answer } });
      this.log('answer sent');
      for (const trickle of this.pending.splice(0)) trickle();
      this.openCommands();
      this.ready = true;
      resolve();
    } else if (message.method === 'trickle') {
      const candidate = message.params?.candidate;
      // Accept the ONVIF object form and Milestone's JSON string form (PROTOCOL.md §3.6).
      const init = typeof candidate === 'string' ? JSON.parse(candidate) : candidate;
      if (init && init.candidate) {
        this.log(`server candidate ${init.candidate}`);
        await this.pc.addIceCandidate(init);
      }
    } else if (message.method) {
      // The gateway's error notification (§3.7), shown as it sent it. About this session once it
      // runs: the session is gone. Before that, the error response to connect says it already;
      // one naming no session is only noted.
      const params = message.params ?? {};
      const text = `Server error: ${params.code ?? ''} ${params.message ?? JSON.stringify(params)}`.replace('  ', ' ');
      // 1003 (a malformed candidate of ours) ends nothing.
      if (this.ready && params.session === this.id && Number(params.code) !== 1003) {
        this.fail(new GatewayError(text, { status: Number(params.code) || null, ...classifyRpcCode(Number(params.code)) }));
      } else {
        this.log(text);
      }
    }
  }

  close() {
    super.close();
    this.socket?.close();
  }
}

function newSession(options, view, player) {
  return options.signaling === 'rest' ? new RestSession(options, view, player) : new WsSession(options, view, player);
}

/** How long before its token expires a WebSocket session is replaced: a quarter, 3–30 s. */
function replaceMargin(lifetimeMs) {
  return Math.min(REPLACE_MARGIN_MAX_MS, Math.max(REPLACE_MARGIN_MIN_MS, lifetimeMs / 4));
}

// --- a player: one view kept playing across losses ------------------------------------------------

/** The wait before reconnect attempt `attempt` (1, 2, …): doubling from 200 ms up to 10 s, jittered. */
function backoffDelay(attempt) {
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_INITIAL_MS * BACKOFF_FACTOR ** (attempt - 1));
  // Half fixed, half random: tiles (and pages) that lost the gateway together do not return together.
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

/** A hidden element a new session plays in until it takes over the view's own. */
function stagingVideo(beside) {
  const video = document.createElement('video');
  Object.assign(video, { autoplay: true, muted: true, playsInline: true });
  video.className = 'staging';
  video.setAttribute('aria-hidden', 'true');
  beside.after(video);
  return video;
}

/**
 * One view (the main player or a grid tile) kept playing: it owns the session on screen and makes
 * new ones when that one is lost (with backoff) or must be replaced (a WebSocket session before
 * its token expires; one whose signaling socket closed). A new session plays unseen and takes
 * over the view's element once it has a frame to show (make-before-break): live when its clock
 * is settled, playback when it is past the last frame shown. Playback resumes just after the
 * last frame shown, with the same speed and skip-gaps (PROTOCOL.md §4.2, §4.3).
 */
class Player {
  /** `view`: `{ video, frameTime, state, name, main }`; `state` shows the connection state. */
  constructor(options, view) {
    this.options = options;
    this.view = view;
    // On screen (lost or not, it shows its last frame until a new one takes over).
    this.current = null;
    // Being made to take over, playing in `staging`.
    this.next = null;
    this.staging = null;
    this.stopped = false;
    this.state = 'connecting';
    // Failed attempts since a session last took over.
    this.attempt = 0;
    this.retryTimer = null;
    this.nextAttemptAt = null;
    this.lastError = null;
    // Media time of the last frame shown (epoch ms).
    this.lastShownMs = null;
    this.sessions = 0;
    this.reconnects = 0;
    this.replacements = 0;
    // One entry per take-over, for the diagnostics and the tests.
    this.takeovers = [];
    this.checking = false;
    this.preparing = false;
    this.watchdog = setInterval(() => this.check(), WATCHDOG_INTERVAL_MS);
  }

  /** The first session; rejects only when retrying cannot help (the error is shown already). */
  async start() {
    await this.attemptSession();
    if (this.state === 'failed') throw this.lastError;
  }

  /** Makes a session: the first, a reconnect after a loss, or a replacement of a live one. */
  async attemptSession() {
    this.retryTimer = null;
    this.nextAttemptAt = null;
    if (this.stopped || this.preparing) return;
    let made = null;
    // Until the session exists (a token refresh may come first), no second attempt starts.
    this.preparing = true;
    try {
      if (this.lastError?.reauth) await refreshTokens();
      await freshToken(2 * replaceMargin(auth.lifetimeMs));
      if (this.stopped) return;
      made = this.newSession();
      this.preparing = false;
      this.render();
      await made.start();
    } catch (error) {
      this.preparing = false;
      if (made) made.fail(error);
      else this.onAttemptFailed(asGatewayError(error));
    }
  }

  /** No session in the making, none waiting to be made. */
  idle() {
    return !this.next && !this.retryTimer && !this.preparing && !this.stopped;
  }

  newSession() {
    const first = this.current === null && this.sessions === 0;
    const replacing = this.currentAlive();
    const session = newSession(this.optionsForNext(replacing), this.view, this);
    session.kind = first ? 'start' : replacing ? 'replace' : 'reconnect';
    this.sessions += 1;
    if (first) {
      this.current = session;
      session.show(this.view.video, true);
    } else {
      this.next = session;
      this.staging = stagingVideo(this.view.video);
      session.show(this.staging, false);
      session.log(replacing ? 'replacement session started (the current one keeps playing)' : `reconnect attempt ${this.attempt}`);
    }
    return session;
  }

  /** Live as asked; playback from just after the last frame shown (plus a lead when replacing). */
  optionsForNext(replacing) {
    const o = this.options;
    if (!o.playback || this.lastShownMs === null) return o;
    // The session on screen plays on while the new one sets up; starting ahead of it, the new
    // one has frames past the last shown when it is ready, and the swap need not go back.
    const lead = replacing ? PLAYBACK_LEAD_MS * o.playback.speed : 0;
    const from = this.lastShownMs + 1 + lead;
    return { ...o, startRef: from, playback: { ...o.playback, time: new Date(from).toISOString() } };
  }

  currentAlive() {
    return Boolean(this.current && !this.current.lost && !this.current.closed);
  }

  onSessionLost(session, error) {
    if (this.stopped) return;
    if (session === this.next) {
      this.dropNext();
      this.onAttemptFailed(error);
    } else if (session === this.current) {
      session.close();
      // A session in the making (or about to be) takes over when it is ready; else make one.
      if (!this.idle()) {
        this.lastError = error;
        this.state = 'reconnecting';
        this.render();
      } else {
        this.onAttemptFailed(error);
      }
    }
  }

  /** The current session's WebSocket closed: replace it while its media still flows. */
  onSignalingLost(session) {
    if (session === this.next) {
      session.fail(new GatewayError(session.signalingLost));
    } else if (session === this.current && this.idle()) {
      this.lastError = new GatewayError(session.signalingLost);
      this.attemptSession();
    }
  }

  onAttemptFailed(error) {
    this.lastError = error;
    logEvent(`${this.view.main ? '' : `[${this.view.name}] `}${error.message}`, true);
    if (!error.retry) {
      this.giveUp(error);
      return;
    }
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt);
    this.state = this.currentAlive() ? 'playing' : 'reconnecting';
    this.nextAttemptAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.attemptSession(), delay);
    this.render();
  }

  /** Errors no retry fixes (unknown camera, refused for good, a token that cannot be renewed). */
  giveUp(error) {
    this.state = 'failed';
    this.close();
    showError(this.view.main ? error.message : `${this.view.name}: ${error.message}`);
    this.render();
  }

  onFrame(session) {
    if (session === this.current) {
      this.lastShownMs = session.lastFrameMs;
      if (this.state !== 'playing') {
        this.state = 'playing';
        this.attempt = 0;
        this.render();
      }
    } else if (session === this.next && this.readyToTakeOver(session)) {
      this.takeOver(session);
    }
  }

  readyToTakeOver(next) {
    if (!next.options.playback) {
      // Live: once the burst of earlier frames a joining session gets is over, so its clock
      // (the earliest arrival − RTP, FrameClock.refine) is settled.
      return performance.now() - next.firstFrameAt >= LIVE_SETTLE_MS;
    }
    // Playback: never show a frame older than the last one shown.
    return this.lastShownMs === null || next.lastFrameMs > this.lastShownMs;
  }

  takeOver(next) {
    const old = this.current;
    const replaced = this.currentAlive();
    const staging = this.staging;
    this.next = null;
    this.staging = null;
    this.current = next;
    next.show(this.view.video, true);
    staging.srcObject = null;
    staging.remove();
    old?.close();
    this.takeovers.push({
      kind: replaced ? 'replacement' : 'reconnect',
      last_shown_ms: this.lastShownMs,
      first_shown_ms: next.lastFrameMs,
      at_ms: Date.now(),
    });
    if (replaced) this.replacements += 1;
    else this.reconnects += 1;
    const gap = this.lastShownMs === null ? '' : `, ${next.lastFrameMs - this.lastShownMs} ms after the last frame shown`;
    next.log(`${replaced ? 'replacement' : 'reconnected'}: the new session is on screen${gap}`);
    this.lastShownMs = next.lastFrameMs;
    this.attempt = 0;
    this.state = 'playing';
    next.onShown();
    this.render();
  }

  dropNext() {
    this.next?.close();
    this.next = null;
    if (this.staging) {
      this.staging.srcObject = null;
      this.staging.remove();
      this.staging = null;
    }
  }

  /** Twice a second: media stalls, sessions that never play, replacements that are due. */
  async check() {
    if (this.stopped || this.checking) return;
    this.checking = true;
    try {
      const now = performance.now();
      for (const session of [this.current, this.next]) {
        if (!session || session.closed || session.lost) continue;
        if (session.lastFrameAt === null) {
          if (now - session.createdAt > FIRST_FRAME_TIMEOUT_MS) {
            session.fail(new GatewayError(`no video within ${FIRST_FRAME_TIMEOUT_MS / 1000} s`));
          }
        } else if (now - session.lastFrameAt > STALL_SUSPECT_MS && session.mediaCount < 0) {
          await session.stillReceiving();
        } else if (now - session.lastFrameAt > this.stallMs()) {
          const receiving = await session.stillReceiving();
          if (receiving) {
            session.lastFrameAt = now;
            session.mediaCount = -1;
          }
          else if (receiving === false) session.fail(new GatewayError(`no new video frame for ${this.stallMs() / 1000} s`));
        }
      }
      const current = this.current;
      if (this.currentAlive() && this.idle() && Date.now() >= current.replaceAt) {
        current.log(`its token expires at ${new Date(current.tokenExpiresAt).toISOString()}: replacing it`);
        // Not awaited: the watchdog keeps watching while the replacement sets up.
        this.attemptSession();
      }
      this.render();
    } finally {
      this.checking = false;
    }
  }

  /** Without skip-gaps a playback gap sends nothing for as long as it lasts (§4.3). */
  stallMs() {
    const o = this.options;
    if (!o.playback) return STALL_LIVE_MS;
    return o.playback.skipGaps ? STALL_PLAYBACK_MS : STALL_IN_GAPS_MS;
  }

  describe() {
    const error = this.lastError ? ` — last error: ${this.lastError.message}` : '';
    const counts = `session ${this.sessions}, ${this.reconnects} reconnect(s), ${this.replacements} replacement(s)`;
    if (this.state === 'failed') return `stopped: ${this.lastError?.message ?? 'failed'}`;
    if (this.state === 'playing') {
      const replacing = this.next ? ', replacement in progress' : this.retryTimer ? `, replacement retry in ${Math.max(0, this.nextAttemptAt - Date.now())} ms` : '';
      return `playing (${counts}${replacing})${error}`;
    }
    if (this.state === 'reconnecting') {
      const when = this.retryTimer ? `next in ${Math.max(0, this.nextAttemptAt - Date.now())} ms` : 'in progress';
      return `reconnecting: attempt ${this.attempt}, ${when} (${counts})${error}`;
    }
    return `connecting (${counts})`;
  }

  render() {
    const box = this.view.state;
    if (!box) return;
    box.textContent = this.describe();
    box.dataset.state = this.state;
    box.dataset.attempt = String(this.attempt);
    box.dataset.reconnects = String(this.reconnects);
    box.dataset.replacements = String(this.replacements);
    if (this.view.main && this.state !== 'playing') setStatus(box.textContent);
  }

  /** What the tests and the diagnostics read (no token in it). */
  report() {
    return {
      name: this.view.name,
      state: this.state,
      attempt: this.attempt,
      sessions: this.sessions,
      reconnects: this.reconnects,
      replacements: this.replacements,
      last_error: this.lastError?.message ?? null,
      last_shown_ms: this.lastShownMs,
      takeovers: this.takeovers,
    };
  }

  async tokenRefreshed() {
    await Promise.all([this.current, this.next].filter(Boolean).map((each) => each.tokenRefreshed()));
  }

  send(method, params) {
    if (!this.currentAlive()) {
      showError('The commands channel is not open (yet).');
      return false;
    }
    return this.current.send(method, params);
  }

  close() {
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dropNext();
    this.current?.close();
  }

  stop() {
    this.stopped = true;
    this.close();
  }
}

/** The state of every player, for the driver (page.evaluate). */
function viewerReport() {
  return { main: session?.report() ?? null, tiles: tiles.map((each) => each.report()) };
}

// --- the grid: more cameras at once, live or playback as chosen, each its own player ----------

const tiles = [];

async function addTile() {
  clearError();
  let options;
  try {
    options = readOptions();
  } catch (error) {
    showError(error.message);
    return;
  }
  const name = $('camera').selectedOptions[0]?.textContent ?? options.camera;
  const tile = document.createElement('figure');
  tile.className = 'tile';
  const video = document.createElement('video');
  Object.assign(video, { autoplay: true, muted: true, playsInline: true });
  const frameTime = document.createElement('div');
  frameTime.className = 'tile-time';
  const state = document.createElement('div');
  state.className = 'tile-state';
  const caption = document.createElement('figcaption');
  caption.textContent = name;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.title = 'remove from the grid';
  caption.append(' ', close);
  tile.append(video, frameTime, state, caption);
  $('grid').append(tile);
  video.addEventListener('playing', () => {
    tile.dataset.playing = 'true';
  });
  const player = new Player(options, { video, frameTime, state, name, main: false });
  tiles.push(player);
  close.addEventListener('click', () => {
    player.stop();
    tiles.splice(tiles.indexOf(player), 1);
    tile.remove();
  });
  try {
    await player.start();
  } catch {
    // Shown by the player already (it gave up).
  }
}

async function start(event) {
  event.preventDefault();
  clearError();
  stop();
  let options;
  try {
    options = readOptions();
  } catch (error) {
    showError(error.message);
    return;
  }
  const view = { video: $('video'), frameTime: $('frame-time'), state: $('diag-connection'), name: 'main', main: true };
  const current = new Player(options, view);
  session = current;
  $('stop').disabled = false;
  $('start').disabled = true;
  try {
    await current.start();
    // The `playing` event may come first; it then has the last word.
    if (session === current && $('video').dataset.playing !== 'true' && current.state !== 'reconnecting') {
      setStatus(`signaled (${options.signaling}), waiting for media`);
    }
  } catch {
    // The player showed why it gave up.
    if (session === current) stop({ keepState: true });
  } finally {
    $('start').disabled = false;
  }
}

function snapshot() {
  const video = $('video');
  if (!video.videoWidth) return;
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const time = $('frame-time').textContent || new Date().toISOString();
  canvas.toBlob((blob) => {
    if (!blob) return;
    const link = $('snapshot-link');
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = `snapshot-${time.replace(/[:.]/g, '-')}.png`;
    link.textContent = `snapshot ${time} (${canvas.width}x${canvas.height}, ${blob.size} bytes)`;
    link.dataset.width = String(canvas.width);
    link.dataset.height = String(canvas.height);
    link.dataset.bytes = String(blob.size);
    link.hidden = false;
    link.click();
    logEvent(`snapshot of the frame at ${time}`);
  }, 'image/png');
}


/** `keepState`: leave the connection line saying why the player stopped. */
function stop({ keepState = false } = {}) {
  if (session) logEvent('stopped');
  session?.stop();
  session = null;
  $('video').srcObject = null;
  delete $('video').dataset.playing;
  $('frame-time').textContent = '';
  delete $('frame-time').dataset.ms;
  $('commands').hidden = true;
  $('stop').disabled = true;
  $('snapshot').disabled = true;
  $('diag-ice').textContent = '–';
  $('diag-clock').textContent = '–';
  if (!keepState) {
    $('diag-connection').textContent = '–';
    delete $('diag-connection').dataset.state;
  }
  setStatus('idle');
}

// --- PTZ and aux ------------------------------------------------------------------------------

function onPtz(event) {
  const direction = event.target.closest('[data-ptz]')?.dataset.ptz;
  if (direction) session?.send('ptzMove', { direction });
}

function onAux(event) {
  const button = event.target.closest('[data-aux]');
  if (!button || !session) return;
  // The gateway does not report aux states: this page remembers what it set (PROTOCOL.md §5.3).
  const on = button.getAttribute('aria-pressed') !== 'true';
  if (session.send('setAux', { on, auxNumber: button.dataset.aux })) {
    button.setAttribute('aria-pressed', String(on));
  }
}

$('video').addEventListener('playing', () => {
  $('video').dataset.playing = 'true';
  $('snapshot').disabled = false;
  logEvent('video playing');
  setStatus(`playing ${$('video').videoWidth}x${$('video').videoHeight}`);
});
$('login-form').addEventListener('submit', login);
$('stream-form').addEventListener('submit', start);
$('stop').addEventListener('click', stop);
$('snapshot').addEventListener('click', snapshot);
$('add-tile').addEventListener('click', addTile);
$('camera').addEventListener('change', loadStreams);
$('ptz-pad').addEventListener('click', onPtz);
$('aux-buttons').addEventListener('click', onAux);
