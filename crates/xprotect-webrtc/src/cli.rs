//! Command-line definitions: every flag once, with help that teaches. Values here are parsed and
//! validated by clap; `settings` turns them (plus environment and prompts) into runtime objects.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

const EXIT_CODES: &str = "\
EXIT CODES:
    0  success (also when the reader of stdout goes away)
    1  any other error
    2  bad command line
    3  login failed (credentials, IDP unreachable)
    4  the gateway refused or broke the session (signaling)
    5  no media (WebRTC failed, no frame in time, media stopped)
    6  cannot write the output";

/// Get video out of Milestone XProtect over WebRTC.
#[derive(Debug, Parser)]
#[command(
    name = "xprotect-webrtc",
    version,
    about = "Get video out of Milestone XProtect over WebRTC: record, emulate, test.",
    long_about = "Get video out of Milestone XProtect's API Gateway over WebRTC.\n\n\
        Logs in at the gateway's identity provider, signals over REST or WebSocket, receives H.264 \
        and records it to fragmented MP4 (playable while written), raw H.264 or stdout, with each \
        frame's wall-clock time. Ships a faithful gateway emulator for demos and CI.\n\n\
        Start with `xprotect-webrtc demo`.",
    after_long_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace). Tokens and passwords are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded emulator, record 10 s of live video to demo.mp4, then serve the viewer.
    #[command(
        long_about = "Start the gateway emulator on a free loopback port, record live video \
        from its first camera over WebSocket signaling (exactly as against a real gateway) and \
        print time to first frame, frame count, first and last frame times, and how to play the \
        file. Then serve the web viewer (as `view` does) against the embedded emulator until \
        Ctrl-C: open the printed URL and log in as admin / admin. --duration or --no-view make \
        it a bounded run that ends once the file is written. Needs nothing installed beyond \
        Rust."
    )]
    Demo(DemoArgs),
    /// Run the gateway emulator as a standalone server.
    #[command(
        long_about = "Run the XProtect API Gateway emulator: identity provider, REST and \
        WebSocket WebRTC signaling, synthetic H.264 cameras showing their recording time. Point \
        any client (ours, the official sample page, your own) at the printed gateway URL.\n\n\
        Token enforcement: a session whose token expired, and was not replaced by a REST \
        PATCH, stops sending media --token-grace after expiry (ICE stays up; journal: \
        session_token_expired). WebSocket sessions cannot be refreshed: they expire with the \
        token they were created with.\n\n\
        Fault injection, for testing clients: --drop-sessions-after, --delay-candidates and \
        --fail-requests schedule faults from the start; --fault-control serves \
        POST /api/emulator/faults with one JSON fault (204; 400 on a bad body) and \
        DELETE /api/emulator/faults to clear the sticky ones:\n  \
        {\"fault\":\"drop_sessions\"}  end every session (media stops, REST 404)\n  \
        {\"fault\":\"close_web_sockets\"}  close every WebSocket (code 1011); its \
        sessions end 5 s later\n  \
        {\"fault\":\"stop_media\"}  stop RTP on every session, ICE stays up\n  \
        {\"fault\":\"http_status\",\"status\":503,\"count\":2}  fail the next IDP/API \
        requests\n  \
        {\"fault\":\"delay_candidates\",\"millis\":2000}  hold back the server candidates of \
        new sessions\n  \
        {\"fault\":\"restart_signaling\",\"down_millis\":1000}  close the listener and every \
        WebSocket, forget all sessions, listen again later (tokens survive)\n\
        Every fault is journaled as fault_injected, every session it ends as session_dropped."
    )]
    Emulator(EmulatorArgs),
    /// Log in at the identity provider and print when the token expires.
    Login(LoginArgs),
    /// Record video from a camera to MP4, raw H.264 or stdout.
    #[command(
        long_about = "Record video from a camera.\n\n\
        The MP4 is fragmented (one fragment per GOP, at most a second), so the file is playable \
        while it is written and after the process is killed: at most the last fragment is lost. \
        Each fragment carries a `prft` box with the wall-clock time of its first frame; \
        `xprotect-webrtc frames FILE` prints every frame's time back out.",
        after_long_help = "EXAMPLES:\n    \
        xprotect-webrtc record --gateway https://vms/api --user u --password-stdin \\\n        \
        --camera 6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B --duration 10s -o cam.mp4\n    \
        xprotect-webrtc record … -o - | ffplay -\n    \
        xprotect-webrtc record … --format h264 -o cam.h264 --frame-times frames.jsonl\n    \
        printf '{\"ptz\":\"left\"}\\n{\"aux\":1,\"on\":true}\\n' | \\\n        \
        XPROTECT_PASSWORD=… xprotect-webrtc record … -d 10s -o cam.mp4 --commands -"
    )]
    Record(RecordArgs),
    /// Export a recorded time range to MP4, as fast as the gateway sends every frame.
    #[command(
        long_about = "Export recorded video from --from to --to into a fragmented MP4.\n\n\
        Plays the range back with skipGaps at the highest speed (up to 32) at which the gateway \
        still sends every frame: a short probe at speed 1 measures the frame interval, and if \
        the first frames of a faster session come further apart (the gateway drops frames above \
        its send-rate cap), the export starts again slower and says so. Stops at the first frame \
        at or after --to (not written), or when no frame comes for --end-wait (the recordings \
        ended). The file's timestamps are recording times: gaps stay in the timeline (a player \
        shows a frozen frame) unless --close-gaps; each fragment's prft keeps the true recording \
        time either way, so `xprotect-webrtc frames FILE` prints recording times.\n\n\
        The range is cut into --parallel chunks played by as many concurrent sessions (a gateway \
        paces each session, not their sum) and stitched in order: each chunk ends where the next \
        chunk's first keyframe begins, so the file holds every frame once. Chunks waiting for \
        their turn are held in memory (64 MiB in all), then in spill files next to the output.",
        after_long_help = "EXAMPLES:\n    \
        xprotect-webrtc export --gateway https://vms/api --user u --password-stdin \\\n        \
        --camera 'Front Door' --from 2025-01-15T12:04:50Z --to 2025-01-15T12:05:20Z -o clip.mp4\n    \
        xprotect-webrtc export … --close-gaps -o clip.mp4"
    )]
    Export(ExportArgs),
    /// List the cameras: id, name, streams (with the live default), PTZ, microphone.
    #[command(
        long_about = "List the gateway's cameras from its Config API (rest/v1/cameras): id, \
        name, PTZ, the probable microphone (same hardware) and every stream with its streamId \
        for `record --stream`; `*` marks the live default. --json prints one JSON object per \
        camera and line."
    )]
    Cameras(CamerasArgs),
    /// Move a PTZ camera one step (or N steps) over the session's data channel.
    #[command(
        long_about = "Move a PTZ camera: open a live session to the camera, wait for its \
        `commands` data channel (label `commands`, protocol `videoos-commands`), send `ptzMove` \
        with the direction --repeat times, wait until the gateway has acknowledged every \
        message, and close. Each message sent is printed on stdout, one JSON line each.\n\n\
        Each `ptzMove` is one step of a few degrees, not a continuous move: there is no stop \
        command. The gateway never replies, so a camera without PTZ (or a user without the PTZ \
        permission) fails silently; `cameras` shows which cameras report PTZ.",
        after_long_help = "EXAMPLES:\n    \
        xprotect-webrtc ptz --gateway https://vms/api --user u --password-stdin \\\n        \
        --camera 'Front Door' --move left\n    \
        xprotect-webrtc ptz … --move upLeft --repeat 3\n    \
        xprotect-webrtc ptz … --move home --envelope jsonrpc"
    )]
    Ptz(PtzArgs),
    /// Switch a camera's aux output on or off over the session's data channel.
    #[command(
        long_about = "Switch an aux output of a camera (a light, a wiper, a heater): open a \
        live session, wait for its `commands` data channel, send `setAux` with the output \
        number and on/off, wait until the gateway has acknowledged it, and close. The message \
        sent is printed on stdout as a JSON line.\n\n\
        The gateway does not report the aux state, so this sets it rather than toggling it.",
        after_long_help = "EXAMPLES:\n    \
        xprotect-webrtc aux --gateway https://vms/api --user u --password-stdin \\\n        \
        --camera 'Front Door' --number 2 --on\n    \
        xprotect-webrtc aux … --number 2 --off --envelope jsonrpc"
    )]
    Aux(AuxArgs),
    /// Serve a web viewer for a gateway, with the gateway's API proxied under the same origin.
    #[command(
        long_about = "Serve a web viewer on this machine and print its URL.\n\n\
        The page logs in at the gateway's identity provider, lists the cameras and plays live \
        or recorded video over REST or WebSocket signaling, with the time of the frame on \
        screen and PTZ/aux buttons. It reaches the gateway only through /gateway/… on the \
        viewer's own origin, which this command forwards to --gateway and nowhere else, so \
        the gateway needs no CORS configuration. The password goes from the page to the \
        gateway's IDP and is kept nowhere.",
        after_long_help = "EXAMPLES:\n    \
        xprotect-webrtc view --gateway https://vms.example.com/api\n    \
        xprotect-webrtc view --gateway https://vms/api --ca-cert ca.pem --listen 127.0.0.1:9000"
    )]
    View(ViewArgs),
    /// Print the frame times stored in an MP4 recorded by this tool, as JSON lines.
    Frames(FramesArgs),
    /// Measure time to first frame, CPU and memory per session.
    #[command(
        long_about = "Measure the client: time from start to the first keyframe (median of \
        several runs), and CPU time per session-second and memory per session for several \
        concurrent sessions. Without --gateway it starts the emulator in a separate process (this \
        binary), so the figures are the client's alone."
    )]
    Bench(BenchArgs),
    /// Check a gateway step by step and explain what fails and what to do.
    #[command(
        long_about = "Check the way from here to video, step by step, each printed as ok or \
        FAIL with an explanation and what to do: DNS and TCP, TLS, the identity provider, the \
        login, the WebSocket endpoint (2025R1+) or REST only, the Config API's cameras, a test \
        session to the first keyframe with its timing, the ICE candidates of both sides and the \
        pair in use, and the gateway's CORS answer for browsers. Ends with the connectivity \
        failure modes that apply. Exit code 0 when every step passed, 1 otherwise."
    )]
    Doctor(DoctorArgs),
    /// One load step of `bench` in a fresh process (internal: `bench` starts it).
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
}

