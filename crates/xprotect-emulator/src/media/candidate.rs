//! ICE candidates as signaling carries them, and the mDNS twin rule.

use std::net::IpAddr;

use str0m::Candidate;

use super::MediaError;

pub use xprotect_proto::wire::IceCandidateInit;

/// A local candidate for the bundled media section `sdp_mid` at index `sdp_m_line_index`.
pub(crate) fn local_candidate(
    c: &Candidate,
    sdp_mid: &str,
    sdp_m_line_index: u16,
    ufrag: &str,
) -> IceCandidateInit {
    IceCandidateInit {
        candidate: c.to_sdp_string(),
        sdp_mid: Some(sdp_mid.to_owned()),
        sdp_m_line_index: Some(sdp_m_line_index),
        username_fragment: Some(ufrag.to_owned()),
    }
}

/// The candidates str0m should use for a client candidate: normally the candidate itself; for an
/// mDNS (`.local`) candidate, which str0m cannot resolve, a twin with `twin_ip` in its place, the
/// same port and transport and a higher priority (what the gateway does with X-Forwarded-For,
/// PROTOCOL.md §4.5). An empty candidate (end of candidates) yields none.
pub(crate) fn remote_candidates(
    init: &IceCandidateInit,
    twin_ip: Option<IpAddr>,
) -> Result<Vec<Candidate>, MediaError> {
    let text = init.candidate.trim();
    let text = text.strip_prefix("a=").unwrap_or(text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let is_mdns = fields
        .get(4)
        .is_some_and(|addr| addr.to_ascii_lowercase().ends_with(".local"));
    if !is_mdns {
        let c = Candidate::from_sdp_string(text)
            .map_err(|e| MediaError::BadCandidate(e.to_string()))?;
        return Ok(vec![c]);
    }

    let Some(twin_ip) = twin_ip else {
        tracing::debug!(
            candidate = text,
            "mDNS candidate without a client address: skipped"
        );
        return Ok(Vec::new());
    };
    let priority: u32 = fields
        .get(3)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| MediaError::BadCandidate(format!("bad priority in {text:?}")))?;
    let mut twin: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    twin[3] = priority.saturating_add(1).to_string();
    twin[4] = twin_ip.to_string();
    let twin = twin.join(" ");
    let c =
        Candidate::from_sdp_string(&twin).map_err(|e| MediaError::BadCandidate(e.to_string()))?;
    tracing::debug!(mdns = text, twin = %twin, "mDNS candidate replaced by its twin");
    Ok(vec![c])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(candidate: &str) -> IceCandidateInit {
        IceCandidateInit {
            candidate: candidate.to_owned(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn plain_candidate_parses_with_browser_extensions() {
        let c = remote_candidates(
            &init(
                "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 network-id 1",
            ),
            None,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr(), "127.0.0.1:50000".parse().unwrap());
    }

    #[test]
    fn mdns_candidate_gets_a_higher_priority_twin() {
        let text = "candidate:2 1 udp 2122260223 3c9d2b9a-1f1e-4c5e-9b7a-1c2d3e4f5a6b.local 50001 typ host";
        let c = remote_candidates(&init(text), Some("127.0.0.1".parse().unwrap())).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr(), "127.0.0.1:50001".parse().unwrap());
        assert_eq!(c[0].prio(), 2122260224);
        assert!(remote_candidates(&init(text), None).unwrap().is_empty());
    }

    #[test]
    fn end_of_candidates_and_garbage() {
        assert!(remote_candidates(&init(""), None).unwrap().is_empty());
        for bad in [
            "candidate:",
            "hello",
            "candidate:1 1 udp x 1.2.3.4 5 typ host",
            "candidate:1 1 udp 1 x.local",
        ] {
            let r = remote_candidates(&init(bad), Some("127.0.0.1".parse().unwrap()));
            assert!(
                matches!(r, Err(MediaError::BadCandidate(_))),
                "{bad}: {r:?}"
            );
        }
    }
}
