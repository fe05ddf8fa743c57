//! PTZ and aux over a real WebRTC `commands` data channel: commands move the camera's shared
//! state, the journal says so, later frames carry it in their SEI stamp; a fixed camera rejects
//! moves; garbage is journaled and the session keeps streaming.

mod media_support;

use std::time::Duration;

use media_support::{Answerer, DtlsRole};
use tokio::sync::broadcast;
use uuid::Uuid;
use xprotect_emulator::camera::{FRONT_DOOR_ID, PARKING_LOT_ID, PtzState, split_annex_b};
use xprotect_emulator::journal::{JournalEntry, JournalEvent, Transport};
use xprotect_emulator::media::{MediaEvent, SessionOffer};
use xprotect_emulator::tokens::TokenOwner;
use xprotect_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use xprotect_proto::h264::sei::FrameStamp;
use xprotect_proto::wire::commands::{Command, CommandEnvelope, PtzDirection};
use xprotect_proto::wire::rest::SessionResponse;
use xprotect_proto::wire::{
    DeviceId, SdpKind, Secret, SessionDescription, SessionId, SessionParams,
};

const LIMIT: Duration = Duration::from_secs(20);

/// A connected session with its `commands` channel open, and the journal from before it.
struct Viewer {
    answerer: Answerer,
    session: SessionId,
    journal: broadcast::Receiver<JournalEntry>,
    /// Journal entries read so far.
    seen: Vec<JournalEvent>,
    /// The engine's events go to the journal; the answerer's driver wants a channel anyway.
    no_events: (
        tokio::sync::mpsc::Sender<MediaEvent>,
        tokio::sync::mpsc::Receiver<MediaEvent>,
    ),
}

impl Viewer {
    /// Signals a live session on `camera` through the emulator's shared signaling operations
    /// (what REST and WebSocket both call) and connects a str0m answerer to it.
    async fn connect(emulator: &RunningEmulator, camera: Uuid) -> Self {
        let state = emulator.state();
        let journal = emulator.journal();
        let owner = TokenOwner {
            user: "admin".into(),
            client_id: "VmsClient".into(),
        };
        let mut params = SessionParams::live(DeviceId(camera));
        params.include_audio = false;
        let record = state
            .create_session(
                &owner,
                Secret::new("token"),
                params,
                Transport::Rest,
                SessionResponse::default(),
            )
            .await
            .expect("session created");
        let offer = SessionOffer {
            offer_sdp: SessionDescription::from_json_string(&record.offer_json, SdpKind::Offer)
                .expect("offer JSON")
                .sdp,
            local_candidates: record.server_candidates.clone(),
            video: true,
            audio: false,
        };
        let (mut answerer, answer, candidate) = Answerer::answer(&offer, DtlsRole::Passive).await;
        state
            .apply_answer(
                "admin",
                record.id,
                &SessionDescription::answer(answer).to_json_string(),
                "answerSDP",
                Transport::Rest,
            )
            .await
            .expect("answer applied");
        state
            .add_client_candidate("admin", record.id, &candidate, None)
            .await
            .expect("candidate added");
        answerer.open_commands_channel();
        let mut viewer = Self {
            answerer,
            session: record.id,
            journal,
            seen: Vec::new(),
            no_events: tokio::sync::mpsc::channel(1),
        };
        viewer
            .run_until(|a, _| a.channel_open && !a.frames.is_empty())
            .await;
        viewer
    }

    /// Drives the answerer until the last picture received carries `wanted` as its PTZ state.
    async fn run_until_picture_shows(&mut self, wanted: (f32, f32, Vec<bool>)) {
        self.run_until(|a, _| {
            a.frames
                .last()
                .and_then(|f| stamp(&f.data))
                .and_then(|s| ptz_of(&s))
                == Some(wanted.clone())
        })
        .await;
    }