/// How to reach and log in to a gateway.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "CONNECTION")]
pub struct ConnectionArgs {
    /// The API Gateway URL, e.g. https://vms.example.com/api [env: XPROTECT_GATEWAY]
    #[arg(long, env = "XPROTECT_GATEWAY", value_name = "URL", hide_env = true)]
    pub gateway: Url,

    /// XProtect basic user name [env: XPROTECT_USER]
    #[arg(
        long,
        short = 'u',
        env = "XPROTECT_USER",
        value_name = "NAME",
        hide_env = true
    )]
    pub user: String,

    /// Read the password from the first line of stdin. Otherwise XPROTECT_PASSWORD, or a prompt.
    #[arg(long)]
    pub password_stdin: bool,

    /// OAuth client id: VmsClient (2025 R1+, gets a refresh token) or GrantValidatorClient.
    #[arg(long, value_name = "ID", default_value = "VmsClient")]
    pub client_id: String,

    /// Also trust the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Do not verify the gateway's TLS certificate (self-signed servers). Prefer --ca-cert.
    #[arg(long)]
    pub insecure: bool,

    /// The gateway's XProtect release, where detection cannot tell (all before 2025R1 look
    /// alike): 2023R1, 2023R3, 2024R1, 2024R2, 2025R1 or 2025R2.
    ///
    /// What an older gateway does not know it ignores without an error, so a request it cannot
    /// serve is refused up front: 2023R1 has no playback and no stream choice (it would send
    /// LIVE video for --from), releases before 2025R2 no audio and no microphones, before 2025R1
    /// no WebSocket signaling and no PTZ/aux. Without it the release is assumed to be the newest
    /// the gateway's WebSocket endpoint allows.
    #[arg(long, value_name = "RELEASE")]
    pub gateway_release: Option<xprotect_client::release::Release>,
}

