//! `record --commands FILE|-`: PTZ/aux commands read as JSON lines and sent on the recording
//! session's data channel while it records.
//!
//! ```text
//!  reader thread (FILE or stdin, line by line) ──mpsc──▶ feed task: parse ─▶ CommandSender
//!                                                            └─ bad line: warning on stderr, skipped
//! ```
//!
//! A line is one of
//! - `{"ptz":"left"}`: a step in a direction as the protocol spells it (any case);
//! - `{"aux":2,"on":true}`: aux output 2 (a number or a numeric string) on or off;
//! - either of those with `"envelope":"jsonrpc"` (or `"api-version"`, the default);
//! - a wire message with a `"method"` (`{"ApiVersion":"1.0",…,"method":"ptzMove",…}`), checked
//!   and then sent exactly as written;
//! - blank, or starting with `#`: skipped.
//!
//! The reader is a plain thread because reading stdin cannot be cancelled: a tokio blocking
//! read would hold up the runtime's shutdown until the user pressed Enter.

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xprotect_client::commands::{
    Command, CommandEnvelope, CommandSendError, CommandSender, MAX_AUX_NUMBER,
};

/// Lines read ahead of sending. Sending waits for the channel to open, so a piped file is read
/// this far ahead and then the thread waits; memory stays bounded whatever the input.
const LINE_CHANNEL_CAPACITY: usize = 64;

/// Longest line accepted; a command is well under 200 bytes, so this only stops a runaway input
/// (e.g. a binary file by mistake) from being buffered whole.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// One command to send, from one line.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLine {
    /// What the line asks for.
    pub command: Command,
    /// The message to send.
    pub text: String,
}

/// The shorthand forms; anything else is a typo worth reporting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Shorthand {
    ptz: Option<String>,
    aux: Option<Value>,
    on: Option<bool>,
    envelope: Option<String>,
}

const EXPECTED: &str =
    r#"expected {"ptz":"left"}, {"aux":2,"on":true} or a wire message with a "method""#;

