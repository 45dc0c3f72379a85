//! Enrichment merged at serialization time (`auditrecv/enrich/__init__.py` `Enricher._enrich` and
//! `_apply_zone`), from values looked up once per sender instead of once per document.
//!
//! What the Python enricher looks up depends on the sender (its address and names: reverse DNS, the
//! static map) and on the zone a record names (VMAPI/Mahi): so the caller resolves those per sender
//! and batch (the sender's PTR name, its static-map labels, the labels matched by each zone name, the
//! zones it knows), and each document gets exactly the fields and key order the Python merge gives.

use super::common::Parties;
use super::value::{Obj, Value};

const ZLOGIN: &str = "/usr/sbin/zlogin";

/// A zone's VM record and owner (`enrich.triton.ZoneInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneInfo {
    pub uuid: String,
    pub alias: String,
    pub owner_uuid: String,
    pub owner_login: String,
    pub brand: String,
    pub server_uuid: String,
    pub tags: Vec<(String, String)>,
}

/// The per-sender enrichment values (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// The PTR name of the sender's address (reverse DNS on and found).
    pub hostname: Option<String>,
    /// Static-map labels of the sender (its address and host names, in the map's order).
    pub labels: Vec<(String, String)>,
    /// Static-map labels matched by a zone name, which override the sender's.
    pub zone_labels: Vec<(String, Vec<(String, String)>)>,
    /// Zones by the name documents use for them (a zone's UUID; lower case for zlogin targets).
    pub zones: Vec<(String, ZoneInfo)>,
}

/// `UUID_RE.fullmatch(text)`: 8-4-4-4-12 hex digits, any case.
pub fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

