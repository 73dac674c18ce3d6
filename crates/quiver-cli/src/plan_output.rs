//! Rendering a plan (or the result of an apply) for people.

use std::fmt::Write as _;

use quiver_core::ResourceId;
use quiver_metadata::{Plan, PlanAction, PlanItem};

/// One line per resource, an indented `downstream:` line where something depends on it,
/// and a summary line. Resources are grouped by kind in dependency order (providers
/// before sources before features …), each kind in the order of the files, so a plan
/// reads top-down whatever the files are called. `--output json` keeps file order.
pub fn render_plan(plan: &Plan, applied: bool) -> String {
    let mut items: Vec<&PlanItem> = plan.items.iter().collect();
    items.sort_by_key(|item| item.resource.kind);
    let mut out = String::new();
    for item in items {
        out.push_str(&render_item(item));
        out.push('\n');
        if !item.downstream.is_empty() {
            let names: Vec<String> = item.downstream.iter().map(ResourceId::to_string).collect();
            let _ = writeln!(out, "    downstream: {}", names.join(", "));
        }
    }
    out.push_str(&summary(plan, applied));
    out.push('\n');
    out
}

fn render_item(item: &PlanItem) -> String {
    let (symbol, word) = match item.action {
        PlanAction::Create => ('+', "create"),
        PlanAction::Update => ('~', "update"),
        PlanAction::Unchanged => ('=', "unchanged"),
        PlanAction::Conflict => ('!', "conflict"),
    };
    let mut line = format!("{symbol} {word:<8} {}", item.resource);
    if item.becomes_default {
        line.push_str(" (default)");
    }
    if !item.differing_fields.is_empty() {
        let _ = write!(line, " (fields: {})", item.differing_fields.join(", "));
    }
    if matches!(item.action, PlanAction::Update | PlanAction::Conflict) {
        let _ = write!(line, " at {}", item.origin);
    }
    line
}

fn summary(plan: &Plan, applied: bool) -> String {
    let create = plan.count(PlanAction::Create);
    let update = plan.count(PlanAction::Update);
    let unchanged = plan.count(PlanAction::Unchanged);
    let conflict = plan.count(PlanAction::Conflict);
    if applied {
        return format!("Applied: {create} created, {update} updated, {unchanged} unchanged.");
    }
    let mut s = format!("Plan: {create} to create, {update} to update, {unchanged} unchanged");
    if conflict > 0 {
        let noun = if conflict == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let _ = write!(s, ", {conflict} {noun}");
    }
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::Kind;

    fn item(action: PlanAction, id: ResourceId) -> PlanItem {
        PlanItem {
            resource: id,
            origin: "defs/x.yaml:3".into(),
            action,
            differing_fields: Vec::new(),
            becomes_default: false,
            downstream: Vec::new(),
        }
    }

    #[test]
    fn renders_each_action_downstream_and_summary() {
        let mut create = item(
            PlanAction::Create,
            ResourceId::new(Kind::Feature, "avg_amount_7d", "v1"),
        );
        create.becomes_default = true;
        create.downstream = vec![
            ResourceId::new(Kind::TrainingSet, "fraud", "v1"),
            ResourceId::unversioned(Kind::Model, "m"),
        ];
        let unchanged = item(
            PlanAction::Unchanged,
            ResourceId::unversioned(Kind::Entity, "user"),
        );
        let mut update = item(
            PlanAction::Update,
            ResourceId::unversioned(Kind::Provider, "local"),
        );
        update.differing_fields = vec!["config.root".into()];
        let mut conflict = item(
            PlanAction::Conflict,
            ResourceId::new(Kind::Feature, "x", "v1"),
        );
        conflict.differing_fields = vec!["value_column".into()];
        let plan = Plan {
            items: vec![create, unchanged, update, conflict],
        };
        assert_eq!(
            render_plan(&plan, false),
            "\
~ update   provider local (fields: config.root) at defs/x.yaml:3
= unchanged entity user
+ create   feature avg_amount_7d:v1 (default)
    downstream: training_set fraud:v1, model m
! conflict feature x:v1 (fields: value_column) at defs/x.yaml:3
Plan: 1 to create, 1 to update, 1 unchanged, 1 conflict.
"
        );
        assert!(render_plan(&plan, true).ends_with("Applied: 1 created, 1 updated, 1 unchanged.\n"));
    }
}
