//! Built-in services (index, ticket, route, curl, …) as stages: a [`Service`] gets the messages
//! addressed to its stage id on a thread of its own and answers through the [`Router`].
//!
//! A service answers when it can: at once from [`Service::handle`], or later. For later it
//! starts its I/O on the process's runtime with [`ServiceContext::spawn`]; the task's result
//! comes back to the service's own thread as an [`Service::Event`], between messages, and the
//! service answers from there with the sender it kept. The service thread never waits for I/O,
//! and the service's state is only ever touched by its thread.

use crate::address::Scope;
use crate::io::Io;
use crate::mailbox::{ChannelMailbox, Inbound, MailboxThread};
use crate::message::{Message, ReplyAddress, Sender};
use crate::router::Router;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A built-in service: handles messages one at a time and may ask to be woken at a time.
pub trait Service: Send + 'static {
    /// What the service's own I/O tasks hand back to it ([`ServiceContext::spawn`]);
    /// [`std::convert::Infallible`] for a service that answers every message at once.
    type Event: Send + 'static;

    /// Handles one message addressed to this service (its key starts with `"<id>:"`).
    fn handle(&mut self, message: Message, ctx: &ServiceContext<Self::Event>);

    /// Takes the result of one of its I/O tasks, on the service's thread.
    fn event(&mut self, event: Self::Event, _ctx: &ServiceContext<Self::Event>) {
        let _ = event;
    }

    /// Called once `next_due` has passed; `now_ms` is the service clock.
    fn tick(&mut self, _now_ms: u64, _ctx: &ServiceContext<Self::Event>) {}

    /// When `tick` is next wanted, in service-clock ms; `None` = not at all.
    fn next_due(&self) -> Option<u64> {
        None
    }

    /// Called once when the node stops, after the last message.
    fn stop(&mut self, _ctx: &ServiceContext<Self::Event>) {}
}

/// What a service can reach while it handles a message or an event.
pub struct ServiceContext<E = Infallible> {
    /// The service's stage id.
    pub id: Arc<str>,
    /// The service's reply address (`_WAITFOR[1]` at the stages it answers).
    pub address: ReplyAddress,
    pub router: Arc<Router>,
    /// The process's I/O runtime.
    pub io: Io,
    events: crossbeam_channel::Sender<E>,
    mailbox: Arc<ChannelMailbox<Infallible>>,
    started: Instant,
}

impl<E: Send + 'static> ServiceContext<E> {
    /// Milliseconds since the service started (monotonic).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Sends `message` straight to a reply address; false when nobody has that address.
    pub fn send_to(&self, address: &str, message: Message) -> bool {
        match self.router.send_to(address, message) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(target: "service", "{}: {e}", self.id);
                false
            }
        }
    }

    /// Sends a message for `callback` (a callback id qualified with the requester's stage,
    /// `"<stage>:<msg>"`, or bare when the requester has no id) for `requester`: to the
    /// requesting instance itself, or, when the callback names another stage, to one instance
    /// of that stage. False when nobody took it.
    pub fn send_callback(&self, requester: &Sender, callback: &str, message: Message) -> bool {
        match callback.split_once(':') {
            Some((stage, _)) if requester.stage.as_deref() != Some(stage) => {
                match self.router.send(stage, Scope::One, message) {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(target: "service", "{}: {e}", self.id);
                        false
                    }
                }
            }
            _ => self.send_to(&requester.address, message),
        }
    }

    /// Runs `task` on the I/O runtime; its result reaches [`Service::event`] on the service's
    /// thread. A result that arrives after the service stopped is dropped.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = E> + Send + 'static,
    {
        let events = self.events.clone();
        let mailbox = self.mailbox.clone();
        self.io.spawn(async move {
            let event = task.await;
            if events.send(event).is_ok() {
                mailbox.wake();
            }
        });
    }
}

/// A running service thread.
pub type ServiceHandle = MailboxThread;

/// Where a service is reachable and what it runs on.
pub struct Placement {
    /// The service's stage id.
    pub id: String,
    /// Its reply address.
    pub address: ReplyAddress,
    /// How many messages its mailbox holds.
    pub capacity: usize,
    pub router: Arc<Router>,
    pub io: Io,
}

/// Registers `service` under its stage id and reply address and starts its thread.
pub fn spawn<S: Service>(placement: Placement, mut service: S) -> std::io::Result<ServiceHandle> {
    let Placement {
        id,
        address,
        capacity,
        router,
        io,
    } = placement;
    let (mailbox, rx) = crate::mailbox::channel(&id, capacity);
    router.register(Some(&id), address.clone(), mailbox.clone());
    let (events, events_rx) = crossbeam_channel::unbounded();
    let ctx = ServiceContext {
        id: id.as_str().into(),
        address,
        router,
        io,
        events,
        mailbox: mailbox.clone(),
        started: Instant::now(),
    };
    MailboxThread::spawn(format!("service {id}"), mailbox, move |stop| {
        run(&mut service, &ctx, &rx, &events_rx, stop);
        service.stop(&ctx);
        ctx.router.unregister(&ctx.address);
    })
}

/// How many queued messages a service handles before it looks at the clock for its tick again.
const BATCH: usize = 64;

