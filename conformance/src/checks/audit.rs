//! Cross-cutting rules checked over every response of the run.

use super::Context;
use crate::client::Rule;
use crate::report::{Finding, Level};

/// Reports violations the client collected during all previous checks.
pub fn run(ctx: &mut Context) {
    ctx.check(
        "errors",
        "every JSON 4xx body has the {\"errors\":[{code,message,detail}]} shape and spec codes",
        Level::Must,
        |ctx| verdict(ctx, Rule::ErrorBody),
    );
    ctx.check(
        "warnings",
        "Warning headers, if any, use warn-code 299 and warn-agent -",
        Level::Must,
        |ctx| verdict(ctx, Rule::WarningHeader),
    );
}

/// Passes if no violation of `rule` was seen; otherwise lists the first few.
fn verdict(ctx: &Context, rule: Rule) -> Result<Option<String>, Finding> {
    let found = ctx.client.violations(rule);
    match found.first() {
        None => Ok(None),
        Some(first) => Err(Finding::must(format!(
            "{} violation(s); first: {first}",
            found.len()
        ))),
    }
}
