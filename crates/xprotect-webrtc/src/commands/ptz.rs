//! `ptz`: one or more PTZ steps on a camera over the session's data channel (PROTOCOL.md §5.2).

use crate::cli::{PtzArgs, PtzDirectionArg};
use xprotect_client::commands::{Command, PtzDirection};

pub async fn run(args: PtzArgs) -> anyhow::Result<()> {
    let step = Command::PtzMove(direction(args.direction));
    let steps = vec![step; args.repeat as usize];
    super::data_channel::send_on_live_session(&args.connection, &args.stream, &args.channel, &steps)
        .await
}

/// The library's direction for the flag value.
pub fn direction(arg: PtzDirectionArg) -> PtzDirection {
    match arg {
        PtzDirectionArg::Up => PtzDirection::Up,
        PtzDirectionArg::Down => PtzDirection::Down,
        PtzDirectionArg::Left => PtzDirection::Left,
        PtzDirectionArg::Right => PtzDirection::Right,
        PtzDirectionArg::UpLeft => PtzDirection::UpLeft,
        PtzDirectionArg::UpRight => PtzDirection::UpRight,
        PtzDirectionArg::DownLeft => PtzDirection::DownLeft,
        PtzDirectionArg::DownRight => PtzDirection::DownRight,
        PtzDirectionArg::Home => PtzDirection::Home,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The flag spells every direction exactly as the wire does, so the help is the protocol.
    #[test]
    fn flag_names_are_the_wire_names() {
        for arg in PtzDirectionArg::value_variants() {
            let flag = arg
                .to_possible_value()
                .expect("no direction is hidden")
                .get_name()
                .to_owned();
            let wire = serde_json::to_value(direction(*arg)).unwrap();
            assert_eq!(wire, serde_json::Value::String(flag));
        }
    }
}
