//! Grant+release cycles with 10,000 waiters queued: each cycle releases the holder, which hands
//! its ticket to the oldest waiter, and queues one new request to keep the room full.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stage_ticket::{Event, Outcome, RequestId, Ticket, TicketConfig};
use std::hint::black_box;
use std::sync::Arc;

const WAITERS: usize = 10_000;

fn cycles(c: &mut Criterion) {
    let config = TicketConfig {
        capacity: WAITERS + 10,
        categories: vec![("login".into(), 1)],
        ..TicketConfig::default()
    };
    let Ok(mut ticket) = Ticket::<u32, u64>::new(config) else {
        panic!("config refused");
    };
    let callback: Arc<str> = "s:work".into();
    let mut holder = None;
    for n in 0..=WAITERS as u64 {
        if let Ok(Outcome::Granted(id)) = ticket.request(0, 1, "login", callback.clone(), n, None) {
            holder = Some(id);
        }
    }
    let mut holder: RequestId = holder.unwrap_or_else(|| panic!("no first grant"));
    ticket.drain_events().for_each(drop);
    let mut now = 0;
    let mut group = c.benchmark_group("ticket");
    group.throughput(Throughput::Elements(1));
    group.bench_function("grant_release_cycle_10k_waiters", |b| {
        b.iter(|| {
            now += 1;
            let _ = ticket.renew(now, holder, 0);
            let _ = ticket.request(now, 2, "login", callback.clone(), now, None);
            for event in ticket.drain_events() {
                if let Event::Granted { request, .. } = event {
                    holder = request;
                }
            }
            black_box(holder)
        })
    });
    group.finish();
    assert_eq!(ticket.stats("login").map(|s| s.waiters), Some(WAITERS));
}

criterion_group!(benches, cycles);
criterion_main!(benches);
