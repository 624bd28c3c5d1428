//! The order models run in: a model runs after every model it reads (its query or its `relationships` tests),
//! ties broken by name so that runs are reproducible; `--select` picks a part of the graph.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::TableReference;

use super::header::{DataTestKind, normalize};
use super::project::Project;
use crate::error::{Error, Result};

/// Dependencies between the models of a project, by index into `Project::models`.
#[derive(Debug, Clone)]
pub struct ModelGraph {
    /// `upstream[i]`: the models model `i` reads.
    upstream: Vec<BTreeSet<usize>>,
    names: Vec<String>,
    files: Vec<String>,
}

impl ModelGraph {
    pub fn new(project: &Project) -> ModelGraph {
        let index: BTreeMap<&str, usize> = project
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), i))
            .collect();
        let model_index = |table: &TableReference| match table {
            TableReference::Bare { table } => index.get(table.as_ref()).copied(),
            _ => None,
        };
        let upstream = project
            .models
            .iter()
            .map(|m| {
                let read = m.reads.iter().filter_map(|r| model_index(&r.table));
                let tested = m.header.tests.iter().filter_map(|t| match &t.kind {
                    DataTestKind::Relationships { to_table, .. } => {
                        index.get(normalize(to_table).as_str()).copied()
                    }
                    _ => None,
                });
                read.chain(tested).collect()
            })
            .collect();
        ModelGraph {
            upstream,
            names: project.models.iter().map(|m| m.name.clone()).collect(),
            files: project
                .models
                .iter()
                .map(|m| m.file.display().to_string())
                .collect(),
        }
    }

    /// Every model after the models it reads; a cycle is an error listing its files in reading order.
    pub fn topological_order(&self) -> Result<Vec<usize>> {
        let n = self.names.len();
        let mut missing: Vec<usize> = self.upstream.iter().map(BTreeSet::len).collect();
        let mut downstream = vec![Vec::new(); n];
        for (model, ups) in self.upstream.iter().enumerate() {
            for &up in ups {
                downstream[up].push(model);
            }
        }
        // Ready models keyed by name: the smallest name runs first.
        let mut ready: BTreeMap<&str, usize> = (0..n)
            .filter(|&i| missing[i] == 0)
            .map(|i| (self.names[i].as_str(), i))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some((_, model)) = ready.pop_first() {
            order.push(model);
            for &down in &downstream[model] {
                missing[down] -= 1;
                if missing[down] == 0 {
                    ready.insert(self.names[down].as_str(), down);
                }
            }
        }
        if order.len() < n {
            return Err(Error::Project(self.describe_cycle(&missing)));
        }
        Ok(order)
    }

    /// Walks upstream from a model left in the cycle until a model repeats: that stretch is a cycle.
    fn describe_cycle(&self, missing: &[usize]) -> String {
        let in_cycle = |i: usize| missing[i] > 0;
        let Some(start) = (0..missing.len()).find(|&i| in_cycle(i)) else {
            return "dependency cycle between models".to_string();
        };
        let mut path = vec![start];
        let mut current = start;
        // A model left over has at least one upstream model that is left over too.
        while let Some(&next) = self.upstream[current].iter().find(|&&u| in_cycle(u)) {
            if let Some(pos) = path.iter().position(|&p| p == next) {
                let mut cycle: Vec<usize> = path[pos..].to_vec();
                // Reading order: each model reads the next one; the list closes on its first model.
                cycle.push(next);
                let files: Vec<&str> = cycle.iter().map(|&i| self.files[i].as_str()).collect();
                return format!(
                    "dependency cycle: {} (each model reads the next)",
                    files.join(" → ")
                );
            }
            path.push(next);
            current = next;
        }
        "dependency cycle between models".to_string()
    }

    fn upstream_closure(&self, from: usize, into: &mut BTreeSet<usize>) {
        let mut stack = vec![from];
        while let Some(m) = stack.pop() {
            for &u in &self.upstream[m] {
                if into.insert(u) {
                    stack.push(u);
                }
            }
        }
    }

    fn downstream_closure(&self, from: usize, into: &mut BTreeSet<usize>) {
        let mut stack = vec![from];
        while let Some(m) = stack.pop() {
            for (down, ups) in self.upstream.iter().enumerate() {
                if ups.contains(&m) && into.insert(down) {
                    stack.push(down);
                }
            }
        }
    }

    /// The models `selectors` pick; all models when there are none.
    pub fn select(&self, selectors: &[Selector]) -> Result<BTreeSet<usize>> {
        if selectors.is_empty() {
            return Ok((0..self.names.len()).collect());
        }
        let mut selected = BTreeSet::new();
        for selector in selectors {
            let Some(model) = self.names.iter().position(|n| *n == selector.name) else {
                return Err(Error::Usage(format!(
                    "--select {selector}: no model named '{}'; the models are: {}",
                    selector.name,
                    self.names.join(", ")
                )));
            };
            selected.insert(model);
            if selector.upstream {
                self.upstream_closure(model, &mut selected);
            }
            if selector.downstream {
                self.downstream_closure(model, &mut selected);
            }
        }
        Ok(selected)
    }

    /// Models that `model` reads directly.
    pub fn upstream_of(&self, model: usize) -> &BTreeSet<usize> {
        &self.upstream[model]
    }
}

