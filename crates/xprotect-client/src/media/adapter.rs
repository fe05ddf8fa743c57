//! The `webrtc` event handler: a dumb adapter that forwards every callback into the driver's
//! channel and keeps no state of its own.

use std::sync::Arc;

use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

/// Capacity of the adapter → driver channel. It carries lifecycle events only (a handful of
/// state changes, one message per local candidate, one per track), so 64 holds a whole
/// session's worth even before the driver starts reading; RTP does not pass through here.
pub(crate) const ADAPTER_CHANNEL_CAPACITY: usize = 64;

/// A callback from `webrtc`, as a message.
pub(crate) enum StackEvent {
    /// A local candidate was gathered.
    LocalCandidate(RTCPeerConnectionIceEvent),
    /// Gathering reached `complete`.
    GatheringComplete,
    /// ICE connection state change.
    IceState(RTCIceConnectionState),
    /// Aggregate connection state change.
    ConnectionState(RTCPeerConnectionState),
    /// A remote track started.
    Track(Arc<dyn TrackRemote>),
}

/// Forwards `webrtc`'s callbacks into the driver's channel.
///
/// The callbacks run on `webrtc`'s own driver task, so they only enqueue. The channel is
/// bounded and drained continuously by our driver; should it ever be full, waiting here
/// briefly is the right back-pressure for events that must not be lost.
pub(crate) struct ForwardingHandler {
    tx: mpsc::Sender<StackEvent>,
}

impl ForwardingHandler {
    pub(crate) fn new(tx: mpsc::Sender<StackEvent>) -> Self {
        Self { tx }
    }

    async fn forward(&self, event: StackEvent) {
        // A closed receiver means our driver is gone (peer closed); nothing is left to tell.
        let _ = self.tx.send(event).await;
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ForwardingHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        self.forward(StackEvent::LocalCandidate(event)).await;
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.forward(StackEvent::GatheringComplete).await;
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.forward(StackEvent::IceState(state)).await;
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.forward(StackEvent::ConnectionState(state)).await;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.forward(StackEvent::Track(track)).await;
    }
}
