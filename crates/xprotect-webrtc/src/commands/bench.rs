//! `bench`: time to first frame and load figures of our client, side by side with a str0m peer
//! that shares everything but the WebRTC stack. Tables on stdout, progress on stderr.

use crate::bench::emulator_child::EmulatorChild;
use crate::bench::export;
use crate::bench::faults::{self, FaultBench, FaultPlan, SwitchPlan};
use crate::bench::report::{BenchReport, ExportBench, LoadStep, Machine, TtffFigure};
use crate::bench::session::{bench_options, credentials, local_ip_towards};
use crate::bench::ttff;
use crate::bench::worker::LoadResult;
use crate::cli::{BenchArgs, SignalingArg, StackArg};
use crate::settings;
use anyhow::{Context, bail};
use clap::ValueEnum;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;
use xprotect_client::export::{DEFAULT_PARALLEL, MAX_SPEED};
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_client::session::SessionOptions;
use xprotect_proto::clock::format_rfc3339_millis;
use xprotect_proto::signal::Credentials;
use xprotect_proto::wire::{DeviceId, Playback};

const STACKS: [StackArg; 2] = [StackArg::Ours, StackArg::Str0m];
/// The slowed-down session setup of the second token-switch run (candidates held back this long).
const SWITCH_SLOW_SETUP: Duration = Duration::from_millis(300);
/// Playback time-to-first-frame run n starts at `--playback-from` + n × this.
const PLAYBACK_RUN_SPACING: Duration = Duration::from_secs(7);

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // `--sessions 0` alone turns the load figures off; a 0 among other counts is a typo.
    let load_steps: &[usize] = match args.sessions.as_slice() {
        [0] => &[],
        counts if counts.contains(&0) => {
            bail!(
                "--sessions: 0 alone turns the load figures off; otherwise every count must be at least 1 (e.g. 1,10,50)"
            )
        }
        counts => counts,
    };
    // Kept alive until the end; its Drop kills the child on every exit path.
    let emulator = match &args.gateway {
        Some(_) => None,
        None => {
            eprintln!("bench: starting the gateway emulator in a child process…");
            Some(EmulatorChild::start().await?)
        }
    };
    let url: Url = match (&args.gateway, &emulator) {
        (Some(url), _) => url.clone(),
        (None, Some(child)) => child.url().clone(),
        (None, None) => unreachable!("an emulator is started whenever --gateway is absent"),
    };
    let camera = match &args.camera {
        Some(camera) => camera.clone(),
        None if emulator.is_some() => xprotect_emulator::camera::default_cameras()
            .first()
            .map(|c| c.id.to_string())
            .context("the emulator has no camera")?,
        None => bail!("--camera is needed with --gateway"),
    };
    let device: DeviceId = camera
        .parse()
        .with_context(|| format!("--camera: `{camera}` is not a GUID"))?;
    let gateway = Gateway::new(&GatewayConfig::new(url.clone()))?;
    let bind_ip = local_ip_towards(&url)?;
    let login = credentials(&args.user, &args.password);
    eprintln!("bench: gateway {url}, camera {camera}, local address {bind_ip}");

    let mut report = BenchReport {
        command: command_line(),
        machine: Machine::current(),
        gateway: match &emulator {
            Some(child) => format!("emulator child process (pid {}) on loopback", child.pid()),
            None => url.to_string(),
        },
        ttff: Vec::new(),
        playback_ttff: Vec::new(),
        export: None,
        load_signaling: signaling_name(args.load_signaling).to_owned(),
        fps: args.fps,
        load: Vec::new(),
        faults: None,
    };

    if args.ttff_runs > 0 {
        let ttff = TtffPlan {
            args: &args,
            gateway: &gateway,
            login: &login,
            device,
            bind_ip,
        };
        report.ttff = ttff.figures(None).await;
        if !args.no_playback {
            report.playback_ttff = ttff.figures(Some(args.playback_from)).await;
        }
    }

    if !args.no_export {
        let options = bench_options(device, settings::signaling(SignalingArg::Ws), bind_ip);
        let emulator_pid = emulator.as_ref().map(EmulatorChild::pid);
        report.export = Some(export_figures(&args, &gateway, &login, &options, emulator_pid).await);
    }

    let mut singles: [Option<LoadResult>; 2] = [None, None];
    for &sessions in load_steps {
        for (index, stack) in STACKS.into_iter().enumerate() {
            eprintln!("bench: load step: {sessions} {stack:?} session(s)…");
            let worker = WorkerPlan {
                url: &url,
                camera: &camera,
                args: &args,
                sessions,
                stack,
                emulator_pid: emulator.as_ref().map(EmulatorChild::pid),
            };
            let step = match worker.run().await {
                Ok(result) => {
                    if sessions == 1 {
                        singles[index] = Some(result.clone());
                    }
                    LoadStep::measured(result, singles[index].as_ref(), args.fps)
                }
                Err(error) => {
                    eprintln!("bench: load step {sessions} {stack:?} failed: {error:#}");
                    LoadStep::failed(stack, sessions, format!("{error:#}"))
                }
            };
            report.load.push(step);
        }
    }
    drop(emulator);

    if !args.no_faults && (args.fault_runs > 0 || !args.switch_duration.is_zero()) {
        if args.gateway.is_some() {
            eprintln!(
                "bench: the lasting-session figures need the emulator's fault control; skipped with --gateway"
            );
        } else {
            report.faults = Some(fault_figures(&args, device, bind_ip, &login).await?);
        }
    }

    println!("{}", report.to_markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench: raw numbers written to {}", path.display());
    }
    let failed_steps = report.load.iter().filter(|s| s.error.is_some()).count();
    let empty_ttff = report
        .ttff
        .iter()
        .chain(&report.playback_ttff)
        .filter(|f| f.runs.is_empty())
        .count();
    let failed_exports = report.export.as_ref().map_or(0, |e| e.failures.len());
    let failed_faults = report.faults.as_ref().map_or(0, FaultBench::failure_count);
    if failed_steps > 0 || empty_ttff > 0 || failed_exports > 0 || failed_faults > 0 {
        bail!(
            "{failed_steps} load step(s), {empty_ttff} time-to-first-frame figure(s), {failed_exports} export run(s) and {failed_faults} lasting-session run(s) failed (see above)"
        );
    }
    Ok(())
}

