//! STUN/TURN servers, in the two dialects the gateway speaks: REST `url`, WebSocket `urls`.

use serde::{Deserialize, Serialize};

/// One STUN or TURN server. `Debug` leaves the credential out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp`; the browser form allows several.
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN credential. Kept out of `Debug` output.
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

/// What `Debug` shows of a credential: whether there is one.
fn redacted(credential: &Option<String>) -> Option<&'static str> {
    credential.as_ref().map(|_| "<redacted>")
}

/// Which key a message uses for the server address (PROTOCOL.md §2.1 vs §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceServerDialect {
    /// REST: `{"url": "stun:…"}`, one object per URL.
    RestUrl,
    /// WebSocket and browsers: `{"urls": "stun:…"}`.
    WsUrls,
}

/// The object as it travels: accepts `url` or `urls`, each a string or a list. `Debug` leaves
/// the credential out.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IceServerWire {
    /// REST key.
    #[serde(
        default,
        deserialize_with = "super::lenient::one_or_many_strings",
        serialize_with = "string_if_single",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub url: Vec<String>,
    /// WebSocket/browser key.
    #[serde(
        default,
        deserialize_with = "super::lenient::one_or_many_strings",
        serialize_with = "string_if_single",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServerWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServerWire")
            .field("url", &self.url)
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

/// One URL goes out as a plain string, as the sample sends it; several as a list.
fn string_if_single<S: serde::Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    match urls {
        [single] => s.serialize_str(single),
        many => many.serialize(s),
    }
}

impl IceServer {
    /// Encode for one dialect. REST gets one object per URL since its `url` key is singular.
    pub fn to_wire(servers: &[IceServer], dialect: IceServerDialect) -> Vec<IceServerWire> {
        match dialect {
            IceServerDialect::RestUrl => servers
                .iter()
                .flat_map(|server| {
                    server.urls.iter().map(|url| IceServerWire {
                        url: vec![url.clone()],
                        urls: Vec::new(),
                        username: server.username.clone(),
                        credential: server.credential.clone(),
                    })
                })
                .collect(),
            IceServerDialect::WsUrls => servers
                .iter()
                .map(|server| IceServerWire {
                    url: Vec::new(),
                    urls: server.urls.clone(),
                    username: server.username.clone(),
                    credential: server.credential.clone(),
                })
                .collect(),
        }
    }
}

impl From<IceServerWire> for IceServer {
    fn from(wire: IceServerWire) -> Self {
        let mut urls = wire.url;
        urls.extend(wire.urls);
        IceServer {
            urls,
            username: wire.username,
            credential: wire.credential,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_credential() {
        let server = IceServer {
            urls: vec!["turn:relay:3478".into()],
            username: Some("user".into()),
            credential: Some("s3cret-turn".into()),
        };
        let wire = IceServer::to_wire(std::slice::from_ref(&server), IceServerDialect::WsUrls);
        for text in [format!("{server:?}"), format!("{wire:?}")] {
            assert!(!text.contains("s3cret-turn"), "{text}");
            assert!(
                text.contains("<redacted>") && text.contains("user"),
                "{text}"
            );
        }
    }

    #[test]
    fn rest_uses_singular_url_and_ws_uses_urls() {
        let servers = vec![IceServer {
            urls: vec!["stun:a:3478".into(), "turn:b:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
        }];
        let rest =
            serde_json::to_value(IceServer::to_wire(&servers, IceServerDialect::RestUrl)).unwrap();
        assert_eq!(rest[0]["url"], serde_json::json!("stun:a:3478"));
        assert_eq!(rest.as_array().unwrap().len(), 2);
        let ws =
            serde_json::to_value(IceServer::to_wire(&servers, IceServerDialect::WsUrls)).unwrap();
        assert_eq!(
            ws[0]["urls"],
            serde_json::json!(["stun:a:3478", "turn:b:3478"])
        );
    }

    #[test]
    fn accepts_url_or_urls_as_string_or_list() {
        for text in [
            r#"{"url":"stun:a"}"#,
            r#"{"urls":"stun:a"}"#,
            r#"{"URLS":["stun:a"]}"#,
        ] {
            let wire: IceServerWire = super::super::lenient::from_str(text).unwrap();
            assert_eq!(
                IceServer::from(wire).urls,
                vec!["stun:a".to_owned()],
                "{text}"
            );
        }
    }
}
