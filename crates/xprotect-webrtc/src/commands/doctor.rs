//! `doctor`: walks the way from here to video one step at a time and explains each failure in
//! plain words, with what to do about it (PROTOCOL.md §7 for the connectivity failure modes).
//!
//! Steps run in order; a step whose precondition failed is reported as skipped rather than
//! failing again for the same cause. The exit code is non-zero when any step failed.

use crate::cli::{DoctorArgs, SignalingArg};
use crate::settings;
use anyhow::bail;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use xprotect_client::config_api::ConfigApi;
use xprotect_client::diagnostics::{AddressScope, CandidateInfo, CandidateType, PeerStats};
use xprotect_client::gateway::{CorsAnswer, Gateway, WsProbe};
use xprotect_client::login::TokenSource;
use xprotect_client::release::ClientRules;
use xprotect_client::session::{Session, SessionEvent, SignalingKind};
use xprotect_proto::signal::{HttpBody, HttpMethod, HttpRequest};
use xprotect_proto::wire::idp::TOKEN_PATH;
use xprotect_proto::wire::{DeviceId, Secret};

/// How long name resolution and the TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The REST path a browser's first cross-origin request goes to.
const SESSION_PATH: &str = "REST/v1/WebRTC/Session";

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Works here, but something will break in another setting (browsers, other networks).
    Warn,
    Fail,
    /// Not run because an earlier step failed.
    Skipped,
    /// An explanation, not a check.
    Note,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "skip",
            Verdict::Note => "note",
        }
    }
}

/// The printed report; stdout, one step per paragraph.
#[derive(Default)]
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    /// Prints a step: its verdict, what was found, and what to do (indented, if anything).
    fn step(&mut self, verdict: Verdict, name: &str, found: &str, advice: &str) {
        match verdict {
            Verdict::Fail => self.failures += 1,
            Verdict::Warn => self.warnings += 1,
            _ => {}
        }
        let mut text = format!("{:<5} {name}: {found}\n", verdict.label());
        for line in advice.lines().filter(|line| !line.is_empty()) {
            let _ = writeln!(text, "      {line}");
        }
        print!("{text}");
    }

    fn skip(&mut self, name: &str, because: &str) {
        self.step(Verdict::Skipped, name, because, "");
    }
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let mut report = Report::default();
    println!("xprotect-webrtc doctor: {}", args.connection.gateway);
    let (gateway, credentials) = settings::connection(&args.connection)?;

    if !reachability(&mut report, &args).await {
        report.skip("TLS", "the gateway cannot be reached");
        report.skip("identity provider", "the gateway cannot be reached");
        return finish(&report);
    }
    if !tls_and_idp(&mut report, &gateway, &args).await {
        report.skip("login", "the identity provider is not usable");
        return finish(&report);
    }
    let tokens = match TokenSource::login(gateway.clone(), credentials).await {
        Ok(tokens) => {
            report.step(
                Verdict::Ok,
                "login",
                &format!(
                    "user `{}` got an access token (client id {})",
                    args.connection.user, args.connection.client_id
                ),
                "",
            );
            Some(tokens)
        }
        Err(error) => {
            report.step(
                Verdict::Fail,
                "login",
                &error.to_string(),
                "Check the user name and password. WebRTC needs an XProtect basic user (not a \
                 Windows user) with access to the cameras; Windows users cannot log in through \
                 the gateway's IDP.",
            );
            None
        }
    };
    let signaling = websocket(&mut report, &gateway, args.signaling).await;
    cors(&mut report, &gateway, &args.origin).await;
    let Some(tokens) = tokens else {
        report.skip("Config API cameras", "not logged in");
        report.skip("test session", "not logged in");
        return finish(&report);
    };
    let Some(camera) = cameras(&mut report, &gateway, &tokens, args.camera.as_deref()).await else {
        report.skip("test session", "no camera to test with");
        return finish(&report);
    };
    if let Some(peer) = test_session(&mut report, &gateway, &tokens, &args, camera, signaling).await
    {
        candidates(&mut report, &peer);
    }
    finish(&report)
}

