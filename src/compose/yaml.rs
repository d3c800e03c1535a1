//! A YAML tree that remembers where each value was written, so that every
//! later step (interpolation, `extends`, mapping) can point at `file:line:column`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// One YAML value. Mapping keys are kept as written (scalars as text), in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// A scalar as Compose reads it where a string is expected (`3306` -> "3306").
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(f.to_string()),
            Node::Bool(b) => Some(b.to_string()),
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Spanned<Node>> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What a user would call this value in an error message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// A mapping key: any scalar, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let node = Node::deserialize(deserializer)?;
        node.scalar_text().map(Key).ok_or_else(|| {
            de::Error::custom(format!("a mapping key cannot be {}", node.type_name()))
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .or(Ok(Node::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(Spanned<String>, Spanned<Node>)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let key = Spanned::new(key.value.0, key.referenced, key.defined);
            // A later duplicate wins, as in Go's YAML decoder for maps.
            entries.retain(|(k, _)| k.value != key.value);
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Parses one YAML document; the error is `(location, message)` on one line.
pub fn parse(text: &str) -> Result<Spanned<Node>, (Location, String)> {
    serde_saphyr::from_str::<Spanned<Node>>(text).map_err(|err| {
        let mut options = serde_saphyr::RenderOptions::default();
        options.snippets = serde_saphyr::SnippetMode::Off;
        let rendered = err.render_with_options(options);
        let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
        let message = match first.rfind(" at line ") {
            Some(index) => &first[..index],
            None => first,
        };
        (
            err.location().unwrap_or(Location::UNKNOWN),
            message.to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locations_and_order() {
        let doc = parse("b: 1\na:\n  - x\n  - {y: true}\n").unwrap();
        let Node::Map(entries) = &doc.value else {
            panic!("{doc:?}")
        };
        assert_eq!(entries[0].0.value, "b");
        assert_eq!(entries[1].0.value, "a");
        let a = doc.value.get("a").unwrap();
        let Node::Seq(items) = &a.value else { panic!() };
        assert_eq!(items[0].value, Node::Str("x".into()));
        assert_eq!(
            (items[1].referenced.line(), items[1].referenced.column()),
            (4, 5)
        );
    }

    #[test]
    fn merge_keys_and_anchors() {
        let doc =
            parse("x-base: &base\n  image: a\n  restart: always\nsvc:\n  <<: *base\n  image: b\n")
                .unwrap();
        let svc = doc.value.get("svc").unwrap();
        assert_eq!(svc.value.get("image").unwrap().value, Node::Str("b".into()));
        assert_eq!(
            svc.value.get("restart").unwrap().value,
            Node::Str("always".into())
        );
    }

    #[test]
    fn errors_are_located() {
        let (at, message) = parse("a: [1\nb: 2\n").unwrap_err();
        assert_ne!(at, Location::UNKNOWN);
        assert!(!message.contains('\n'), "{message}");
    }
}