/// Signaling transport choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SignalingArg {
    /// REST: POST/PATCH session, polled ICE candidates (XProtect 2023 R1+).
    Rest,
    /// WebSocket JSON-RPC (XProtect 2025 R1+), fewer round trips.
    #[default]
    Ws,
}

/// DTLS role of our answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DtlsRoleArg {
    /// We are the DTLS server: first frame in milliseconds (falls back to active if needed).
    #[default]
    Passive,
    /// We are the DTLS client, as browsers are.
    Active,
}

/// Recording container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Fragmented MP4.
    Mp4,
    /// Raw Annex-B H.264.
    H264,
}

/// What to stream and how.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "STREAM")]
pub struct StreamArgs {
    /// Camera GUID, or its exact name (case-insensitive, looked up in the Config API).
    #[arg(long, value_name = "GUID|NAME")]
    pub camera: String,

    /// A specific stream of the camera (GUID, see `cameras`); the camera's default otherwise.
    #[arg(long, value_name = "GUID")]
    pub stream: Option<String>,

    /// Signaling transport. Default: WebSocket, or REST when the gateway has no WebSocket
    /// endpoint (before 2025R1: it answers 404), said once on stderr.
    #[arg(long, value_enum)]
    pub signaling: Option<SignalingArg>,

    /// DTLS role of the answer.
    #[arg(long, value_enum, default_value_t = DtlsRoleArg::Passive)]
    pub dtls_role: DtlsRoleArg,

    /// Resolve the gateway's .local (mDNS) candidates. Off by default: it needs a multicast route.
    #[arg(long)]
    pub mdns: bool,

    /// Local address for our ICE host candidates (e.g. 127.0.0.1 for a loopback gateway).
    #[arg(long, value_name = "IP")]
    pub bind: Option<std::net::IpAddr>,

    /// Play recorded video from this time (ISO 8601 with an offset, e.g. 2025-01-15T12:04:54Z)
    /// instead of live video. Frame times are then recording times.
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "PLAYBACK")]
    pub from: Option<time::OffsetDateTime>,

    /// Playback speed, 0 < speed ≤ 32.
    #[arg(long, value_name = "X", requires = "from", value_parser = parse_speed, help_heading = "PLAYBACK")]
    pub speed: Option<f64>,

    /// Jump over gaps between recordings instead of waiting them out.
    #[arg(long, requires = "from", help_heading = "PLAYBACK")]
    pub skip_gaps: bool,

    /// Ask for the camera's audio (`includeAudio`, the default, as the 2025 R2 sample does).
    #[arg(long, overrides_with = "no_audio")]
    pub audio: bool,

    /// No audio: `includeAudio` false. Audio, when the camera has a microphone (live, or
    /// playback at speed 1), is recorded as a PCMU track in MP4 output.
    #[arg(long, overrides_with = "audio")]
    pub no_audio: bool,

    #[command(flatten)]
    pub ice: IceArgs,
}

/// STUN/TURN servers: sent to the gateway for its own gathering (REST `url` / WebSocket `urls`)
/// and used by our own peer connection.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "ICE")]
pub struct IceArgs {
    /// A STUN server, e.g. stun:stun.example.org:3478 (repeatable; comma-separated in the env).
    #[arg(
        long = "stun",
        value_name = "URL",
        env = "XPROTECT_STUN",
        value_delimiter = ','
    )]
    pub stun: Vec<String>,

    /// A TURN server (UDP), e.g. turn:turn.example.org:3478 (repeatable; comma-separated in
    /// the env). All TURN servers share --turn-user and --turn-credential.
    #[arg(
        long = "turn",
        value_name = "URL",
        env = "XPROTECT_TURN",
        value_delimiter = ','
    )]
    pub turn: Vec<String>,

    /// TURN user name.
    #[arg(
        long,
        value_name = "USER",
        env = "XPROTECT_TURN_USER",
        requires = "turn"
    )]
    pub turn_user: Option<String>,

    /// TURN credential. A secret: prefer the environment variable to the command line (which
    /// other users can see in the process list).
    #[arg(
        long,
        value_name = "SECRET",
        env = "XPROTECT_TURN_CREDENTIAL",
        hide_env_values = true,
        requires = "turn"
    )]
    pub turn_credential: Option<String>,

    /// Only use TURN relay candidates on our side (ICE transport policy "relay"); needs --turn.
    #[arg(long, requires = "turn")]
    pub relay_only: bool,
}

