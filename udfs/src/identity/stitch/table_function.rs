//! The SQL surface: `SELECT * FROM identity_stitch('<edges query or table>' [, '<options>'])`.
//!
//! The call validates its arguments and options at planning time; the edges query is planned in
//! `scan` (asynchronous, with the caller's session: same catalog, functions and object stores),
//! and runs under [`IdentityStitchExec`](super::IdentityStitchExec).

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::Documentation;
use datafusion_macros::user_doc;

use super::exec::IdentityStitch;
use super::input::StitchQueries;
use super::options::StitchOptions;
use crate::DocumentedTableFunction;
use crate::query_argument::{QueryArgument, QueryArgumentTable, string_literal};

const NAME: &str = "identity_stitch";

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Stitches identifiers into customers: a native operator (interning, guards, union-find) over an edges relation, returning the identity map or the audit of every guard action.

The edges relation has the columns `a_type, a_value, b_type, b_value` (strings of any encoding), `ts` (a timestamp of any unit, read as UTC) and `source` (a string); other columns are ignored. A row links identifier `(a_type, a_value)` to `(b_type, b_value)`; a row with `b_*` NULL just records a sighting of `a`. An endpoint with a NULL, empty or blank value (or type) is dropped and counted in the audit. A missing or mistyped column is a planning error.