/// Time-to-first-frame runs, both transports and both stacks.
struct TtffPlan<'a> {
    args: &'a BenchArgs,
    gateway: &'a Gateway,
    login: &'a Credentials,
    device: DeviceId,
    bind_ip: IpAddr,
}

impl TtffPlan<'_> {
    /// Live figures, or playback figures when `playback_from` is set.
    async fn figures(&self, playback_from: Option<OffsetDateTime>) -> Vec<TtffFigure> {
        let args = self.args;
        let mode = if playback_from.is_some() {
            "playback"
        } else {
            "live"
        };
        let mut figures = Vec::new();
        for signaling in [SignalingArg::Rest, SignalingArg::Ws] {
            let base = bench_options(self.device, settings::signaling(signaling), self.bind_ip);
            // Each playback run starts somewhere new, as a viewer seeking would: the emulator
            // then encodes the first GOP for each run, as a gateway reads it from disk.
            let options_for = |run: usize| {
                let mut options = base.clone();
                options.params.playback = playback_from.map(|from| Playback {
                    start: from + PLAYBACK_RUN_SPACING * run as u32,
                    skip_gaps: true,
                    speed: 1.0,
                });
                options
            };
            // One unrecorded run per stack first: the first session of a process pays for lazy
            // set-up (TLS roots, crypto provider, the emulator's encoder start) once.
            for (index, stack) in STACKS.into_iter().enumerate() {
                if let Err(error) =
                    ttff::run_once(stack, self.gateway, self.login, &options_for(index)).await
                {
                    eprintln!(
                        "bench: {mode} warm-up run {stack:?} over {signaling:?} failed: {error:#}"
                    );
                }
            }
            let mut runs = [Vec::new(), Vec::new()];
            let mut failures = [Vec::new(), Vec::new()];
            // Interleaved, so that drift on the machine affects both stacks alike.
            for run in 1..=args.ttff_runs {
                for (index, stack) in STACKS.into_iter().enumerate() {
                    let n = run * STACKS.len() + index;
                    // Back-to-back runs would all join the running camera at the same phase of
                    // its frame grid (the worst case: just after a picture). A viewer joins at a
                    // random moment, so each run starts at its own phase of the frame interval.
                    tokio::time::sleep(join_phase(n, args.fps)).await;
                    match ttff::run_once(stack, self.gateway, self.login, &options_for(n)).await {
                        Ok(result) => runs[index].push(result),
                        Err(error) => {
                            eprintln!(
                                "bench: {mode} TTFF run {run} {stack:?} over {signaling:?} failed: {error:#}"
                            );
                            failures[index].push(format!("{error:#}"));
                        }
                    }
                }
                eprint!(
                    "\rbench: time to first frame ({mode}) over {}: {run}/{} runs",
                    signaling_name(signaling),
                    args.ttff_runs
                );
            }
            eprintln!();
            for (index, stack) in STACKS.into_iter().enumerate() {
                figures.push(TtffFigure::new(
                    stack,
                    signaling_name(signaling),
                    std::mem::take(&mut runs[index]),
                    std::mem::take(&mut failures[index]),
                ));
            }
        }
        figures
    }
}

