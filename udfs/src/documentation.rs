//! The Markdown reference of every function of the crate (printed by `phygital docs`).

use std::fmt::Write as _;

use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::Documentation;

use crate::{PhygitalFunction, all_functions};

/// Renders the reference of all functions as Markdown: one `##` section per documentation
/// section (in the order the sections first appear in [`all_functions`]), functions sorted by
/// name inside a section, in the layout of DataFusion's own function reference.
///
/// Errors, naming them, when some functions have no documentation.
pub fn documentation_markdown() -> Result<String> {
    let functions = all_functions();
    let mut documented: Vec<(&PhygitalFunction, &Documentation)> = Vec::new();
    let mut undocumented: Vec<&str> = Vec::new();
    for function in &functions {
        match function.documentation() {
            Some(documentation) => documented.push((function, documentation)),
            None => undocumented.push(function.name()),
        }
    }
    if !undocumented.is_empty() {
        return internal_err!(
            "functions without documentation: {}",
            undocumented.join(", ")
        );
    }

    let mut sections: Vec<&str> = Vec::new();
    for (_, documentation) in &documented {
        if !sections.contains(&documentation.doc_section.label) {
            sections.push(documentation.doc_section.label);
        }
    }

    let mut out = String::from("# phygital SQL functions\n");
    for section in sections {
        let mut members: Vec<_> = documented
            .iter()
            .filter(|(_, d)| d.doc_section.label == section)
            .collect();
        members.sort_by_key(|(function, _)| function.name());

        // `write!` into a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "\n## {section}\n");
        if let Some(description) = members.first().and_then(|(_, d)| d.doc_section.description) {
            let _ = writeln!(out, "{description}\n");
        }
        for (function, _) in &members {
            let _ = writeln!(out, "- [{name}](#{name})", name = function.name());
        }
        for (function, documentation) in members {
            write_function(&mut out, function, documentation);
        }
    }
    Ok(out)
}

fn write_function(out: &mut String, function: &PhygitalFunction, documentation: &Documentation) {
    let _ = write!(
        out,
        "\n### `{name}`\n\n_{kind} function_\n\n{description}\n\n```sql\n{syntax}\n```\n",
        name = function.name(),
        kind = capitalised(function.kind()),
        description = documentation.description.trim(),
        syntax = documentation.syntax_example,
    );
    if let Some(arguments) = &documentation.arguments {
        let _ = writeln!(out, "\n#### Arguments\n");
        for (name, description) in arguments {
            let _ = writeln!(out, "- **{name}**: {description}");
        }
    }
    if let Some(example) = &documentation.sql_example {
        let _ = writeln!(out, "\n#### Example\n\n{}", example.trim());
    }
    if let Some(alternatives) = &documentation.alternative_syntax {
        let _ = writeln!(out, "\n#### Alternative syntax\n");
        for syntax in alternatives {
            let _ = writeln!(out, "```sql\n{syntax}\n```");
        }
    }
    if !function.aliases().is_empty() {
        let _ = writeln!(out, "\n#### Aliases\n");
        for alias in function.aliases() {
            let _ = writeln!(out, "- {alias}");
        }
    }
    if let Some(related) = &documentation.related_udfs {
        let _ = writeln!(out, "\n**Related functions**:\n");
        for name in related {
            let _ = writeln!(out, "- [{name}](#{name})");
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sections_arguments_examples_and_links() -> Result<()> {
        let markdown = documentation_markdown()?;
        let section = markdown
            .find("## Identity Functions")
            .expect("identity section");
        let index = markdown
            .find("- [hash_identifier](#hash_identifier)")
            .expect("index entry");
        let body = markdown
            .find("### `hash_identifier`")
            .expect("function heading");
        assert!(
            section < index && index < body,
            "section, then index, then bodies"
        );
        // Sorted by name inside the section.
        let email = markdown
            .find("### `normalize_email`")
            .expect("normalize_email");
        let phone = markdown
            .find("### `normalize_phone`")
            .expect("normalize_phone");
        assert!(body < email && email < phone);
        assert!(markdown.contains("_Scalar function_"));
        assert!(markdown.contains("- **default_region**: Optional string literal"));
        assert!(markdown.contains("#### Example\n\n```sql\n> select normalize_phone("));
        assert!(
            markdown.contains(
                "**Related functions**:\n\n- [normalize_identifier](#normalize_identifier)"
            )
        );
        Ok(())
    }

    #[test]
    fn capitalises_kinds() {
        assert_eq!(capitalised("scalar"), "Scalar");
        assert_eq!(capitalised(""), "");
    }
}
