//! Faults under load, bounded runs on loopback: certificate rotation and SIGTERM with zero failed
//! requests, and an API server that fails, then recovers, with the view serving its last state
//! meanwhile and converging afterwards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::certs::{bundle, leaf_der, secret_version, swap_data, write_ca};
use common::fake_apiserver::FakeApi;
use common::fixtures::repo_file;
use common::process::{Binary, finish, half_sent};
use common::server::{TestServer, eventually, health_get};
use common::tls::{Conn, Proto, client_config};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vol = dir.path().join("tls");
    std::fs::create_dir_all(&vol).unwrap();
    let pairs = [bundle(), bundle(), bundle()];
    secret_version(&vol, "..v0", &pairs[0].cert, &pairs[0].key);
    swap_data(&vol, "..v0");
    std::os::unix::fs::symlink("..data/tls.crt", vol.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", vol.join("tls.key")).unwrap();
    let cas: Vec<_> = pairs.iter().enumerate().map(|(i, b)| write_ca(dir.path(), &format!("ca{i}"), b)).collect();
    let ca_refs: Vec<&std::path::Path> = cas.iter().map(|p| p.as_path()).collect();
    let server = TestServer::on_files(&vol.join("tls.crt"), &vol.join("tls.key"), "1").await;
    server.wait_ready(Duration::from_secs(10)).await;
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let (stop, sent, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let proto = if w % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let config = client_config(&ca_refs, proto);
        let (stop, sent, failed, seen, body, addr) =
            (stop.clone(), sent.clone(), failed.clone(), seen.clone(), body.clone(), server.addr());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A new connection each time: every handshake sees whichever pair is current.
                let ok = match Conn::open(addr, config.clone(), proto).await {
                    Ok(mut conn) => {
                        seen.lock().unwrap().insert(conn.peer_cert.to_vec());
                        conn.post("/validate?timeout=5s", body.clone()).await.is_ok_and(|(r, _)| r.status() == 200)
                    }
                    Err(_) => false,
                };
                sent.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for (i, pair) in pairs.iter().enumerate().skip(1) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        secret_version(&vol, &format!("..v{i}"), &pair.cert, &pair.key);
        swap_data(&vol, &format!("..v{i}"));
    }
    let last = leaf_der(&pairs[2]);
    let until = Instant::now() + Duration::from_secs(10);
    while !seen.lock().unwrap().contains(last.as_ref()) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "rotation under load: {sent} requests, {failed} failed, {} certificates served",
        seen.lock().unwrap().len()
    );
    assert!(seen.lock().unwrap().len() >= 3, "both rotations were observed");
    assert!(sent > 100, "the load ran ({sent} requests)");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed across two rotations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_every_accepted_request() {
    let mut server = Binary::start();
    let config = client_config(&[&server.ca], Proto::H1);
    let body = std::fs::read(repo_file("examples/reviews/harness-wrong-key.json")).unwrap();
    // 32 requests accepted and mid-body when SIGTERM arrives, finished across the drain and the
    // listener's close.
    let mut in_flight = Vec::new();
    for _ in 0..32 {
        in_flight.push(half_sent(server.addr, config.clone(), &body).await);
    }
    server.sigterm();
    let mut finishing = Vec::new();
    for (i, tls) in in_flight.into_iter().enumerate() {
        let body = body.clone();
        finishing.push(tokio::spawn(async move {
            // Spread over 1.5 s: some finish during the drain, some after the listener closed.
            tokio::time::sleep(Duration::from_millis(50 * i as u64)).await;
            finish(tls, &body).await.starts_with("HTTP/1.1 200")
        }));
    }
    let mut completed = 0;
    for f in finishing {
        if f.await.unwrap() {
            completed += 1;
        }
    }
    assert_eq!(completed, 32, "every accepted request completes");
    let status = server.exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_outage_then_recovery() {
    let api = FakeApi::start(&std::fs::read_to_string(repo_file("examples/cluster/00-good.yaml")).unwrap(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::cluster(&api, dir.path(), &[]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    let health = server.running.health_addr;
    let ask = |review: &'static str| {
        let (addr, ca) = (server.addr(), server.ca.clone());
        async move {
            let mut conn = Conn::open(addr, client_config(&[&ca], Proto::H2), Proto::H2).await.unwrap();
            let (_, bytes) =
                conn.post("/validate?timeout=5s", std::fs::read(repo_file(review)).unwrap()).await.unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
        }
    };
    // The API server fails every request and drops the watches.
    *api.inner.fail_with.lock().unwrap() = Some(500);
    api.expire_watches();
    let errors = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("harness_guard_watch_errors_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    eventually(Duration::from_secs(15), "watch errors counted", async || {
        errors(&health_get(health, "/metrics").await.unwrap().1) >= 4
    })
    .await;
    // Meanwhile the view serves its last state, and readiness holds (documented).
    assert_eq!(ask("examples/reviews/harness-good.json").await["allowed"], true);
    assert_eq!(health_get(health, "/readyz").await.unwrap().0, 200);
    // A Secret is created during the outage.
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "openai-creds", "namespace": "team-a"}, "data": {"OPENAI_API_KEY": "c2stdGVzdA=="}}));
    api.apply(json!({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig", "metadata": {"name": "gpt-missing-secret", "namespace": "team-a"}, "spec": {"model": "m", "apiKeySecret": "openai-creds", "apiKeySecretKey": "OPENAI_API_KEY"}}));
    // ... and the good harness's key Secret is deleted, unseen by the dropped watches.
    let secrets = async || {
        let text = health_get(health, "/metrics").await.unwrap().1;
        text.lines().find_map(|l| l.strip_prefix("harness_guard_view_objects{kind=\"Secret\"} ")?.parse::<u64>().ok())
    };
    let before = secrets().await.unwrap();
    api.delete("Secret", "team-a", "litellm-key");
    // Recovery: the watches come back (with 410 Gone, as after history compaction) and relist.
    api.expire_watches();
    *api.inner.fail_with.lock().unwrap() = None;
    eventually(Duration::from_secs(30), "view converged after recovery", async || {
        ask("examples/reviews/harness-missing-secret.json").await["allowed"] == true
    })
    .await;
    // The re-list swept the deleted Secret out of the view and the index: the harness that
    // needed it is now denied, naming it; the created one replaced it in the count.
    let good = ask("examples/reviews/harness-good.json").await;
    assert_eq!(good["allowed"], false, "{good}");
    assert!(good["status"]["message"].as_str().unwrap().contains("litellm-key"), "{good}");
    assert_eq!(secrets().await, Some(before));
}
