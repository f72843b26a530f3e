//! Recordings through the HTTP API: created from a signed manifest and sealed shares, the
//! ciphertext uploaded resumably (tus 1.0), visible only once complete and equal to its
//! manifest, downloaded with ranges, deleted with every share. On SQLite and PostgreSQL, on a
//! local folder and on a real S3-compatible server (s3s-fs).

mod common;

use common::{Board, make_recording, refused};
use quorate_client::Client;
use quorate_crypto::{envelope, threshold};
use quorate_server::config::Settings;
use quorate_server::test_support::S3Server;
use quorate_server::test_support::{Backend, TestDb, TestServer};
use sqlx::Row;
use tokio::io::AsyncWriteExt;

/// A deterministic "recording" of `len` bytes.
fn audio(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}

enum Store {
    Local,
    S3(S3Server),
}

impl Store {
    async fn start(s3: bool) -> Self {
        if s3 {
            Self::S3(S3Server::start().await)
        } else {
            Self::Local
        }
    }

    async fn server(&self, db: &TestDb) -> TestServer {
        match self {
            Self::Local => TestServer::start(db).await,
            Self::S3(s3) => TestServer::start_on(db, &s3.url).await,
        }
    }
}

/// Sends a PATCH that announces `announced` bytes, sends only `body`, then hangs up.
async fn interrupted_patch(
    server: &TestServer,
    token: &str,
    recording: &str,
    body: &[u8],
    announced: usize,
) {
    let mut stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let head = format!(
        "PATCH /api/v1/uploads/{recording} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
         Content-Length: {announced}\r\n\r\n",
        server.address
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
}

async fn offset_when_settled(client: &Client, recording: quorate_crypto::RecordingId) -> u64 {
    for _ in 0..200 {
        let (offset, _) = client.upload_offset(recording).await.unwrap();
        if offset > 0 {
            return offset;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the interrupted PATCH was never recorded");
}

quorate_server::per_backend!(
    an_interrupted_upload_resumes_and_only_the_whole_recording_is_visible,
    sqlite_local(Backend::Sqlite, false),
    postgres_s3(Backend::Postgres, true),
    sqlite_s3(Backend::Sqlite, true)
);

async fn an_interrupted_upload_resumes_and_only_the_whole_recording_is_visible(
    backend: Backend,
    s3: bool,
) {
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = store.server(&db).await;
    let board = Board::new(&server, 2, 2).await;
    let vault = board.admin.vault;
    let (uploader, uploader_client) = &board.members[0];
    // About 20 MiB: three S3 parts of 8 MiB and a tail.
    let plaintext = audio(20 << 20);
    let made = make_recording(&board.roster, uploader, 2, &plaintext);
    let state = uploader_client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    assert_eq!(
        (state.upload_offset, state.upload_length),
        (0, Some(made.ciphertext.len() as u64))
    );
    assert_eq!(state.upload_url, format!("/api/v1/uploads/{}", made.id));

    // The client hangs up 9 MiB into a 12 MiB chunk: what arrived is kept.
    let sent = 9 << 20;
    interrupted_patch(
        &server,
        uploader_client.token().unwrap(),
        &made.id.to_string(),
        &made.ciphertext[..sent],
        12 << 20,
    )
    .await;
    let offset = offset_when_settled(uploader_client, made.id).await;
    assert!(offset <= sent as u64, "{backend:?} s3={s3}: {offset}");

    // Not visible while incomplete, to anyone.
    let admin = &board.admin.client;
    assert!(admin.recordings(vault).await.unwrap().is_empty());
    assert_eq!(
        refused(admin.recording(vault, made.id).await),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(
            admin
                .download_recording(vault, made.id, None, u64::MAX, &mut Vec::new())
                .await
        ),
        (404, "not_found".into())
    );
    assert_eq!(
        refused(admin.upload_offset(made.id).await).0,
        404,
        "only the uploader sees the upload"
    );

    // A wrong offset changes nothing.
    assert_eq!(
        refused(
            uploader_client
                .upload_chunk(made.id, offset + 1, made.ciphertext[..10].to_vec().into())
                .await
        ),
        (409, "offset_mismatch".into())
    );
    // A chunk that does not match its checksum is not kept.
    let raw = reqwest::Client::new();
    let corrupt = raw
        .patch(server.url(&state.upload_url))
        .bearer_auth(uploader_client.token().unwrap())
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset)
        .header(
            "upload-checksum",
            format!(
                "sha256 {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 32])
            ),
        )
        .body(made.ciphertext[offset as usize..offset as usize + 1000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(corrupt.status().as_u16(), 460);
    assert_eq!(
        uploader_client.upload_offset(made.id).await.unwrap().0,
        offset
    );

    // Resume: one 5 MiB chunk with its checksum, then the rest in one streaming PATCH.
    let next = offset as usize + (5 << 20);
    let after_chunk = uploader_client
        .upload_chunk(
            made.id,
            offset,
            made.ciphertext[offset as usize..next].to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(after_chunk, next as u64);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = std::sync::Arc::clone(&seen);
    uploader_client
        .resume_upload(
            made.id,
            std::io::Cursor::new(made.ciphertext.clone()),
            move |done, _| progress.lock().unwrap().push(done),
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&(next as u64)));
    assert_eq!(seen.last(), Some(&(made.ciphertext.len() as u64)));

    // Complete: listed, and byte-identical; it decrypts with the recording key.
    let listed = admin.recordings(vault).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, quorate_api::RecordingStatus::Complete);
    assert_eq!((listed[0].threshold, listed[0].shares), (2, 3));
    let mut downloaded = Vec::new();
    admin
        .download_recording(vault, made.id, None, u64::MAX, &mut downloaded)
        .await
        .unwrap();
    assert!(
        downloaded == made.ciphertext,
        "{backend:?} s3={s3}: the download differs"
    );
    let mut opened = Vec::new();
    envelope::decrypt(&downloaded[..], &mut opened, &made.key).unwrap();
    assert!(opened == plaintext);
    let mut range = Vec::new();
    admin
        .download_recording(vault, made.id, Some(1000..1100), u64::MAX, &mut range)
        .await
        .unwrap();
    assert_eq!(range, made.ciphertext[1000..1100]);
    let too_far = made.ciphertext.len() as u64 + 10;
    assert_eq!(
        refused(
            admin
                .download_recording(
                    vault,
                    made.id,
                    Some(too_far..too_far + 5),
                    u64::MAX,
                    &mut Vec::new()
                )
                .await
        ),
        (416, "bad_range".into())
    );

    // Each member fetches their own share, and it opens with their key only.
    for (identity, client) in [(&board.admin.identity, admin)].into_iter().chain(
        board
            .members
            .iter()
            .map(|(identity, client)| (identity, client)),
    ) {
        let share = client.recording_share(vault, made.id).await.unwrap();
        let sealed = share.sealed.to_vec();
        let manifest = made
            .manifest
            .verify::<quorate_crypto::statement::RecordingManifest>()
            .unwrap()
            .statement;
        let binding = manifest.share_binding(&identity.fingerprint()).unwrap();
        let opened = threshold::open_share(&sealed, identity.age_key(), &binding).unwrap();
        manifest.split.check_share(&binding, &opened).unwrap();
    }

    // The upload is closed; the same manifest again answers the finished state.
    assert_eq!(refused(uploader_client.upload_offset(made.id).await).0, 404);
    let again = uploader_client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    assert_eq!(Some(again.upload_offset), again.upload_length);
    let actions = common::audit_actions(admin, vault).await;
    assert!(
        actions.ends_with(&["recording.created".into(), "recording.uploaded".into()]),
        "{actions:?}"
    );

    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(
    a_ciphertext_that_differs_from_its_manifest_is_discarded,
    sqlite_local(Backend::Sqlite, false),
    postgres_s3(Backend::Postgres, true),
    sqlite_s3(Backend::Sqlite, true)
);

async fn a_ciphertext_that_differs_from_its_manifest_is_discarded(backend: Backend, s3: bool) {
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = store.server(&db).await;
    let board = Board::new(&server, 1, 2).await;
    let vault = board.admin.vault;
    let client = &board.admin.client;
    let made = make_recording(&board.roster, &board.admin.identity, 2, &audio(100_000));
    client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    let mut tampered = made.ciphertext.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let half = tampered.len() / 2;
    client
        .upload_chunk(made.id, 0, tampered[..half].to_vec().into())
        .await
        .unwrap();
    assert_eq!(
        refused(
            client
                .upload_chunk(made.id, half as u64, tampered[half..].to_vec().into())
                .await
        ),
        (422, "ciphertext_mismatch".into()),
        "{backend:?} s3={s3}"
    );
    assert!(client.recordings(vault).await.unwrap().is_empty());
    assert_eq!(refused(client.recording(vault, made.id).await).0, 404);
    assert_eq!(refused(client.recording_share(vault, made.id).await).0, 404);
    let names = server.app.blobs.list("recordings").await.unwrap();
    assert!(names.is_empty(), "{names:?}");
    let last_action = client
        .audit_page(vault, None, 1000)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .action;
    assert_eq!(last_action, "recording.rejected");
    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(bad_manifests_and_chunks_are_refused_and_store_nothing);

async fn bad_manifests_and_chunks_are_refused_and_store_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(Settings {
        max_recording_bytes: Some(1 << 20),
        ..db.settings()
    })
    .await;
    let board = Board::new(&server, 2, 2).await;
    let vault = board.admin.vault;
    let (member, member_client) = &board.members[0];
    let admin = &board.admin.client;
    let small = audio(10_000);

    // Another member's manifest, sent by this one.
    let theirs = make_recording(&board.roster, &board.admin.identity, 2, &small);
    // Below the vault's policy.
    let weak = make_recording(&board.roster, member, 1, &small);
    // A share missing, and a share for someone the manifest does not name.
    let good = make_recording(&board.roster, member, 2, &small);
    let mut stranger_share = good.shares.clone();
    stranger_share[2].0 = quorate_crypto::Identity::generate().fingerprint();
    // Larger than this server accepts.
    let large = make_recording(&board.roster, member, 2, &audio(2 << 20));
    // A key split for a roster with a stranger in it (a server injecting a member).
    let mut injected = board.roster.clone();
    let eve = quorate_crypto::Identity::generate();
    let entry = injected
        .sign_change(
            &board.admin.identity,
            quorate_crypto::statement::RosterChange::Add,
            eve.public(),
            "Eve",
            quorate_crypto::statement::Role::Member,
            5,
        )
        .unwrap();
    injected.apply(&entry).unwrap();
    let overshared = make_recording(&injected, member, 2, &small);
    let refusals = [
        (
            &theirs.manifest,
            &theirs.shares[..],
            400,
            "invalid_statement",
        ),
        (&weak.manifest, &weak.shares[..], 400, "invalid_statement"),
        (&good.manifest, &good.shares[..2], 400, "invalid_shares"),
        (&good.manifest, &stranger_share[..], 400, "invalid_shares"),
        (&large.manifest, &large.shares[..], 413, "too_large"),
        (
            &overshared.manifest,
            &overshared.shares[..],
            409,
            "roster_changed",
        ),
    ];
    for (index, (manifest, shares, status, code)) in refusals.into_iter().enumerate() {
        assert_eq!(
            refused(
                member_client
                    .create_recording(vault, manifest, shares)
                    .await
            ),
            (status, code.to_owned()),
            "{backend:?}: refusal {index}"
        );
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM recordings")
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(count, 0, "{backend:?}: nothing stored");

    // The good one, then chunks that are refused.
    member_client
        .create_recording(vault, &good.manifest, &good.shares)
        .await
        .unwrap();
    let url = server.url(&format!("/api/v1/uploads/{}", good.id));
    let raw = reqwest::Client::new();
    let patch = |content_type: &'static str, offset: &'static str, body: Vec<u8>| {
        raw.patch(&url)
            .bearer_auth(member_client.token().unwrap())
            .header("content-type", content_type)
            .header("upload-offset", offset)
            .body(body)
            .send()
    };
    let wrong_type = patch("application/octet-stream", "0", vec![1; 10])
        .await
        .unwrap();
    assert_eq!(wrong_type.status().as_u16(), 415);
    let no_offset = patch("application/offset+octet-stream", "soon", vec![1; 10])
        .await
        .unwrap();
    assert_eq!(no_offset.status().as_u16(), 400);
    let mut past_the_end = good.ciphertext.clone();
    past_the_end.extend_from_slice(&[0; 100]);
    assert_eq!(
        refused(
            member_client
                .upload_chunk(good.id, 0, past_the_end.into())
                .await
        ),
        (413, "beyond_length".into())
    );
    assert_eq!(
        refused(
            admin
                .upload_chunk(good.id, 0, good.ciphertext.clone().into())
                .await
        )
        .0,
        404,
        "not the uploader"
    );
    assert_eq!(member_client.upload_offset(good.id).await.unwrap().0, 0);

    // Abandoned by the uploader, it is gone.
    member_client
        .upload_chunk(good.id, 0, good.ciphertext[..500].to_vec().into())
        .await
        .unwrap();
    member_client.abandon_upload(good.id).await.unwrap();
    assert_eq!(refused(member_client.upload_offset(good.id).await).0, 404);

    // Left alone past its expiry, an upload is swept away with its part file.
    let left = make_recording(&board.roster, member, 2, &small);
    member_client
        .create_recording(vault, &left.manifest, &left.shares)
        .await
        .unwrap();
    member_client
        .upload_chunk(left.id, 0, left.ciphertext[..500].to_vec().into())
        .await
        .unwrap();
    assert_eq!(
        server.app.sweep(quorate_server::now()).await.unwrap(),
        0,
        "not yet"
    );
    sqlx::query("UPDATE uploads SET expires_at = 0")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(server.app.sweep(quorate_server::now()).await.unwrap(), 1);
    assert_eq!(refused(member_client.upload_offset(left.id).await).0, 404);
    assert!(server.app.blobs.list("uploads").await.unwrap().is_empty());
    let actions = common::audit_actions(admin, vault).await;
    assert!(
        actions.ends_with(&["recording.created".into(), "recording.expired".into()]),
        "{actions:?}"
    );
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM recording_shares")
        .fetch_one(server.app.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(count, 0, "no share outlives its recording");

    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(
    a_live_upload_is_completed_by_the_manifest_signed_when_recording_stops,
    sqlite_local(Backend::Sqlite, false),
    postgres_s3(Backend::Postgres, true)
);

/// A recording uploaded while it is made: its length deferred, its bytes invisible until the
/// manifest names exactly them, a refused manifest leaving the upload as it was.
async fn a_live_upload_is_completed_by_the_manifest_signed_when_recording_stops(
    backend: Backend,
    s3: bool,
) {
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = store.server(&db).await;
    let board = Board::new(&server, 2, 2).await;
    let vault = board.admin.vault;
    let (uploader, client) = &board.members[0];
    let (_, other_client) = &board.members[1];
    // About 10 MiB: one S3 part of 8 MiB and a tail.
    let made = make_recording(&board.roster, uploader, 2, &audio(10 << 20));
    let length = made.ciphertext.len() as u64;

    let opened = client.open_live_upload(vault, made.id).await.unwrap();
    assert_eq!((opened.upload_offset, opened.upload_length), (0, None));
    let again = client.open_live_upload(vault, made.id).await.unwrap();
    assert_eq!(again.upload_url, opened.upload_url);
    // The ID is the uploader's: nobody else opens or continues it.
    assert_eq!(
        refused(other_client.open_live_upload(vault, made.id).await),
        (409, "recording_exists".into())
    );
    assert_eq!(refused(other_client.upload_offset(made.id).await).0, 404);

    let half = made.ciphertext.len() / 2;
    client
        .upload_chunk(made.id, 0, made.ciphertext[..half].to_vec().into())
        .await
        .unwrap();
    assert_eq!(
        client.upload_offset(made.id).await.unwrap(),
        (half as u64, None)
    );
    // Nothing is visible without the manifest, not even to the uploader.
    assert_eq!(refused(client.recording(vault, made.id).await).0, 404);
    assert!(client.recordings(vault).await.unwrap().is_empty());
    // The manifest names bytes the server does not have yet: refused, nothing changes.
    assert_eq!(
        refused(
            client
                .create_recording(vault, &made.manifest, &made.shares)
                .await
        ),
        (409, "offset_mismatch".into())
    );
    client
        .upload_chunk(
            made.id,
            half as u64,
            made.ciphertext[half..].to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        client.upload_offset(made.id).await.unwrap(),
        (length, None),
        "all the bytes are there, but only the manifest ends a live upload"
    );
    // A manifest whose shares are not one per member named: refused, the upload kept.
    assert_eq!(
        refused(
            client
                .create_recording(vault, &made.manifest, &made.shares[1..])
                .await
        ),
        (400, "invalid_shares".into())
    );
    assert_eq!(client.upload_offset(made.id).await.unwrap(), (length, None));

    let completed = client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    assert_eq!(
        (completed.upload_offset, completed.upload_length),
        (length, Some(length))
    );
    let listed = other_client.recordings(vault).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ciphertext_len, length);
    let mut downloaded = Vec::new();
    other_client
        .download_recording(vault, made.id, None, length, &mut downloaded)
        .await
        .unwrap();
    assert!(
        downloaded == made.ciphertext,
        "the stored bytes are the uploader's"
    );
    assert_eq!(refused(client.upload_offset(made.id).await).0, 404);
    // The same manifest again answers the finished state.
    let again = client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    assert_eq!(again.upload_offset, length);
    let actions: Vec<String> = common::audit_actions(&board.admin.client, vault)
        .await
        .into_iter()
        .filter(|action| action.starts_with("recording."))
        .collect();
    assert_eq!(
        actions,
        [
            "recording.opened",
            "recording.created",
            "recording.uploaded"
        ]
    );
    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(
    a_live_upload_that_differs_from_its_manifest_is_discarded,
    sqlite_s3(Backend::Sqlite, true),
    postgres_local(Backend::Postgres, false)
);

async fn a_live_upload_that_differs_from_its_manifest_is_discarded(backend: Backend, s3: bool) {
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(Settings {
        max_recording_bytes: Some(200_000),
        object_store: match &store {
            Store::Local => None,
            Store::S3(s3) => Some(s3.url.expose_secret().to_owned()),
        },
        ..db.settings()
    })
    .await;
    let board = Board::new(&server, 1, 2).await;
    let vault = board.admin.vault;
    let client = &board.admin.client;
    let made = make_recording(&board.roster, &board.admin.identity, 2, &audio(100_000));
    client.open_live_upload(vault, made.id).await.unwrap();
    let mut tampered = made.ciphertext.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    client
        .upload_chunk(made.id, 0, tampered.into())
        .await
        .unwrap();
    assert_eq!(
        refused(
            client
                .create_recording(vault, &made.manifest, &made.shares)
                .await
        ),
        (422, "ciphertext_mismatch".into())
    );
    assert!(client.recordings(vault).await.unwrap().is_empty());
    assert_eq!(refused(client.upload_offset(made.id).await).0, 404);
    assert!(
        server
            .app
            .blobs
            .list("recordings")
            .await
            .unwrap()
            .is_empty()
    );

    // A live upload grows no further than the server accepts.
    let long = quorate_crypto::RecordingId::random();
    client.open_live_upload(vault, long).await.unwrap();
    assert_eq!(
        refused(client.upload_chunk(long, 0, audio(200_001).into()).await),
        (413, "too_large".into())
    );
    assert_eq!(client.upload_offset(long).await.unwrap(), (0, None));

    // A live upload left alone expires like any other, with what it stored.
    client
        .upload_chunk(long, 0, audio(150_000).into())
        .await
        .unwrap();
    sqlx::query("UPDATE uploads SET expires_at = 0")
        .execute(server.app.db.pool())
        .await
        .unwrap();
    assert_eq!(server.app.sweep(quorate_server::now()).await.unwrap(), 1);
    assert_eq!(refused(client.upload_offset(long).await).0, 404);
    assert!(server.app.blobs.list("uploads").await.unwrap().is_empty());
    let actions = common::audit_actions(client, vault).await;
    assert!(
        actions.ends_with(&["recording.opened".into(), "recording.expired".into()]),
        "{actions:?}"
    );
    server.stop().await;
    db.drop_database().await;
}

/// The server stores the last byte of a live upload but fails to put the ciphertext in place
/// (here: a file stands where its folder should be). The recording is not complete; sending
/// the same manifest again, once the store works, completes it.
#[tokio::test]
async fn a_live_recording_left_unfinished_by_a_failure_is_completed_by_its_manifest_again() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let board = Board::new(&server, 1, 2).await;
    let vault = board.admin.vault;
    let client = &board.admin.client;
    let made = make_recording(&board.roster, &board.admin.identity, 2, &audio(50_000));
    client.open_live_upload(vault, made.id).await.unwrap();
    client
        .upload_chunk(made.id, 0, made.ciphertext.clone().into())
        .await
        .unwrap();
    let folder = db.folder.path().join(format!("objects/recordings/{vault}"));
    std::fs::create_dir_all(folder.parent().unwrap()).unwrap();
    std::fs::write(&folder, b"in the way").unwrap();
    let failed = client
        .create_recording(vault, &made.manifest, &made.shares)
        .await;
    assert_eq!(refused(failed).0, 500);
    assert!(client.recordings(vault).await.unwrap().is_empty());

    std::fs::remove_file(&folder).unwrap();
    let again = client
        .create_recording(vault, &made.manifest, &made.shares)
        .await
        .unwrap();
    assert_eq!(again.upload_offset, made.ciphertext.len() as u64);
    assert_eq!(client.recordings(vault).await.unwrap().len(), 1);
    assert_eq!(refused(client.upload_offset(made.id).await).0, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_vault_without_a_policy_takes_no_recording() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let admin = common::FirstAdmin::enrol(&server, "Ada").await;
    let roster = admin.client.roster(admin.vault, &admin.pin).await.unwrap();
    let made = make_recording(&roster, &admin.identity, 1, &audio(1000));
    assert_eq!(
        refused(
            admin
                .client
                .create_recording(admin.vault, &made.manifest, &made.shares)
                .await
        ),
        (409, "no_policy".into())
    );
    assert_eq!(
        refused(admin.client.open_live_upload(admin.vault, made.id).await),
        (409, "no_policy".into()),
        "refused before the meeting is recorded, not after"
    );
    server.stop().await;
}

quorate_server::per_backend!(
    an_admin_deletes_a_recording_with_every_share,
    sqlite_s3(Backend::Sqlite, true),
    postgres_local(Backend::Postgres, false)
);

async fn an_admin_deletes_a_recording_with_every_share(backend: Backend, s3: bool) {
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = store.server(&db).await;
    let board = Board::new(&server, 1, 1).await;
    let vault = board.admin.vault;
    let (member, member_client) = &board.members[0];
    let made = make_recording(&board.roster, member, 1, &audio(50_000));
    common::flow::upload(member_client, vault, &made).await;
    assert_eq!(
        refused(member_client.delete_recording(vault, made.id).await),
        (403, "admin_only".into())
    );
    board
        .admin
        .client
        .delete_recording(vault, made.id)
        .await
        .unwrap();
    assert_eq!(
        refused(member_client.recording_share(vault, made.id).await).0,
        404
    );
    assert!(
        board
            .admin
            .client
            .recordings(vault)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        server
            .app
            .blobs
            .list("recordings")
            .await
            .unwrap()
            .is_empty(),
        "{backend:?} s3={s3}"
    );
    let last = board
        .admin
        .client
        .audit_page(vault, None, 1000)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), last.subject.as_str()),
        ("recording.deleted", made.id.to_string().as_str())
    );
    assert_eq!(
        refused(board.admin.client.delete_recording(vault, made.id).await).0,
        404
    );
    server.stop().await;
    db.drop_database().await;
}

quorate_server::per_backend!(
    deleting_a_recording_leaves_nothing_of_it,
    sqlite_local(Backend::Sqlite, false),
    postgres_s3(Backend::Postgres, true)
);

async fn deleting_a_recording_leaves_nothing_of_it(backend: Backend, s3: bool) {
    use common::flow::{
        approve_release, approved_node, member, release_request, released, transcribed,
    };
    let store = Store::start(s3).await;
    let db = TestDb::new(backend).await;
    let server = store.server(&db).await;
    let board = Board::new(&server, 2, 2).await;
    let vault = board.admin.vault;
    let node = approved_node(&server.url(""), &board).await;
    // A released transcript, a second transcript with a release request open and one
    // vote on it: everything a recording can grow.
    let minutes = released(&board, &node).await;
    let second = transcribed(&board, &node, &minutes.made, &[0, 2]).await;
    let pending = release_request(&board, 1, second.id, node.id);
    let pending_id = pending
        .verify::<quorate_crypto::statement::UnlockRequest>()
        .unwrap()
        .statement
        .request_id;
    member(&board, 1)
        .1
        .create_request(vault, &pending)
        .await
        .unwrap();
    let (share, vote) = approve_release(&board, 0, &second, &pending, &node.identity).await;
    board
        .admin
        .client
        .vote(vault, pending_id, &vote, Some(&share))
        .await
        .unwrap();

    board
        .admin
        .client
        .delete_recording(vault, minutes.made.id)
        .await
        .unwrap();
    for table in [
        "recordings",
        "recording_shares",
        "uploads",
        "upload_parts",
        "unlock_requests",
        "votes",
        "jobs",
        "transcripts",
        "transcript_shares",
        "released_transcripts",
        "release_grants",
        "index_terms",
    ] {
        let left: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(server.app.db.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(left, 0, "{backend:?} s3={s3}: rows left in {table}");
    }
    assert_eq!(
        server.app.blobs.list("").await.unwrap(),
        Vec::<String>::new(),
        "{backend:?} s3={s3}: objects left"
    );
    assert!(
        board
            .admin
            .client
            .released(vault, None)
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
    db.drop_database().await;
}
