//! What the port errors keep of their cause, and how a log shows it.
//!
//! A port error names what failed (`store unavailable`) and keeps the adapter's own error (the
//! SDK's, SQLite's, the file system's) as its `source`, instead of a string made of it: code can
//! still look at it, and its `Display` does not repeat it. Logs show the whole chain with
//! [`Report`].

use std::error::Error;
use std::fmt;

/// An adapter's own error, kept as the `source` of a port error.
pub type Cause = Box<dyn Error + Send + Sync>;

/// An error and each of its sources on one line: `store unavailable: service error: ...`.
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;

    #[test]
    fn a_port_error_keeps_its_cause_and_the_report_shows_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        let e = StoreError::Unavailable(Box::new(io));
        assert_eq!(e.to_string(), "store unavailable");
        let cause = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the io error");
        assert_eq!(cause.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(Report(&e).to_string(), "store unavailable: read timed out");
    }
}
