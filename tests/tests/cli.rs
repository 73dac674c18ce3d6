//! The `quiver` command line end to end: `serve` on the embedded store and on Postgres,
//! `plan`/`apply` of the quickstart definitions over HTTP and in-process, the catalog
//! commands, and how every kind of bad input is refused without touching the store.

use std::collections::BTreeMap;

use quiver_e2e::{
    catalog_snapshot, closed_port_url, copy_dir, edit_file, quickstart_defs, repo_root, write_file,
    Quiver, TempDatabase,
};
use serde_json::Value;

fn quiver() -> Quiver {
    Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"))
}

/// The quickstart holds 18 definitions.
const QUICKSTART_COUNT: usize = 18;

const FEATURES: [&str; 6] = [
    "avg_amount_30d",
    "avg_amount_7d",
    "last_amount",
    "max_amount_30d",
    "merchant_category",
    "txn_count_7d",
];

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("a page has items")
        .iter()
        .map(|i| i["name"].as_str().expect("an item has a name").to_string())
        .collect()
}

/// `kind name[:variant]` → action, from a plan's JSON.
fn actions(plan: &Value) -> BTreeMap<String, String> {
    plan["items"]
        .as_array()
        .expect("a plan has items")
        .iter()
        .map(|i| {
            (
                resource(&i["resource"]),
                i["action"].as_str().expect("action").to_string(),
            )
        })
        .collect()
}

fn resource(id: &Value) -> String {
    let (kind, name, variant) = (
        id["kind"].as_str().unwrap(),
        id["name"].as_str().unwrap(),
        id["variant"].as_str(),
    );
    match variant {
        Some(v) if !v.is_empty() => format!("{kind} {name}:{v}"),
        _ => format!("{kind} {name}"),
    }
}

fn with<'a>(args: &[&'a str], target: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(target).copied().collect()
}

