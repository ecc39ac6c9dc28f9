//! Metered: the in-process snapshot, and, with the `metrics` feature, the
//! values a `metrics-util` debugging recorder captures (installed for the
//! test's thread only).

mod common;

use std::time::Duration;

use common::*;
use rumpsteak_aura::{ChoreoHandler, Label};
use rumpsteak_aura_layers::{HandlerExt, Metered, OpKind};

/// A runs: send, recv, choose, offer_among, a timed-out recv and a send to
/// a peer with no channel; B answers.
async fn exchange(h: &mut Metered<Handler>) {
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut hb = Handler::new();
    h.send(
        &mut a,
        Role::B,
        &Offer {
            item: "lamp".into(),
            price: 40,
        },
    )
    .await
    .expect("send");
    let o: Offer = hb.recv(&mut b, Role::A).await.expect("recv");
    hb.send(&mut b, Role::A, &o.price).await.expect("send");
    let p: u32 = h.recv(&mut a, Role::B).await.expect("recv");
    assert_eq!(p, 40);
    h.choose(&mut a, Role::B, OFFER).await.expect("choose");
    assert_eq!(hb.offer(&mut b, Role::A).await.expect("offer"), OFFER);
    hb.choose(&mut b, Role::A, ACCEPT).await.expect("choose");
    let l = h
        .offer_among(&mut a, Role::B, &[ACCEPT, REJECT])
        .await
        .expect("offer");
    assert_eq!(l, ACCEPT);
    let t = h
        .recv_timeout::<u32>(&mut a, Role::B, Duration::from_millis(2))
        .await;
    assert!(t.is_err());
    let n = h.send(&mut a, Role::Seller, &1u8).await;
    assert!(n.is_err());
    a.close_channel(&Role::B);
    let c = h.choose(&mut a, Role::B, Label("late")).await;
    assert!(c.is_err());
}

#[test]
fn the_snapshot_counts_per_peer() {
    let mut h = Metered::new(Handler::new()).with_latency_sampling(1);
    runtime().block_on(exchange(&mut h));
    let s = h.snapshot();
    assert_eq!(s.role.as_deref(), Some("A"));
    assert_eq!(s.open_sessions, 0);
    let b = s.peer("B").expect("B");
    assert_eq!(b.operations.send, 1);
    assert_eq!(b.operations.recv, 2);
    assert_eq!(b.operations.choose, 2);
    assert_eq!(b.operations.offer, 1);
    // Offer{lamp, 40}: 2 + 1 + 4 + 1; the label `offer`: 2 + 1 + 5.
    assert_eq!(b.bytes_sent, 8 + 8);
    // 40u32: 2 + 1; the label `accept`: 2 + 1 + 6.
    assert_eq!(b.bytes_received, 3 + 9);
    assert_eq!(b.errors.timeout, 1);
    assert_eq!(
        b.errors.no_channel, 1,
        "the closed channel is no channel any more"
    );
    assert_eq!(b.errors.total(), 2);
    assert_eq!(b.cancelled, 0);
    assert_eq!(b.latency.count, 6);
    assert!(
        b.latency.max >= Duration::from_millis(2),
        "the timeout took its time"
    );
    assert!(b.latency.quantile(0.5).is_some());
    let seller = s.peer("Seller").expect("Seller");
    assert_eq!(seller.operations.send, 1);
    assert_eq!(seller.errors.no_channel, 1);
    assert_eq!(s.total_operations().get(OpKind::Send), 2);
    // The snapshot prints as a table and serializes.
    assert!(s.to_string().contains("with B"));
    let json = serde_json::to_string(&s).expect("json");
    assert!(json.contains("\"peer\":\"Seller\""));
}

#[test]
fn sampling_times_one_operation_in_n() {
    let mut h = Metered::new(Handler::new()).with_latency_sampling(3);
    runtime().block_on(async {
        let (mut a, _b) = pair(Role::A, Role::B);
        for i in 0..9u8 {
            h.send(&mut a, Role::B, &i).await.expect("send");
        }
    });
    let b = h.snapshot().peers.remove(0);
    assert_eq!(b.operations.send, 9);
    assert_eq!(b.latency.count, 3);
}

