//! STUN/TURN end to end through a real coturn on loopback: the emulator offers relay candidates
//! only (its own TURN allocation from the session's `iceServers`), the CLI's peer connection is
//! relay-only too, and video and the data channel still arrive. Both signaling dialects carry
//! the servers (REST `url`, WebSocket `urls`).
//!
//! Needs coturn's `turnserver` (Debian package `coturn`; CI installs it).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::JournalWatch;
use xprotect_emulator::{EmulatorConfig, JournalEvent};

/// Bound on coturn listening after it starts.
const TURN_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one CLI run: login, gathering on both sides, 3 s of recording, close.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// TURN user of the test server.
const TURN_USER: &str = "emu-test";
/// Its password: distinctive, so a leak into logs or the journal would be found.
const TURN_PASSWORD: &str = "turn-pw-7f3c1a";

/// A coturn `turnserver` on 127.0.0.1 with long-term credentials, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    /// Its log lines (stdout), read on a thread.
    log: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Coturn {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // A free UDP port: bound and released just before coturn takes it.
        let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|s| s.local_addr())
            .expect("a free loopback port")
            .port();
        let spawned = Command::new("turnserver")
            .args([
                "-n", // no configuration file
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--realm=test",
                &format!("--user={TURN_USER}:{TURN_PASSWORD}"),
                "--lt-cred-mech",
                "--fingerprint",
                // Both peers are on loopback; coturn refuses loopback peers unless told.
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--no-rfc5780",
                "--log-file=stdout",
                "--simple-log",
                "--verbose",
            ])
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turnserver.pid").display()
            ))
            .arg(format!("--userdb={}", dir.path().join("turndb").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot start coturn's `turnserver` ({e}): install coturn (Debian/Ubuntu: \
                 `apt-get install coturn`; do not enable its service) — CI installs it"
            ),
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut turn = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let listening = format!("UDP listener opened on: 127.0.0.1:{port}");
        turn.wait_for_log(&listening, TURN_START_TIMEOUT);
        turn
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}", self.port)
    }

    /// Waits for a log line containing `needle`; returns every line read up to it.
    fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "coturn logged no {needle:?} within {limit:?}; its log:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The log lines read so far without waiting.
    fn drain_log(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `record` through TURN: relay-only on both sides, a PTZ command on stdin.
async fn record_through_turn(gateway: &str, turn: &Coturn, signaling: &str, mp4: &Path) -> String {
    let mut command = common::cli("record", gateway);
    command
        .args([
            "--bind",
            "127.0.0.1",
            "--camera",
            &common::first_camera().to_string(),
            "--signaling",
            signaling,
            "--turn",
            &turn.url(),
            "--turn-user",
            TURN_USER,
            "--turn-credential",
            TURN_PASSWORD,
            "--relay-only",
            "--no-audio",
            "--duration",
            "3s",
            "--commands",
            "-",
            "-o",
        ])
        .arg(mp4)
        .env("RUST_LOG", "debug");
    let input = "admin\n{\"ptz\":\"left\"}\n";
    let started = Instant::now();
    let output = common::run_with_stdin(command, input, RUN_TIMEOUT).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{signaling}: exit {:?}\n{stderr}",
        output.status
    );
    eprintln!(
        "{signaling}: record through TURN took {:?}",
        started.elapsed()
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_on_both_sides_carries_video_and_the_data_channel_over_rest_and_ws() {
    let mut turn = Coturn::start();
    let emulator = common::start_emulator(EmulatorConfig {
        relay_only: true,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    for signaling in ["rest", "ws"] {
        let mut journal = JournalWatch::new(&emulator);
        let mp4 = dir.path().join(format!("{signaling}.mp4"));
        let stderr = record_through_turn(&emulator.gateway_url(), &turn, signaling, &mp4).await;
        assert!(
            !stderr.contains(TURN_PASSWORD),
            "{signaling}: the TURN credential reached the log"
        );

        // The gateway got the server in its dialect and gathered a relay candidate only.
        let (ice_servers, candidates) = journal
            .wait_for_map("ice_gathered", |e| match e {
                JournalEvent::IceGathered {
                    ice_servers,
                    candidates,
                    ..
                } => Some((ice_servers.clone(), candidates.clone())),
                _ => None,
            })
            .await;
        assert_eq!(ice_servers, vec![turn.url()], "{signaling}");
        assert_eq!(candidates.len(), 1, "{signaling}: {candidates:?}");
        assert!(
            candidates[0].starts_with("relay 127.0.0.1:"),
            "{candidates:?}"
        );

        // ICE chose relay on both sides.
        let (local, remote) = journal
            .wait_for_map("ice_selected", |e| match e {
                JournalEvent::IceSelected {
                    local_type,
                    remote_type,
                    ..
                } => Some((local_type.clone(), remote_type.clone())),
                _ => None,
            })
            .await;
        assert_eq!(
            (local.as_str(), remote.as_str()),
            ("relay", "relay"),
            "{signaling}"
        );

        // Video and the data channel made it through.
        journal
            .wait_for("first_frame_sent", |e| {
                matches!(e, JournalEvent::FirstFrameSent { .. })
            })
            .await;
        let direction = journal
            .wait_for_map("ptz_moved", |e| match e {
                JournalEvent::PtzMoved { direction, .. } => Some(direction.clone()),
                _ => None,
            })
            .await;
        assert_eq!(direction, "left");
        let (codec, frames, _) = common::ffprobe(&mp4);
        assert_eq!(codec, "h264");
        assert!(
            frames >= 25,
            "{signaling}: only {frames} frames in 3 s through TURN"
        );

        let entries = journal.drain();
        assert!(
            !format!("{entries:?}").contains(TURN_PASSWORD),
            "the TURN credential reached the journal"
        );
    }

    // coturn saw the allocations and the permissions between the two relays.
    let log = turn.drain_log().join("\n");
    assert!(log.contains("ALLOCATE"), "coturn log:\n{log}");
    assert!(
        log.contains("CREATE_PERMISSION") || log.contains("CHANNEL_BIND"),
        "coturn log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_emulator_refuses_a_session_without_a_turn_server() {
    let emulator = common::start_emulator(EmulatorConfig {
        relay_only: true,
        ..EmulatorConfig::ephemeral()
    })
    .await;
    let mut command = common::cli("record", &emulator.gateway_url());
    command.args([
        "--bind",
        "127.0.0.1",
        "--camera",
        &common::first_camera().to_string(),
        "--signaling",
        "rest",
        "--duration",
        "1s",
        "-o",
        "-",
    ]);
    let output = common::run_with_password(command, RUN_TIMEOUT).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("relay"), "{stderr}");
}
