//! `emulator`: the gateway emulator as a standalone server.

use crate::cli::EmulatorArgs;
use anyhow::Context;
use std::net::SocketAddr;
use xprotect_emulator::camera::CameraConfig;
use xprotect_emulator::{DEFAULT_PASSWORD, DEFAULT_USER, Emulator, EmulatorConfig};
use xprotect_proto::wire::Secret;

pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    if !args.listen.is_loopback() {
        eprintln!(
            "warning: listening on {} exposes the emulator (and its demo users) to the network",
            args.listen
        );
    }
    let mut config = EmulatorConfig {
        listen: SocketAddr::new(args.listen, args.port),
        media_bind: args.media_bind,
        token_lifetime: args.token_lifetime,
        cors: !args.no_cors,
        journal: args.journal,
        rng_seed: args.seed,
        release: args.release,
        token_grace: (!args.no_token_enforcement).then_some(args.token_grace),
        drop_sessions_after: args.drop_sessions_after,
        delay_candidates: args.delay_candidates,
        fail_requests: args.fail_requests,
        fault_control: args.fault_control,
        relay_only: args.relay_only,
        ..EmulatorConfig::default()
    };
    if !args.users.is_empty() {
        config.users = args
            .users
            .into_iter()
            .map(|(name, password)| (name, Secret::new(password)))
            .collect();
    }
    if !args.cameras.is_empty() {
        config.cameras = args
            .cameras
            .iter()
            .map(|spec| {
                let mut camera =
                    CameraConfig::new(spec.id, spec.name.clone(), spec.size.0, spec.size.1);
                camera.fps = spec.fps;
                camera.keyframe_interval_frames = spec.fps; // one keyframe a second
                camera
            })
            .collect();
    }
    let users: Vec<String> = config.users.iter().map(|(name, _)| name.clone()).collect();
    let cameras = config.cameras.clone();
    let emulator = Emulator::start(config)
        .await
        .context("cannot start the emulator")?;
    println!(
        "gateway emulator running at {} (XProtect {})",
        emulator.gateway_url(),
        args.release
    );
    println!("  users: {}", users.join(", "));
    if users.iter().any(|u| u == DEFAULT_USER) {
        println!("  (demo credentials: {DEFAULT_USER} / {DEFAULT_PASSWORD})");
    }
    for camera in &cameras {
        println!(
            "  camera {} {:?} {}x{} @ {} fps",
            camera.id, camera.name, camera.width, camera.height, camera.fps
        );
        println!("    recordings (for playback): {}", camera.recordings);
    }
    if args.fault_control {
        println!(
            "  fault control: POST/DELETE {}/emulator/faults",
            emulator.gateway_url()
        );
    }
    println!("press Ctrl-C to stop");
    super::interrupted().await;
    emulator.shutdown().await;
    Ok(())
}
