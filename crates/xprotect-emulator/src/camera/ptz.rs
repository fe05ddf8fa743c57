//! A camera's emulated pan/tilt head and aux outputs, moved by `commands` data-channel messages
//! (PROTOCOL.md §5).
//!
//! There is one [`PtzControl`] per camera, shared by every stream and every session of that
//! camera: a `ptzMove` from one viewer moves the picture all viewers see, as on a real camera.
//! The live encoder reads a [`PtzState`] snapshot for each picture (to shift the scene, print the
//! state and stamp it into the SEI); playback pictures are recordings and carry none.

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use xprotect_proto::wire::commands::{Command, PtzDirection};

/// Degrees the head turns per `ptzMove` step, in pan and/or tilt.
pub const PTZ_STEP_DEGREES: i32 = 10;
/// Pan limit either side of home, degrees.
pub const PAN_LIMIT_DEGREES: i32 = 180;
/// Tilt limit above and below home, degrees.
pub const TILT_LIMIT_DEGREES: i32 = 90;
/// Aux outputs a camera has, numbered from 1.
pub const AUX_OUTPUTS: usize = 4;

/// Where the head points and which aux outputs are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PtzState {
    /// Pan, degrees from home, positive to the right, in `-180..=180`.
    pub pan: i32,
    /// Tilt, degrees from home, positive up, in `-90..=90`.
    pub tilt: i32,
    /// Aux outputs 1..=4 (index 0 is output 1), on = `true`.
    pub aux: [bool; AUX_OUTPUTS],
}

impl PtzState {
    /// The state after one step in `direction` (`Home` returns to 0, 0); stops at the limits.
    pub fn moved(self, direction: PtzDirection) -> Self {
        let (dpan, dtilt) = match direction {
            PtzDirection::Up => (0, 1),
            PtzDirection::Down => (0, -1),
            PtzDirection::Left => (-1, 0),
            PtzDirection::Right => (1, 0),
            PtzDirection::UpLeft => (-1, 1),
            PtzDirection::UpRight => (1, 1),
            PtzDirection::DownLeft => (-1, -1),
            PtzDirection::DownRight => (1, -1),
            PtzDirection::Home => {
                return Self {
                    pan: 0,
                    tilt: 0,
                    ..self
                };
            }
        };
        Self {
            pan: (self.pan + dpan * PTZ_STEP_DEGREES).clamp(-PAN_LIMIT_DEGREES, PAN_LIMIT_DEGREES),
            tilt: (self.tilt + dtilt * PTZ_STEP_DEGREES)
                .clamp(-TILT_LIMIT_DEGREES, TILT_LIMIT_DEGREES),
            ..self
        }
    }

    /// The state with aux output `number` (1-based) switched; `None` for outputs the camera
    /// does not have.
    pub fn with_aux(self, number: u32, on: bool) -> Option<Self> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        let mut next = self;
        *next.aux.get_mut(index)? = on;
        Some(next)
    }

    /// The overlay line, e.g. `PTZ pan 20 tilt -10  AUX 1:on 2:off 3:off 4:off`.
    pub fn overlay_line(&self) -> String {
        let aux: Vec<String> = self
            .aux
            .iter()
            .enumerate()
            .map(|(i, on)| format!("{}:{}", i + 1, if *on { "on" } else { "off" }))
            .collect();
        format!(
            "PTZ pan {} tilt {}  AUX {}",
            self.pan,
            self.tilt,
            aux.join(" ")
        )
    }
}

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtzOutcome {
    /// The head moved (or stayed at a limit).
    Moved {
        /// The direction asked for.
        direction: PtzDirection,
        /// The state afterwards.
        state: PtzState,
    },
    /// An aux output was switched.
    AuxSet {
        /// The output, 1-based.
        aux: u32,
        /// On or off.
        on: bool,
        /// The state afterwards.
        state: PtzState,
    },
}

/// Why a command was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PtzRejection {
    /// `ptzMove` to a camera whose configuration says it has no PTZ (`ptzEnabled: false`).
    #[error("the camera has no PTZ")]
    NoPtz,
    /// `setAux` for an output the camera does not have.
    #[error("the camera has no aux output {0} (it has 1 to {AUX_OUTPUTS})")]
    NoSuchAux(u32),
    /// The session's device is not one of the emulator's cameras (e.g. a microphone).
    #[error("the session's device is not a camera")]
    NotACamera,
}