impl StreamArgs {
    /// Whether to ask for audio (`--audio`/`--no-audio`, the last one wins; on by default).
    pub fn include_audio(&self) -> bool {
        !self.no_audio
    }
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Camera GUID, or its exact name (case-insensitive, looked up in the Config API).
    #[arg(long, value_name = "GUID|NAME", help_heading = "STREAM")]
    pub camera: String,

    /// A specific stream of the camera (GUID, see `cameras`); the camera's default otherwise.
    #[arg(long, value_name = "GUID", help_heading = "STREAM")]
    pub stream: Option<String>,

    /// Signaling transport.
    #[arg(long, value_enum, default_value_t = SignalingArg::Ws, help_heading = "STREAM")]
    pub signaling: SignalingArg,

    /// Local address for our ICE host candidates (e.g. 127.0.0.1 for a loopback gateway).
    #[arg(long, value_name = "IP", help_heading = "STREAM")]
    pub bind: Option<std::net::IpAddr>,

    #[command(flatten)]
    pub ice: IceArgs,

    /// Start of the range (ISO 8601 with an offset, e.g. 2025-01-15T12:04:50Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "RANGE")]
    pub from: time::OffsetDateTime,

    /// End of the range: the first frame recorded at or after it is not exported.
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "RANGE")]
    pub to: time::OffsetDateTime,

    /// The fastest playback speed to ask for (lowered if the gateway drops frames at it).
    #[arg(long, value_name = "X", value_parser = parse_speed, default_value = "32", help_heading = "RANGE")]
    pub speed: f64,

    /// Take the gaps between recordings out of the file's timeline (frames stay at their
    /// true recording times in the prft boxes).
    #[arg(long, help_heading = "OUTPUT")]
    pub close_gaps: bool,

    /// No frame for this long means the recordings ended before --to.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s", help_heading = "RANGE")]
    pub end_wait: Duration,

    /// Concurrent playback sessions, each playing one chunk of the range (1: one session).
    #[arg(long, value_name = "N", default_value_t = xprotect_client::export::DEFAULT_PARALLEL as u16,
          value_parser = clap::value_parser!(u16).range(1..=xprotect_client::export::MAX_PARALLEL as i64),
          help_heading = "RANGE")]
    pub parallel: u16,

    /// Output MP4 file, or - for stdout.
    #[arg(long, short = 'o', value_name = "PATH", help_heading = "OUTPUT")]
    pub output: String,
}

/// `record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub stream: StreamArgs,

    /// Stop after this much video, e.g. 10s, 5m, 2h. Without it: until Ctrl-C.
    #[arg(long, short = 'd', value_name = "DURATION", value_parser = parse_duration, help_heading = "OUTPUT")]
    pub duration: Option<Duration>,

    /// Playback: stop at the first frame recorded at or after this time (ISO 8601).
    #[arg(long, value_name = "TIME", requires = "from", value_parser = parse_time, help_heading = "PLAYBACK")]
    pub to: Option<time::OffsetDateTime>,

    /// Output file, or - for stdout.
    #[arg(long, short = 'o', value_name = "PATH", help_heading = "OUTPUT")]
    pub output: String,

    /// Container. Default: h264 for .h264/.264 files, mp4 otherwise.
    #[arg(long, value_enum, help_heading = "OUTPUT")]
    pub format: Option<FormatArg>,

    /// Write each frame's time as a JSON line to FILE, or - for stdout.
    #[arg(long, value_name = "FILE", help_heading = "OUTPUT")]
    pub frame_times: Option<String>,

    /// Send PTZ/aux commands read as JSON lines from FILE, or - for stdin, while recording.
    ///
    /// One command per line, sent as soon as the data channel is open and the line is read:
    /// {"ptz":"left"}, {"aux":2,"on":true}, either with "envelope":"jsonrpc", or a raw wire
    /// message ({"method":"ptzMove",…}, sent as written). Blank lines and lines starting with #
    /// are skipped; a bad line is reported on stderr with its number and skipped, it never stops
    /// the recording. With --password-stdin the password is stdin's first line and the commands
    /// follow it (line numbers count command lines only).
    #[arg(long, value_name = "FILE|-", help_heading = "COMMANDS")]
    pub commands: Option<String>,

    /// Write statistics as JSON lines to FILE, or - for stdout: every --stats-interval and once
    /// at the end (with "final": true and rates averaged over the whole recording).
    ///
    /// Each line has time, elapsed_s, frames, keyframes, bytes, bitrate_bps, fps,
    /// last_frame_time, packets_lost, sessions_started, reconnects, replacements,
    /// token_refreshes, warnings, and "session": the session's own report (video jitter, and the
    /// WebRTC stack's per-stream packets, losses, NACK/PLI/FIR counts, both sides' ICE
    /// candidates and the selected pair with its RTT). Fields may be added.
    #[arg(long, value_name = "FILE|-", help_heading = "OUTPUT")]
    pub stats: Option<String>,

    /// Seconds between --stats lines.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "5",
          requires = "stats", help_heading = "OUTPUT")]
    pub stats_interval: Duration,

    #[command(flatten)]
    pub reconnect: ReconnectArgs,
}

