//! Probed deliveries with 4 subscribers: publish → one probe per subscriber → the first
//! acceptance → delivery.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stage_route::{Entry, Event, Route, RouteConfig};
use std::hint::black_box;

fn probed_delivery(c: &mut Criterion) {
    let mut route: Route<u32, u64> = Route::new(RouteConfig::default());
    for stage in 0..4 {
        let registered = route.register(0, stage, [("chat", Entry::callback("on_chat"))]);
        assert!(registered.is_ok());
    }
    let mut answer = String::new();
    let mut n = 0;
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    group.bench_function("probed_delivery_4_subscribers", |b| {
        b.iter(|| {
            n += 1;
            let _ = route.publish(0, 99, "chat?user42=on_reply", n);
            answer.clear();
            for event in route.drain_events() {
                if let Event::Probe { probes, .. } = event {
                    if let Some((_, token)) = probes.first() {
                        use std::fmt::Write;
                        let _ = write!(answer, "{token}");
                    }
                }
            }
            let _ = route.accept(0, &answer);
            black_box(route.drain_events().count())
        })
    });
    group.finish();
    assert_eq!(route.open_probes(), 0);
}

criterion_group!(benches, probed_delivery);
criterion_main!(benches);