Output `map` (the default), one row per identifier: `id_type, id_value, customer_id` (32 hex characters; NULL for blocked identifiers), `first_seen, last_seen` (`TIMESTAMP` UTC, µs), `n_edges` (rows linking it to another identifier) and `status`: `linked`, `blocked:<rule>`, `quarantined:degree_limit:<type>` (isolated: its own customer) or `quarantined:max_component_size` (a component the circuit breaker stopped growing).
Output `audit`, one row per action: `rule, id_type, id_value, action` (`dropped`, `blocked`, `quarantined`, `refused_union`) and `evidence`.
Output `changes`, the change log against the previous identity map, one row per change: `run_id` (option `run_id`, default a digest of the inputs: 32 hex characters over the edges and the previous map, the same for the same rows in any order), `customer_id`, `event`, `merged_into`, `at` (the newest timestamp of any row of the customer's component, never the wall clock). Events: `born` (a new customer, none of its identifiers known before), `accreted` (a previous customer that gained identifiers), `merged` (a previous customer whose id is retired; `merged_into` names the survivor), `split` (a new customer made of identifiers of a previous customer that kept its id elsewhere; `merged_into` names that previous customer, one row per such customer). Unchanged customers have no row; without `previous` every customer is `born`.

Guards, in this order: (1) blocklists, exact and regex per identifier type, with shipped defaults (`default:zeros` `^\+?[0-]*$` and `default:repeated_digit` for phones and cards, `default:test_email`, `default:noemail`, `default:no_reply`, `default:placeholder_domain` for e-mails); (2) degree quarantine: an identifier linked to more than N distinct identifiers of a type is isolated (defaults: 10 for `app_account_id`, `user_id`, `loyalty_card`, `email`, `phone`); (3) per-customer limits (defaults: 1 `app_account_id`, 1 `user_id`, 3 `phone`): a union that would exceed one is refused; edges are merged strongest first (by the priority of their less trusted identifier type, then time), so weak links are the ones refused; (4) `max_component_size` (default 1000): a union that would exceed it is refused and both components are flagged.

`customer_id` is a hash of the component's anchor: the identifier seen first, ties broken by type priority then value; it is the same on every rebuild from the same data, whatever the input order or parallelism.

Incremental mode (option `previous`: the previous identity map, columns `id_type, id_value, customer_id` (string or integer) and optionally `first_seen`; rows with a NULL `customer_id` are ignored; an identifier with two customers is an error): the edges are the whole evidence, the previous map only names the components. Each previous customer's *home* is the component holding its oldest identifier (earliest `first_seen` in the previous map, else in this run); a component that is the home of several previous customers keeps the id of the oldest (earliest `first_seen` over its identifiers, ties by the smaller id) and the others are `merged` into it; a component that is nobody's home gets the anchor id a run without `previous` would give it (`born` or `split`), replaced by a salted hash of the anchor in the rare case that id was used in the previous map. Identifiers only in the previous map are not carried over. The first run (no previous map) gives the plain ids.

Options (a JSON object; unknown keys are errors): `output` (`"map"` | `"audit"` | `"changes"`), `default_blocklist` (true), `block` (`{"phone": ["+74951234567"]}`: exact values, e.g. the stores' own phone numbers, compared with the values as they appear in the edges, so pass them normalised), `block_regex` (`{"email": ["@mystore\\.ru$"]}`), `degree_limit` and `limits` (`{"<type>": N}`, each replaces its defaults), `priority` (types, most trusted first; default `app_account_id, user_id, loyalty_card, email, phone, device_id, anonymous_id`, others after by name), `max_component_size` (N or null for none), `block_query` (a query or table name returning `id_type, id_value [, rule]`, strings of any encoding: each row is added to the exact blocklist under the rule name `rule`, default `query`, after the rules above; NULL values block nothing; it runs with the edges query, e.g. the stores' own phones: `"block_query": "SELECT 'phone' AS id_type, normalize_phone(phone_raw) AS id_value, 'store_phone' AS rule FROM stores"`), `previous` (a query or table name, see incremental mode), `run_id` (a string for the change log). A query option that lacks a column or has one of the wrong type is a planning error naming the option and the column.

Rows come in no particular order. The edges query (with `block_query` and `previous`, the three relations combined) is planned and run as a sub-plan of the operator (in a single partition; EXPLAIN shows `IdentityStitchExec`); identifiers are interned, and the edges sorted, on up to `target_partitions` threads. The operator holds the whole graph in memory (about 80 bytes plus the value per identifier, up to 100 bytes per edge while resolving, and while reading a buffer of 2 M endpoints: about 32 bytes plus the value each), reserved in the session's memory pool: over the limit the query fails with a resources-exhausted error naming the graph's size."#,
    syntax_example = "identity_stitch('<edges query or table>' [, '<options JSON>'])",
    sql_example = r#"```sql
> select id_type, id_value, customer_id, status from identity_stitch('select * from (values (''email'', ''ann@shop.ru'', ''phone'', ''+79161234567'', timestamp ''2024-01-01 10:00:00'', ''web'')) t(a_type, a_value, b_type, b_value, ts, source)') order by id_type;
+---------+--------------+----------------------------------+--------+
| id_type | id_value     | customer_id                      | status |
+---------+--------------+----------------------------------+--------+
| email   | ann@shop.ru  | 8c14fb482892d4e7fcfc3a2d635ea45c | linked |
| phone   | +79161234567 | 8c14fb482892d4e7fcfc3a2d635ea45c | linked |
+---------+--------------+----------------------------------+--------+
```"#,
    argument(
        name = "edges",
        description = "A query (`SELECT …`, `WITH …`, `VALUES …`) or a table name (`edges`, `schema.edges`) giving the edges relation. A string literal."
    ),
    argument(
        name = "options",
        description = "Optional JSON object of options (see above). A string literal; NULL means the defaults."
    )
)]
#[derive(Debug, Default)]
pub struct IdentityStitchFunc;

impl DocumentedTableFunction for IdentityStitchFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for IdentityStitchFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let (edges, options) = match args.exprs() {
            [edges] => (edges, None),
            [edges, options] => (edges, Some(options)),
            other => {
                return plan_err!(
                    "{NAME} takes 1 or 2 arguments ('<edges query or table>' [, '<options JSON>']), got {}",
                    other.len()
                );
            }
        };
        let edges = QueryArgument::from_literal(NAME, "edges", edges)?;
        let options = match options {
            Some(options) => StitchOptions::parse(string_literal(NAME, "options", options)?)?,
            None => StitchOptions::default(),
        };
        let options = Arc::new(options);
        Ok(Arc::new(QueryArgumentTable::new(
            StitchQueries::try_new(NAME, edges, &options)?,
            Arc::new(IdentityStitch::new(Arc::clone(&options))),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges_query(edges: &str) -> Result<String> {
        Ok(QueryArgument::parse(NAME, "edges", edges)?
            .sql()
            .to_string())
    }

    #[test]
    fn edges_argument_is_a_query_or_a_table_name() -> Result<()> {
        assert_eq!(edges_query(" select 1 ")?, "select 1");
        assert_eq!(
            edges_query("WITH e AS (SELECT 1) SELECT * FROM e")?,
            "WITH e AS (SELECT 1) SELECT * FROM e"
        );
        assert_eq!(edges_query("VALUES (1)")?, "VALUES (1)");
        assert_eq!(edges_query("edges")?, "SELECT * FROM edges");
        assert_eq!(
            edges_query("staging.identity_edges")?,
            "SELECT * FROM staging.identity_edges"
        );
        for bad in ["edges; drop table x", "drop table x", "a.b.c.d", "", "1abc"] {
            let err = edges_query(bad).unwrap_err().to_string();
            assert!(
                err.contains("must be a query (SELECT, WITH or VALUES) or a table name"),
                "{bad}: {err}"
            );
        }
        Ok(())
    }
}