fn finish(report: &Report) -> anyhow::Result<()> {
    println!();
    if report.failures > 0 {
        bail!(
            "{} check(s) failed, {} warning(s): see the FAIL lines above",
            report.failures,
            report.warnings
        );
    }
    if report.warnings > 0 {
        println!("all checks passed, with {} warning(s)", report.warnings);
    } else {
        println!("all checks passed");
    }
    Ok(())
}

/// DNS, then a TCP connect to the first address.
async fn reachability(report: &mut Report, args: &DoctorArgs) -> bool {
    let url = &args.connection.gateway;
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        report.step(
            Verdict::Fail,
            "DNS and TCP",
            &format!("`{url}` names no host"),
            "Give the gateway URL as https://<server>/api.",
        );
        return false;
    };
    let lookup = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)));
    let addresses: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(addresses)) => addresses.collect(),
        Ok(Err(error)) => {
            report.step(
                Verdict::Fail,
                "DNS and TCP",
                &format!("`{host}` does not resolve: {error}"),
                "Check the host name, or use the server's IP address.",
            );
            return false;
        }
        Err(_) => {
            report.step(
                Verdict::Fail,
                "DNS and TCP",
                &format!("resolving `{host}` took longer than {CONNECT_TIMEOUT:?}"),
                "Check this machine's DNS settings.",
            );
            return false;
        }
    };
    let Some(first) = addresses.first().copied() else {
        report.step(
            Verdict::Fail,
            "DNS and TCP",
            &format!("`{host}` resolves to no address"),
            "Check the DNS record of the host.",
        );
        return false;
    };
    let started = Instant::now();
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(first)).await {
        Ok(Ok(_)) => {
            report.step(
                Verdict::Ok,
                "DNS and TCP",
                &format!(
                    "{host} is {}; TCP connect to {first} in {} ms",
                    list_ips(&addresses),
                    started.elapsed().as_millis()
                ),
                "",
            );
            true
        }
        Ok(Err(error)) => {
            report.step(
                Verdict::Fail,
                "DNS and TCP",
                &format!("TCP connect to {first} failed: {error}"),
                "Is the gateway (IIS) running, and is the port right? A refused connection means \
                 nothing listens there; a firewall usually shows as a timeout instead.",
            );
            false
        }
        Err(_) => {
            report.step(
                Verdict::Fail,
                "DNS and TCP",
                &format!("no TCP answer from {first} within {CONNECT_TIMEOUT:?}"),
                "A firewall or a wrong address: check that this machine may reach the port.",
            );
            false
        }
    }
}

fn list_ips(addresses: &[SocketAddr]) -> String {
    let mut ips: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    ips.dedup();
    ips.join(", ")
}

/// The first HTTP(S) request: an empty form to the IDP's token endpoint, which names no user (so
/// it cannot count towards a lockout) and must be answered with an OAuth error in JSON.
async fn tls_and_idp(report: &mut Report, gateway: &Gateway, args: &DoctorArgs) -> bool {
    let https = args.connection.gateway.scheme() == "https";
    let request = HttpRequest {
        method: HttpMethod::Post,
        path: TOKEN_PATH.to_owned(),
        bearer: None,
        body: Some(HttpBody::Form(Secret::new(""))),
    };
    let response = match gateway.execute(&request).await {
        Ok(response) => response,
        Err(error) if https && is_certificate_error(&error) => {
            report.step(
                Verdict::Fail,
                "TLS",
                &error,
                "The gateway's certificate is not trusted here (self-signed or from a private \
                 CA). Trust it with --ca-cert FILE (the CA's PEM), or skip the check with \
                 --insecure (tests only). Browsers need the same trust, or they fail with what \
                 looks like a CORS error.",
            );
            return false;
        }
        Err(error) => {
            let step = if https { "TLS" } else { "HTTP" };
            report.step(
                Verdict::Fail,
                step,
                &error,
                "The gateway accepted TCP but no HTTP exchange completed: check the URL's \
                 scheme (http vs https) and port.",
            );
            return false;
        }
    };
    if https {
        let how = if args.connection.insecure {
            "handshake ok, certificate NOT verified (--insecure)"
        } else {
            "handshake ok, certificate trusted"
        };
        report.step(Verdict::Ok, "TLS", how, "");
    } else {
        report.step(
            Verdict::Warn,
            "TLS",
            "not used (http://)",
            "Passwords and tokens cross the network in clear text. Use https:// for anything \
             but a local test; browsers also need https for WebRTC on other hosts.",
        );
    }
    let is_oauth = serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .is_some_and(|body| body.get("error").is_some());
    if is_oauth {
        report.step(
            Verdict::Ok,
            "identity provider",
            &format!("{TOKEN_PATH} answers OAuth (HTTP {})", response.status),
            "",
        );
        true
    } else {
        report.step(
            Verdict::Fail,
            "identity provider",
            &format!(
                "{TOKEN_PATH} answered HTTP {} without an OAuth error body",
                response.status
            ),
            "This is not the API Gateway's IDP: check the gateway URL (it usually ends in /api, \
             e.g. https://vms.example.com/api).",
        );
        false
    }
}

