//! One writer among replicas: a `coordination.k8s.io/v1` Lease, taken when free or expired and
//! renewed by its holder. Replicas that do not hold it only read.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// What to do with the Lease as found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// No Lease yet: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Its holder let it expire: take it over.
    TakeOver,
    /// Someone else holds it.
    Follow,
}

/// Decides the step for `identity` given the Lease as read at `now` (pure).
pub fn lease_step(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseStep {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return if lease.is_some() { LeaseStep::TakeOver } else { LeaseStep::Create };
    };
    if spec.holder_identity.as_deref() == Some(identity) {
        return LeaseStep::Renew;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0.as_second());
    match (spec.holder_identity.as_deref(), renewed) {
        (None | Some(""), _) | (_, None) => LeaseStep::TakeOver,
        (Some(_), Some(at)) if at + duration < now.as_second() => LeaseStep::TakeOver,
        _ => LeaseStep::Follow,
    }
}

/// Competes for one Lease under one identity.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    owner: Option<OwnerReference>,
}

impl Elector {
    /// An elector for Lease `name` in the namespace of `api`.
    pub fn new(api: Api<Lease>, name: String, identity: String, duration: Duration) -> Self {
        Self { api, name, identity, duration, owner: None }
    }

    /// Marks the Lease as owned by `owner` (the Deployment): deleting that deletes the Lease.
    pub fn owned_by(mut self, owner: Option<OwnerReference>) -> Self {
        self.owner = owner;
        self
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes or renews the Lease; true while this replica holds it. A conflict (another replica
    /// wrote first) or an API error means "not now".
    pub async fn try_lead(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let step = lease_step(current.as_ref(), &self.identity, now);
        let spec = |acquired: Option<MicroTime>, transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: acquired.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        let result = match (step, current) {
            (LeaseStep::Follow, _) => return Ok(false),
            (LeaseStep::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        owner_references: self.owner.clone().map(|o| vec![o]),
                        ..Default::default()
                    },
                    spec: Some(spec(None, 0)),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            (step, Some(mut lease)) => {
                let old = lease.spec.take().unwrap_or_default();
                let transitions = old.lease_transitions.unwrap_or(0) + i32::from(step == LeaseStep::TakeOver);
                let acquired = if step == LeaseStep::Renew { old.acquire_time } else { None };
                lease.spec = Some(spec(acquired, transitions));
                // A Lease made before it had an owner (an upgrade) gets one.
                if let Some(owner) = &self.owner {
                    owned(&mut lease.metadata, owner);
                }
                // The resourceVersion read above makes this a compare-and-swap.
                self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Adds `owner` to `meta`'s owner references unless it is there.
pub fn owned(meta: &mut ObjectMeta, owner: &OwnerReference) {
    let owners = meta.owner_references.get_or_insert_with(Vec::new);
    if !owners.iter().any(|o| o.uid == owner.uid) {
        owners.push(owner.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: i64, duration: i32) -> Lease {
        Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn steps() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert_eq!(lease_step(None, "a", now), LeaseStep::Create);
        assert_eq!(lease_step(Some(&lease(Some("a"), 990, 15)), "a", now), LeaseStep::Renew);
        assert_eq!(lease_step(Some(&lease(Some("b"), 990, 15)), "a", now), LeaseStep::Follow);
        assert_eq!(lease_step(Some(&lease(Some("b"), 980, 15)), "a", now), LeaseStep::TakeOver);
        assert_eq!(lease_step(Some(&lease(None, 999, 15)), "a", now), LeaseStep::TakeOver);
        assert_eq!(lease_step(Some(&Lease::default()), "a", now), LeaseStep::TakeOver);
    }
}
