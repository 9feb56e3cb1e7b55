//! What endpoints and kube-proxy do for a Service, in a test: a TCP listener on the Service's
//! ClusterIP and port that hands each new connection to the next replica whose `/readyz` answers
//! 200 (probed every 100 ms, like a readiness probe with a short period), and refuses connections
//! when none is ready. A connection stays on the replica it was given, as with iptables.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One replica: where it serves the webhook, where it answers `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Endpoint {
    pub webhook: SocketAddr,
    pub health: SocketAddr,
}

/// The balancer; dropping it stops it.
pub struct Balancer {
    endpoints: Arc<Mutex<Vec<(Endpoint, bool)>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Balancer {
    /// Listens on `service` (the ClusterIP and port).
    pub async fn start(service: SocketAddr) -> Self {
        let endpoints: Arc<Mutex<Vec<(Endpoint, bool)>>> = Arc::default();
        let listener = TcpListener::bind(service).await.unwrap_or_else(|e| panic!("cannot listen on {service}: {e}"));
        let (probe_list, serve_list) = (endpoints.clone(), endpoints.clone());
        let probe = tokio::spawn(async move {
            loop {
                let current: Vec<Endpoint> = probe_list.lock().unwrap().iter().map(|(e, _)| *e).collect();
                for endpoint in current {
                    let ready =
                        super::server::health_get(endpoint.health, "/readyz").await.is_some_and(|(s, _)| s == 200);
                    if let Some(entry) = probe_list.lock().unwrap().iter_mut().find(|(e, _)| *e == endpoint) {
                        entry.1 = ready;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let next = Arc::new(AtomicUsize::new(0));
        let serve = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let ready: Vec<SocketAddr> =
                    serve_list.lock().unwrap().iter().filter(|(_, r)| *r).map(|(e, _)| e.webhook).collect();
                if ready.is_empty() {
                    continue; // dropped: no endpoints
                }
                let target = ready[next.fetch_add(1, Ordering::Relaxed) % ready.len()];
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    let mut inbound = inbound;
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Self { endpoints, tasks: vec![probe, serve] }
    }

    /// Adds a replica; it receives connections once its `/readyz` answers 200.
    pub fn add(&self, endpoint: Endpoint) {
        self.endpoints.lock().unwrap().push((endpoint, false));
    }

    /// Removes a replica (its pod is gone): no new connection goes to it.
    pub fn remove(&self, endpoint: Endpoint) {
        self.endpoints.lock().unwrap().retain(|(e, _)| *e != endpoint);
    }

    /// How many replicas are ready now.
    pub fn ready(&self) -> usize {
        self.endpoints.lock().unwrap().iter().filter(|(_, r)| *r).count()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}
