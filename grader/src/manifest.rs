//! A lab's `Cargo.toml` made standalone: workspace inheritance resolved, an empty
//! `[workspace]` table so that cargo never looks for a parent workspace.
//!
//! Staging (for grading) and handouts (for students) both write the lab's manifest through
//! [`standalone`], so the crate a student builds is the crate the grader builds.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::error::{Error, Result};

/// The lab's manifest at `lab_manifest`, with every `workspace = true` replaced by the
/// workspace's value from `workspace_manifest`.
pub fn standalone(lab_manifest: &Path, workspace_manifest: &Path) -> Result<String> {
    let mut lab = resolved(lab_manifest, workspace_manifest)?;
    lab.remove("workspace");
    carry_profiles(&mut lab, workspace_manifest)?;
    lab.insert("workspace", Item::Table(Table::new()));
    Ok(ending_in_newline(lab.to_string()))
}

/// Copies the workspace's profile overrides for the lab's own package
/// (`[profile.<name>.package.<package>]`) into the standalone manifest, which is its own
/// workspace root: cargo reads profiles only there, so without this a lab tuned in the
/// workspace would build differently when staged or handed out.
fn carry_profiles(lab: &mut DocumentMut, workspace_manifest: &Path) -> Result<()> {
    let Some(package) = lab
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(Item::as_str)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    let text = std::fs::read_to_string(workspace_manifest)
        .map_err(|e| Error::io(workspace_manifest, e))?;
    let ws = text.parse::<DocumentMut>().map_err(|e| Error::LabFile {
        path: workspace_manifest.to_owned(),
        message: e.to_string(),
    })?;
    let Some(profiles) = ws.get("profile").and_then(Item::as_table) else {
        return Ok(());
    };
    for (profile, body) in profiles.iter() {
        let Some(over) = body
            .get("package")
            .and_then(|p| p.get(&package))
            .and_then(Item::as_table)
        else {
            continue;
        };
        let mut over = over.clone();
        over.decor_mut().set_prefix(format!(
            "\n# From the course's workspace: the settings of profile `{profile}` for this crate.\n"
        ));
        let mut per_package = Table::new();
        per_package.set_implicit(true);
        per_package.insert(&package, Item::Table(over));
        let mut prof = Table::new();
        prof.set_implicit(true);
        prof.insert("package", Item::Table(per_package));
        let mut top = Table::new();
        top.set_implicit(true);
        top.insert(profile, Item::Table(prof));
        if lab.get("profile").is_none() {
            lab.insert("profile", Item::Table(top));
        } else if let Some(t) = lab.get_mut("profile").and_then(Item::as_table_mut) {
            t.insert(profile, top.remove(profile).unwrap_or(Item::None));
        }
    }
    Ok(())
}

/// The manifest of a crate vendored into a standalone lab crate (testkit): inheritance
/// resolved like [`standalone`], but no `[workspace]` table, since the crate is a member of
/// the lab's workspace (a path dependency inside its folder).
pub fn vendored(manifest: &Path, workspace_manifest: &Path) -> Result<String> {
    let mut doc = resolved(manifest, workspace_manifest)?;
    doc.remove("workspace");
    Ok(ending_in_newline(doc.to_string()))
}

fn ending_in_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The manifest at `lab_manifest` with every `workspace = true` resolved.
fn resolved(lab_manifest: &Path, workspace_manifest: &Path) -> Result<DocumentMut> {
    let read = |p: &Path| -> Result<DocumentMut> {
        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        text.parse::<DocumentMut>().map_err(|e| Error::LabFile {
            path: p.to_owned(),
            message: e.to_string(),
        })
    };
    let mut lab = read(lab_manifest)?;
    let ws = read(workspace_manifest)?;
    let broken = |message: String| Error::LabFile {
        path: lab_manifest.to_owned(),
        message,
    };
    let ws_table = ws
        .get("workspace")
        .and_then(Item::as_table)
        .ok_or_else(|| broken("the workspace manifest has no [workspace]".into()))?;
    let ws_package = ws_table.get("package").and_then(Item::as_table);
    let ws_deps = ws_table.get("dependencies").and_then(Item::as_table);

    if let Some(package) = lab.get_mut("package").and_then(Item::as_table_mut) {
        let keys: Vec<String> = package.iter().map(|(k, _)| k.to_owned()).collect();
        for key in keys {
            if inherits(&package[&key]) {
                let value = ws_package
                    .and_then(|p| p.get(&key))
                    .and_then(Item::as_value)
                    .ok_or_else(|| {
                        broken(format!(
                            "package.{key} inherits a value the workspace lacks"
                        ))
                    })?;
                package[&key] = Item::Value(value.clone().decorated(" ", ""));
            }
        }
    }
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(deps) = lab.get_mut(section).and_then(Item::as_table_mut) else {
            continue;
        };
        let names: Vec<String> = deps.iter().map(|(k, _)| k.to_owned()).collect();
        for name in names {
            if !inherits(&deps[&name]) {
                continue;
            }
            let base = ws_deps.and_then(|d| d.get(&name)).ok_or_else(|| {
                broken(format!(
                    "{section}.{name} inherits a dependency the workspace lacks"
                ))
            })?;
            deps[&name] = Item::Value(resolve_dep(base, &deps[&name]));
        }
    }
    Ok(lab)
}