/// Our export of the range in one session and in the default number of parallel sessions, then
/// the str0m peer playing it at the speed ours settled on and at speed 32, one after the other.
async fn export_figures(
    args: &BenchArgs,
    gateway: &Gateway,
    login: &Credentials,
    options: &SessionOptions,
    emulator_pid: Option<u32>,
) -> ExportBench {
    let from = args.playback_from;
    let length = args.export_length;
    let mut bench = ExportBench {
        from: format_rfc3339_millis(from),
        to: format_rfc3339_millis(from + length),
        figures: Vec::new(),
        failures: Vec::new(),
    };
    let mut speed = MAX_SPEED;
    for parallel in [1, DEFAULT_PARALLEL] {
        eprintln!(
            "bench: export of {} to {} with ours, --parallel {parallel}…",
            bench.from, bench.to
        );
        let run = export::ours(
            gateway,
            login,
            options,
            from,
            length,
            args.fps,
            parallel,
            emulator_pid,
        );
        match run.await {
            Ok(figure) => {
                speed = figure.speed;
                bench.figures.push(figure);
            }
            Err(error) => {
                eprintln!("bench: our export (--parallel {parallel}) failed: {error:#}");
                bench
                    .failures
                    .push(format!("ours --parallel {parallel}: {error:#}"));
            }
        }
    }
    let mut speeds = vec![speed];
    if speed < MAX_SPEED {
        speeds.push(MAX_SPEED);
    }
    for speed in speeds {
        eprintln!("bench: the same range with the str0m peer at speed {speed}…");
        match export::peer(gateway, login, options, from, length, speed, args.fps).await {
            Ok(figure) => bench.figures.push(figure),
            Err(error) => {
                eprintln!("bench: the peer at speed {speed} failed: {error:#}");
                bench
                    .failures
                    .push(format!("peer at speed {speed}: {error:#}"));
            }
        }
    }
    bench
}

