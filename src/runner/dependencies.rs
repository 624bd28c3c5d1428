//! The tables a model's query reads, found by DataFusion's SQL parser (not by pattern matching): every relation
//! of the statement except CTE names ([`resolve_table_references`]), minus table-function calls, plus the
//! relations inside table-function arguments given as SQL text (`identity_stitch('identity_edges')`,
//! `markov_attribution('SELECT … FROM journeys')`), which the planner only resolves when the function runs.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::common::{Result, TableReference};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, ObjectName, Spanned, TableFactor, Value, Visit, Visitor,
};

/// A table read by a query, with where it is first named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    pub table: TableReference,
    /// 1-based line and column of the first mention in the model file; `None` for tables named inside a
    /// table function's SQL-text argument, or when the parser kept no position.
    pub location: Option<(u64, u64)>,
    /// Named only inside a table function's text argument: may also be an option string that happens to parse
    /// as a table name (`'credits'`), so it is a dependency when it names a model, and never "missing".
    pub in_function_argument: bool,
}

/// The tables `statement` reads, sorted by name, without CTEs and table functions.
pub fn tables_read(statement: &DFStatement) -> Result<Vec<TableRead>> {
    let mut reads = Vec::new();
    let mut seen = BTreeSet::new();
    collect(statement, false, &mut reads, &mut seen)?;
    reads.sort_by_key(|r| r.table.to_string());
    Ok(reads)
}

fn collect(
    statement: &DFStatement,
    in_function_argument: bool,
    reads: &mut Vec<TableRead>,
    seen: &mut BTreeSet<TableReference>,
) -> Result<()> {
    // DataFusion's own resolution: CTE-aware, identifier normalisation as the planner does it.
    let (relations, _ctes) = resolve_table_references(statement, true)?;
    let mut calls = TableFunctionCalls::default();
    if let DFStatement::Statement(s) = statement {
        let _ = s.visit(&mut calls);
    }
    for table in relations {
        if calls.functions.contains(&table) || !seen.insert(table.clone()) {
            continue;
        }
        let location = calls.first_mention(&table);
        reads.push(TableRead {
            table,
            location: (!in_function_argument).then_some(location).flatten(),
            in_function_argument,
        });
    }
    for text in &calls.text_arguments {
        // An argument that is neither a query nor a table name (an option string) reads nothing.
        if let Some(inner) = relation_argument(text) {
            collect(&inner, true, reads, seen)?;
        }
    }
    Ok(())
}

/// A table function's text argument as a statement: a query as given, or a table name as `SELECT * FROM name`.
fn relation_argument(text: &str) -> Option<DFStatement> {
    let parse_one = |sql: &str| {
        let mut statements = DFParser::parse_sql(sql).ok()?;
        (statements.len() == 1)
            .then(|| statements.pop_front())
            .flatten()
    };
    let text = text.trim();
    let is_query = |s: &DFStatement| {
        matches!(s, DFStatement::Statement(inner)
            if matches!(**inner, datafusion::sql::sqlparser::ast::Statement::Query(_)))
    };
    match parse_one(text) {
        Some(statement) if is_query(&statement) => Some(statement),
        _ => parse_one(&format!("SELECT * FROM {text}")).filter(is_query),
    }
}

/// Table-function calls of a statement (their names are not tables), their string-literal arguments, and the
/// position of every relation name.
#[derive(Default)]
struct TableFunctionCalls {
    functions: BTreeSet<TableReference>,
    text_arguments: Vec<String>,
    mentions: Vec<(TableReference, Option<(u64, u64)>)>,
}

impl TableFunctionCalls {
    fn first_mention(&self, table: &TableReference) -> Option<(u64, u64)> {
        self.mentions
            .iter()
            .find(|(t, _)| t == table)
            .and_then(|(_, location)| *location)
    }
}

impl Visitor for TableFunctionCalls {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if let Ok(table) = object_name_to_table_reference(relation.clone(), true) {
            let start = relation.span().start;
            // sqlparser uses line 0 for "no position"
            let location = (start.line > 0).then_some((start.line, start.column));
            self.mentions.push((table, location));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let (name, args) = match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => (name, args.args.as_slice()),
            TableFactor::Function { name, args, .. } => (name, args.as_slice()),
            _ => return ControlFlow::Continue(()),
        };
        if let Ok(function) = object_name_to_table_reference(name.clone(), true) {
            self.functions.insert(function);
        }
        for arg in args {
            let expr = match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                | FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => e,
                _ => continue,
            };
            if let Expr::Value(v) = expr
                && let Value::SingleQuotedString(s) = &v.value
            {
                self.text_arguments.push(s.clone());
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (table, line and column, named in a function argument)
    type Read = (String, Option<(u64, u64)>, bool);

    fn reads(sql: &str) -> Vec<Read> {
        let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        tables_read(&statement)
            .unwrap()
            .into_iter()
            .map(|r| (r.table.to_string(), r.location, r.in_function_argument))
            .collect()
    }

    #[test]
    fn tables_not_ctes() {
        let sql = "WITH recent AS (SELECT * FROM Orders WHERE ts > now())\n\
                   SELECT * FROM recent JOIN customers c USING (id)\n\
                   WHERE id IN (SELECT id FROM \"Blocked\")";
        assert_eq!(
            reads(sql),
            [
                ("Blocked".to_string(), Some((3, 29)), false),
                ("customers".to_string(), Some((2, 27)), false),
                ("orders".to_string(), Some((1, 31)), false),
            ]
        );
    }

    #[test]
    fn table_functions_are_not_tables_but_their_text_arguments_are_read() {
        let sql = "SELECT * FROM identity_stitch('identity_edges') \
                   CROSS JOIN markov_attribution('SELECT path FROM journeys j WHERE j.x > 1', 1, 'credits') \
                   CROSS JOIN generate_series(1, 3)";
        assert_eq!(
            reads(sql),
            [
                ("credits".to_string(), None, true),
                ("identity_edges".to_string(), None, true),
                ("journeys".to_string(), None, true),
            ]
        );
    }

    #[test]
    fn a_cte_may_shadow_a_table_it_reads() {
        assert_eq!(
            reads("WITH t AS (SELECT * FROM t) SELECT * FROM t"),
            [("t".to_string(), Some((1, 26)), false)]
        );
    }

    #[test]
    fn option_strings_read_nothing() {
        assert!(reads("SELECT * FROM f('not a query or name!', '{\"a\": 1}')").is_empty());
    }
}
