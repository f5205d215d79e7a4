//! What STS and IAM calls share: their time limits, and how a call failed, read off the
//! SDK's error the same way for both (the service's own error code, or a failure on the way
//! there).

use std::time::Duration;

use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// The time limits of every call: the whole operation within `operation`, the connection
/// within 5 s.
pub(super) fn timeouts(operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(operation)
        .connect_timeout(Duration::from_secs(5))
        .build()
}

/// Why a call failed.
pub(super) enum Failure {
    /// The service answered with an error.
    Service {
        code: String,
        message: String,
        status: u16,
    },
    /// No answer within the operation timeout.
    Timeout,
    /// The service could not be reached (DNS, TLS, proxy, refused connection).
    Network(String),
    /// An answer that could not be read; `status` is its HTTP status.
    Unreadable(u16),
}

/// Reads `err`.
pub(super) fn failure<E: ProvideErrorMetadata, R: HttpStatus>(err: &SdkError<E, R>) -> Failure {
    match err {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(f) => Failure::Network(
            f.as_connector_error()
                .map_or_else(|| err.to_string(), |e| error_chain(e)),
        ),
        SdkError::ServiceError(ctx) => Failure::Service {
            code: ctx.err().code().unwrap_or("Unknown").to_owned(),
            message: ctx.err().message().unwrap_or("").to_owned(),
            status: ctx.raw().status_code(),
        },
        SdkError::ResponseError(ctx) => Failure::Unreadable(ctx.raw().status_code()),
        _ => Failure::Network(err.to_string()),
    }
}

/// An error and its causes, "outer: inner: innermost" (the SDK's connector errors say
/// only "io error" at the top).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The HTTP status of a raw response; a trait so `failure` stays generic over the SDK's
/// response type.
pub(super) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_sts::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