/// The lasting-session figures, each part against an emulator child of its own: fault → first
/// frame against one with fault control, token switches against one with short tokens.
async fn fault_figures(
    args: &BenchArgs,
    device: DeviceId,
    bind_ip: IpAddr,
    login: &Credentials,
) -> anyhow::Result<FaultBench> {
    let mut bench = FaultBench {
        runs: args.fault_runs,
        cap_ms: args.fault_cap.as_secs_f64() * 1000.0,
        cases: Vec::new(),
        token_lifetime_s: faults::SWITCH_TOKEN_LIFETIME_S,
        switches: Vec::new(),
    };
    if args.fault_runs > 0 {
        eprintln!("bench: starting an emulator child with --fault-control…");
        let emulator = EmulatorChild::start_with(&["--fault-control"]).await?;
        let gateway = Gateway::new(&GatewayConfig::new(emulator.url().clone()))?;
        let plan = FaultPlan {
            gateway: &gateway,
            login,
            device,
            bind_ip,
            runs: args.fault_runs,
            cap: args.fault_cap,
        };
        bench.cases = plan.figures().await;
    }
    if !args.switch_duration.is_zero() {
        let lifetime = format!("{}s", faults::SWITCH_TOKEN_LIFETIME_S);
        // Once at loopback speed, once with each new session's setup slowed down as across a
        // WAN: break-before-make loses the setup time, make-before-break should not.
        for setup_delay in [Duration::ZERO, SWITCH_SLOW_SETUP] {
            let delay = setup_delay.as_millis().to_string();
            eprintln!(
                "bench: starting an emulator child with --token-lifetime {lifetime} --delay-candidates {delay}…"
            );
            let mut emulator_args = vec!["--token-lifetime", &lifetime];
            if !setup_delay.is_zero() {
                emulator_args.extend(["--delay-candidates", &delay]);
            }
            let emulator = EmulatorChild::start_with(&emulator_args).await?;
            let gateway = Gateway::new(&GatewayConfig::new(emulator.url().clone()))?;
            let plan = SwitchPlan {
                gateway: &gateway,
                login,
                device,
                bind_ip,
                duration: args.switch_duration,
                setup_delay,
            };
            bench.switches.extend(plan.figures().await);
        }
    }
    Ok(bench)
}

/// One `bench-worker` child process.
struct WorkerPlan<'a> {
    url: &'a Url,
    camera: &'a str,
    args: &'a BenchArgs,
    sessions: usize,
    stack: StackArg,
    emulator_pid: Option<u32>,
}

impl WorkerPlan<'_> {
    async fn run(&self) -> anyhow::Result<LoadResult> {
        let exe =
            std::env::current_exe().context("cannot find this program's path to start a worker")?;
        let mut command = Command::new(exe);
        command
            .arg("bench-worker")
            .args([
                "--gateway",
                self.url.as_str(),
                "--user",
                &self.args.user,
                "--camera",
                self.camera,
            ])
            .args([
                "--sessions",
                &self.sessions.to_string(),
                "--stack",
                &value_name(self.stack),
            ])
            .args(["--signaling", &value_name(self.args.load_signaling)])
            .args([
                "--duration",
                &humantime::format_duration(self.args.duration).to_string(),
            ])
            // The password travels in the environment, not in the process list.
            .env("XPROTECT_PASSWORD", &self.args.password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(pid) = self.emulator_pid {
            command.args(["--emulator-pid", &pid.to_string()]);
        }
        // The worker bounds its own run time (start timeout + window + stop timeout).
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .context("the worker's waiting thread failed")?
            .context("cannot start the worker process")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("the worker exited with {}", output.status);
        }
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .context("the worker printed no result")?;
        serde_json::from_str(line)
            .with_context(|| format!("cannot read the worker's result: {line}"))
    }
}

/// The command-line spelling of a value (every value of these enums has one).
fn value_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

fn signaling_name(signaling: SignalingArg) -> &'static str {
    match signaling {
        SignalingArg::Rest => "rest",
        SignalingArg::Ws => "ws",
    }
}

/// This run's command line for the report header, with any password value redacted.
fn command_line() -> String {
    let mut words = vec!["xprotect-webrtc".to_owned()];
    let mut redact_next = false;
    for arg in std::env::args().skip(1) {
        if redact_next {
            words.push("***".into());
            redact_next = false;
        } else if arg == "--password" {
            redact_next = true;
            words.push(arg);
        } else if arg.starts_with("--password=") {
            words.push("--password=***".into());
        } else {
            words.push(arg);
        }
    }
    words.join(" ")
}

/// The `n`-th of a low-discrepancy sequence of offsets within one frame interval (golden-ratio
/// steps), so that runs sample every phase of the camera's frame grid evenly and repeatably.
fn join_phase(n: usize, fps: u32) -> Duration {
    const GOLDEN_FRACTION: f64 = 0.618_033_988_749_895;
    let fraction = (n as f64 * GOLDEN_FRACTION).fract();
    Duration::from_secs(1).mul_f64(fraction / f64::from(fps.max(1)))
}
