//! Seedable randomness for session ids, invite ids and tokens (quinn's `rng_seed`), so a failing
//! run can be replayed with the same identifiers.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// A shared random source. The lock is held only for the few nanoseconds of one draw.
#[derive(Debug)]
pub struct IdSource {
    rng: Mutex<StdRng>,
}

impl IdSource {
    /// Seeded when `seed` is given, from the operating system otherwise.
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            rng: Mutex::new(rng),
        }
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        // A poisoned lock only means another thread panicked mid-draw; the RNG state is still a
        // valid RNG state, so keep using it.
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        rng.fill(&mut out[..]);
        out
    }

    /// A random (version 4) UUID.
    pub fn uuid(&self) -> Uuid {
        uuid::Builder::from_random_bytes(self.bytes::<16>()).into_uuid()
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWT segments use.
pub fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn seeded_sources_repeat() {
        let a = IdSource::new(Some(7));
        let b = IdSource::new(Some(7));
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.uuid().get_version_num(), 4);
    }
}
