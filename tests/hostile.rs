//! Hostile clients against the real server over TLS: each gets a bounded, precise answer (or a
//! closed connection), and the server keeps serving everyone else.

mod common;

use std::time::{Duration, Instant};

use common::fixtures::repo_file;
use common::server::TestServer;
use common::tls::{Conn, Proto, client_config};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server() -> TestServer {
    let server = TestServer::builtin(&repo_file("examples/cluster"), &["--handshake-timeout-seconds", "1"]).await;
    server.wait_ready(Duration::from_secs(10)).await;
    server
}

/// A normal request still gets its answer.
async fn still_serving(server: &TestServer) {
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
    let (res, bytes) = conn.post("/validate?timeout=5s", body).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["response"]["allowed"], true);
}

async fn tls(server: &TestServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(client_config(&[&server.ca], Proto::H1)).connect(name, tcp).await.unwrap()
}

/// `review`, with `value` put at `pointer` (a JSON text, spliced in unparsed).
fn with_raw(review: &Value, pointer: &str, value: &str) -> String {
    let mut review = review.clone();
    *review.pointer_mut(pointer).unwrap() = Value::String("@@HERE@@".into());
    review.to_string().replace("\"@@HERE@@\"", value)
}

#[tokio::test]
async fn deeply_nested_json_is_answered_without_exhausting_the_stack() {
    let server = server().await;
    let mut conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H1), Proto::H1).await.unwrap();
    let good: Value =
        serde_json::from_slice(&std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap()).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut extra = good.clone();
    extra["request"]["extra"] = Value::Null;
    extra["request"]["object"]["metadata"]["managedFields"] = Value::Null;

    // Where no rule reads it (an unknown field, `managedFields`), it is skipped unread, without
    // recursion, and the review is answered on its merits.
    for pointer in ["/request/extra", "/request/object/metadata/managedFields"] {
        let (res, bytes) = conn.post("/validate", with_raw(&extra, pointer, &deep)).await.unwrap();
        assert_eq!(res.status(), 200, "{pointer}");
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{pointer}: {answer}");
    }
    // Where a rule reads it, the answer names the field.
    let (res, bytes) = conn.post("/validate", with_raw(&good, "/request/object/spec", &deep)).await.unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 400, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("spec"), "{message}");
    // Where the envelope expects an object, it is refused at the first bracket.
    let (res, bytes) = conn.post("/validate", with_raw(&good, "/request", &deep)).await.unwrap();
    assert_eq!(res.status(), 400);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(answer["message"].as_str().unwrap().contains("invalid type: sequence"), "{answer}");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off_in_time() {
    let server = server().await;
    let mut slow = tls(&server).await;
    let head = "POST /validate?timeout=1s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"apiVersion\":";
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // Meanwhile everyone else is served.
    still_serving(&server).await;
    let mut answer = Vec::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await.expect("answered in time");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(elapsed < Duration::from_millis(2500), "cut off after {elapsed:?} for a 1 s apiserver timeout");
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed() {
    let server = server().await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
    let mut buf = Vec::new();
    // Closed in time (cleanly or by reset), with no HTTP of any kind sent back: at most a TLS alert.
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut buf)).await.expect("closed in time");
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/"), "an HTTP answer on the TLS port: {buf:?}");
    assert!(buf.is_empty() || buf[0] == 0x15, "only a TLS alert record may come back: {buf:?}");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_dropped() {
    let server = server().await;
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    // A ClientHello record header promising bytes that never come.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await.expect("dropped in time");
    assert!(started.elapsed() < Duration::from_millis(3000), "handshake timeout is 1 s: {:?}", started.elapsed());
    still_serving(&server).await;
}

#[tokio::test]
async fn thousands_of_idle_connections_do_not_stop_service() {
    let server = server().await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // Half of them even complete TLS and then say nothing.
    let mut quiet = Vec::new();
    for _ in 0..200 {
        quiet.push(tls(&server).await);
    }
    still_serving(&server).await;
    drop(idle);
    drop(quiet);
    still_serving(&server).await;
}