#[cfg(feature = "metrics")]
#[test]
fn the_metrics_facade_sees_counters_histograms_and_the_gauge() {
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut h = Metered::new(Handler::new()).with_latency_sampling(1);
    metrics::with_local_recorder(&recorder, || {
        Metered::<Handler>::describe_metrics();
        runtime().block_on(exchange(&mut h));
    });
    let values = snapshotter.snapshot().into_vec();
    let find = |kind: MetricKind, name: &str, labels: &[(&str, &str)]| {
        values
            .iter()
            .find(|(k, ..)| {
                k.kind() == kind
                    && k.key().name() == name
                    && labels.iter().all(|(lk, lv)| {
                        k.key().labels().any(|l| l.key() == *lk && l.value() == *lv)
                    })
                    && k.key().labels().count() == labels.len()
            })
            .map(|(_, unit, desc, v)| (*unit, desc.clone(), v))
    };
    let counter =
        |name: &str, labels: &[(&str, &str)]| match find(MetricKind::Counter, name, labels) {
            Some((_, _, DebugValue::Counter(n))) => n.to_owned(),
            other => panic!("{name} {labels:?}: {other:?}"),
        };
    let ab = [("role", "A"), ("peer", "B")];
    let with_op = |op: &'static str| [("role", "A"), ("peer", "B"), ("op", op)];
    assert_eq!(counter("rumpsteak_operations_total", &with_op("send")), 1);
    assert_eq!(counter("rumpsteak_operations_total", &with_op("recv")), 2);
    assert_eq!(counter("rumpsteak_operations_total", &with_op("choose")), 2);
    assert_eq!(counter("rumpsteak_operations_total", &with_op("offer")), 1);
    assert_eq!(counter("rumpsteak_bytes_sent_total", &ab), 16);
    assert_eq!(counter("rumpsteak_bytes_received_total", &ab), 12);
    assert_eq!(
        counter(
            "rumpsteak_errors_total",
            &[
                ("role", "A"),
                ("peer", "B"),
                ("op", "recv"),
                ("class", "timeout")
            ]
        ),
        1
    );
    assert_eq!(
        counter(
            "rumpsteak_errors_total",
            &[
                ("role", "A"),
                ("peer", "Seller"),
                ("op", "send"),
                ("class", "no_channel")
            ]
        ),
        1
    );
    assert_eq!(counter("rumpsteak_operations_cancelled_total", &ab), 0);
    match find(
        MetricKind::Histogram,
        "rumpsteak_operation_duration_seconds",
        &with_op("recv"),
    ) {
        Some((unit, desc, DebugValue::Histogram(samples))) => {
            assert_eq!(samples.len(), 2);
            assert!(samples.iter().any(|s| s.into_inner() >= 0.002));
            assert_eq!(unit, Some(metrics::Unit::Seconds));
            assert!(desc.is_some());
        }
        other => panic!("histogram: {other:?}"),
    }
    match find(
        MetricKind::Gauge,
        "rumpsteak_sessions_open",
        &[("role", "A")],
    ) {
        Some((_, _, DebugValue::Gauge(g))) => assert_eq!(g.into_inner(), 0.0),
        other => panic!("gauge: {other:?}"),
    }
    // Every label is one of the documented ones.
    for (k, ..) in &values {
        for l in k.key().labels() {
            assert!(
                ["role", "peer", "op", "class"].contains(&l.key()),
                "{}",
                l.key()
            );
        }
    }
}

/// The open-session gauge's value for `role`. The debugging recorder
/// resets a gauge to 0 at each snapshot, so the value read each time is
/// added to what was read before.
#[cfg(feature = "metrics")]
struct GaugeReader {
    snapshotter: metrics_util::debugging::Snapshotter,
    total: f64,
}

#[cfg(feature = "metrics")]
impl GaugeReader {
    fn read(&mut self, role: &str) -> f64 {
        use metrics_util::debugging::DebugValue;
        for (k, .., v) in self.snapshotter.snapshot().into_vec() {
            if k.key().name() == "rumpsteak_sessions_open"
                && k.key()
                    .labels()
                    .any(|l| l.key() == "role" && l.value() == role)
                && let DebugValue::Gauge(g) = v
            {
                self.total += g.into_inner();
            }
        }
        self.total
    }
}