#[test]
fn quickstart_through_a_server_on_the_embedded_store() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let server = q.serve(&["--data-dir", data_dir]);
    let remote = ["--server", server.url.as_str()];
    let local = ["--data-dir", data_dir];
    let defs = quickstart_defs();
    let defs = defs.to_str().unwrap();

    let plan = q.run(&with(&["plan", "-f", defs], &remote));
    plan.success();
    let creates = plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("+ create   "))
        .count();
    assert_eq!(creates, QUICKSTART_COUNT, "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("+ create   feature avg_amount_7d:v1 (default)\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .ends_with("Plan: 18 to create, 0 to update, 0 unchanged.\n"),
        "{}",
        plan.stdout
    );

    let apply = q.run(&with(&["apply", "-f", defs], &remote));
    apply.success();
    assert!(
        apply
            .stdout
            .ends_with("Applied: 18 created, 0 updated, 0 unchanged.\n"),
        "{}",
        apply.stdout
    );

    // The catalog over HTTP, with filters.
    let features = q
        .run(&with(&["list", "features", "--output", "json"], &remote))
        .success()
        .json();
    assert_eq!(names(&features), FEATURES);
    assert_eq!(features["total"], 6);
    let table = q.run(&with(&["list", "feature"], &remote));
    table.success();
    assert!(table.stdout.starts_with("KIND "), "{}", table.stdout);
    assert!(
        table.stdout.contains("feature  avg_amount_7d "),
        "{}",
        table.stdout
    );
    let online = q
        .run(&with(
            &["list", "features", "--tag", "online", "--output", "json"],
            &remote,
        ))
        .success()
        .json();
    assert_eq!(names(&online), ["avg_amount_7d", "txn_count_7d"]);
    let search = q
        .run(&with(
            &["list", "features", "--q", "MERCHANT", "--output", "json"],
            &remote,
        ))
        .success()
        .json();
    assert_eq!(names(&search), ["merchant_category"]);
    let nobody = q.run(&with(&["list", "features", "--owner", "nobody"], &remote));
    assert_eq!(nobody.success().stdout, "No resources found.\n");
    let paged = q.run(&with(&["list", "features", "--limit", "4"], &remote));
    assert!(
        paged
            .success()
            .stdout
            .ends_with("Showing 1-4 of 6; next page: --offset 4\n"),
        "{}",
        paged.stdout
    );

    // In-process on the same data directory: the same documents as the server's.
    let local_features = q
        .run(&with(&["list", "features", "--output", "json"], &local))
        .success()
        .json();
    assert_eq!(local_features, features);

    // Applying again changes nothing, and plan says so.
    let again = q.run(&with(&["apply", "-f", defs], &remote));
    assert!(
        again
            .success()
            .stdout
            .ends_with("Applied: 0 created, 0 updated, 18 unchanged.\n"),
        "{}",
        again.stdout
    );
    let plan = q.run(&with(&["plan", "-f", defs], &remote));
    assert!(
        plan.success()
            .stdout
            .ends_with("Plan: 0 to create, 0 to update, 18 unchanged.\n"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        plan.stdout
            .lines()
            .filter(|l| l.starts_with("= unchanged "))
            .count(),
        QUICKSTART_COUNT
    );

    // One definition, as re-appliable YAML with its references pinned.
    let get = q.run(&with(&["get", "features", "avg_amount_7d"], &remote));
    get.success();
    assert!(
        get.stdout.starts_with("# feature avg_amount_7d:v1\n"),
        "{}",
        get.stdout
    );
    assert!(
        get.stdout.contains("source: user_txn_aggregates:v1\n"),
        "{}",
        get.stdout
    );
    let got = q.run(&with(
        &[
            "get",
            "feature",
            "avg_amount_7d",
            "--variant",
            "v1",
            "--output",
            "json",
        ],
        &remote,
    ));
    assert_eq!(
        got.success().json()["definition"]["value_column"],
        "avg_amount_7d"
    );

    // Lineage of the training set, both ways, identical in-process and over HTTP.
    let lineage = q.run(&with(
        &["lineage", "training-set", "fraud_training"],
        &remote,
    ));
    lineage.success();
    for needle in [
        "training_set fraud_training:v1",
        "upstream (what it is built from):",
        "label is_fraud:v1",
        "source transactions:v1",
        "provider local-files",
        "downstream (what depends on it):",
        "model fraud_detector",
    ] {
        assert!(
            lineage.stdout.contains(needle),
            "{needle}:\n{}",
            lineage.stdout
        );
    }
    let lineage_json = [
        "lineage",
        "training_set",
        "fraud_training",
        "--output",
        "json",
    ];
    assert_eq!(
        q.run(&with(&lineage_json, &remote)).success().json(),
        q.run(&with(&lineage_json, &local)).success().json()
    );

    // The resources that need work have jobs. There is no data in this test (the
    // quickstart test with data is `quickstart_builds_serves_and_downloads`), so the
    // server's coordinator may already be running or failing them.
    let jobs = q
        .run(&with(&["jobs", "--output", "json"], &remote))
        .success()
        .json();
    let mut kinds: Vec<String> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{} {}",
                j["kind"].as_str().unwrap(),
                resource(&j["resource"])
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "materialization feature avg_amount_7d:v1",
            "materialization feature txn_count_7d:v1",
            "training_set training_set fraud_training:v1",
            "transformation source user_txn_aggregates:v1",
        ]
    );
    let first = jobs["items"][0]["id"].as_i64().unwrap().to_string();
    let show = q.run(&with(&["jobs", "show", &first], &remote));
    show.success();
    assert!(
        show.stdout.starts_with(&format!("job {first}: ")),
        "{}",
        show.stdout
    );

    // Missing things are one clear line.
    let missing = q.run(&with(&["get", "feature", "nope"], &remote));
    let line = missing.error_line(1);
    assert!(
        line.contains("feature `nope` not found") && line.ends_with("(not_found)"),
        "{line}"
    );
    let missing = q.run(&with(&["jobs", "show", "999999"], &local));
    assert!(missing.error_line(1).contains("job 999999 not found"));

    let status = server.stop();
    assert!(
        status.success(),
        "quiver serve should exit cleanly on SIGTERM: {status}"
    );
}