#[tokio::test]
async fn many_streams_on_one_h2_connection_all_complete() {
    let server = server().await;
    let conn = Conn::open(server.addr(), client_config(&[&server.ca], Proto::H2), Proto::H2).await.unwrap();
    let sender = conn.h2_sender().unwrap();
    let body = hyper::body::Bytes::from(std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap());
    // More than the server's 256-stream limit at once: the client waits for stream credit, the
    // server refuses none, every request is answered.
    let mut tasks = Vec::new();
    for _ in 0..400 {
        let (mut s, body) = (sender.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let req = hyper::Request::post("https://localhost/validate")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(body))
                .unwrap();
            s.ready().await.unwrap();
            s.send_request(req).await.map(|r| r.status().as_u16())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok_and(|s| s == 200) {
            ok += 1;
        }
    }
    assert_eq!(ok, 400);
}

/// An h2 client sends a body over the limit and gets its 413 as a clean answer. Up to twice the
/// limit the server reads the body to its end first, so the stream closes normally (no reset:
/// curl 7.88 reports even RST_STREAM(NO_ERROR) as a failed transfer); further past it, the 413
/// comes at once and the stream ends with RST_STREAM(NO_ERROR) as RFC 9113 §8.1 asks, not CANCEL.
/// Declared by content-length, and found while reading.
#[tokio::test]
async fn an_oversized_h2_body_gets_its_413_and_a_clean_end_of_stream() {
    let server = server().await;
    let limit = harness_guard::server::router::MAX_BODY_BYTES;
    let chunk = 65_536;
    // (declared length, bytes sent, a reset expected)
    let rows = [
        (Some(limit + 1), limit + 1, false),
        (None, limit + chunk, false),
        (Some(limit * 4), chunk, true),
        (None, limit * 2 + 2 * chunk, true),
    ];
    for (declared, sent, reset) in rows {
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let config = client_config(&[&server.ca], Proto::H2);
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
        let (client, connection) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = || {
            http::Request::post(format!("https://{}/validate", server.addr()))
                .header("content-type", "application/json")
        };
        let mut head = request();
        if let Some(n) = declared {
            head = head.header("content-length", n.to_string());
        }
        let (response, mut stream) = client.send_request(head.body(()).unwrap(), false).unwrap();
        // Queued at once; h2 sends it as the server's flow-control window allows.
        let mut left = sent;
        while left > 0 {
            let n = left.min(chunk);
            left -= n;
            stream.send_data(axum::body::Bytes::from(vec![b' '; n]), left == 0 && !reset).unwrap();
        }
        let row = format!("declared {declared:?}, sent {sent}");
        let response = tokio::time::timeout(Duration::from_secs(10), response).await.expect("answered").unwrap();
        assert_eq!(response.status(), 413, "{row}");
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(data) = body.data().await {
            let data = data.expect("the response body arrives whole");
            let _ = body.flow_control().release_capacity(data.len());
            text.extend_from_slice(&data);
        }
        let status: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(status["reason"], "RequestEntityTooLarge", "{row}");
        // A second request on the connection: frames arrive in order, so any reset of the first
        // stream has been seen once this answer is in.
        let mut client = client.ready().await.unwrap();
        let body = std::fs::read(repo_file("examples/reviews/harness-good.json")).unwrap();
        let (second, mut send) = client.send_request(request().body(()).unwrap(), false).unwrap();
        send.send_data(body.into(), true).unwrap();
        assert_eq!(second.await.unwrap().status(), 200, "{row}");
        let seen = std::future::poll_fn(|cx| std::task::Poll::Ready(stream.poll_reset(cx))).await;
        match (reset, seen) {
            (true, std::task::Poll::Ready(Ok(reason))) => assert_eq!(reason, h2::Reason::NO_ERROR, "{row}"),
            (false, std::task::Poll::Pending) => {}
            (_, other) => panic!("{row}: stream end {other:?}, expected a reset: {reset}"),
        }
    }
    still_serving(&server).await;
}