#[cfg(feature = "metrics")]
#[test]
fn the_gauge_follows_open_sessions() {
    use metrics_util::debugging::DebuggingRecorder;

    let recorder = DebuggingRecorder::new();
    let mut gauge = GaugeReader {
        snapshotter: recorder.snapshotter(),
        total: 0.0,
    };
    let (mut a, _b) = pair(Role::A, Role::B);
    let (x, _y) = rumpsteak_aura_handler::SimpleChannel::pair();
    a.register_channel(Role::Seller, x);
    let mut h = Metered::new(Handler::new());
    let rt = runtime();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(h.send(&mut a, Role::B, &1u8)).expect("send");
    });
    assert_eq!(
        gauge.read("A"),
        2.0,
        "the first operation is timed: a batch"
    );
    a.close_channel(&Role::Seller);
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(h.send(&mut a, Role::B, &1u8)).expect("send");
    });
    // The second is not timed: the gauge follows at the next batch, the
    // snapshot reads the endpoint as it is.
    assert_eq!(gauge.read("A"), 2.0);
    assert_eq!(h.snapshot().open_sessions, 1);
    h.flush_metrics();
    assert_eq!(gauge.read("A"), 1.0);
    drop(h);
    assert_eq!(gauge.read("A"), 0.0, "a dropped layer takes its share out");
}

/// Two sessions of one role, each under its own `Metered`: the gauge is
/// their total, and falls as each ends. (It used to be set by each layer
/// to its own count, so the last one to run won.)
#[cfg(feature = "metrics")]
#[test]
fn the_gauge_counts_every_session_of_a_role() {
    use metrics_util::debugging::DebuggingRecorder;

    let recorder = DebuggingRecorder::new();
    let mut gauge = GaugeReader {
        snapshotter: recorder.snapshotter(),
        total: 0.0,
    };
    let rt = runtime();
    let (mut a1, _b1) = pair(Role::A, Role::B);
    let (mut a2, _b2) = pair(Role::A, Role::B);
    let (x, _y) = rumpsteak_aura_handler::SimpleChannel::pair();
    a2.register_channel(Role::Seller, x);
    let mut h1 = Metered::new(Handler::new());
    let mut h2 = Metered::new(Handler::new());
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            h1.send(&mut a1, Role::B, &1u8).await.expect("send");
            h2.send(&mut a2, Role::B, &1u8).await.expect("send");
            h1.send(&mut a1, Role::B, &2u8).await.expect("send");
        })
    });
    assert_eq!(
        gauge.read("A"),
        3.0,
        "1 session in the first, 2 in the second"
    );
    a1.close_channel(&Role::B);
    metrics::with_local_recorder(&recorder, || {
        let r = rt.block_on(h1.send(&mut a1, Role::B, &3u8));
        assert!(r.is_err());
    });
    assert_eq!(gauge.read("A"), 2.0);
    drop(h2);
    assert_eq!(gauge.read("A"), 0.0);
    drop(h1);
    assert_eq!(gauge.read("A"), 0.0);
}

/// The exported value of the counter `name` labelled `role = "A"`, `peer =
/// "B"` (and `op` if given). The debugging recorder hands out each
/// counter's gain since the last snapshot, so the gains are added up.
#[cfg(feature = "metrics")]
struct CounterReader {
    snapshotter: metrics_util::debugging::Snapshotter,
    totals: std::collections::HashMap<String, u64>,
}

#[cfg(feature = "metrics")]
impl CounterReader {
    fn read(&mut self, name: &str, op: Option<&str>) -> u64 {
        use metrics_util::debugging::DebugValue;
        for (k, .., v) in self.snapshotter.snapshot().into_vec() {
            if let DebugValue::Counter(n) = v {
                let labels: Vec<String> = k
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                let id = format!("{}{{{}}}", k.key().name(), labels.join(","));
                *self.totals.entry(id).or_default() += n;
            }
        }
        let id = match op {
            Some(op) => format!("{name}{{role=A,peer=B,op={op}}}"),
            None => format!("{name}{{role=A,peer=B}}"),
        };
        self.totals.get(&id).copied().unwrap_or(0)
    }
}