/// Whether a manifest entry is `x.workspace = true` or `x = { workspace = true, ... }`.
fn inherits(item: &Item) -> bool {
    let get = |k: &str| match item {
        Item::Table(t) => t.get(k).and_then(Item::as_bool),
        Item::Value(Value::InlineTable(t)) => t.get(k).and_then(Value::as_bool),
        _ => None,
    };
    get("workspace") == Some(true)
}

/// The workspace's dependency spec, with the member's extra `features` and `optional` added.
fn resolve_dep(base: &Item, member: &Item) -> Value {
    let mut spec = match base {
        Item::Value(Value::String(s)) => {
            let mut t = toml_edit::InlineTable::new();
            t.insert("version", Value::from(s.value().as_str()));
            t
        }
        Item::Value(Value::InlineTable(t)) => t.clone(),
        Item::Table(t) => t.clone().into_inline_table(),
        _ => toml_edit::InlineTable::new(),
    };
    let member_get = |k: &str| match member {
        Item::Table(t) => t.get(k).and_then(Item::as_value).cloned(),
        Item::Value(Value::InlineTable(t)) => t.get(k).cloned(),
        _ => None,
    };
    if let Some(Value::Array(extra)) = member_get("features") {
        let mut feats = match spec.get("features") {
            Some(Value::Array(a)) => a.clone(),
            _ => toml_edit::Array::new(),
        };
        for f in extra.iter() {
            if !feats.iter().any(|g| g.as_str() == f.as_str()) {
                feats.push(f.clone());
            }
        }
        spec.insert("features", Value::Array(feats));
    }
    if let Some(opt) = member_get("optional") {
        spec.insert("optional", opt);
    }
    spec.fmt();
    Value::InlineTable(spec).decorated(" ", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inheritance_is_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws.toml");
        let lab = dir.path().join("lab.toml");
        std::fs::write(
            &ws,
            "[workspace]\n[workspace.package]\nedition = \"2024\"\n[workspace.dependencies]\n\
             libc = \"0.2\"\nnix = { version = \"0.30\", features = [\"fs\"] }\n",
        )
        .unwrap();
        std::fs::write(
            &lab,
            "[package]\nname = \"x\"\nedition.workspace = true\n[dependencies]\n\
             libc.workspace = true\nnix = { workspace = true, features = [\"poll\"] }\n",
        )
        .unwrap();
        let out = standalone(&lab, &ws).unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(doc["package"]["edition"].as_str(), Some("2024"));
        assert_eq!(doc["dependencies"]["libc"]["version"].as_str(), Some("0.2"));
        let feats = doc["dependencies"]["nix"]["features"].as_array().unwrap();
        assert_eq!(feats.len(), 2, "{out}");
        assert!(doc["workspace"].as_table().unwrap().is_empty());
        assert!(!out.contains("workspace = true"), "{out}");
    }

    #[test]
    fn profile_overrides_of_the_package_are_carried() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws.toml");
        let lab = dir.path().join("lab.toml");
        std::fs::write(
            &ws,
            "[workspace]\n[profile.dev.package.x]\nopt-level = 3\n\
             [profile.dev.package.other]\nopt-level = 1\n",
        )
        .unwrap();
        std::fs::write(&lab, "[package]\nname = \"x\"\n").unwrap();
        let out = standalone(&lab, &ws).unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            doc["profile"]["dev"]["package"]["x"]["opt-level"].as_integer(),
            Some(3),
            "{out}"
        );
        assert!(!out.contains("other"), "{out}");
    }
}
