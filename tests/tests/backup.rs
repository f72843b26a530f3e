//! Backups that restore (docs/OPERATIONS.md): a running vault with a released transcript is
//! backed up as an operator would (SQLite's online copy `VACUUM INTO`, or `pg_dump`, then the
//! object folder), the server and its state are gone, a new server starts on the restored
//! copy alone, and the members' devices, unchanged, read the minutes, search them, and verify
//! the audit log and roster against what they pinned before the loss.

use std::path::Path;

use quorate_e2e::{Backend, Server, Staffed};
use quorate_server::config::Settings;
use quorate_server::test_support::{TestDb, TestServer};

/// Copies the object folder `from` into `to` (after the database: every object a row names
/// is then in the copy; an object written meanwhile is one more, unnamed, file).
fn copy_objects(from: &Path, to: &Path) {
    let copied = std::process::Command::new("cp")
        .args(["-a"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(copied.success());
}

/// The database of `server`, backed up while it runs, restored into `into` (fresh).
async fn back_up_database(server: &Server, into: &TestDb) {
    match into.backend {
        Backend::Sqlite => {
            let copy = into.folder.path().join("quorate.db");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "VACUUM INTO '{}'",
                copy.display()
            )))
            .execute(server.app.db.pool())
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let dump = into.folder.path().join("quorate.dump");
            let dumped = tokio::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(&dump)
                .arg(server.db.url.expose_secret())
                .status()
                .await
                .unwrap();
            assert!(dumped.success(), "pg_dump failed");
            let restored = tokio::process::Command::new("pg_restore")
                .args(["--no-owner", "--exit-on-error", "--dbname"])
                .arg(into.url.expose_secret())
                .arg(&dump)
                .status()
                .await
                .unwrap();
            assert!(restored.success(), "pg_restore failed");
        }
    }
}

quorate_server::per_backend!(a_vault_restored_from_its_backup_reads_and_searches_as_before);

async fn a_vault_restored_from_its_backup_reads_and_searches_as_before(backend: Backend) {
    let server = Server::start(backend).await;
    let staffed = Staffed::new(&server).await;
    let model = staffed.import_model().await;
    staffed.approve_node(&model).await;
    let (bo, cy) = (&staffed.members[0], &staffed.members[1]);
    let spoken = "The council voted to repair the bridge over the river.";
    let (recording, _) = staffed.upload(cy, spoken, "Bridge committee").await;
    let heard = staffed.transcribed(bo, &recording).await;
    let searched = cy.ok(&["--json", "search", "bridge"]).await.json();
    assert_eq!(searched["total"], 1, "{searched}");
    let verified = bo.ok(&["--json", "audit", "verify"]).await.json();

    // The backup, taken while the server runs.
    let restored = TestDb::new(backend).await;
    back_up_database(&server, &restored).await;
    copy_objects(
        &server.data_dir().join("objects"),
        &restored.folder.path().join("objects"),
    );
    // The machine is lost.
    server.stop().await;

    let replacement = TestServer::start_with(Settings {
        data_dir: Some(restored.folder.path().to_owned()),
        ..restored.settings()
    })
    .await;
    let url = replacement.url("");
    let minutes = bo
        .ok_at(&url, &["transcript", &recording, "--format", "txt"])
        .await;
    assert!(
        minutes.stdout.to_lowercase().contains("bridge") && heard.to_lowercase().contains("bridge"),
        "{minutes:?}"
    );
    let searched = cy.ok_at(&url, &["--json", "search", "bridge"]).await.json();
    assert_eq!(searched["total"], 1, "{searched}");
    let after = bo.ok_at(&url, &["--json", "audit", "verify"]).await.json();
    assert_eq!(after["entries"], verified["entries"], "{after}");
    let listed = cy.ok_at(&url, &["--json", "recordings"]).await.json();
    assert_eq!(listed[0]["title"], "Bridge committee", "{listed}");
    replacement.stop().await;
    restored.drop_database().await;
}
