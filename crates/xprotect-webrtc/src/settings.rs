//! The second stage of argument handling: environment, password sources and runtime objects.

use crate::cli::{ConnectionArgs, DtlsRoleArg, IceArgs, ReconnectArgs, SignalingArg, StreamArgs};
use anyhow::{Context, bail};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use xprotect_client::config_api::ConfigApi;
use xprotect_client::gateway::{Gateway, GatewayConfig, WsProbe};
use xprotect_client::lasting::LastingOptions;
use xprotect_client::login::TokenSource;
use xprotect_client::media::{DtlsRole, IceServerConfig, PeerConfig};
use xprotect_client::release::ClientRules;
use xprotect_client::session::{SessionOptions, SignalingKind};
use xprotect_client::tls::TlsOptions;
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{DeviceId, IceServer, Playback, Secret, SessionParams, StreamId};

/// The environment variable that may hold the password.
pub const PASSWORD_ENV: &str = "XPROTECT_PASSWORD";

/// Gateway and credentials from the connection flags.
pub fn connection(args: &ConnectionArgs) -> anyhow::Result<(Gateway, Credentials)> {
    let mut config = GatewayConfig::new(args.gateway.clone());
    config.tls = TlsOptions {
        ca_cert: args.ca_cert.clone(),
        danger_accept_invalid_certs: args.insecure,
    };
    let gateway = Gateway::new(&config)?;
    let password = password(args.password_stdin, &args.user)?;
    Ok((
        gateway,
        Credentials {
            username: args.user.clone(),
            password,
            client_id: args.client_id.clone(),
        },
    ))
}

/// `--password-stdin`, then `XPROTECT_PASSWORD`, then a prompt on the terminal.
fn password(from_stdin: bool, user: &str) -> anyhow::Result<Secret> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            bail!("--password-stdin: stdin had no password on its first line");
        }
        return Ok(Secret::new(password));
    }
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(Secret::new(password));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: use --password-stdin, set {PASSWORD_ENV}, or run in a terminal to be asked"
        );
    }
    let password = rpassword::prompt_password(format!("Password for {user}: "))
        .context("cannot read the password")?;
    Ok(Secret::new(password))
}

/// `--camera` as a device id: a GUID as is, a name through the Config API.
pub async fn resolve_camera(
    gateway: &Gateway,
    tokens: &TokenSource,
    camera: &str,
) -> anyhow::Result<DeviceId> {
    ConfigApi::new(gateway, tokens)
        .resolve_camera(camera)
        .await
        .context("--camera")
}

/// Whether `device` is a microphone (an audio-only session). A gateway without a `microphones`
/// collection, or one that cannot be asked, has none.
pub async fn is_microphone(gateway: &Gateway, tokens: &TokenSource, device: DeviceId) -> bool {
    match ConfigApi::new(gateway, tokens).microphones().await {
        Ok(microphones) => microphones.iter().any(|m| m.id == device),
        Err(error) => {
            tracing::debug!("cannot list microphones: {error}");
            false
        }
    }
}

