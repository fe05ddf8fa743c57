//! Shared test harness: the real emulator on loopback, a logged-in client, ffmpeg checks.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::login::TokenSource;
use xprotect_client::media::DtlsRole;
use xprotect_client::session::{SessionOptions, SignalingKind};
use xprotect_emulator::{
    DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig, RunningEmulator,
};
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{Secret, SessionParams};

/// The emulator's first default camera.
pub fn first_camera() -> uuid::Uuid {
    EmulatorConfig::ephemeral().cameras[0].id
}

pub async fn emulator() -> RunningEmulator {
    Emulator::start(EmulatorConfig::ephemeral())
        .await
        .expect("emulator starts on loopback")
}

pub async fn login(emulator: &RunningEmulator) -> (Gateway, TokenSource) {
    let gateway =
        Gateway::new(&GatewayConfig::new(emulator.gateway_url().parse().unwrap())).unwrap();
    let credentials = Credentials {
        username: DEFAULT_USER.into(),
        password: Secret::new(DEFAULT_PASSWORD),
        client_id: "VmsClient".into(),
    };
    let tokens = tokio::time::timeout(
        Duration::from_secs(10),
        TokenSource::login(gateway.clone(), credentials),
    )
    .await
    .expect("login within 10 s")
    .expect("login succeeds");
    (gateway, tokens)
}

pub fn live_options(signaling: SignalingKind, role: DtlsRole) -> SessionOptions {
    let mut params = SessionParams::live(first_camera().into());
    params.include_audio = false;
    let mut options = SessionOptions::new(params);
    options.signaling = signaling;
    options.peer.dtls_role = role;
    options.peer.udp_bind_addrs = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)];
    options
}

/// `ffprobe` of the first video stream: (codec, frames counted by decoding, duration seconds;
/// NaN where the container has none, as for raw H.264).
pub fn ffprobe(path: &Path) -> (String, u64, f64) {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
        ])
        .arg("stream=codec_name,nb_read_frames:format=duration")
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (apt-get install ffmpeg); .ci/run installs it");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("ffprobe printed no {name}: {text}"))
            .to_owned()
    };
    let duration = field("duration").parse().unwrap_or(f64::NAN);
    (
        field("codec_name"),
        field("nb_read_frames").parse().unwrap(),
        duration,
    )
}

/// Decode the whole file; returns ffmpeg's error output (empty means a clean decode).
pub fn ffmpeg_decode_errors(path: &Path) -> String {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed (apt-get install ffmpeg); .ci/run installs it");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
