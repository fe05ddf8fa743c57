//! `bench`: time to first frame and load figures of our client, side by side with a str0m peer
//! that shares everything but the WebRTC stack. Tables on stdout, progress on stderr.

use crate::bench::emulator_child::EmulatorChild;
use crate::bench::report::{BenchReport, LoadStep, Machine, TtffFigure};
use crate::bench::session::{bench_options, credentials, local_ip_towards};
use crate::bench::ttff;
use crate::bench::worker::LoadResult;
use crate::cli::{BenchArgs, SignalingArg, StackArg};
use crate::settings;
use anyhow::{Context, bail};
use clap::ValueEnum;
use std::process::{Command, Stdio};
use std::time::Duration;
use url::Url;
use xprotect_client::gateway::{Gateway, GatewayConfig};
use xprotect_proto::wire::DeviceId;

const STACKS: [StackArg; 2] = [StackArg::Ours, StackArg::Str0m];

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.sessions.contains(&0) {
        bail!("--sessions: every count must be at least 1 (e.g. 1,10,50)");
    }
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
        load_signaling: signaling_name(args.load_signaling).to_owned(),
        fps: args.fps,
        load: Vec::new(),
    };

    if args.ttff_runs > 0 {
        for signaling in [SignalingArg::Rest, SignalingArg::Ws] {
            let options = bench_options(device, settings::signaling(signaling), bind_ip);
            // One unrecorded run per stack first: the first session of a process pays for lazy
            // set-up (TLS roots, crypto provider, the emulator's encoder start) once.
            for stack in STACKS {
                if let Err(error) = ttff::run_once(stack, &gateway, &login, &options).await {
                    eprintln!("bench: warm-up run {stack:?} over {signaling:?} failed: {error:#}");
                }
            }
            let mut runs = [Vec::new(), Vec::new()];
            let mut failures = [Vec::new(), Vec::new()];
            // Interleaved, so that drift on the machine affects both stacks alike.
            for run in 1..=args.ttff_runs {
                for (index, stack) in STACKS.into_iter().enumerate() {
                    // Back-to-back runs would all join the running camera at the same phase of
                    // its frame grid (the worst case: just after a picture). A viewer joins at a
                    // random moment, so each run starts at its own phase of the frame interval.
                    tokio::time::sleep(join_phase(run * STACKS.len() + index, args.fps)).await;
                    match ttff::run_once(stack, &gateway, &login, &options).await {
                        Ok(result) => runs[index].push(result),
                        Err(error) => {
                            eprintln!(
                                "bench: TTFF run {run} {stack:?} over {signaling:?} failed: {error:#}"
                            );
                            failures[index].push(format!("{error:#}"));
                        }
                    }
                }
                eprint!(
                    "\rbench: time to first frame over {}: {run}/{} runs",
                    signaling_name(signaling),
                    args.ttff_runs
                );
            }
            eprintln!();
            for (index, stack) in STACKS.into_iter().enumerate() {
                let figure = TtffFigure::new(
                    stack,
                    signaling_name(signaling),
                    std::mem::take(&mut runs[index]),
                    std::mem::take(&mut failures[index]),
                );
                report.ttff.push(figure);
            }
        }
    }

    let mut singles: [Option<LoadResult>; 2] = [None, None];
    for &sessions in &args.sessions {
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

    println!("{}", report.to_markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench: raw numbers written to {}", path.display());
    }
    let failed_steps = report.load.iter().filter(|s| s.error.is_some()).count();
    let empty_ttff = report.ttff.iter().filter(|f| f.runs.is_empty()).count();
    if failed_steps > 0 || empty_ttff > 0 {
        bail!(
            "{failed_steps} load step(s) and {empty_ttff} time-to-first-frame figure(s) failed (see above)"
        );
    }
    Ok(())
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
