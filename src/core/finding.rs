//! A finding is data: which rule, where (an object and a field of it), and what was found there.
//! The user's message is rendered from it at the edge ([`super::message::render`]); decisions,
//! metrics, the audit's change detection and the tests key on [`Finding::id`], never on text.

use std::fmt;

use serde::Serialize;

use super::policy::Rule;

/// The kinds of object a finding can be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// `kagent.dev` AgentHarness.
    AgentHarness,
    /// `kagent.dev` ModelConfig.
    ModelConfig,
    /// `v1` Secret.
    Secret,
    /// `v1` ConfigMap.
    ConfigMap,
    /// `v1` Pod.
    Pod,
}

impl Kind {
    /// The kind as Kubernetes writes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::AgentHarness => "AgentHarness",
            Kind::ModelConfig => "ModelConfig",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::Pod => "Pod",
        }
    }
}

/// One object: kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// The object `kind namespace/name`.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { kind, namespace: namespace.into(), name: name.into() }
    }

    /// A field of this object.
    pub fn at(&self, field: impl Into<String>) -> At {
        At { object: self.clone(), field: field.into() }
    }

    /// The object as a whole.
    pub fn whole(&self) -> At {
        self.at("")
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.name(), self.namespace, self.name)
    }
}

/// Where a finding is: a field of an object (`data[api-key]` of Secret team-a/openai), or the
/// object as a whole (empty `field`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct At {
    /// The object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// The field path, Kubernetes style (`spec.env[2]`, `data[api-key]`); empty for the object.
    pub field: String,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field.as_str() {
            "" => write!(f, "{}", self.object),
            field => write!(f, "{field} of {}", self.object),
        }
    }
}

/// What a rule found at the place. Small on purpose: a metric label and a key for tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The value is not of the required form.
    Invalid,
    /// The object or key does not exist.
    Missing,
    /// A field that must be set is not.
    Unset,
    /// The value is empty or white space.
    Empty,
    /// Outside what harness-guard watches: absence proves nothing.
    NotWatched,
    /// A setting the harness's runtime cannot use.
    Unsupported,
    /// Not in the list of what is allowed.
    NotAllowed,
    /// It holds a real model key as a literal.
    LiteralKey,
    /// A literal where an OpenShell placeholder belongs.
    NotPlaceholder,
    /// Another object will produce it; its content cannot be checked yet.
    Pending,
    /// Already set to another value.
    Conflict,
    /// No owner matches.
    NoOwner,
    /// More than one owner matches.
    SeveralOwners,
    /// The change breaks objects that depend on it.
    InUse,
    /// The object could not be read.
    Unreadable,
    /// Set, but never read where it would take effect.
    Ignored,
    /// Shared with other objects that need it to be otherwise.
    Shared,
    /// Changed where the running workload never sees it.
    Stale,
}

impl Cause {
    /// The cause's name, as in JSON output and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Invalid => "invalid",
            Cause::Missing => "missing",
            Cause::Unset => "unset",
            Cause::Empty => "empty",
            Cause::NotWatched => "not-watched",
            Cause::Unsupported => "unsupported",
            Cause::NotAllowed => "not-allowed",
            Cause::LiteralKey => "literal-key",
            Cause::NotPlaceholder => "not-placeholder",
            Cause::Pending => "pending",
            Cause::Conflict => "conflict",
            Cause::NoOwner => "no-owner",
            Cause::SeveralOwners => "several-owners",
            Cause::InUse => "in-use",
            Cause::Unreadable => "unreadable",
            Cause::Ignored => "ignored",
            Cause::Shared => "shared",
            Cause::Stale => "stale",
        }
    }
}

/// One hop of the reference chain from the judged object to the place of a finding, for the
/// message: `spec.modelConfigRef "gpt" → ModelConfig team-a/gpt → Secret team-a/openai`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The referring field, as written in the message (the first hop's only).
    pub field: String,
    /// The referring value as written, when the message shows it.
    pub value: Option<String>,
    /// The object referred to.
    pub to: ObjectRef,
}