/// Parses one line: `Ok(None)` for blank and `#` lines, `Err` with the reason for a bad one.
pub fn parse_line(line: &str) -> Result<Option<CommandLine>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let Some(object) = value.as_object() else {
        return Err(format!("not a JSON object; {EXPECTED}"));
    };
    if object.contains_key("method") {
        let command = Command::parse(line).map_err(|error| format!("not a command: {error}"))?;
        return Ok(Some(CommandLine {
            command,
            text: line.to_owned(),
        }));
    }
    let shorthand: Shorthand =
        serde_json::from_value(value).map_err(|error| format!("{error}; {EXPECTED}"))?;
    let envelope = match shorthand.envelope.as_deref() {
        None => CommandEnvelope::default(),
        Some(name) => envelope_named(name)?,
    };
    let command = match (shorthand.ptz, shorthand.aux, shorthand.on) {
        (Some(direction), None, None) => ptz_command(&direction)?,
        (None, Some(number), Some(on)) => Command::SetAux {
            number: aux_number(&number)?,
            on,
        },
        (None, Some(_), None) => return Err(r#""aux" needs "on": true or false"#.into()),
        (Some(_), Some(_), _) => return Err(r#"one command per line: "ptz" or "aux""#.into()),
        (Some(_), None, Some(_)) => return Err(r#""on" belongs to "aux", not "ptz""#.into()),
        (None, None, _) => return Err(EXPECTED.into()),
    };
    let text = command.to_text(envelope);
    Ok(Some(CommandLine { command, text }))
}

fn envelope_named(name: &str) -> Result<CommandEnvelope, String> {
    match name.to_ascii_lowercase().as_str() {
        "api-version" | "apiversion" => Ok(CommandEnvelope::ApiVersion1),
        "jsonrpc" => Ok(CommandEnvelope::JsonRpc2),
        _ => Err(format!(
            r#""envelope": `{name}` is neither "api-version" nor "jsonrpc""#
        )),
    }
}

/// The direction through the protocol core's own (case-insensitive) parser, so that this file
/// and the emulator agree on what a direction is.
fn ptz_command(direction: &str) -> Result<Command, String> {
    let message = json!({"method": "ptzMove", "params": {"direction": direction}});
    Command::parse(&message.to_string()).map_err(|_| {
        format!(
            r#""ptz": `{direction}` is not one of up, down, left, right, upLeft, upRight, downLeft, downRight, home"#
        )
    })
}

fn aux_number(value: &Value) -> Result<u32, String> {
    let number = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    number
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_AUX_NUMBER).contains(n))
        .ok_or_else(|| format!(r#""aux": {value} is not a number from 1 to {MAX_AUX_NUMBER}"#))
}

/// Where the lines come from.
pub enum CommandSource {
    /// Standard input (`-`).
    Stdin,
    /// A file, opened before anything else happens so a wrong path fails at once.
    File(File),
}

impl CommandSource {
    /// `-` for stdin, else a file path.
    pub fn open(path: &str) -> anyhow::Result<Self> {
        if path == "-" {
            return Ok(Self::Stdin);
        }
        File::open(path)
            .map(Self::File)
            .with_context(|| format!("--commands: cannot open {path}"))
    }

    /// Starts reading and sending; the task ends when the input does or the session ended.
    /// Abort it when the recording stops.
    pub fn spawn(self, sender: CommandSender) -> JoinHandle<()> {
        let (lines_tx, lines) = mpsc::channel(LINE_CHANNEL_CAPACITY);
        // Detached on purpose: blocked on a terminal it cannot be joined, and the process exit
        // ends it.
        let reader = std::thread::Builder::new()
            .name("commands-reader".into())
            .spawn(move || match self {
                Self::Stdin => read_lines(std::io::stdin().lock(), &lines_tx),
                Self::File(file) => read_lines(BufReader::new(file), &lines_tx),
            });
        if let Err(error) = reader {
            warn(format_args!("--commands: cannot start the reader: {error}"));
        }
        tokio::spawn(feed(lines, sender))
    }
}

/// What the reader found at one line number (counted from 1).
#[derive(Debug, PartialEq)]
enum Read {
    /// The line's bytes (UTF-8 is checked per line, so one bad line does not end the input).
    Line(Vec<u8>),
    /// Longer than [`MAX_LINE_BYTES`]; skipped.
    TooLong,
    /// Reading failed; nothing follows.
    Failed(String),
}

type ReadLine = (usize, Read);

/// Reads raw lines until the end of the input, an error, or the feed task is gone.
fn read_lines(mut input: impl BufRead, lines: &mpsc::Sender<ReadLine>) {
    for number in 1.. {
        let mut line = Vec::new();
        let read =
            std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line);
        let item = match read {
            Ok(0) => return,
            // `take` stopped it short of its newline.
            Ok(_) if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') => {
                match skip_line(&mut input) {
                    Ok(()) => Read::TooLong,
                    Err(error) => Read::Failed(error.to_string()),
                }
            }
            Ok(_) => Read::Line(line),
            Err(error) => Read::Failed(error.to_string()),
        };
        let stop = matches!(item, Read::Failed(_));
        // The feed task is gone once the recording stopped: nothing left to do.
        if lines.blocking_send((number, item)).is_err() || stop {
            return;
        }
    }
}

/// Consumes the rest of an over-long line without keeping it.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

/// Parses and sends each line in order; bad lines are reported and skipped.
async fn feed(mut lines: mpsc::Receiver<ReadLine>, sender: CommandSender) {
    while let Some((number, read)) = lines.recv().await {
        let parsed = match read {
            Read::Line(bytes) => match String::from_utf8(bytes) {
                Ok(text) => parse_line(&text),
                Err(_) => Err("not UTF-8 text".to_owned()),
            },
            Read::TooLong => Err(format!("longer than {MAX_LINE_BYTES} bytes")),
            Read::Failed(error) => {
                warn(format_args!(
                    "--commands: reading stopped at line {number}: {error}"
                ));
                return;
            }
        };
        let line = match parsed {
            Ok(Some(line)) => line,
            Ok(None) => continue,
            Err(reason) => {
                warn(format_args!("--commands line {number} skipped: {reason}"));
                continue;
            }
        };
        match sender.send_text(line.text.clone()).await {
            Ok(()) => tracing::info!(line = number, "command sent: {}", line.text),
            Err(
                error @ (CommandSendError::ChannelClosed | CommandSendError::ChannelNeverOpened(_)),
            ) => {
                warn(format_args!(
                    "--commands line {number} not sent, and no further ones: {error}"
                ));
                return;
            }
            Err(error) => warn(format_args!("--commands line {number} not sent: {error}")),
        }
    }
}

