//! The RESTful Config API (PROTOCOL.md §11): list cameras with their streams, PTZ flag and
//! microphone, and resolve a camera given by GUID or by name.
//!
//! Requests follow §11.L: lower-case camelCase collection names under `<gateway>/rest/v1/`, the
//! bearer token of the login, tolerant decoding of the answers, and the gateway's `errorText`
//! in errors.

use crate::gateway::Gateway;
use crate::login::TokenSource;
use xprotect_proto::signal::{HttpMethod, HttpRequest, HttpResponse};
use xprotect_proto::wire::config_api::{
    ArrayResponse, CONFIG_API_BASE, Camera, ConfigErrorBody, DataResponse, Microphone, StreamUsage,
    StreamsItem,
};
use xprotect_proto::wire::{DeviceId, JsonError, StreamId, lenient};

/// A Config API request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigApiError {
    /// The login has no valid token right now.
    #[error("no valid access token (the login failed or expired)")]
    NoToken,
    /// The request did not reach the gateway or no answer came back.
    #[error("GET {path}: {message}")]
    Transport {
        /// The path requested.
        path: String,
        /// What failed.
        message: String,
    },
    /// The gateway answered with an error status.
    #[error("GET {path}: HTTP {status}: {message}")]
    Status {
        /// The path requested.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The `errorText`s of the body, or the start of a non-JSON body.
        message: String,
    },
    /// The answer is not the documented shape.
    #[error("GET {path}: unexpected answer: {error}")]
    Decode {
        /// The path requested.
        path: String,
        /// Where and why decoding failed.
        error: JsonError,
    },
}

impl ConfigApiError {
    /// The HTTP status, if the gateway answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConfigApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A camera with what a viewer needs to pick it: its streams and its (probable) microphone.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraInfo {
    /// The camera object.
    pub camera: Camera,
    /// Its stream usages (`streamReferenceId` is the WebRTC `streamId`).
    pub streams: Vec<StreamUsage>,
    /// The microphone on the same hardware, preferring the same channel (§11.F.2's fallback:
    /// the real related-device setting is not readable over REST, so this is "probably").
    pub microphone: Option<Microphone>,
}

impl CameraInfo {
    /// The live default stream, if one is marked.
    pub fn live_default(&self) -> Option<&StreamUsage> {
        self.streams.iter().find(|s| s.live_default)
    }

    /// The stream whose `streamReferenceId` is `id`.
    pub fn stream(&self, id: StreamId) -> Option<&StreamUsage> {
        self.streams
            .iter()
            .find(|s| s.stream_reference_id.parse::<StreamId>().ok() == Some(id))
    }
}

/// A `--camera` value that names no camera, or more than one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraNameError {
    /// No camera has this name.
    #[error("no camera is named `{name}`; the cameras are: {}", list_or_none(.available))]
    Unknown {
        /// The name given.
        name: String,
        /// Every camera's name.
        available: Vec<String>,
    },
    /// Several cameras have this name.
    #[error("`{name}` names {} cameras ({}); give the GUID instead", .matches.len(), .matches.join(", "))]
    Ambiguous {
        /// The name given.
        name: String,
        /// `name (id)` of every match.
        matches: Vec<String>,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Find a camera by exact name (`displayName` or `name`), ignoring case.
pub fn find_camera_by_name<'a>(
    cameras: &'a [Camera],
    name: &str,
) -> Result<&'a Camera, CameraNameError> {
    let wanted = name.trim().to_lowercase();
    let matches: Vec<&Camera> = cameras
        .iter()
        .filter(|c| {
            [&c.display_name, &c.name]
                .into_iter()
                .any(|n| !n.is_empty() && n.trim().to_lowercase() == wanted)
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(CameraNameError::Unknown {
            name: name.to_owned(),
            available: cameras.iter().map(Camera::label).collect(),
        }),
        many => Err(CameraNameError::Ambiguous {
            name: name.to_owned(),
            matches: many
                .iter()
                .map(|c| format!("{} ({})", c.label(), c.id))
                .collect(),
        }),
    }
}

