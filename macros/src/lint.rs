//! Rejecting non-deterministic calls in workflow bodies.
//!
//! Workflow code runs again from the top every time a run resumes, and the
//! recorded history is matched against what it does. Reading the clock,
//! drawing random numbers, spawning tasks or sleeping on a plain timer all
//! behave differently on the replay, so each has a recorded replacement on
//! the context. The check is syntactic: it looks at the paths written in the
//! body (not inside macro invocations, which are opaque tokens to `syn`), so
//! it catches the common mistakes, not every possible one.

use syn::visit::{self, Visit};
use syn::{Block, ExprPath, Path};

use crate::errors::Errors;

/// How a rule recognises a path.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// The path ends with these segments, so `SystemTime::now` also matches
    /// `std::time::SystemTime::now`.
    Tail(&'static [&'static str]),
    /// The path starts with this segment (a whole crate is off limits).
    First(&'static str),
    /// Some segment of the path is this one.
    Anywhere(&'static str),
}

impl Pattern {
    fn matches(self, segments: &[String]) -> bool {
        match self {
            Pattern::Tail(tail) => {
                segments.len() >= tail.len()
                    && segments[segments.len() - tail.len()..]
                        .iter()
                        .zip(tail)
                        .all(|(a, b)| a == b)
            }
            Pattern::First(first) => segments.first().is_some_and(|segment| segment == first),
            Pattern::Anywhere(name) => segments.iter().any(|segment| segment == name),
        }
    }
}

/// One kind of non-deterministic call and what to use instead.
#[derive(Debug)]
struct Rule {
    patterns: &'static [Pattern],
    /// What goes wrong on replay, and the recorded replacement to use.
    message: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        patterns: &[
            Pattern::Tail(&["SystemTime", "now"]),
            Pattern::Tail(&["Instant", "now"]),
            Pattern::Tail(&["Utc", "now"]),
            Pattern::Tail(&["Local", "now"]),
        ],
        message: "it reads the clock; use `ctx.now()`: it is recorded, so a replay sees the same \
                  time (workflow code runs again from the top on every resume)",
    },
    Rule {
        patterns: &[Pattern::First("rand"), Pattern::Anywhere("thread_rng")],
        message: "it draws random values; use `ctx.random()` or `ctx.uuid()`: they are recorded, \
                  so a replay sees the same values (workflow code runs again from the top on \
                  every resume)",
    },
    Rule {
        patterns: &[
            Pattern::Tail(&["Uuid", "new_v4"]),
            Pattern::Tail(&["Uuid", "now_v7"]),
        ],
        message: "it makes a new id every time; use `ctx.uuid()`: it is recorded, so a replay \
                  sees the same id (workflow code runs again from the top on every resume)",
    },
    Rule {
        patterns: &[
            Pattern::Tail(&["tokio", "spawn"]),
            Pattern::Tail(&["tokio", "task", "spawn"]),
            Pattern::Tail(&["tokio", "task", "spawn_blocking"]),
            Pattern::Tail(&["tokio", "task", "spawn_local"]),
            Pattern::Tail(&["thread", "spawn"]),
        ],
        message: "spawned tasks are not recorded; call activities (or child workflows) from the \
                  workflow instead, and run concurrent activities with `futures::join!`",
    },
    Rule {
        patterns: &[
            Pattern::Tail(&["tokio", "time", "sleep"]),
            Pattern::Tail(&["tokio", "time", "sleep_until"]),
            Pattern::Tail(&["thread", "sleep"]),
        ],
        message: "its timer is lost when the worker restarts; use `ctx.sleep(duration)`: a \
                  durable timer that survives restarts",
    },
];

/// Records an error for every non-deterministic path in a workflow body.
pub(crate) fn check_workflow_body(body: &Block, errors: &mut Errors) {
    let mut lint = Lint { errors };
    lint.visit_block(body);
}

