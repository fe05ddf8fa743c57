//! The `bench` machinery: our client and a str0m peer measured side by side against a gateway.
//!
//! ```text
//!  commands::bench ──┬─ EmulatorChild (this binary `emulator --port 0`, killed on drop)
//!                    ├─ ttff: sequential runs per transport and stack, live and playback
//!                    ├─ export: our `export` of a range, then the str0m peer playing it
//!                    ├─ faults: fault → first frame and token switches, `LastingSession` next to a
//!                    │          plain `Session` in a restart loop (emulator children of their own)
//!                    └─ load: one `bench-worker` child process per (sessions, stack) step
//!  BenchSession = Ours(xprotect_client Session, webrtc-rs) | Str0m(str0m_peer, same signaling)
//! ```
//!
//! - [`session`]: one benchmark session of either stack, reporting the same [`ProbeEvent`]s.
//! - [`str0m_peer`]: the peer: our sans-IO signaling and depacketiser over str0m instead of
//!   webrtc-rs, so the WebRTC stack is the only difference.
//! - [`ttff`]: time to first frame and its phases; [`worker`]: one load step.
//! - [`export`]: export speed, ours next to the peer's.
//! - [`faults`]: sessions that last, against the emulator's faults and short tokens.
//! - [`procfs`]: CPU time and memory from `/proc`; [`emulator_child`]: the emulator process.
//! - [`report`]: the markdown table and the JSON document.

pub mod emulator_child;
pub mod export;
pub mod faults;
pub mod procfs;
pub mod report;
pub mod session;
pub mod str0m_peer;
pub mod ttff;
pub mod worker;
