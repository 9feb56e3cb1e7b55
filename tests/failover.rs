//! #14 scenarios on a real kube-apiserver: a fresh install before any replica is ready, and two
//! replicas of the installed chart behind the Service under a steady admission load while the
//! Lease holder is stopped by SIGTERM (a rolling update, a drain: no call may fail) and killed by
//! SIGKILL (a node lost: the failed calls and the time to recover are reported, not hidden).

mod common;

use std::time::{Duration, Instant};

use common::balancer::Balancer;
use common::deployment::{Load, Replica, install, leader};

fn summary(outcome: &common::deployment::Outcome) -> Vec<String> {
    outcome.failed.iter().take(3).map(|(_, m)| m.chars().take(300).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_stopped_by_sigterm_fails_no_call_and_sigkill_is_measured() {
    let Some(plane) = common::envtest::shared() else { return };
    let admin = plane.client().await;
    let release = install(plane, &admin, &serde_json::json!({})).await;
    let balancer = Balancer::start(release.service).await;

    // Fresh install: the configurations exist, no replica is ready yet. With `Fail`, the
    // apiserver refuses what the harness webhook matches, saying it could not call it.
    let before = Load::start(&admin, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = before.stop().await;
    assert!(before.calls > 0 && before.failed.len() == before.calls, "{before:?}");
    let message = &before.failed[0].1;
    assert!(message.contains("failed calling webhook \"harnesses.harness-guard.dev\""), "{message}");
    eprintln!("before the first replica is ready: {}", message.chars().take(300).collect::<String>());

    let fast = ["--cert-check-seconds=1"];
    let mut replicas: Vec<Replica> =
        ["replica-a", "replica-b"].iter().map(|id| release.replica(&balancer, id, &fast)).collect();
    for r in &replicas {
        r.ready(Duration::from_secs(30)).await;
    }
    common::deployment::wait_judged(&admin, Duration::from_secs(30)).await;

    // SIGTERM to the Lease holder under load: readiness turns false at once, the balancer stops
    // sending it connections, it drains (the chart's 5 s) and exits; the other replica answers.
    let load = Load::start(&admin, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let holder = leader(&admin).await.expect("a Lease holder");
    let index = replicas.iter().position(|r| r.identity == holder).expect("the holder is one of ours");
    let mut stopped = replicas.remove(index);
    stopped.binary.sigterm();
    let status = stopped.binary.exit(Duration::from_secs(30)).await;
    assert!(status.success(), "a clean exit after the drain: {status:?}");
    balancer.remove(stopped.endpoint);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcome = load.stop().await;
    eprintln!("leader stopped by SIGTERM: {} calls, {} failed", outcome.calls, outcome.failed.len());
    assert!(outcome.failed.is_empty(), "{} failed: {:#?}", outcome.failed.len(), summary(&outcome));

    // The survivor takes the Lease (its writer duties) within the Lease's 15 s.
    let survivor = replicas[0].identity.clone();
    common::server::eventually(Duration::from_secs(40), "the survivor leads", async || {
        leader(&admin).await.as_deref() == Some(survivor.as_str())
    })
    .await;
    // A replacement pod, as the Deployment would start.
    let replacement = release.replica(&balancer, "replica-c", &fast);
    replacement.ready(Duration::from_secs(30)).await;
    replicas.push(replacement);
    while balancer.ready() < 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGKILL to the Lease holder under load: its connections die with it. Calls in flight on
    // them fail (the apiserver does not retry a webhook call); new connections go to the other
    // replica as soon as the dead one's readiness probe fails.
    let load = Load::start(&admin, 4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holder = leader(&admin).await.expect("a Lease holder");
    let index = replicas.iter().position(|r| r.identity == holder).unwrap();
    let mut killed = replicas.remove(index);
    let killed_at = Instant::now();
    killed.binary.sigkill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    balancer.remove(killed.endpoint);
    let outcome = load.stop().await;
    let recovered = outcome.failed.last().map_or(Duration::ZERO, |(t, _)| t.duration_since(killed_at));
    eprintln!(
        "leader killed by SIGKILL: {} calls, {} failed, last failure {:?} after the kill: {:#?}",
        outcome.calls,
        outcome.failed.len(),
        recovered,
        summary(&outcome)
    );
    // Whatever failed, failed right at the kill (the calls in flight, and connections made before
    // the balancer's next readiness probe): the service recovered within a second or two.
    assert!(recovered < Duration::from_secs(2), "recovered {recovered:?} after the kill");
    // And the survivor leads again.
    let survivor = replicas[0].identity.clone();
    common::server::eventually(Duration::from_secs(40), "the survivor leads after the kill", async || {
        leader(&admin).await.as_deref() == Some(survivor.as_str())
    })
    .await;
}
