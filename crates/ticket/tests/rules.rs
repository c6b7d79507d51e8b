//! One test per rule of `spec/ticket.md` (with decisions 17 and 35).

use stage_ticket::{
    key, CancelReason, Event, Feedback, Outcome, Rejection, Renewal, RequestId, Ticket,
    TicketConfig, TicketError,
};

type Engine = Ticket<&'static str, &'static str>;
type Ev = Event<&'static str, &'static str>;

fn engine(categories: &[(&str, i64)]) -> Engine {
    let config = TicketConfig {
        categories: categories
            .iter()
            .map(|&(name, limit)| (name.to_owned(), limit))
            .collect(),
        ..TicketConfig::default()
    };
    match Ticket::new(config) {
        Ok(engine) => engine,
        Err(e) => panic!("config refused: {e}"),
    }
}

fn events(engine: &mut Engine) -> Vec<Ev> {
    engine.drain_events().collect()
}

fn feedback(key: &str) -> Option<Feedback> {
    Some(Feedback {
        callback: "stage:fb".into(),
        key: key.into(),
    })
}

fn ask(engine: &mut Engine, now: u64, who: &'static str, category: &str) -> Outcome {
    engine
        .request(now, who, category, "stage:work", "arg", None)
        .unwrap_or(Outcome::Rejected(Rejection::UnknownCategory))
}

fn id(outcome: Outcome) -> RequestId {
    match outcome {
        Outcome::Granted(id) | Outcome::Waiting(id) => id,
        Outcome::Rejected(why) => panic!("rejected: {why:?}"),
    }
}

fn granted(events: &[Ev]) -> Vec<RequestId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Granted { request, .. } => Some(*request),
            _ => None,
        })
        .collect()
}

fn cancelled(events: &[Ev]) -> Vec<(&'static str, RequestId, CancelReason)> {
    events
        .iter()
        .flat_map(|event| match event {
            Event::Cancelled {
                requester,
                requests,
            } => requests
                .iter()
                .map(|c| (*requester, c.request, c.reason))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn immediate_grants_report_true_and_distinct_ids() {
    let mut t = engine(&[("odbc", 2)]);
    let a = t.request(
        0,
        "stage",
        "odbc",
        "stage:work",
        "kim",
        feedback("ticket:odbc=work?fb"),
    );
    let b = t.request(
        0,
        "stage",
        "odbc",
        "stage:work",
        "lee",
        feedback("ticket:odbc=work?fb"),
    );
    let (a, b) = (
        id(a.clone().unwrap_or(Outcome::Rejected(Rejection::NoTicket))),
        id(b.unwrap_or(Outcome::Rejected(Rejection::NoTicket))),
    );
    assert_ne!(a, b);
    assert!(a.to_string().starts_with('@'));
    let evs = events(&mut t);
    assert_eq!(
        evs[0],
        Event::Granted {
            request: a,
            requester: "stage",
            callback: "stage:work".into(),
            category: "odbc".into(),
            payload: "kim",
        }
    );
    assert_eq!(
        evs[1],
        Event::Feedback {
            requester: "stage",
            feedback: Feedback {
                callback: "stage:fb".into(),
                key: "ticket:odbc=work?fb".into()
            },
            outcome: Outcome::Granted(a),
        }
    );
    assert_eq!(granted(&evs), vec![a, b]);
}

#[test]
fn a_full_positive_category_queues_and_hands_off_at_release() {
    let mut t = engine(&[("odbc", 2)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    ask(&mut t, 0, "s", "odbc");
    events(&mut t);
    let c = ask(&mut t, 10, "s", "odbc");
    assert!(matches!(c, Outcome::Waiting(_)));
    assert!(granted(&events(&mut t)).is_empty());
    assert_eq!(t.renew(20, a, 0), Ok(Renewal::Released));
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![id(c)], "hand-off is immediate");
    assert!(cancelled(&evs).is_empty(), "a release sends no notice");
    let stats = t.stats("odbc");
    assert_eq!(stats.map(|s| (s.holders, s.waiters)), Some((2, 0)));
}

#[test]
fn an_expired_hold_is_cancelled_with_notice_and_its_ticket_handed_off() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s1", "odbc"));
    let b = id(ask(&mut t, 100, "s2", "odbc"));
    events(&mut t);
    assert_eq!(t.next_due(), Some(1000));
    t.advance(999);
    assert!(events(&mut t).is_empty());
    t.advance(1000);
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![b]);
    assert_eq!(cancelled(&evs), vec![("s1", a, CancelReason::Expired)]);
    assert_eq!(
        t.next_due(),
        Some(2000),
        "the new hold counts from the hand-off"
    );
}

#[test]
fn renewal_sets_the_deadline_from_now() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    assert_eq!(t.renew(500, a, 3000), Ok(Renewal::Renewed));
    t.advance(3499);
    assert!(cancelled(&events(&mut t)).is_empty());
    assert_eq!(
        t.renew(3000, a, 100),
        Ok(Renewal::Renewed),
        "a renewal may shorten"
    );
    t.advance(3100);
    assert_eq!(
        cancelled(&events(&mut t)),
        vec![("s", a, CancelReason::Expired)]
    );
    assert_eq!(t.renew(3200, a, 0), Err(TicketError::UnknownRequest(a)));
}

#[test]
fn negative_release_values_release_too() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    assert_eq!(t.renew(1, a, -5), Ok(Renewal::Released));
    assert_eq!(t.outstanding(), 0);
}