/// How `record` outlives gateway sessions.
#[derive(Debug, Args)]
pub struct ReconnectArgs {
    /// End at the first loss of the gateway session instead of reconnecting.
    ///
    /// By default a lost session (ICE/DTLS failure, media stall, WebSocket or HTTP failure,
    /// rejected token, gateway restart) is replaced by a new one and the recording continues in
    /// the same file: live resumes live, playback resumes just after the last written frame.
    /// Over WebSocket each token refresh also starts a replacement that takes over without a
    /// lost frame (make-before-break).
    #[arg(long, help_heading = "RECONNECT")]
    pub no_reconnect: bool,

    /// Longest wait between reconnect attempts, in seconds (they start at once, then 0.2 s
    /// doubling, with jitter).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "10",
          help_heading = "RECONNECT")]
    pub reconnect_max_delay: Duration,

    /// Give up after this many failed reconnect attempts in a row. Default: never.
    #[arg(long, value_name = "N", help_heading = "RECONNECT")]
    pub reconnect_attempts: Option<u32>,

    /// Seconds without media (once frames flowed) before a session counts as lost.
    /// Default: 2 for live, 10 for playback (recording gaps without --skip-gaps are silent).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, help_heading = "RECONNECT")]
    pub media_timeout: Option<Duration>,

    /// Playback: a replacement session starts this many seconds of recording time (times the
    /// speed) after the last written frame; the old session fills in up to its first keyframe.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "2",
          help_heading = "RECONNECT")]
    pub handover_lead: Duration,
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// The camera for the test session (GUID or name); the first camera of the Config API
    /// otherwise.
    #[arg(long, value_name = "GUID|NAME", help_heading = "STREAM")]
    pub camera: Option<String>,

    /// Signaling for the test session. Default: WebSocket where the gateway has it, else REST.
    #[arg(long, value_enum, help_heading = "STREAM")]
    pub signaling: Option<SignalingArg>,

    /// Local address for our ICE host candidates (e.g. 127.0.0.1 for a loopback gateway).
    #[arg(long, value_name = "IP", help_heading = "STREAM")]
    pub bind: Option<std::net::IpAddr>,

    /// The web page origin to check the gateway's CORS answer for.
    #[arg(
        long,
        value_name = "ORIGIN",
        default_value = "https://viewer.example.com",
        help_heading = "CHECKS"
    )]
    pub origin: String,

    /// How long the test session may take to its first keyframe.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "15", help_heading = "CHECKS")]
    pub session_timeout: Duration,
}

/// A PTZ step direction, as the protocol spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PtzDirectionArg {
    /// Tilt up.
    Up,
    /// Tilt down.
    Down,
    /// Pan left.
    Left,
    /// Pan right.
    Right,
    /// Up and left.
    #[value(name = "upLeft", alias = "up-left")]
    UpLeft,
    /// Up and right.
    #[value(name = "upRight", alias = "up-right")]
    UpRight,
    /// Down and left.
    #[value(name = "downLeft", alias = "down-left")]
    DownLeft,
    /// Down and right.
    #[value(name = "downRight", alias = "down-right")]
    DownRight,
    /// The home position.
    Home,
}

/// The envelope of data-channel commands (PROTOCOL.md §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum EnvelopeArg {
    /// "ApiVersion":"1.0","type":"request", what Milestone's sample code sends.
    #[default]
    ApiVersion,
    /// "jsonrpc":"2.0","type":"request", what the 2025 R2 README shows.
    Jsonrpc,
}

/// How commands go out on the data channel.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "COMMANDS")]
pub struct DataChannelArgs {
    /// Message envelope.
    #[arg(long, value_enum, value_name = "ENVELOPE", default_value_t = EnvelopeArg::ApiVersion)]
    pub envelope: EnvelopeArg,

    /// How long to wait for the session's data channel to open, e.g. 20s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub open_timeout: Duration,
}

/// `ptz`. Commands go to live video only: the playback flags are hidden and refused.
#[derive(Debug, Args)]
#[command(
    mut_arg("from", |a| a.hide(true)),
    mut_arg("speed", |a| a.hide(true)),
    mut_arg("skip_gaps", |a| a.hide(true))
)]
pub struct PtzArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub stream: StreamArgs,

    /// Direction of the step.
    #[arg(
        long = "move",
        value_enum,
        value_name = "DIRECTION",
        conflicts_with = "from",
        help_heading = "COMMANDS"
    )]
    pub direction: PtzDirectionArg,

    /// Send the step this many times, back to back (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "COMMANDS")]
    pub repeat: u32,

    #[command(flatten)]
    pub channel: DataChannelArgs,
}

/// `aux`. Live only, as `ptz`.
#[derive(Debug, Args)]
#[command(
    mut_arg("from", |a| a.hide(true)),
    mut_arg("speed", |a| a.hide(true)),
    mut_arg("skip_gaps", |a| a.hide(true))
)]
#[command(group(clap::ArgGroup::new("state").required(true).args(["on", "off"])))]
pub struct AuxArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub stream: StreamArgs,

    /// The aux output, 1 to 64 (Milestone's sample offers 1 to 4).
    #[arg(long, value_name = "N", conflicts_with = "from",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(xprotect_client::commands::MAX_AUX_NUMBER)),
        help_heading = "COMMANDS")]
    pub number: u32,

    /// Switch it on.
    #[arg(long, help_heading = "COMMANDS")]
    pub on: bool,

    /// Switch it off.
    #[arg(long, help_heading = "COMMANDS")]
    pub off: bool,

    #[command(flatten)]
    pub channel: DataChannelArgs,
}