fn is_certificate_error(error: &str) -> bool {
    let lower = error.to_ascii_lowercase();
    lower.contains("certificate") || lower.contains("unknownissuer")
}

/// Whether the gateway has WebSocket signaling; returns the transport the test session uses.
async fn websocket(
    report: &mut Report,
    gateway: &Gateway,
    chosen: Option<SignalingArg>,
) -> SignalingKind {
    let url = gateway.ws_url();
    let probe = gateway.probe_ws().await;
    let (verdict, found, advice, detected) = match &probe {
        WsProbe::Available => (
            Verdict::Ok,
            format!("{url} is present: XProtect 2025R1 or later; WebSocket signaling is used"),
            String::new(),
            SignalingKind::WebSocket,
        ),
        WsProbe::Refused { status: 404 } => (
            Verdict::Ok,
            format!("{url} is absent (HTTP 404): a release before 2025R1; REST signaling is used"),
            "Older releases have no PTZ/aux (data channel) and no audio; 2023R1 has no \
             playback: name the release with --gateway-release to have such requests refused \
             up front."
                .to_owned(),
            SignalingKind::Rest,
        ),
        WsProbe::Refused { status } => (
            Verdict::Warn,
            format!("{url} refused the upgrade with HTTP {status}; REST signaling is used"),
            "A proxy in front of the gateway may not pass WebSocket upgrades (IIS needs the \
             WebSocket Protocol feature)."
                .to_owned(),
            SignalingKind::Rest,
        ),
        WsProbe::Failed(error) => (
            Verdict::Warn,
            format!("{url}: {error}; REST signaling is used"),
            String::new(),
            SignalingKind::Rest,
        ),
    };
    report.step(verdict, "WebSocket signaling", &found, &advice);
    match chosen {
        Some(arg) => settings::signaling(arg),
        None => detected,
    }
}

/// The preflight a browser on another origin sends before creating a session.
async fn cors(report: &mut Report, gateway: &Gateway, origin: &str) {
    let answer = gateway
        .cors_preflight(SESSION_PATH, origin, "POST", "authorization,content-type")
        .await;
    let proxy_advice = "Browsers on another origin will fail (the console shows a CORS error, \
         which can also hide certificate or IIS problems). Either configure CORS on the gateway \
         for that origin, or serve the page through `xprotect-webrtc view`, whose same-origin \
         proxy needs no CORS.";
    match answer {
        Ok(answer @ CorsAnswer { .. }) if answer.allows(origin) => report.step(
            Verdict::Ok,
            "CORS for browsers",
            &format!(
                "a page from {origin} may call the REST API (Allow-Origin: {})",
                answer.allow_origin.as_deref().unwrap_or_default()
            ),
            "",
        ),
        Ok(answer) => report.step(
            Verdict::Warn,
            "CORS for browsers",
            &format!(
                "the preflight from {origin} got HTTP {} without permission for that origin",
                answer.status
            ),
            proxy_advice,
        ),
        Err(error) => report.step(
            Verdict::Warn,
            "CORS for browsers",
            &format!("the preflight from {origin} failed: {error}"),
            proxy_advice,
        ),
    }
}