fn truthy_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `_first(host.get("ip") or doc.get("from"))` is truthy: the condition of the PTR lookup.
fn has_address(host: &Obj, doc: &Obj) -> bool {
    let value = match host.get("ip") {
        Some(Value::List(l)) if !l.is_empty() => host.get("ip"),
        Some(Value::Str(s)) if !s.is_empty() => host.get("ip"),
        _ => doc.get("from"),
    };
    match value {
        Some(Value::List(l)) => !l.is_empty(),
        Some(Value::Str(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// `_zlogin_target`: a global-zone exec of zlogin names the zone it enters.
fn zlogin_target(doc: &Obj) -> Option<String> {
    let proc = doc.get("process").and_then(Value::as_obj);
    let exe = proc.and_then(|p| truthy_value(p.get("executable"))).or_else(|| doc.get("path"));
    let args = proc.and_then(|p| truthy_value(p.get("args"))).or_else(|| truthy_value(doc.get("exec_args")));
    let args: &[Value] = match args {
        Some(Value::List(items)) => items,
        _ => &[],
    };
    zlogin_zone(exe.and_then(Value::as_str), args.iter().map(Value::as_str))
}

/// The zone a zlogin enters (`_zlogin_target` of the executable and the arguments, None for an argument
/// that is not text), lower case; the documents written straight as JSON ask it too.
pub fn zlogin_zone<'s>(exe: Option<&str>, mut args: impl Iterator<Item = Option<&'s str>>) -> Option<String> {
    let first = args.next().flatten();
    let exe_is_zlogin = exe == Some(ZLOGIN);
    let first_is_zlogin = matches!(first, Some(ZLOGIN | "zlogin"));
    if !exe_is_zlogin && !first_is_zlogin {
        return None;
    }
    args.flatten().find(|a| is_uuid(a)).map(str::to_lowercase)
}

fn truthy_value(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::Str(s) => !s.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Obj(o) => !o.is_empty(),
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::UInt(u) => *u != 0,
        _ => true,
    })
}

fn update(target: &mut Obj, labels: &[(String, String)]) {
    for (k, v) in labels {
        target.set(k.clone(), v.clone());
    }
}

fn id_and_name(id: &str, name: &str) -> Obj {
    let mut o = Obj::with_capacity(2);
    o.push("id", id.to_owned());
    if !name.is_empty() {
        o.push("name", name.to_owned());
    }
    o
}

/// `_apply_zone(doc, info, in_zone=...)`.
fn apply_zone(doc: &mut Obj, info: &ZoneInfo, in_zone: bool, parties: Option<&Parties>) {
    let zonealias =
        if info.owner_login.is_empty() { info.alias.clone() } else { format!("{}-{}", info.owner_login, info.alias) };
    if doc.contains("zonename") || doc.get("schema").and_then(Value::as_str) == Some("auditrecv-v1") {
        doc.set("zonealias", zonealias);
        if !in_zone {
            doc.set("zlogin_zonename", info.uuid.clone());
        }
        return;
    }
    let mut zone = Obj::with_capacity(2);
    for (k, v) in [("id", &info.uuid), ("name", &info.alias)] {
        if !v.is_empty() {
            zone.push(k, v.clone());
        }
    }
    if in_zone {
        let container = doc.section("container");
        update_obj(container, &zone);
        if !container.contains("runtime") {
            container.push("runtime", "zone");
        }
        if !info.tags.is_empty() {
            update(container.section("labels"), &info.tags);
        }
        let mut resource = Obj::with_capacity(3);
        resource.push("type", "vm");
        resource.push("id", info.uuid.clone());
        if !info.alias.is_empty() {
            resource.push("name", info.alias.clone());
        }
        let mut orchestrator = Obj::with_capacity(2);
        orchestrator.push("type", "triton");
        orchestrator.push("resource", resource);
        doc.set("orchestrator", orchestrator);
        let cloud = doc.section("cloud");
        cloud.set("provider", "triton");
        cloud.set("instance", id_and_name(&info.uuid, &info.alias));
        if !info.owner_uuid.is_empty() {
            cloud.set("account", id_and_name(&info.owner_uuid, &info.owner_login));
        }
        let labels = doc.section("labels");
        labels.set("zonealias", zonealias);
        if !info.brand.is_empty() {
            labels.set("triton_brand", info.brand.clone());
        }
        if !info.server_uuid.is_empty() {
            labels.set("triton_server_uuid", info.server_uuid.clone());
        }
    } else {
        if let Some(p) = parties {
            p.thaw(doc);
        }
        let target = doc.section("auditrecv").section("zlogin");
        target.set("zone", zone);
        if !info.owner_uuid.is_empty() {
            target.set("owner", id_and_name(&info.owner_uuid, &info.owner_login));
        }
        target.set("zonealias", zonealias);
        let tags = match doc.get_mut("tags") {
            Some(Value::List(items)) => items,
            Some(_) => return, // Python: .append on a non-list raises; the enricher logs and moves on
            None => {
                doc.push("tags", Value::List(Vec::new()));
                let Some(Value::List(items)) = doc.get_mut("tags") else { unreachable!("pushed a list") };
                items
            }
        };
        if !tags.iter().any(|t| t.as_str() == Some("zlogin")) {
            tags.push("zlogin".into());
        }
    }
    if !info.owner_login.is_empty() {
        let related = doc.section("related");
        push_unique(related, "user", &info.owner_login);
    }
}

fn update_obj(target: &mut Obj, from: &Obj) {
    for (k, v) in &from.entries {
        target.set(k.clone(), v.clone());
    }
}

/// `d.setdefault(key, []).append(value)` unless already there.
fn push_unique(section: &mut Obj, key: &'static str, value: &str) {
    if !section.contains(key) {
        section.push(key, Value::List(Vec::new()));
    }
    if let Some(Value::List(items)) = section.get_mut(key) {
        if !items.iter().any(|v| v.as_str() == Some(value)) {
            items.push(value.to_owned().into());
        }
    }
}

/// The zone name a document names (`container.id`, or v1 `zonename`), as the enricher reads it.
fn zonename(doc: &Obj) -> Option<String> {
    let container_id = doc.get("container").and_then(Value::as_obj).and_then(|c| truthy_str(c.get("id")));
    container_id.map(str::to_owned).or_else(|| doc.get("zonename").and_then(Value::as_str).map(str::to_owned))
}

/// The zone the enricher looks up for a document, and whether the record is from inside it (else: a
/// zlogin from the global zone into it).
fn zone_target(doc: &Obj, zonename: Option<&str>) -> Option<(String, bool)> {
    match zonename.filter(|z| *z != "global") {
        Some(z) => Some((z.to_owned(), true)),
        None => zlogin_target(doc).map(|t| (t, false)),
    }
}

/// What enrichment would look up for this (not yet enriched) document by name: its zone name (static
/// map labels, and the zone) and the zone a zlogin enters. Empty names left out.
pub fn zone_refs(doc: &Obj) -> Vec<String> {
    let name = zonename(doc);
    let mut refs: Vec<String> = name.iter().filter(|z| !z.is_empty()).cloned().collect();
    if let Some((target, _)) = zone_target(doc, name.as_deref()) {
        if !target.is_empty() && !refs.contains(&target) {
            refs.push(target);
        }
    }
    refs
}

/// `Enricher._enrich(doc)` with the lookups answered by `e`; `parties` made the document's sections.
pub fn enrich(doc: &mut Obj, e: &Enrichment, parties: Option<&Parties>) {
    if !matches!(doc.get("host"), Some(Value::Obj(_))) {
        doc.set("host", Obj::new());
    }
    let zonename = zonename(doc);

    if let Some(ptr) = e.hostname.as_deref().filter(|p| !p.is_empty()) {
        let host = doc.get("host").and_then(Value::as_obj).expect("made above");
        if has_address(host, doc) && !host.contains("hostname") {
            doc.section("host").push("hostname", ptr.to_owned());
            push_unique(doc.section("related"), "hosts", ptr);
        }
    }

    let zone_labels = zonename
        .as_deref()
        .filter(|z| !z.is_empty())
        .and_then(|z| {
            let lower = z.to_lowercase();
            e.zone_labels.iter().find(|(name, _)| *name == lower)
        })
        .map(|(_, l)| l.as_slice())
        .unwrap_or(&[]);
    if !e.labels.is_empty() || !zone_labels.is_empty() {
        let labels = doc.section("labels");
        update(labels, &e.labels);
        update(labels, zone_labels);
    }

    let target = zone_target(doc, zonename.as_deref());
    if let Some((info, in_zone)) =
        target.and_then(|(t, in_zone)| e.zones.iter().find(|(k, _)| *k == t).map(|(_, z)| (z, in_zone)))
    {
        apply_zone(doc, info, in_zone, parties);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(o: &Obj) -> String {
        String::from_utf8(o.to_json().unwrap()).unwrap()
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6F"));
        assert!(!is_uuid("8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6"));
        assert!(!is_uuid("global"));
    }

    #[test]
    fn zone_and_sender_values() {
        let uuid = "8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f";
        let mut doc = Obj::new();
        doc.put("labels.dialect", "illumos");
        doc.put("host.name", "10.0.0.1");
        doc.put("host.ip", Value::str_list(["10.0.0.1"]));
        doc.put("container.id", uuid);
        doc.put("container.name", uuid);
        doc.put("container.runtime", "zone");
        let zone = ZoneInfo {
            uuid: uuid.into(),
            alias: "web".into(),
            owner_login: "alice".into(),
            owner_uuid: "o".into(),
            ..ZoneInfo::default()
        };
        let e = Enrichment {
            hostname: Some("gz.example".into()),
            labels: vec![("dc".into(), "ams1".into())],
            zone_labels: vec![],
            zones: vec![(uuid.into(), zone)],
        };
        enrich(&mut doc, &e, None);
        assert_eq!(
            json(&doc),
            concat!(
                r#"{"labels":{"dialect":"illumos","dc":"ams1","zonealias":"alice-web"},"host":{"name":"10.0.0.1","#,
                r#""ip":["10.0.0.1"],"hostname":"gz.example"},"container":{"id":"8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f","#,
                r#""name":"web","runtime":"zone"},"related":{"hosts":["gz.example"],"user":["alice"]},"#,
                r#""orchestrator":{"type":"triton","resource":{"type":"vm","id":"8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f","#,
                r#""name":"web"}},"cloud":{"provider":"triton","instance":{"id":"8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f","#,
                r#""name":"web"},"account":{"id":"o","name":"alice"}}}"#
            )
        );
    }
}
