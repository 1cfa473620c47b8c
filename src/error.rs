//! One error type for the whole crate: a message that already names the object it failed on
//! (interface, netns, network, address or file), plus the errno where the kernel gave one, so
//! callers can tell "already gone" from a real failure.

use std::fmt;

#[derive(Debug)]
pub struct Error {
    msg: String,
    errno: Option<i32>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn msg(msg: impl Into<String>) -> Self {
        Error {
            msg: msg.into(),
            errno: None,
        }
    }

    pub fn with_errno(msg: impl Into<String>, errno: i32) -> Self {
        Error {
            msg: msg.into(),
            errno: Some(errno),
        }
    }

    /// The kernel's errno behind this error, if any (positive, e.g. `libc::ENODEV`).
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// Prefix the message with what was being done, keeping the errno.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error {
            msg: format!("{what}: {}", self.msg),
            errno: self.errno,
        }
    }

    /// Several failures reported as one, the cause first: e.g. a setup error, then what its
    /// rollback could not undo.
    pub fn join(first: Error, rest: Vec<Error>) -> Error {
        if rest.is_empty() {
            return first;
        }
        let msgs: Vec<&str> = std::iter::once(&first)
            .chain(&rest)
            .map(|e| e.msg.as_str())
            .collect();
        Error::msg(msgs.join("; "))
    }
}

/// The failures of steps that keep going past each other (teardown, gc, several names on one
/// command line), reported together at the end.
#[derive(Default)]
pub struct Errors(Vec<Error>);

impl Errors {
    pub fn push(&mut self, e: Error) {
        self.0.push(e);
    }

    /// Ok when nothing failed, otherwise every failure in one error, in the order they came.
    pub fn finish(self) -> Result<()> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(first) => Err(Error::join(first, all.collect())),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        // fs-err already puts the path in the message.
        Error {
            errno: e.raw_os_error(),
            msg: e.to_string(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::msg(e.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error {
            errno: Some(e as i32),
            msg: e.desc().to_string(),
        }
    }
}

/// `.context("…")` on any result whose error converts into ours.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

/// Shorthand for returning a formatted error.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::msg(format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_errors_keep_their_order_and_a_lone_one_its_errno() {
        let lone = Error::join(Error::with_errno("gone", libc::ENOENT), Vec::new());
        assert_eq!(lone.errno(), Some(libc::ENOENT));
        let both = Error::join(Error::msg("cause"), vec![Error::msg("rollback")]);
        assert_eq!(both.to_string(), "cause; rollback");
        assert!(Errors::default().finish().is_ok());
        let mut errors = Errors::default();
        errors.push(Error::msg("a"));
        errors.push(Error::msg("b"));
        let e = errors.finish().err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("a; b"));
    }
}
