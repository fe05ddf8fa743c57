//! What an emulator serves and how: listen address, users, token lifetime, CORS, cameras, journal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use xprotect_proto::wire::Secret;

use std::collections::HashMap;

use uuid::Uuid;

use crate::camera::{CameraConfig, default_cameras};
use crate::devices::{CameraDetails, default_camera_details};
use crate::release::Release;

/// The default basic user's name (documented demo credentials, `admin` / `admin`).
pub const DEFAULT_USER: &str = "admin";
/// The default basic user's password.
pub const DEFAULT_PASSWORD: &str = "admin";
/// Default access-token lifetime, as on a real gateway (PROTOCOL.md §1.2).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Default refresh-token lifetime (IdentityServer's sliding default is far longer; a day is plenty
/// for an emulator and keeps the store small).
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Configuration of an [`Emulator`](crate::Emulator).
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// HTTP/WebSocket listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The media engine's UDP bind address; its IP is the host candidate, so use a concrete one.
    pub media_bind: SocketAddr,
    /// Basic users and their passwords. User names match case-insensitively, as on Windows.
    pub users: Vec<(String, Secret)>,
    /// Lifetime of access tokens (`expires_in`).
    pub token_lifetime: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_lifetime: Duration,
    /// Answer CORS preflights and stamp `Access-Control-Allow-Origin: *` (on by default).
    pub cors: bool,
    /// The cameras.
    pub cameras: Vec<CameraConfig>,
    /// What the Config API says about each camera (streams, PTZ, microphone); cameras not in
    /// the map get [`CameraDetails::default`]. Defaults to
    /// [`default_camera_details`](crate::devices::default_camera_details): Front Door has a
    /// microphone.
    pub camera_details: HashMap<Uuid, CameraDetails>,
    /// Append the protocol journal (JSON Lines) to this file.
    pub journal: Option<PathBuf>,
    /// Seed for session ids, invite ids and tokens, so a failing run can be replayed. `None` seeds
    /// from the operating system.
    pub rng_seed: Option<u64>,
    /// The XProtect release whose gateway is reproduced: what it reads and serves (WebSocket,
    /// playback, `deviceId`, audio). Defaults to the newest.
    pub release: Release,
    /// How long [`RunningEmulator::shutdown`](crate::RunningEmulator::shutdown) waits for open
    /// connections before dropping them.
    pub shutdown_timeout: Duration,
    /// Offer only TURN relay candidates, from the session's `iceServers`; a session that names
    /// no usable TURN server fails (`--relay-only`).
    pub relay_only: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            media_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            users: vec![(DEFAULT_USER.to_owned(), Secret::new(DEFAULT_PASSWORD))],
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            refresh_token_lifetime: DEFAULT_REFRESH_TOKEN_LIFETIME,
            cors: true,
            cameras: default_cameras(),
            camera_details: default_camera_details(),
            journal: None,
            rng_seed: None,
            release: Release::default(),
            shutdown_timeout: Duration::from_secs(5),
            relay_only: false,
        }
    }
}

impl EmulatorConfig {
    /// The default configuration on a free loopback port (for tests and embedding).
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..Self::default()
        }
    }
}
