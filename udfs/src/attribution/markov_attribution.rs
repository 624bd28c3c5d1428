//! `markov_attribution('<paths>' [, order [, 'output']])`: exact Markov-chain attribution as a
//! table function (the kernel is in [`super::markov`]).

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::Documentation;
use datafusion_macros::user_doc;

use super::markov::{MAX_ORDER, MarkovChain};
use super::paths_input::{
    AggregatedPaths, ChannelCredit, PathsModel, PathsModelTable, TRANSITIONS_SCHEMA, credits_batch,
    credits_schema, literal_integer, literal_string, paths_argument,
};
use crate::DocumentedTableFunction;

const NAME: &str = "markov_attribution";

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"Data-driven attribution by an absorbing Markov chain over aggregated paths, solved exactly (no simulation), with the semantics of the ChannelAttribution package.

The paths argument is a query or a table name whose result has the columns `path` (list of channel names in time order; List or LargeList of any string type), `conversions`, `revenue` and `nulls` (non-converting occurrences of the path), numbers of any numeric type, fractional allowed. Rows with the same path are added up; the query is planned when the function's result is scanned.

States: at order 1 one state per channel, consecutive repeats collapsed; at order k the windows of k consecutive channels, named `a > b`, a shorter path being one state of all its channels. Every path starts in `(start)` and ends in `(conversion)` (weight `conversions`) and `(null)` (weight `nulls`).

The removal effect of a channel is `1 − P(conversion without the channel) / P(conversion)`, which equals P(the walk visits the channel | conversion). A channel's conversions are its removal effect over the sum of all removal effects times the total conversions; its revenue is the same with the value removal effect, where a conversion's value is the mean revenue per conversion of the paths ending in the walk's last state (ChannelAttribution's rule). Channel totals add up exactly to the input's conversions and revenue; conversions with an empty path are reported in an `(unattributed)` row. The chain is solved by a bracketing Gauss-Seidel iteration to a proven relative error below 1e-13, which fails with an error on chains whose walks almost never end.

NULL paths, NULL channels, NULL, negative or non-finite numbers and revenue without conversions are errors naming the column and the path."#,
    syntax_example = "markov_attribution(paths [, order [, output]])",
    sql_example = r#"```sql
