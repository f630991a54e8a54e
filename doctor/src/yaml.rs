//! A YAML (or JSON) document as a tree whose every node knows its line, so
//! each finding can point at the setting it is about.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

/// One node of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line. A mapping's value carries its key's line, so a
    /// missing setting is reported where its parent is written.
    pub line: usize,
    /// What the node holds.
    pub kind: Kind,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A mapping, in document order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A scalar as written (numbers and booleans as their text), with the
    /// line its content starts on (the line after a `|` or `>` indicator)
    /// and whether it is such a block scalar (its lines are the file's).
    Scalar(String, usize, bool),
    /// `null`, `~` or an empty value.
    Null,
}

/// Parses the first document of `text`. JSON is YAML 1.2, so it parses too.
pub fn parse(text: &str) -> Result<Node, String> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    docs.into_iter()
        .next()
        .map(|d| convert(&d, &lines, None))
        .ok_or_else(|| "the file holds no YAML document".to_string())
}

fn convert(y: &MarkedYamlOwned, lines: &[&str], key_line: Option<usize>) -> Node {
    let own = y.span.start.line().max(1);
    let line = key_line.unwrap_or(own);
    let kind = match &y.data {
        YamlDataOwned::Mapping(m) => Kind::Map(
            m.iter()
                .map(|(k, v)| {
                    let name = match &k.data {
                        YamlDataOwned::Value(s) => scalar_text(s),
                        YamlDataOwned::Representation(s, _, _) => s.clone(),
                        _ => String::new(),
                    };
                    let kl = k.span.start.line().max(1);
                    (name, convert(v, lines, Some(kl)))
                })
                .collect(),
        ),
        YamlDataOwned::Sequence(s) => {
            Kind::Seq(s.iter().map(|i| convert(i, lines, None)).collect())
        }
        YamlDataOwned::Value(ScalarOwned::Null) => Kind::Null,
        YamlDataOwned::Value(s) => {
            let (l, block) = content_line(y, lines, key_line);
            Kind::Scalar(scalar_text(s), l, block)
        }
        YamlDataOwned::Representation(s, _, _) => {
            let (l, block) = content_line(y, lines, key_line);
            Kind::Scalar(s.clone(), l, block)
        }
        YamlDataOwned::Tagged(_, inner) => return convert(inner, lines, key_line),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => Kind::Null,
    };
    Node { line, kind }
}

fn scalar_text(s: &ScalarOwned) -> String {
    match s {
        ScalarOwned::Null => String::new(),
        ScalarOwned::Boolean(b) => b.to_string(),
        ScalarOwned::Integer(i) => i.to_string(),
        ScalarOwned::FloatingPoint(f) => f.to_string(),
        ScalarOwned::String(s) => s.clone(),
    }
}

/// The line a scalar's text starts on, and whether it is a block scalar
/// (`|`, `>`): its span starts at its first line of text, after the
/// indicator that ends the key's line (or at the indicator itself).
fn content_line(y: &MarkedYamlOwned, lines: &[&str], key_line: Option<usize>) -> (usize, bool) {
    let line = y.span.start.line().max(1);
    let ends_with_indicator = |l: usize| {
        lines.get(l.wrapping_sub(1)).is_some_and(|t| {
            let t = t
                .trim_end()
                .trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
            t.ends_with(": |") || t.ends_with(": >") || t.ends_with("- |") || t.ends_with("- >")
        })
    };
    let rest: String = lines
        .get(line - 1)
        .map(|l| l.chars().skip(y.span.start.col()).collect())
        .unwrap_or_default();
    if rest.starts_with('|') || rest.starts_with('>') {
        (line + 1, true)
    } else if key_line.is_some_and(|k| k < line && ends_with_indicator(k))
        || ends_with_indicator(line - 1)
    {
        (line, true)
    } else {
        (line, false)
    }
}