/// What the message needs beyond the rule, place and cause: names, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Nothing more.
    #[default]
    None,
    /// A reference that is not of the required form: as written, and why.
    BadRef {
        /// The reference as written.
        reference: String,
        /// What is wrong with it.
        why: String,
    },
    /// A value that is not one of those allowed, as written.
    Value(String),
    /// A key is missing from an object that holds these keys (`None`: not shown, the object is
    /// another tenant's).
    Keys(Option<Vec<String>>),
    /// A key is missing because the object holding it does not exist.
    Absent,
    /// The object that will produce this one.
    Producer(String),
    /// The model provider.
    Provider(String),
    /// A model host missing from `spec.network.allowedDomains`.
    Host(String),
    /// An env variable, and (for a literal key) the Secret whose key it holds.
    Env {
        /// The variable.
        name: String,
        /// `namespace/name` of the Secret, when the literal is its key.
        secret: Option<String>,
    },
    /// A Secret reference from a pod container.
    SecretRef {
        /// The container.
        container: String,
        /// Where in it: `env NAME` or `envFrom[i]`.
        source: String,
        /// The Secret's key (`None` for `envFrom`: every key).
        key: Option<String>,
        /// The Secret.
        secret: String,
    },
    /// A variable set in a container.
    ContainerEnv {
        /// The container.
        container: String,
        /// The variable.
        var: String,
    },
    /// The candidate owners, `namespace/name`.
    Owners(Vec<String>),
    /// The harness whose ModelConfig is not readable, `namespace/name`.
    Harness(String),
    /// A ModelConfig that names no key Secret.
    NoKeySecret {
        /// The provider.
        provider: String,
        /// True on the OpenShell runtime.
        openshell: bool,
        /// Both `apiKeySecret` and `apiKeySecretKey` are unset.
        both: bool,
    },
    /// The harnesses a change breaks: how many, and the first few names.
    Dependents {
        /// True for a DELETE.
        deleted: bool,
        /// How many break.
        count: usize,
        /// The first names, `namespace/name`, sorted.
        shown: Vec<String>,
    },
    /// Why the object could not be read, free of values.
    Error(String),
    /// The harness's backend (`openclaw`, `hermes`, ...), for a message that depends on it.
    Backend(String),
    /// A provider the runtime cannot serve: the provider, the backend, who refuses it, and what
    /// would be served.
    Unserved {
        /// The ModelConfig's provider.
        provider: String,
        /// The harness's backend.
        backend: String,
        /// Where the chain breaks.
        refusal: Refusal,
        /// What would be served, as users write it.
        served: Vec<String>,
    },
    /// Harnesses sharing the one gateway route with another provider, model or key: names in the
    /// harness's own namespace only, and how many elsewhere.
    Sharing {
        /// `namespace/name` of the first few in the same namespace.
        same_namespace: Vec<String>,
        /// How many more in the same namespace.
        more_here: usize,
        /// How many in other namespaces (never named: another tenant's objects).
        elsewhere: usize,
    },
    /// An explicit upstream: the host it names, and the harness's backend.
    Upstream {
        /// The host of the base URL (never the URL: it may carry credentials).
        host: String,
        /// The harness's backend.
        backend: String,
        /// The provider.
        provider: String,
    },
}

/// Where a provider is refused on its way to a working model route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The OpenShell gateway's cluster inference does not accept the provider type.
    Gateway,
    /// The gateway accepts the type, but its route does not serve the backend's protocol.
    Protocol,
    /// kagent's openclaw bootstrap has no mapping for the provider.
    OpenclawMapping,
    /// kagent's hermes on substrate has no provider equivalent: prompts produce no output.
    HermesSubstrate,
}

/// The field path of `key` in a Secret's or ConfigMap's data.
pub fn data_field(key: &str) -> String {
    format!("data[{key}]")
}

/// The key of a [`data_field`] path.
pub fn data_key(field: &str) -> Option<&str> {
    field.strip_prefix("data[")?.strip_suffix(']')
}

/// One problem a rule found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule that found it.
    pub rule: Rule,
    /// Where.
    pub at: At,
    /// What was found there.
    pub cause: Cause,
    /// The object judged (the message starts with it).
    pub subject: ObjectRef,
    /// How the subject reaches `at`, for the message; empty when `at` is on the subject.
    pub via: Vec<Hop>,
    /// What else the message says.
    pub detail: Detail,
}

/// A finding's identity: what it is, not how it is worded.
pub type FindingId = (Rule, At, Cause);

impl Finding {
    /// A finding of `rule` on a field of `subject` itself.
    pub fn on(rule: Rule, subject: &ObjectRef, field: impl Into<String>, cause: Cause) -> Self {
        Self { rule, at: subject.at(field), cause, subject: subject.clone(), via: Vec::new(), detail: Detail::None }
    }

    /// A finding of `rule` somewhere `subject` reaches through `via`.
    pub fn reached(rule: Rule, subject: &ObjectRef, via: &[Hop], at: At, cause: Cause) -> Self {
        Self { rule, at, cause, subject: subject.clone(), via: via.to_vec(), detail: Detail::None }
    }

    /// The same finding, saying `detail`.
    pub fn with(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Its identity.
    pub fn id(&self) -> FindingId {
        (self.rule, self.at.clone(), self.cause)
    }
}
