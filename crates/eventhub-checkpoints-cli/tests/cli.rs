//! The real `ehcp` binary against the local file store and against Azurite.

use assert_cmd::Command;
use eventhub_checkpoints_test_support::{ACCOUNT_KEY, Azurite, Transport, unique_container_name};
use predicates::prelude::*;
use serde_json::Value;

const NS: &str = "Contoso.ServiceBus.Windows.Net";

/// Where a test's commands point: a temp file store, or an Azurite container.
struct Target {
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Target {
    fn file_store() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let args = vec!["--store".into(), dir.path().join("store").display().to_string()];
        let target = Self { args, dir };
        // As for Azure's container: reading commands need the store to exist.
        target
            .ehcp(&["container", "create"])
            .assert()
            .success()
            .stdout(predicate::str::contains("ready"));
        target
    }

    fn azurite() -> Self {
        let azurite = Azurite::shared(Transport::Http);
        let args = vec![
            "--connection-string".into(),
            azurite.connection_string(),
            "--container".into(),
            unique_container_name("cli"),
        ];
        let target = Self {
            args,
            dir: tempfile::tempdir().unwrap(),
        };
        target
            .ehcp(&["container", "create"])
            .assert()
            .success()
            .stdout(predicate::str::contains("created"));
        target
    }

    /// `ehcp <target> --namespace NS --eventhub telemetry <args>`, run in a
    /// scratch directory with no Azure variables inherited.
    fn ehcp(&self, args: &[&str]) -> Command {
        let mut cmd = self.ehcp_without_scope(&["--namespace", NS, "--eventhub", "telemetry"]);
        cmd.args(args);
        cmd
    }

    /// `ehcp <target> <args>`, without the default scope.
    fn ehcp_without_scope(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("ehcp").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .env_remove("AZURE_STORAGE_KEY")
            .env_remove("AZURE_STORAGE_SAS_TOKEN")
            .args(&self.args)
            .args(args);
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let output = self.ehcp(&all).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

fn both() -> [Target; 2] {
    [Target::file_store(), Target::azurite()]
}

#[test]
fn reset_a_partition_and_see_it_in_status() {
    for t in both() {
        t.ehcp(&["status"])
            .assert()
            .success()
            .stdout(predicate::str::contains("no ownership or checkpoints recorded"));
        for p in ["0", "1", "2"] {
            t.ehcp(&[
                "checkpoints",
                "set",
                "--partition",
                p,
                "--offset",
                "4096",
                "--sequence-number",
                "17",
            ])
            .assert()
            .success();
        }
        t.ehcp(&["ownership", "claim", "--partition", "1", "--owner", "proc-a"])
            .assert()
            .success();
        // Resetting an existing checkpoint asks first; without a terminal it needs --yes.
        t.ehcp(&[
            "checkpoints",
            "set",
            "--partition",
            "1",
            "--offset",
            "-1",
            "--sequence-number",
            "-1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--yes"));
        t.ehcp(&[
            "checkpoints",
            "set",
            "--partition",
            "1",
            "--offset",
            "-1",
            "--sequence-number",
            "-1",
            "--yes",
        ])
        .assert()
        .success();
        let status = t.json(&["status"]);
        let rows = status.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1]["partition_id"], "1");
        assert_eq!(rows[1]["owner_id"], "proc-a");
        assert_eq!(rows[1]["expired"], false);
        assert_eq!(rows[1]["offset"], "-1");
        assert_eq!(rows[1]["sequence_number"], -1);
        assert_eq!(rows[0]["owner_id"], "");
        t.ehcp(&["status"])
            .assert()
            .success()
            .stdout(predicate::str::contains("PARTITION").and(predicate::str::contains("proc-a")));
        t.ehcp(&["status", "--expiration", "0s"])
            .assert()
            .success()
            .stdout(predicate::str::contains("expired"));
    }
}

