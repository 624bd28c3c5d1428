//! Object storage: storage-root URLs and a registry that builds cloud stores on first use.
//!
//! `file://` (and plain paths), `s3://`/`s3a://`, `gs://`, `az://`/`azure://`/`abfs://`/`abfss://` resolve lazily
//! from each cloud's usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), so any location works in SQL
//! (`CREATE EXTERNAL TABLE … LOCATION 's3://…'`, `COPY … TO 'gs://…'`) without registering anything first.
//!
//! Credentials are checked before a store is built: without them the SDKs would fall back to the cloud's
//! instance-metadata service, which off-cloud hangs on an unreachable address instead of saying what is missing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::common::{DataFusionError, Result, exec_err, plan_err};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use url::Url;

/// Settings that the environment variables of the clouds do not cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    /// Endpoint of an S3-compatible server (MinIO, Ceph, moto…); `AWS_ENDPOINT` works too.
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_allow_http: bool,
    /// Allow credentials from the instance-metadata service (EC2/GCE/Azure VM identities).
    pub allow_instance_credentials: bool,
}

/// The cloud behind a URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    S3,
    Gcs,
    Azure,
}

impl StoreKind {
    pub fn from_scheme(scheme: &str) -> Option<StoreKind> {
        Some(match scheme {
            "file" => StoreKind::Local,
            "s3" | "s3a" => StoreKind::S3,
            "gs" => StoreKind::Gcs,
            "az" | "azure" | "abfs" | "abfss" | "adl" => StoreKind::Azure,
            _ => return None,
        })
    }
}

const SCHEMES_HINT: &str = "use a local path, file://, s3://, gs://, az:// or abfss://";

/// A folder in an object store that holds tables, one sub-folder each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRoot {
    url: Url,
    kind: StoreKind,
}

impl StorageRoot {
    /// Parses a storage URL or a local path (made absolute; it need not exist yet).
    pub fn parse(url_or_path: &str) -> Result<StorageRoot> {
        let s = url_or_path.trim();
        if s.is_empty() {
            return plan_err!("empty storage location: {SCHEMES_HINT}");
        }
        let url = match s.split_once("://") {
            // "file://./data" and "file://data" are how people write relative paths; the URL spec would
            // read "." or "data" as a host name.
            Some(("file", rest)) if !rest.starts_with('/') => local_dir_url(rest)?,
            Some((scheme, _)) => {
                if StoreKind::from_scheme(&scheme.to_ascii_lowercase()).is_none() {
                    return plan_err!("unknown storage scheme '{scheme}' in '{s}': {SCHEMES_HINT}");
                }
                let mut url = Url::parse(s).map_err(|e| {
                    DataFusionError::Plan(format!("invalid storage URL '{s}': {e}"))
                })?;
                if !url.path().ends_with('/') {
                    let p = format!("{}/", url.path());
                    url.set_path(&p);
                }
                url
            }
            None => local_dir_url(s)?,
        };
        let Some(kind) = StoreKind::from_scheme(url.scheme()) else {
            return plan_err!(
                "unknown storage scheme '{}' in '{s}': {SCHEMES_HINT}",
                url.scheme()
            );
        };
        if kind != StoreKind::Local && url.host_str().is_none_or(str::is_empty) {
            return plan_err!("storage URL '{s}' has no bucket/container name");
        }
        Ok(StorageRoot { url, kind })
    }

    /// The root URL; always ends with '/'.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The store holding this root, built on first use through the session's registry.
    pub fn object_store(&self, ctx: &SessionContext) -> Result<Arc<dyn ObjectStore>> {
        ctx.runtime_env().object_store_registry.get_store(&self.url)
    }

    /// The folder inside the store ("" for a bucket root).
    pub fn prefix(&self) -> Path {
        // from_url_path percent-decodes; a URL that parsed cannot fail here except for ".." segments,
        // which Url::parse already resolved.
        Path::from_url_path(self.url.path()).unwrap_or_default()
    }

    /// URL of the sub-folder `name`, ending with '/'.
    pub fn child_url(&self, name: &str) -> String {
        format!("{}{}/", self.url, name.trim_matches('/'))
    }

    /// Whether this root is on the local file system and does not exist yet.
    pub fn is_missing_local_dir(&self) -> bool {
        self.kind == StoreKind::Local && self.url.to_file_path().is_ok_and(|p| !p.exists())
    }
}

impl std::fmt::Display for StorageRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

fn local_dir_url(path: &str) -> Result<Url> {
    let abs = std::path::absolute(path)
        .map_err(|e| DataFusionError::Plan(format!("invalid local path '{path}': {e}")))?;
    Url::from_directory_path(&abs)
        .map_err(|()| DataFusionError::Plan(format!("invalid local path '{}'", abs.display())))
}

