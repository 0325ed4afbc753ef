//! Readers: replay, then follow appends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::futures::OwnedNotified;

use crate::{BusError, Message, Shared, read_message};

/// A stream of the bus's messages from a start position: it replays what is stored, then
/// waits for appends and yields them as they come.
///
/// Items:
/// - `Ok(message)`, in sequence order;
/// - `Err(BusError::Lost { from_seq, to_seq })` once when retention removed messages
///   this reader had not read yet; **not terminal**: the next item is the first retained
///   message;
/// - `Err(BusError::Corrupt { .. })` or `Err(BusError::Io { .. })` for a message that
///   cannot be read back; the reader skips it and goes on.
///
/// The stream ends (`None`) only after [`LocalBus::close`](crate::LocalBus::close), once
/// every stored message has been yielded. Records are read with positioned reads on a
/// shared file handle, on the polling thread, without holding the bus lock; they come
/// from the page cache in the common case. Dropping the reader releases everything.
pub struct Reader {
    shared: Arc<Shared>,
    /// Sequence of the next message to yield.
    next: u64,
    /// Registered interest in the next append, when the reader is caught up.
    waiter: Option<Pin<Box<OwnedNotified>>>,
}

enum Step {
    Item(Result<Message, BusError>),
    Wait,
    End,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, next: u64) -> Reader {
        Reader {
            shared,
            next,
            waiter: None,
        }
    }

    /// Sequence of the next message this reader will look for.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    fn step(&mut self) -> Step {
        let location = {
            let st = self.shared.lock();
            let first = st.first_seq();
            if self.next < first {
                let lost = BusError::Lost {
                    from_seq: self.next,
                    to_seq: first - 1,
                };
                self.next = first;
                return Step::Item(Err(lost));
            }
            match st.locate(self.next) {
                Some(location) => location,
                None if st.closed => return Step::End,
                None => return Step::Wait,
            }
        };
        self.next = location.entry.seq + 1;
        Step::Item(read_message(&location))
    }
}

impl Stream for Reader {
    type Item = Result<Message, BusError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.step() {
                Step::Item(item) => {
                    this.waiter = None;
                    return Poll::Ready(Some(item));
                }
                Step::End => return Poll::Ready(None),
                Step::Wait => {}
            }
            match &mut this.waiter {
                None => {
                    // Register before looking again, so that an append between the look
                    // above and this registration is not missed.
                    let mut waiter = Box::pin(Arc::clone(&this.shared.notify).notified_owned());
                    waiter.as_mut().enable();
                    this.waiter = Some(waiter);
                }
                Some(waiter) => match waiter.as_mut().poll(cx) {
                    Poll::Ready(()) => this.waiter = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.shared.dir)
            .field("next_seq", &self.next)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_unpin_static<T: Send + Unpin + 'static>() {}

    #[test]
    fn reader_is_send_unpin_static() {
        assert_send_unpin_static::<Reader>();
        assert_send_unpin_static::<crate::LocalBus>();
    }
}