    /// Drives the answerer (reading the journal as it goes) until `done`.
    async fn run_until(&mut self, mut done: impl FnMut(&Answerer, &[JournalEvent]) -> bool) {
        let journal = &mut self.journal;
        let seen = &mut self.seen;
        let mut media_events = Vec::new();
        self.answerer
            .run_until(&mut self.no_events.1, &mut media_events, LIMIT, |a, _| {
                loop {
                    match journal.try_recv() {
                        Ok(entry) => seen.push(entry.event),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            panic!("test fell {n} journal entries behind")
                        }
                        Err(_) => break,
                    }
                }
                done(a, seen)
            })
            .await;
    }

    fn send(&mut self, command: &Command) {
        self.answerer
            .send_text(&command.to_text(CommandEnvelope::ApiVersion1));
    }

    /// Journal entries of this session's commands (moves, aux, rejections, messages).
    fn count(&self, pred: impl Fn(&JournalEvent) -> bool) -> usize {
        self.seen.iter().filter(|e| pred(e)).count()
    }
}

/// The default emulator, and a viewer of `camera` connected to it.
async fn emulator_and_viewer(camera: Uuid) -> (RunningEmulator, Viewer) {
    let emulator = Emulator::start(EmulatorConfig::ephemeral())
        .await
        .expect("emulator");
    let viewer = Viewer::connect(&emulator, camera).await;
    (emulator, viewer)
}

/// The SEI stamp of a received access unit.
fn stamp(frame: &[u8]) -> Option<FrameStamp> {
    split_annex_b(frame)
        .find(|n| n.first().is_some_and(|h| h & 0x1F == 6))
        .and_then(FrameStamp::from_sei_nal)
}

