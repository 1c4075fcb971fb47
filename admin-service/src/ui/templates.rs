//! The page templates (minijinja, embedded at build time), rendered with API JSON as context.

use std::sync::OnceLock;

use axum::response::Html;
use minijinja::Environment;
use serde::Serialize;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        const TEMPLATES: &[(&str, &str)] = &[
            $( ($name, include_str!(concat!("../../templates/", $name))) ),*
        ];
    };
}

templates!(
    "base.html",
    "error.html",
    "sign_in.html",
    "sign_in_link.html",
    "orgs.html",
    "org_form.html",
    "org.html",
    "org_overview.html",
    "org_keys.html",
    "org_members.html",
    "org_usage.html",
    "org_billing.html",
    "org_logs.html",
    "org_explain.html",
    "explain_result.html",
    "org_teams.html",
    "org_agents.html",
    "org_config.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary: one that does not parse is a build bug.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

/// Renders `name` (HTML-escaped by its `.html` name) with `ctx`; the error names
/// the template.
pub fn render(name: &str, ctx: &impl Serialize) -> Result<Html<String>, minijinja::Error> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map(Html)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses_and_escapes_html() {
        let env = super::env();
        assert_eq!(env.templates().count(), super::TEMPLATES.len());
        let html = super::render(
            "error.html",
            &serde_json::json!({"status": 404, "message": "<script>x</script>"}),
        )
        .expect("renders")
        .0;
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>x"));
    }
}
