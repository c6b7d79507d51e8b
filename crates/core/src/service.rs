//! Built-in services (index, ticket, route, …) as stages: a [`Service`] gets the messages
//! addressed to its stage id on a thread of its own and answers through the [`Router`].

use crate::mailbox::{Inbound, MailboxThread};
use crate::message::Message;
use crate::router::Router;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A built-in service: handles messages one at a time and may ask to be woken at a time.
pub trait Service: Send + 'static {
    /// Handles one message addressed to this service (its key starts with `"<id>:"`).
    fn handle(&mut self, message: Message, ctx: &ServiceContext);

    /// Called once `next_due` has passed; `now_ms` is the service clock.
    fn tick(&mut self, _now_ms: u64, _ctx: &ServiceContext) {}

    /// When `tick` is next wanted, in service-clock ms; `None` = not at all.
    fn next_due(&self) -> Option<u64> {
        None
    }

    /// Called once when the node stops, after the last message.
    fn stop(&mut self, _ctx: &ServiceContext) {}
}

/// What a service can reach while it handles a message.
pub struct ServiceContext {
    /// The service's stage id.
    pub id: Arc<str>,
    /// The service's reply address (`_WAITFOR[1]` at the stages it answers).
    pub address: Arc<str>,
    pub router: Arc<Router>,
    started: Instant,
}

impl ServiceContext {
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
}

/// A running service thread.
pub type ServiceHandle = MailboxThread;

/// Registers `service` under stage id `id` at `address` and starts its thread; its mailbox
/// holds at most `capacity` messages.
pub fn spawn(
    id: &str,
    address: Arc<str>,
    capacity: usize,
    router: Arc<Router>,
    mut service: Box<dyn Service>,
) -> std::io::Result<ServiceHandle> {
    let (mailbox, rx) = crate::mailbox::channel(id, capacity);
    router.register(Some(id), address.clone(), mailbox.clone());
    let ctx = ServiceContext {
        id: id.into(),
        address,
        router,
        started: Instant::now(),
    };
    MailboxThread::spawn(format!("service {id}"), mailbox, move |stop| {
        run(&mut *service, &ctx, &rx, stop);
        service.stop(&ctx);
        ctx.router.unregister(&ctx.address);
    })
}

/// How many queued messages a service handles before it looks at the clock for its tick again.
const BATCH: usize = 64;

fn run(service: &mut dyn Service, ctx: &ServiceContext, rx: &Receiver<Inbound>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let now = ctx.now_ms();
        if service.next_due().is_some_and(|due| due <= now) {
            service.tick(now, ctx);
        }
        let mut handled = 0;
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

fn deliver(service: &mut dyn Service, ctx: &ServiceContext, inbound: Inbound) {
    match inbound {
        Inbound::Message(m) => service.handle(m, ctx),
        Inbound::Wake | Inbound::Control(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Scope;
    use crate::router::{Mailbox, PostError};
    use crate::{Args, Value};
    use crossbeam_channel::Sender;
    use parking_lot::Mutex;

    /// Echoes every message's values to the sender and counts ticks.
    struct Echo {
        due: Option<u64>,
        ticks: Arc<Mutex<u32>>,
    }

    impl Service for Echo {
        fn handle(&mut self, message: Message, ctx: &ServiceContext) {
            if let Some(sender) = &message.sender {
                let reply = Message::new("client:echo", message.values.clone());
                ctx.send_to(&sender.address, reply);
            }
            self.due = Some(ctx.now_ms());
        }

        fn tick(&mut self, _now: u64, _ctx: &ServiceContext) {
            *self.ticks.lock() += 1;
            self.due = None;
        }

        fn next_due(&self) -> Option<u64> {
            self.due
        }
    }

    struct Inbox(Sender<Message>);

    impl Mailbox for Inbox {
        fn post(&self, message: Message) -> Result<(), PostError> {
            self.0
                .send(message)
                .map_err(|_| PostError::Closed("client".into()))
        }
    }

    #[test]
    fn a_service_answers_through_the_router_and_ticks_when_due() {
        let router = Arc::new(Router::new());
        let (tx, rx) = crossbeam_channel::unbounded();
        router.register(Some("client"), "client-addr".into(), Arc::new(Inbox(tx)));
        let ticks = Arc::new(Mutex::new(0));
        let echo = Echo {
            due: None,
            ticks: ticks.clone(),
        };
        let handle = spawn(
            "echo",
            "echo-addr".into(),
            16,
            router.clone(),
            Box::new(echo),
        )
        .expect("spawn");
        let mut message = Message::new("echo:x", Args::from_iter([Value::Int(7)]));
        message.sender = Some(crate::Sender {
            address: "client-addr".into(),
            stage: Some("client".into()),
        });
        assert_eq!(router.send("echo", Scope::One, message), Ok(1));
        let reply = rx.recv_timeout(Duration::from_secs(5)).expect("reply");
        assert_eq!(reply.values.as_slice(), [Value::Int(7)]);
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
}
