//! `aux`: switch a camera's aux output on or off over the session's data channel
//! (PROTOCOL.md §5.3).

use crate::cli::AuxArgs;
use xprotect_client::commands::Command;

pub async fn run(args: AuxArgs) -> anyhow::Result<()> {
    // clap guarantees exactly one of --on and --off.
    let command = Command::SetAux {
        number: args.number,
        on: args.on,
    };
    super::data_channel::send_on_live_session(
        &args.connection,
        &args.stream,
        &args.channel,
        &[command],
    )
    .await
}
