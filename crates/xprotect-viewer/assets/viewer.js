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

// --- tokens (memory only) ------------------------------------------------------------------

const auth = { access: null, refresh: null, timer: null };

async function requestToken(form) {
  const response = await fetch(`${GATEWAY}/IDP/connect/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  if (!response.ok) throw new Error(await describeFailure('Login refused', response));
  const token = await response.json();
  auth.access = token.access_token;
  // The refresh token may rotate: keep the newest (PROTOCOL.md §1.4).
  if (token.refresh_token) auth.refresh = token.refresh_token;
  scheduleRefresh(Number(token.expires_in) || 3600);
}

function scheduleRefresh(expiresIn) {
  clearTimeout(auth.timer);
  const delay = Math.max(5, expiresIn - REFRESH_MARGIN_S) * 1000;
  auth.timer = setTimeout(refreshToken, delay);
}

async function refreshToken() {
  try {
    if (auth.refresh) {
      await requestToken({ grant_type: 'refresh_token', refresh_token: auth.refresh, client_id: CLIENT_ID });
    } else {
      throw new Error('the gateway gave no refresh token: log in again');
    }
    // A REST session keeps a token of its own for its media (PROTOCOL.md §2.6).
    await Promise.all([session, ...tiles].filter(Boolean).map((each) => each.tokenRefreshed()));
    $('login-state').textContent = `logged in (token refreshed ${new Date().toLocaleTimeString()})`;
  } catch (error) {
    showError(`Token refresh failed: ${error.message}`);
  }
}

async function gatewayFetch(path, init = {}) {
  const headers = { ...(init.headers || {}), Authorization: `Bearer ${auth.access}` };
  if (init.body) headers['Content-Type'] = 'application/json';
  return fetch(`${GATEWAY}/${path}`, { ...init, headers });
}

async function gatewayJson(what, path, init) {
  const response = await gatewayFetch(path, init);
  if (!response.ok) throw new Error(await describeFailure(what, response));
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

/** Audio only: the newest packet's RTP time, ten times a second (there are no video frames). */
function watchAudio(label, receiver, clock, isCurrent, onAnchor) {
  const timer = setInterval(() => {
    if (!isCurrent()) {
      clearInterval(timer);
      return;
    }
    const source = receiver.getSynchronizationSources()[0];
    if (source?.rtpTimestamp === undefined) return;
    if (!clock.anchored) {
      // `timestamp`: when the newest packet's audio was delivered to the track (webrtc-pc
      // §5.4.5). Read at the first poll, that packet is among the first, and its own RTP time
      // is subtracted, so the reference does not depend on which packet it is.
      const known = Number.isFinite(source.timestamp) && source.timestamp > 0;
      clock.anchor(
        known ? wallOf(source.timestamp) : Date.now(),
        source.rtpTimestamp,
        known ? 'first audio packet timestamp − RTP/8' : 'page clock at the first audio poll − RTP/8',
      );
      onAnchor(clock.source);
    }
    const time = clock.timeOf(source.rtpTimestamp);
    label.textContent = `${time.toISOString()} (audio)`;
    label.dataset.ms = String(time.getTime());
  }, 100);
}

function watchFrames(video, label, receiver, clock, isCurrent, onAnchor) {
  const onFrame = (_now, metadata) => {
    if (!isCurrent()) return;
    // rVFC metadata carries the RTP timestamp of the frame being shown; the receiver's
    // synchronization sources are the fallback (the last packet received, not shown).
    let rtp = metadata.rtpTimestamp;
    if (rtp === undefined) rtp = receiver.getSynchronizationSources()[0]?.rtpTimestamp;
    if (rtp !== undefined) {
      if (!clock.anchored) {
        const arrival = arrivalOfFrame(metadata);
        clock.anchor(arrival.wall, rtp, arrival.source);
        onAnchor(clock.source);
      }
      const time = clock.timeOf(rtp);
      label.textContent = time.toISOString();
      label.dataset.ms = String(time.getTime());
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// --- the session --------------------------------------------------------------------------------

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

class Session {
  /**
   * `view`: where this session plays: `{ video, frameTime, name, main }`. Only the main player
   * has the commands channel, the status line and the diagnostics panel; grid tiles just play.
   */
  constructor(options, view) {
    this.view = view;
    this.options = options;
    this.closed = false;
    this.id = null;
    // The same STUN/TURN servers go to the gateway and to our own peer connection (§4.5).
    const ice = options.ice;
    this.pc = new RTCPeerConnection({
      iceServers: ice ? [{ urls: ice.url, username: ice.username, credential: ice.credential }] : [],
    });
    this.clock = new FrameClock(options.startRef, options.microphone ? 8 : 1);
    this.channel = null;
    this.pc.ontrack = (event) => this.onTrack(event);
    this.pc.oniceconnectionstatechange = () => {
      this.status(`ICE ${this.pc.iceConnectionState}`);
      if (view.main) $('diag-ice').textContent = this.pc.iceConnectionState;
      this.log(`ICE ${this.pc.iceConnectionState}`);
    };
    this.stats = view.main ? setInterval(() => this.updateStats(), STATS_INTERVAL_MS) : null;
    this.lastVideo = null;
    if (view.main) $('diag-clock').textContent = this.clock.source ?? 'live: waiting for the first frame';
  }

  /** The live start reference is fixed: say from what (diagnostics panel and event list). */
  onClockAnchored(source) {
    if (this.view.main) $('diag-clock').textContent = `live: ${source}`;
    this.log(`frame time anchored: ${source}, start reference ${new Date(this.clock.startRef).toISOString()}`);
  }

  status(text) {
    if (this.view.main) setStatus(text);
  }

  log(text) {
    logEvent(this.view.main ? text : `[${this.view.name}] ${text}`);
  }

  /** Candidate pair, bitrate, frames and audio packets from getStats, once a second. */
  async updateStats() {
    if (this.closed) return;
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
    if (this.options.microphone && event.track.kind === 'audio') {
      this.view.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      watchAudio(this.view.frameTime, event.receiver, this.clock, () => !this.closed, (source) => this.onClockAnchored(source));
      return;
    }
    if (event.track.kind !== 'video') return;
    const video = this.view.video;
    // The gateway puts audio and video in one stream; the video element plays both.
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    watchFrames(video, this.view.frameTime, event.receiver, this.clock, () => !this.closed, (source) => this.onClockAnchored(source));
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
    channel.onopen = () => {
      this.log('commands channel open');
      $('commands-state').textContent = 'commands channel open';
      $('commands').dataset.open = 'true';
    };
    channel.onclose = () => {
      $('commands-state').textContent = 'commands channel closed';
      delete $('commands').dataset.open;
    };
    channel.onmessage = (event) => {
      $('commands-state').textContent = `gateway: ${event.data}`;
    };
    this.channel = channel;
    $('commands').hidden = false;
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
    this.channel?.close();
    this.pc.close();
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
    this.log(`REST session ${this.id} created, offer received`);
    this.pc.onicecandidate = (event) => {
      if (event.candidate && !this.closed) this.postCandidate(event.candidate);
    };
    const answer = await this.answer(created.offerSDP);
    await gatewayJson('Answer refused', `REST/v1/WebRTC/Session/${this.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ answerSDP: answer }),
    });
    this.log('answer sent (PATCH)');
    this.openCommands();
    this.pollCandidates();
  }

  async postCandidate(candidate) {
    try {
      await gatewayJson('Candidate refused', `REST/v1/WebRTC/IceCandidates/${this.id}`, {
        method: 'POST',
        body: JSON.stringify({ candidates: [JSON.stringify(candidate)] }),
      });
    } catch (error) {
      showError(error.message);
    }
  }

  /** The list is cumulative (PROTOCOL.md §2.4): add each new string once, until connected. */
  async pollCandidates() {
    const added = new Set();
    while (!this.closed && ['new', 'checking'].includes(this.pc.iceConnectionState)) {
      try {
        const answer = await gatewayJson('Candidate poll refused', `REST/v1/WebRTC/IceCandidates/${this.id}`);
        for (const text of answer.candidates || []) {
          if (added.has(text)) continue;
          added.add(text);
          const init = typeof text === 'string' ? JSON.parse(text) : text;
          this.log(`server candidate ${init.candidate}`);
          await this.pc.addIceCandidate(init);
        }
      } catch (error) {
        showError(error.message);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, CANDIDATE_POLL_MS));
    }
  }

  async tokenRefreshed() {
    if (this.closed || !this.id) return;
    await gatewayJson('Token update refused', `REST/v1/WebRTC/Session/${this.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ token: auth.access }),
    });
    this.log('session token updated (PATCH)');
  }
}

/** WebSocket signaling (PROTOCOL.md §3): register, connect, answer the invite, trickle. */
class WsSession extends Session {
  start() {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      const socket = new WebSocket(`${scheme}://${location.host}${GATEWAY}/ws/webrtc/v1`);
      this.socket = socket;
      this.pending = [];
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
      socket.onerror = () => reject(new Error('The signaling WebSocket failed (see the proxy answer in the network log).'));
      socket.onclose = (event) => {
        if (this.closed) return;
        if (!this.id) reject(new Error(`The signaling WebSocket closed (${event.code} ${event.reason})`));
        // Media outlives signaling (PROTOCOL.md §3.7): only note it.
        else this.log(`signaling WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`);
      };
      socket.onmessage = async (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          showError(`Unreadable signaling message: ${event.data}`);
          return;
        }
        try {
          await this.onMessage(message, send, resolve, reject);
        } catch (error) {
          reject(error);
          showError(error.message);
        }
      };
    });
  }

  async onMessage(message, send, resolve, reject) {
    if (message.error) {
      const error = new Error(`Gateway error: ${message.error.code ?? ''} ${message.error.message ?? JSON.stringify(message.error)}`);
      if (message.id === 1 || message.id === 2) reject(error);
      else showError(error.message);
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
      this.log(`WebSocket session ${this.id} connected`);
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
      showError(`Server error: ${message.params?.message ?? JSON.stringify(message.params)}`);
    }
  }

  close() {
    super.close();
    this.socket?.close();
  }
}

