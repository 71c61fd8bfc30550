//! Writes a [`Graph`] as JSON-LD: an `@context` of the prefixes and an `@graph` of the nodes.
//!
//! Keys and types stay compact (`dct:title`, `dcat:Dataset`); the value of an `@id` is always
//! the full IRI, so a reader that ignores the context still finds every link. Literals are
//! value objects with their language or datatype, never bare JSON numbers or booleans, so the
//! lexical form is exactly the Turtle one. The output is JSON-LD 1.1 (and valid 1.0: every
//! prefix ends in `#` or `/`).

use serde_json::{Map, Value, json};

use super::graph::{Graph, Literal, Node, Object};

pub fn write(graph: &Graph) -> String {
    let context: Map<String, Value> = graph
        .prefixes()
        .map(|(prefix, ns)| (prefix.to_owned(), Value::from(ns)))
        .collect();
    let nodes: Vec<Value> = graph.nodes().map(|n| node(graph, n)).collect();
    let document = json!({ "@context": context, "@graph": nodes });
    // A `Value` with string keys always serialises.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn node(graph: &Graph, node: &Node) -> Value {
    let mut object = Map::new();
    if let Some(id) = &node.id {
        object.insert("@id".into(), graph.expand(id).into());
    }
    if !node.types.is_empty() {
        object.insert(
            "@type".into(),
            one_or_many(node.types.iter().map(|t| json!(t))),
        );
    }
    for (predicate, objects) in node.grouped() {
        let values = objects.into_iter().map(|o| value(graph, o));
        object.insert(predicate.to_owned(), one_or_many(values));
    }
    Value::Object(object)
}

fn value(graph: &Graph, object: &Object) -> Value {
    match object {
        Object::Iri(iri) => json!({ "@id": graph.expand(iri) }),
        Object::Literal(Literal::Text(text)) => json!(text),
        Object::Literal(Literal::Lang(text, lang)) => json!({ "@value": text, "@language": lang }),
        Object::Literal(Literal::Typed(lexical, datatype)) => {
            json!({ "@value": lexical, "@type": datatype })
        }
        Object::Blank(nested) => node(graph, nested),
    }
}

/// A single value as itself, several as an array (the compacted JSON-LD shape).
fn one_or_many(values: impl Iterator<Item = Value>) -> Value {
    let mut values: Vec<Value> = values.collect();
    if values.len() == 1 {
        values.remove(0)
    } else {
        Value::Array(values)
    }
}

#[cfg(test)]
mod tests {
    use super::super::graph::Iri;
    use super::*;

    #[test]
    fn literals_keep_language_datatype_and_text() {
        let mut graph = Graph::new("http://h/ns#".into());
        let mut node = Node::new(Iri::Full("http://h/d".into()), "dcat:Dataset");
        node.zh_en("dct:title", r#"关爱"名册"\"#, "Care roster")
            .count("hub:rows", 7)
            .text("dct:identifier", "care_roster")
            .iri("hub:shareType", Iri::Term("hub:ConditionalShare"));
        graph.add(node);
        let document: Value = serde_json::from_str(&write(&graph)).expect("valid JSON");
        assert_eq!(document["@context"]["hub"], "http://h/ns#");
        assert_eq!(document["@context"]["dct"], "http://purl.org/dc/terms/");
        let node = &document["@graph"][0];
        assert_eq!(node["@id"], "http://h/d");
        assert_eq!(node["@type"], "dcat:Dataset");
        assert_eq!(
            node["dct:title"],
            json!([
                { "@value": "关爱\"名册\"\\", "@language": "zh" },
                { "@value": "Care roster", "@language": "en" }
            ])
        );
        assert_eq!(
            node["hub:rows"],
            json!({ "@value": "7", "@type": "xsd:nonNegativeInteger" })
        );
        assert_eq!(node["dct:identifier"], "care_roster");
        assert_eq!(
            node["hub:shareType"],
            json!({ "@id": "http://h/ns#ConditionalShare" })
        );
    }
}
