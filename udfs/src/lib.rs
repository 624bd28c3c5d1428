//! phygital's SQL functions for Apache DataFusion: identity normalisation, stitching and
//! attribution.
//!
//! The crate knows nothing about storage or BigQuery. Any DataFusion program can use it:
//!
//! ```no_run
//! use datafusion::prelude::SessionContext;
//!
//! let mut ctx = SessionContext::new();
//! phygital_udfs::register_all(&mut ctx).expect("phygital functions register");
//! ```
//!
//! Every function is listed once, in [`all_functions`]; registration ([`register_all`]) and the
//! reference documentation ([`documentation_markdown`]) both read that list.

mod arguments;
pub mod attribution;
mod documentation;
pub mod identity;
mod query_argument;
mod short_name;
mod string_kernel;
#[cfg(test)]
mod test_harness;

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use documentation::documentation_markdown;

/// A table function (`SELECT * FROM f(...)`) with its documentation: DataFusion's
/// [`TableFunctionImpl`] has no name or documentation hook of its own.
pub trait DocumentedTableFunction: TableFunctionImpl {
    /// The name SQL calls it by.
    fn name(&self) -> &str;
    /// Its user documentation (from `#[user_doc]` on the implementing struct).
    fn documentation(&self) -> Option<&Documentation>;
}

/// One SQL function of this crate, of any kind.
#[derive(Debug, Clone)]
pub enum PhygitalFunction {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
    Window(Arc<WindowUDF>),
    Table(Arc<dyn DocumentedTableFunction>),
}

impl PhygitalFunction {
    /// The name SQL calls it by.
    pub fn name(&self) -> &str {
        match self {
            Self::Scalar(f) => f.name(),
            Self::Aggregate(f) => f.name(),
            Self::Window(f) => f.name(),
            Self::Table(f) => f.name(),
        }
    }

    /// Other names SQL accepts for it.
    pub fn aliases(&self) -> &[String] {
        match self {
            Self::Scalar(f) => f.aliases(),
            Self::Aggregate(f) => f.aliases(),
            Self::Window(f) => f.aliases(),
            Self::Table(_) => &[],
        }
    }

    /// Its user documentation (from `#[user_doc]`).
    pub fn documentation(&self) -> Option<&Documentation> {
        match self {
            Self::Scalar(f) => f.documentation(),
            Self::Aggregate(f) => f.documentation(),
            Self::Window(f) => f.documentation(),
            Self::Table(f) => f.documentation(),
        }
    }

    /// "scalar", "aggregate", "window" or "table", for documentation.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Scalar(_) => "scalar",
            Self::Aggregate(_) => "aggregate",
            Self::Window(_) => "window",
            Self::Table(_) => "table",
        }
    }
}

/// Every scalar function of this crate.
pub fn all_scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    let mut udfs = identity::scalar_udfs();
    udfs.extend(attribution::scalar_udfs());
    udfs
}

/// Every function of this crate: the single list that registration and documentation read.
pub fn all_functions() -> Vec<PhygitalFunction> {
    all_scalar_udfs()
        .into_iter()
        .map(PhygitalFunction::Scalar)
        .chain(
            attribution::aggregate_udfs()
                .into_iter()
                .map(PhygitalFunction::Aggregate),
        )
        .chain(
            attribution::window_udfs()
                .into_iter()
                .map(PhygitalFunction::Window),
        )
        .chain(
            attribution::table_functions()
                .into_iter()
                .map(PhygitalFunction::Table),
        )
        .chain(
            identity::table_functions()
                .into_iter()
                .map(PhygitalFunction::Table),
        )
        .collect()
}

/// Registers every scalar, aggregate and window function of this crate, e.g.
/// `register_all(&mut session_context)`. Table functions need a [`SessionContext`]: use
/// [`register_session`] there.
///
/// A function of the same name already in the registry is replaced.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for function in all_functions() {
        match function {
            // A FunctionRegistry has no table functions; register_session adds them.
            PhygitalFunction::Table(_) => {}
            PhygitalFunction::Scalar(f) => {
                registry.register_udf(f)?;
            }
            PhygitalFunction::Aggregate(f) => {
                registry.register_udaf(f)?;
            }
            PhygitalFunction::Window(f) => {
                registry.register_udwf(f)?;
            }
        }
    }
    Ok(())
}

