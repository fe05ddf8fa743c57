//! HTTP requests as values: the machines build them, the IO layer executes them.

use crate::wire::Secret;

/// Identifies a request so its response can be fed back.
pub type RequestId = u64;

/// The verbs the gateway API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpBody {
    /// `application/json`.
    Json(String),
    /// `application/x-www-form-urlencoded` (the IDP). Holds secrets: never log it.
    Form(Secret),
}

/// One HTTP request to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The verb.
    pub method: HttpMethod,
    /// Path relative to the gateway URL, without a leading `/` (e.g. `REST/v1/WebRTC/Session`).
    pub path: String,
    /// The body, if any.
    pub body: Option<HttpBody>,
    /// `Authorization: Bearer …`, if any.
    pub bearer: Option<Secret>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body text (lossy UTF-8).
    pub body: String,
}

impl HttpResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