/// Builds the store for `url` (its bucket/container) from the environment plus `opts`.
pub fn store_for_url(url: &Url, opts: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    let Some(kind) = StoreKind::from_scheme(url.scheme()) else {
        return plan_err!("no object store for '{url}': {SCHEMES_HINT}");
    };
    let bucket_url = format!("{}://{}", url.scheme(), authority(url));
    let store: Arc<dyn ObjectStore> = match kind {
        StoreKind::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        StoreKind::S3 => {
            check_credentials(&bucket_url, opts, &S3_CREDENTIALS)?;
            let mut b = AmazonS3Builder::from_env().with_url(bucket_url.as_str());
            if let Some(endpoint) = &opts.s3_endpoint {
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(opts.s3_allow_http || endpoint.starts_with("http://"));
            } else if opts.s3_allow_http {
                b = b.with_allow_http(true);
            }
            let region_from_env = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .any(|k| std::env::var(k).is_ok());
            match &opts.s3_region {
                Some(r) => b = b.with_region(r),
                // S3-compatible servers ignore the region but signing needs one.
                None if !region_from_env && opts.s3_endpoint.is_some() => {
                    b = b.with_region("us-east-1")
                }
                None => {}
            }
            Arc::new(b.build().map_err(|e| store_error(&bucket_url, e))?)
        }
        StoreKind::Gcs => {
            check_credentials(&bucket_url, opts, &GCS_CREDENTIALS)?;
            let b = GoogleCloudStorageBuilder::from_env().with_url(bucket_url.as_str());
            Arc::new(b.build().map_err(|e| store_error(&bucket_url, e))?)
        }
        StoreKind::Azure => {
            check_credentials(&bucket_url, opts, &AZURE_CREDENTIALS)?;
            let b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            Arc::new(b.build().map_err(|e| store_error(&bucket_url, e))?)
        }
    };
    Ok(store)
}

fn store_error(bucket_url: &str, e: object_store::Error) -> DataFusionError {
    DataFusionError::ObjectStore(Box::new(e)).context(format!("opening {bucket_url}"))
}

/// `container@account.host:port` — everything that identifies one store.
fn authority(url: &Url) -> &str {
    let start = url::Position::AfterScheme;
    url[start..url::Position::AfterPort].trim_start_matches([':', '/'])
}

/// Which environment variables give credentials to a cloud, in the words of its SDK.
struct CredentialSources {
    cloud: &'static str,
    /// Any one of these sets is enough (all variables of a set must be present).
    sets: &'static [&'static [&'static str]],
    /// Files that provide credentials when present (path with `~` for $HOME).
    files: &'static [&'static str],
    hint: &'static str,
}

static S3_CREDENTIALS: CredentialSources = CredentialSources {
    cloud: "AWS",
    sets: &[
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        &["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"],
        &["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"],
        &["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        &["AWS_SKIP_SIGNATURE"],
    ],
    files: &[],
    hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN)",
};

static GCS_CREDENTIALS: CredentialSources = CredentialSources {
    cloud: "Google Cloud",
    sets: &[
        &["GOOGLE_SERVICE_ACCOUNT"],
        &["GOOGLE_SERVICE_ACCOUNT_PATH"],
        &["GOOGLE_SERVICE_ACCOUNT_KEY"],
        &["GOOGLE_APPLICATION_CREDENTIALS"],
        &["GOOGLE_SKIP_SIGNATURE"],
    ],
    files: &["~/.config/gcloud/application_default_credentials.json"],
    hint: "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a service-account key file, \
           or run `gcloud auth application-default login`",
};

static AZURE_CREDENTIALS: CredentialSources = CredentialSources {
    cloud: "Azure",
    sets: &[
        &["AZURE_STORAGE_ACCOUNT_KEY"],
        &["AZURE_STORAGE_ACCESS_KEY"],
        &["AZURE_STORAGE_MASTER_KEY"],
        &["AZURE_STORAGE_SAS_KEY"],
        &["AZURE_STORAGE_SAS_TOKEN"],
        &["AZURE_STORAGE_TOKEN"],
        &["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"],
        &["AZURE_FEDERATED_TOKEN_FILE"],
        &["AZURE_STORAGE_USE_EMULATOR"],
        &["AZURE_USE_AZURE_CLI"],
        &["AZURE_SKIP_SIGNATURE"],
    ],
    files: &[],
    hint: "set AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY, or \
           AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID)",
};