function newSession(options, view) {
  return options.signaling === 'rest' ? new RestSession(options, view) : new WsSession(options, view);
}

// --- the grid: more cameras at once, live or playback as chosen, each its own session ----------

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
  const caption = document.createElement('figcaption');
  caption.textContent = name;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.title = 'remove from the grid';
  caption.append(' ', close);
  tile.append(video, frameTime, caption);
  $('grid').append(tile);
  video.addEventListener('playing', () => {
    tile.dataset.playing = 'true';
  });
  const current = newSession(options, { video, frameTime, name, main: false });
  tiles.push(current);
  close.addEventListener('click', () => {
    current.close();
    tiles.splice(tiles.indexOf(current), 1);
    tile.remove();
  });
  try {
    await current.start();
  } catch (error) {
    showError(`${name}: ${error.message}`);
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
  const view = { video: $('video'), frameTime: $('frame-time'), name: 'main', main: true };
  const current = newSession(options, view);
  session = current;
  $('stop').disabled = false;
  $('start').disabled = true;
  try {
    await current.start();
    // The `playing` event may come first; it then has the last word.
    if (session === current && $('video').dataset.playing !== 'true') {
      setStatus(`signaled (${options.signaling}), waiting for media`);
    }
  } catch (error) {
    showError(error.message);
    if (session === current) stop();
  } finally {
    $('start').disabled = false;
  }
}

/** The frame on screen as a PNG, named after its frame time, offered as a download link. */
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

function stop() {
  if (session) logEvent('stopped');
  session?.close();
  session = null;
  $('video').srcObject = null;
  delete $('video').dataset.playing;
  $('frame-time').textContent = '';
  $('commands').hidden = true;
  $('stop').disabled = true;
  $('snapshot').disabled = true;
  $('diag-ice').textContent = '–';
  $('diag-clock').textContent = '–';
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