#[test]
fn unknown_category_is_refused_with_feedback_false() {
    let mut t = engine(&[]);
    let result = t.request(
        0,
        "s",
        "nope",
        "s:work",
        "x",
        feedback("ticket:nope=work?fb"),
    );
    assert_eq!(result, Err(TicketError::UnknownCategory("nope".into())));
    let evs = events(&mut t);
    assert!(matches!(
        evs.as_slice(),
        [Event::Feedback {
            outcome: Outcome::Rejected(Rejection::UnknownCategory),
            ..
        }]
    ));
    assert_eq!(t.outstanding(), 0);
}

#[test]
fn no_request_without_feedback_reports_nothing_when_rejected() {
    let mut t = engine(&[("z", 0)]);
    assert_eq!(
        t.request(0, "s", "z", "s:work", "x", None),
        Ok(Outcome::Rejected(Rejection::NoTicket))
    );
    assert!(events(&mut t).is_empty());
}

#[test]
fn a_no_wait_room_rejects_when_full_and_zero_rejects_always() {
    let mut t = engine(&[]);
    assert_eq!(t.configure(0, "room", -2, None), Ok(()));
    assert_eq!(t.configure(0, "z", 0, None), Ok(()));
    let outcomes: Vec<_> = (0..3).map(|_| ask(&mut t, 0, "s", "room")).collect();
    assert!(matches!(outcomes[0], Outcome::Granted(_)));
    assert!(matches!(outcomes[1], Outcome::Granted(_)));
    assert_eq!(outcomes[2], Outcome::Rejected(Rejection::NoTicket));
    assert_eq!(
        ask(&mut t, 0, "s", "z"),
        Outcome::Rejected(Rejection::NoTicket)
    );
    assert_eq!(t.outstanding(), 2, "rejected requests are not kept");
}

#[test]
fn closing_cancels_waiters_at_once_and_lets_holders_finish() {
    let mut t = engine(&[]);
    assert_eq!(t.configure(0, "evt", 1, Some(500)), Ok(()));
    let a = id(ask(&mut t, 0, "s1", "evt"));
    let b = id(ask(&mut t, 0, "s2", "evt"));
    events(&mut t);
    assert_eq!(t.next_due(), Some(500));
    t.advance(500);
    let evs = events(&mut t);
    assert_eq!(cancelled(&evs), vec![("s2", b, CancelReason::Closed)]);
    assert_eq!(
        ask(&mut t, 510, "s3", "evt"),
        Outcome::Rejected(Rejection::UnknownCategory)
    );
    assert_eq!(
        t.broadcast(510, "evt", "hi"),
        Err(TicketError::UnknownCategory("evt".into()))
    );
    assert_eq!(
        t.renew(600, a, 2000),
        Ok(Renewal::Renewed),
        "the holder keeps working"
    );
    // A new category of the same name is independent of the old holder.
    assert_eq!(t.configure(700, "evt", 1, None), Ok(()));
    let c = id(ask(&mut t, 700, "s3", "evt"));
    let d = ask(&mut t, 700, "s4", "evt");
    assert!(matches!(d, Outcome::Waiting(_)));
    events(&mut t);
    assert_eq!(t.renew(800, a, 0), Ok(Renewal::Released));
    assert!(
        granted(&events(&mut t)).is_empty(),
        "the old ticket is destroyed"
    );
    assert_eq!(t.renew(800, c, 0), Ok(Renewal::Released));
    assert_eq!(granted(&events(&mut t)), vec![id(d)]);
}

