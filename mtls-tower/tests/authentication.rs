//! `AuthorizeLayer::require`: mutual TLS, JWT-SVID, either or both, over a
//! real mTLS listener with an optional `JwtSvidLayer` outside the
//! authorization layer. Each requirement's accept and reject paths.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use mtls_core::{JwtBundleSet, JwtSvidValidator, SharedJwtBundles};
use mtls_testing::{bounded, TestJwtIssuer};
use mtls_tower::{Authentication, AuthorizeLayer, Denial, JwtSvidLayer, PeerId};

use common::{serve, Pki, FRONTEND, H1, INTRUDER};

const AUDIENCE: &str = "spiffe://example.org/backend";
const ADMIN: &str = "spiffe://example.org/admin";

/// What one call got: status and body.
async fn call(client: &common::HttpClient, uri: http::Uri, token: Option<&str>) -> (u16, String) {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = bounded(client.request(request.body(Empty::<Bytes>::new()).unwrap()))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn each_requirement_admits_and_refuses_what_it_says() {
    let pki = Pki::new("example.org");
    let issuer = TestJwtIssuer::new("example.org", "k1");
    let bundles = SharedJwtBundles::new(JwtBundleSet::from(issuer.bundle()));
    let hour = Duration::from_secs(3600);
    let jwt_admin = issuer.mint(ADMIN, &[AUDIENCE], hour);
    let jwt_intruder = issuer.mint(INTRUDER, &[AUDIENCE], hour);
    let jwt_elsewhere = issuer.mint(ADMIN, &["spiffe://example.org/other"], hour);
    let frontend = pki.http_client(FRONTEND, H1);
    let intruder = pki.http_client(INTRUDER, H1);

    // (requirement, client, token, status, body when 200)
    type Row<'a> = (&'a common::HttpClient, Option<&'a str>, u16, &'a str);
    let table: [(Authentication, Vec<Row<'_>>); 4] = [
        (
            Authentication::Either,
            vec![
                (&frontend, None, 200, FRONTEND),
                // With both, the X.509 peer is the caller.
                (&frontend, Some(&jwt_admin), 200, FRONTEND),
                (&intruder, Some(&jwt_admin), 403, ""),
                (&intruder, None, 403, ""),
            ],
        ),
        (
            Authentication::Mtls,
            vec![
                (&frontend, None, 200, FRONTEND),
                (&frontend, Some(&jwt_intruder), 200, FRONTEND),
                (&intruder, Some(&jwt_admin), 403, ""),
            ],
        ),
        (
            Authentication::JwtSvid,
            vec![
                // The connection alone does not authenticate.
                (&frontend, None, 401, ""),
                (&frontend, Some(&jwt_admin), 200, ADMIN),
                // The X.509 peer (a proxy's, say) is not the caller.
                (&intruder, Some(&jwt_admin), 200, ADMIN),
                (&frontend, Some(&jwt_intruder), 403, ""),
            ],
        ),
        (
            Authentication::Both,
            vec![
                (&frontend, Some(&jwt_admin), 200, FRONTEND),
                (&frontend, None, 401, ""),
                // Each identity must be allowed.
                (&intruder, Some(&jwt_admin), 403, ""),
                (&frontend, Some(&jwt_intruder), 403, ""),
            ],
        ),
    ];
    for (requirement, rows) in table {
        let app = Router::new()
            .route(
                "/whoami",
                get(|PeerId(id): PeerId| async move { id.to_string() }),
            )
            .layer(
                AuthorizeLayer::from_fn(|caller, _request| {
                    if caller.spiffe_id().as_str() == INTRUDER {
                        Err(Denial::new("not the intruder"))
                    } else {
                        Ok(())
                    }
                })
                .require(requirement),
            )
            .layer(JwtSvidLayer::new(JwtSvidValidator::new(AUDIENCE), bundles.clone()).optional());
        let server = serve(pki.server_config(), app).await;
        for (i, (client, token, status, body)) in rows.into_iter().enumerate() {
            let got = call(client, server.url("/whoami"), token).await;
            assert_eq!(got.0, status, "{requirement:?} row {i}: {got:?}");
            if status == 200 {
                assert_eq!(got.1, body, "{requirement:?} row {i}");
            }
        }
        // Whatever the requirement, a token that is there must be valid:
        // the optional JWT layer still refuses a bad one.
        let got = call(&frontend, server.url("/whoami"), Some(&jwt_elsewhere)).await;
        assert_eq!(got.0, 401, "{requirement:?}: a token for another audience");
    }
}