/// One camera's PTZ/aux state, shared by its streams and sessions.
#[derive(Debug, Default)]
pub struct PtzControl {
    // Held only to copy or replace a few bytes; never across anything that blocks.
    state: Mutex<PtzState>,
}

impl PtzControl {
    /// The current state.
    pub fn state(&self) -> PtzState {
        *self.lock()
    }

    /// Applies `command`. Aux outputs work on every camera; moves need `ptz_enabled` (the
    /// camera's `ptzEnabled` in the configuration). A rejected command changes nothing.
    pub fn apply(&self, command: &Command, ptz_enabled: bool) -> Result<PtzOutcome, PtzRejection> {
        let mut state = self.lock();
        match *command {
            Command::PtzMove(direction) => {
                if !ptz_enabled {
                    return Err(PtzRejection::NoPtz);
                }
                *state = state.moved(direction);
                Ok(PtzOutcome::Moved {
                    direction,
                    state: *state,
                })
            }
            Command::SetAux { number, on } => {
                *state = state
                    .with_aux(number, on)
                    .ok_or(PtzRejection::NoSuchAux(number))?;
                Ok(PtzOutcome::AuxSet {
                    aux: number,
                    on,
                    state: *state,
                })
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, PtzState> {
        // A plain Copy value: a panic elsewhere cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_move_pan_and_tilt_and_stop_at_the_limits() {
        let s = PtzState::default();
        assert_eq!(
            (
                s.moved(PtzDirection::Right).pan,
                s.moved(PtzDirection::Right).tilt
            ),
            (10, 0)
        );
        let s = s.moved(PtzDirection::UpLeft).moved(PtzDirection::UpLeft);
        assert_eq!((s.pan, s.tilt), (-20, 20));
        let s = s.moved(PtzDirection::DownRight);
        assert_eq!((s.pan, s.tilt), (-10, 10));
        let home = s.with_aux(2, true).unwrap().moved(PtzDirection::Home);
        assert_eq!(
            (home.pan, home.tilt, home.aux),
            (0, 0, [false, true, false, false])
        );

        let mut s = PtzState::default();
        for _ in 0..30 {
            s = s.moved(PtzDirection::DownLeft);
        }
        assert_eq!((s.pan, s.tilt), (-180, -90));
        for _ in 0..60 {
            s = s.moved(PtzDirection::UpRight);
        }
        assert_eq!((s.pan, s.tilt), (180, 90));
    }

    #[test]
    fn aux_outputs_are_one_to_four() {
        let s = PtzState::default();
        assert_eq!(
            s.with_aux(1, true).unwrap().aux,
            [true, false, false, false]
        );
        assert_eq!(
            s.with_aux(4, true).unwrap().aux,
            [false, false, false, true]
        );
        assert_eq!(s.with_aux(0, true), None);
        assert_eq!(s.with_aux(5, true), None);
        assert_eq!(s.with_aux(u32::MAX, true), None);
    }

    #[test]
    fn overlay_line_reads_like_the_brief() {
        let s = PtzState {
            pan: 20,
            tilt: -10,
            aux: [true, false, false, false],
        };
        assert_eq!(
            s.overlay_line(),
            "PTZ pan 20 tilt -10  AUX 1:on 2:off 3:off 4:off"
        );
    }

    #[test]
    fn control_rejects_moves_without_ptz_but_keeps_aux() {
        let control = PtzControl::default();
        assert_eq!(
            control.apply(&Command::PtzMove(PtzDirection::Up), false),
            Err(PtzRejection::NoPtz)
        );
        assert_eq!(control.state(), PtzState::default());
        let set = control.apply(
            &Command::SetAux {
                number: 3,
                on: true,
            },
            false,
        );
        assert!(matches!(
            set,
            Ok(PtzOutcome::AuxSet {
                aux: 3,
                on: true,
                ..
            })
        ));
        assert_eq!(
            control.apply(
                &Command::SetAux {
                    number: 9,
                    on: true
                },
                true
            ),
            Err(PtzRejection::NoSuchAux(9))
        );
        let moved = control.apply(&Command::PtzMove(PtzDirection::Up), true);
        assert!(
            matches!(moved, Ok(PtzOutcome::Moved { state, .. }) if state.tilt == 10 && state.aux[2])
        );
    }
}
