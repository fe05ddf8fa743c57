//! `cameras`: list the gateway's cameras with their streams, PTZ flag and microphone, from the
//! Config API (PROTOCOL.md §11).

use crate::cli::CamerasArgs;
use crate::settings;
use anyhow::Context;
use serde_json::json;
use std::io::Write;
use xprotect_client::config_api::{CameraInfo, ConfigApi};
use xprotect_client::login::TokenSource;

pub async fn run(args: CamerasArgs) -> anyhow::Result<()> {
    let (gateway, credentials) = settings::connection(&args.connection)?;
    let tokens = TokenSource::login(gateway.clone(), credentials)
        .await
        .context("login failed")?;
    let cameras = ConfigApi::new(&gateway, &tokens)
        .inventory()
        .await
        .context("cannot list the cameras")?;
    let text = if args.json {
        json_lines(&cameras)
    } else {
        table(&cameras)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // The reader went away (e.g. `| head`): not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// One JSON object per camera and line.
fn json_lines(cameras: &[CameraInfo]) -> String {
    cameras
        .iter()
        .map(|info| {
            let streams: Vec<_> = info
                .streams
                .iter()
                .map(|s| {
                    json!({
                        "name": s.label(),
                        "streamId": s.stream_reference_id,
                        "liveDefault": s.live_default,
                        "defaultPlayback": s.default_playback,
                    })
                })
                .collect();
            let line = json!({
                "id": info.camera.id.to_string(),
                "name": info.camera.label(),
                "enabled": info.camera.enabled,
                "ptz": info.camera.ptz_enabled,
                "microphone": info.microphone.as_ref().map(|m| json!({
                    "id": m.id.to_string(),
                    "name": m.label(),
                })),
                "streams": streams,
            });
            format!("{line}\n")
        })
        .collect()
}

/// A table; each stream on its own line, `*` marking the live default.
fn table(cameras: &[CameraInfo]) -> String {
    if cameras.is_empty() {
        return "no cameras (or none this user may see)\n".to_owned();
    }
    let rows: Vec<[String; 4]> = cameras
        .iter()
        .map(|info| {
            [
                info.camera.id.to_string(),
                info.camera.label(),
                match info.camera.ptz_enabled {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "no".to_owned(),
                    None => "unknown".to_owned(),
                },
                info.microphone
                    .as_ref()
                    .map(|m| m.label())
                    .unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let headers = ["ID", "NAME", "PTZ", "MICROPHONE"];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let pad = |cells: &[String], out: &mut String| {
        for (cell, width) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:<width$}  "));
        }
    };
    let mut out = String::new();
    pad(&headers.map(str::to_owned), &mut out);
    out.push_str("STREAMS (* live default)\n");
    let indent: usize = widths.iter().map(|w| w + 2).sum();
    for (info, row) in cameras.iter().zip(&rows) {
        pad(row, &mut out);
        if info.streams.is_empty() {
            out.push_str("-\n");
        }
        for (i, stream) in info.streams.iter().enumerate() {
            if i > 0 {
                out.push_str(&" ".repeat(indent));
            }
            let mark = if stream.live_default { '*' } else { ' ' };
            out.push_str(&format!(
                "{mark} {}  {}\n",
                stream.stream_reference_id,
                stream.label()
            ));
        }
    }
    out
}
