//! One test per rule of `spec/route.md` (with decision 36).

use stage_route::{Entry, Event, FailReason, Published, Route, RouteConfig, RouteError, Token};
use std::sync::Arc;

type Engine = Route<&'static str, &'static str>;
type Ev = Event<&'static str, &'static str>;

fn engine() -> Engine {
    Route::new(RouteConfig::default())
}

fn events(route: &mut Engine) -> Vec<Ev> {
    route.drain_events().collect()
}

fn subscribe(route: &mut Engine, now: u64, who: &'static str, subs: &[(&str, &str)]) {
    let entries = subs
        .iter()
        .map(|&(id, callback)| (id, Entry::callback(callback)));
    assert_eq!(route.register(now, who, entries), Ok(()));
}

fn set(route: &mut Engine, now: u64, who: &'static str, id: &str, entry: Entry) {
    assert_eq!(route.register(now, who, [(id, entry)]), Ok(()));
}

/// The probes of the last publication: (registrant, token).
fn probes(evs: &[Ev]) -> Vec<(&'static str, Token)> {
    evs.iter()
        .flat_map(|e| match e {
            Event::Probe { probes, .. } => probes.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn delivered(evs: &[Ev]) -> Vec<(&'static str, Vec<String>)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Deliver { to, callbacks, .. } => {
                Some((*to, callbacks.iter().map(|c| c.to_string()).collect()))
            }
            _ => None,
        })
        .collect()
}

fn failed(evs: &[Ev]) -> Vec<FailReason> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Failed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// Publishes unicast and answers the probe of `taker`; returns who got it.
fn route_one(
    route: &mut Engine,
    now: u64,
    key: &str,
    taker: &str,
) -> Vec<(&'static str, Vec<String>)> {
    assert!(route.publish(now, "front", key, "v").is_ok());
    let evs = events(route);
    let mut outcome = delivered(&evs);
    if let Some((_, token)) = probes(&evs).into_iter().find(|(who, _)| *who == taker) {
        assert_eq!(route.accept(now, &token.to_string()), Ok(()));
        outcome = delivered(&events(route));
    }
    outcome
}

#[test]
fn unicast_probes_then_delivers_with_the_publisher_as_return_address() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    assert_eq!(
        r.publish(10, "front", "chat?room1=on_reply", "hi"),
        Ok(Published::Probing(1))
    );
    let evs = events(&mut r);
    let token = Token {
        publication: 1,
        candidate: 0,
    };
    assert_eq!(
        evs,
        vec![Event::Probe {
            target: "chat?room1=on_reply".into(),
            probes: vec![("w1", token)]
        }]
    );
    assert_eq!(r.accept(20, &token.to_string()), Ok(()));
    assert_eq!(
        events(&mut r),
        vec![Event::Deliver {
            to: "w1",
            callbacks: vec![Arc::from("on_chat=on_reply")],
            request_key: "route:chat?room1=on_reply".into(),
            reply_to: "front",
            payload: "hi",
        }]
    );
    assert_eq!(r.open_probes(), 0);
}

#[test]
fn the_first_acceptance_wins_and_later_ones_are_refused() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    subscribe(&mut r, 0, "w2", &[("chat", "on_chat")]);
    assert_eq!(
        r.publish(0, "front", "chat", "v"),
        Ok(Published::Probing(2))
    );
    let ps = probes(&events(&mut r));
    assert_eq!(ps.len(), 2);
    assert_eq!(r.accept(1, &ps[1].1.to_string()), Ok(()));
    assert_eq!(
        delivered(&events(&mut r)),
        vec![("w2", vec!["on_chat".into()])]
    );
    let late = ps[0].1.to_string();
    assert_eq!(
        r.accept(2, &late),
        Err(RouteError::UnknownToken(late.clone()))
    );
    assert!(events(&mut r).is_empty());
}

#[test]
fn a_declining_subscriber_is_skipped() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    subscribe(&mut r, 0, "w2", &[("chat", "on_chat")]);
    for n in 0..5 {
        assert_eq!(
            route_one(&mut r, n, "chat", "w2"),
            vec![("w2", vec!["on_chat".into()])]
        );
    }
}

#[test]
fn no_subscriber_fails_at_once() {
    let mut r = engine();
    assert_eq!(
        r.publish(0, "front", "none!on_fail", "x"),
        Ok(Published::Failed)
    );
    assert_eq!(
        events(&mut r),
        vec![Event::Failed {
            publisher: "front",
            callback: Some("on_fail".into()),
            request_key: "route:none!on_fail".into(),
            payload: "x",
            reason: FailReason::NoSubscriber,
        }]
    );
}

#[test]
fn an_unanswered_probe_fails_after_the_timeout() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    r.publish(100, "front", "chat!f", "v").ok();
    let token = probes(&events(&mut r))[0].1;
    assert_eq!(r.next_due(), Some(400));
    r.advance(399);
    assert!(events(&mut r).is_empty());
    r.advance(400);
    assert_eq!(failed(&events(&mut r)), vec![FailReason::Timeout]);
    assert!(r.accept(401, &token.to_string()).is_err(), "too late");
    assert!(events(&mut r).is_empty());
}