#[test]
fn plan_against_a_store_holding_part_of_a_directory() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    let local = ["--data-dir", data.path().to_str().unwrap()];
    let work = tempfile::tempdir().unwrap();

    // The store holds the platform, entities and sources.
    for file in ["platform.yaml", "entities.yaml", "sources.yaml"] {
        std::fs::create_dir_all(work.path().join("part")).unwrap();
        std::fs::copy(
            quickstart_defs().join(file),
            work.path().join("part").join(file),
        )
        .unwrap();
    }
    q.run_in(work.path(), &with(&["apply", "-f", "part"], &local))
        .success();

    // The whole directory, with a provider changed (an update) and a stored source
    // changed under its existing variant (a conflict).
    copy_dir(&quickstart_defs(), &work.path().join("full"));
    edit_file(
        &work.path().join("full/platform.yaml"),
        "root: ./data",
        "root: ./warehouse",
    );
    edit_file(
        &work.path().join("full/sources.yaml"),
        "path: merchants.csv",
        "path: merchants_v2.csv",
    );

    let before = catalog_snapshot(&q, &local);
    let plan = q.run_in(work.path(), &with(&["plan", "-f", "full"], &local));
    assert_eq!(
        plan.code,
        Some(3),
        "a plan with conflicts exits 3:\n{}{}",
        plan.stdout,
        plan.stderr
    );
    assert_eq!(plan.stderr, "");
    let text = &plan.stdout;
    for line in [
        "= unchanged user risk-team\n",
        "~ update   provider local-files (fields: config.root) at full/platform.yaml:8\n",
        "= unchanged provider local-online\n",
        "= unchanged source transactions:v1\n",
        "! conflict source merchants:v1 (fields: file.path) at full/sources.yaml:",
        "+ create   feature avg_amount_7d:v1 (default)\n",
        "+ create   training_set fraud_training:v1 (default)\n",
        "+ create   model fraud_detector\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        text.ends_with("Plan: 9 to create, 1 to update, 7 unchanged, 1 conflict.\n"),
        "{text}"
    );
    // Downstream impact follows each line, including what this plan would create.
    let after_transactions = text
        .split("= unchanged source transactions:v1\n")
        .nth(1)
        .unwrap();
    let downstream = after_transactions.lines().next().unwrap();
    assert!(downstream.starts_with("    downstream: "), "{text}");
    for affected in [
        "source user_txn_aggregates:v1",
        "feature last_amount:v1",
        "feature avg_amount_7d:v1",
        "training_set fraud_training:v1",
        "model fraud_detector",
    ] {
        assert!(
            downstream.contains(affected),
            "{affected} not in {downstream}"
        );
    }

    let plan = q.run_in(
        work.path(),
        &with(&["plan", "-f", "full", "--output", "json"], &local),
    );
    assert_eq!(plan.code, Some(3));
    let plan = plan.json();
    let expected: BTreeMap<String, String> = [
        ("user risk-team", "unchanged"),
        ("provider local-files", "update"),
        ("provider local-online", "unchanged"),
        ("entity user", "unchanged"),
        ("entity merchant", "unchanged"),
        ("source transactions:v1", "unchanged"),
        ("source user_txn_aggregates:v1", "unchanged"),
        ("source merchants:v1", "conflict"),
        ("source fraud_reports:v1", "unchanged"),
        ("feature avg_amount_7d:v1", "create"),
        ("feature txn_count_7d:v1", "create"),
        ("feature avg_amount_30d:v1", "create"),
        ("feature max_amount_30d:v1", "create"),
        ("feature last_amount:v1", "create"),
        ("feature merchant_category:v1", "create"),
        ("label is_fraud:v1", "create"),
        ("training_set fraud_training:v1", "create"),
        ("model fraud_detector", "create"),
    ]
    .into_iter()
    .map(|(r, a)| (r.to_string(), a.to_string()))
    .collect();
    assert_eq!(actions(&plan), expected);
    let merchants = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| resource(&i["resource"]) == "source merchants:v1")
        .unwrap();
    assert_eq!(
        merchants["differing_fields"],
        serde_json::json!(["file.path"])
    );
    let impact: Vec<String> = merchants["downstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(resource)
        .collect();
    assert_eq!(impact, ["feature merchant_category:v1"]);

    // Planning wrote nothing, and the conflicting apply writes nothing either.
    assert_eq!(catalog_snapshot(&q, &local), before);
    let apply = q.run_in(work.path(), &with(&["apply", "-f", "full"], &local));
    let line = apply.error_line(1);
    assert!(
        line.contains("source merchants:v1") && line.contains("file.path"),
        "{line}"
    );
    assert_eq!(catalog_snapshot(&q, &local), before);
}