fn check_credentials(
    bucket_url: &str,
    opts: &StorageOptions,
    sources: &CredentialSources,
) -> Result<()> {
    if opts.allow_instance_credentials {
        return Ok(());
    }
    let present = |k: &&str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    if sources.sets.iter().any(|set| set.iter().all(present)) {
        return Ok(());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    if sources
        .files
        .iter()
        .any(|f| std::path::Path::new(&f.replacen('~', &home, 1)).is_file())
    {
        return Ok(());
    }
    // Name a half-configured set precisely: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".
    let partial = sources.sets.iter().find_map(|set| {
        let (have, missing): (Vec<&str>, Vec<&str>) = set.iter().partition(|k| present(k));
        (!have.is_empty()).then(|| {
            format!(
                " ({} set but {} missing)",
                have.join(", "),
                missing.join(", ")
            )
        })
    });
    exec_err!(
        "no {} credentials for {bucket_url}{}: {}; on a cloud VM with an attached identity set \
         PHYGITAL_ALLOW_INSTANCE_CREDENTIALS=true",
        sources.cloud,
        partial.unwrap_or_default(),
        sources.hint
    )
}

/// An [`ObjectStoreRegistry`] that builds stores for cloud URLs on first use (like datafusion-cli).
#[derive(Debug)]
pub struct LazyObjectStoreRegistry {
    options: StorageOptions,
    local: DefaultObjectStoreRegistry,
    /// keyed by `scheme://authority`; the default registry's key drops the Azure container (`container@`).
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl LazyObjectStoreRegistry {
    pub fn new(options: StorageOptions) -> Self {
        LazyObjectStoreRegistry {
            options,
            local: DefaultObjectStoreRegistry::new(),
            stores: RwLock::new(HashMap::new()),
        }
    }

    fn key(url: &Url) -> String {
        format!("{}://{}", url.scheme(), authority(url))
    }
}

impl ObjectStoreRegistry for LazyObjectStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.register_store(url, store);
        }
        match self.stores.write() {
            Ok(mut map) => map.insert(Self::key(url), store),
            Err(poisoned) => poisoned.into_inner().insert(Self::key(url), store),
        }
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.get_store(url);
        }
        let key = Self::key(url);
        let cached = match self.stores.read() {
            Ok(map) => map.get(&key).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&key).cloned(),
        };
        if let Some(store) = cached {
            return Ok(store);
        }
        let store = store_for_url(url, &self.options)?;
        let mut map = match self.stores.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another thread may have built it meanwhile; keep the first so all users share one client.
        Ok(Arc::clone(map.entry(key).or_insert(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let r = StorageRoot::parse("s3://bucket/a/b").unwrap();
        assert_eq!(r.url().as_str(), "s3://bucket/a/b/");
        assert_eq!(r.prefix().as_ref(), "a/b");
        assert_eq!(r.child_url("t"), "s3://bucket/a/b/t/");
        assert_eq!(r.kind(), StoreKind::S3);

        let r = StorageRoot::parse("gs://bucket").unwrap();
        assert_eq!(r.prefix().as_ref(), "");
        assert_eq!(r.child_url("web_events"), "gs://bucket/web_events/");

        let r = StorageRoot::parse("abfss://cont@acct.dfs.core.windows.net/x").unwrap();
        assert_eq!(r.kind(), StoreKind::Azure);
        assert_eq!(authority(r.url()), "cont@acct.dfs.core.windows.net");

        let cwd = std::env::current_dir().unwrap();
        for s in ["./d", "d", "file://./d", "file://d"] {
            let r = StorageRoot::parse(s).unwrap();
            assert_eq!(r.url().to_file_path().unwrap(), cwd.join("d"), "{s}");
            assert!(r.url().as_str().ends_with("/d/"), "{s}");
        }
        let r = StorageRoot::parse("file:///tmp/x").unwrap();
        assert_eq!(r.prefix().as_ref(), "tmp/x");
    }

    #[test]
    fn rejects_bad_locations() {
        let e = StorageRoot::parse("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("unknown storage scheme 'ftp'"), "{e}");
        let e = StorageRoot::parse("s3:///x").unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
        assert!(StorageRoot::parse("  ").is_err());
    }

    #[test]
    fn registry_keys_keep_azure_container() {
        let a = Url::parse("abfss://one@acct.dfs.core.windows.net/p").unwrap();
        let b = Url::parse("abfss://two@acct.dfs.core.windows.net/p").unwrap();
        assert_ne!(
            LazyObjectStoreRegistry::key(&a),
            LazyObjectStoreRegistry::key(&b)
        );
        let s = Url::parse("s3://bucket/deep/path/file.parquet").unwrap();
        assert_eq!(LazyObjectStoreRegistry::key(&s), "s3://bucket");
    }
}