#[test]
fn broadcast_delivers_to_all_eligible_without_probes() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("news", "on_news")]);
    subscribe(&mut r, 0, "w2", &[("news", "on_news")]);
    assert_eq!(
        r.publish(0, "front", "*news", "n"),
        Ok(Published::Delivered(2))
    );
    let evs = events(&mut r);
    assert!(probes(&evs).is_empty());
    assert_eq!(
        delivered(&evs),
        vec![
            ("w1", vec!["on_news".into()]),
            ("w2", vec!["on_news".into()])
        ]
    );
    assert!(evs.iter().all(
        |e| matches!(e, Event::Deliver { request_key, .. } if &**request_key == "route:*news")
    ));
    assert_eq!(
        r.publish(0, "front", "*nobody!f", "n"),
        Ok(Published::Delivered(0))
    );
    assert!(events(&mut r).is_empty(), "no fail callback for broadcasts");
}

#[test]
fn disable_and_enable_a_subscription() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    set(&mut r, 1, "w1", "chat", Entry::Disable);
    assert_eq!(r.publish(2, "front", "chat!f", "v"), Ok(Published::Failed));
    set(&mut r, 3, "w1", "chat", Entry::Enable);
    assert_eq!(
        r.publish(4, "front", "chat!f", "v"),
        Ok(Published::Probing(1))
    );
}

#[test]
fn a_timed_pause_ends_by_itself() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    set(&mut r, 0, "w1", "chat", Entry::Pause(2000));
    assert_eq!(r.publish(1999, "front", "chat", "v"), Ok(Published::Failed));
    assert_eq!(
        r.publish(2000, "front", "chat", "v"),
        Ok(Published::Probing(1))
    );
}

#[test]
fn a_registration_without_keep_alive_is_dropped_after_30_s() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat")]);
    subscribe(&mut r, 0, "w2", &[("chat", "on_chat")]);
    assert_eq!(r.next_due(), Some(30_000));
    for now in [10_000, 20_000, 30_000] {
        assert_eq!(r.keep_alive(now, &"w2"), Ok(()));
    }
    assert_eq!(
        r.publish(31_000, "front", "chat", "v"),
        Ok(Published::Probing(1))
    );
    assert_eq!(probes(&events(&mut r))[0].0, "w2");
    assert_eq!(r.registrants(), 1);
    assert_eq!(
        r.keep_alive(31_000, &"w1"),
        Err(RouteError::UnknownRegistrant)
    );
}

#[test]
fn subscribing_again_replaces_the_callback_and_keeps_the_pause() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "a")]);
    set(&mut r, 0, "w1", "chat", Entry::Pause(100));
    subscribe(&mut r, 1, "w1", &[("chat", "b")]);
    assert_eq!(r.publish(50, "front", "chat", "v"), Ok(Published::Failed));
    assert_eq!(
        route_one(&mut r, 100, "chat", "w1"),
        vec![("w1", vec!["b".into()])]
    );
}

#[test]
fn ids_fall_back_to_their_groups() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("game.", "on_game")]);
    subscribe(&mut r, 0, "w2", &[("game.kr.", "on_kr")]);
    assert_eq!(
        route_one(&mut r, 1, "game.kr.login", "w2"),
        vec![("w2", vec!["on_kr".into()])]
    );
    assert_eq!(
        route_one(&mut r, 1, "game.us.login?x", "w1"),
        vec![("w1", vec!["on_game".into()])]
    );
    set(&mut r, 2, "w2", "game.kr.", Entry::Disable);
    assert_eq!(
        route_one(&mut r, 3, "game.kr.login", "w1"),
        vec![("w1", vec!["on_game".into()])]
    );
    r.publish(4, "front", "*game.kr.x", "v").ok();
    let evs = events(&mut r);
    assert!(
        matches!(&evs[0], Event::Deliver { request_key, .. } if &**request_key == "route:*game.kr.x")
    );
}

#[test]
fn the_answer_may_select_callbacks() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("a", "ca"), ("b", "cb")]);
    assert_eq!(r.publish(0, "front", "a,b", "v"), Ok(Published::Probing(1)));
    let token = probes(&events(&mut r))[0].1;
    let bad = format!("{token}?zz");
    assert_eq!(
        r.accept(1, &bad),
        Err(RouteError::NoMatchingCallback(bad.clone()))
    );
    assert_eq!(r.accept(1, &format!("{token}?cb")), Ok(()));
    assert_eq!(delivered(&events(&mut r)), vec![("w1", vec!["cb".into()])]);
    assert_eq!(
        route_one(&mut r, 2, "a,b", "w1"),
        vec![("w1", vec!["ca".into(), "cb".into()])]
    );
}

