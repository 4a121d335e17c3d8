//! Which webhooks an event goes to (the contract's "Matching").

use registry::ext::{Action, Record};

use crate::webhook::{Status, Webhook};

/// Whether `record` is delivered to `hook`: enabled, action subscribed,
/// raised in the hook's location if it has one, and scope empty or naming
/// the repository with `*` or with the event's tag. A `delete` has no tag:
/// it matches `repo:tag` when the deleted manifest had that tag.
pub fn matches(hook: &Webhook, record: &Record) -> bool {
    let event = &record.event;
    if hook.status != Status::Enabled || !hook.actions.contains(&event.action) {
        return false;
    }
    if hook.location.is_some() && hook.location != record.location {
        return false;
    }
    if hook.scope.is_empty() {
        return true;
    }
    let (repo, tag) = hook
        .scope
        .split_once(':')
        .unwrap_or((&hook.scope, "latest"));
    if repo != event.target.repository {
        return false;
    }
    match (tag, event.action) {
        ("*", _) => true,
        (tag, Action::Delete) => record.tags.iter().any(|t| t == tag),
        (tag, _) => event.target.tag.as_deref() == Some(tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::tests::hook;
    use registry::ext::{Event, Request, Target};

    fn record(action: Action, repo: &str, tag: Option<&str>, tags: &[&str]) -> Record {
        let target = Target {
            repository: repo.into(),
            tag: tag.map(Into::into),
            ..Target::default()
        };
        Record {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Record::from(Event::new(action, target, Request::default()))
        }
    }

    #[test]
    fn scope_rules() {
        let push = |repo, tag| record(Action::Push, repo, tag, &[]);
        assert!(matches(&hook(""), &push("any/repo", None)));
        assert!(matches(&hook("repo:*"), &push("repo", Some("v1"))));
        assert!(matches(&hook("repo:*"), &push("repo", None)));
        assert!(!matches(&hook("repo:*"), &push("repo2", Some("v1"))));
        assert!(matches(&hook("repo:v1"), &push("repo", Some("v1"))));
        assert!(!matches(&hook("repo:v1"), &push("repo", Some("v2"))));
        assert!(!matches(&hook("repo:v1"), &push("repo", None)));
        assert!(
            matches(&hook("repo"), &push("repo", Some("latest"))),
            "bare repo means repo:latest"
        );
        assert!(!matches(&hook("repo"), &push("repo", Some("v1"))));
    }

    #[test]
    fn deletes_match_the_tags_the_manifest_had() {
        let mut h = hook("repo:v1");
        h.actions.insert(Action::Delete);
        assert!(matches(
            &h,
            &record(Action::Delete, "repo", None, &["v0", "v1"])
        ));
        assert!(!matches(&h, &record(Action::Delete, "repo", None, &["v2"])));
        assert!(!matches(&h, &record(Action::Delete, "repo", None, &[])));
    }

    #[test]
    fn a_located_webhook_gets_only_its_locations_events() {
        let mut h = hook("");
        let at = |location: Option<&str>| Record {
            location: location.map(str::to_owned),
            ..record(Action::Push, "repo", Some("v1"), &[])
        };
        assert!(matches(&h, &at(Some("westeurope"))) && matches(&h, &at(None)));
        h.location = Some("westeurope".into());
        assert!(matches(&h, &at(Some("westeurope"))));
        assert!(!matches(&h, &at(Some("eastus"))));
        assert!(!matches(&h, &at(None)));
    }

    #[test]
    fn chart_events_match_by_action_and_chart_tag() {
        use registry::ext::Target;
        let mut h = hook("charts:wordpress-5.4.0.tgz");
        h.actions = [Action::ChartPush, Action::ChartDelete].into();
        let chart = |action, version| {
            Record::from(Event::new(
                action,
                Target::chart("charts", "wordpress", version, "sha256:x", 1),
                Request::default(),
            ))
        };
        assert!(matches(&h, &chart(Action::ChartPush, "5.4.0")));
        assert!(matches(&h, &chart(Action::ChartDelete, "5.4.0")));
        assert!(!matches(&h, &chart(Action::ChartPush, "5.5.0")));
        assert!(!matches(
            &h,
            &record(Action::Push, "charts", Some("wordpress-5.4.0.tgz"), &[])
        ));
    }

    #[test]
    fn action_and_status() {
        let mut h = hook("");
        assert!(!matches(&h, &record(Action::Delete, "r", None, &[])));
        h.status = Status::Disabled;
        assert!(!matches(&h, &record(Action::Push, "r", None, &[])));
    }
}