#[test]
fn checkpoints_list_delete_and_json_keys() {
    for t in both() {
        t.ehcp(&[
            "checkpoints",
            "set",
            "--partition",
            "3",
            "--sequence-number",
            "9223372036854775807",
        ])
        .assert()
        .success();
        // No sequence number: Python, JavaScript, Go and Java consumers
        // could no longer list the group, so it takes a flag.
        t.ehcp(&["checkpoints", "set", "--partition", "4", "--offset", "g1:100:7"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--allow-missing-sequence-number"));
        t.ehcp(&[
            "checkpoints",
            "set",
            "--partition",
            "4",
            "--offset",
            "g1:100:7",
            "--allow-missing-sequence-number",
        ])
        .assert()
        .success();
        let listed = t.json(&["checkpoints", "list"]);
        assert_eq!(
            listed,
            serde_json::json!([
                {"fully_qualified_namespace": NS, "eventhub_name": "telemetry", "consumer_group": "$Default",
                 "partition_id": "3", "offset": null, "sequence_number": i64::MAX},
                {"fully_qualified_namespace": NS, "eventhub_name": "telemetry", "consumer_group": "$Default",
                 "partition_id": "4", "offset": "g1:100:7", "sequence_number": null},
            ])
        );
        t.ehcp(&["checkpoints", "delete", "--partition", "3"])
            .assert()
            .code(2);
        t.ehcp(&["checkpoints", "delete", "--partition", "3", "--yes"])
            .assert()
            .success()
            .stdout(predicate::str::contains("deleted 1 checkpoint"));
        t.ehcp(&["checkpoints", "delete", "--partition", "3", "--yes"])
            .assert()
            .success()
            .stdout(predicate::str::contains("has no checkpoint"));
        t.ehcp(&["checkpoints", "delete", "--all", "--yes"])
            .assert()
            .success();
        assert_eq!(t.json(&["checkpoints", "list"]), serde_json::json!([]));
        // Neither an offset nor a sequence number: rejected, nothing written.
        t.ehcp(&["checkpoints", "set", "--partition", "5"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "needs an offset, a sequence number, or both",
            ));
    }
}

#[test]
fn export_and_import_to_another_consumer_group() {
    for t in both() {
        for p in 0..4 {
            let seq = (p * 100).to_string();
            t.ehcp(&[
                "checkpoints",
                "set",
                "--partition",
                &p.to_string(),
                "--offset",
                &seq,
                "--sequence-number",
                &seq,
            ])
            .assert()
            .success();
        }
        let export = t.ehcp(&["checkpoints", "export"]).output().unwrap();
        assert!(export.status.success());
        let text = String::from_utf8(export.stdout).unwrap();
        assert_eq!(text.lines().count(), 4);
        let file = t.dir.path().join("backup.jsonl");
        std::fs::write(&file, &text).unwrap();

        t.ehcp(&[
            "checkpoints",
            "import",
            file.to_str().unwrap(),
            "--to-consumer-group",
            "replay",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 4 checkpoints"));
        let copied = t.json(&["--consumer-group", "replay", "checkpoints", "list"]);
        assert_eq!(copied.as_array().unwrap().len(), 4);
        assert_eq!(copied[2]["consumer_group"], "replay");
        assert_eq!(copied[2]["sequence_number"], 200);

        // Importing over existing checkpoints asks; from stdin too.
        t.ehcp(&["checkpoints", "import", file.to_str().unwrap()])
            .assert()
            .code(2);
        t.ehcp(&["checkpoints", "import", "--yes"])
            .write_stdin(text)
            .assert()
            .success();

        // A malformed file changes nothing.
        std::fs::write(&file, "{\"partition_id\": \"9\"}\n").unwrap();
        t.ehcp(&[
            "checkpoints",
            "import",
            file.to_str().unwrap(),
            "--to-consumer-group",
            "broken",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1"));
        assert_eq!(
            t.json(&["--consumer-group", "broken", "checkpoints", "list"]),
            serde_json::json!([])
        );
    }
}

#[test]
fn ownership_claim_lose_and_release() {
    for t in both() {
        let won = t.json(&["ownership", "claim", "--partition", "0", "--owner", "proc-a"]);
        assert_eq!(won["owner_id"], "proc-a");
        assert!(won["last_modified_time"].as_f64().unwrap() > 1.7e9);
        let etag = won["etag"].as_str().unwrap().to_owned();

        // A create-only claim of an owned partition is lost: exit code 3.
        t.ehcp(&["ownership", "claim", "--partition", "0", "--owner", "proc-b"])
            .assert()
            .code(3)
            .stderr(predicate::str::contains("lost").and(predicate::str::contains("claim it with --etag")));
        // With the current etag it is a steal; the old etag is then stale.
        t.ehcp(&[
            "ownership",
            "claim",
            "--partition",
            "0",
            "--owner",
            "proc-b",
            "--etag",
            &etag,
        ])
        .assert()
        .success();
        t.ehcp(&[
            "ownership",
            "claim",
            "--partition",
            "0",
            "--owner",
            "proc-a",
            "--etag",
            &etag,
        ])
        .assert()
        .code(3);

        t.ehcp(&["ownership", "release", "--partition", "0", "--owner", "proc-a"])
            .assert()
            .code(3)
            .stderr(predicate::str::contains("owned by 'proc-b'"));
        t.ehcp(&["ownership", "release", "--partition", "0", "--owner", "proc-b"])
            .assert()
            .success();
        let listed = t.json(&["ownership", "list"]);
        assert_eq!(listed[0]["owner_id"], "");
        assert_eq!(listed[0]["eventhub_name"], "telemetry");
        t.ehcp(&["ownership", "list"])
            .assert()
            .success()
            .stdout(predicate::str::contains("(released)"));
        t.ehcp(&["ownership", "release", "--partition", "7"])
            .assert()
            .success()
            .stdout(predicate::str::contains("nothing to release"));
    }
}

#[test]
fn bad_input_is_one_clear_line_and_no_secret() {
    let t = Target::file_store();
    let mut cmd = Command::cargo_bin("ehcp").unwrap();
    cmd.current_dir(t.dir.path())
        .args(["status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--namespace is required"));
    assert!(
        !t.dir.path().join(".ehcp-store").exists(),
        "a usage error created the default store"
    );
    let fresh = t.dir.path().join("fresh-store");
    Command::cargo_bin("ehcp")
        .unwrap()
        .current_dir(t.dir.path())
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .args([
            "--store",
            fresh.to_str().unwrap(),
            "--namespace",
            NS,
            "--eventhub",
            "telemetry",
        ])
        .args(["checkpoints", "set", "--partition", "a/b", "--offset", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("partition id contains '/'"));
    assert!(!fresh.exists(), "a usage error created the store");
    t.ehcp(&["ownership", "claim", "--partition", "0", "--owner", "bad\nowner"])
        .assert()
        .code(2);

    let secret_key = "c2VjcmV0LWtleS1ub3QtYmFzZTY0IQ!!";
    let azurite = Azurite::shared(Transport::Http);
    let cs = format!(
        "AccountName=devstoreaccount1;AccountKey={secret_key};BlobEndpoint={}",
        azurite.blob_endpoint()
    );
    let mut cmd = Command::cargo_bin("ehcp").unwrap();
    let output = cmd
        .current_dir(t.dir.path())
        .env("AZURE_STORAGE_CONNECTION_STRING", &cs)
        .args([
            "--container",
            "checkpoints",
            "--namespace",
            NS,
            "--eventhub",
            "hub",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AccountKey is invalid"), "{stderr}");
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A valid but wrong key: the service refuses; still no key, one line, exit 1.
    let wrong = format!(
        "AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={}",
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5",
        azurite.blob_endpoint()
    );
    let mut cmd = Command::cargo_bin("ehcp").unwrap();
    let output = cmd
        .args([
            "--connection-string",
            &wrong,
            "--container",
            "checkpoints",
            "--namespace",
            NS,
        ])
        .args(["--eventhub", "hub", "-vv", "status"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("authentication or authorization failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("d3Jvbmc") && !stderr.contains(ACCOUNT_KEY),
        "{stderr}"
    );

    let mut cmd = Command::cargo_bin("ehcp").unwrap();
    cmd.args([
        "--connection-string",
        &wrong,
        "--container",
        "checkpoints",
        "--api-version",
        "2017-13-01",
    ])
    .args(["--namespace", NS, "--eventhub", "hub", "status"])
    .assert()
    .code(2)
    .stderr(predicate::str::contains(
        "api version \"2017-13-01\" is not a YYYY-MM-DD date",
    ));
}

#[test]
fn every_help_reads_well() {
    let scratch = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["status", "--help"],
        vec!["checkpoints", "--help"],
        vec!["checkpoints", "set", "--help"],
        vec!["checkpoints", "delete", "--help"],
        vec!["checkpoints", "export", "--help"],
        vec!["checkpoints", "import", "--help"],
        vec!["ownership", "claim", "--help"],
        vec!["ownership", "release", "--help"],
        vec!["container", "create", "--help"],
    ] {
        let mut cmd = Command::cargo_bin("ehcp").unwrap();
        let output = cmd
            .current_dir(scratch.path())
            .env("AZURE_STORAGE_KEY", "c2VjcmV0")
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Usage: ehcp"), "{args:?}: {help}");
        assert!(!help.contains("c2VjcmV0"), "help shows an env secret: {help}");
    }
}

#[test]
fn container_create_on_azurite_and_file_store() {
    let t = Target::azurite();
    t.ehcp(&["container", "create"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already exists"));
    let f = Target::file_store();
    f.ehcp(&["container", "create"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ready"));
}

#[test]
fn demo_converges_and_leaves_checkpoints() {
    for t in both() {
        let output = t
            .ehcp(&["demo", "--consumers", "3", "--partitions", "8"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("converged after"), "{stdout}");
        for consumer in ["consumer-1", "consumer-2", "consumer-3"] {
            let line = stdout
                .lines()
                .find(|l| l.trim_start().starts_with(consumer))
                .unwrap();
            let owned: usize = line
                .split("owned")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!((2..=3).contains(&owned), "{line}");
        }
        // The demo's checkpoints are real: every partition has one, and its
        // partitions were released on shutdown.
        let checkpoints = t.json(&["checkpoints", "list"]);
        assert_eq!(checkpoints.as_array().unwrap().len(), 8, "{checkpoints}");
        let ownership = t.json(&["ownership", "list"]);
        assert!(
            ownership.as_array().unwrap().iter().all(|o| o["owner_id"] == ""),
            "{ownership}"
        );
    }
}

/// Found in review: `checkpoints import` ignored --namespace/--eventhub and
/// wrote to the file's scope, so a migration to a new namespace overwrote
/// the old one. The scope flags now replace each line's scope.
#[test]
fn import_writes_where_the_scope_flags_say() {
    for t in both() {
        for p in 0..2 {
            t.ehcp(&[
                "checkpoints",
                "set",
                "--partition",
                &p.to_string(),
                "--offset",
                "100",
                "--sequence-number",
                "7",
            ])
            .assert()
            .success();
        }
        let export = t.ehcp(&["checkpoints", "export"]).output().unwrap();
        let text = String::from_utf8(export.stdout).unwrap();
        t.ehcp_without_scope(&[
            "--namespace",
            "moved.servicebus.windows.net",
            "--eventhub",
            "telemetry2",
            "checkpoints",
            "import",
        ])
        .write_stdin(text.clone())
        .assert()
        .success();
        let moved = |group: &str| {
            let output = t
                .ehcp_without_scope(&[
                    "--namespace",
                    "moved.servicebus.windows.net",
                    "--eventhub",
                    "telemetry2",
                    "--consumer-group",
                    group,
                    "checkpoints",
                    "list",
                    "--output",
                    "json",
                ])
                .output()
                .unwrap();
            serde_json::from_slice::<Value>(&output.stdout).unwrap()
        };
        assert_eq!(moved("$Default").as_array().unwrap().len(), 2);

        // --consumer-group and --to-consumer-group must agree.
        t.ehcp(&[
            "--consumer-group",
            "a",
            "checkpoints",
            "import",
            "--to-consumer-group",
            "b",
        ])
        .write_stdin(text.clone())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("disagree"));
        // Two lines landing on one partition: refused, nothing written.
        let other_group = text.replace("\"$Default\"", "\"other\"");
        t.ehcp_without_scope(&[
            "--namespace",
            "moved.servicebus.windows.net",
            "--eventhub",
            "telemetry2",
            "--consumer-group",
            "merged",
            "checkpoints",
            "import",
        ])
        .write_stdin(format!("{text}{other_group}"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is also written by line 1"));
        assert_eq!(moved("merged"), serde_json::json!([]));
        // A line without a sequence number takes a flag, as `set` does.
        t.ehcp(&["--consumer-group", "no-seq", "checkpoints", "import"])
            .write_stdin(text.replace("\"sequence_number\":7", "\"sequence_number\":null"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--allow-missing-sequence-number"));
    }
}

/// Found in review: `demo` with the operator's own --namespace/--eventhub
/// took over a real consumer group's partitions and overwrote its
/// checkpoints without asking.
#[test]
fn demo_asks_before_running_on_a_scope_with_data() {
    let t = Target::file_store();
    t.ehcp(&[
        "checkpoints",
        "set",
        "--partition",
        "0",
        "--offset",
        "123456789",
        "--sequence-number",
        "9",
    ])
    .assert()
    .success();
    t.ehcp(&["demo", "--consumers", "1", "--partitions", "2", "--seconds", "5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Run it there?"));
    let listed = t.json(&["checkpoints", "list"]);
    assert_eq!(listed[0]["offset"], "123456789", "{listed}");
}

/// Found in review: the local store deleted every file under `<store>/tmp`,
/// so `--store .` in a project directory lost its `tmp/`.
#[test]
fn a_directory_that_is_not_a_store_is_refused_untouched() {
    let t = Target::file_store();
    let project = t.dir.path().join("project");
    std::fs::create_dir_all(project.join("tmp")).unwrap();
    std::fs::write(project.join("tmp/notes.txt"), "mine").unwrap();
    let mut cmd = Command::cargo_bin("ehcp").unwrap();
    cmd.current_dir(&project)
        .env_remove("AZURE_STORAGE_CONNECTION_STRING")
        .args(["--store", ".", "--namespace", NS, "--eventhub", "telemetry"])
        .args([
            "checkpoints",
            "set",
            "--partition",
            "0",
            "--offset",
            "1",
            "--sequence-number",
            "1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a checkpoint store"));
    assert_eq!(
        std::fs::read_to_string(project.join("tmp/notes.txt")).unwrap(),
        "mine"
    );
}

/// Found in review: credentials exported in the environment blocked other
/// options (clap conflicts on values it took from the environment).
#[test]
fn flags_beat_credentials_from_the_environment() {
    let t = Target::file_store();
    // An exported connection string gives way to an explicit --store, and an
    // exported SAS means nothing without --account-url.
    t.ehcp(&["status"])
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            "AccountName=x;AccountKey=bm90LWEta2V5",
        )
        .env("AZURE_STORAGE_SAS_TOKEN", "sv=2019-07-07&sig=c2VjcmV0")
        .assert()
        .success();
    // An exported key gives way to --sas on the command line: the SAS is
    // used (and refused by Azurite), not a clap conflict.
    let azurite = Azurite::shared(Transport::Http);
    let output = t
        .ehcp_without_scope(&[
            "--account-url",
            azurite.blob_endpoint(),
            "--container",
            "nothing-here",
            "--sas",
            "sv=2019-07-07&ss=b&srt=sco&sp=rl&se=2030-01-01&sig=bm90LWEtc2ln",
            "--namespace",
            NS,
            "--eventhub",
            "telemetry",
            "status",
        ])
        .env("AZURE_STORAGE_KEY", ACCOUNT_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("cannot be used with"), "{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("bm90LWEtc2ln"), "{stderr}");
}

/// Found in review: a read with a mistyped --store created an empty store
/// and reported nothing, with exit 0.
#[test]
fn reading_commands_need_an_existing_store() {
    let t = Target::file_store();
    let typo = t.dir.path().join("stroe");
    let typo = typo.to_str().unwrap();
    for command in [&["status"][..], &["checkpoints", "list"], &["ownership", "list"]] {
        Command::cargo_bin("ehcp")
            .unwrap()
            .current_dir(t.dir.path())
            .env_remove("AZURE_STORAGE_CONNECTION_STRING")
            .args(["--store", typo, "--namespace", NS, "--eventhub", "telemetry"])
            .args(command)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("no checkpoint store at"));
    }
    assert!(!std::path::Path::new(typo).exists(), "a read created the store");
}

/// Found in review: `export` dropped checkpoint blobs it could not read
/// with only a warning and exit 0 (an incomplete backup), and
/// `delete --all` left them in place unmentioned.
#[test]
fn unreadable_checkpoints_fail_the_export_and_go_with_delete_all() {
    let t = Target::file_store();
    for p in ["1", "7"] {
        t.ehcp(&[
            "checkpoints",
            "set",
            "--partition",
            p,
            "--offset",
            "5",
            "--sequence-number",
            "5",
        ])
        .assert()
        .success();
    }
    // Partition 7's blob as a broken peer would write it.
    let blobs = t.dir.path().join("store/blobs");
    let broken = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("/checkpoint/7"))
        .unwrap();
    let mut blob: Value = serde_json::from_str(&std::fs::read_to_string(&broken).unwrap()).unwrap();
    for pair in blob["metadata"].as_array_mut().unwrap() {
        if pair["name"] == "sequencenumber" {
            pair["value"] = "abc".into();
        }
    }
    std::fs::write(&broken, blob.to_string()).unwrap();

    t.ehcp(&["checkpoints", "export", "backup.jsonl"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--allow-skipped"));
    assert!(!t.dir.path().join("backup.jsonl").exists(), "nothing written");
    let partial = t
        .ehcp(&["checkpoints", "export", "--allow-skipped"])
        .output()
        .unwrap();
    assert!(partial.status.success());
    assert_eq!(String::from_utf8(partial.stdout).unwrap().lines().count(), 1);

    t.ehcp(&["checkpoints", "delete", "--all", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("deleted unreadable blob"));
    assert!(!broken.exists());
    assert_eq!(t.json(&["checkpoints", "list"]), serde_json::json!([]));
}
