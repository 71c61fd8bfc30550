//! Writes a [`Graph`] as Turtle (UTF-8): one block per node, nested blank nodes in `[ ]`.

use std::fmt::Write as _;

use super::graph::{Graph, Iri, Literal, Node, Object};

const INDENT: &str = "    ";

pub fn write(graph: &Graph) -> String {
    let mut out = String::new();
    for (prefix, ns) in graph.prefixes() {
        let _ = writeln!(out, "@prefix {prefix}: <{ns}> .");
    }
    for node in graph.nodes() {
        out.push('\n');
        match &node.id {
            Some(id) => iri(&mut out, id),
            // Not built so, but a top-level blank node is still valid Turtle this way.
            None => out.push_str("[]"),
        }
        out.push('\n');
        body(&mut out, node, 1);
        out.push_str(" .\n");
    }
    out
}

/// The types and properties of `node`, one per line at `depth`, separated by ` ;`.
fn body(out: &mut String, node: &Node, depth: usize) {
    let pad = INDENT.repeat(depth);
    let mut first = true;
    let mut line = |out: &mut String| {
        if !first {
            out.push_str(" ;\n");
        }
        first = false;
        out.push_str(&pad);
    };
    if !node.types.is_empty() {
        line(out);
        out.push_str("a ");
        out.push_str(&node.types.join(", "));
    }
    for (predicate, objects) in node.grouped() {
        line(out);
        out.push_str(predicate);
        out.push(' ');
        for (i, object) in objects.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match object {
                Object::Iri(id) => iri(out, id),
                Object::Literal(literal) => self::literal(out, literal),
                Object::Blank(nested) => {
                    out.push_str("[\n");
                    body(out, nested, depth + 1);
                    out.push('\n');
                    out.push_str(&pad);
                    out.push(']');
                }
            }
        }
    }
}

fn iri(out: &mut String, iri: &Iri) {
    match iri {
        Iri::Term(term) => out.push_str(term),
        Iri::Full(full) => {
            debug_assert!(!full.contains(|c: char| c <= ' ' || "<>\"{}|^`\\".contains(c)));
            out.push('<');
            out.push_str(full);
            out.push('>');
        }
    }
}

fn literal(out: &mut String, literal: &Literal) {
    match literal {
        Literal::Text(text) => quoted(out, text),
        Literal::Lang(text, lang) => {
            quoted(out, text);
            out.push('@');
            out.push_str(lang);
        }
        Literal::Typed(lexical, datatype) => {
            quoted(out, lexical);
            out.push_str("^^");
            out.push_str(datatype);
        }
    }
}

/// `text` as a Turtle `"..."` string. Turtle is UTF-8, so Chinese and every other character
/// stay as they are; only `"` and `\` and the control characters are escaped (a raw line break
/// would end a single-quoted string).
pub fn quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> String {
        let mut out = String::new();
        quoted(&mut out, text);
        out
    }

    #[test]
    fn chinese_stays_as_it_is_and_quotes_are_escaped() {
        assert_eq!(q("上海市民政局"), "\"上海市民政局\"");
        assert_eq!(
            q(r#"他说："关爱名册" \ 备注"#),
            r#""他说：\"关爱名册\" \\ 备注""#
        );
        assert_eq!(q("第一行\n第二行\r\t"), r#""第一行\n第二行\r\t""#);
        // C0 and C1 controls as \u escapes; emoji and CJK extension B as they are.
        assert_eq!(q("a\u{0}b\u{1b}c\u{85}"), r#""a\u0000b\u001Bc\u0085""#);
        assert_eq!(q("𠀀😀"), "\"𠀀😀\"");
    }

    #[test]
    fn nested_blank_nodes_and_repeated_predicates() {
        let mut graph = Graph::new("http://h/ns#".into());
        let mut node = Node::new(Iri::Full("http://h/d".into()), "dcat:Dataset");
        node.zh_en("dct:title", "标题", "Title");
        let mut field = Node::blank("hub:Field");
        field.text("hub:name", "id");
        node.nested("hub:field", field.clone())
            .nested("hub:field", field);
        graph.add(node);
        let text = write(&graph);
        let expected = r#"
<http://h/d>
    a dcat:Dataset ;
    dct:title "标题"@zh, "Title"@en ;
    hub:field [
        a hub:Field ;
        hub:name "id"
    ], [
        a hub:Field ;
        hub:name "id"
    ] .
"#;
        assert!(text.ends_with(expected), "{text}");
        assert!(text.starts_with("@prefix dcat: <http://www.w3.org/ns/dcat#> .\n"));
        assert!(text.contains("@prefix hub: <http://h/ns#> .\n"));
    }
}
