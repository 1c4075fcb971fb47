//! The layers a newcomer sees in `src/` hold: no file-level import cycles, and the
//! lower layers never reach up (`store` knows no other layer, `model` neither
//! handlers nor sync, `sync` no handler, `billing` neither handlers nor models,
//! `auth` neither handlers nor billing, and none of them nor the API knows the
//! dashboard). `lib.rs` is the composition root that wires the layers, so it is
//! left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as its module path (`api/keys.rs` -> `api::keys`).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = match parts.as_slice() {
                [only] if only == "lib" => "crate".to_string(),
                [only] if only == "main" => continue,
                _ => parts.join("::"),
            };
            out.insert(name, path);
        }
    }
    out
}

/// The modules a file names through `crate::…` paths (grouped `use crate::{a, b::c}` too),
/// each resolved to the longest module path that is a file.
fn references(text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        for path in expand(rest) {
            let segments: Vec<&str> = path.split("::").collect();
            if let Some(m) = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| known.contains_key(m))
            {
                out.insert(m);
            }
        }
    }
    out
}

/// The paths at the start of `rest`: `a::b::C` or a group `{a, b::{c, d}}`.
fn expand(rest: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 1;
        let end = inner
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(inner.len(), |(i, _)| i);
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let body = &inner[..end];
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(group_item(&body[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.extend(group_item(&body[start..]));
        return out;
    }
    let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
    vec![rest[..end].trim_end_matches(':').to_string()]
}

fn group_item(item: &str) -> Vec<String> {
    let item = item.trim();
    if item.is_empty() {
        return Vec::new();
    }
    match item.split_once("::{") {
        Some((head, tail)) => expand(&format!("{{{tail}"))
            .into_iter()
            .map(|p| format!("{head}::{p}"))
            .collect(),
        None => vec![item.split(" as ").next().unwrap_or(item).to_string()],
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    known
        .iter()
        .map(|(name, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            let mut refs = references(&text, &known);
            refs.remove(name);
            // A parent declares its children (`pub mod x;`): that is not a dependency.
            refs.remove("crate");
            (name.clone(), refs)
        })
        .collect()
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let found = cycles(&graph());
    assert!(found.is_empty(), "import cycles between files: {found:#?}");
}

#[test]
fn lower_layers_never_reach_up() {
    // layer -> the layers it must not name
    let rules = [
        (
            "store",
            &["api", "auth", "billing", "model", "sync", "ui"][..],
        ),
        ("model", &["api", "sync", "ui"][..]),
        ("sync", &["api", "ui"][..]),
        ("billing", &["api", "model", "sync", "ui"][..]),
        ("auth", &["api", "billing", "model", "sync", "ui"][..]),
        // The dashboard is a client of the API; the API knows nothing of it.
        ("api", &["ui"][..]),
    ];
    let mut wrong = Vec::new();
    for (module, refs) in graph() {
        let layer = module.split("::").next().unwrap_or_default();
        for (lower, banned) in rules {
            if layer != lower {
                continue;
            }
            for r in &refs {
                let target = r.split("::").next().unwrap_or_default();
                if banned.contains(&target) {
                    wrong.push(format!("{module} -> {r}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer names a higher one: {wrong:#?}"
    );
}

#[test]
fn the_checker_sees_a_cycle_and_a_grouped_import() {
    let known: BTreeMap<String, PathBuf> = ["a", "b", "c::d"]
        .iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let refs = references(
        "use crate::{a::X, c::{d::Y, e}};\nfn f() { crate::b::g() }",
        &known,
    );
    assert_eq!(refs, ["a", "b", "c::d"].map(String::from).into());
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["a".to_string()].into()),
        ("c::d".to_string(), BTreeSet::new()),
    ]
    .into();
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
}
