//! Reading webrtc-rs' `getStats()` report into our [`PeerStats`].
//!
//! The report is W3C-shaped: entries keyed by id that refer to each other by id. The transport
//! names the selected candidate pair, the pair names its two candidates by their ICE ids, and
//! the candidate entries carry those ids behind a `RTCLocalIceCandidate_` /
//! `RTCRemoteIceCandidate_` prefix (rtc 0.21.1 `peer_connection/internal.rs`). A remote
//! peer-reflexive candidate, learnt from a connectivity check rather than signaled, has no entry;
//! the driver then takes the pair from the ICE transport ([`apply_selected_pair`]).

use rtc::peer_connection::transport::{RTCIceCandidate, RTCIceCandidatePair, RTCIceCandidateType};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};
use rtc::statistics::stats::ice_candidate::RTCIceCandidateStats;

use crate::diagnostics::{
    AddressScope, CandidateInfo, CandidateType, InboundTrackStats, PeerStats, SelectedPair,
    TrackKindName,
};

/// Prefix of a local candidate's stats id before its ICE id.
const LOCAL_CANDIDATE_PREFIX: &str = "RTCLocalIceCandidate_";
/// Prefix of a remote candidate's stats id before its ICE id.
const REMOTE_CANDIDATE_PREFIX: &str = "RTCRemoteIceCandidate_";

/// Our view of a webrtc-rs stats report.
pub(crate) fn peer_stats(report: &RTCStatsReport) -> PeerStats {
    let mut stats = PeerStats::default();
    for entry in report.iter() {
        match entry {
            RTCStatsReportEntry::LocalCandidate(candidate) => {
                stats.local_candidates.push(candidate_info(candidate));
            }
            RTCStatsReportEntry::RemoteCandidate(candidate) => {
                stats.remote_candidates.push(candidate_info(candidate));
            }
            RTCStatsReportEntry::InboundRtp(inbound) => {
                let received = &inbound.received_rtp_stream_stats;
                let kind = match received.rtp_stream_stats.kind {
                    RtpCodecKind::Video => TrackKindName::Video,
                    RtpCodecKind::Audio => TrackKindName::Audio,
                    _ => continue,
                };
                stats.inbound.push(InboundTrackStats {
                    kind,
                    ssrc: received.rtp_stream_stats.ssrc,
                    packets_received: received.packets_received,
                    packets_lost: received.packets_lost,
                    bytes_received: inbound.bytes_received,
                    nack_count: inbound.nack_count,
                    pli_count: inbound.pli_count,
                    fir_count: inbound.fir_count,
                });
            }
            _ => {}
        }
    }
    // The report's order is its accumulator's hash order: sort for stable output.
    stats
        .inbound
        .sort_by_key(|track| (track.kind as u8, track.ssrc));
    stats.selected_pair = selected_pair(report);
    stats
}

/// The pair the transport says is selected, with both candidates resolved.
fn selected_pair(report: &RTCStatsReport) -> Option<SelectedPair> {
    let selected_id = &report.transport()?.selected_candidate_pair_id;
    if selected_id.is_empty() {
        return None;
    }
    let pair = report
        .candidate_pairs()
        .find(|pair| &pair.stats.id == selected_id)?;
    let local = candidate_by_ice_id(report, LOCAL_CANDIDATE_PREFIX, &pair.local_candidate_id);
    let remote = candidate_by_ice_id(report, REMOTE_CANDIDATE_PREFIX, &pair.remote_candidate_id);
    Some(SelectedPair {
        local: local.unwrap_or_else(unknown_candidate),
        // Not signaled by the gateway: learnt from its connectivity check (RFC 8445 §7.3.1.3).
        remote: remote.unwrap_or_else(|| CandidateInfo {
            candidate_type: CandidateType::Prflx,
            ..unknown_candidate()
        }),
        // webrtc-rs reports 0 until a STUN response was timed.
        rtt_ms: (pair.current_round_trip_time > 0.0)
            .then_some(pair.current_round_trip_time * 1000.0),
        packets_received: pair.packets_received,
        bytes_received: pair.bytes_received,
    })
}

/// Replaces the report's view of the selected pair's candidates with the ICE transport's,
/// keeping the report's counters (or starting from zero ones).
pub(crate) fn apply_selected_pair(stats: &mut PeerStats, pair: &RTCIceCandidatePair) {
    let local = rtc_candidate_info(pair.local());
    let remote = rtc_candidate_info(pair.remote());
    match &mut stats.selected_pair {
        Some(selected) => {
            selected.local = local;
            selected.remote = remote;
        }
        None => {
            stats.selected_pair = Some(SelectedPair {
                local,
                remote,
                rtt_ms: None,
                packets_received: 0,
                bytes_received: 0,
            })
        }
    }
}

fn rtc_candidate_info(candidate: &RTCIceCandidate) -> CandidateInfo {
    CandidateInfo {
        candidate_type: candidate_type(candidate.typ),
        scope: AddressScope::of(&candidate.address),
        address: candidate.address.clone(),
        port: candidate.port,
        protocol: candidate.protocol.to_string().to_ascii_lowercase(),
    }
}

fn candidate_type(typ: RTCIceCandidateType) -> CandidateType {
    match typ {
        RTCIceCandidateType::Host => CandidateType::Host,
        RTCIceCandidateType::Srflx => CandidateType::Srflx,
        RTCIceCandidateType::Prflx => CandidateType::Prflx,
        RTCIceCandidateType::Relay => CandidateType::Relay,
        _ => CandidateType::Unknown,
    }
}

fn candidate_by_ice_id(
    report: &RTCStatsReport,
    prefix: &str,
    ice_id: &str,
) -> Option<CandidateInfo> {
    match report.get(&format!("{prefix}{ice_id}"))? {
        RTCStatsReportEntry::LocalCandidate(candidate)
        | RTCStatsReportEntry::RemoteCandidate(candidate) => Some(candidate_info(candidate)),
        _ => None,
    }
}

fn candidate_info(candidate: &RTCIceCandidateStats) -> CandidateInfo {
    let address = candidate.address.clone().unwrap_or_default();
    CandidateInfo {
        candidate_type: candidate_type(candidate.candidate_type),
        scope: AddressScope::of(&address),
        address,
        port: candidate.port,
        protocol: candidate.protocol.to_ascii_lowercase(),
    }
}

fn unknown_candidate() -> CandidateInfo {
    CandidateInfo {
        candidate_type: CandidateType::Unknown,
        address: String::new(),
        port: 0,
        protocol: String::new(),
        scope: AddressScope::Unknown,
    }
}
