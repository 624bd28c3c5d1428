//! `shapley_attribution('<paths>' [, method])`: Shapley-value attribution as a table function
//! (the kernels are in [`super::shapley`]).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::Documentation;
use datafusion_macros::user_doc;

use super::paths_input::{
    AggregatedPaths, ChannelCredit, PathsModel, PathsModelTable, credits_batch, credits_schema,
    literal_string, paths_argument,
};
use super::shapley;
use crate::DocumentedTableFunction;

const NAME: &str = "shapley_attribution";

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"Data-driven attribution by Shapley values over aggregated paths.

The paths argument is a query or a table name whose result has the columns `path` (list of channel names in time order; List or LargeList of any string type), `conversions`, `revenue` and `nulls` (non-converting occurrences of the path), numbers of any numeric type, fractional allowed. Rows with the same path are added up; the query is planned when the function's result is scanned.

Methods: `'simplified'` (default; Zhao et al. 2018): each path's conversions and revenue are split equally among its distinct channels, which is the exact Shapley value of the game where a coalition of channels is worth the conversions of the journeys that touched only its channels. `'exact'`: the same game evaluated by the Shapley formula over all coalitions (same values; at most 15 channels, more is an error). `'leave_one_out'` (Google fractribution's "shapley"): per path, each position gets `max(p(path) − p(path without it), 0)` with `p = conversions / (conversions + nulls)` of the observed paths, normalised per path, the last channel taking everything when all are 0.

Output: `channel, conversions, revenue, share`, one row per channel, with `share` = the channel's part of all conversions (NULL when there are none). Channel totals add up exactly to the input's conversions and revenue; conversions with an empty path are reported in an `(unattributed)` row. NULL paths, NULL channels, NULL, negative or non-finite numbers and revenue without conversions are errors naming the column and the path."#,
    syntax_example = "shapley_attribution(paths [, method])",
    sql_example = r#"```sql
> select * from shapley_attribution('paths', 'simplified') order by channel;
+---------+-------------+---------+---------------------+
| channel | conversions | revenue | share               |
+---------+-------------+---------+---------------------+
| a       | 5.5         | 55.0    | 0.5                 |
| b       | 3.5         | 35.0    | 0.3181818181818182  |
| c       | 2.0         | 20.0    | 0.18181818181818182 |
+---------+-------------+---------+---------------------+
```"#,
    argument(
        name = "paths",
        description = "A string literal: a query (`SELECT …`, `WITH …`, `VALUES …`) or a table name, with the columns `path`, `conversions`, `revenue`, `nulls`."
    ),
    argument(
        name = "method",
        description = "`'simplified'` (default), `'exact'` or `'leave_one_out'`."
    )
)]
#[derive(Debug, Default)]
pub struct ShapleyAttributionFunc;

impl DocumentedTableFunction for ShapleyAttributionFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for ShapleyAttributionFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() > 2 {
            return plan_err!(
                "{NAME}: expected (paths [, method]), got {} arguments",
                exprs.len()
            );
        }
        let source = paths_argument(NAME, exprs.first())?;
        let method = match exprs.get(1) {
            Some(expr) => {
                let text = literal_string(NAME, "method", expr)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "simplified" => ShapleyMethod::Simplified,
                    "exact" => ShapleyMethod::Exact,
                    "leave_one_out" => ShapleyMethod::LeaveOneOut,
                    _ => {
                        return plan_err!(
                            "{NAME}: unknown method '{text}'; valid methods: simplified, exact, leave_one_out"
                        );
                    }
                }
            }
            None => ShapleyMethod::Simplified,
        };
        Ok(Arc::new(PathsModelTable::new(
            source,
            Arc::new(ShapleyModel { method }),
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShapleyMethod {
    Simplified,
    Exact,
    LeaveOneOut,
}

impl ShapleyMethod {
    fn name(self) -> &'static str {
        match self {
            Self::Simplified => "simplified",
            Self::Exact => "exact",
            Self::LeaveOneOut => "leave_one_out",
        }
    }
}

#[derive(Debug)]
struct ShapleyModel {
    method: ShapleyMethod,
}

impl PathsModel for ShapleyModel {
    fn function(&self) -> &'static str {
        NAME
    }

    fn parameters(&self) -> String {
        format!("method={}", self.method.name())
    }

    fn schema(&self) -> SchemaRef {
        credits_schema("share")
    }

    fn attribute(&self, paths: &AggregatedPaths) -> Result<RecordBatch> {
        let credits = match self.method {
            ShapleyMethod::Simplified => shapley::simplified(paths),
            ShapleyMethod::Exact => shapley::exact(paths)?,
            ShapleyMethod::LeaveOneOut => shapley::leave_one_out(paths),
        };
        let total = paths.attributable_totals().conversions + paths.unattributed.conversions;
        let share = |conversions: f64| (total > 0.0).then(|| conversions / total);
        let rows: Vec<ChannelCredit> = credits
            .conversions
            .iter()
            .zip(&credits.revenue)
            .map(|(&conversions, &revenue)| ChannelCredit {
                conversions,
                revenue,
                measure: share(conversions),
            })
            .collect();
        credits_batch(
            &self.schema(),
            paths,
            &rows,
            share(paths.unattributed.conversions),
        )
    }
}
