//! Unit tests of URL parsing and of every environment rule (no process environment, no
//! network).

use super::*;

fn parse(text: &str) -> ArtifactUrl {
    ArtifactUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn env(pairs: &[(&str, &str)]) -> CloudEnv {
    CloudEnv::from_pairs(pairs.iter().copied())
}

const SECRET: &str = "S3cr3tValueThatMustNeverBePrinted0123456789";
const TOKEN: &str = "SessionTokenThatMustNeverBePrinted987654321";

fn s3(pairs: &[(&str, &str)]) -> Result<S3Settings, StoreEnvError> {
    match store_settings(&parse("s3://bucket-1/p"), &env(pairs))? {
        StoreSettings::S3(s) => Ok(s),
        other => panic!("{other:?}"),
    }
}

fn azure(pairs: &[(&str, &str)]) -> Result<AzureSettings, StoreEnvError> {
    match store_settings(&parse("az://container-1/p"), &env(pairs))? {
        StoreSettings::Azure(s) => Ok(s),
        other => panic!("{other:?}"),
    }
}

fn gcs(pairs: &[(&str, &str)]) -> Result<GcsSettings, StoreEnvError> {
    match store_settings(&parse("gs://bucket-1/p"), &env(pairs))? {
        StoreSettings::Gcs(s) => Ok(s),
        other => panic!("{other:?}"),
    }
}

/// Neither the message nor the `Debug` form contains any of `secrets`.
fn assert_hidden(what: &dyn std::fmt::Debug, text: &str, secrets: &[&str]) {
    let debug = format!("{what:?}");
    for s in secrets {
        assert!(!text.contains(s), "{s} in {text}");
        assert!(!debug.contains(s), "{s} in {debug}");
    }
}

// ----- URL parsing -----------------------------------------------------------------------

#[test]
fn the_three_schemes_parse_with_bucket_and_normalised_prefix() {
    let u = parse("s3://my-bucket/backups/prod");
    assert_eq!(
        (u.kind(), u.bucket(), u.prefix()),
        (StoreKind::S3, "my-bucket", "backups/prod")
    );
    let u = parse("az://container-1//a/./b/");
    assert_eq!((u.kind(), u.prefix()), (StoreKind::Azure, "a/b"));
    let u = parse("azure://container-1/x");
    assert_eq!(u.kind(), StoreKind::Azure);
    assert_eq!(u.to_string(), "az://container-1/x");
    let u = parse("gs://my_bucket.example.com/deep/er/");
    assert_eq!(
        (u.kind(), u.bucket(), u.prefix()),
        (StoreKind::Gcs, "my_bucket.example.com", "deep/er")
    );
    assert_eq!(u.to_string(), "gs://my_bucket.example.com/deep/er");
    let u = parse("S3://bucket-1/p");
    assert_eq!(u.kind(), StoreKind::S3, "schemes are case-insensitive");
}

#[test]
fn the_prefix_may_be_empty() {
    for text in [
        "s3://bucket-1",
        "s3://bucket-1/",
        "s3://bucket-1///",
        "s3://bucket-1/./",
    ] {
        let u = parse(text);
        assert_eq!(u.prefix(), "", "{text}");
        assert_eq!(u.to_string(), "s3://bucket-1", "{text}");
    }
}

#[test]
fn keys_and_joined_urls_sit_under_the_prefix() {
    let u = parse("s3://bucket-1/backups");
    assert_eq!(
        u.key("dep_20240102T030405Z/metadata").unwrap(),
        "backups/dep_20240102T030405Z/metadata"
    );
    assert!(u.key("../escape").is_err());
    let root = parse("gs://bucket-1");
    assert_eq!(root.key("a//b").unwrap(), "a/b");
    assert!(root.key("").is_err(), "the empty key");
    let j = u.join("dep_1/").unwrap();
    assert_eq!(j.to_string(), "s3://bucket-1/backups/dep_1");
    assert_eq!(root.join("").unwrap(), root);
}

#[test]
fn non_urls_are_local_paths() {
    for text in [
        "/var/backups",
        "relative/dir",
        "./s3://bucket-1/p",
        "s3:/bucket-1",
        "s3:bucket",
        "",
        "1s3://bucket",
        "C:\\backups",
    ] {
        assert_eq!(
            ArtifactUrl::parse(text),
            Err(ArtifactUrlError::NotAUrl {
                text: text.to_string()
            }),
            "{text}"
        );
        assert_eq!(ArtifactUrl::classify(text), Ok(None), "{text}");
    }
    assert!(ArtifactUrl::classify("s3://bucket-1").unwrap().is_some());
}

#[test]
fn other_schemes_are_unsupported_and_named() {
    for (text, scheme) in [
        ("http://example.com/x", "http"),
        ("file:///tmp/x", "file"),
        ("abfss://c@a.dfs.core.windows.net/p", "abfss"),
        ("gcs://bucket-1/p", "gcs"),
    ] {
        let e = ArtifactUrl::parse(text).unwrap_err();
        assert!(
            matches!(&e, ArtifactUrlError::UnsupportedScheme { scheme: s, .. } if s == scheme),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("unsupported artifact URL scheme"),
            "{e}"
        );
        assert!(ArtifactUrl::classify(text).is_err(), "{text}");
    }
}

#[test]
fn bad_buckets_are_refused_naming_the_url_and_the_rule() {
    let e = ArtifactUrl::parse("s3:///prefix").unwrap_err();
    assert!(matches!(
        e,
        ArtifactUrlError::MissingBucket { what: "bucket", .. }
    ));
    assert!(e.to_string().contains("s3:///prefix"), "{e}");
    let e = ArtifactUrl::parse("az://").unwrap_err();
    assert!(matches!(
        e,
        ArtifactUrlError::MissingBucket {
            what: "container",
            ..
        }
    ));
    let long_s3 = format!("s3://{}", "a".repeat(64));
    let long_gs = format!("gs://{}", "a".repeat(64));
    for text in [
        "s3://ab/p",
        "s3://Upper-Case/p",
        "s3://under_score",
        "s3://-dash",
        "s3://dash-",
        "s3://a..b",
        "s3://192.168.1.1",
        "az://my.container",
        "az://double--dash",
        "az://Upper",
        "gs://goog-bucket",
        "gs://x",
        "gs://bad!char",
        "gs://.dot",
        long_s3.as_str(),
        long_gs.as_str(),
    ] {
        let e = ArtifactUrl::parse(text).unwrap_err();
        assert!(
            matches!(e, ArtifactUrlError::InvalidBucket { .. }),
            "{text}: {e:?}"
        );
        assert!(e.to_string().contains(text), "{e}");
    }
    let long_dotted = format!("{}.{}", "a".repeat(60), "b".repeat(60));
    assert!(ArtifactUrl::parse(&format!("gs://{long_dotted}")).is_ok());
    assert!(ArtifactUrl::parse("s3://my.dotted.bucket").is_ok());
    assert!(ArtifactUrl::parse("az://abc").is_ok());
}

#[test]
fn dot_dot_and_control_characters_are_refused_in_the_prefix() {
    for text in ["s3://bucket-1/a/../b", "gs://bucket-1/..", "az://c-1/a\nb"] {
        let e = ArtifactUrl::parse(text).unwrap_err();
        assert!(matches!(e, ArtifactUrlError::InvalidPrefix { .. }), "{e:?}");
    }
    assert_eq!(parse("s3://bucket-1/a..b/c").prefix(), "a..b/c");
}

#[test]
fn queries_fragments_and_user_info_are_refused_and_redacted() {
    let sas = "sv=2022&sig=SecretSignature123";
    let e = ArtifactUrl::parse(&format!("az://c-1/p?{sas}")).unwrap_err();
    assert!(
        matches!(e, ArtifactUrlError::QueryOrFragment { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("az://c-1/p?<redacted>"), "{e}");
    assert_hidden(&e, &e.to_string(), &["SecretSignature123"]);
    let e = ArtifactUrl::parse("s3://bucket-1/p#frag-secret").unwrap_err();
    assert!(matches!(e, ArtifactUrlError::QueryOrFragment { .. }));
    assert_hidden(&e, &e.to_string(), &["frag-secret"]);
    let e = ArtifactUrl::parse("s3://AKID:TopSecret@bucket-1/p").unwrap_err();
    assert!(matches!(e, ArtifactUrlError::Credentials { .. }), "{e:?}");
    assert!(e.to_string().contains("s3://<redacted>@bucket-1/p"), "{e}");
    assert_hidden(&e, &e.to_string(), &["TopSecret", "AKID"]);
    let e = ArtifactUrl::parse("ftp://u:TopSecret@host/p?x=TopSecret").unwrap_err();
    assert!(matches!(e, ArtifactUrlError::UnsupportedScheme { .. }));
    assert_hidden(&e, &e.to_string(), &["TopSecret"]);
}

// ----- CloudEnv ----------------------------------------------------------------------------

#[test]
fn the_environment_map_treats_blank_as_unset_and_debug_shows_names_only() {
    let mut e = env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_REGION", "  ")]);
    e.set("AWS_SECRET_ACCESS_KEY", SECRET);
    assert_eq!(e.get("AWS_ACCESS_KEY_ID"), Some("AKID"));
    assert_eq!(e.get("AWS_REGION"), None);
    assert_eq!(e.get("UNSET"), None);
    let debug = format!("{e:?}");
    assert!(debug.contains("AWS_SECRET_ACCESS_KEY"), "{debug}");
    assert!(
        !debug.contains(SECRET) && !debug.contains("AKID"),
        "{debug}"
    );
}

// ----- S3 ----------------------------------------------------------------------------------

const AWS_KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
];

#[test]
fn s3_keys_region_default_and_no_endpoint() {
    let s = s3(&AWS_KEYS).unwrap();
    assert_eq!(s.bucket, "bucket-1");
    assert_eq!(s.access_key_id, "AKIDEXAMPLE");
    assert_eq!(s.secret_access_key, SECRET);
    assert_eq!(s.session_token, None);
    assert_eq!(s.region.as_deref(), Some("us-east-1"));
    assert_eq!(s.endpoint, None);
    assert!(!s.force_path_style);
    assert_eq!(s.ca_cert_pem, None);
}

#[test]
fn s3_region_prefers_aws_region_over_aws_default_region() {
    let mut pairs = AWS_KEYS.to_vec();
    pairs.push(("AWS_DEFAULT_REGION", "eu-west-1"));
    assert_eq!(s3(&pairs).unwrap().region.as_deref(), Some("eu-west-1"));
    pairs.push(("AWS_REGION", "ap-south-1"));
    assert_eq!(s3(&pairs).unwrap().region.as_deref(), Some("ap-south-1"));
    pairs.push(("AWS_REGION", "not a region"));
    let e = s3(&pairs).unwrap_err();
    assert!(e.to_string().contains("AWS_REGION"), "{e}");
}

#[test]
fn s3_session_token_is_passed_and_hidden() {
    let mut pairs = AWS_KEYS.to_vec();
    pairs.push(("AWS_SESSION_TOKEN", TOKEN));
    let s = s3(&pairs).unwrap();
    assert_eq!(s.session_token.as_deref(), Some(TOKEN));
    let settings = StoreSettings::S3(s);
    assert_hidden(&settings, "", &[SECRET, TOKEN]);
    let d = crate::object::ObjectDestination::new(settings).unwrap();
    assert_hidden(&d, d.describe(), &[SECRET, TOKEN]);
}

#[test]
fn s3_endpoint_service_specific_first_then_generic_with_path_style() {
    let mut pairs = AWS_KEYS.to_vec();
    pairs.push(("AWS_ENDPOINT_URL", "https://minio.example.com:9000/"));
    let s = s3(&pairs).unwrap();
    assert_eq!(
        s.endpoint.as_deref(),
        Some("https://minio.example.com:9000")
    );
    assert!(
        s.force_path_style,
        "custom endpoints are addressed path-style"
    );
    pairs.push(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8333"));
    assert_eq!(
        s3(&pairs).unwrap().endpoint.as_deref(),
        Some("http://127.0.0.1:8333")
    );
    pairs.push(("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"));
    let s = s3(&pairs).unwrap();
    assert_eq!(s.endpoint, None);
    assert!(!s.force_path_style);
}

#[test]
fn s3_endpoints_must_be_http_urls_without_credentials() {
    for (value, why) in [
        ("minio.example.com:9000", "http"),
        ("ftp://host", "http"),
        ("http://", "not a valid URL"),
        ("http://AKID:EndpointSecret@host", "credentials"),
        ("https://host/?X-Amz-Signature=EndpointSecret", "query"),
    ] {
        let mut pairs = AWS_KEYS.to_vec();
        pairs.push(("AWS_ENDPOINT_URL", value));
        let e = s3(&pairs).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                StoreEnvError::InvalidVariable {
                    var: "AWS_ENDPOINT_URL",
                    ..
                }
            ),
            "{value}: {e:?}"
        );
        assert!(text.contains(why), "{value}: {text}");
        assert_hidden(&e, &text, &["EndpointSecret", SECRET]);
    }
}

#[test]
fn s3_missing_or_half_credentials_name_the_variables() {
    let e = s3(&[]).unwrap_err();
    assert!(matches!(
        e,
        StoreEnvError::MissingCredentials { store: "S3", .. }
    ));
    let text = e.to_string();
    assert!(
        text.starts_with("s3://bucket-1/p: no S3 credentials")
            && text.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{text}"
    );
    let e = s3(&[("AWS_ACCESS_KEY_ID", "AKID")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "s3://bucket-1/p: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
    );
    let e = s3(&[("AWS_SECRET_ACCESS_KEY", SECRET)]).unwrap_err();
    assert!(
        e.to_string()
            .contains("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        "{e}"
    );
    assert_hidden(&e, &e.to_string(), &[SECRET]);
}

#[test]
fn s3_ca_bundle_is_read_from_the_file_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let mut pairs = AWS_KEYS.to_vec();
    let path = pem.to_string_lossy().into_owned();
    pairs.push(("AWS_CA_BUNDLE", path.as_str()));
    let s = s3(&pairs).unwrap();
    assert!(s.ca_cert_pem.unwrap().contains("BEGIN CERTIFICATE"));

    let missing = dir
        .path()
        .join("missing.pem")
        .to_string_lossy()
        .into_owned();
    let mut pairs = AWS_KEYS.to_vec();
    pairs.push(("AWS_CA_BUNDLE", missing.as_str()));
    let e = s3(&pairs).unwrap_err();
    assert!(matches!(
        e,
        StoreEnvError::ReadFile {
            var: "AWS_CA_BUNDLE",
            ..
        }
    ));
    assert!(e.to_string().contains(&missing), "{e}");

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.to_string_lossy().into_owned();
    let mut pairs = AWS_KEYS.to_vec();
    pairs.push(("AWS_CA_BUNDLE", junk.as_str()));
    let e = s3(&pairs).unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
}

// ----- Azure -------------------------------------------------------------------------------

/// A valid base64 key that is still a secret.
const AZ_KEY: &str = "U2VjcmV0QXp1cmVLZXlUaGF0TXVzdE5vdExlYWsxMjM0NTY3ODkw";
const AZ_SIG: &str = "SecretSasSig%2Babc%3D";

#[test]
fn azure_account_and_key_with_the_default_endpoint() {
    let s = azure(&[
        ("AZURE_STORAGE_ACCOUNT", "acct1"),
        ("AZURE_STORAGE_KEY", AZ_KEY),
    ])
    .unwrap();
    assert_eq!(
        (s.account.as_str(), s.container.as_str()),
        ("acct1", "container-1")
    );
    assert_eq!(s.access_key, AZ_KEY);
    assert_eq!(s.sas_token, None);
    assert_eq!(s.endpoint, AzureEndpoint::default());
    assert_hidden(&StoreSettings::Azure(s), "", &[AZ_KEY]);
}

#[test]
fn azure_sas_token_and_endpoint_override() {
    let sas = format!("?sv=2022-11-02&ss=b&sig={AZ_SIG}");
    let s = azure(&[
        ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
        ("AZURE_STORAGE_SAS_TOKEN", sas.as_str()),
        (
            "AZURE_STORAGE_BLOB_ENDPOINT",
            "http://127.0.0.1:10000/devstoreaccount1/",
        ),
    ])
    .unwrap();
    assert_eq!(s.access_key, "");
    assert_eq!(s.sas_token.as_deref(), Some(sas.as_str()));
    assert_eq!(
        s.endpoint,
        AzureEndpoint::Url("http://127.0.0.1:10000/devstoreaccount1".into())
    );
    let settings = StoreSettings::Azure(s);
    assert_hidden(&settings, "", &[AZ_SIG, "SecretSasSig"]);
    let d = crate::object::ObjectDestination::new(settings).unwrap();
    assert_hidden(&d, d.describe(), &["SecretSasSig"]);
    // The key wins when both are set.
    let s = azure(&[
        ("AZURE_STORAGE_ACCOUNT", "acct1"),
        ("AZURE_STORAGE_KEY", AZ_KEY),
        ("AZURE_STORAGE_SAS_TOKEN", sas.as_str()),
    ])
    .unwrap();
    assert_eq!((s.access_key.as_str(), s.sas_token), (AZ_KEY, None));
}

#[test]
fn azure_missing_pieces_name_the_variables() {
    let e = azure(&[]).unwrap_err();
    assert!(matches!(
        e,
        StoreEnvError::MissingCredentials { store: "Azure", .. }
    ));
    assert!(
        e.to_string()
            .contains("AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY")
            && e.to_string().contains("AZURE_STORAGE_CONNECTION_STRING"),
        "{e}"
    );
    let e = azure(&[("AZURE_STORAGE_ACCOUNT", "acct1")]).unwrap_err();
    assert!(
        e.to_string().contains(
            "AZURE_STORAGE_ACCOUNT is set but AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN is not"
        ),
        "{e}"
    );
    let e = azure(&[("AZURE_STORAGE_KEY", AZ_KEY)]).unwrap_err();
    assert!(
        e.to_string()
            .contains("AZURE_STORAGE_KEY is set but AZURE_STORAGE_ACCOUNT is not"),
        "{e}"
    );
    assert_hidden(&e, &e.to_string(), &[AZ_KEY]);
    let e = azure(&[
        ("AZURE_STORAGE_ACCOUNT", "Bad_Account"),
        ("AZURE_STORAGE_KEY", AZ_KEY),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("\"Bad_Account\""), "{e}");
    let e = azure(&[
        ("AZURE_STORAGE_ACCOUNT", "acct1"),
        ("AZURE_STORAGE_KEY", AZ_KEY),
        ("AZURE_STORAGE_BLOB_ENDPOINT", "127.0.0.1:10000"),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("AZURE_STORAGE_BLOB_ENDPOINT"), "{e}");
}

#[test]
fn azure_connection_string_like_azurites_well_known_one() {
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZ_KEY};\
         BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;\
         QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    );
    let s = azure(&[
        (CONN_VAR, cs.as_str()),
        // Ignored: the connection string is used alone.
        ("AZURE_STORAGE_ACCOUNT", "other"),
        ("AZURE_STORAGE_BLOB_ENDPOINT", "http://10.0.0.1"),
    ])
    .unwrap();
    assert_eq!(s.account, "devstoreaccount1");
    assert_eq!(s.access_key, AZ_KEY);
    assert_eq!(
        s.endpoint,
        AzureEndpoint::Url("http://127.0.0.1:10000/devstoreaccount1".into())
    );
    assert_hidden(&StoreSettings::Azure(s), "", &[AZ_KEY]);
}

#[test]
fn azure_connection_string_endpoint_from_protocol_and_suffix() {
    let cs = format!(
        "defaultendpointsprotocol=https;accountname=acct1;accountkey={AZ_KEY};\
         EndpointSuffix=core.chinacloudapi.cn"
    );
    let s = azure(&[(CONN_VAR, cs.as_str())]).unwrap();
    assert_eq!(
        s.endpoint,
        AzureEndpoint::Url("https://acct1.blob.core.chinacloudapi.cn".into())
    );
    let cs = format!("AccountName=acct1;AccountKey={AZ_KEY}");
    assert_eq!(
        azure(&[(CONN_VAR, cs.as_str())]).unwrap().endpoint,
        AzureEndpoint::Url("https://acct1.blob.core.windows.net".into())
    );
    let cs = format!("DefaultEndpointsProtocol=ftp;AccountName=acct1;AccountKey={AZ_KEY}");
    let e = azure(&[(CONN_VAR, cs.as_str())]).unwrap_err();
    assert!(e.to_string().contains("\"ftp\""), "{e}");
    assert_hidden(&e, &e.to_string(), &[AZ_KEY]);
}

#[test]
fn azure_connection_string_with_sas_and_no_account_name() {
    let cs = format!(
        "BlobEndpoint=https://acct9.blob.core.windows.net/;SharedAccessSignature=sv=2022&sig={AZ_SIG}"
    );
    let s = azure(&[(CONN_VAR, cs.as_str())]).unwrap();
    assert_eq!(s.account, "acct9");
    assert_eq!(s.access_key, "");
    assert_eq!(s.sas_token, Some(format!("sv=2022&sig={AZ_SIG}")));
    assert_hidden(&StoreSettings::Azure(s), "", &["SecretSasSig"]);
    let cs = format!(
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sig={AZ_SIG}"
    );
    assert_eq!(
        azure(&[(CONN_VAR, cs.as_str())]).unwrap().account,
        "devstoreaccount1"
    );
}

#[test]
fn azure_use_development_storage() {
    let s = azure(&[(CONN_VAR, "UseDevelopmentStorage=true")]).unwrap();
    assert_eq!(s.account, AZURITE_ACCOUNT);
    assert_eq!(s.access_key, AZURITE_KEY);
    assert_eq!(s.endpoint, AzureEndpoint::Url(AZURITE_BLOB_ENDPOINT.into()));
}

#[test]
fn azure_bad_connection_strings_never_echo_secrets() {
    for (cs, why) in [
        (
            format!("AccountName=acct1;{AZ_KEY}"),
            "element 2 is not Key=Value",
        ),
        (
            "AccountName=acct1".to_string(),
            "neither AccountKey nor SharedAccessSignature",
        ),
        (format!("AccountKey={AZ_KEY}"), "no AccountName"),
        (
            format!("AccountName=acct1;AccountKey={AZ_KEY};BlobEndpoint=http://u:{AZ_KEY}@h"),
            "credentials",
        ),
    ] {
        let e = azure(&[(CONN_VAR, cs.as_str())]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(why), "{text}");
        assert!(text.contains(CONN_VAR), "{text}");
        assert_hidden(&e, &text, &[AZ_KEY]);
    }
    // A key that is not base64 is refused by the client, without echoing it.
    let url = parse("az://container-1");
    let settings = store_settings(
        &url,
        &env(&[(
            CONN_VAR,
            "AccountName=acct1;AccountKey=Not!Base64!SecretKey",
        )]),
    )
    .unwrap();
    let e = crate::object::ObjectDestination::new(settings).unwrap_err();
    assert_hidden(&e, &e.to_string(), &["Not!Base64!SecretKey"]);
}

// ----- GCS ---------------------------------------------------------------------------------

#[test]
fn gcs_emulator_host_means_anonymous_http() {
    let s = gcs(&[("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")]).unwrap();
    assert!(s.anonymous);
    assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
    assert_eq!(s.service_account_json, "");
    let s = gcs(&[
        ("STORAGE_EMULATOR_HOST", "https://gcs.local:8443/"),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            "/nonexistent/not-read.json",
        ),
    ])
    .unwrap();
    assert_eq!(s.endpoint.as_deref(), Some("https://gcs.local:8443"));
    let d = crate::object::ObjectDestination::new(StoreSettings::Gcs(s)).unwrap();
    assert_eq!(
        d.describe(),
        "GCS bucket \"bucket-1\" at https://gcs.local:8443"
    );
    let e = gcs(&[("STORAGE_EMULATOR_HOST", "ftp://x")]).unwrap_err();
    assert!(e.to_string().contains("STORAGE_EMULATOR_HOST"), "{e}");
}

#[test]
fn gcs_service_account_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key_material = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCSecretKeyMaterial";
    let sa = dir.path().join("sa.json");
    std::fs::write(
        &sa,
        format!(
            "{{\"type\":\"service_account\",\"project_id\":\"proj-1\",\
             \"private_key\":\"-----BEGIN PRIVATE KEY-----\\n{key_material}\\n-----END PRIVATE KEY-----\\n\",\
             \"client_email\":\"a@proj-1.iam.gserviceaccount.com\"}}"
        ),
    )
    .unwrap();
    let path = sa.to_string_lossy().into_owned();
    let s = gcs(&[("GOOGLE_APPLICATION_CREDENTIALS", path.as_str())]).unwrap();
    assert!(!s.anonymous);
    assert_eq!(s.project_id, "proj-1");
    assert_eq!(s.endpoint, None);
    assert!(s.service_account_json.contains(key_material));
    let settings = StoreSettings::Gcs(s);
    assert_hidden(&settings, "", &[key_material]);
    // The key is not a real RSA key: the client refuses it without quoting it.
    if let Err(e) = crate::object::ObjectDestination::new(settings) {
        assert_hidden(&e, &e.to_string(), &[key_material]);
    }

    let user = dir.path().join("user.json");
    std::fs::write(
        &user,
        "{\"type\":\"authorized_user\",\"refresh_token\":\"RefreshSecret\"}",
    )
    .unwrap();
    let e = gcs(&[("GOOGLE_APPLICATION_CREDENTIALS", &*user.to_string_lossy())]).unwrap_err();
    assert!(e.to_string().contains("\"authorized_user\""), "{e}");
    assert_hidden(&e, &e.to_string(), &["RefreshSecret"]);

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, format!("{{\"private_key\": \"{key_material}")).unwrap();
    let e = gcs(&[("GOOGLE_APPLICATION_CREDENTIALS", &*broken.to_string_lossy())]).unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    assert_hidden(&e, &e.to_string(), &[key_material]);

    let missing = dir.path().join("missing.json");
    let e = gcs(&[(
        "GOOGLE_APPLICATION_CREDENTIALS",
        &*missing.to_string_lossy(),
    )])
    .unwrap_err();
    assert!(matches!(e, StoreEnvError::ReadFile { .. }));
    assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
}

#[test]
fn gcs_missing_credentials_name_the_variables() {
    let e = gcs(&[]).unwrap_err();
    assert!(matches!(
        e,
        StoreEnvError::MissingCredentials { store: "GCS", .. }
    ));
    assert!(
        e.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS")
            && e.to_string().contains("STORAGE_EMULATOR_HOST"),
        "{e}"
    );
}

#[test]
fn every_variable_read_is_listed() {
    let source = include_str!("../artifact_url.rs");
    for var in VARIABLES {
        assert!(source.contains(&format!("\"{var}\"")), "{var}");
    }
    // And every quoted AWS_/AZURE_/GOOGLE_ name in the resolver is in the list.
    for word in source.split('"') {
        let looks_like_var = (word.starts_with("AWS_")
            || word.starts_with("AZURE_STORAGE_")
            || word.starts_with("GOOGLE_")
            || word == "STORAGE_EMULATOR_HOST")
            && word
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
        if looks_like_var {
            assert!(
                VARIABLES.contains(&word),
                "{word} is read but not in VARIABLES"
            );
        }
    }
}
