//! The in-memory RDF graph both serialisations are written from.
//!
//! A graph is a list of nodes with IRIs, each with its types and properties; a blank node is
//! only ever the object of one property and sits nested inside it, so neither form needs blank
//! node labels. Vocabulary terms are kept as compact IRIs (`dct:title`) over [`PREFIXES`] and
//! the hub's namespace, which both forms declare.

use std::collections::HashSet;

/// The prefixes of the vocabularies used, with their namespaces. `hub` is added per graph,
/// since its namespace lies under the hub's base URL.
pub const PREFIXES: &[(&str, &str)] = &[
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("hydra", "http://www.w3.org/ns/hydra/core#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

/// A vocabulary term as `prefix:local`, the prefix one of [`PREFIXES`] or `hub`. The local part
/// is letters, digits, `_` and `-` only, so it is a valid Turtle prefixed name as it stands.
pub type Term = &'static str;

/// An IRI: a vocabulary term or a full IRI. A full IRI is made safe for Turtle's `<...>` where
/// it is built (see `super::iri`), so the two forms write it alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iri {
    Term(Term),
    Full(String),
}

/// A literal: plain text (`xsd:string`), language-tagged text, or a typed value in the lexical
/// form of its datatype.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Lang(String, &'static str),
    Typed(String, Term),
}

/// The object of a property.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Iri(Iri),
    Literal(Literal),
    /// A blank node, object of this property alone.
    Blank(Node),
}

/// A node with its types and properties. `id` is `None` for a blank node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub id: Option<Iri>,
    pub types: Vec<Term>,
    pub props: Vec<(Term, Object)>,
}

impl Node {
    pub fn new(id: Iri, class: Term) -> Self {
        Self {
            id: Some(id),
            types: vec![class],
            props: Vec::new(),
        }
    }

    pub fn blank(class: Term) -> Self {
        Self {
            id: None,
            types: vec![class],
            props: Vec::new(),
        }
    }

    pub fn iri(&mut self, predicate: Term, object: Iri) -> &mut Self {
        self.props.push((predicate, Object::Iri(object)));
        self
    }

    pub fn text(&mut self, predicate: Term, value: &str) -> &mut Self {
        self.props
            .push((predicate, Object::Literal(Literal::Text(value.to_owned()))));
        self
    }

    pub fn lang(&mut self, predicate: Term, value: &str, lang: &'static str) -> &mut Self {
        self.props.push((
            predicate,
            Object::Literal(Literal::Lang(value.to_owned(), lang)),
        ));
        self
    }

    /// The same property in Chinese and in English.
    pub fn zh_en(&mut self, predicate: Term, zh: &str, en: &str) -> &mut Self {
        self.lang(predicate, zh, "zh").lang(predicate, en, "en")
    }

    pub fn typed(&mut self, predicate: Term, lexical: String, datatype: Term) -> &mut Self {
        self.props.push((
            predicate,
            Object::Literal(Literal::Typed(lexical, datatype)),
        ));
        self
    }

    pub fn count(&mut self, predicate: Term, value: u64) -> &mut Self {
        self.typed(predicate, value.to_string(), "xsd:nonNegativeInteger")
    }

    pub fn nested(&mut self, predicate: Term, node: Node) -> &mut Self {
        self.props.push((predicate, Object::Blank(node)));
        self
    }

    /// The properties grouped by predicate, in the order each predicate first appears: JSON-LD
    /// needs one key per predicate, and Turtle reads better with `p o1, o2`.
    pub fn grouped(&self) -> Vec<(Term, Vec<&Object>)> {
        let mut groups: Vec<(Term, Vec<&Object>)> = Vec::new();
        for (predicate, object) in &self.props {
            match groups.iter_mut().find(|(p, _)| p == predicate) {
                Some((_, objects)) => objects.push(object),
                None => groups.push((predicate, vec![object])),
            }
        }
        groups
    }
}

/// The nodes of one document.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The namespace of the `hub` prefix.
    pub hub_ns: String,
    /// The nodes described for themselves (the catalogue, the page, the datasets).
    main: Vec<Node>,
    /// The nodes others refer to (agents, vocabulary terms), each once, written after `main`
    /// so a reader meets the catalogue and its datasets first.
    shared: Vec<Node>,
    /// The full IRIs of all nodes.
    ids: HashSet<String>,
}

impl Graph {
    pub fn new(hub_ns: String) -> Self {
        Self {
            hub_ns,
            main: Vec::new(),
            shared: Vec::new(),
            ids: HashSet::new(),
        }
    }

    /// Every node, in the order they are written.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.main.iter().chain(&self.shared)
    }

    /// Every prefix the graph's terms use, `hub` last.
    pub fn prefixes(&self) -> impl Iterator<Item = (&str, &str)> {
        PREFIXES
            .iter()
            .copied()
            .chain(std::iter::once(("hub", self.hub_ns.as_str())))
    }

    /// The full IRI of `iri`.
    pub fn expand(&self, iri: &Iri) -> String {
        match iri {
            Iri::Full(full) => full.clone(),
            Iri::Term(term) => {
                let (prefix, local) = term.split_once(':').unwrap_or(("", term));
                let ns = self
                    .prefixes()
                    .find(|(p, _)| *p == prefix)
                    .map_or("", |(_, ns)| ns);
                debug_assert!(!ns.is_empty(), "term {term} has no declared prefix");
                format!("{ns}{local}")
            }
        }
    }

    /// Adds a node described for itself.
    pub fn add(&mut self, node: Node) {
        if let Some(id) = &node.id {
            self.ids.insert(self.expand(id));
        }
        self.main.push(node);
    }

    /// Adds a node that others refer to, made by `make`, unless a node of that IRI is in.
    pub fn add_once(&mut self, id: Iri, make: impl FnOnce(Iri) -> Node) {
        if self.ids.insert(self.expand(&id)) {
            self.shared.push(make(id));
        }
    }
}
