//! What the webhook server serves with, shared by the parts that fill it: the certificate source
//! (set by the file reloader in `server` and the self-signed reconcile in `cluster`) and
//! readiness (set by them and by the view's first sync). Both sides import this; neither imports
//! the other.

pub mod certificate;
pub mod readiness;
