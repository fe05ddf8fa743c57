//! The one-line progress display of `record` on a terminal: redrawn in place every second.
//!
//! Only ever drawn when stderr is a terminal (the caller checks `IsTerminal`): pipes, files and
//! tests get clean logs.

use std::io::Write;
use std::time::Duration;
use xprotect_client::diagnostics::StatsSnapshot;
use xprotect_proto::clock::format_rfc3339_millis;

/// Return to the line's start; the ANSI "erase to end of line" follows the text so a shorter
/// line leaves nothing of a longer one behind.
const REDRAW: &str = "\r";
const CLEAR_TO_EOL: &str = "\x1b[K";

/// The status line for `snapshot`, without control characters, e.g.
/// `00:01:05 | 1625 frames | 1.98 Mbit/s | 25.0 fps | frame 2025-01-15T12:01:05.040Z | lost 0 | reconnects 0`.
pub fn format(snapshot: &StatsSnapshot) -> String {
    let frame_time = snapshot
        .last_frame_time
        .map(format_rfc3339_millis)
        .unwrap_or_else(|| "-".to_owned());
    let mut line = format!(
        "{} | {} frames | {} | {:.1} fps | frame {} | lost {} | reconnects {}",
        format_elapsed(Duration::from_secs_f64(snapshot.elapsed_s.max(0.0))),
        snapshot.frames,
        format_bitrate(snapshot.bitrate_bps),
        snapshot.fps,
        frame_time,
        snapshot.packets_lost,
        snapshot.reconnect.reconnects,
    );
    if snapshot.warnings > 0 {
        line.push_str(&format!(" | warnings {}", snapshot.warnings));
    }
    line
}

/// `HH:MM:SS`, hours growing past 99 for week-long recordings.
pub fn format_elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Bits per second in the unit that keeps three significant digits readable.
pub fn format_bitrate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.0} kbit/s", bps / 1e3)
    } else {
        format!("{bps:.0} bit/s")
    }
}

/// Draws `line` over the previous one.
pub fn draw(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    write!(out, "{REDRAW}{line}{CLEAR_TO_EOL}")?;
    out.flush()
}

/// Erases the line, so the summary after it starts clean.
pub fn clear(out: &mut impl Write) -> std::io::Result<()> {
    write!(out, "{REDRAW}{CLEAR_TO_EOL}")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use xprotect_client::diagnostics::ReconnectCounters;

    fn snapshot() -> StatsSnapshot {
        StatsSnapshot {
            time: datetime!(2026-11-26 00:00 UTC),
            elapsed_s: 3725.4,
            is_final: false,
            frames: 93_135,
            keyframes: 3_726,
            bytes: 0,
            bitrate_bps: 1_984_000.0,
            fps: 25.0,
            last_frame_time: Some(datetime!(2025-01-15 12:01:05.04 UTC)),
            packets_lost: 3,
            reconnect: ReconnectCounters {
                sessions_started: 3,
                reconnects: 2,
                replacements: 0,
            },
            token_refreshes: 1,
            warnings: 0,
            session: None,
        }
    }

    #[test]
    fn the_line_shows_elapsed_frames_bitrate_frame_time_losses_and_reconnects() {
        assert_eq!(
            format(&snapshot()),
            "01:02:05 | 93135 frames | 1.98 Mbit/s | 25.0 fps | frame 2025-01-15T12:01:05.040Z \
             | lost 3 | reconnects 2"
        );
    }

    #[test]
    fn before_the_first_frame_and_with_warnings() {
        let mut early = snapshot();
        early.elapsed_s = 0.4;
        early.frames = 0;
        early.bitrate_bps = 0.0;
        early.fps = 0.0;
        early.last_frame_time = None;
        early.warnings = 2;
        assert_eq!(
            format(&early),
            "00:00:00 | 0 frames | 0 bit/s | 0.0 fps | frame - | lost 3 | reconnects 2 | warnings 2"
        );
    }

    #[test]
    fn units_and_long_runs() {
        assert_eq!(format_bitrate(512_300.0), "512 kbit/s");
        assert_eq!(format_bitrate(999.0), "999 bit/s");
        assert_eq!(
            format_elapsed(Duration::from_secs(5 * 86_400 + 61)),
            "120:01:01"
        );
    }

    #[test]
    fn drawing_returns_to_the_line_start_and_clears_the_rest() {
        let mut out = Vec::new();
        draw(&mut out, "abc").unwrap();
        clear(&mut out).unwrap();
        assert_eq!(out, b"\rabc\x1b[K\r\x1b[K");
    }
}
