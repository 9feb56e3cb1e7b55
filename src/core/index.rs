//! Indexes over the cluster view, so no decision scans every object: which harnesses a sandbox
//! name belongs to, which harnesses depend on a ModelConfig, Secret or ConfigMap, and which value
//! digests are some ModelConfig's API key. A plain struct fed `apply`/`delete` calls; the cluster
//! layer feeds it from the same events that fill the stores, tests feed it directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::model::{AgentHarness, Meta, ModelConfig};
use super::sandbox::sandbox_names;
use super::validate::parse_model_config_ref;
use super::view::{SecretValues, ValueDigest};

/// `(namespace, name)`.
pub type Key = (String, String);

/// The key of an object.
pub fn key_of(meta: &Meta) -> Key {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

/// An interned object key, `namespace/name`. A namespace cannot contain `/` (a referenced name
/// might), so splitting at the first `/` gives the key back exactly. One allocation per
/// object, shared by every map that mentions it: at tens of thousands of harnesses, separate
/// `(String, String)` copies in each map made the index larger than the objects themselves.
type Id = Arc<str>;

fn id_for(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn id_of(key: &Key) -> String {
    id_for(&key.0, &key.1)
}

/// The id of the object `meta` describes.
fn id_of_meta(meta: &Meta) -> String {
    id_for(meta.namespace.as_deref().unwrap_or(""), meta.name.as_deref().unwrap_or(""))
}

/// The namespace part of an id.
fn key_namespace(id: &str) -> &str {
    id.split_once('/').map_or("", |(ns, _)| ns)
}

fn key_from(id: &str) -> Key {
    let (ns, name) = id.split_once('/').unwrap_or(("", id));
    (ns.to_string(), name.to_string())
}

/// Target → the objects that refer to it, sorted. A `Vec`, not a set: nearly every entry holds
/// one id, and a B-tree node for one id costs ten times the id.
#[derive(Debug, Default)]
struct Referrers(HashMap<Id, Vec<Id>>);

impl Referrers {
    /// Records that `who` refers to `target`; returns the interned target.
    fn add(&mut self, target: &str, who: &Id) -> Id {
        let target = intern(&self.0, target);
        let list = self.0.entry(target.clone()).or_default();
        if let Err(i) = list.binary_search(who) {
            list.insert(i, who.clone());
        }
        target
    }

    fn remove(&mut self, target: &str, who: &str) {
        if let Some(list) = self.0.get_mut(target) {
            list.retain(|k| &**k != who);
            if list.is_empty() {
                self.0.remove(target);
            }
        }
    }

    fn get(&self, target: &str) -> &[Id] {
        self.0.get(target).map(Vec::as_slice).unwrap_or_default()
    }
}

/// What one harness refers to (interned: the same ids as the referrer maps' keys).
#[derive(Debug, Default)]
struct HarnessRefs {
    model_config: Option<Id>,
    /// The harness runs on OpenShell, whose gateway has one inference route for all.
    openshell: bool,
    secrets: Box<[Id]>,
    config_maps: Box<[Id]>,
    sandboxes: Box<[Id]>,
}

/// What one ModelConfig refers to.
#[derive(Clone, Debug, Default)]
struct ModelRefs {
    /// The key Secret, and the key inside it.
    secret: Option<(Id, Box<str>)>,
    digest: Option<ValueDigest>,
    /// Provider type (lowercase) and model: with the key, the gateway route it sets.
    provider: Box<str>,
    model: Option<Box<str>>,
}

/// The OpenShell gateway route a ModelConfig sets: its provider type, model and key, hashed.
pub fn route_id(provider: &str, model: Option<&str>, key: &ValueDigest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // The provider type, lowercased as it is hashed (no allocation: this runs per request).
    for b in provider.bytes() {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.write_u8(0xff);
    model.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// The indexes. Every `apply` replaces what the object contributed before.
#[derive(Debug, Default)]
pub struct Index {
    harnesses: HashMap<Id, HarnessRefs>,
    by_model_config: Referrers,
    by_secret: Referrers,
    by_config_map: Referrers,
    by_sandbox: Referrers,
    model_configs: HashMap<Id, ModelRefs>,
    models_by_secret: Referrers,
    model_keys: HashMap<ValueDigest, usize>,
    /// ModelConfig → the OpenShell harnesses that use it.
    openshell_by_model_config: Referrers,
    /// Namespace → gateway route → the OpenShell harnesses of that namespace on it (ModelConfig
    /// with a readable key). A shared-gateway check reads one namespace's routes, not its harnesses.
    routes_here: HashMap<Box<str>, HashMap<u64, RouteUsers>>,
    /// Gateway route → how many OpenShell harnesses run on it.
    route_users: HashMap<u64, usize>,
    /// Provider type → how many OpenShell harnesses run on a route of it.
    provider_users: HashMap<Arc<str>, usize>,
}

/// The harnesses of one namespace on one gateway route.
#[derive(Debug)]
struct RouteUsers {
    /// The route's provider type (lowercase), shared with `provider_users`' key.
    provider: Arc<str>,
    /// Sorted.
    users: Vec<Id>,
}

/// `text` as an id, reusing the one `map` already holds.
fn intern<V>(map: &HashMap<Id, V>, text: &str) -> Id {
    match map.get_key_value(text) {
        Some((k, _)) => k.clone(),
        None => Id::from(text),
    }
}

/// The ids of what `h` refers to: its ModelConfig, channel and allow-list Secrets and
/// ConfigMaps, its gateway token Secret; and its sandbox names.
fn harness_targets(h: &AgentHarness) -> (Option<String>, Vec<String>, Vec<String>, Vec<String>) {
    let ns = h.namespace();
    let model_config = h.model_config_ref().and_then(|r| parse_model_config_ref(r, ns).ok()).map(|(n, m)| id_for(n, m));
    let (mut secrets, mut config_maps) = (Vec::new(), Vec::new());
    for channel in h.spec.channels.iter().flatten() {
        let slack = channel.slack.iter().flat_map(|s| [&s.bot_token, &s.app_token]);
        let telegram = channel.telegram.iter().map(|t| &t.bot_token);
        let tokens = slack.chain(telegram).flatten().filter_map(|c| c.value_from.as_ref());
        let allow_lists = channel.telegram.iter().filter_map(|t| t.allowed_user_ids_from.as_ref());
        for source in tokens.chain(allow_lists) {
            match source.type_.as_str() {
                "Secret" => secrets.push(id_for(ns, &source.name)),
                "ConfigMap" => config_maps.push(id_for(ns, &source.name)),
                _ => {}
            }
        }
    }
    if let Some(token) = h.spec.substrate.as_ref().and_then(|s| s.gateway_token_secret_ref.as_ref()) {
        secrets.push(id_for(ns, &token.name));
    }
    (model_config, secrets, config_maps, sandbox_names(h).collect())
}

/// Live OpenShell harnesses on another gateway route than a harness's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtherRoutes {
    /// Some of those in the harness's namespace, by key.
    pub here: Vec<Key>,
    /// How many more there are in that namespace.
    pub more_here: usize,
    /// How many there are in other namespaces.
    pub elsewhere: usize,
}

impl Index {
    /// Records (or re-records) a harness.
    pub fn apply_harness(&mut self, h: &AgentHarness) {
        let id = intern(&self.harnesses, &id_of_meta(&h.metadata));
        self.forget_harness(&id);
        let (model_config, secrets, config_maps, sandboxes) = harness_targets(h);
        let openshell = h.runs_on_openshell();
        if let (true, Some(mc)) = (openshell, &model_config) {
            self.openshell_by_model_config.add(mc, &id);
            self.count_route(mc, std::slice::from_ref(&id), true);
        }
        let refs = HarnessRefs {
            openshell,
            model_config: model_config.map(|mc| self.by_model_config.add(&mc, &id)),
            secrets: secrets.iter().map(|s| self.by_secret.add(s, &id)).collect(),
            config_maps: config_maps.iter().map(|c| self.by_config_map.add(c, &id)).collect(),
            sandboxes: sandboxes.iter().map(|name| self.by_sandbox.add(name, &id)).collect(),
        };
        self.harnesses.insert(id, refs);
    }

    /// Forgets a harness.
    pub fn delete_harness(&mut self, key: &Key) {
        self.forget_harness(&id_of(key));
    }

    fn forget_harness(&mut self, id: &str) {
        let Some((interned, refs)) = self.harnesses.remove_entry(id) else { return };
        if let Some(mc) = &refs.model_config {
            self.by_model_config.remove(mc, id);
            if refs.openshell {
                self.openshell_by_model_config.remove(mc, id);
                self.count_route(mc, std::slice::from_ref(&interned), false);
            }
        }
        for s in &refs.secrets {
            self.by_secret.remove(s, id);
        }
        for c in &refs.config_maps {
            self.by_config_map.remove(c, id);
        }
        for name in &refs.sandboxes {
            self.by_sandbox.remove(name, id);
        }
    }

    /// Records a ModelConfig; `secret` is its key Secret as the view holds it now, if any.
    pub fn apply_model_config(&mut self, mc: &ModelConfig, secret: Option<&SecretValues>) {
        let id = intern(&self.model_configs, &id_of_meta(&mc.metadata));
        self.forget_model_config(&id);
        let namespace = mc.metadata.namespace.as_deref().unwrap_or("");
        let target = match (&mc.spec.api_key_secret, &mc.spec.api_key_secret_key) {
            (Some(s), Some(k)) if !s.is_empty() && !k.is_empty() => Some((id_for(namespace, s), k.as_str())),
            _ => None,
        };
        let digest = target
            .as_ref()
            .zip(secret)
            .and_then(|((_, k), set)| set.keys.get(k))
            .filter(|f| !f.empty)
            .map(|f| f.digest);
        if let Some(d) = digest {
            *self.model_keys.entry(d).or_default() += 1;
        }
        let secret = target.map(|(s, k)| (self.models_by_secret.add(&s, &id), Box::from(k)));
        let provider = Box::from(mc.provider().to_ascii_lowercase());
        let model = mc.spec.model.as_deref().map(Box::from);
        self.model_configs.insert(id.clone(), ModelRefs { secret, digest, provider, model });
        // Its OpenShell users now run on its new route.
        let users = self.openshell_by_model_config.get(&id).to_vec();
        self.count_route(&id, &users, true);
    }

    /// Forgets a ModelConfig.
    pub fn delete_model_config(&mut self, key: &Key) {
        self.forget_model_config(&id_of(key));
    }

    fn forget_model_config(&mut self, id: &str) {
        let users = self.openshell_by_model_config.get(id).to_vec();
        self.count_route(id, &users, false);
        let Some(refs) = self.model_configs.remove(id) else { return };
        if let Some((secret, _)) = &refs.secret {
            self.models_by_secret.remove(secret, id);
        }
        if let Some(d) = refs.digest {
            self.forget_digest(d);
        }
    }

    fn forget_digest(&mut self, d: ValueDigest) {
        if let Some(n) = self.model_keys.get_mut(&d) {
            *n -= 1;
            if *n == 0 {
                self.model_keys.remove(&d);
            }
        }
    }

    /// A Secret changed (`Some`) or went away (`None`): refresh the key digests of the
    /// ModelConfigs that name it.
    pub fn apply_secret(&mut self, key: &Key, secret: Option<&SecretValues>) {
        let users = self.models_by_secret.get(&id_of(key)).to_vec();
        for mc in users {
            let Some(refs) = self.model_configs.get(&mc).cloned() else { continue };
            if let Some(d) = refs.digest {
                self.forget_digest(d);
            }
            let field = refs.secret.as_ref().map(|(_, k)| &**k).unwrap_or("");
            let digest = secret.and_then(|s| s.keys.get(field)).filter(|f| !f.empty).map(|f| f.digest);
            if let Some(d) = digest {
                *self.model_keys.entry(d).or_default() += 1;
            }
            let users = self.openshell_by_model_config.get(&mc).to_vec();
            self.count_route(&mc, &users, false);
            self.model_configs.insert(mc.clone(), ModelRefs { digest, ..refs });
            self.count_route(&mc, &users, true);
        }
    }

    /// The route the ModelConfig `mc` sets, and its provider type; `None` without a readable key.
    fn mc_route(&self, mc: &str) -> Option<(u64, &str)> {
        let refs = self.model_configs.get(mc)?;
        let route = route_id(&refs.provider, refs.model.as_deref(), refs.digest.as_ref()?);
        Some((route, &refs.provider))
    }

    /// Adds `users` (OpenShell harnesses) to the route the ModelConfig `mc` sets now, or takes
    /// them off it.
    fn count_route(&mut self, mc: &str, users: &[Id], add: bool) {
        let Some((route, provider)) = self.mc_route(mc).filter(|_| !users.is_empty()) else { return };
        let provider = intern(&self.provider_users, provider);
        let n = users.len();
        let bump = |count: &mut usize| *count = if add { *count + n } else { count.saturating_sub(n) };
        bump(self.route_users.entry(route).or_default());
        bump(self.provider_users.entry(provider.clone()).or_default());
        if self.route_users.get(&route) == Some(&0) {
            self.route_users.remove(&route);
        }
        if self.provider_users.get(&provider) == Some(&0) {
            self.provider_users.remove(&provider);
        }
        for id in users {
            let namespace = key_namespace(id);
            if add {
                let routes = match self.routes_here.get_mut(namespace) {
                    Some(routes) => routes,
                    None => self.routes_here.entry(namespace.into()).or_default(),
                };
                let here =
                    routes.entry(route).or_insert_with(|| RouteUsers { provider: provider.clone(), users: Vec::new() });
                if let Err(i) = here.users.binary_search(id) {
                    here.users.insert(i, id.clone());
                }
            } else if let Some(routes) = self.routes_here.get_mut(namespace) {
                if let Some(here) = routes.get_mut(&route) {
                    here.users.retain(|u| u != id);
                    if here.users.is_empty() {
                        routes.remove(&route);
                    }
                }
                if routes.is_empty() {
                    self.routes_here.remove(namespace);
                }
            }
        }
    }

    /// The live OpenShell harnesses (on a route of a provider type `served` accepts) whose route is
    /// not `mine`, `me` left out, counted as [`OtherRoutes`] with up to `names` shown (the first by
    /// name). Costs the number of provider types and of routes in `me`'s namespace, not the
    /// number of harnesses anywhere: this runs on every harness admission.
    pub fn other_routes(&self, mine: u64, me: &Key, served: &dyn Fn(&str) -> bool, names: usize) -> OtherRoutes {
        let served: Vec<(&Arc<str>, usize)> =
            self.provider_users.iter().filter(|(p, _)| served(p)).map(|(p, n)| (p, *n)).collect();
        let is_served = |p: &Arc<str>| served.iter().any(|(s, _)| ***s == **p);
        let live: usize = served.iter().map(|(_, n)| n).sum();
        let same = self.route_users.get(&mine).copied().unwrap_or(0);
        let me_id: Id = Id::from(id_of(me));
        let mut here_total = 0;
        let mut me_elsewhere = 0;
        let mut shown: Vec<&Id> = Vec::new();
        for (route, here) in self.routes_here.get(me.0.as_str()).into_iter().flatten() {
            if *route == mine || !is_served(&here.provider) {
                continue;
            }
            // `me`, already indexed on another live route (an update), is counted among the others.
            let me_on_it = here.users.binary_search(&me_id).is_ok();
            me_elsewhere += usize::from(me_on_it);
            here_total += here.users.len() - usize::from(me_on_it);
            for id in here.users.iter().filter(|id| **id != me_id) {
                // Keep the `names` smallest ids seen, sorted.
                let at = shown.partition_point(|s| *s < id);
                if at < names {
                    shown.insert(at, id);
                    shown.truncate(names);
                } else {
                    break;
                }
            }
        }
        let others = live.saturating_sub(same).saturating_sub(me_elsewhere);
        let more_here = here_total - shown.len();
        let elsewhere = others.saturating_sub(here_total);
        OtherRoutes { here: shown.into_iter().map(|id| key_from(id)).collect(), more_here, elsewhere }
    }

    /// Harnesses whose sandbox is named `sandbox`.
    pub fn harnesses_for_sandbox(&self, sandbox: &str) -> Vec<Key> {
        self.by_sandbox.get(sandbox).iter().map(|id| key_from(id)).collect()
    }

    /// Harnesses that reference the ModelConfig `key`.
    pub fn dependents_of_model_config(&self, key: &Key) -> BTreeSet<Key> {
        self.by_model_config.get(&id_of(key)).iter().map(|id| key_from(id)).collect()
    }

    /// Harnesses that depend on the Secret `key`: through a channel token, or through a
    /// ModelConfig that names it.
    pub fn dependents_of_secret(&self, key: &Key) -> BTreeSet<Key> {
        let id = id_of(key);
        let direct = self.by_secret.get(&id).iter();
        // OpenShell harnesses read the key in their ModelConfig's namespace...
        let through_models = self
            .models_by_secret
            .get(&id)
            .iter()
            .flat_map(|mc| self.by_model_config.get(mc))
            .filter(|h| self.harnesses.get(*h).is_none_or(|r| r.openshell));
        // ...substrate harnesses in their own, under the name their ModelConfig gives (a scan of
        // the ModelConfigs, on this path only: a change to a Secret).
        let named_here = self
            .model_configs
            .iter()
            .filter(|(_, refs)| refs.secret.as_ref().is_some_and(|(s, _)| key_from(s).1 == key.1))
            .flat_map(|(mc, _)| self.by_model_config.get(mc))
            .filter(|h| key_from(h).0 == key.0 && self.harnesses.get(*h).is_some_and(|r| !r.openshell));
        direct.chain(through_models).chain(named_here).map(|id| key_from(id)).collect()
    }

    /// Harnesses that depend on `target`.
    pub fn dependents(&self, target: &super::view::Target) -> BTreeSet<Key> {
        match target {
            super::view::Target::ModelConfig(k) => self.dependents_of_model_config(k),
            super::view::Target::Secret(k) => self.dependents_of_secret(k),
            super::view::Target::ConfigMap(k) => self.dependents_of_config_map(k),
        }
    }

    /// Harnesses that take a channel token from the ConfigMap `key`.
    pub fn dependents_of_config_map(&self, key: &Key) -> BTreeSet<Key> {
        self.by_config_map.get(&id_of(key)).iter().map(|id| key_from(id)).collect()
    }

    /// True if `digest` is some ModelConfig's API key.
    pub fn is_model_key(&self, digest: &ValueDigest) -> bool {
        self.model_keys.contains_key(digest)
    }
}
