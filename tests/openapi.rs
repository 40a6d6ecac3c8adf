//! The OpenAPI document in the repository matches the router: the same paths, and for
//! each path the same methods (the router answers 405 to a method it lacks).

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let app = common::TestApp::spawn(common::Backend::Sqlite).await.unwrap();
    let served: Value =
        app.client.get(format!("{}/api/v1/openapi.json", app.address)).send().await.unwrap().json().await.unwrap();
    let in_repo: Value = serde_json::from_str(include_str!("../api/openapi.json")).unwrap();
    assert_eq!(served, in_repo);

    let documented: BTreeSet<&str> = in_repo["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    // axum writes a catch-all parameter as {*name}; OpenAPI has no such form.
    let routed: BTreeSet<String> = bantin::http::route_paths().into_iter().map(|p| p.replace("{*", "{")).collect();
    let documented: BTreeSet<String> = documented.into_iter().map(str::to_owned).collect();
    assert_eq!(documented, routed, "paths in api/openapi.json vs the router");

    for path in &routed {
        let concrete =
            path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
        for method in METHODS {
            let response = app
                .client
                .request(method.to_uppercase().parse().unwrap(), format!("{}{concrete}", app.address))
                .send()
                .await
                .unwrap();
            let routed = response.status() != 405;
            let documented = in_repo["paths"][path.as_str()].get(method).is_some();
            assert_eq!(routed, documented, "{} {path}: router answers {}", method.to_uppercase(), response.status());
        }
    }
}