#[test]
fn a_close_delay_of_zero_closes_at_once() {
    let mut t = engine(&[("evt", 1)]);
    let a = id(ask(&mut t, 0, "s", "evt"));
    let b = id(ask(&mut t, 0, "s", "evt"));
    events(&mut t);
    assert_eq!(t.configure(10, "evt", 1, Some(0)), Ok(()));
    assert_eq!(
        cancelled(&events(&mut t)),
        vec![("s", b, CancelReason::Closed)]
    );
    assert!(t.stats("evt").is_none());
    assert_eq!(t.renew(20, a, 0), Ok(Renewal::Released));
    assert_eq!(t.outstanding(), 0);
}

#[test]
fn broadcast_reaches_each_member_once_holders_and_waiters() {
    let mut t = engine(&[("room", 2)]);
    ask(&mut t, 0, "s1", "room");
    ask(&mut t, 0, "s1", "room");
    ask(&mut t, 0, "s2", "room");
    events(&mut t);
    assert_eq!(t.broadcast(1, "room", "hi"), Ok(2));
    assert_eq!(
        events(&mut t),
        vec![Event::Broadcast {
            category: "room".into(),
            targets: vec!["s1", "s2"],
            payload: "hi"
        }]
    );
    assert_eq!(
        t.broadcast(1, "nope", "hi"),
        Err(TicketError::UnknownCategory("nope".into()))
    );
}

#[test]
fn the_table_form_makes_one_request_per_entry_and_echoes_the_empty_key() {
    let mut t = engine(&[("odbc", 1)]);
    let results = t.request_many(
        0,
        "s",
        "odbc",
        [("s:job_a", "A-ARG"), ("s:job_b", "B-ARG")],
        Some("USER DATA"),
        feedback("ticket:odbc?fb"),
    );
    let results = results.unwrap_or_default();
    assert_eq!(results.len(), 2);
    assert!(matches!(results[0], (ref cb, Outcome::Granted(_)) if &**cb == "s:job_a"));
    assert!(matches!(results[1], (ref cb, Outcome::Waiting(_)) if &**cb == "s:job_b"));
    let evs = events(&mut t);
    assert!(matches!(
        &evs[0],
        Event::Granted {
            payload: "A-ARG",
            ..
        }
    ));
    assert!(matches!(
        &evs[1],
        Event::FeedbackTable { results: r, echo: Some("USER DATA"), .. } if *r == results
    ));
    // The waiter gets its own argument when granted later.
    t.advance(1000);
    assert!(events(&mut t).iter().any(|e| matches!(
        e,
        Event::Granted {
            payload: "B-ARG",
            ..
        }
    )));
}

#[test]
fn the_table_form_on_an_unknown_category_feeds_back_an_empty_table() {
    let mut t = engine(&[]);
    let result = t.request_many(0, "s", "nope", [("s:a", "x")], Some("echo"), feedback("k"));
    assert!(result.is_err());
    assert!(matches!(
        events(&mut t).as_slice(),
        [Event::FeedbackTable { results, echo: None, .. }] if results.is_empty()
    ));
}

#[test]
fn a_bad_callback_in_a_table_refuses_the_whole_table() {
    let mut t = engine(&[("odbc", 5)]);
    let result = t.request_many(0, "s", "odbc", [("s:a", "x"), ("b=c", "y")], None, None);
    assert_eq!(result, Err(TicketError::InvalidCallback("b=c".into())));
    assert_eq!(t.outstanding(), 0);
    assert!(events(&mut t).is_empty());
}