/// Lists the cameras and picks the one to test: `--camera`, or the first one.
async fn cameras(
    report: &mut Report,
    gateway: &Gateway,
    tokens: &TokenSource,
    wanted: Option<&str>,
) -> Option<DeviceId> {
    let api = ConfigApi::new(gateway, tokens);
    let cameras = match api.cameras().await {
        Ok(cameras) => cameras,
        Err(error) => {
            report.step(
                Verdict::Fail,
                "Config API cameras",
                &error.to_string(),
                "The user may lack the right to list cameras, or the gateway has no Config API \
                 (before 2023R1). A camera GUID given with --camera still allows the test \
                 session.",
            );
            return match wanted.map(str::parse::<DeviceId>) {
                Some(Ok(id)) => Some(id),
                _ => None,
            };
        }
    };
    let enabled = cameras.iter().filter(|camera| camera.enabled).count();
    let chosen = match wanted {
        Some(text) => match api.resolve_camera(text).await {
            Ok(id) => Some(id),
            Err(error) => {
                report.step(
                    Verdict::Fail,
                    "Config API cameras",
                    &format!("{} camera(s); --camera: {error}", cameras.len()),
                    "Run `xprotect-webrtc cameras` to see the names and GUIDs.",
                );
                return None;
            }
        },
        None => cameras
            .iter()
            .find(|camera| camera.enabled)
            .map(|camera| camera.id),
    };
    let Some(chosen) = chosen else {
        report.step(
            Verdict::Fail,
            "Config API cameras",
            &format!("{} camera(s), none enabled", cameras.len()),
            "The user sees no enabled camera: check its roles in Management Client.",
        );
        return None;
    };
    let name = cameras
        .iter()
        .find(|camera| camera.id == chosen)
        .map_or_else(
            || chosen.to_string(),
            |camera| format!("{} ({chosen})", camera.display_name),
        );
    report.step(
        Verdict::Ok,
        "Config API cameras",
        &format!(
            "{} camera(s), {enabled} enabled; testing {name}",
            cameras.len()
        ),
        "",
    );
    Some(chosen)
}

