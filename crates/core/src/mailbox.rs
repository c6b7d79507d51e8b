//! The mailbox of an instance (a Lua stage or a service): a bounded channel the router posts
//! to, read by one thread that can be told to stop.

use crate::message::Message;
use crate::router::{Mailbox, PostError};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the reading thread takes from its mailbox.
pub enum Inbound {
    Message(Message),
    /// Nothing to handle: look at the stop flag and the clock again.
    Wake,
    /// A command from another thread of the same process, in order with the messages (the
    /// reading thread knows its type).
    Control(Box<dyn Any + Send>),
}

/// The posting end of a bounded mailbox.
pub struct ChannelMailbox {
    tx: Sender<Inbound>,
    name: String,
    capacity: usize,
}

/// A mailbox of `capacity` messages for the instance `name`: the end the router posts to and
/// the end its thread reads.
pub fn channel(name: &str, capacity: usize) -> (Arc<ChannelMailbox>, Receiver<Inbound>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let mailbox = ChannelMailbox {
        tx,
        name: name.to_string(),
        capacity,
    };
    (Arc::new(mailbox), rx)
}

impl ChannelMailbox {
    /// Wakes the reading thread (a no-op when its mailbox is full: it is awake then).
    pub fn wake(&self) {
        let _ = self.tx.try_send(Inbound::Wake);
    }

    /// Queues a command for the reading thread, after the messages already posted.
    pub fn control(&self, command: Box<dyn Any + Send>) -> Result<(), PostError> {
        self.tx
            .try_send(Inbound::Control(command))
            .map_err(|e| self.post_error(e))
    }

    fn post_error<T>(&self, e: TrySendError<T>) -> PostError {
        match e {
            TrySendError::Full(_) => PostError::Full(self.name.clone(), self.capacity),
            TrySendError::Disconnected(_) => PostError::Closed(self.name.clone()),
        }
    }
}

impl Mailbox for ChannelMailbox {
    fn post(&self, message: Message) -> Result<(), PostError> {
        self.tx
            .try_send(Inbound::Message(message))
            .map_err(|e| self.post_error(e))
    }
}

/// The thread that reads a mailbox.
pub struct MailboxThread {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    mailbox: Arc<ChannelMailbox>,
}

impl MailboxThread {
    /// Starts thread `name` running `body`, which reads the mailbox until the flag it is given
    /// is set.
    pub fn spawn(
        name: String,
        mailbox: Arc<ChannelMailbox>,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<MailboxThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || body(&flag))?;
        Ok(MailboxThread {
            thread,
            stop,
            mailbox,
        })
    }

    /// Asks the thread to stop after what it is doing.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.mailbox.wake();
    }

    /// Waits for the thread to end.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("thread of '{}' panicked", self.mailbox.name);
        }
    }
}
