//! Waiting for a binary source on a pipe (the clone container's standard input): every read waits
//! at most an idle timeout for data, so a Binary build nobody uploads to, or whose upload stalls,
//! ends with a reason instead of hanging until the Pod's deadline.

use std::cell::Cell;
use std::io::Read;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// A reader that fails with [`std::io::ErrorKind::TimedOut`] when no data arrives within `idle`.
pub(crate) struct IdleLimited<R> {
    inner: R,
    idle: Timespec,
    progress: Progress,
}

/// What an [`IdleLimited`] reader saw: bytes received and whether it gave up waiting.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    received: Rc<Cell<u64>>,
    stalled: Rc<Cell<bool>>,
}

impl Progress {
    /// The bytes received so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.get()
    }

    /// The message for a read that gave up after `idle`, or None when it did not.
    pub(crate) fn stall_message(&self, idle: Duration) -> Option<String> {
        if !self.stalled.get() {
            return None;
        }
        let wait = format_duration(idle);
        Some(match self.received.get() {
            0 => format!(
                "no binary input arrived within {wait}; a Binary build receives its source from \
                 `kiln start-build <buildconfig> --from-dir|--from-file|--from-archive|--from-repo`"
            ),
            n => format!("the binary input stalled: no data for {wait} after {n} bytes"),
        })
    }
}

impl<R: Read + AsFd> IdleLimited<R> {
    /// Wraps `inner` (a pipe, FIFO or socket: something `poll` can wait on).
    pub(crate) fn new(inner: R, idle: Duration) -> (Self, Progress) {
        let progress = Progress::default();
        let idle = Timespec::try_from(idle).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let reader = IdleLimited {
            inner,
            idle,
            progress: progress.clone(),
        };
        (reader, progress)
    }
}

impl<R: Read + AsFd> Read for IdleLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut fds = [PollFd::new(&self.inner, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&self.idle)) {
                Ok(0) => {
                    self.progress.stalled.set(true);
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no binary input arrived in time",
                    ));
                }
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let n = self.inner.read(buf)?;
        self.progress
            .received
            .set(self.progress.received.get() + n as u64);
        Ok(n)
    }
}

/// `10m`, `90s`, `1h30m`: a duration as a person writes it (whole seconds).
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn durations_as_people_write_them() {
        for (secs, text) in [
            (0, "0s"),
            (3, "3s"),
            (60, "1m"),
            (90, "1m30s"),
            (600, "10m"),
            (3600, "1h"),
            (5430, "1h30m30s"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
    }

    #[test]
    fn a_pipe_nobody_writes_to_times_out_with_the_message() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let (mut limited, progress) = IdleLimited::new(reader, Duration::from_millis(50));
        let err = limited.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let message = progress.stall_message(Duration::from_secs(600)).unwrap();
        assert!(
            message.starts_with("no binary input arrived within 10m;"),
            "{message}"
        );
    }

    #[test]
    fn data_then_silence_is_a_stall_after_the_bytes_received() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"hello").unwrap();
        let (mut limited, progress) = IdleLimited::new(reader, Duration::from_millis(50));
        let mut buf = [0u8; 16];
        assert_eq!(limited.read(&mut buf).unwrap(), 5);
        assert_eq!(progress.stall_message(Duration::from_secs(1)), None);
        assert!(limited.read(&mut buf).is_err());
        assert_eq!(
            progress.stall_message(Duration::from_secs(90)).unwrap(),
            "the binary input stalled: no data for 1m30s after 5 bytes"
        );
    }

    #[test]
    fn a_closed_pipe_is_end_of_input_not_a_stall() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"abc").unwrap();
        drop(writer);
        let (mut limited, progress) = IdleLimited::new(reader, Duration::from_millis(50));
        let mut all = Vec::new();
        limited.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"abc");
        assert_eq!(progress.stall_message(Duration::from_secs(1)), None);
    }
}
