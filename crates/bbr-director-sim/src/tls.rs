//! TLS material for the simulator: a throw-away CA and a server certificate
//! for `127.0.0.1` / `localhost` made with `rcgen`, and the rustls server
//! configuration (aws-lc-rs provider, HTTP/1.1 only).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Install aws-lc-rs as the process-wide rustls provider unless some
/// provider is already installed. The simulator's own configurations name
/// aws-lc-rs explicitly, so they work whatever the process default is; this
/// only keeps clients in the same process that rely on the default (and
/// would otherwise panic when both `ring` and `aws-lc-rs` are compiled in)
/// working.
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A CA plus a server certificate/key signed by it.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_pem: String,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

fn tls_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("generating TLS material: {e}"))
}

impl TlsMaterial {
    /// Generate a fresh CA (ECDSA P-256, CN `bbr-director-sim CA`) and a
    /// server certificate with SANs `127.0.0.1` and `localhost`.
    pub(crate) fn generate() -> io::Result<TlsMaterial> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bbr-director-sim CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "bbr test support");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(tls_err)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_err)?;

        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(tls_err)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "bbr-director-sim");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = params.signed_by(&key, &ca).map_err(tls_err)?;

        Ok(TlsMaterial {
            ca_pem: ca.pem(),
            server_cert_pem: cert.pem(),
            server_cert_der: cert.der().clone(),
            server_key_der: key.serialize_der(),
        })
    }

    /// rustls server configuration with the aws-lc-rs provider, ALPN
    /// `http/1.1` only (a Go client would otherwise try HTTP/2).
    pub(crate) fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert_der.clone()], key)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
