//! `view`: serve the web viewer and the same-origin proxy to one gateway until Ctrl-C.

use crate::cli::ViewArgs;
use anyhow::Context;
use xprotect_client::tls::TlsOptions;
use xprotect_viewer::ViewerConfig;

pub async fn run(args: ViewArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {} lets anyone who reaches it use this proxy to {} \
             (with their own credentials); prefer a loopback address",
            args.listen, args.gateway
        );
    }
    let mut config = ViewerConfig::new(args.gateway.clone());
    config.listen = args.listen;
    config.tls = TlsOptions {
        ca_cert: args.ca_cert,
        danger_accept_invalid_certs: args.insecure,
    };
    let viewer = xprotect_viewer::start(config)
        .await
        .context("cannot start the viewer")?;
    println!("viewer for {} at {}", args.gateway, viewer.url());
    println!("press Ctrl-C to stop");
    super::interrupted().await;
    viewer.shutdown().await;
    Ok(())
}
