//! Messages on the `commands` data channel (protocol `videoos-commands`), PROTOCOL.md §5.

use super::lenient::{self, JsonError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Label of the data channel the client opens.
pub const CHANNEL_LABEL: &str = "commands";
/// Its sub-protocol.
pub const CHANNEL_PROTOCOL: &str = "videoos-commands";

/// The nine PTZ step directions the sample offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PtzDirection {
    /// Tilt up.
    Up,
    /// Tilt down.
    Down,
    /// Pan left.
    Left,
    /// Pan right.
    Right,
    /// Up and left.
    UpLeft,
    /// Up and right.
    UpRight,
    /// Down and left.
    DownLeft,
    /// Down and right.
    DownRight,
    /// The home position.
    Home,
}

/// A command the client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `ptzMove`.
    PtzMove(PtzDirection),
    /// `setAux`: `auxNumber` is a string `"1"`–`"4"` in the sample.
    SetAux {
        /// Aux output number.
        number: u32,
        /// On or off.
        on: bool,
    },
}

/// Envelope of a command message (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommandEnvelope {
    /// `"ApiVersion":"1.0","type":"request"` (what the sample code sends).
    #[default]
    ApiVersion1,
    /// `"jsonrpc":"2.0","type":"request"` (what the 2025 R2 README shows).
    JsonRpc2,
}

/// Why a data-channel message is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not JSON or wrong types.
    #[error("{0}")]
    Json(#[from] JsonError),
    /// A method we do not know.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// A value out of range.
    #[error("bad value for `{field}`: {message}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

#[derive(Deserialize)]
struct RawCommand {
    #[serde(default)]
    method: String,
    #[serde(default)]
    params: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAux {
    #[serde(default, deserialize_with = "lenient::optional_bool_or_string")]
    on: Option<bool>,
    #[serde(default, deserialize_with = "lenient::optional_number_or_string")]
    aux_number: Option<f64>,
}

impl Command {
    /// Parse a message in either envelope (or none).
    pub fn parse(text: &str) -> Result<Self, CommandError> {
        let raw: RawCommand = lenient::from_str(text)?;
        match raw.method.to_ascii_lowercase().as_str() {
            "ptzmove" => {
                let direction = raw
                    .params
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("direction")))
                    .and_then(|(_, v)| v.as_str())
                    .ok_or(CommandError::BadValue {
                        field: "params.direction",
                        message: "missing".into(),
                    })?;
                let direction = PTZ_DIRECTIONS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(direction))
                    .map(|(_, d)| *d)
                    .ok_or_else(|| CommandError::BadValue {
                        field: "params.direction",
                        message: format!("`{direction}` is not one of up, down, left, right, upLeft, upRight, downLeft, downRight, home"),
                    })?;
                Ok(Command::PtzMove(direction))
            }
            "setaux" => {
                let aux: RawAux = lenient::from_value(raw.params)?;
                let on = aux.on.ok_or(CommandError::BadValue {
                    field: "params.on",
                    message: "missing".into(),
                })?;
                let number = aux
                    .aux_number
                    .filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 64.0)
                    .ok_or(CommandError::BadValue {
                        field: "params.auxNumber",
                        message: "must be a whole number from 1".into(),
                    })?;
                Ok(Command::SetAux {
                    number: number as u32,
                    on,
                })
            }
            other => Err(CommandError::UnknownMethod(
                other.chars().take(40).collect(),
            )),
        }
    }

    /// The text to send.
    pub fn to_text(&self, envelope: CommandEnvelope) -> String {
        let (method, params) = match self {
            Command::PtzMove(direction) => ("ptzMove", json!({"direction": direction})),
            Command::SetAux { number, on } => {
                ("setAux", json!({"on": on, "auxNumber": number.to_string()}))
            }
        };
        let mut message = json!({"type": "request", "method": method, "params": params});
        match envelope {
            CommandEnvelope::ApiVersion1 => message["ApiVersion"] = json!("1.0"),
            CommandEnvelope::JsonRpc2 => message["jsonrpc"] = json!("2.0"),
        }
        message.to_string()
    }
}

const PTZ_DIRECTIONS: [(&str, PtzDirection); 9] = [
    ("up", PtzDirection::Up),
    ("down", PtzDirection::Down),
    ("left", PtzDirection::Left),
    ("right", PtzDirection::Right),
    ("upLeft", PtzDirection::UpLeft),
    ("upRight", PtzDirection::UpRight),
    ("downLeft", PtzDirection::DownLeft),
    ("downRight", PtzDirection::DownRight),
    ("home", PtzDirection::Home),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_messages_parse() {
        let ptz = r#"{"ApiVersion":"1.0","type":"request","method":"ptzMove","params":{"direction":"upLeft"}}"#;
        assert_eq!(
            Command::parse(ptz).unwrap(),
            Command::PtzMove(PtzDirection::UpLeft)
        );
        let aux = r#"{"jsonrpc":"2.0","type":"request","method":"setAux","params":{"on":true,"auxNumber":"2"}}"#;
        assert_eq!(
            Command::parse(aux).unwrap(),
            Command::SetAux {
                number: 2,
                on: true
            }
        );
    }

    #[test]
    fn round_trip_and_errors() {
        for command in [
            Command::PtzMove(PtzDirection::Home),
            Command::SetAux {
                number: 4,
                on: false,
            },
        ] {
            for envelope in [CommandEnvelope::ApiVersion1, CommandEnvelope::JsonRpc2] {
                assert_eq!(Command::parse(&command.to_text(envelope)).unwrap(), command);
            }
        }
        assert!(matches!(
            Command::parse(r#"{"method":"zoom"}"#),
            Err(CommandError::UnknownMethod(_))
        ));
        assert!(
            Command::parse(r#"{"method":"ptzMove","params":{"direction":"sideways"}}"#).is_err()
        );
        assert!(Command::parse("not json").is_err());
    }
}