/// A user-facing warning: on stderr whatever the log level, since the user asked for it.
fn warn(message: std::fmt::Arguments<'_>) {
    eprintln!("xprotect-webrtc: warning: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use xprotect_client::commands::PtzDirection;

    fn sent(line: &str) -> (Command, Value) {
        let parsed = parse_line(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .unwrap_or_else(|| panic!("{line}: skipped"));
        (parsed.command, serde_json::from_str(&parsed.text).unwrap())
    }

    #[test]
    fn ptz_shorthand_in_any_case_and_both_envelopes() {
        let (command, text) = sent(r#"{"ptz":"left"}"#);
        assert_eq!(command, Command::PtzMove(PtzDirection::Left));
        assert_eq!(text["ApiVersion"], "1.0");
        assert_eq!(text["type"], "request");
        assert_eq!(text["method"], "ptzMove");
        assert_eq!(text["params"]["direction"], "left");

        let (command, text) = sent(r#" {"ptz":"DOWNRIGHT","envelope":"jsonrpc"} "#);
        assert_eq!(command, Command::PtzMove(PtzDirection::DownRight));
        assert_eq!(text["jsonrpc"], "2.0");
        assert!(text.get("ApiVersion").is_none());
        assert_eq!(text["params"]["direction"], "downRight");
    }

    #[test]
    fn aux_shorthand_takes_numbers_and_numeric_strings() {
        for line in [r#"{"aux":2,"on":true}"#, r#"{"aux":"2","on":true}"#] {
            let (command, text) = sent(line);
            assert_eq!(
                command,
                Command::SetAux {
                    number: 2,
                    on: true
                }
            );
            // On the wire the number is a string, as the sample sends it.
            assert_eq!(text["params"]["auxNumber"], "2");
            assert_eq!(text["params"]["on"], true);
        }
        let (command, _) = sent(r#"{"aux":4,"on":false,"envelope":"api-version"}"#);
        assert_eq!(
            command,
            Command::SetAux {
                number: 4,
                on: false
            }
        );
    }

    #[test]
    fn wire_messages_are_checked_and_sent_as_written() {
        let wire = r#"{"jsonrpc":"2.0","type":"request","method":"setAux","params":{"on":true,"auxNumber":"3"}}"#;
        let parsed = parse_line(wire).unwrap().unwrap();
        assert_eq!(parsed.text, wire);
        assert_eq!(
            parsed.command,
            Command::SetAux {
                number: 3,
                on: true
            }
        );
        let error = parse_line(r#"{"method":"zoomIn"}"#).unwrap_err();
        assert!(error.contains("unknown method"), "{error}");
    }

    #[test]
    fn blank_and_comment_lines_are_skipped() {
        for line in ["", "   ", "\r", "# pan a bit", "  # indented comment"] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, hint) in [
            ("ptz left", "not JSON"),
            (r#"["ptz","left"]"#, "not a JSON object"),
            (r#"{"ptz":"sideways"}"#, "`sideways` is not one of"),
            (r#"{"ptz":7}"#, "invalid type"),
            (r#"{"aux":2}"#, r#"needs "on""#),
            (r#"{"aux":0,"on":true}"#, "from 1 to 64"),
            (r#"{"aux":65,"on":true}"#, "from 1 to 64"),
            (r#"{"aux":"two","on":true}"#, "from 1 to 64"),
            (r#"{"aux":2,"on":"yes"}"#, "invalid type"),
            (
                r#"{"ptz":"left","aux":1,"on":true}"#,
                "one command per line",
            ),
            (r#"{"ptz":"left","on":true}"#, r#""on" belongs to "aux""#),
            (r#"{"PTZ":"left"}"#, "unknown field"),
            (r#"{}"#, "expected"),
            (r#"{"ptz":"left","envelope":"soap"}"#, "neither"),
        ] {
            let error = parse_line(line).unwrap_err();
            assert!(error.contains(hint), "{line}: {error}");
        }
    }

    #[test]
    fn the_reader_numbers_lines_and_survives_bad_utf8_and_long_lines() {
        let mut input = b"{\"ptz\":\"up\"}\n\xff\xfe\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES * 2));
        input.extend(b"\n{\"ptz\":\"home\"}");
        let (lines_tx, mut lines) = mpsc::channel(8);
        read_lines(&input[..], &lines_tx);
        drop(lines_tx);
        let mut read = Vec::new();
        while let Ok(item) = lines.try_recv() {
            read.push(item);
        }
        assert_eq!(
            read,
            vec![
                (1, Read::Line(b"{\"ptz\":\"up\"}\n".to_vec())),
                (2, Read::Line(b"\xff\xfe\n".to_vec())),
                (3, Read::TooLong),
                (4, Read::Line(b"{\"ptz\":\"home\"}".to_vec())),
            ]
        );
    }
}
