//! `application/x-www-form-urlencoded`, the IDP's request encoding, in both directions.

/// Encode key/value pairs as a form body.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        escape_into(key, &mut out);
        out.push('=');
        escape_into(value, &mut out);
    }
    out
}

fn escape_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(other >> 4)] as char);
                out.push(HEX[usize::from(other & 0x0f)] as char);
            }
        }
    }
}

/// A form body that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent-escape in form field `{0}`")]
    BadEscape(String),
    /// The decoded bytes are not UTF-8.
    #[error("form field `{0}` is not UTF-8")]
    NotUtf8(String),
}

/// Decode a form body into pairs, in order. Keys without `=` get an empty value.
pub fn decode(body: &str) -> Result<Vec<(String, String)>, FormError> {
    body.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = unescape(key).map_err(|e| e.for_field(key))?;
            let value = unescape(value).map_err(|e| e.for_field(&key))?;
            Ok((key, value))
        })
        .collect()
}

enum Unescape {
    BadEscape,
    NotUtf8,
}

impl Unescape {
    fn for_field(self, field: &str) -> FormError {
        let field: String = field.chars().take(40).collect();
        match self {
            Unescape::BadEscape => FormError::BadEscape(field),
            Unescape::NotUtf8 => FormError::NotUtf8(field),
        }
    }
}

fn unescape(text: &str) -> Result<String, Unescape> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = input.next().and_then(hex_value);
                let low = input.next().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => bytes.push(high << 4 | low),
                    _ => return Err(Unescape::BadEscape),
                }
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| Unescape::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_text() {
        let body = encode([("grant_type", "password"), ("password", "S3cret! &=+ø")]);
        assert_eq!(
            body,
            "grant_type=password&password=S3cret%21+%26%3D%2B%C3%B8"
        );
        let pairs = decode(&body).unwrap();
        assert_eq!(pairs[1], ("password".into(), "S3cret! &=+ø".into()));
    }

    #[test]
    fn bad_escapes_are_errors_not_panics() {
        assert!(matches!(decode("a=%zz"), Err(FormError::BadEscape(f)) if f == "a"));
        assert!(matches!(decode("a=%"), Err(FormError::BadEscape(_))));
        assert!(matches!(decode("a=%ff"), Err(FormError::NotUtf8(_))));
        assert_eq!(
            decode("flag").unwrap(),
            vec![("flag".into(), String::new())]
        );
    }
}
