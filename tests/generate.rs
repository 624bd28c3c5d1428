//! `phygital generate` end to end: determinism (same seed ⇒ same bytes, whatever the chunk size) and ground
//! truth consistent with the data, checked through SQL with the engine.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use phygital::generate::{DEFAULT_START_DATE, GenerateOptions, GenerateReport, Table, generate};

const CUSTOMERS: u64 = 2000;
const DAY_US: i64 = 86_400_000_000;

/// A fresh folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "phygital-generate-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &FsPath {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn generate_into(dir: &TempDir, opts: &GenerateOptions) -> GenerateReport {
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    generate(store, &Path::default(), opts, &|_| {})
        .await
        .unwrap()
}

/// Every file under `dir` by relative path, with its bytes.
fn files(dir: &FsPath) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &FsPath, dir: &FsPath, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn options(seed: u64, chunk_customers: u64) -> GenerateOptions {
    GenerateOptions {
        customers: CUSTOMERS,
        seed,
        chunk_customers,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_writes_the_same_bytes_whatever_the_chunk_size() {
    let (a, b, c, d) = (
        TempDir::new("a"),
        TempDir::new("b"),
        TempDir::new("c"),
        TempDir::new("d"),
    );
    let report = generate_into(&a, &options(7, 500)).await;
    generate_into(&b, &options(7, 500)).await;
    generate_into(&c, &options(7, 333)).await;
    generate_into(&d, &options(8, 500)).await;
    let (fa, fb, fc, fd) = (
        files(a.path()),
        files(b.path()),
        files(c.path()),
        files(d.path()),
    );

    let expected: Vec<String> = Table::ALL
        .iter()
        .map(|t| format!("{}/part-00000.parquet", t.name()))
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        fa.keys().cloned().collect::<Vec<_>>(),
        expected_sorted,
        "one file per table at this size"
    );
    assert_eq!(
        report.total_bytes(),
        fa.values().map(|v| v.len() as u64).sum::<u64>()
    );

    for (name, bytes) in &fa {
        assert_eq!(
            Some(bytes),
            fb.get(name),
            "{name}: same seed must give the same bytes"
        );
        assert_eq!(
            Some(bytes),
            fc.get(name),
            "{name}: the chunk size must not change the output"
        );
    }
    let differing = fa
        .iter()
        .filter(|(name, bytes)| fd.get(*name) != Some(*bytes))
        .count();
    // Every customer table differs with the seed (the channel effects are parameters, equal across seeds).
    assert!(
        differing >= Table::ALL.len() - 2,
        "only {differing} files differ with another seed"
    );
}

/// `lower(trim(..))` plus the +tag and gmail rules, in SQL: the canonical e-mail form.
fn canonical_email(col: &str) -> String {
    let e = format!("lower(btrim({col}, chr(32) || chr(9)))");
    format!(
        "CASE WHEN split_part({e}, '@', 2) IN ('gmail.com', 'googlemail.com') \
              THEN replace(split_part(split_part({e}, '@', 1), '+', 1), '.', '') || '@gmail.com' \
              ELSE split_part(split_part({e}, '@', 1), '+', 1) || '@' || split_part({e}, '@', 2) END"
    )
}

/// Digits only, national prefix 8/7 or none: E.164 for Russian numbers.
fn canonical_phone(col: &str) -> String {
    let d = format!("regexp_replace({col}, '[^0-9]', '', 'g')");
    format!(
        "CASE WHEN length({d}) = 11 AND substr({d}, 1, 1) IN ('7', '8') THEN '+7' || substr({d}, 2) \
              WHEN length({d}) = 10 THEN '+7' || {d} END"
    )
}

fn trimmed(col: &str) -> String {
    format!("btrim({col}, chr(32) || chr(9))")
}

/// Builds the SQL expression of a column's canonical form.
type Canonicaliser = fn(&str) -> String;

/// Every identifier occurrence in the pipeline's input tables, canonicalised.
fn observed_identifiers() -> String {
    let sources: &[(&str, &str, &str, Canonicaliser)] = &[
        ("email", "web_events", "email", canonical_email),
        ("email", "marketing_touches", "email", canonical_email),
        ("email", "loyalty_accounts", "email_raw", canonical_email),
        ("phone", "pos_receipts", "phone_raw", canonical_phone),
        ("phone", "marketing_touches", "phone_raw", canonical_phone),
        ("phone", "loyalty_accounts", "phone_raw", canonical_phone),
        ("anonymous_id", "web_events", "anonymous_id", trimmed),
        ("anonymous_id", "marketing_touches", "anonymous_id", trimmed),
        ("anonymous_id", "qr_scans", "anonymous_id", trimmed),
        ("device_id", "app_events", "device_id", trimmed),
        ("app_account_id", "app_events", "app_account_id", trimmed),
        (
            "app_account_id",
            "marketing_touches",
            "app_account_id",
            trimmed,
        ),
        (
            "app_account_id",
            "loyalty_accounts",
            "app_account_id",
            trimmed,
        ),
        ("app_account_id", "qr_scans", "app_account_id", trimmed),
        ("loyalty_card", "pos_receipts", "loyalty_card", trimmed),
        ("loyalty_card", "loyalty_accounts", "loyalty_card", trimmed),
        ("loyalty_card", "qr_scans", "loyalty_card", trimmed),
        ("user_id", "web_events", "user_id", trimmed),
        // The CRM's customer keys are identifiers too.
        (
            "email",
            "(SELECT customer_key FROM crm_holdout WHERE key_type = 'email') h",
            "customer_key",
            canonical_email,
        ),
        (
            "app_account_id",
            "(SELECT customer_key FROM crm_holdout WHERE key_type = 'app_account_id') h",
            "customer_key",
            trimmed,
        ),
        (
            "loyalty_card",
            "(SELECT customer_key FROM crm_holdout WHERE key_type = 'loyalty_card') h",
            "customer_key",
            trimmed,
        ),
    ];
    sources
        .iter()
        .map(|(id_type, table, col, canon)| {
            format!(
                "SELECT '{id_type}' AS id_type, {} AS id_value FROM {table} WHERE {col} IS NOT NULL",
                canon(col)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The single row of `sql`, every column cast to Int64.
async fn ints(ctx: &SessionContext, sql: &str) -> Vec<Option<i64>> {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap();
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .unwrap_or_else(|| panic!("{sql}: no row"));
    batch
        .columns()
        .iter()
        .map(|c| {
            let c = cast(c, &DataType::Int64).unwrap();
            let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
            c.is_valid(0).then(|| c.value(0))
        })
        .collect()
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    ints(ctx, &format!("SELECT count(*) FROM ({sql})")).await[0].unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ground_truth_is_consistent_with_the_data() {
    let dir = TempDir::new("truth");
    let report = generate_into(&dir, &options(11, 700)).await;
    let (ctx, _root) = phygital::session::open(&dir.path().to_string_lossy(), &Default::default())
        .await
        .unwrap();

    // Narrow, stable types survive the round trip through Parquet.
    let receipts = ctx.table("pos_receipts").await.unwrap();
    let schema = receipts.schema();
    assert_eq!(
        schema.field_with_name(None, "amount").unwrap().data_type(),
        &DataType::Decimal128(12, 2)
    );
    assert_eq!(
        schema
            .field_with_name(None, "receipt_ts")
            .unwrap()
            .data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert!(matches!(
        schema.field_with_name(None, "items").unwrap().data_type(),
        DataType::List(_)
    ));

    // Every person once; row counts agree with the report.
    assert_eq!(
        count(&ctx, "SELECT DISTINCT person_id FROM truth_people").await,
        CUSTOMERS as i64
    );
    for t in Table::ALL {
        let rows = count(&ctx, &format!("SELECT * FROM {}", t.name())).await;
        assert_eq!(rows as u64, report.table(*t).unwrap().rows, "{}", t.name());
    }

    // Each identifier belongs to exactly one person, and junk to nobody.
    assert_eq!(
        count(
            &ctx,
            "SELECT id_type, id_value FROM truth_identifiers GROUP BY 1, 2 HAVING count(*) > 1"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &ctx,
            "SELECT * FROM truth_identifiers JOIN truth_junk USING (id_type, id_value)"
        )
        .await,
        0
    );
    let types = count(&ctx, "SELECT DISTINCT id_type FROM truth_identifiers").await;
    assert_eq!(types, 7, "all seven identifier types appear");

    // Truth and data agree both ways, after canonicalisation: every truth identifier occurs in the data, and
    // every identifier in the data is either someone's or listed junk.
    let observed = observed_identifiers();
    let missing = count(
        &ctx,
        &format!("SELECT id_type, id_value FROM truth_identifiers EXCEPT SELECT id_type, id_value FROM ({observed})"),
    )
    .await;
    assert_eq!(missing, 0, "truth identifiers absent from the data");
    let unexplained = count(
        &ctx,
        &format!(
            "SELECT id_type, id_value FROM ({observed}) WHERE id_value IS NOT NULL \
             EXCEPT SELECT id_type, id_value FROM truth_identifiers \
             EXCEPT SELECT id_type, id_value FROM truth_junk"
        ),
    )
    .await;
    assert_eq!(
        unexplained, 0,
        "identifiers in the data that are neither truth nor junk"
    );
    // The junk was injected: the stores' phones at the till, the shared tablet, placeholders, test e-mails.
    let injected = count(
        &ctx,
        &format!(
            "SELECT DISTINCT kind FROM truth_junk JOIN ({observed}) o USING (id_type, id_value)"
        ),
    )
    .await;
    assert_eq!(injected, 5, "every kind of junk occurs in the data");
    // Raw noise exists: raw values differ from canonical ones.
    assert!(
        count(
            &ctx,
            "SELECT * FROM web_events WHERE email IS NOT NULL AND email <> lower(trim(email))"
        )
        .await
            > 0
    );
    assert!(
        count(
            &ctx,
            "SELECT * FROM pos_receipts WHERE phone_raw LIKE '8 (%'"
        )
        .await
            > 0
    );

    // Orders and receipts have positive amounts; receipt lines add up to the amount.
    assert_eq!(
        count(
            &ctx,
            "SELECT * FROM pos_receipts WHERE amount <= 0 OR currency <> 'RUB'"
        )
        .await,
        0
    );
    for table in ["web_events", "app_events"] {
        let bad = count(
            &ctx,
            &format!("SELECT * FROM {table} WHERE order_id IS NOT NULL AND (revenue IS NULL OR revenue <= 0)"),
        )
        .await;
        assert_eq!(bad, 0, "{table}");
        assert!(
            count(
                &ctx,
                &format!("SELECT DISTINCT order_id FROM {table} WHERE order_id IS NOT NULL")
            )
            .await
                > 0
        );
    }
    let unbalanced = count(
        &ctx,
        "SELECT receipt_id FROM (SELECT receipt_id, amount, unnest(items) AS line FROM pos_receipts) \
         GROUP BY receipt_id, amount HAVING sum(line['qty'] * line['unit_price']) <> amount",
    )
    .await;
    assert_eq!(unbalanced, 0);
    assert_eq!(
        count(
            &ctx,
            "SELECT receipt_id FROM pos_receipts GROUP BY 1 HAVING count(*) > 1"
        )
        .await,
        0
    );

    // Both CRM groups, about 10 % held out.
    let groups = ints(
        &ctx,
        "SELECT count(*) FILTER (WHERE \"group\" = 'control'), count(*) FILTER (WHERE \"group\" = 'target'), \
                count(*) FILTER (WHERE \"group\" NOT IN ('control', 'target')) FROM crm_holdout",
    )
    .await;
    let (control, target) = (groups[0].unwrap(), groups[1].unwrap());
    assert!(control > 0 && target > 0 && groups[2] == Some(0));
    let share = control as f64 / (control + target) as f64;
    assert!((0.05..0.16).contains(&share), "control share {share}");
    assert_eq!(
        count(&ctx, "SELECT * FROM crm_holdout WHERE key_type NOT IN ('loyalty_card', 'email', 'app_account_id')").await,
        0
    );

    // Every timestamp inside the period (accounts may predate it).
    let start = i64::from(DEFAULT_START_DATE) * DAY_US;
    let end = start + 120 * DAY_US;
    for (table, col) in [
        ("web_events", "event_ts"),
        ("app_events", "event_ts"),
        ("pos_receipts", "receipt_ts"),
        ("marketing_touches", "touch_ts"),
        ("qr_scans", "scan_ts"),
    ] {
        let range = ints(
            &ctx,
            &format!("SELECT min(CAST({col} AS BIGINT)), max(CAST({col} AS BIGINT)) FROM {table}"),
        )
        .await;
        let (lo, hi) = (range[0].unwrap(), range[1].unwrap());
        assert!(
            lo >= start && hi < end,
            "{table}.{col} spans {lo}..{hi}, period {start}..{end}"
        );
    }
    let registered = ints(
        &ctx,
        "SELECT max(CAST(registered_ts AS BIGINT)) FROM loyalty_accounts",
    )
    .await;
    assert!(registered[0].unwrap() < end);

    // The true effects are there for estimators to be checked against.
    let crm = ints(
        &ctx,
        "SELECT count(*) FILTER (WHERE metric = 'ate_revenue_per_customer' AND value > 0), \
                count(*) FILTER (WHERE metric = 'relative_lift' AND value > 0 AND value < 1) FROM truth_crm_effect",
    )
    .await;
    assert_eq!(crm, vec![Some(1), Some(1)]);
    assert_eq!(
        count(&ctx, "SELECT DISTINCT channel FROM truth_channel_effects").await,
        11
    );
    assert_eq!(
        count(&ctx, "SELECT DISTINCT channel FROM marketing_touches").await,
        11,
        "every channel has touches"
    );
    // Linking evidence arrives the way retail data has it: CRM clicks record the landing cookie or app,
    // guests leave e-mails on the site, signed-in cookies carry the user id on browsing events.
    for (what, sql) in [
        (
            "CRM clicks landing on the site",
            "SELECT * FROM marketing_touches WHERE channel IN ('email', 'sms') AND anonymous_id IS NOT NULL",
        ),
        (
            "CRM links opening the app",
            "SELECT * FROM marketing_touches WHERE channel IN ('email', 'sms') AND app_account_id IS NOT NULL",
        ),
        (
            "guest e-mail captures",
            "SELECT * FROM web_events WHERE event_name = 'email_capture' AND email IS NOT NULL",
        ),
        (
            "signed-in browsing",
            "SELECT * FROM web_events WHERE event_name = 'page_view' AND user_id IS NOT NULL",
        ),
        (
            "app-issued loyalty cards",
            "SELECT * FROM loyalty_accounts WHERE app_account_id IS NOT NULL AND store_id IS NULL",
        ),
    ] {
        assert!(count(&ctx, sql).await > 0, "no {what}");
    }
    // ... and a minority of cookies never carries anything else: one page, then gone.
    let cookies = ints(
        &ctx,
        "SELECT count(*), count(*) FILTER (WHERE events = 1) FROM          (SELECT anonymous_id, count(*) AS events FROM web_events GROUP BY 1)",
    )
    .await;
    let bounced = cookies[1].unwrap() as f64 / cookies[0].unwrap() as f64;
    assert!(
        (0.01..0.15).contains(&bounced),
        "one-event cookies {bounced}"
    );

    // Segments are all there, and some customers are hard to link.
    assert_eq!(
        count(&ctx, "SELECT DISTINCT segment FROM truth_people").await,
        3
    );
    assert!(count(&ctx, "SELECT * FROM truth_people WHERE hard_to_link").await > 0);
}