#[test]
fn a_whole_stage_pause_pauses_every_subscription_and_keeps_expiry_apart() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("a", "ca"), ("b", "cb")]);
    assert_eq!(r.pause(0, &"w1", 60_000), Ok(()));
    assert_eq!(r.publish(1000, "front", "a", "v"), Ok(Published::Failed));
    assert_eq!(
        r.publish(1000, "front", "*b", "v"),
        Ok(Published::Delivered(0))
    );
    assert_eq!(r.pause(1000, &"w1", 0), Ok(()), "zero resumes");
    assert_eq!(
        r.publish(1001, "front", "a", "v"),
        Ok(Published::Probing(1))
    );
    assert_eq!(r.pause(2000, &"w1", 60_000), Ok(()));
    r.advance(32_000);
    assert_eq!(
        r.registrants(),
        0,
        "the keep-alive runs from the last message"
    );
    assert_eq!(
        r.pause(32_000, &"w1", 1),
        Err(RouteError::UnknownRegistrant)
    );
}

#[test]
fn removing_one_subscription_and_all_of_them() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("a", "ca"), ("b", "cb")]);
    subscribe(&mut r, 0, "w1", &[("a", "")]);
    assert_eq!(r.publish(1, "front", "a", "v"), Ok(Published::Failed));
    assert_eq!(r.publish(1, "front", "b", "v"), Ok(Published::Probing(1)));
    set(&mut r, 2, "w1", "b", Entry::Remove);
    assert_eq!(
        r.registrants(),
        0,
        "a registrant without subscriptions is removed"
    );
    subscribe(&mut r, 3, "w1", &[("a", "ca"), ("b", "cb")]);
    assert_eq!(r.unregister(4, &"w1"), Ok(()));
    assert_eq!(
        r.publish(5, "front", "*a,b", "v"),
        Ok(Published::Delivered(0))
    );
    subscribe(&mut r, 6, "w1", &[("a", "ca")]);
    assert_eq!(
        r.publish(7, "front", "a", "v"),
        Ok(Published::Probing(1)),
        "re-registering works"
    );
    assert_eq!(r.unregister(8, &"w9"), Err(RouteError::UnknownRegistrant));
}

#[test]
fn only_tables_create_registrations() {
    let mut r = engine();
    assert_eq!(r.keep_alive(0, &"w1"), Err(RouteError::UnknownRegistrant));
    assert_eq!(r.pause(0, &"w1", 10), Err(RouteError::UnknownRegistrant));
    set(&mut r, 0, "w1", "chat", Entry::Enable);
    assert_eq!(r.registrants(), 0, "enabling nothing registers nothing");
}

#[test]
fn undeliverable_probes_drop_candidates_then_fail() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "c")]);
    subscribe(&mut r, 0, "w2", &[("chat", "c")]);
    r.publish(0, "front", "chat!f", "v").ok();
    let ps = probes(&events(&mut r));
    assert_eq!(r.probe_failed(1, ps[0].1), Ok(()));
    assert!(events(&mut r).is_empty());
    assert_eq!(r.probe_failed(1, ps[1].1), Ok(()));
    assert_eq!(failed(&events(&mut r)), vec![FailReason::Undeliverable]);
}

#[test]
fn one_probe_per_registrant_even_through_several_ids() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("a", "c"), ("b", "c")]);
    subscribe(&mut r, 0, "w2", &[("b", "d")]);
    assert_eq!(r.publish(0, "front", "a,b", "v"), Ok(Published::Probing(2)));
    let ps = probes(&events(&mut r));
    assert_eq!(ps.iter().map(|p| p.0).collect::<Vec<_>>(), vec!["w1", "w2"]);
    assert_eq!(r.accept(1, &ps[0].1.to_string()), Ok(()));
    assert_eq!(
        delivered(&events(&mut r)),
        vec![("w1", vec!["c".into()])],
        "a shared callback runs once"
    );
}

#[test]
fn a_return_callback_replaces_the_registered_reply_part() {
    let mut r = engine();
    subscribe(&mut r, 0, "w1", &[("chat", "on_chat=old")]);
    assert_eq!(
        route_one(&mut r, 0, "chat=on_reply", "w1"),
        vec![("w1", vec!["on_chat=on_reply".into()])]
    );
    assert_eq!(
        route_one(&mut r, 0, "chat", "w1"),
        vec![("w1", vec!["on_chat=old".into()])]
    );
}

#[test]
fn bad_input_is_refused_without_state_change() {
    let mut r = engine();
    assert!(matches!(
        r.publish(0, "front", "a!", "v"),
        Err(RouteError::MalformedKey { .. })
    ));
    assert!(events(&mut r).is_empty());
    let result = r.register(
        0,
        "w1",
        [
            ("ok", Entry::callback("c")),
            ("bad,id", Entry::callback("c")),
        ],
    );
    assert_eq!(
        result,
        Err(RouteError::InvalidSubscription("bad,id".into()))
    );
    assert_eq!(r.registrants(), 0);
    assert_eq!(
        r.accept(0, "on_chat"),
        Err(RouteError::MalformedToken("on_chat".into()))
    );
    assert!(r.accept(0, "r1+0").is_err());
}