/// With the default sampling, the export is brought up to date at every
/// timed operation (the first, then one in 16), at an error, by
/// `flush_metrics` and when the layer is dropped: in between, the exported
/// counters are behind the snapshot by at most 15 operations, never ahead.
#[cfg(feature = "metrics")]
#[test]
fn the_export_lags_the_snapshot_by_less_than_the_sampling() {
    use metrics_util::debugging::DebuggingRecorder;
    use rumpsteak_aura_layers::DEFAULT_LATENCY_SAMPLING;

    let recorder = DebuggingRecorder::new();
    let mut reader = CounterReader {
        snapshotter: recorder.snapshotter(),
        totals: Default::default(),
    };
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Handler::new());
    assert_eq!(h.latency_sampling(), DEFAULT_LATENCY_SAMPLING);
    let every = u64::from(DEFAULT_LATENCY_SAMPLING);
    let mut hb = Handler::new();
    let mut sends = 0;
    for i in 0..(3 * every + 5) {
        metrics::with_local_recorder(&recorder, || {
            rt.block_on(h.send(&mut a, Role::B, &(i as u8)))
                .expect("send");
        });
        let _: u8 = rt.block_on(hb.recv(&mut b, Role::A)).expect("recv");
        sends += 1;
        let snap = h.snapshot().peers.remove(0);
        assert_eq!(snap.operations.send, sends);
        let exported = reader.read("rumpsteak_operations_total", Some("send"));
        let bytes = reader.read("rumpsteak_bytes_sent_total", None);
        assert!(exported <= sends, "the export is never ahead");
        assert!(
            sends - exported < every,
            "{sends} sent, {exported} exported: more than {} behind",
            every - 1
        );
        // Operations 1, 1 + 16, 1 + 32, ... are timed and bring it up.
        if (sends - 1) % every == 0 {
            assert_eq!(exported, sends, "a timed operation flushes");
            assert_eq!(bytes, snap.bytes_sent);
        } else {
            assert_eq!(exported, sends - (sends - 1) % every);
        }
    }
    assert!(reader.read("rumpsteak_operations_total", Some("send")) < sends);
    h.flush_metrics();
    assert_eq!(
        reader.read("rumpsteak_operations_total", Some("send")),
        sends
    );
    // One more and an error: the error flushes at once.
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(h.send(&mut a, Role::B, &1u8)).expect("send");
        a.close_channel(&Role::B);
        let closed = rt.block_on(h.send(&mut a, Role::B, &1u8));
        assert!(closed.is_err());
    });
    assert_eq!(
        reader.read("rumpsteak_operations_total", Some("send")),
        sends + 2
    );
    // And a drop flushes what is left.
    metrics::with_local_recorder(&recorder, || {
        let (mut a2, _b2) = pair(Role::A, Role::B);
        rt.block_on(h.send(&mut a2, Role::B, &1u8)).expect("send");
        rt.block_on(h.send(&mut a2, Role::B, &2u8)).expect("send");
    });
    let before_drop = reader.read("rumpsteak_operations_total", Some("send"));
    let snap = h.snapshot().peers.remove(0);
    drop(h);
    let after_drop = reader.read("rumpsteak_operations_total", Some("send"));
    assert!(before_drop < snap.operations.send);
    assert_eq!(after_drop, snap.operations.send);
    assert_eq!(
        reader.read("rumpsteak_bytes_sent_total", None),
        snap.bytes_sent
    );
}

