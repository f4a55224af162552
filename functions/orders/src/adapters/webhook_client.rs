//! The webhook HTTPS client as the deliverer port.

use std::net::{IpAddr, SocketAddr};

use crate::domain::callback_urls::Checked;
use crate::ports::deliverer::{DELIVERY_TIMEOUT, Deliverer};

/// Delivers over HTTP(S) with hyper, connecting only to the addresses the check returned (the
/// name is not resolved again), with TLS verified for the URL's host.
#[derive(Clone, Default)]
pub struct HttpDeliverer {
    /// Built on the first delivery (loading the system's root certificates reads and parses
    /// them: not worth a cold start when most orders have no callback), then kept.
    tls: std::sync::Arc<std::sync::OnceLock<rustls::ClientConfig>>,
}

impl HttpDeliverer {
    pub fn new() -> Self {
        Self::default()
    }

    fn tls(&self) -> Result<rustls::ClientConfig, String> {
        use hyper_rustls::ConfigBuilderExt;
        if let Some(config) = self.tls.get() {
            return Ok(config.clone());
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_native_roots()
            .map_err(|e| e.to_string())?
            .with_no_client_auth();
        Ok(self.tls.get_or_init(|| config).clone())
    }
}

#[derive(Clone)]
struct Pinned(Vec<SocketAddr>);

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for Pinned {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        std::future::ready(Ok(self.0.clone().into_iter()))
    }
}

impl Deliverer for HttpDeliverer {
    async fn post(
        &self,
        target: &Checked,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let https = target.uri.scheme_str() == Some("https");
        let port = target
            .uri
            .port_u16()
            .unwrap_or(if https { 443 } else { 80 });
        let addresses = target
            .addresses
            .iter()
            .map(|ip: &IpAddr| SocketAddr::new(*ip, port))
            .collect();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(
            Pinned(addresses),
        );
        http.enforce_http(false);
        http.set_connect_timeout(Some(DELIVERY_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, http_body_util::Full<hyper::body::Bytes>>(connector);
        let mut request = hyper::Request::post(target.uri.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(DELIVERY_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs())),
        }
    }
}