impl Node {
    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The scalar's text.
    pub fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _, _) => Some(s),
            _ => None,
        }
    }

    /// The text at a path of keys.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Node::str)
    }

    /// Whether the scalar at `path` is `true`.
    pub fn is_true(&self, path: &[&str]) -> bool {
        self.str_at(path) == Some("true")
    }

    /// A sequence's items (none for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(s) => s,
            _ => &[],
        }
    }

    /// The items of the sequence at `path`.
    pub fn items_at(&self, path: &[&str]) -> &[Node] {
        self.at(path).map(Node::items).unwrap_or(&[])
    }

    /// A mapping's entries (none for anything else).
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.kind {
            Kind::Map(m) => m,
            _ => &[],
        }
    }

    /// The line a scalar's content starts on, else the node's line.
    pub fn content_line(&self) -> usize {
        match &self.kind {
            Kind::Scalar(_, l, _) => *l,
            _ => self.line,
        }
    }

    /// Whether this is a block scalar (`|`, `>`), whose text lines are the
    /// file's lines.
    pub fn is_block(&self) -> bool {
        matches!(self.kind, Kind::Scalar(_, _, true))
    }

    /// The deepest node along a plugin-configuration field path such as
    /// `login_flow.keys[0].secret_env`, and whether the whole path was found.
    pub fn along(&self, field: &str) -> (&Node, bool) {
        let mut node = self;
        for part in field.split('.') {
            let (key, indexes) = match part.find('[') {
                Some(i) => (part.get(..i).unwrap_or(part), part.get(i..).unwrap_or("")),
                None => (part, ""),
            };
            match node.get(key) {
                Some(n) => node = n,
                None => return (node, false),
            }
            for idx in indexes.split('[').filter(|s| !s.is_empty()) {
                let i: Option<usize> = idx.trim_end_matches(']').parse().ok();
                match i.and_then(|i| node.items().get(i)) {
                    Some(n) => node = n,
                    None => return (node, false),
                }
            }
        }
        (node, true)
    }
}

/// Parses an Envoy duration: `"300s"`, `"0.5s"`, or `{seconds, nanos}`;
/// `None` when absent or unreadable.
pub fn duration_secs(n: Option<&Node>) -> Option<f64> {
    let n = n?;
    if let Some(s) = n.str() {
        return s.strip_suffix('s')?.parse().ok();
    }
    let secs: f64 = n.str_at(&["seconds"]).unwrap_or("0").parse().ok()?;
    let nanos: f64 = n.str_at(&["nanos"]).unwrap_or("0").parse().ok()?;
    Some(secs + nanos / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_keys_and_block_scalars() {
        let doc = parse("a:\n  b: 1\n  c:\n  - x: y\n  d: |\n    {\"k\": 1}\n").unwrap();
        assert_eq!(doc.at(&["a", "b"]).unwrap().line, 2);
        assert_eq!(doc.at(&["a", "c"]).unwrap().line, 3);
        assert_eq!(doc.items_at(&["a", "c"])[0].line, 4);
        let d = doc.at(&["a", "d"]).unwrap();
        assert_eq!((d.line, d.content_line()), (5, 6));
        assert_eq!(d.str(), Some("{\"k\": 1}\n"));
    }

    #[test]
    fn json_parses_with_lines() {
        let doc = parse("{\n \"a\": {\n  \"b\": [1, 2]\n }\n}").unwrap();
        assert_eq!(doc.along("a.b[1]").0.line, 3);
        assert!(doc.along("a.b[1]").1);
        let (n, found) = doc.along("a.zz[0]");
        assert!(!found);
        assert_eq!(n.line, 2);
    }

    #[test]
    fn durations() {
        let doc = parse("a: 300s\nb: 0.5s\nc: {seconds: 2, nanos: 500000000}\nd: soon\n").unwrap();
        assert_eq!(duration_secs(doc.get("a")), Some(300.0));
        assert_eq!(duration_secs(doc.get("b")), Some(0.5));
        assert_eq!(duration_secs(doc.get("c")), Some(2.5));
        assert_eq!(duration_secs(doc.get("d")), None);
        assert_eq!(duration_secs(doc.get("e")), None);
    }
}
