//! Why a device's command failed, and the exit code that says which kind of failure it was:
//! one type for the `quorate` command and `quorate-node`, so both report the same failure
//! the same way and scripts can tell a refused check from a server that is down.

use crate::{ClientError, checks::printable};

/// Exit codes: distinct for usage errors, refused checks and the server's refusals.
pub mod exit {
    /// Something local failed (a file could not be written, ...).
    pub const LOCAL: u8 = 1;
    /// The command was used wrongly, or needs something first (enrolment, an identity).
    pub const USAGE: u8 = 2;
    /// A check on this device refused what the server sent (a signature, a pin, a binding).
    pub const REFUSED: u8 = 3;
    /// The server refused the request.
    pub const SERVER: u8 = 4;
    /// The server could not be reached.
    pub const UNREACHABLE: u8 = 5;
}

/// Why a command failed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Misuse, or a missing step.
    #[error("{0}")]
    Usage(String),
    /// A check on this device failed.
    #[error("refused: {0}")]
    Refused(String),
    /// The server said no.
    #[error("the server refused: {message} ({code})")]
    Server {
        /// The HTTP status: whether trying again may help (see [`DeviceError::is_transient`]).
        status: u16,
        /// Its machine-readable code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the server: {0}; check --server and that it runs")]
    Unreachable(String),
    /// A local failure.
    #[error("{0}")]
    Local(String),
}

impl DeviceError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Refused(_) => exit::REFUSED,
            Self::Server { .. } => exit::SERVER,
            Self::Unreachable(_) => exit::UNREACHABLE,
            Self::Local(_) => exit::LOCAL,
        }
    }

    /// Whether the same call may succeed later without anyone changing anything: the server
    /// could not be reached (down, restarting, the network, a timeout), or it answered that
    /// it failed or is overloaded (5xx, 408, 429). A refused check or a 4xx never is.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Server { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            Self::Usage(_) | Self::Refused(_) | Self::Local(_) => false,
        }
    }

    /// The server's machine-readable code, when the server refused.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<ClientError> for DeviceError {
    fn from(error: ClientError) -> Self {
        match error {
            // The server's words are shown escaped: they could carry terminal escape
            // sequences that rewrite what the device printed before.
            ClientError::Api {
                status,
                code,
                message,
            } => Self::Server {
                status,
                code: printable(&code),
                message: printable(&message),
            },
            ClientError::Transport(error) => Self::Unreachable(with_causes(&error)),
            ClientError::Invalid(message) => Self::Refused(printable(&message)),
            ClientError::NotSignedIn => Self::Usage("sign in first".into()),
        }
    }
}

/// An error with the causes under it ("error sending request: … : invalid peer certificate:
/// UnknownIssuer"), which say what to do where the outer message does not.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{DeviceError, exit};
    use crate::ClientError;

    fn refused(status: u16) -> DeviceError {
        ClientError::Api {
            status,
            code: "some_code".into(),
            message: "no".into(),
        }
        .into()
    }

    #[test]
    fn server_failures_and_overload_are_transient_refusals_are_not() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(refused(status).is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert!(!refused(status).is_transient(), "{status}");
        }
        assert!(DeviceError::Unreachable("connection refused".into()).is_transient());
        assert!(!DeviceError::Refused("a bad signature".into()).is_transient());
        assert_eq!(refused(503).exit_code(), exit::SERVER);
    }

    #[test]
    fn the_servers_words_are_escaped() {
        let error: DeviceError = ClientError::Api {
            status: 400,
            code: "bad\u{1b}[2J".into(),
            message: "look\u{1b}]0;owned\u{7}".into(),
        }
        .into();
        let shown = error.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(error.server_code(), Some("bad\\u{1b}[2J"));
    }
}
