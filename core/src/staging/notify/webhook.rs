//! HTTP webhooks: the event as a JSON `POST`, signed with HMAC-SHA256 when the hook has a
//! secret.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Failed, HookSecret};
use crate::error::{Error, Result};
use crate::staging::Event;

/// The header holding `sha256=HEX`, the HMAC-SHA256 of the body under the hook's secret.
pub const SIGNATURE_HEADER: &str = "X-Capsa-Signature-256";

/// `sha256=HEX`: the value of [`SIGNATURE_HEADER`] for `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!(
        "sha256={}",
        crate::archive::hex(&mac.finalize().into_bytes())
    )
}

pub(super) struct Webhook {
    url: String,
    secret: Option<HookSecret>,
    client: reqwest::Client,
}

impl Webhook {
    pub(super) fn new(url: &str, secret: Option<HookSecret>, timeout: Duration) -> Result<Webhook> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("capsa/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidArgument {
                what: "notifications",
                reason: format!("cannot build the webhook client: {e}"),
            })?;
        Ok(Webhook {
            url: url.to_string(),
            secret,
            client,
        })
    }

    pub(super) async fn post(&self, e: &Event, body: &[u8]) -> std::result::Result<(), Failed> {
        let mut rq = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Capsa-Event", e.kind.as_str())
            .header("X-Capsa-Delivery", e.seq.to_string());
        if let Some(s) = &self.secret {
            rq = rq.header(SIGNATURE_HEADER, signature(s.expose(), body));
        }
        match rq.body(body.to_vec()).send().await {
            Err(err) => Err(Failed {
                // Without the URL: its path may hold a token.
                why: format!("request failed: {}", err.without_url()),
                retry: true,
            }),
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let code = r.status();
                let retry = code.is_server_error() || code.as_u16() == 408 || code.as_u16() == 429;
                Err(Failed {
                    why: format!("answered {code}"),
                    retry,
                })
            }
        }
    }
}