fn run<S: Service>(
    service: &mut S,
    ctx: &ServiceContext<S::Event>,
    rx: &Receiver<Inbound<Infallible>>,
    events: &Receiver<S::Event>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let now = ctx.now_ms();
        if service.next_due().is_some_and(|due| due <= now) {
            service.tick(now, ctx);
        }
        let mut handled = 0;
        while let Ok(event) = events.try_recv() {
            service.event(event, ctx);
            handled += 1;
        }
        while handled < BATCH {
            match rx.try_recv() {
                Ok(inbound) => deliver(service, ctx, inbound),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
            handled += 1;
        }
        if handled > 0 {
            continue;
        }
        let wait = match service.next_due() {
            Some(due) => Duration::from_millis(due.saturating_sub(ctx.now_ms())),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(inbound) => deliver(service, ctx, inbound),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn deliver<S: Service>(
    service: &mut S,
    ctx: &ServiceContext<S::Event>,
    inbound: Inbound<Infallible>,
) {
    match inbound {
        Inbound::Message(m) => service.handle(m, ctx),
        Inbound::Wake => {}
        Inbound::Command(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{Mailbox, PostError};
    use crate::{Args, PayloadKey, Value};
    use crossbeam_channel::Sender as Tx;
    use parking_lot::Mutex;

    /// Echoes every message's values to the sender, at once or (values starting with
    /// `"later"`) from an I/O task after 20 ms, and counts ticks.
    struct Echo {
        due: Option<u64>,
        ticks: Arc<Mutex<u32>>,
    }

    impl Service for Echo {
        type Event = (Sender, Args);

        fn handle(&mut self, message: Message, ctx: &ServiceContext<Self::Event>) {
            let Some(sender) = message.sender else { return };
            if message.values.first() == Some(&Value::str("later")) {
                ctx.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    (sender, message.values)
                });
            } else {
                self.event((sender, message.values), ctx);
            }
            self.due = Some(ctx.now_ms());
        }

        fn event(&mut self, (sender, values): Self::Event, ctx: &ServiceContext<Self::Event>) {
            let reply = Message::new(sender.key("echo"), values);
            ctx.send_to(&sender.address, reply);
        }

        fn tick(&mut self, _now: u64, _ctx: &ServiceContext<Self::Event>) {
            *self.ticks.lock() += 1;
            self.due = None;
        }

        fn next_due(&self) -> Option<u64> {
            self.due
        }
    }

    struct Inbox(Tx<Message>);

    impl Mailbox for Inbox {
        fn post(&self, message: Message) -> Result<(), PostError> {
            self.0
                .send(message)
                .map_err(|_| PostError::Closed("client".into()))
        }
    }

    fn echo_service() -> (
        Arc<Router>,
        Receiver<Message>,
        Arc<Mutex<u32>>,
        ServiceHandle,
    ) {
        let router = Arc::new(Router::new());
        let (tx, rx) = crossbeam_channel::unbounded();
        router.register(Some("client"), "client-addr".into(), Arc::new(Inbox(tx)));
        let ticks = Arc::new(Mutex::new(0));
        let echo = Echo {
            due: None,
            ticks: ticks.clone(),
        };
        let placement = Placement {
            id: "echo".into(),
            address: "echo-addr".into(),
            capacity: 16,
            router: router.clone(),
            io: Io::new(),
        };
        let handle = spawn(placement, echo).expect("spawn");
        (router, rx, ticks, handle)
    }

    fn request(values: Args) -> Message {
        let mut message = Message::new(PayloadKey::new(Some("echo"), "x"), values);
        message.sender = Some(crate::Sender {
            address: "client-addr".into(),
            stage: Some("client".into()),
        });
        message
    }

    #[test]
    fn a_service_answers_through_the_router_and_ticks_when_due() {
        let (router, rx, ticks, handle) = echo_service();
        let message = request(Args::from_iter([Value::Int(7)]));
        assert_eq!(router.send("echo", Scope::One, message), Ok(1));
        let reply = rx.recv_timeout(Duration::from_secs(5)).expect("reply");
        assert_eq!(reply.values.as_slice(), [Value::Int(7)]);
        assert_eq!(reply.key.as_str(), "client:echo");
        let deadline = Instant::now() + Duration::from_secs(5);
        while *ticks.lock() == 0 {
            assert!(Instant::now() < deadline, "tick never came");
            std::thread::yield_now();
        }
        handle.stop();
        handle.join();
        assert!(
            !router.knows("echo"),
            "a stopped service leaves the routing table"
        );
    }

    #[test]
    fn a_service_answers_later_from_an_io_task_and_keeps_serving_meanwhile() {
        let (router, rx, _ticks, handle) = echo_service();
        let later = request(Args::from_iter([Value::str("later"), Value::Int(1)]));
        assert_eq!(router.send("echo", Scope::One, later), Ok(1));
        let now = request(Args::from_iter([Value::Int(2)]));
        assert_eq!(router.send("echo", Scope::One, now), Ok(1));
        let first = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("first reply");
        let second = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("second reply");
        assert_eq!(
            first.values.as_slice(),
            [Value::Int(2)],
            "the immediate answer comes first"
        );
        assert_eq!(
            second.values.as_slice(),
            [Value::str("later"), Value::Int(1)]
        );
        handle.stop();
        handle.join();
    }
}