#[test]
fn raising_a_limit_grants_waiters_at_once_in_fifo_order() {
    let mut t = engine(&[("odbc", 1)]);
    ask(&mut t, 0, "s", "odbc");
    let waiting: Vec<_> = (0..3).map(|_| id(ask(&mut t, 0, "s", "odbc"))).collect();
    events(&mut t);
    assert_eq!(t.configure(5, "odbc", 3, None), Ok(()));
    assert_eq!(granted(&events(&mut t)), waiting[..2].to_vec());
}

#[test]
fn lowering_a_limit_counts_tickets_in_circulation() {
    let mut t = engine(&[("odbc", 3)]);
    let holders: Vec<_> = (0..3).map(|_| id(ask(&mut t, 0, "s", "odbc"))).collect();
    let waiter = id(ask(&mut t, 0, "s", "odbc"));
    assert_eq!(t.configure(1, "odbc", 1, None), Ok(()));
    events(&mut t);
    for holder in &holders[..2] {
        t.renew(2, *holder, 0).ok();
        assert!(granted(&events(&mut t)).is_empty());
    }
    t.renew(3, holders[2], 0).ok();
    assert_eq!(granted(&events(&mut t)), vec![waiter]);
    assert_eq!(t.stats("odbc").map(|s| s.holders), Some(1));
}

#[test]
fn a_limit_without_waiting_room_grants_what_fits_and_cancels_the_rest() {
    let mut t = engine(&[("odbc", 1)]);
    ask(&mut t, 0, "s", "odbc");
    let w1 = id(ask(&mut t, 0, "s", "odbc"));
    let w2 = id(ask(&mut t, 0, "s", "odbc"));
    events(&mut t);
    assert_eq!(t.configure(1, "odbc", -2, None), Ok(()));
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![w1]);
    assert_eq!(
        cancelled(&evs),
        vec![("s", w2, CancelReason::NoWaitingRoom)]
    );
}

#[test]
fn renewing_a_waiter_is_ignored_and_releasing_it_withdraws_it() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    let b = id(ask(&mut t, 0, "s", "odbc"));
    let c = id(ask(&mut t, 0, "s", "odbc"));
    assert_eq!(t.renew(1, b, 5000), Ok(Renewal::Ignored));
    assert_eq!(t.renew(1, b, 0), Ok(Renewal::Withdrawn));
    events(&mut t);
    t.renew(2, a, 0).ok();
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![c]);
    assert!(cancelled(&evs).is_empty());
}

#[test]
fn a_full_request_table_rejects_with_feedback_false() {
    let config = TicketConfig {
        capacity: 2,
        categories: vec![("odbc".into(), 1)],
        ..TicketConfig::default()
    };
    let mut t: Engine = Ticket::new(config).unwrap_or_else(|e| panic!("{e}"));
    ask(&mut t, 0, "s", "odbc");
    ask(&mut t, 0, "s", "odbc");
    let result = t.request(0, "s", "odbc", "s:work", "x", feedback("k"));
    assert_eq!(result, Ok(Outcome::Rejected(Rejection::Capacity)));
    assert!(events(&mut t).iter().any(|e| matches!(
        e,
        Event::Feedback {
            outcome: Outcome::Rejected(Rejection::Capacity),
            ..
        }
    )));
}

#[test]
fn a_requester_that_goes_away_loses_everything_at_once_without_notice() {
    let mut t = engine(&[("odbc", 1)]);
    ask(&mut t, 0, "dead", "odbc");
    ask(&mut t, 0, "dead", "odbc");
    let alive = id(ask(&mut t, 0, "alive", "odbc"));
    events(&mut t);
    assert_eq!(t.forget(10, &"dead"), 2);
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![alive]);
    assert!(cancelled(&evs).is_empty());
}

