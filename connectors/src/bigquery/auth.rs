//! Where the access token of every BigQuery request comes from.
//!
//! Three sources, chosen by the caller ([`Credentials`]): a service-account key file, Google's
//! application default credentials (the `gcloud auth application-default login` file, or the
//! instance metadata server when the caller allows it), or none at all for an emulator, which
//! accepts any token. Tokens are fetched and cached by `yup-oauth2` (through
//! `gcp-bigquery-client`'s re-export). Errors name the file, never its content or a token.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use gcp_bigquery_client::yup_oauth2;

use crate::error::{ConnectorError, redact_credentials};

/// The OAuth scope of every request: read and write BigQuery.
pub const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

/// The token sent to an emulator, which does not check it.
pub const EMULATOR_TOKEN: &str = "phygital-emulator";

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: a fixed token, for emulators.
    Emulator,
    /// A service-account key file (JSON), as downloaded from the Cloud console.
    ServiceAccountKeyFile(PathBuf),
    /// Application default credentials: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
    /// `application_default_credentials.json`, else (only when `allow_instance_metadata`) the
    /// metadata server of a GCE/GKE/Cloud Run instance.
    ApplicationDefault { allow_instance_metadata: bool },
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<String, ConnectorError>> + Send>>;

/// A source of access tokens; cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    fetch: Arc<dyn Fn() -> TokenFuture + Send + Sync>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource")
    }
}

impl TokenSource {
    /// A token for the next request (cached until shortly before it expires).
    pub async fn token(&self) -> Result<String, ConnectorError> {
        (self.fetch)().await
    }

    /// A fixed token.
    pub fn fixed(token: impl Into<String>) -> Self {
        let token: String = token.into();
        Self {
            fetch: Arc::new(move || {
                let token = token.clone();
                Box::pin(async move { Ok(token) })
            }),
        }
    }

    /// Builds the token source for `credentials`. A key file is read and parsed here, so a
    /// missing or malformed file fails before any request.
    pub async fn new(credentials: &Credentials) -> Result<Self, ConnectorError> {
        match credentials {
            Credentials::Emulator => Ok(Self::fixed(EMULATOR_TOKEN)),
            Credentials::ServiceAccountKeyFile(path) => service_account(path).await,
            Credentials::ApplicationDefault {
                allow_instance_metadata,
            } => application_default(*allow_instance_metadata).await,
        }
    }
}

fn credential_error(reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Credentials {
        reason: redact_credentials(&reason.into()),
    }
}

/// Wraps a built yup-oauth2 authenticator; its type is only named through inference.
macro_rules! token_source_from {
    ($authenticator:expr, $what:expr) => {{
        let authenticator = $authenticator;
        let what: String = $what;
        TokenSource {
            fetch: Arc::new(move || {
                let authenticator = authenticator.clone();
                let what = what.clone();
                Box::pin(async move {
                    let token = authenticator.token(&[BIGQUERY_SCOPE]).await.map_err(|e| {
                        credential_error(format!("cannot get an access token from {what}: {e}"))
                    })?;
                    token
                        .token()
                        .map(str::to_owned)
                        .ok_or_else(|| credential_error(format!("{what} returned no access token")))
                })
            }),
        }
    }};
}

async fn service_account(path: &Path) -> Result<TokenSource, ConnectorError> {
    let shown = path.display().to_string();
    let key = yup_oauth2::read_service_account_key(path)
        .await
        .map_err(|e| {
            // serde's messages quote only positions and field names, never values.
            credential_error(format!(
                "cannot read the service-account key file {shown}: {e} (expected the JSON key \
                 of a service account, with \"type\": \"service_account\")"
            ))
        })?;
    let authenticator = yup_oauth2::ServiceAccountAuthenticator::builder(key)
        .build()
        .await
        .map_err(|e| {
            credential_error(format!(
                "cannot use the service-account key file {shown}: {e}"
            ))
        })?;
    Ok(token_source_from!(
        authenticator,
        format!("the service-account key file {shown}")
    ))
}

async fn application_default(allow_instance_metadata: bool) -> Result<TokenSource, ConnectorError> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty())
    {
        return service_account(Path::new(&path)).await;
    }
    let gcloud_file = gcloud_application_default_file();
    if let Some(path) = gcloud_file.as_deref().filter(|p| p.is_file()) {
        let shown = path.display().to_string();
        let secret = yup_oauth2::read_authorized_user_secret(path)
            .await
            .map_err(|e| {
                credential_error(format!(
                    "cannot read the application default credentials {shown}: {e}"
                ))
            })?;
        let authenticator = yup_oauth2::AuthorizedUserAuthenticator::builder(secret)
            .build()
            .await
            .map_err(|e| {
                credential_error(format!(
                    "cannot use the application default credentials {shown}: {e}"
                ))
            })?;
        return Ok(token_source_from!(
            authenticator,
            format!("the application default credentials {shown}")
        ));
    }
    if !allow_instance_metadata {
        return Err(credential_error(
            "no BigQuery credentials: give --credentials FILE (a service-account key), set \
             GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or allow \
             the instance metadata server with PHYGITAL_ALLOW_INSTANCE_CREDENTIALS=true; for an \
             emulator give --endpoint URL or BIGQUERY_EMULATOR_HOST",
        ));
    }
    let opts = yup_oauth2::ApplicationDefaultCredentialsFlowOpts::default();
    let built = match yup_oauth2::ApplicationDefaultCredentialsAuthenticator::builder(opts).await {
        yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::InstanceMetadata(
            builder,
        ) => builder.build().await,
        yup_oauth2::authenticator::ApplicationDefaultCredentialsTypes::ServiceAccount(builder) => {
            builder.build().await
        }
    };
    let authenticator = built.map_err(|e| {
        credential_error(format!(
            "cannot use the instance metadata server for credentials: {e}"
        ))
    })?;
    Ok(token_source_from!(
        authenticator,
        "the instance metadata server".to_owned()
    ))
}

/// gcloud's application default credentials file: `$CLOUDSDK_CONFIG` or `~/.config/gcloud`.
fn gcloud_application_default_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLOUDSDK_CONFIG").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config/gcloud"),
    };
    Some(dir.join("application_default_credentials.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("phygital-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[tokio::test]
    async fn emulator_token_is_fixed() {
        let source = TokenSource::new(&Credentials::Emulator).await.unwrap();
        assert_eq!(source.token().await.unwrap(), EMULATOR_TOKEN);
    }

    #[tokio::test]
    async fn a_bad_key_file_is_one_error_naming_the_file_not_its_content() {
        let secret = "-----BEGIN PRIVATE KEY-----SECRETMATERIAL";
        let path = temp_file("bad.json", &format!("{{\"private_key\": \"{secret}\""));
        let error = TokenSource::new(&Credentials::ServiceAccountKeyFile(path.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(!error.contains("SECRETMATERIAL"), "{error}");
        let missing = std::env::temp_dir().join("phygital-auth-does-not-exist.json");
        let error = TokenSource::new(&Credentials::ServiceAccountKeyFile(missing.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("does-not-exist"), "{error}");
        let _ = std::fs::remove_file(path);
    }
}