/// A bad input and what its one-line error must say.
struct BadInput {
    name: &'static str,
    yaml: &'static str,
    needles: &'static [&'static str],
}

const BAD_INPUTS: &[BadInput] = &[
    BadInput {
        name: "unknown-kind",
        yaml: "kind: featur\nname: x\n",
        needles: &["defs/unknown-kind.yaml:1 (document 1)", "unknown kind"],
    },
    BadInput {
        name: "unknown-field",
        yaml: "kind: entity\nname: card\nowner: risk-team\nownr: x\n",
        needles: &["defs/unknown-field.yaml:1", "unknown field `ownr`"],
    },
    BadInput {
        name: "unknown-provider-type",
        yaml: "kind: provider\nname: mysql\nowner: risk-team\nconfig:\n  type: mysql\n  host: db\n",
        needles: &["unknown provider type", "mysql"],
    },
    BadInput {
        name: "invalid-name",
        yaml: "kind: entity\nname: Card Holder\nowner: risk-team\n",
        needles: &["defs/invalid-name.yaml:1", "name `Card Holder` is invalid"],
    },
    // A valid new entity first: the apply must not write it either.
    BadInput {
        name: "dangling",
        yaml: "kind: entity\nname: card\nowner: risk-team\n---\nkind: feature\nname: card_spend\nvariant: v1\nowner: risk-team\nentity: card\nsource: card_transactions\nvalue_column: amount\nvalue_type: float64\n",
        needles: &["defs/dangling.yaml:5", "card_transactions", "does not exist"],
    },
    BadInput {
        name: "cycle",
        yaml: "kind: source\nname: a\nvariant: v1\nowner: risk-team\nprovider: local-files\nsql: SELECT * FROM {{ b:v1 }}\n---\nkind: source\nname: b\nvariant: v1\nowner: risk-team\nprovider: local-files\nsql: SELECT * FROM {{ a:v1 }}\n",
        needles: &["cycle", "source a:v1", "source b:v1"],
    },
    BadInput {
        name: "changed-variant",
        // The quickstart's definition with only the value column changed.
        yaml: "kind: feature\nname: avg_amount_7d\nvariant: v1\nowner: risk-team\ndescription: Average transaction amount over the last 7 days\ntags: [spend, online]\nentity: user\nsource: user_txn_aggregates\nentity_column: user_id\nvalue_column: mean_amount_7d\nvalue_type: float64\ntimestamp_column: window_end\nmax_age: 2d\nonline_provider: local-online\n",
        needles: &["feature avg_amount_7d:v1", "(fields that differ: value_column)"],
    },
];