/// A future made and dropped before its first poll is no operation: it
/// counts nothing, and if it was the one to be timed, the next operation
/// is timed instead, so that one completed operation in `latency_sampling`
/// is still timed.
#[test]
fn an_unpolled_future_takes_no_sample() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Handler::new()).with_latency_sampling(4);
    let mut hb = Handler::new();
    let mut send = |h: &mut Metered<Handler>, a: &mut _, i: u8| {
        rt.block_on(h.send(a, Role::B, &i)).expect("send");
        let _: u8 = rt.block_on(hb.recv(&mut b, Role::A)).expect("recv");
    };
    // Operations 1 to 4: the first is timed, the next to be is the fifth.
    for i in 0..4 {
        send(&mut h, &mut a, i);
    }
    assert_eq!(h.snapshot().peers[0].latency.count, 1);
    // The fifth future is made and dropped unpolled.
    drop(h.send(&mut a, Role::B, &9u8));
    let s = h.snapshot().peers.remove(0);
    assert_eq!(s.operations.send, 4, "an unpolled future is not counted");
    assert_eq!(s.cancelled, 0, "nor is it a cancellation");
    assert_eq!(s.latency.count, 1);
    // The fifth operation that does complete is the one timed.
    send(&mut h, &mut a, 5);
    assert_eq!(h.snapshot().peers[0].latency.count, 2);
}

/// Dropping a future unpolled does not stretch the export's lag: the next
/// completed operation still brings the export up to date when the dropped
/// future was the one to be timed.
#[cfg(feature = "metrics")]
#[test]
fn an_unpolled_future_keeps_the_lag_bound() {
    use metrics_util::debugging::DebuggingRecorder;

    let recorder = DebuggingRecorder::new();
    let mut reader = CounterReader {
        snapshotter: recorder.snapshotter(),
        totals: Default::default(),
    };
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let mut h = Metered::new(Handler::new());
    let every = u64::from(h.latency_sampling());
    let mut hb = Handler::new();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..every {
            rt.block_on(h.send(&mut a, Role::B, &(i as u8)))
                .expect("send");
            let _: u8 = rt.block_on(hb.recv(&mut b, Role::A)).expect("recv");
        }
        // The future that would have been timed, dropped unpolled.
        drop(h.send(&mut a, Role::B, &0u8));
        rt.block_on(h.send(&mut a, Role::B, &1u8)).expect("send");
    });
    let sent = h.snapshot().peers[0].operations.send;
    assert_eq!(sent, every + 1);
    let exported = reader.read("rumpsteak_operations_total", Some("send"));
    assert!(
        sent - exported < every,
        "{sent} sent, {exported} exported: more than {} behind",
        every - 1
    );
}

/// One layer used with two endpoints in turn: each operation's bytes are
/// read from the endpoint it ran on, and the open-session count is that of
/// the endpoint of the last operation.
#[test]
fn a_layer_moved_between_endpoints_reads_each_one() {
    let rt = runtime();
    let (mut a1, _b1) = pair(Role::A, Role::B);
    let (mut a2, _b2) = pair(Role::A, Role::B);
    let (x, _y) = rumpsteak_aura_handler::SimpleChannel::pair();
    a2.register_channel(Role::Seller, x);
    let mut h = Metered::new(Handler::new()).with_latency_sampling(1);
    rt.block_on(async {
        h.send(&mut a1, Role::B, &1u8).await.expect("send");
        assert_eq!(h.snapshot().open_sessions, 1);
        h.send(&mut a2, Role::B, &vec![0u8; 40])
            .await
            .expect("send");
        assert_eq!(h.snapshot().open_sessions, 2);
        h.send(&mut a1, Role::B, &2u8).await.expect("send");
        assert_eq!(h.snapshot().open_sessions, 1);
        h.send(&mut a2, Role::Seller, &3u8).await.expect("send");
        assert_eq!(h.snapshot().open_sessions, 2);
    });
    let s = h.snapshot();
    let b = s.peer("B").expect("B");
    let seller = s.peer("Seller").expect("Seller");
    assert_eq!(b.operations.send, 3);
    assert_eq!(
        b.bytes_sent + seller.bytes_sent,
        a1.total_traffic().bytes_sent + a2.total_traffic().bytes_sent
    );
    assert_eq!(
        seller.bytes_sent,
        a2.traffic(&Role::Seller).expect("Seller").bytes_sent
    );
}