/// Session options from the stream flags, for the resolved `device`.
pub fn session_options(args: &StreamArgs, device: DeviceId) -> anyhow::Result<SessionOptions> {
    let mut params = SessionParams::live(device);
    params.stream = match &args.stream {
        Some(text) => Some(
            text.parse::<StreamId>()
                .with_context(|| format!("--stream: `{text}` is not a stream GUID"))?,
        ),
        None => None,
    };
    params.playback = args.from.map(|start| Playback {
        start,
        skip_gaps: args.skip_gaps,
        speed: args.speed.unwrap_or(1.0),
    });
    params.include_audio = args.include_audio();
    let ice_servers = ice_servers(&args.ice);
    // The gateway gathers with them too (PROTOCOL.md §4.5); each transport encodes its dialect.
    params.ice_servers = ice_servers
        .iter()
        .map(|s| IceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let mut options = SessionOptions::new(params);
    options.signaling = signaling(args.signaling.unwrap_or_default());
    options.peer = PeerConfig {
        dtls_role: match args.dtls_role {
            DtlsRoleArg::Passive => DtlsRole::Passive,
            DtlsRoleArg::Active => DtlsRole::Active,
        },
        mdns: args.mdns,
        ice_servers,
        relay_only: args.ice.relay_only,
        ..PeerConfig::default()
    };
    if let Some(ip) = args.bind {
        options.peer.udp_bind_addrs = vec![SocketAddr::new(ip, 0)];
    }
    Ok(options)
}

/// Refuses, before logging in, what the `--gateway-release` would silently get wrong (2023R1
/// and --from: live video instead of the recording).
pub fn check_release(connection: &ConnectionArgs, stream: &StreamArgs) -> anyhow::Result<()> {
    let Some(release) = connection.gateway_release else {
        return Ok(());
    };
    // The device does not matter to the check; the camera is resolved after login.
    let params = session_options(stream, DeviceId::from(uuid::Uuid::nil()))?.params;
    release.check(&params, false).context("--gateway-release")?;
    Ok(())
}

/// Adapts `options` to the gateway's release: the one named by `--gateway-release` (refusing
/// what it would silently get wrong), or else, when `--signaling` was not given, what the
/// gateway's WebSocket endpoint says: a 404 means a release before 2025R1, so REST.
pub async fn adapt_to_gateway(
    gateway: &Gateway,
    connection: &ConnectionArgs,
    chosen_signaling: Option<SignalingArg>,
    microphone: bool,
    options: &mut SessionOptions,
) -> anyhow::Result<()> {
    if let Some(release) = connection.gateway_release {
        release
            .adapt(
                options,
                microphone,
                chosen_signaling == Some(SignalingArg::Ws),
            )
            .context("--gateway-release")?;
        return Ok(());
    }
    if chosen_signaling.is_some() || options.signaling != SignalingKind::WebSocket {
        return Ok(());
    }
    match gateway.probe_ws().await {
        WsProbe::Available => {}
        WsProbe::Refused { status: 404 } => {
            eprintln!(
                "xprotect-webrtc: the gateway has no WebSocket signaling (HTTP 404: XProtect \
                 before 2025R1); using REST"
            );
            options.signaling = SignalingKind::Rest;
            // Audio and microphones came with 2025R2, later still: ask for no audio track, and
            // refuse a microphone rather than record an empty file.
            if microphone {
                bail!(
                    "the device is a microphone, and a gateway without WebSocket signaling \
                     (before 2025R1) cannot stream microphones (2025R2 and later)"
                );
            }
            options.params.include_audio = false;
        }
        // Anything else is not about the release; the session reports it in context.
        WsProbe::Refused { status } => {
            tracing::debug!(status, "the WebSocket probe was refused; keeping WebSocket");
        }
        WsProbe::Failed(error) => {
            tracing::debug!(%error, "the WebSocket probe failed; keeping WebSocket");
        }
    }
    Ok(())
}

/// `--stun` and `--turn` as RTCIceServer entries: one for all STUN URLs, one for all TURN URLs
/// with the TURN credentials.
pub fn ice_servers(args: &IceArgs) -> Vec<IceServerConfig> {
    let mut servers = Vec::new();
    if !args.stun.is_empty() {
        servers.push(IceServerConfig {
            urls: args.stun.clone(),
            username: None,
            credential: None,
        });
    }
    if !args.turn.is_empty() {
        servers.push(IceServerConfig {
            urls: args.turn.clone(),
            username: args.turn_user.clone(),
            credential: args.turn_credential.clone(),
        });
    }
    servers
}

/// The lasting-session options for `options` from the reconnect flags.
pub fn lasting_options(args: &ReconnectArgs, options: SessionOptions) -> LastingOptions {
    let mut lasting = LastingOptions::new(options);
    lasting.reconnect = !args.no_reconnect;
    lasting.backoff.max = args.reconnect_max_delay;
    lasting.backoff.max_attempts = args.reconnect_attempts;
    if let Some(timeout) = args.media_timeout {
        lasting.session.media_timeout = timeout;
    }
    lasting.playback_lead = args.handover_lead;
    lasting
}

/// The library's transport for the flag value.
pub fn signaling(arg: SignalingArg) -> SignalingKind {
    match arg {
        SignalingArg::Rest => SignalingKind::Rest,
        SignalingArg::Ws => SignalingKind::WebSocket,
    }
}