/// Every bad input against one target holding the quickstart: exit ≠ 0, one line that
/// says what and where, and the store exactly as before.
fn bad_inputs_are_refused(q: &Quiver, target: &[&str], server_codes: bool) {
    q.run(&with(
        &["apply", "-f", quickstart_defs().to_str().unwrap()],
        target,
    ))
    .success();
    let before = catalog_snapshot(q, target);
    let work = tempfile::tempdir().unwrap();

    // Malformed YAML: file, line and column, before any store is contacted.
    write_file(
        work.path(),
        "defs/malformed.yaml",
        "kind: entity\nname: card\nowner: risk-team\n---\nkind: entity\nname: [card\nowner: risk-team\n",
    );
    let run = q.run_in(
        work.path(),
        &with(&["apply", "-f", "defs/malformed.yaml"], target),
    );
    let line = run.error_line(1);
    let location = line
        .strip_prefix("error: defs/malformed.yaml:")
        .unwrap_or_else(|| panic!("{line}"));
    let (line_no, rest) = location.split_once(':').unwrap();
    let (column, rest) = rest.split_once(' ').unwrap();
    assert!(line_no.parse::<usize>().unwrap() >= 5, "{line}");
    assert!(column.parse::<usize>().is_ok(), "{line}");
    assert!(rest.starts_with("(document 2): "), "{line}");

    for case in BAD_INPUTS {
        let file = format!("defs/{}.yaml", case.name);
        write_file(work.path(), &file, case.yaml);
        for command in ["plan", "apply"] {
            let run = q.run_in(work.path(), &with(&[command, "-f", &file], target));
            if case.name == "changed-variant" && command == "plan" {
                // A conflict is a plan result, not an error.
                assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
                assert!(
                    run.stdout.contains("! conflict feature avg_amount_7d:v1 (fields: value_column) at defs/changed-variant.yaml:1\n"),
                    "{}",
                    run.stdout
                );
                continue;
            }
            let line = run.error_line(1);
            for needle in case.needles {
                assert!(
                    line.contains(needle),
                    "{}: {needle:?} not in {line}",
                    case.name
                );
            }
            assert!(
                !line.contains("documents["),
                "{}: origins must name files: {line}",
                case.name
            );
        }
        assert_eq!(
            catalog_snapshot(q, target),
            before,
            "{} changed the store",
            case.name
        );
    }

    if server_codes {
        for (case, code) in [
            ("dangling", "(dangling_reference)"),
            ("cycle", "(cycle)"),
            ("changed-variant", "(conflict)"),
        ] {
            let file = format!("defs/{case}.yaml");
            let run = q.run_in(work.path(), &with(&["apply", "-f", &file], target));
            let line = run.error_line(1);
            assert!(line.ends_with(code), "{case}: {line}");
        }
    }

    // The command line itself.
    let run = q.run(&with(&["list", "featurez"], target));
    assert!(
        run.error_line(2).contains("unknown kind `featurez`"),
        "{}",
        run.stderr
    );
    let run = q.run(&with(&["list", "features", "--status", "done"], target));
    assert!(
        run.error_line(2).contains("unknown status `done`"),
        "{}",
        run.stderr
    );
    let run = q.run(&["apply"]);
    assert!(run.error_line(2).contains("--file"), "{}", run.stderr);
    let run = q.run_in(
        work.path(),
        &with(&["apply", "-f", "defs/missing.yaml"], target),
    );
    assert!(
        run.error_line(1).contains("cannot read defs/missing.yaml"),
        "{}",
        run.stderr
    );
    assert_eq!(catalog_snapshot(q, target), before);
}

#[test]
fn bad_inputs_in_process() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    bad_inputs_are_refused(&q, &["--data-dir", data.path().to_str().unwrap()], false);
}

#[test]
fn bad_inputs_through_a_server() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    let server = q.serve(&["--data-dir", data.path().to_str().unwrap()]);
    bad_inputs_are_refused(&q, &["--server", server.url.as_str()], true);
}

#[test]
fn an_unreachable_server_is_one_clear_line() {
    let q = quiver();
    let url = closed_port_url();
    for args in [
        vec!["list", "features", "--server", &url],
        vec!["apply", "-f", "examples/quickstart/defs", "--server", &url],
    ] {
        let run = q.run(&args);
        let line = run.error_line(1);
        assert!(
            line.contains(&format!("cannot reach the Quiver server at {url}")),
            "{line}"
        );
        assert!(line.contains("quiver serve"), "{line}");
    }
    // QUIVER_SERVER stands for --server.
    let run = q.run_with(&repo_root(), &[("QUIVER_SERVER", url.as_str())], &["jobs"]);
    assert!(run
        .error_line(1)
        .contains(&format!("cannot reach the Quiver server at {url}")));
}