#[test]
fn an_undeliverable_grant_is_cancelled_with_notice_and_handed_off() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s1", "odbc"));
    let b = id(ask(&mut t, 0, "s2", "odbc"));
    events(&mut t);
    assert_eq!(t.cancel(1, a), Ok(()));
    let evs = events(&mut t);
    assert_eq!(granted(&evs), vec![b]);
    assert_eq!(
        cancelled(&evs),
        vec![("s1", a, CancelReason::Undeliverable)]
    );
    assert_eq!(t.cancel(1, a), Err(TicketError::UnknownRequest(a)));
}

#[test]
fn cancel_notices_are_grouped_per_requester() {
    let mut t = engine(&[("odbc", 3)]);
    for who in ["s1", "s2", "s1"] {
        ask(&mut t, 0, who, "odbc");
    }
    events(&mut t);
    t.advance(1000);
    let evs = events(&mut t);
    let notices: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Cancelled {
                requester,
                requests,
            } => Some((*requester, requests.len())),
            _ => None,
        })
        .collect();
    assert_eq!(notices, vec![("s1", 2), ("s2", 1)]);
}

#[test]
fn new_arrivals_never_overtake_waiters() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    let b = id(ask(&mut t, 0, "s", "odbc"));
    t.renew(1, a, 0).ok();
    let c = ask(&mut t, 1, "s", "odbc");
    assert!(matches!(c, Outcome::Waiting(_)));
    assert_eq!(granted(&events(&mut t)), vec![a, b]);
}

#[test]
fn configured_categories_are_validated() {
    let config = TicketConfig {
        categories: vec![("a=b".into(), 1)],
        ..TicketConfig::default()
    };
    assert!(matches!(
        Ticket::<u8, u8>::new(config),
        Err(TicketError::InvalidCategory(_))
    ));
    let mut t = engine(&[]);
    assert_eq!(
        t.configure(0, "x?y", 1, None),
        Err(TicketError::InvalidCategory("x?y".into()))
    );
    assert_eq!(
        t.request(0, "s", "odbc", "", "x", None),
        Err(TicketError::InvalidCallback(String::new()))
    );
}

#[test]
fn keys_complete_with_the_request_id_parser() {
    let mut t = engine(&[("odbc", 1)]);
    let a = id(ask(&mut t, 0, "s", "odbc"));
    let text = format!("{a}");
    assert_eq!(key::parse(&text), Ok(key::Key::At { text: &text[1..] }));
    let parsed: Result<RequestId, _> = text.parse();
    assert_eq!(parsed, Ok(a));
    assert_eq!(t.renew(1, a, 0), Ok(Renewal::Released));
}

/// The spec's login storm: 100 requests, limit 10, each holder works 50 ms then releases.
#[test]
fn login_storm() {
    let mut t = engine(&[("login", 10)]);
    let ids: Vec<_> = (0..100).map(|_| id(ask(&mut t, 0, "s", "login"))).collect();
    let mut now = 0;
    let mut served = Vec::new();
    let mut working: Vec<(u64, RequestId)> = Vec::new();
    let mut most = 0;
    loop {
        for event in t.drain_events() {
            if let Event::Granted { request, .. } = event {
                served.push(request);
                working.push((now + 50, request));
            }
        }
        most = most.max(working.len());
        assert!(working.len() <= 10);
        working.sort();
        let Some((at, request)) = working.first().copied() else {
            break;
        };
        working.remove(0);
        now = at;
        assert_eq!(t.renew(now, request, 0), Ok(Renewal::Released));
    }
    assert_eq!(most, 10);
    assert_eq!(served, ids, "all 100 served in arrival order");
    assert_eq!(now, 500, "ten waves of 50 ms");
    assert_eq!(t.outstanding(), 0);
}

/// The same storm when holders never release: expiry drives the hand-offs.
#[test]
fn login_storm_by_expiry() {
    let mut t = engine(&[("login", 10)]);
    let ids: Vec<_> = (0..100).map(|_| id(ask(&mut t, 0, "s", "login"))).collect();
    let mut served = granted(&events(&mut t));
    while let Some(due) = t.next_due() {
        t.advance(due);
        served.extend(granted(&events(&mut t)));
        assert!(t.stats("login").is_some_and(|s| s.holders <= 10));
    }
    assert_eq!(served, ids);
    assert_eq!(t.outstanding(), 0);
}
