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
/// Default time a session streams on after its token expired (PROTOCOL.md §10.7: the gateway
/// stops media "soon after expiry"; the official sample refreshes 60 s early, so a client that
/// refreshes at all never gets near it).
pub const DEFAULT_TOKEN_GRACE: Duration = Duration::from_secs(10);

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
    /// Token enforcement: a session whose token expired this long ago, and was not replaced,
    /// stops sending media (ICE stays up). REST sessions move their expiry with each token
    /// `PATCH`; WebSocket sessions cannot, so they expire with the token they were created with.
    /// `None` turns enforcement off. Default [`DEFAULT_TOKEN_GRACE`].
    pub token_grace: Option<Duration>,
    /// Fault injection: end every session this long after it connected, as a gateway that
    /// drops sessions does (`None`: never).
    pub drop_sessions_after: Option<Duration>,
    /// Fault injection: hold back the server's ICE candidates of every session this long.
    pub delay_candidates: Option<Duration>,
    /// Fault injection: answer the first requests to the IDP and API with an error status.
    pub fail_requests: Option<crate::faults::RequestFailures>,
    /// Serve the fault control endpoint `POST`/`DELETE /emulator/faults` (off by default: it
    /// lets anyone who reaches the emulator break it).
    pub fault_control: bool,
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
            token_grace: Some(DEFAULT_TOKEN_GRACE),
            drop_sessions_after: None,
            delay_candidates: None,
            fail_requests: None,
            fault_control: false,
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
