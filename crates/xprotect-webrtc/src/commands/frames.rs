//! `frames`: read the frame times back out of a recording.

use crate::cli::FramesArgs;
use anyhow::Context;
use std::io::Write;
use xprotect_proto::clock::format_rfc3339_millis;

pub fn run(args: FramesArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let samples = xprotect_mp4::read_frame_times(&bytes)
        .with_context(|| format!("{} is not an MP4 written by this tool", args.file.display()))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for sample in samples {
        let time = sample
            .wall_clock
            .map(|w| format_rfc3339_millis(time::OffsetDateTime::from(w.to_system_time())));
        let line = serde_json::json!({
            "track": sample.track_id,
            "type": sample.kind.map(|k| format!("{k:?}").to_lowercase()),
            "time": time,
            "media_ms": sample.media_time_micros() / 1000,
            "keyframe": sample.keyframe,
            "bytes": sample.size,
        });
        if writeln!(out, "{line}").is_err() {
            return Ok(()); // the reader went away (| head)
        }
    }
    let _ = out.flush();
    Ok(())
}