struct Lint<'e> {
    errors: &'e mut Errors,
}

impl<'ast> Visit<'ast> for Lint<'_> {
    // Only expression paths are checked: naming a type such as
    // `rand::rngs::StdRng` in a signature is harmless, calling into it is not.
    fn visit_expr_path(&mut self, expr: &'ast ExprPath) {
        if let Some(error) = check_path(&expr.path) {
            self.errors.push(error);
        }
        visit::visit_expr_path(self, expr);
    }
}

/// The error for `path` if it matches a rule.
fn check_path(path: &Path) -> Option<syn::Error> {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let rule = RULES.iter().find(|rule| {
        rule.patterns
            .iter()
            .any(|pattern| pattern.matches(&segments))
    })?;
    let written = segments.join("::");
    Some(syn::Error::new_spanned(
        path,
        format!("`{written}` is not allowed in a workflow: {}", rule.message),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn messages(body: Block) -> Vec<String> {
        let mut errors = Errors::default();
        check_workflow_body(&body, &mut errors);
        errors
            .into_result()
            .err()
            .map(|error| error.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn flags_each_rule() {
        let cases: &[(Block, &str)] = &[
            (
                parse_quote!({
                    let t = std::time::SystemTime::now();
                }),
                "ctx.now()",
            ),
            (
                parse_quote!({
                    let t = Instant::now();
                }),
                "ctx.now()",
            ),
            (
                parse_quote!({
                    let t = chrono::Utc::now();
                }),
                "ctx.now()",
            ),
            (
                parse_quote!({
                    let t = Local::now();
                }),
                "ctx.now()",
            ),
            (
                parse_quote!({
                    let x: u8 = rand::random();
                }),
                "ctx.random()",
            ),
            (
                parse_quote!({
                    let r = ::rand::rng();
                }),
                "ctx.random()",
            ),
            (
                parse_quote!({
                    let r = thread_rng();
                }),
                "ctx.random()",
            ),
            (
                parse_quote!({
                    let id = uuid::Uuid::new_v4();
                }),
                "ctx.uuid()",
            ),
            (
                parse_quote!({
                    tokio::spawn(async {});
                }),
                "futures::join!",
            ),
            (
                parse_quote!({
                    std::thread::spawn(|| {});
                }),
                "futures::join!",
            ),
            (
                parse_quote!({
                    thread::spawn(|| {});
                }),
                "futures::join!",
            ),
            (
                parse_quote!({
                    tokio::time::sleep(d).await;
                }),
                "ctx.sleep(duration)",
            ),
            (
                parse_quote!({
                    std::thread::sleep(d);
                }),
                "ctx.sleep(duration)",
            ),
        ];
        for (body, advice) in cases {
            let messages = messages(body.clone());
            assert_eq!(messages.len(), 1, "{messages:?}");
            assert!(messages[0].contains(advice), "{messages:?}");
        }
    }

    #[test]
    fn reaches_nested_expressions() {
        let body: Block = parse_quote!({
            let f = || async {
                if x {
                    let _ = SystemTime::now();
                }
            };
            match y {
                _ => vec![1].iter().map(|_| rand::random::<u8>()).count(),
            };
        });
        assert_eq!(messages(body).len(), 2);
    }

    #[test]
    fn allows_the_recorded_replacements_and_lookalikes() {
        let body: Block = parse_quote!({
            let now = ctx.now();
            let id = ctx.uuid();
            ctx.sleep(Duration::from_secs(1)).await?;
            let seed: StdRng = make();
            let nowhere = now_ish();
            let s = my::spawn();
            let t = time::sleep(d);
            let r: rand::rngs::StdRng = seeded();
        });
        assert!(messages(body).is_empty());
    }

    #[test]
    fn skips_macro_bodies() {
        let body: Block = parse_quote!({
            println!("{:?}", SystemTime::now());
        });
        assert!(messages(body).is_empty());
    }
}
