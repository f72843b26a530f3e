//! The OpenAPI document. The routes and the document come from the same list (see
//! `routes::api`), so a route cannot be served without being described.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, Ref, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

/// The document's fixed parts; the paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quorate API",
        description = "The Quorate vault's HTTP API. The server stores ciphertext, sealed shares, \
            signed statements and blind tokens; it holds no key. Errors are \
            `{\"code\": ..., \"message\": ...}` with a 4xx status; another vault's resources \
            are 404. Binary values travel as standard base64, Ed25519 keys as unpadded \
            base64url, times as Unix seconds.",
    ),
    modifiers(&SessionAuth),
    components(schemas(quorate_api::ErrorBody)),
    tags(
        (name = "enrolment", description = "Redeeming bootstrap codes and invites"),
        (name = "sign-in", description = "Challenge-response sign-in and sessions"),
        (name = "members", description = "Vaults, invites, members and the signed roster"),
        (name = "nodes", description = "Transcription nodes: enrolment, approval, revocation"),
        (name = "recordings", description = "Recordings: signed manifests, sealed shares, resumable upload (tus 1.0), ciphertext download"),
        (name = "requests", description = "Unlock requests and the members' signed votes"),
        (name = "jobs", description = "The job queue of transcription nodes, and the sealed transcripts they store"),
        (name = "search", description = "Released transcripts, the vault's search key, and search over the blind index"),
        (name = "reshares", description = "Re-sharing keys to a changed board: what to re-share, current holders' signed deals, and the new holders' new shares"),
        (name = "retention", description = "Records management: admins' signed retention rules, and members' signed votes on legal holds"),
        (name = "audit", description = "The hash-chained audit log"),
    )
)]
pub(crate) struct ApiDoc;

struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token from POST /auth/session, as Authorization: Bearer TOKEN",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the answers every operation of a kind shares, so that handlers list only their own:
/// the JSON body's rejections (see `error::ApiJson`) where there is a body, 401 where a
/// session is needed, 404 where the path names a vault.
pub(crate) fn add_shared_responses(openapi: &mut utoipa::openapi::OpenApi) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let in_a_vault = path.contains("{vault}");
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
            &mut item.head,
        ]
        .into_iter()
        .flatten()
        {
            let mut shared = Vec::new();
            if operation.request_body.is_some() {
                shared.extend([
                    (
                        "400",
                        "Malformed JSON (`invalid_json`), or a field's value fails the checks",
                    ),
                    (
                        "413",
                        "The body is larger than the endpoint accepts (`too_large`)",
                    ),
                    ("415", "The body is not `application/json` (`not_json`)"),
                    (
                        "422",
                        "Missing, mistyped or unknown fields (`invalid_fields`)",
                    ),
                ]);
            }
            if operation.security.is_some() {
                shared.push(("401", "No valid session (`unauthenticated`)"));
            }
            if in_a_vault {
                shared.push((
                    "404",
                    "No such vault for this session: another vault's resources are not found (`not_found`)",
                ));
            }
            for (status, description) in shared {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}