/// A live session to the first keyframe, with timings; returns the stack's statistics.
async fn test_session(
    report: &mut Report,
    gateway: &Gateway,
    tokens: &TokenSource,
    args: &DoctorArgs,
    camera: DeviceId,
    signaling: SignalingKind,
) -> Option<PeerStats> {
    let mut params = xprotect_proto::wire::SessionParams::live(camera);
    params.include_audio = false;
    let mut options = xprotect_client::session::SessionOptions::new(params);
    options.signaling = signaling;
    options.first_frame_timeout = args.session_timeout;
    if let Some(ip) = args.bind {
        options.peer.udp_bind_addrs = vec![SocketAddr::new(ip, 0)];
    }
    if let Some(release) = args.connection.gateway_release
        && let Err(error) = release.adapt(&mut options, false, args.signaling.is_some())
    {
        report.step(Verdict::Fail, "test session", &error.to_string(), "");
        return None;
    }
    let transport = match options.signaling {
        SignalingKind::Rest => "REST",
        SignalingKind::WebSocket => "WebSocket",
    };
    let started = Instant::now();
    let mut session = Session::start(gateway.clone(), tokens, options);
    let mut created = None;
    let mut connected = None;
    let deadline = tokio::time::Instant::now() + args.session_timeout + Duration::from_secs(2);
    let outcome = loop {
        let event = match tokio::time::timeout_at(deadline, session.next_event()).await {
            Ok(Some(event)) => event,
            Ok(None) => break Err("the session ended without a report".to_owned()),
            Err(_) => break Err(format!("no keyframe within {:?}", args.session_timeout)),
        };
        match event {
            SessionEvent::Created(_) => created = Some(started.elapsed()),
            SessionEvent::Connected => connected = Some(started.elapsed()),
            SessionEvent::Video(frame) if frame.access_unit.keyframe => {
                break Ok(started.elapsed());
            }
            SessionEvent::Ended(Err(error)) => break Err(error.to_string()),
            SessionEvent::Ended(Ok(())) => break Err("the session ended".to_owned()),
            _ => {}
        }
    };
    let ms =
        |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()));
    let stats = session.stats().await.ok();
    session.close().await;
    match outcome {
        Ok(first_frame) => {
            report.step(
                Verdict::Ok,
                "test session",
                &format!(
                    "live over {transport}: session created {}, ICE+DTLS connected {}, first \
                     keyframe {}",
                    ms(created),
                    ms(connected),
                    ms(Some(first_frame))
                ),
                "",
            );
            stats.and_then(|stats| stats.peer)
        }
        Err(error) => {
            let advice = match (created, connected) {
                (None, _) => {
                    "The gateway did not create a session: check the camera's permissions for \
                     this user and the gateway's log."
                }
                (Some(_), None) => {
                    "Signaling worked but ICE/DTLS did not connect: see the candidate notes \
                     below (NAT without STUN, UDP blocked without TURN, mDNS)."
                }
                (Some(_), Some(_)) => {
                    "Connected but no video: the camera must stream H.264 (cameras with privacy \
                     masking send JPEG and cannot be used)."
                }
            };
            report.step(
                Verdict::Fail,
                "test session",
                &format!(
                    "live over {transport}: {error} (created {}, connected {})",
                    ms(created),
                    ms(connected)
                ),
                advice,
            );
            if let Some(peer) = stats.and_then(|stats| stats.peer) {
                candidates(report, &peer);
            }
            None
        }
    }
}

/// Both sides' candidates, the pair in use, and the failure modes they point to.
fn candidates(report: &mut Report, peer: &PeerStats) {
    report.step(
        Verdict::Note,
        "our ICE candidates",
        &describe(&peer.local_candidates),
        "",
    );
    report.step(
        Verdict::Note,
        "gateway ICE candidates",
        &describe(&peer.remote_candidates),
        "",
    );
    match &peer.selected_pair {
        Some(pair) => report.step(
            Verdict::Ok,
            "selected pair",
            &format!(
                "{} <-> {}{}",
                pair.local,
                pair.remote,
                pair.rtt_ms
                    .map(|rtt| format!(", RTT {rtt:.1} ms"))
                    .unwrap_or_default()
            ),
            "",
        ),
        None => report.step(
            Verdict::Fail,
            "selected pair",
            "ICE selected no candidate pair",
            "No path between the two sides' candidates worked; see the notes below.",
        ),
    }
    for (verdict, name, text) in failure_modes(peer) {
        report.step(verdict, name, &text, "");
    }
}

