//! The Control Panel in `serve`: the console's pages on every region's listener, logging users
//! in against the identity `serve` runs with, acting through each region's API router.

use std::sync::Arc;

use imgshare_console::{
    Authenticator, BuiltinAuthenticator, ConsoleConfig, KeystoneAuthenticator, RegionApi,
};
use imgshare_core::Profile;
use imgshare_server::AppState;

use crate::identity::IdentitySetup;

/// Whether the console is served, and why not.
pub(crate) enum ConsoleState {
    /// Served at `/console` on every listener.
    On,
    /// `--no-console`.
    Off,
    /// The identity has no login (a static tokens file holds tokens, not passwords).
    NoLogin,
}

/// Who users log in against: the built-in identity or Keystone; none for static tokens.
fn authenticator(identity: &IdentitySetup) -> Option<Arc<dyn Authenticator>> {
    if let Some(builtin) = &identity.builtin {
        return Some(Arc::new(BuiltinAuthenticator::new(Arc::clone(builtin))));
    }
    identity
        .keystone
        .clone()
        .map(|keystone| Arc::new(KeystoneAuthenticator::new(keystone)) as Arc<dyn Authenticator>)
}

/// The console's router over every region's API (in the order served: the first is the
/// default), or `None` with the reason it is not served.
pub(crate) fn pages(
    wanted: bool,
    identity: &IdentitySetup,
    regions: &[AppState],
    profile: &Profile,
    secure_cookies: bool,
) -> anyhow::Result<(Option<axum::Router>, ConsoleState)> {
    if !wanted {
        return Ok((None, ConsoleState::Off));
    }
    let Some(authenticator) = authenticator(identity) else {
        return Ok((None, ConsoleState::NoLogin));
    };
    // The console calls the same router each listener serves, in-process, with the user's
    // token: the token check and every rule apply as to any client.
    let regions = regions
        .iter()
        .map(|state| RegionApi {
            name: state.region.to_string(),
            api: imgshare_server::router(state.clone()),
        })
        .collect();
    let config = ConsoleConfig {
        profile: profile.clone(),
        secure_cookies,
        ..ConsoleConfig::new(authenticator, regions)
    };
    Ok((Some(imgshare_console::router(config)?), ConsoleState::On))
}