/// A layer moved into a task that is aborted mid-operation: dropping the
/// task drops the operation under way, counted as cancelled, and the layer;
/// the export ends with every send the task made (four of which no timed
/// operation had flushed) and the cancellation.
#[cfg(feature = "metrics")]
#[test]
fn a_layer_in_an_aborted_task_exports_everything() {
    use metrics_util::debugging::DebuggingRecorder;

    let recorder = DebuggingRecorder::new();
    let mut reader = CounterReader {
        snapshotter: recorder.snapshotter(),
        totals: Default::default(),
    };
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let (started, ready) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(async move {
                let mut h = Metered::new(Handler::new());
                for i in 0..5u8 {
                    h.send(&mut a, Role::B, &i).await.expect("send");
                }
                started.send(()).expect("the test waits");
                // B never answers: this waits until the task is aborted.
                let _: u32 = h.recv(&mut a, Role::B).await.expect("recv");
            });
            ready.await.expect("the task started");
            // Let the task reach its pending receive.
            tokio::task::yield_now().await;
            task.abort();
            assert!(task.await.expect_err("aborted").is_cancelled());
        });
    });
    for _ in 0..5 {
        let _: u8 = rt
            .block_on(Handler::new().recv(&mut b, Role::A))
            .expect("recv");
    }
    assert_eq!(reader.read("rumpsteak_operations_total", Some("send")), 5);
    assert_eq!(reader.read("rumpsteak_operations_cancelled_total", None), 1);
    assert!(reader.read("rumpsteak_bytes_sent_total", None) > 0);
}

/// Each peer's figures stay its own as operations move between peers: a
/// peer is listed once its first operation is polled (not when a future
/// for it is made and dropped unpolled), and the operations and bytes of
/// each peer are those the endpoint counted for it.
#[test]
fn operations_moving_between_peers_count_for_each() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let (x, mut s) = rumpsteak_aura_handler::SimpleChannel::pair();
    a.register_channel(Role::Seller, x);
    let mut h = Metered::new(Handler::new());
    drop(h.send(&mut a, Role::Seller, &1u8));
    assert!(
        h.snapshot().peers.is_empty(),
        "an unpolled future lists no peer"
    );
    let sends = [Role::B, Role::Seller, Role::Seller, Role::B, Role::Seller];
    for (i, to) in sends.iter().enumerate() {
        rt.block_on(h.send(&mut a, *to, &(i as u32))).expect("send");
    }
    let mut by_b = Handler::new();
    let got: u32 = rt.block_on(by_b.recv(&mut b, Role::A)).expect("recv");
    assert_eq!(got, 0);
    rt.block_on(by_b.send(&mut b, Role::A, &7u8)).expect("send");
    let back: u8 = rt.block_on(h.recv(&mut a, Role::B)).expect("recv");
    assert_eq!(back, 7);
    s.close();
    let snap = h.snapshot();
    let names: Vec<&str> = snap.peers.iter().map(|p| p.peer.as_str()).collect();
    assert_eq!(names, ["B", "Seller"]);
    for (role, name, sent) in [(Role::B, "B", 2), (Role::Seller, "Seller", 3)] {
        let p = snap.peer(name).expect("peer");
        let traffic = a.traffic(&role).expect("traffic");
        assert_eq!(p.operations.send, sent, "{name}");
        assert_eq!(p.bytes_sent, traffic.bytes_sent, "{name}");
        assert_eq!(p.bytes_received, traffic.bytes_received, "{name}");
    }
    assert_eq!(snap.peer("B").expect("B").operations.recv, 1);
}

/// An inner handler whose send future, once it has completed, completes
/// again each time it is polled (which a caller should not do, and which
/// the layer must survive).
struct Again(Handler);

/// Polls the inner future to its end, then reports `Ok` on every poll.
struct Repeat<F>(Option<std::pin::Pin<Box<F>>>);

impl<F: Future<Output = rumpsteak_aura::Result<()>>> Future for Repeat<F> {
    type Output = rumpsteak_aura::Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(inner) = self.0.as_mut() else {
            return std::task::Poll::Ready(Ok(()));
        };
        let poll = inner.as_mut().poll(cx);
        if poll.is_ready() {
            self.0 = None;
        }
        poll
    }
}

impl ChoreoHandler for Again {
    type Role = Role;
    type Endpoint = Endpoint;

