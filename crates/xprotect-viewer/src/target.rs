//! Which gateway URL a `/gateway/<path>` request goes to, or why it goes nowhere.
//!
//! The proxy must never become an open proxy: the scheme, host and port always come from the
//! configured gateway URL, and the browser's path can only name something *below* the gateway's
//! base path. Anything that could climb out of it (`..`, `.`, empty segments, encoded slashes,
//! backslashes, encoded dots, NUL) is refused rather than normalised, so what the gateway
//! receives is exactly what the page asked for.

use url::Url;

/// Why a path is not forwarded. The text is shown to the browser as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// `/gateway/` with nothing after it.
    #[error("nothing to forward: name a gateway path, e.g. /gateway/rest/v1/cameras")]
    Empty,
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error("dot segments (`.`, `..`) are not forwarded")]
    DotSegment,
    /// `//` inside the path (or a leading one, the shape of a network-path reference).
    #[error("empty path segments (`//`) are not forwarded")]
    EmptySegment,
    /// `%2F`, `%5C`, `%00` or a raw backslash: a second path separator the gateway might honour.
    #[error("encoded slashes, backslashes and NUL are not forwarded")]
    EncodedSeparator,
    /// A character no URL path may hold raw (spaces, controls, `#`, non-ASCII).
    #[error("the path holds a character that is not allowed in a URL path")]
    BadCharacter,
    /// A malformed `%` escape.
    #[error("the path holds a malformed percent escape")]
    BadEscape,
}

/// The gateway URL for `relative` (the raw path after `/gateway/`, still percent-encoded) and
/// the raw query, below `base` (whose path ends with `/`).
pub fn gateway_target(base: &Url, relative: &str, query: Option<&str>) -> Result<Url, PathRefusal> {
    check_relative_path(relative)?;
    let mut url = base.clone();
    url.set_path(&format!("{}{relative}", base.path()));
    url.set_query(query.filter(|q| !q.is_empty()));
    url.set_fragment(None);
    // Belt and braces: the checks above already make these hold.
    let same_origin = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().starts_with(base.path());
    if same_origin {
        Ok(url)
    } else {
        Err(PathRefusal::BadCharacter)
    }
}

fn check_relative_path(relative: &str) -> Result<(), PathRefusal> {
    if relative.is_empty() {
        return Err(PathRefusal::Empty);
    }
    let segments: Vec<&str> = relative.split('/').collect();
    let last = segments.len() - 1; // split always yields at least one item
    for (index, segment) in segments.iter().enumerate() {
        // A trailing slash (`rest/v1/`) is harmless; `a//b` and a leading `/` are not.
        if segment.is_empty() && index != last {
            return Err(PathRefusal::EmptySegment);
        }
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathRefusal> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => {
                let escape = bytes
                    .get(index + 1..index + 3)
                    .ok_or(PathRefusal::BadEscape)?;
                let text = std::str::from_utf8(escape).map_err(|_| PathRefusal::BadEscape)?;
                let value = u8::from_str_radix(text, 16).map_err(|_| PathRefusal::BadEscape)?;
                if matches!(value, b'/' | b'\\' | 0) {
                    return Err(PathRefusal::EncodedSeparator);
                }
                decoded.push(value);
                index += 3;
            }
            b'\\' => return Err(PathRefusal::EncodedSeparator),
            // RFC 3986 pchar without `%` (handled above).
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => {
                decoded.push(byte);
                index += 1;
            }
            _ => return Err(PathRefusal::BadCharacter),
        }
    }
    if decoded == b"." || decoded == b".." {
        return Err(PathRefusal::DotSegment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://vms.example.com/api/").expect("a valid literal URL")
    }

    #[test]
    fn ordinary_paths_land_below_the_base() {
        let url = gateway_target(&base(), "rest/v1/cameras", Some("a=1")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://vms.example.com/api/rest/v1/cameras?a=1"
        );
        let url = gateway_target(&base(), "IDP/connect/token", None).unwrap();
        assert_eq!(
            url.as_str(),
            "https://vms.example.com/api/IDP/connect/token"
        );
        let url = gateway_target(&base(), "REST/v1/WebRTC/Session/a%20b", None).unwrap();
        assert_eq!(url.path(), "/api/REST/v1/WebRTC/Session/a%20b");
    }

    #[test]
    fn escapes_out_of_the_base_are_refused() {
        let cases = [
            ("", PathRefusal::Empty),
            ("../secret", PathRefusal::DotSegment),
            ("rest/../../x", PathRefusal::DotSegment),
            ("%2e%2E/x", PathRefusal::DotSegment),
            ("rest/./x", PathRefusal::DotSegment),
            ("/evil.example.com/x", PathRefusal::EmptySegment),
            ("rest//x", PathRefusal::EmptySegment),
            ("rest%2Fx", PathRefusal::EncodedSeparator),
            ("rest%5cx", PathRefusal::EncodedSeparator),
            ("rest\\..\\x", PathRefusal::EncodedSeparator),
            ("rest%00", PathRefusal::EncodedSeparator),
            ("rest%zz", PathRefusal::BadEscape),
            ("rest%2", PathRefusal::BadEscape),
            ("a b", PathRefusal::BadCharacter),
            ("a#b", PathRefusal::BadCharacter),
            ("é", PathRefusal::BadCharacter),
        ];
        for (path, refusal) in cases {
            assert_eq!(gateway_target(&base(), path, None), Err(refusal), "{path}");
        }
    }

    #[test]
    fn absolute_urls_stay_paths_on_the_gateway() {
        // `http:` is a legal first path segment; it must not switch host.
        let url = gateway_target(&base(), "http:", None).unwrap();
        assert_eq!(url.host_str(), Some("vms.example.com"));
        assert_eq!(url.path(), "/api/http:");
        assert!(gateway_target(&base(), "http://evil/x", None).is_err());
    }
}
