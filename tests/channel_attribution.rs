//! ChannelAttribution (pip `channelattribution`, GPL: run only as a separate Python process, never
//! linked) as the external oracle of issue 4: on the benchmark generator's journeys, phygital's exact
//! `markov_attribution` agrees with ChannelAttribution's Monte-Carlo `markov_model` within its noise
//! (run at a tight tolerance, noise estimated from its spread over independent seeds), and the
//! first/last/linear heuristics agree exactly.
//!
//! The Python side is `benches/peers/channel_attribution.py` from the `bench` virtualenv of
//! `tests/services/test-services.sh` (installed once, cached under the target dir); if it cannot be
//! installed the test fails with the reason.

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "../benches/attribution/journeys.rs"]
#[allow(dead_code)] // the touches writer is the rule-model benchmark's
mod journeys;
#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use phygital::session::{EngineOptions, build_context};
use serde_json::Value;
use temp_dir::TempDir;

const JOURNEYS: usize = 20_000;
const ORDERS: [usize; 2] = [1, 2];
/// ChannelAttribution's run `r` of seed `s` draws from generator `s + r` (nfold = 10 runs): seeds closer
/// than 10 share generators, and their spread understates the noise. These are independent.
const SEEDS: &str = "0,1000,2000,3000";
/// Allowed difference from ChannelAttribution's mean over seeds, as a multiple of its spread over
/// those seeds, and a floor for channels where the seeds happen to agree closely.
const NOISE_MULTIPLE: f64 = 2.0;
const NOISE_FLOOR: f64 = 0.005;

type Credits = BTreeMap<String, f64>;

async fn query_credits(ctx: &SessionContext, sql: &str, column: usize) -> Credits {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Credits::new();
    for batch in &batches {
        let channels = cast(batch.column(0), &DataType::Utf8).unwrap();
        let values = cast(batch.column(column), &DataType::Float64).unwrap();
        let (channels, values) = (
            channels.as_string::<i32>(),
            values.as_primitive::<Float64Type>(),
        );
        for row in 0..batch.num_rows() {
            assert!(
                channels.is_valid(row) && values.is_valid(row),
                "NULL in {sql}"
            );
            if channels.value(row) != "(unattributed)" {
                out.insert(channels.value(row).to_string(), values.value(row));
            }
        }
    }
    out
}

fn their_credits(value: &Value) -> Credits {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected credits, got {value}"))
        .iter()
        .map(|(channel, v)| (channel.clone(), v.as_f64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markov_and_heuristics_agree_with_channel_attribution() {
    let dir = TempDir::new("ca-oracle").unwrap();
    let path = dir.path().join("journeys.parquet");
    journeys::write_journeys(&path, JOURNEYS).unwrap();
    let file = path.to_str().unwrap().to_string();

    let python = common::peers::bench_python().unwrap_or_else(|e| panic!("{e}"));
    let orders = ORDERS.map(|o| o.to_string()).join(",");
    let args = [
        file.clone(),
        orders,
        SEEDS.into(),
        "0".into(),
        "1".into(),
        "1".into(),
    ];
    let theirs = common::peers::run_peer(&python, "channel_attribution.py", &args)
        .unwrap_or_else(|e| panic!("{e}"));

    let ctx = build_context(&EngineOptions {
        target_partitions: 4,
        ..EngineOptions::default()
    })
    .unwrap();
    ctx.register_parquet("journeys", &file, ParquetReadOptions::default())
        .await
        .unwrap();

    let seeds: Vec<&str> = SEEDS.split(',').collect();
    for order in ORDERS {
        let sql = format!(
            "SELECT channel, conversions, revenue FROM markov_attribution('SELECT path, conversions, revenue, nulls FROM journeys', {order})"
        );
        for (column, measure) in [(1, "conversions"), (2, "revenue")] {
            let ours = query_credits(&ctx, &sql, column).await;
            assert_eq!(ours.len(), journeys::CHANNELS.len(), "{ours:?}");
            let samples: Vec<Credits> = seeds
                .iter()
                .map(|seed| {
                    their_credits(
                        &theirs.values["markov"][order.to_string()]["seeds"][*seed][measure],
                    )
                })
                .collect();
            for (channel, value) in &ours {
                let values: Vec<f64> = samples.iter().map(|s| s[channel]).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let spread = values.iter().cloned().fold(f64::MIN, f64::max)
                    - values.iter().cloned().fold(f64::MAX, f64::min);
                let allowed = (NOISE_MULTIPLE * spread).max(NOISE_FLOOR * mean);
                assert!(
                    (value - mean).abs() <= allowed,
                    "order {order} {measure} of {channel}: phygital {value}, ChannelAttribution {values:?} (allowed ±{allowed})"
                );
            }
        }
    }

    // Heuristics: exact, every channel and both measures.
    for (model, their_model) in [
        ("first_touch", "first_touch"),
        ("last_touch", "last_touch"),
        ("linear", "linear_touch"),
    ] {
        let sql = format!(
            "SELECT channel, sum(w * conversions), sum(w * revenue) FROM (SELECT unnest(path) AS channel, \
             unnest(attribution_weights('{model}', path, touch_ts, conversion_ts)) AS w, conversions, revenue \
             FROM journeys WHERE conversions > 0) GROUP BY channel"
        );
        for (column, measure) in [(1, "conversions"), (2, "revenue")] {
            let ours = query_credits(&ctx, &sql, column).await;
            let reference = their_credits(&theirs.values["heuristics"][their_model][measure]);
            for (channel, value) in &ours {
                let other = reference.get(channel).copied().unwrap_or(0.0);
                assert!(
                    (value - other).abs() <= 1e-9 * other.abs().max(1.0),
                    "{model} {measure} of {channel}: phygital {value}, ChannelAttribution {other}"
                );
            }
        }
    }
}
