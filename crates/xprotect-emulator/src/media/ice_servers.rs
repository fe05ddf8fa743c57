//! The session's `iceServers`: URL parsing (RFC 7064 `stun:`, RFC 7065 `turn:`) and name
//! resolution, done by the caller before the engine sees them (the engine task never waits on
//! DNS).

use std::net::SocketAddr;
use std::time::Duration;

use xprotect_proto::wire::Secret;

use super::IceServerSpec;

/// Default port of `stun:` and `turn:` URLs.
const DEFAULT_PORT: u16 = 3478;
/// A name that does not resolve this fast is skipped (the session still gets host candidates).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A usable server of the request, resolved.
#[derive(Debug, Clone)]
pub(crate) enum ResolvedServer {
    /// A STUN server: Binding for a server-reflexive candidate.
    Stun {
        /// The URL as the client sent it.
        url: String,
        /// Its address.
        addr: SocketAddr,
    },
    /// A TURN server over UDP with long-term credentials.
    Turn {
        /// The URL as the client sent it.
        url: String,
        /// Its address.
        addr: SocketAddr,
        /// TURN user name.
        username: String,
        /// TURN password (never logged).
        credential: Secret,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Stun,
    Turn,
}

/// `stun:host[:port]` or `turn:host[:port][?transport=udp]` → scheme, host, port. `stuns:`,
/// `turns:` and TCP transport are not spoken (the engine has one UDP socket).
fn parse_url(url: &str) -> Result<(Scheme, String, u16), String> {
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| format!("{url}: no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "stun" => Scheme::Stun,
        "turn" => Scheme::Turn,
        "stuns" | "turns" => return Err(format!("{url}: TLS transports are not supported")),
        other => return Err(format!("{url}: unknown scheme {other:?}")),
    };
    let (authority, query) = match rest.split_once('?') {
        Some((authority, query)) => (authority, Some(query)),
        None => (rest, None),
    };
    if let Some(query) = query {
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key.eq_ignore_ascii_case("transport") && !value.eq_ignore_ascii_case("udp") {
                return Err(format!("{url}: only UDP transport is supported"));
            }
        }
    }
    let authority = authority.trim_start_matches("//");
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: unclosed IPv6 bracket"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("{url}: junk after the address")),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{url}: bad port"))?,
        None => DEFAULT_PORT,
    };
    Ok((scheme, host.to_owned(), port))
}

/// Resolves the usable servers of `specs`; the others come back as reasons, for the journal.
/// Only addresses of `family_v4`'s family are kept (a socket of one family cannot reach the
/// other).
pub(crate) async fn resolve(
    specs: &[IceServerSpec],
    family_v4: bool,
) -> (Vec<ResolvedServer>, Vec<String>) {
    let mut servers = Vec::new();
    let mut skipped = Vec::new();
    for spec in specs {
        for url in &spec.urls {
            let (scheme, host, port) = match parse_url(url) {
                Ok(parts) => parts,
                Err(reason) => {
                    skipped.push(reason);
                    continue;
                }
            };
            let lookup = tokio::time::timeout(
                RESOLVE_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await;
            let addr = match lookup {
                Ok(Ok(mut addrs)) => addrs.find(|a| a.is_ipv4() == family_v4),
                Ok(Err(e)) => {
                    skipped.push(format!("{url}: {e}"));
                    continue;
                }
                Err(_) => {
                    skipped.push(format!("{url}: name resolution timed out"));
                    continue;
                }
            };
            let Some(addr) = addr else {
                skipped.push(format!("{url}: no address of the media socket's family"));
                continue;
            };
            match scheme {
                Scheme::Stun => servers.push(ResolvedServer::Stun {
                    url: url.clone(),
                    addr,
                }),
                Scheme::Turn => match (&spec.username, &spec.credential) {
                    (Some(username), Some(credential)) => servers.push(ResolvedServer::Turn {
                        url: url.clone(),
                        addr,
                        username: username.clone(),
                        credential: credential.clone(),
                    }),
                    _ => skipped.push(format!("{url}: TURN without username and credential")),
                },
            }
        }
    }
    (servers, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_forms_browsers_accept() {
        assert_eq!(
            parse_url("stun:stun.example.org").unwrap(),
            (Scheme::Stun, "stun.example.org".into(), 3478)
        );
        assert_eq!(
            parse_url("turn:127.0.0.1:3479?transport=udp").unwrap(),
            (Scheme::Turn, "127.0.0.1".into(), 3479)
        );
        assert_eq!(
            parse_url("TURN:[::1]:5000").unwrap(),
            (Scheme::Turn, "::1".into(), 5000)
        );
        assert_eq!(
            parse_url("stun:[::1]").unwrap(),
            (Scheme::Stun, "::1".into(), 3478)
        );
        for bad in [
            "turns:x:5349",
            "turn:x?transport=tcp",
            "http://x",
            "stun:",
            "stun:x:0",
            "stun:x:99999",
            "nothing",
            "stun:[::1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn resolves_and_explains_what_it_skips() {
        let specs = vec![
            IceServerSpec {
                urls: vec!["stun:127.0.0.1:3478".into(), "turns:127.0.0.1".into()],
                ..IceServerSpec::default()
            },
            IceServerSpec {
                urls: vec!["turn:127.0.0.1:3478".into()],
                username: Some("u".into()),
                credential: Some(Secret::new("p")),
            },
            IceServerSpec {
                urls: vec!["turn:127.0.0.1:3478".into()],
                username: None,
                credential: None,
            },
        ];
        let (servers, skipped) = resolve(&specs, true).await;
        assert_eq!(servers.len(), 2);
        assert!(matches!(&servers[1], ResolvedServer::Turn { username, .. } if username == "u"));
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            !format!("{servers:?}").contains("\"p\""),
            "credential redacted"
        );
    }
}
