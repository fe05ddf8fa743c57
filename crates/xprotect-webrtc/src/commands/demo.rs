//! `demo`: the embedded emulator plus a real recording against it.

use crate::cli::DemoArgs;
use crate::settings;
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::login::TokenSource;
use xprotect_client::record::{OutputFormat, OutputTarget, VideoWriter};
use xprotect_client::recorder::RecordPlan;
use xprotect_client::session::SessionOptions;
use xprotect_emulator::{DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig};
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{Secret, SessionParams};

/// How much video the demo records unless told.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let duration = args.duration.unwrap_or(DEFAULT_DURATION);
    // An explicit duration asks for a bounded run, as --no-view does.
    let serve_viewer = args.duration.is_none() && !args.no_view;
    let emulator = Emulator::start(EmulatorConfig::ephemeral())
        .await
        .context("cannot start the embedded emulator")?;
    let camera = EmulatorConfig::ephemeral()
        .cameras
        .first()
        .map(|c| (c.id, c.name.clone()))
        .context("the emulator has no camera")?;
    eprintln!(
        "emulator: {} (user {DEFAULT_USER}, password {DEFAULT_PASSWORD})",
        emulator.gateway_url()
    );
    eprintln!("camera:   {} ({})", camera.0, camera.1);

    let started = Instant::now();
    let gateway = Gateway::new(&GatewayConfig::new(emulator.gateway_url().parse()?))?;
    let credentials = Credentials {
        username: DEFAULT_USER.into(),
        password: Secret::new(DEFAULT_PASSWORD),
        client_id: xprotect_proto::wire::idp::VMS_CLIENT.into(),
    };
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .context("login failed")?;
    let mut params = SessionParams::live(camera.0.into());
    params.include_audio = false;
    let mut options = SessionOptions::new(params);
    options.signaling = settings::signaling(args.signaling);
    options.peer.udp_bind_addrs = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)];
    let target = OutputTarget::File(args.output.clone());
    let plan = RecordPlan {
        duration: Some(duration),
        until: None,
        video: Some(VideoWriter::create(&target, OutputFormat::Mp4)?),
        frame_log: None,
    };
    eprintln!(
        "recording {} of live video over {:?} signaling…",
        humantime::format_duration(duration),
        args.signaling
    );
    let stats = super::record::record_with(gateway, &tokens, options, plan, started).await?;
    super::record::print_summary(&stats, &args.output.display().to_string());
    eprintln!(
        "play it:  ffplay {0}   (or open it in VLC)",
        args.output.display()
    );
    eprintln!(
        "times:    xprotect-webrtc frames {0}",
        args.output.display()
    );
    if serve_viewer {
        serve_viewer_until_interrupted(&emulator.gateway_url(), args.listen).await?;
    }
    emulator.shutdown().await;
    Ok(())
}

/// The web viewer against the embedded emulator, until Ctrl-C.
async fn serve_viewer_until_interrupted(gateway: &str, listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {listen} lets anyone who reaches it use the demo's emulator"
        );
    }
    let mut config = xprotect_viewer::ViewerConfig::new(gateway.parse()?);
    config.listen = listen;
    let viewer = xprotect_viewer::start(config)
        .await
        .context("cannot start the viewer (choose another --listen address, or --no-view)")?;
    eprintln!(
        "viewer:   {} (log in as {DEFAULT_USER} / {DEFAULT_PASSWORD}; Ctrl-C to stop)",
        viewer.url()
    );
    super::interrupted().await;
    viewer.shutdown().await;
    Ok(())
}
