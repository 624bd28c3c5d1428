//! Cross-channel attribution: path transforms over channel paths, rule-based credit models
//! (as a window function over touches, as a scalar function over grouped paths and as an
//! aggregate of channel credit over grouped paths) and the data-driven models over aggregated
//! paths.

pub mod attribution_channel_credit;
pub mod attribution_weight;
pub mod attribution_weights;
mod channel_paths;
mod markov;
pub mod markov_attribution;
pub mod path_exposure;
pub mod path_first;
pub mod path_frequency;
pub mod path_remove_if_last_and_not_all;
pub mod path_remove_if_not_all;
mod path_transform;
pub mod path_trim_long;
pub mod path_unique;
mod paths_input;
mod shapley;
pub mod shapley_attribution;
#[cfg(test)]
mod test_paths;
mod weights;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};

use crate::DocumentedTableFunction;

pub use attribution_channel_credit::attribution_channel_credit_udaf;
pub use attribution_weight::attribution_weight_udwf;
pub use attribution_weights::attribution_weights_udf;
pub use markov_attribution::MarkovAttributionFunc;
pub use path_exposure::path_exposure_udf;
pub use path_first::path_first_udf;
pub use path_frequency::path_frequency_udf;
pub use path_remove_if_last_and_not_all::path_remove_if_last_and_not_all_udf;
pub use path_remove_if_not_all::path_remove_if_not_all_udf;
pub use path_trim_long::path_trim_long_udf;
pub use path_unique::path_unique_udf;
pub use shapley_attribution::ShapleyAttributionFunc;

/// The scalar functions of this module.
pub fn scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        path_unique_udf(),
        path_exposure_udf(),
        path_first_udf(),
        path_frequency_udf(),
        path_remove_if_not_all_udf(),
        path_remove_if_last_and_not_all_udf(),
        path_trim_long_udf(),
        attribution_weights_udf(),
    ]
}

/// The aggregate functions of this module.
pub fn aggregate_udfs() -> Vec<Arc<AggregateUDF>> {
    vec![attribution_channel_credit_udaf()]
}

/// The window functions of this module.
pub fn window_udfs() -> Vec<Arc<WindowUDF>> {
    vec![attribution_weight_udwf()]
}

/// The table functions of this module.
pub fn table_functions() -> Vec<Arc<dyn DocumentedTableFunction>> {
    vec![
        Arc::new(MarkovAttributionFunc),
        Arc::new(ShapleyAttributionFunc),
    ]
}