#[test]
fn serve_keeps_its_store_under_dot_quiver_by_default() {
    let q = quiver();
    let cwd = tempfile::tempdir().unwrap();
    let server = q.serve_in(cwd.path(), &[]);
    write_file(
        cwd.path(),
        "user.yaml",
        "kind: entity\nname: user\nowner: risk-team\n",
    );
    q.run_in(
        cwd.path(),
        &["apply", "-f", "user.yaml", "--server", &server.url],
    )
    .success();
    assert!(server.stop().success());
    assert!(
        cwd.path().join(".quiver/quiver.db").is_file(),
        "no .quiver/quiver.db under the working directory"
    );
    // In-process commands default to the same directory.
    let entities = q.run_in(cwd.path(), &["list", "entities", "--output", "json"]);
    assert_eq!(names(&entities.success().json()), ["user"]);
}

/// `serve --worker-threads`: zero, too many and non-numbers are one usage line before
/// anything starts; one thread serves.
#[test]
fn serve_checks_its_worker_threads_and_serves_with_one() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    for bad in ["0", "257", "two", ""] {
        let run = q.run(&[
            "serve",
            "--data-dir",
            dir,
            "--listen",
            "127.0.0.1:0",
            "--worker-threads",
            bad,
        ]);
        assert!(
            run.error_line(2).contains("--worker-threads"),
            "{bad:?}: {}",
            run.stderr
        );
    }
    let server = q.serve(&["--data-dir", dir, "--worker-threads", "1"]);
    q.run(&["list", "entities", "--server", &server.url])
        .success();
    assert!(server.stop().success());
}

#[test]
fn secrets_are_redacted_in_and_out_of_process() {
    let q = quiver();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let server = q.serve(&["--data-dir", data_dir]);
    let work = tempfile::tempdir().unwrap();
    write_file(
        work.path(),
        "warehouse.yaml",
        "kind: provider\nname: warehouse\nowner: risk-team\nconfig:\n  type: postgres\n  host: db.internal\n  database: analytics\n  user: quiver\n  password: hunter2-e2e-secret\n---\nkind: provider\nname: cache\nowner: risk-team\nconfig:\n  type: redis\n  address: redis.internal:6379\n  password: {env: QUIVER_REDIS_PASSWORD}\n",
    );
    q.run_in(
        work.path(),
        &["apply", "-f", "warehouse.yaml", "--server", &server.url],
    )
    .success();

    for target in [["--server", server.url.as_str()], ["--data-dir", data_dir]] {
        for args in [
            with(&["get", "provider", "warehouse"], &target),
            with(
                &["get", "provider", "warehouse", "--output", "json"],
                &target,
            ),
            with(&["list", "providers", "--output", "json"], &target),
            with(&["list", "providers"], &target),
        ] {
            let run = q.run(&args);
            run.success();
            assert!(
                !run.stdout.contains("hunter2"),
                "{args:?} leaked the secret:\n{}",
                run.stdout
            );
        }
        let yaml = q.run(&with(&["get", "provider", "warehouse"], &target));
        assert!(
            yaml.stdout.contains("password: '**redacted**'"),
            "{}",
            yaml.stdout
        );
        let yaml = q.run(&with(&["get", "provider", "cache"], &target));
        assert!(
            yaml.stdout.contains("env: QUIVER_REDIS_PASSWORD"),
            "{}",
            yaml.stdout
        );
    }
    assert!(
        !server.log().contains("hunter2"),
        "the server logged a secret:\n{}",
        server.log()
    );
}

