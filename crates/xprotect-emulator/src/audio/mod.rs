//! The emulated microphones: synthetic sound, its G.711 µ-law encoding, and the pacing of the
//! 20 ms PCMU packets a session sends (PROTOCOL.md §4.1, §4.2).
//!
//! ```text
//! recording time ──tone::fill──▶ linear PCM ──mulaw::encode──▶ PCMU payload
//!       ▲
//! AudioPacer (anchored on the video frames sent, or on itself) says which 160 samples are due
//! ```

pub mod mulaw;
pub mod pacer;
pub mod tone;

pub use pacer::{AudioBlock, AudioPacer, GapMode};

/// The PCMU payload of `block`: the tone and clicks of its recording time, µ-law encoded.
pub fn pcmu_payload(block: &AudioBlock) -> Vec<u8> {
    let mut linear = vec![0i16; block.samples];
    tone::fill(block.first_sample, &mut linear);
    let mut payload = Vec::with_capacity(block.samples);
    mulaw::encode(&linear, &mut payload);
    payload
}