/// One `--select` argument: `name`, `name+` (and everything downstream), `+name` (and everything upstream),
/// or `+name+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub upstream: bool,
    pub downstream: bool,
}

impl std::str::FromStr for Selector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Selector> {
        let text = s.trim();
        let (upstream, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (downstream, name) = match rest.strip_suffix('+') {
            Some(name) => (true, name),
            None => (false, rest),
        };
        if name.is_empty() || name.contains('+') {
            return Err(Error::Usage(format!(
                "--select '{s}': use NAME, NAME+ (with downstream models), +NAME (with upstream models) or +NAME+"
            )));
        }
        Ok(Selector {
            name: name.to_string(),
            upstream,
            downstream,
        })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plus = |on: bool| if on { "+" } else { "" };
        write!(
            f,
            "{}{}{}",
            plus(self.upstream),
            self.name,
            plus(self.downstream)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::runner::project::Model;

    fn project(models: &[(&str, &str)]) -> Project {
        Project {
            dir: "sql".into(),
            models: models
                .iter()
                .map(|(name, sql)| {
                    let file = format!("sql/{name}.sql");
                    Model::parse(name, Path::new(&file), sql).unwrap()
                })
                .collect(),
        }
    }

    fn names(p: &Project, order: impl IntoIterator<Item = usize>) -> Vec<&str> {
        order
            .into_iter()
            .map(|i| p.models[i].name.as_str())
            .collect()
    }

    fn diamond() -> Project {
        project(&[
            (
                "report",
                "SELECT * FROM left_side JOIN right_side USING (id)",
            ),
            ("left_side", "SELECT * FROM base"),
            (
                "right_side",
                "WITH x AS (SELECT * FROM base) SELECT * FROM x",
            ),
            ("base", "SELECT * FROM raw_events"),
            (
                "audit",
                "-- test: relationships(id, report.id)\nSELECT * FROM raw_events",
            ),
        ])
    }

    #[test]
    fn upstream_first_ties_by_name() {
        let p = diamond();
        let order = ModelGraph::new(&p).topological_order().unwrap();
        assert_eq!(
            names(&p, order),
            ["base", "left_side", "right_side", "report", "audit"]
        );
    }

    #[test]
    fn cycles_list_their_files() {
        let p = project(&[
            ("a", "SELECT * FROM c"),
            ("b", "SELECT * FROM a"),
            ("c", "SELECT * FROM b"),
            ("d", "SELECT * FROM a"),
            ("e", "SELECT 1"),
        ]);
        let e = ModelGraph::new(&p).topological_order().unwrap_err();
        assert_eq!(
            e.to_string(),
            "dependency cycle: sql/a.sql → sql/c.sql → sql/b.sql → sql/a.sql (each model reads the next)"
        );
        let p = project(&[("selfish", "SELECT * FROM selfish")]);
        let e = ModelGraph::new(&p).topological_order().unwrap_err();
        assert_eq!(
            e.to_string(),
            "dependency cycle: sql/selfish.sql → sql/selfish.sql (each model reads the next)"
        );
    }

    #[test]
    fn selectors() {
        let p = diamond();
        let graph = ModelGraph::new(&p);
        let select = |args: &[&str]| {
            let selectors: Vec<Selector> = args.iter().map(|a| a.parse().unwrap()).collect();
            names(&p, graph.select(&selectors).unwrap())
        };
        assert_eq!(select(&["left_side"]), ["left_side"]);
        assert_eq!(select(&["left_side+"]), ["report", "left_side", "audit"]);
        assert_eq!(select(&["+left_side"]), ["left_side", "base"]);
        assert_eq!(
            select(&["+report"]),
            ["report", "left_side", "right_side", "base"]
        );
        assert_eq!(select(&["base+"]).len(), 5);
        assert_eq!(
            select(&["+left_side+", "audit"]),
            ["report", "left_side", "base", "audit"]
        );
        assert_eq!(select(&[]).len(), 5);

        let e = graph.select(&["nope+".parse().unwrap()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--select nope+: no model named 'nope'; the models are: report, left_side, right_side, base, audit"
        );
        assert!(matches!(e, Error::Usage(_)));
        for bad in ["", "+", "++", "a+b"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