#[test]
fn serve_on_postgres_applies_the_quickstart() {
    let q = quiver();
    let database = TempDatabase::create();
    let server = q.serve(&["--database-url", &database.url]);
    assert!(
        !server.log().contains(&database.url),
        "the database URL is not logged"
    );
    let remote = ["--server", server.url.as_str()];
    let defs = quickstart_defs();
    let defs = defs.to_str().unwrap();

    let apply = q.run(&with(&["apply", "-f", defs], &remote));
    assert!(
        apply
            .success()
            .stdout
            .ends_with("Applied: 18 created, 0 updated, 0 unchanged.\n"),
        "{}",
        apply.stdout
    );
    let features = q
        .run(&with(&["list", "features", "--output", "json"], &remote))
        .success()
        .json();
    assert_eq!(names(&features), FEATURES);

    // In-process on the same database sees the same catalog, and nothing to do.
    let env_url = [("QUIVER_DATABASE_URL", database.url.as_str())];
    let listed = q.run_with(
        &repo_root(),
        &env_url,
        &["list", "features", "--output", "json"],
    );
    assert_eq!(listed.success().json(), features);
    let local = ["--database-url", database.url.as_str()];
    assert_eq!(
        q.run(&with(&["list", "features", "--output", "json"], &local))
            .success()
            .json(),
        features
    );
    let plan = q.run(&with(&["plan", "-f", defs], &local));
    assert!(
        plan.success()
            .stdout
            .ends_with("Plan: 0 to create, 0 to update, 18 unchanged.\n"),
        "{}",
        plan.stdout
    );
    let again = q.run(&with(&["apply", "-f", defs], &remote));
    assert!(
        again
            .success()
            .stdout
            .ends_with("Applied: 0 created, 0 updated, 18 unchanged.\n"),
        "{}",
        again.stdout
    );

    assert!(server.stop().success());
}

/// A job that failed because its input was missing stays failed with its error; `quiver
/// jobs retry` queues it again (once), and `quiver jobs cancel` stops the retry.
#[test]
fn failed_jobs_can_be_retried_and_cancelled_from_the_command_line() {
    let q = quiver();
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("state");
    let data_dir = data_dir.to_str().unwrap();
    // No ./data in the server's working directory: every job's input is missing.
    let server = q.serve_in(work.path(), &["--data-dir", data_dir]);
    let remote = ["--server", server.url.as_str()];
    let defs = quickstart_defs();
    q.run(&with(&["apply", "-f", defs.to_str().unwrap()], &remote))
        .success();

    let wait = q.run(&with(&["jobs", "wait", "--timeout", "60s"], &remote));
    let line = wait.error_line(1);
    assert!(line.contains("failed"), "{line}");

    let failed = q.run(&with(
        &["jobs", "--state", "failed", "--output", "json"],
        &remote,
    ));
    failed.success();
    let page: serde_json::Value = serde_json::from_str(&failed.stdout).unwrap();
    let first = page["items"][0]["id"].as_i64().expect("a failed job");
    let id = first.to_string();

    let retried = q.run(&with(&["jobs", "retry", &id], &remote));
    retried.success();
    assert!(
        retried
            .stdout
            .starts_with(&format!("job {id} retried as job ")),
        "{}",
        retried.stdout
    );
    let new_id: String = retried
        .stdout
        .trim_start_matches(&format!("job {id} retried as job "))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    let again = q.run(&with(&["jobs", "retry", &id], &remote));
    let line = again.error_line(1);
    assert!(
        line.contains("already has job") || line.contains("only failed or cancelled"),
        "{line}"
    );

    let cancelled = q.run(&with(&["jobs", "cancel", &new_id], &remote));
    if cancelled.code == Some(0) {
        assert!(
            cancelled.stdout.contains("is cancelled"),
            "{}",
            cancelled.stdout
        );
    } else {
        // The coordinator may already have failed the retry again: nothing to cancel.
        assert!(
            cancelled.error_line(1).contains("invalid_job_state"),
            "{}",
            cancelled.stderr
        );
    }

    let unknown = q.run(&with(&["jobs", "retry", "999999"], &remote));
    assert!(
        unknown.error_line(1).contains("not found"),
        "{}",
        unknown.stderr
    );
}