fn describe(candidates: &[CandidateInfo]) -> String {
    if candidates.is_empty() {
        return "none".to_owned();
    }
    candidates
        .iter()
        .map(CandidateInfo::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// PROTOCOL.md §7's connectivity failure modes, each said as it applies to these candidates.
fn failure_modes(peer: &PeerStats) -> Vec<(Verdict, &'static str, String)> {
    let all = || peer.local_candidates.iter().chain(&peer.remote_candidates);
    let has_type = |wanted: CandidateType| all().any(|c| c.candidate_type == wanted);
    let mut notes = Vec::new();

    let mdns = all().any(|c| c.scope == AddressScope::Mdns);
    notes.push((
        if mdns { Verdict::Warn } else { Verdict::Note },
        "mDNS",
        if mdns {
            "some candidates are mDNS names (<uuid>.local): they resolve only on the same network \
             segment (pass --mdns to resolve the gateway's). Browsers hide their addresses this \
             way; the gateway then relies on the X-Forwarded-For or remote address of the \
             signaling request, which a proxy that strips it or NATs the source breaks."
                .to_owned()
        } else {
            "no candidate is an mDNS (.local) name. Browsers use them for their own addresses; \
             the gateway resolves them only on the same network segment and otherwise uses the \
             X-Forwarded-For or remote address of the signaling request."
                .to_owned()
        },
    ));

    let srflx = has_type(CandidateType::Srflx);
    let ours_reachable_only_locally = peer.local_candidates.iter().all(|c| {
        matches!(
            c.scope,
            AddressScope::Private
                | AddressScope::Loopback
                | AddressScope::LinkLocal
                | AddressScope::Mdns
        )
    });
    let gateway_public = peer
        .remote_candidates
        .iter()
        .any(|c| c.scope == AddressScope::Public);
    let nat_risk = !srflx && ours_reachable_only_locally && gateway_public;
    notes.push((
        if nat_risk {
            Verdict::Warn
        } else {
            Verdict::Note
        },
        "NAT without STUN",
        if srflx {
            "server-reflexive candidates are present: a STUN server tells each side its public \
             address, which gets through a cone NAT."
                .to_owned()
        } else if nat_risk {
            "we offer only private addresses while the gateway has public ones, and no STUN \
             server-reflexive candidate exists: behind a NAT the gateway cannot reach us. \
             Configure a STUN server (on both sides: the session's iceServers and our peer)."
                .to_owned()
        } else {
            "no STUN server in use (no srflx candidates): fine while both sides share a network; \
             across a NAT a STUN server is needed (2023R3+ gateways have none by default)."
                .to_owned()
        },
    ));

    let relay = has_type(CandidateType::Relay);
    notes.push((
        Verdict::Note,
        "UDP blocked without TURN",
        if relay {
            "relay candidates are present: a TURN server can carry media where UDP between the \
             sides is blocked or the NAT is symmetric."
                .to_owned()
        } else {
            "no TURN relay in use. Where UDP between you and the gateway is blocked, or behind a \
             symmetric NAT (symptom: ICE 'disconnected' or 'failed'), only a TURN server gets \
             media through (TURN needs 2023R3+)."
                .to_owned()
        },
    ));
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(line: &str) -> CandidateInfo {
        CandidateInfo::parse(line).unwrap()
    }

    #[test]
    fn private_only_against_a_public_gateway_without_stun_warns_of_nat() {
        let peer = PeerStats {
            local_candidates: vec![candidate("candidate:1 1 udp 1 192.168.1.5 5000 typ host")],
            remote_candidates: vec![candidate("candidate:2 1 udp 1 203.0.113.9 6000 typ host")],
            ..PeerStats::default()
        };
        let notes = failure_modes(&peer);
        let nat = notes
            .iter()
            .find(|(_, name, _)| *name == "NAT without STUN")
            .unwrap();
        assert_eq!(nat.0, Verdict::Warn);
        assert!(nat.2.contains("STUN"), "{}", nat.2);
    }

    #[test]
    fn loopback_peers_get_notes_only() {
        let peer = PeerStats {
            local_candidates: vec![candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host")],
            remote_candidates: vec![candidate("candidate:2 1 udp 1 127.0.0.1 6000 typ host")],
            ..PeerStats::default()
        };
        assert!(
            failure_modes(&peer)
                .iter()
                .all(|(verdict, _, _)| *verdict == Verdict::Note)
        );
    }

    #[test]
    fn mdns_names_are_flagged() {
        let peer = PeerStats {
            remote_candidates: vec![candidate(
                "candidate:2 1 udp 1 0b1c2d3e-aaaa-bbbb-cccc-123456789abc.local 6000 typ host",
            )],
            ..PeerStats::default()
        };
        let notes = failure_modes(&peer);
        assert_eq!(notes[0].0, Verdict::Warn);
        assert!(notes[0].2.contains("--mdns"));
    }

    #[test]
    fn certificate_errors_are_recognised() {
        assert!(is_certificate_error(
            "error sending request: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_certificate_error("connection refused"));
    }
}
