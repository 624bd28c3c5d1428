//! Identity normalisation: the canonical forms of the identifiers identity stitching links
//! (e-mail addresses, phone numbers, device and account ids, loyalty cards) and their keyed
//! pseudonyms.

pub mod hash_identifier;
pub mod identity_churn;
pub mod identity_explain;
pub mod identity_quality;
pub mod normalize_email;
pub mod normalize_identifier;
pub mod normalize_phone;
mod quality_metrics;
pub mod stitch;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

use crate::DocumentedTableFunction;

pub use hash_identifier::hash_identifier_udf;
pub use normalize_email::normalize_email_udf;
pub use normalize_identifier::normalize_identifier_udf;
pub use normalize_phone::normalize_phone_udf;

/// The scalar functions of this module.
pub fn scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        normalize_email_udf(),
        normalize_phone_udf(),
        normalize_identifier_udf(),
        hash_identifier_udf(),
    ]
}

/// The table functions of this module.
pub fn table_functions() -> Vec<Arc<dyn DocumentedTableFunction>> {
    vec![
        Arc::new(stitch::IdentityStitchFunc),
        Arc::new(identity_quality::IdentityQualityFunc),
        Arc::new(identity_explain::IdentityExplainFunc),
        Arc::new(identity_churn::IdentityChurnFunc),
    ]
}