    fn send<Msg>(
        &mut self,
        ep: &mut Endpoint,
        to: Role,
        msg: &Msg,
    ) -> impl Future<Output = rumpsteak_aura::Result<()>> + Send
    where
        Msg: serde::Serialize + Send + Sync,
    {
        Repeat(Some(Box::pin(self.0.send(ep, to, msg))))
    }

    fn recv<Msg>(
        &mut self,
        ep: &mut Endpoint,
        from: Role,
    ) -> impl Future<Output = rumpsteak_aura::Result<Msg>> + Send
    where
        Msg: serde::de::DeserializeOwned + Send,
    {
        self.0.recv(ep, from)
    }

    fn choose(
        &mut self,
        ep: &mut Endpoint,
        who: Role,
        label: Label,
    ) -> impl Future<Output = rumpsteak_aura::Result<()>> + Send {
        self.0.choose(ep, who, label)
    }

    fn offer(
        &mut self,
        ep: &mut Endpoint,
        from: Role,
    ) -> impl Future<Output = rumpsteak_aura::Result<Label>> + Send {
        self.0.offer(ep, from)
    }

    fn with_timeout<F, T>(
        &mut self,
        ep: &mut Endpoint,
        at: Role,
        dur: Duration,
        body: F,
    ) -> impl Future<Output = rumpsteak_aura::Result<T>> + Send
    where
        F: Future<Output = rumpsteak_aura::Result<T>> + Send,
    {
        self.0.with_timeout(ep, at, dur, body)
    }
}

/// A future polled again after it completed, for a peer first met by
/// that operation, does not panic and lists no other peer. Its repeated
/// completions moved no frame, so they add nothing: the layer counts a
/// successful operation by the frame the endpoint moved. (Before the
/// endpoint counted for the layer, each completion counted, with the
/// bytes of the one real send each time.)
#[test]
fn a_future_polled_after_it_completed_counts_for_its_peer() {
    let rt = runtime();
    let (mut a, _b) = pair(Role::A, Role::B);
    let (x, _s) = rumpsteak_aura_handler::SimpleChannel::pair();
    a.register_channel(Role::Seller, x);
    let mut h = Metered::new(Again(Handler::new()));
    rt.block_on(h.send(&mut a, Role::Seller, &1u8))
        .expect("send");
    {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut fut = std::pin::pin!(h.send(&mut a, Role::B, &2u8));
        for poll in 0..3 {
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r.expect("send"),
                std::task::Poll::Pending => panic!("poll {poll} pending"),
            }
        }
    }
    let snap = h.snapshot();
    let names: Vec<&str> = snap.peers.iter().map(|p| p.peer.as_str()).collect();
    assert_eq!(names, ["Seller", "B"]);
    assert_eq!(snap.peer("Seller").expect("Seller").operations.send, 1);
    let b = snap.peer("B").expect("B");
    // One frame went to B: one send, with its bytes.
    assert_eq!(b.operations.send, 1);
    let sent = a.traffic(&Role::B).expect("traffic").bytes_sent;
    assert!(sent > 0);
    assert_eq!(b.bytes_sent, sent);
    assert_eq!(b.cancelled, 0);
    // The layer goes on counting as usual.
    rt.block_on(h.send(&mut a, Role::Seller, &3u8))
        .expect("send");
    assert_eq!(
        h.snapshot().peer("Seller").expect("Seller").operations.send,
        2
    );
}