/// The microphone that probably belongs to `camera`: same hardware, same channel preferred.
pub fn probable_microphone<'a>(
    camera: &Camera,
    microphones: &'a [Microphone],
) -> Option<&'a Microphone> {
    let hardware = camera.hardware_id()?;
    let on_hardware = microphones.iter().filter(|m| {
        m.relations
            .parent
            .as_ref()
            .is_some_and(|p| p.id.eq_ignore_ascii_case(hardware))
    });
    let mut first = None;
    for microphone in on_hardware {
        if microphone.channel == camera.channel {
            return Some(microphone);
        }
        first.get_or_insert(microphone);
    }
    first
}

/// The Config API of one gateway, authenticated by a login.
#[derive(Debug, Clone, Copy)]
pub struct ConfigApi<'a> {
    gateway: &'a Gateway,
    tokens: &'a TokenSource,
}

impl<'a> ConfigApi<'a> {
    /// The Config API of `gateway`, with the tokens of `tokens`.
    pub fn new(gateway: &'a Gateway, tokens: &'a TokenSource) -> Self {
        Self { gateway, tokens }
    }

    /// `GET cameras`: the enabled cameras.
    pub async fn cameras(&self) -> Result<Vec<Camera>, ConfigApiError> {
        Ok(self.get::<ArrayResponse<Camera>>("cameras").await?.array)
    }

    /// `GET cameras/{id}`.
    pub async fn camera(&self, id: DeviceId) -> Result<Camera, ConfigApiError> {
        Ok(self
            .get::<DataResponse<Camera>>(&format!("cameras/{id}"))
            .await?
            .data)
    }

    /// `GET cameras/{id}/streams`, unwrapped: the stream usages of the camera.
    pub async fn streams(&self, id: DeviceId) -> Result<Vec<StreamUsage>, ConfigApiError> {
        let wrapper = self
            .get::<ArrayResponse<StreamsItem>>(&format!("cameras/{id}/streams"))
            .await?;
        Ok(wrapper
            .array
            .into_iter()
            .flat_map(|item| item.stream)
            .collect())
    }

    /// `GET microphones`.
    pub async fn microphones(&self) -> Result<Vec<Microphone>, ConfigApiError> {
        Ok(self
            .get::<ArrayResponse<Microphone>>("microphones")
            .await?
            .array)
    }

    /// Every camera with its streams and probable microphone. A gateway without a
    /// `microphones` collection (404) counts as one without microphones.
    pub async fn inventory(&self) -> Result<Vec<CameraInfo>, ConfigApiError> {
        let cameras = self.cameras().await?;
        let microphones = match self.microphones().await {
            Ok(list) => list,
            Err(error) if error.status() == Some(404) => Vec::new(),
            Err(error) => return Err(error),
        };
        let mut out = Vec::with_capacity(cameras.len());
        for camera in cameras {
            let streams = self.streams(camera.id).await?;
            let microphone = probable_microphone(&camera, &microphones).cloned();
            out.push(CameraInfo {
                camera,
                streams,
                microphone,
            });
        }
        Ok(out)
    }

    /// A camera given as a GUID (used as is, no request) or as an exact name (looked up).
    pub async fn resolve_camera(&self, text: &str) -> Result<DeviceId, ResolveCameraError> {
        if let Ok(id) = text.parse::<DeviceId>() {
            return Ok(id);
        }
        let cameras = self.cameras().await?;
        Ok(find_camera_by_name(&cameras, text)?.id)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        resource: &str,
    ) -> Result<T, ConfigApiError> {
        let path = format!("{CONFIG_API_BASE}/{resource}");
        let bearer = self.tokens.current().ok_or(ConfigApiError::NoToken)?;
        let request = HttpRequest {
            method: HttpMethod::Get,
            path: path.clone(),
            body: None,
            bearer: Some(bearer),
        };
        let response =
            self.gateway
                .execute(&request)
                .await
                .map_err(|message| ConfigApiError::Transport {
                    path: path.clone(),
                    message,
                })?;
        decode(&path, &response)
    }
}