> select * from markov_attribution('select path, conversions, revenue, nulls from paths', 1) order by channel;
+---------+-------------+---------+--------------------+
| channel | conversions | revenue | removal_effect     |
+---------+-------------+---------+--------------------+
| a       | 0.8         | 16.0    | 0.6666666666666667 |
| b       | 1.2         | 24.0    | 1.0                |
+---------+-------------+---------+--------------------+
```"#,
    argument(
        name = "paths",
        description = "A string literal: a query (`SELECT …`, `WITH …`, `VALUES …`) or a table name, with the columns `path`, `conversions`, `revenue`, `nulls`."
    ),
    argument(
        name = "order",
        description = "The order of the chain, an integer literal from 1 to 4 (default 1)."
    ),
    argument(
        name = "output",
        description = "`'credits'` (default): `channel, conversions, revenue, removal_effect`, one row per channel (removal_effect NULL when nothing converts). `'transitions'`: `from_state, to_state, probability`, every transition with a positive probability."
    )
)]
#[derive(Debug, Default)]
pub struct MarkovAttributionFunc;

impl DocumentedTableFunction for MarkovAttributionFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for MarkovAttributionFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() > 3 {
            return plan_err!(
                "{NAME}: expected (paths [, order [, output]]), got {} arguments",
                exprs.len()
            );
        }
        let source = paths_argument(NAME, exprs.first())?;
        let order = match exprs.get(1) {
            Some(expr) => literal_integer(NAME, "order", expr)?,
            None => 1,
        };
        let order = match usize::try_from(order) {
            Ok(order) if (1..=MAX_ORDER).contains(&order) => order,
            _ => return plan_err!("{NAME}: order must be between 1 and {MAX_ORDER}, got {order}"),
        };
        let output = match exprs.get(2) {
            Some(expr) => {
                let text = literal_string(NAME, "output", expr)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "credits" => MarkovOutput::Credits,
                    "transitions" => MarkovOutput::Transitions,
                    _ => {
                        return plan_err!(
                            "{NAME}: unknown output '{text}'; valid outputs: credits, transitions"
                        );
                    }
                }
            }
            None => MarkovOutput::Credits,
        };
        let model = MarkovModel { order, output };
        Ok(Arc::new(PathsModelTable::new(source, Arc::new(model))))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkovOutput {
    Credits,
    Transitions,
}

#[derive(Debug)]
struct MarkovModel {
    order: usize,
    output: MarkovOutput,
}

impl PathsModel for MarkovModel {
    fn function(&self) -> &'static str {
        NAME
    }

    fn parameters(&self) -> String {
        let output = match self.output {
            MarkovOutput::Credits => "credits",
            MarkovOutput::Transitions => "transitions",
        };
        format!("order={}, output={output}", self.order)
    }

    fn schema(&self) -> SchemaRef {
        match self.output {
            MarkovOutput::Credits => credits_schema("removal_effect"),
            MarkovOutput::Transitions => Arc::clone(&TRANSITIONS_SCHEMA),
        }
    }

    fn attribute(&self, paths: &AggregatedPaths) -> Result<RecordBatch> {
        let chain = MarkovChain::build(paths, self.order)?;
        match self.output {
            MarkovOutput::Credits => credits(&chain, paths, &self.schema()),
            MarkovOutput::Transitions => transitions(&chain, paths),
        }
    }
}

fn credits(
    chain: &MarkovChain,
    paths: &AggregatedPaths,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mut credits = vec![ChannelCredit::default(); paths.channels.len()];
    if let Some(effects) = chain.removal_effects()? {
        let (total_conversions, total_revenue) = chain.totals();
        let conversion_sum: f64 = effects.conversion.iter().sum();
        let value_sum: f64 = effects.value.iter().sum();
        for (channel, credit) in credits.iter_mut().enumerate() {
            let effect = effects.conversion[channel];
            credit.measure = Some(effect);
            if conversion_sum > 0.0 {
                credit.conversions = effect / conversion_sum * total_conversions;
            }
            if value_sum > 0.0 {
                credit.revenue = effects.value[channel] / value_sum * total_revenue;
            }
        }
    }
    credits_batch(schema, paths, &credits, None)
}

fn transitions(chain: &MarkovChain, paths: &AggregatedPaths) -> Result<RecordBatch> {
    let transitions = chain.transitions(&paths.channels);
    let mut from = StringBuilder::new();
    let mut to = StringBuilder::new();
    for transition in &transitions {
        from.append_value(&transition.from);
        to.append_value(&transition.to);
    }
    let probability: Float64Array = transitions.iter().map(|t| Some(t.probability)).collect();
    Ok(RecordBatch::try_new(
        Arc::clone(&TRANSITIONS_SCHEMA),
        vec![
            Arc::new(from.finish()),
            Arc::new(to.finish()),
            Arc::new(probability),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::paths_input::PathTotals;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;

    #[test]
    fn credits_reconcile_with_the_input_totals() -> Result<()> {
        let rows: Vec<(&[&str], PathTotals)> = vec![
            (
                &["a", "b", "c"],
                PathTotals {
                    conversions: 2.5,
                    revenue: 130.25,
                    nulls: 3.0,
                },
            ),
            (
                &["c", "a"],
                PathTotals {
                    conversions: 1.0,
                    revenue: 9.99,
                    nulls: 7.0,
                },
            ),
            (
                &["b"],
                PathTotals {
                    conversions: 0.0,
                    revenue: 0.0,
                    nulls: 5.0,
                },
            ),
            (
                &["d", "b", "d"],
                PathTotals {
                    conversions: 4.0,
                    revenue: 1000.0,
                    nulls: 1.0,
                },
            ),
            (
                &[],
                PathTotals {
                    conversions: 3.0,
                    revenue: 77.0,
                    nulls: 0.0,
                },
            ),
        ];
        let paths = AggregatedPaths::from_rows(NAME, &rows)?;
        for order in 1..=MAX_ORDER {
            let model = MarkovModel {
                order,
                output: MarkovOutput::Credits,
            };
            let batch = model.attribute(&paths)?;
            let channel = batch.column(0).as_string::<i32>();
            let conversions = batch.column(1).as_primitive::<Float64Type>();
            let revenue = batch.column(2).as_primitive::<Float64Type>();
            assert_eq!(channel.value(batch.num_rows() - 1), "(unattributed)");
            let total_conversions: f64 = conversions.values().iter().sum();
            let total_revenue: f64 = revenue.values().iter().sum();
            assert!(
                (total_conversions - 10.5).abs() < 1e-9,
                "order {order}: {total_conversions}"
            );
            assert!(
                (total_revenue - 1217.24).abs() < 1e-9,
                "order {order}: {total_revenue}"
            );
        }
        Ok(())
    }
}