fn ptz_of(stamp: &FrameStamp) -> Option<(f32, f32, Vec<bool>)> {
    Some((stamp.pan?, stamp.tilt?, stamp.aux.clone()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptz_and_aux_move_the_shared_camera_state_and_reach_the_sei() {
    let (emulator, mut viewer) = emulator_and_viewer(FRONT_DOOR_ID).await;
    let session = viewer.session.to_string();
    let camera = FRONT_DOOR_ID.to_string();

    // Live frames carry the home state before any command.
    let first = stamp(&viewer.answerer.frames[0].data).expect("stamped frame");
    assert_eq!(
        ptz_of(&first),
        Some((0.0, 0.0, vec![false; 4])),
        "{first:?}"
    );

    for command in [
        Command::PtzMove(PtzDirection::Right),
        Command::PtzMove(PtzDirection::Right),
        Command::PtzMove(PtzDirection::UpLeft),
        Command::PtzMove(PtzDirection::Up),
        Command::SetAux {
            number: 2,
            on: true,
        },
    ] {
        viewer.send(&command);
    }
    viewer
        .run_until(|_, seen| {
            seen.iter()
                .filter(|e| {
                    matches!(
                        e,
                        JournalEvent::PtzMoved { .. } | JournalEvent::AuxSet { .. }
                    )
                })
                .count()
                == 5
        })
        .await;
    let moves: Vec<(String, i32, i32)> = viewer
        .seen
        .iter()
        .filter_map(|e| match e {
            JournalEvent::PtzMoved {
                session: s,
                camera: c,
                direction,
                pan,
                tilt,
            } if *s == session && *c == camera => Some((direction.clone(), *pan, *tilt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            ("right".to_owned(), 10, 0),
            ("right".to_owned(), 20, 0),
            ("upLeft".to_owned(), 10, 10),
            ("up".to_owned(), 10, 20),
        ]
    );
    assert!(viewer.seen.contains(&JournalEvent::AuxSet {
        session: session.clone(),
        camera: camera.clone(),
        aux: 2,
        on: true,
    }));
    let expected = PtzState {
        pan: 10,
        tilt: 20,
        aux: [false, true, false, false],
    };
    assert_eq!(emulator.ptz_state(FRONT_DOOR_ID), Some(expected));
    assert_eq!(emulator.ptz_state(Uuid::nil()), None);

    // Pictures encoded from now on carry the new state.
    let wanted = (10.0, 20.0, vec![false, true, false, false]);
    viewer.run_until_picture_shows(wanted.clone()).await;

    // The state belongs to the camera: a second viewer starts with it, and its `home` moves the
    // picture the first viewer sees too.
    let mut second = Viewer::connect(&emulator, FRONT_DOOR_ID).await;
    let joined = stamp(&second.answerer.frames[0].data).expect("stamped frame");
    assert_eq!(ptz_of(&joined), Some(wanted));
    second.send(&Command::PtzMove(PtzDirection::Home));
    second
        .run_until(|_, seen| {
            seen.iter().any(
                |e| matches!(e, JournalEvent::PtzMoved { direction, .. } if direction == "home"),
            )
        })
        .await;
    viewer
        .run_until_picture_shows((0.0, 0.0, vec![false, true, false, false]))
        .await;
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_camera_rejects_moves_but_switches_aux() {
    let (emulator, mut viewer) = emulator_and_viewer(PARKING_LOT_ID).await;
    let session = viewer.session.to_string();
    viewer.send(&Command::PtzMove(PtzDirection::Left));
    viewer.send(&Command::SetAux {
        number: 1,
        on: true,
    });
    viewer
        .run_until(|_, seen| {
            seen.iter()
                .any(|e| matches!(e, JournalEvent::AuxSet { .. }))
        })
        .await;
    assert!(
        viewer.seen.contains(&JournalEvent::CommandRejected {
            session: session.clone(),
            camera: Some(PARKING_LOT_ID.to_string()),
            reason: "the camera has no PTZ".to_owned(),
        }),
        "{:#?}",
        viewer.seen
    );
    assert_eq!(
        viewer.count(|e| matches!(e, JournalEvent::PtzMoved { .. })),
        0
    );
    assert_eq!(
        emulator.ptz_state(PARKING_LOT_ID),
        Some(PtzState {
            pan: 0,
            tilt: 0,
            aux: [true, false, false, false],
        })
    );
    // The other camera was not touched.
    assert_eq!(emulator.ptz_state(FRONT_DOOR_ID), Some(PtzState::default()));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_commands_channel_is_journaled_and_streaming_goes_on() {
    let (emulator, mut viewer) = emulator_and_viewer(FRONT_DOOR_ID).await;
    let garbage = [
        "not json at all",
        "{\"method\":\"ptzMove\",\"params\":{\"direction\":\"sideways\"}}",
        "{\"method\":\"reboot\"}",
        "{\"method\":\"setAux\",\"params\":{\"on\":true,\"auxNumber\":\"0\"}}",
        "[1,2,3]",
    ];
    for text in garbage {
        viewer.answerer.send_text(text);
    }
    // An aux output the camera lacks parses, and is rejected.
    viewer.send(&Command::SetAux {
        number: 9,
        on: true,
    });
    let frames_before = viewer.answerer.frames.len();
    viewer
        .run_until(|a, seen| {
            let messages = seen
                .iter()
                .filter(|e| matches!(e, JournalEvent::DataChannelMessage { .. }))
                .count();
            messages == garbage.len() + 1 && a.frames.len() >= frames_before + 25
        })
        .await;
    let errors = viewer.count(|e| {
        matches!(
            e,
            JournalEvent::DataChannelMessage {
                error: Some(_),
                command: None,
                ..
            }
        )
    });
    assert_eq!(errors, garbage.len(), "{:#?}", viewer.seen);
    assert!(
        viewer.seen.iter().any(|e| matches!(
            e,
            JournalEvent::CommandRejected { reason, .. } if reason.contains("no aux output 9")
        )),
        "{:#?}",
        viewer.seen
    );
    assert_eq!(
        viewer.count(|e| matches!(e, JournalEvent::Closed { .. })),
        0,
        "the session survived"
    );
    assert_eq!(emulator.ptz_state(FRONT_DOOR_ID), Some(PtzState::default()));

    // And the channel still works.
    viewer.send(&Command::PtzMove(PtzDirection::Down));
    viewer
        .run_until(|_, seen| {
            seen.iter()
                .any(|e| matches!(e, JournalEvent::PtzMoved { tilt: -10, .. }))
        })
        .await;
    emulator.shutdown().await;
}