/// `cameras`.
#[derive(Debug, Args)]
pub struct CamerasArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// One JSON object per camera and line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Print the access token too (it is a credential: keep it out of shell history and logs).
    #[arg(long)]
    pub show_token: bool,
}

/// `emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// TCP port for HTTP and WebSocket.
    #[arg(long, short = 'p', default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on. Anything but loopback exposes the emulator to the network.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub listen: std::net::IpAddr,

    /// UDP address for WebRTC media (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub media_bind: SocketAddr,

    /// A basic user as NAME:PASSWORD (repeatable). Default: admin:admin.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub users: Vec<(String, String)>,

    /// Lifetime of issued access tokens, e.g. 3600s or 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub token_lifetime: Duration,

    /// Do not answer CORS preflights (the gateway's default; the official page then needs a proxy).
    #[arg(long)]
    pub no_cors: bool,

    /// Append every protocol event as a JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Seed for session and token ids, so a run can be replayed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// The XProtect release to behave as: 2023R1, 2023R3, 2024R1, 2024R2, 2025R1 or 2025R2.
    /// Older gateways ignore newer fields (2023R1: live only, default stream), have no WebSocket
    /// before 2025R1, and read deviceId and give audio only from 2025R2.
    #[arg(long, value_name = "RELEASE", default_value = "2025R2")]
    pub release: xprotect_emulator::Release,

    /// A synthetic camera as [GUID=]NAME[@WIDTHxHEIGHT[@FPS]] (repeatable), e.g.
    /// "Lobby@1280x720" or "0f7e2a9c-3b1d-4c5e-8f6a-7b8c9d0e1f2a=Gate@640x360@15".
    /// Default: two 640x360 cameras at 25 fps. Without a GUID one is derived from the name.
    #[arg(long = "camera", value_name = "SPEC", value_parser = parse_camera)]
    pub cameras: Vec<CameraSpec>,

    /// Seconds a session streams on after its token expired without a REST token PATCH; then
    /// its media stops (ICE stays up). WebSocket sessions expire with their creation token.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, default_value = "10")]
    pub token_grace: Duration,

    /// Never stop a session's media because its token expired.
    #[arg(long, conflicts_with = "token_grace")]
    pub no_token_enforcement: bool,

    /// Fault: end every session SECS seconds after it connected (media stops, REST answers 404).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub drop_sessions_after: Option<Duration>,

    /// Fault: hold back the server's ICE candidates of every session by MS milliseconds (the
    /// offer carries none; REST polling and WebSocket trickles deliver them late).
    #[arg(long, value_name = "MS", value_parser = parse_millis)]
    pub delay_candidates: Option<Duration>,

    /// Fault: answer the first COUNT requests to the IDP and API with STATUS (400-599) and a
    /// JSON error body, e.g. 503:2.
    #[arg(long, value_name = "STATUS:COUNT")]
    pub fail_requests: Option<xprotect_emulator::faults::RequestFailures>,

    /// Serve the fault control endpoint POST/DELETE /api/emulator/faults (see above). Anyone
    /// who reaches the emulator can then break it; keep it on loopback.
    #[arg(long)]
    pub fault_control: bool,

    /// Offer only TURN relay candidates, allocated on the TURN server each session's
    /// `iceServers` names; sessions without one fail.
    #[arg(long)]
    pub relay_only: bool,
}

/// A camera given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSpec {
    /// Its GUID.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// Width and height.
    pub size: (u32, u32),
    /// Frames per second.
    pub fps: u32,
}

fn parse_camera(text: &str) -> Result<CameraSpec, String> {
    let (id, rest) = match text.split_once('=') {
        Some((guid, rest)) => (
            Some(
                guid.parse::<uuid::Uuid>()
                    .map_err(|_| format!("`{guid}` is not a GUID"))?,
            ),
            rest,
        ),
        None => (None, text),
    };
    let mut parts = rest.split('@');
    let name = parts.next().unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        return Err("the camera needs a name, e.g. Lobby@1280x720".into());
    }
    let size = match parts.next() {
        None => (640, 360),
        Some(size) => {
            let (w, h) = size
                .split_once('x')
                .ok_or_else(|| format!("`{size}` is not WIDTHxHEIGHT"))?;
            let parse = |v: &str| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("`{size}` is not WIDTHxHEIGHT"))
            };
            let (w, h) = (parse(w)?, parse(h)?);
            if !(16..=3840).contains(&w) || !(16..=2160).contains(&h) || w % 2 == 1 || h % 2 == 1 {
                return Err(format!(
                    "{w}x{h}: width and height must be even, 16..3840 by 16..2160"
                ));
            }
            (w, h)
        }
    };
    let fps = match parts.next() {
        None => 25,
        Some(fps) => match fps.trim().parse::<u32>() {
            Ok(fps) if (1..=60).contains(&fps) => fps,
            _ => return Err(format!("`{fps}` is not a frame rate from 1 to 60")),
        },
    };
    if parts.next().is_some() {
        return Err("expected [GUID=]NAME[@WIDTHxHEIGHT[@FPS]]".into());
    }
    let id = id.unwrap_or_else(|| guid_from_name(&name));
    Ok(CameraSpec {
        id,
        name,
        size,
        fps,
    })
}