/// A camera could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveCameraError {
    /// Listing the cameras failed.
    #[error("cannot list the cameras to find a name: {0}")]
    Api(#[from] ConfigApiError),
    /// The name matched none or several.
    #[error(transparent)]
    Name(#[from] CameraNameError),
}

/// Decode a Config API answer: the body on 2xx, the `error` body's texts otherwise.
pub fn decode<T: serde::de::DeserializeOwned>(
    path: &str,
    response: &HttpResponse,
) -> Result<T, ConfigApiError> {
    if (200..300).contains(&response.status) {
        return lenient::from_str(&response.body).map_err(|error| ConfigApiError::Decode {
            path: path.to_owned(),
            error,
        });
    }
    let message = match lenient::from_str::<ConfigErrorBody>(&response.body) {
        Ok(body) if !body.text().is_empty() => body.text(),
        // 5xx bodies may be plain text (§11.B.2); keep them short.
        _ => response.body.trim().chars().take(200).collect(),
    };
    Err(ConfigApiError::Status {
        path: path.to_owned(),
        status: response.status,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(id: &str, name: &str, hardware: &str, channel: i64) -> Camera {
        lenient::from_str(&format!(
            r#"{{"id":"{id}","displayName":"{name}","name":"{name}","channel":{channel},
               "relations":{{"parent":{{"type":"hardware","id":"{hardware}"}}}}}}"#
        ))
        .unwrap()
    }

    const A: &str = "6c2f3b1e-5a4d-4e8f-9b7a-1c2d3e4f5a6b";
    const B: &str = "0f7e2a9c-3b1d-4c5e-8f6a-7b8c9d0e1f2a";
    const C: &str = "11111111-2222-4333-8444-555555555555";
    const HW: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

    #[test]
    fn names_resolve_exactly_and_case_insensitively() {
        let cameras = vec![
            camera(A, "Front Door", HW, 0),
            camera(B, "Parking Lot", HW, 1),
        ];
        assert_eq!(
            find_camera_by_name(&cameras, "front door").unwrap().id,
            A.parse().unwrap()
        );
        match find_camera_by_name(&cameras, "front") {
            Err(CameraNameError::Unknown { available, .. }) => {
                assert_eq!(available, ["Front Door", "Parking Lot"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_names_are_ambiguous() {
        let cameras = vec![camera(A, "Gate", HW, 0), camera(C, "GATE", HW, 1)];
        let error = find_camera_by_name(&cameras, "gate").unwrap_err();
        assert!(matches!(&error, CameraNameError::Ambiguous { matches, .. } if matches.len() == 2));
        assert!(error.to_string().contains(C), "{error}");
    }

    #[test]
    fn error_bodies_become_messages() {
        let response = HttpResponse {
            status: 404,
            body: r#"{"error":{"httpCode":404,"details":[{"errorText":"Device not found. cameras/x"}]}}"#
                .into(),
        };
        let error = decode::<DataResponse<Camera>>("rest/v1/cameras/x", &response).unwrap_err();
        assert_eq!(error.status(), Some(404));
        assert!(error.to_string().contains("Device not found"), "{error}");
        let plain = HttpResponse {
            status: 502,
            body: "Bad Gateway".into(),
        };
        let error = decode::<DataResponse<Camera>>("p", &plain).unwrap_err();
        assert!(
            error.to_string().ends_with("HTTP 502: Bad Gateway"),
            "{error}"
        );
    }

    #[test]
    fn microphones_match_by_hardware_then_channel() {
        let cam = camera(A, "Front Door", HW, 1);
        let mic = |id: &str, hw: &str, channel: i64| -> Microphone {
            lenient::from_str(&format!(
                r#"{{"id":"{id}","name":"m{channel}","channel":{channel},
                   "relations":{{"parent":{{"type":"hardware","id":"{hw}"}}}}}}"#
            ))
            .unwrap()
        };
        let mics = vec![mic(B, HW, 0), mic(C, HW, 1)];
        assert_eq!(
            probable_microphone(&cam, &mics).unwrap().id,
            C.parse().unwrap()
        );
        let elsewhere = vec![mic(B, A, 1)];
        assert!(probable_microphone(&cam, &elsewhere).is_none());
    }
}
