//! The mailbox of an instance (a Lua stage or a service): a bounded channel the router posts
//! messages to and the instance's own helpers post commands to, read by one thread that can
//! be told to stop.

use crate::message::Message;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Where messages for one instance are queued (what the router posts to).
pub trait Mailbox: Send + Sync {
    /// Queues a message; fails when the mailbox is full or closed.
    fn post(&self, message: Message) -> Result<(), PostError>;
}

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostError {
    #[error("the mailbox of '{0}' is full ({1} messages waiting)")]
    Full(String, usize),
    #[error("'{0}' has stopped")]
    Closed(String),
}

/// What the reading thread takes from its mailbox. `C` is the kind of command the instance's
/// own helpers (worker jobs of a stage, I/O tasks of a service) send it, in order with its
/// messages.
#[allow(clippy::large_enum_variant)] // Messages are nearly every entry: boxing them would cost an allocation each.
pub enum Inbound<C> {
    Message(Message),
    /// Nothing to handle: look at the stop flag and the clock again.
    Wake,
    Command(C),
}

/// The posting end of a bounded mailbox.
pub struct ChannelMailbox<C> {
    tx: Sender<Inbound<C>>,
    name: String,
    capacity: usize,
}

/// A mailbox of `capacity` entries for the instance `name`: the end the router posts to and
/// the end its thread reads.
pub fn channel<C>(name: &str, capacity: usize) -> (Arc<ChannelMailbox<C>>, Receiver<Inbound<C>>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let mailbox = ChannelMailbox {
        tx,
        name: name.to_string(),
        capacity,
    };
    (Arc::new(mailbox), rx)
}

impl<C> ChannelMailbox<C> {
    /// Wakes the reading thread (a no-op when its mailbox is full: it is awake then).
    pub fn wake(&self) {
        let _ = self.tx.try_send(Inbound::Wake);
    }

    /// Queues a command for the reading thread, after the messages already posted.
    pub fn command(&self, command: C) -> Result<(), PostError> {
        self.tx
            .try_send(Inbound::Command(command))
            .map_err(|e| self.post_error(e))
    }

    fn post_error<T>(&self, e: TrySendError<T>) -> PostError {
        match e {
            TrySendError::Full(_) => PostError::Full(self.name.clone(), self.capacity),
            TrySendError::Disconnected(_) => PostError::Closed(self.name.clone()),
        }
    }
}

impl<C: Send> Mailbox for ChannelMailbox<C> {
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
    wake: Box<dyn Fn() + Send + Sync>,
    name: String,
}

impl MailboxThread {
    /// Starts thread `name` running `body`, which reads the mailbox until the flag it is given
    /// is set.
    pub fn spawn<C: Send + 'static>(
        name: String,
        mailbox: Arc<ChannelMailbox<C>>,
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
            name: mailbox.name.clone(),
            wake: Box::new(move || mailbox.wake()),
        })
    }

    /// Asks the thread to stop after what it is doing.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        (self.wake)();
    }

    /// Waits for the thread to end.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("thread of '{}' panicked", self.name);
        }
    }
}