/// A stable GUID for a name, so scripts can name cameras without inventing GUIDs.
fn guid_from_name(name: &str) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    for (round, chunk) in bytes.chunks_mut(8).enumerate() {
        // FNV-1a, seeded differently per half.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ round as u64;
        for byte in name.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&hash.to_be_bytes());
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How much video to record [default: 10s]. Given, the demo ends after recording (no viewer).
    #[arg(long, short = 'd', value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// End after recording instead of serving the viewer.
    #[arg(long)]
    pub no_view: bool,

    /// Where to serve the viewer after recording.
    #[arg(long, value_name = "ADDR", default_value_t = xprotect_viewer::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Where to write it.
    #[arg(long, short = 'o', value_name = "PATH", default_value = "demo.mp4")]
    pub output: PathBuf,

    /// Signaling transport.
    #[arg(long, value_enum, default_value_t = SignalingArg::Ws)]
    pub signaling: SignalingArg,
}

/// `view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The API Gateway URL, e.g. https://vms.example.com/api [env: XPROTECT_GATEWAY]
    #[arg(long, env = "XPROTECT_GATEWAY", value_name = "URL", hide_env = true)]
    pub gateway: Url,

    /// Where to serve the viewer. Anything but loopback lets others use this proxy to the
    /// gateway.
    #[arg(long, value_name = "ADDR", default_value_t = xprotect_viewer::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Also trust the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Do not verify the gateway's TLS certificate (self-signed servers). Prefer --ca-cert.
    #[arg(long)]
    pub insecure: bool,
}

/// `frames`.
#[derive(Debug, Args)]
pub struct FramesArgs {
    /// An MP4 written by `record` or `demo`.
    pub file: PathBuf,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Gateway to measure against; default: an emulator started in a child process.
    #[arg(long, value_name = "URL")]
    pub gateway: Option<Url>,

    /// User (with --gateway).
    #[arg(long, default_value = "admin")]
    pub user: String,

    /// Password (with --gateway; the emulator's is admin). Prefer XPROTECT_PASSWORD.
    #[arg(
        long,
        env = "XPROTECT_PASSWORD",
        hide_env_values = true,
        default_value = "admin",
        hide_default_value = true
    )]
    pub password: String,

    /// Camera GUID; default: the emulator's first camera.
    #[arg(long, value_name = "GUID")]
    pub camera: Option<String>,

    /// Time-to-first-frame runs per signaling transport and stack.
    #[arg(long, default_value_t = 20)]
    pub ttff_runs: usize,

    /// Concurrent session counts for the load figures, comma-separated (0: no load figures).
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    pub sessions: Vec<usize>,

    /// How long each load step measures, after every session has its first frame.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub duration: Duration,

    /// Signaling transport of the load steps.
    #[arg(long, value_enum, default_value_t = SignalingArg::Ws)]
    pub load_signaling: SignalingArg,

    /// The camera's frame rate, for the expected frame count of the load steps.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,

    /// Skip the playback time-to-first-frame figures.
    #[arg(long)]
    pub no_playback: bool,

    /// Where playback sessions of the time-to-first-frame runs start (each run a few seconds
    /// later, so that no run finds its first GOP cached); also the start of the export range.
    #[arg(long, value_name = "TIME", value_parser = parse_time, default_value = "2025-01-15T13:00:00Z")]
    pub playback_from: time::OffsetDateTime,

    /// Skip the export-speed figures.
    #[arg(long)]
    pub no_export: bool,

    /// How much recording the export-speed figures export, from --playback-from.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub export_length: Duration,

    /// Skip the lasting-session figures (fault → first frame, frames lost at token switches).
    /// They need the emulator, so they are skipped with --gateway too.
    #[arg(long)]
    pub no_faults: bool,

    /// Runs per fault and client of the fault → first frame figures (0: none).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub fault_runs: usize,

    /// A run whose stream has not continued this long after the fault counts as "> cap".
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    pub fault_cap: Duration,

    /// How long each client streams on 10 s tokens for the token-switch figures (0s: none).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "35s")]
    pub switch_duration: Duration,

    /// Write every raw number as JSON to FILE as well.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Which WebRTC stack a benchmark session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StackArg {
    /// Our client: `xprotect_client::session::Session` (webrtc-rs).
    Ours,
    /// The peer: the same signaling and depacketiser over str0m.
    Str0m,
}

/// `bench-worker`: N concurrent sessions of one stack; prints one JSON line on stdout.
#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    /// The gateway.
    #[arg(long, value_name = "URL")]
    pub gateway: Url,

    /// User.
    #[arg(long, default_value = "admin")]
    pub user: String,

    /// Password, from the environment so that it stays out of the process list.
    #[arg(
        long,
        env = "XPROTECT_PASSWORD",
        hide_env_values = true,
        default_value = "admin",
        hide_default_value = true
    )]
    pub password: String,

    /// Camera GUID.
    #[arg(long, value_name = "GUID")]
    pub camera: String,

    /// Concurrent sessions.
    #[arg(long)]
    pub sessions: usize,

    /// WebRTC stack.
    #[arg(long, value_enum)]
    pub stack: StackArg,

    /// Signaling transport.
    #[arg(long, value_enum, default_value_t = SignalingArg::Ws)]
    pub signaling: SignalingArg,

    /// How long to measure after every session has its first frame.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,

    /// Also sample this process's CPU time (the emulator child) over the same window.
    #[arg(long, value_name = "PID")]
    pub emulator_pid: Option<u32>,
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    match xprotect_proto::wire::session::parse_playback_time(Some(text), "time") {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err("an empty time means live: leave the flag out instead".to_owned()),
        Err(e) => Err(format!(
            "`{text}` is not an ISO 8601 time with an offset like 2025-01-15T12:04:54Z: {}",
            e.message
        )),
    }
}

fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    xprotect_proto::wire::session::validate_speed(Some(speed), "speed")
        .map_err(|_| format!("speed {text} is outside 0 < speed ≤ 32"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 10s, 5m or 1h30m: {e}"))
}

/// Seconds, whole or fractional (`10`, `2.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds, e.g. 10 or 2.5"))
}

/// Whole milliseconds (`1500`).
fn parse_millis(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{text}` is not a number of milliseconds, e.g. 1500"))
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, password)) if !name.is_empty() => Ok((name.to_owned(), password.to_owned())),
        _ => Err("expected NAME:PASSWORD, e.g. operator:secret".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn record_parses_the_documented_example() {
        let cli = Cli::try_parse_from([
            "xprotect-webrtc",
            "record",
            "--gateway",
            "http://127.0.0.1:8080/api",
            "--user",
            "u",
            "--password-stdin",
            "--camera",
            "6C2F3B1E-5A4D-4E8F-9B7A-1C2D3E4F5A6B",
            "--signaling",
            "ws",
            "--duration",
            "10s",
            "-o",
            "cam.mp4",
            "--frame-times",
            "frames.jsonl",
        ])
        .unwrap();
        let Command::Record(args) = cli.command else {
            panic!("not record")
        };
        assert_eq!(args.duration, Some(Duration::from_secs(10)));
        assert_eq!(args.stream.signaling, Some(SignalingArg::Ws));
        assert!(args.connection.password_stdin);
    }

    #[test]
    fn bad_values_are_explained() {
        let err =
            Cli::try_parse_from(["xprotect-webrtc", "emulator", "--user", "nocolon"]).unwrap_err();
        assert!(err.to_string().contains("NAME:PASSWORD"), "{err}");
        let err =
            Cli::try_parse_from(["xprotect-webrtc", "demo", "--duration", "soon"]).unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
    }

    #[test]
    fn camera_specs_parse_with_defaults() {
        let lobby = parse_camera("Lobby").unwrap();
        assert_eq!((lobby.size, lobby.fps), ((640, 360), 25));
        assert_eq!(
            lobby.id,
            parse_camera("Lobby@1280x720").unwrap().id,
            "the GUID follows the name"
        );
        let gate = parse_camera("0f7e2a9c-3b1d-4c5e-8f6a-7b8c9d0e1f2a=Gate@320x240@15").unwrap();
        assert_eq!(gate.id.to_string(), "0f7e2a9c-3b1d-4c5e-8f6a-7b8c9d0e1f2a");
        assert_eq!(
            (gate.name.as_str(), gate.size, gate.fps),
            ("Gate", (320, 240), 15)
        );
        for bad in [
            "",
            "@640x360",
            "X@641x360",
            "X@big",
            "X@640x360@0",
            "nope=X",
            "X@640x360@25@1",
        ] {
            assert!(parse_camera(bad).is_err(), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let connection = [
            "xprotect-webrtc",
            args[0],
            "--gateway",
            "http://127.0.0.1:8080/api",
            "--user",
            "u",
            "--camera",
            "Front Door",
        ];
        Cli::try_parse_from(connection.iter().chain(&args[1..]))
    }

    #[test]
    fn ptz_takes_protocol_and_kebab_directions_and_a_bounded_repeat() {
        let Command::Ptz(args) = parse(&["ptz", "--move", "upLeft", "--repeat", "3"])
            .unwrap()
            .command
        else {
            panic!("not ptz")
        };
        assert_eq!(
            (args.direction, args.repeat, args.channel.envelope),
            (PtzDirectionArg::UpLeft, 3, EnvelopeArg::ApiVersion)
        );
        let Command::Ptz(args) = parse(&["ptz", "--move", "down-right", "--envelope", "jsonrpc"])
            .unwrap()
            .command
        else {
            panic!("not ptz")
        };
        assert_eq!(args.direction, PtzDirectionArg::DownRight);
        assert_eq!(args.channel.envelope, EnvelopeArg::Jsonrpc);
        for bad in [
            &["ptz"][..],
            &["ptz", "--move", "sideways"],
            &["ptz", "--move", "left", "--repeat", "0"],
            &["ptz", "--move", "left", "--from", "2025-01-15T12:00:00Z"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn aux_needs_exactly_one_of_on_and_off() {
        let Command::Aux(args) = parse(&["aux", "--number", "2", "--on"]).unwrap().command else {
            panic!("not aux")
        };
        assert_eq!((args.number, args.on, args.off), (2, true, false));
        for bad in [
            &["aux", "--number", "2"][..],
            &["aux", "--number", "2", "--on", "--off"],
            &["aux", "--number", "0", "--on"],
            &["aux", "--on"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_takes_a_commands_source() {
        let Command::Record(args) = parse(&["record", "-o", "x.mp4", "--commands", "-"])
            .unwrap()
            .command
        else {
            panic!("not record")
        };
        assert_eq!(args.commands.as_deref(), Some("-"));
    }

    #[test]
    fn help_lists_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("EXIT CODES"));
    }
}