/// The layer counts what the endpoint moved with the peers it met, from
/// when it first saw the endpoint: not what came before, but the steps
/// made on that endpoint without the layer too; a peer the layer never
/// had an operation with is not listed, and a session replaced on the
/// endpoint is counted with the one that replaced it.
#[test]
fn the_endpoint_s_counts_are_read_from_when_the_layer_saw_it() {
    let rt = runtime();
    let (mut a, mut b) = pair(Role::A, Role::B);
    let (x, _s) = rumpsteak_aura_handler::SimpleChannel::pair();
    a.register_channel(Role::Seller, x);
    let mut bare = Handler::new();
    let mut hb = Handler::new();
    rt.block_on(async {
        // Before the layer: not counted.
        bare.send(&mut a, Role::B, &1u8).await.expect("send");
        let _: u8 = hb.recv(&mut b, Role::A).await.expect("recv");
    });
    let early = a.traffic(&Role::B).expect("B").bytes_sent;
    assert!(early > 0);
    let mut h = Metered::new(Handler::new());
    rt.block_on(async {
        h.send(&mut a, Role::B, &2u8).await.expect("send");
        // Without the layer, on the endpoint it saw: counted for B.
        bare.send(&mut a, Role::B, &3u8).await.expect("send");
        bare.choose(&mut a, Role::B, ACCEPT).await.expect("choose");
        // With a peer the layer never had an operation with: not listed.
        bare.send(&mut a, Role::Seller, &4u8).await.expect("send");
        let _: u8 = hb.recv(&mut b, Role::A).await.expect("recv");
        let _: u8 = hb.recv(&mut b, Role::A).await.expect("recv");
        assert_eq!(hb.offer(&mut b, Role::A).await.expect("offer"), ACCEPT);
    });
    let snap = h.snapshot();
    let names: Vec<&str> = snap.peers.iter().map(|p| p.peer.as_str()).collect();
    assert_eq!(names, ["B"]);
    let counted = snap.peer("B").expect("B");
    assert_eq!(counted.operations.send, 2);
    assert_eq!(counted.operations.choose, 1);
    let before = a.traffic(&Role::B).expect("B");
    // A's first frame came before the layer.
    assert_eq!(counted.bytes_sent, before.bytes_sent - early);

    // B's session replaced: the new one counts beside the old one.
    let (x, y) = rumpsteak_aura_handler::SimpleChannel::pair();
    a.register_channel(Role::B, x);
    b.register_channel(Role::A, y);
    rt.block_on(async {
        h.send(&mut a, Role::B, &5u8).await.expect("send");
        let _: u8 = hb.recv(&mut b, Role::A).await.expect("recv");
        hb.send(&mut b, Role::A, &6u8).await.expect("send");
        let _: u8 = h.recv(&mut a, Role::B).await.expect("recv");
    });
    let counted = h.snapshot().peers.remove(0);
    assert_eq!(counted.operations.send, 3);
    assert_eq!(counted.operations.recv, 1);
    let now = a.traffic(&Role::B).expect("B");
    assert_eq!(
        counted.bytes_sent,
        before.bytes_sent - early + now.bytes_sent
    );
    assert_eq!(counted.bytes_received, now.bytes_received);
}

/// One layer on two endpoints of the same role, each with the same peer:
/// the peer's figures are the sum of both endpoints' sessions with it,
/// each counted from when the layer first saw that endpoint.
#[test]
fn a_peer_on_two_endpoints_is_counted_on_both() {
    let rt = runtime();
    let (mut a1, mut b1) = pair(Role::A, Role::B);
    let (mut a2, mut b2) = pair(Role::A, Role::B);
    let mut hb = Handler::new();
    let mut h = Metered::new(Handler::new());
    rt.block_on(async {
        for i in 0..3u8 {
            h.send(&mut a1, Role::B, &i).await.expect("send");
            h.send(&mut a2, Role::B, &vec![i; 10]).await.expect("send");
        }
        h.choose(&mut a2, Role::B, REJECT).await.expect("choose");
        for _ in 0..3 {
            let _: u8 = hb.recv(&mut b1, Role::A).await.expect("recv");
            let _: Vec<u8> = hb.recv(&mut b2, Role::A).await.expect("recv");
        }
        assert_eq!(hb.offer(&mut b2, Role::A).await.expect("offer"), REJECT);
    });
    let snap = h.snapshot();
    assert_eq!(snap.peers.len(), 1);
    let p = &snap.peers[0];
    assert_eq!((p.operations.send, p.operations.choose), (6, 1));
    let sent = |ep: &Endpoint| ep.traffic(&Role::B).expect("B").bytes_sent;
    assert_eq!(p.bytes_sent, sent(&a1) + sent(&a2));
    assert_eq!(snap.open_sessions, 1, "the last endpoint's");
}