/// Registers every function of this crate, table functions included, into a session.
pub fn register_session(ctx: &mut SessionContext) -> Result<()> {
    register_all(ctx)?;
    for function in all_functions() {
        if let PhygitalFunction::Table(f) = function {
            let name = f.name().to_string();
            ctx.register_udtf(&name, f as Arc<dyn TableFunctionImpl>);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::registry::MemoryFunctionRegistry;
    use datafusion::prelude::SessionContext;
    use std::collections::BTreeSet;

    fn registered() -> Result<MemoryFunctionRegistry> {
        let mut registry = MemoryFunctionRegistry::new();
        register_all(&mut registry)?;
        Ok(registry)
    }

    /// Fails for any function that `register_all` registers without complete documentation.
    #[test]
    fn every_registered_function_is_documented() -> Result<()> {
        let registry = registered()?;
        let mut checked = BTreeSet::new();
        let mut documented = |kind: &str, name: &str, documentation: Option<&Documentation>| {
            let Some(documentation) = documentation else {
                panic!("{kind} function {name} has no documentation (add #[user_doc])");
            };
            assert!(
                !documentation.doc_section.label.is_empty(),
                "{name}: doc section label"
            );
            assert!(
                documentation.description.trim().len() > 20,
                "{name}: description"
            );
            assert!(
                documentation
                    .syntax_example
                    .starts_with(&format!("{name}(")),
                "{name}: syntax example {:?} must show a call of {name}",
                documentation.syntax_example
            );
            let example = documentation.sql_example.as_deref().unwrap_or_default();
            assert!(example.contains(name), "{name}: SQL example must call it");
            checked.insert(name.to_string());
        };
        for name in registry.udfs() {
            let f = registry.udf(&name)?;
            documented("scalar", &name, f.documentation());
        }
        for name in registry.udafs() {
            let f = registry.udaf(&name)?;
            documented("aggregate", &name, f.documentation());
        }
        for name in registry.udwfs() {
            let f = registry.udwf(&name)?;
            documented("window", &name, f.documentation());
        }
        // Table functions cannot live in a FunctionRegistry: check the ones register_session adds.
        let mut ctx = SessionContext::new();
        register_session(&mut ctx)?;
        let table_functions = ctx.state().table_functions().clone();
        for function in all_functions() {
            if let PhygitalFunction::Table(f) = function {
                assert!(
                    table_functions.contains_key(f.name()),
                    "{} not registered",
                    f.name()
                );
                documented("table", f.name(), f.documentation());
            }
        }
        let listed: BTreeSet<String> = all_functions()
            .iter()
            .flat_map(|f| std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()))
            .collect();
        assert_eq!(
            checked, listed,
            "registered functions must be exactly all_functions()"
        );
        assert!(listed.contains("normalize_email") && listed.contains("hash_identifier"));
        Ok(())
    }

    #[test]
    fn documentation_covers_every_function() -> Result<()> {
        let markdown = documentation_markdown()?;
        assert!(markdown.contains("## Identity Functions"), "{markdown}");
        for function in all_functions() {
            let heading = format!("### `{}`", function.name());
            assert_eq!(
                markdown.matches(&heading).count(),
                1,
                "{heading} once in:\n{markdown}"
            );
        }
        Ok(())
    }

    #[test]
    fn registers_into_a_session_context() -> Result<()> {
        let mut ctx = SessionContext::new();
        register_all(&mut ctx)?;
        let state = ctx.state();
        for function in all_scalar_udfs() {
            assert!(
                state.scalar_functions().contains_key(function.name()),
                "{}",
                function.name()
            );
        }
        Ok(())
    }
}
