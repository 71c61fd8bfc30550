//! The catalogue as DCAT-AP 3.0.1, in Turtle and in JSON-LD, one page at a time.
//!
//! Both forms are written from one in-memory graph (module `graph`), so they carry the same
//! triples; they differ only in the page links, which name their own form
//! (`<base>/catalog.ttl?page=N` or `<base>/catalog.jsonld?page=N`). The export conforms to the
//! official DCAT-AP 3.0.1 shapes in `deploy/dcat-ap-3.0.1` (the `dcat_shacl` test checks it
//! with pyshacl), class ranges included: every node an exported property points to is typed.
//!
//! What one page holds, under the hub's base URL `<base>`:
//!
//! - `<base>/catalog`, a `dcat:Catalog`: title and description in Chinese and English
//!   (`@zh`, `@en`), its languages (`dct:language`, the EU language authority's ZHO and ENG),
//!   publisher `<base>/publisher` (a `foaf:Agent` named [`Publisher::name`]), `dct:modified` when
//!   given, and `dcat:dataset` for the datasets of this page only.
//! - `<base>/datasets/<id>`, a `dcat:Dataset` per entry: `dct:identifier`, title and
//!   description `@zh` and `@en`, `dct:publisher` (the owning department as
//!   `<base>/departments/<code>`, named from [`Publisher::departments`], or the hub's publisher
//!   for datasets the hub owns), `dcat:keyword` (tagged `@zh` when it holds a Han character,
//!   else `@en`), `dct:accrualPeriodicity` from the EU frequency authority (CONT, DAILY,
//!   MONTHLY), `dct:accessRights` from the EU access-right authority (PUBLIC for 无条件开放,
//!   RESTRICTED for 有条件开放, NON_PUBLIC for 不予开放), and one `dcat:Distribution`: the JSON
//!   rows at `dcat:accessURL <base>/datasets/<id>`, media type `application/json` (IANA), format
//!   JSON (EU file-type authority).
//! - A `hydra:PagedCollection` at this page's own URL, as ckanext-dcat writes it: `totalItems`,
//!   `itemsPerPage`, first, last, next and previous page where they exist, each link under
//!   both Hydra names (`hydra:nextPage` and `hydra:next`; ckanext-dcat writes both, the first
//!   being deprecated in Hydra). Unlike ckanext-dcat, which writes the links as string
//!   literals, they are IRIs here: Hydra defines them as links, and ckanext-dcat's and other
//!   harvesters read either. Page 1 of a catalogue that fits one page carries it too.
//!
//! What DCAT has no term for lives in the hub's namespace, prefix `hub:`, at `<base>/ns#` (the
//! hub names its own terms under its own URL rather than a domain the project does not hold):
//!
//! - `hub:shareType`: 无条件共享, 有条件共享 or 不予共享, as the `skos:Concept`
//!   `hub:UnconditionalShare`, `hub:ConditionalShare` or `hub:NotShared` (labels `@zh`, `@en`).
//! - `hub:sensitivity`, of the dataset (its most sensitive field) and of each field:
//!   `hub:Public`, `hub:Internal`, `hub:Personal` or `hub:Sensitive`, also `skos:Concept`s.
//! - `hub:field`, one blank `hub:Field` per field: `hub:order` (1-based column order),
//!   `hub:name`, `hub:fieldType` (the XML Schema datatype of its values: `xsd:string`,
//!   `xsd:integer`, `xsd:decimal`, `xsd:dateTime`, `xsd:date`, `xsd:gYearMonth`),
//!   `hub:sensitivity`, and `dct:title` `@zh` and `@en`.
//! - `hub:status`, a blank `hub:Status` with the live state when the page was made:
//!   `hub:position` and `hub:logPosition` (`xsd:nonNegativeInteger`), `hub:lagSeconds`
//!   (`xsd:decimal`, absent while unknown), `hub:rows` (`xsd:nonNegativeInteger`),
//!   `hub:halted` (`xsd:boolean`) and, when halted, `hub:haltReason`.
//!
//! The open type needs no hub term: `dct:accessRights` maps its three values one to one.

mod graph;
mod jsonld;
mod turtle;

use hub_projector::datasets::{
    Dataset, FieldType, OpenType, Owner, Sensitivity, ShareType, UpdateCycle,
};
use jiff::Timestamp;
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Entry, Publisher, Status};
use graph::{Graph, Iri, Node, Term};

const FREQUENCY: &str = "http://publications.europa.eu/resource/authority/frequency/";
const ACCESS_RIGHT: &str = "http://publications.europa.eu/resource/authority/access-right/";
const FILE_TYPE_JSON: &str = "http://publications.europa.eu/resource/authority/file-type/JSON";
const LANGUAGE: &str = "http://publications.europa.eu/resource/authority/language/";
const MEDIA_TYPE_JSON: &str = "http://www.iana.org/assignments/media-types/application/json";

/// One page of the catalogue to export.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The datasets of this page, in catalogue order.
    pub entries: &'a [Entry],
    /// The hub's public base URL, e.g. `http://127.0.0.1:50051`; a trailing `/` is ignored.
    pub base_url: &'a str,
    /// 1-based; 0 is taken as 1.
    pub page: u64,
    /// Datasets per page; 0 is taken as one page holding everything.
    pub page_size: u64,
    /// Datasets in the whole catalogue.
    pub total: u64,
    pub publisher: &'a Publisher,
    /// When the catalogue last changed, if known (`dct:modified` of the catalogue).
    pub modified: Option<Timestamp>,
}

impl Page<'_> {
    fn number(&self) -> u64 {
        self.page.max(1)
    }

    /// The number of the last page: 1 for an empty catalogue.
    pub fn last_page(&self) -> u64 {
        match self.page_size {
            0 => 1,
            size => self.total.div_ceil(size).max(1),
        }
    }

    /// Datasets a full page holds: all of them when the page size is 0.
    pub fn items_per_page(&self) -> u64 {
        match self.page_size {
            0 => self.total,
            size => size,
        }
    }

    /// The next page, if this one is not the last.
    pub fn next_page(&self) -> Option<u64> {
        (self.number() < self.last_page()).then(|| self.number() + 1)
    }

    /// The previous page, if this one is not the first; from past the end, the last page.
    pub fn previous_page(&self) -> Option<u64> {
        (self.number() > 1).then(|| (self.number() - 1).min(self.last_page()))
    }
}

/// The page as Turtle, its page links to `<base>/catalog.ttl?page=N`.
pub fn turtle(page: &Page) -> String {
    turtle::write(&describe(page, "ttl"))
}

/// The page as JSON-LD, its page links to `<base>/catalog.jsonld?page=N`.
pub fn jsonld(page: &Page) -> String {
    jsonld::write(&describe(page, "jsonld"))
}

/// The graph of `page`; `extension` names the form its page links point to.
fn describe(page: &Page, extension: &str) -> Graph {
    let base = base(page.base_url);
    let mut graph = Graph::new(format!("{base}/ns#"));
    let hub_agent = Iri::Full(publisher_iri(&base));

    let mut catalog = Node::new(Iri::Full(format!("{base}/catalog")), "dcat:Catalog");
    catalog
        .zh_en(
            "dct:title",
            "政务信息资源目录",
            "Government information resource catalogue",
        )
        .zh_en(
            "dct:description",
            "城市数据共享枢纽的数据集目录：每个数据集的提供部门、共享与开放类型、更新周期、\
             字段及其读模型的实时状态。",
            "The datasets of the city data-sharing hub: for each, the providing department, \
             share and open types, update cycle, fields and the live state of its read model.",
        )
        .iri("dct:publisher", hub_agent.clone())
        .iri("dct:language", Iri::Full(format!("{LANGUAGE}ZHO")))
        .iri("dct:language", Iri::Full(format!("{LANGUAGE}ENG")));
    if let Some(modified) = page.modified {
        catalog.typed("dct:modified", modified.to_string(), "xsd:dateTime");
    }
    for entry in page.entries {
        catalog.iri("dcat:dataset", dataset_iri(&base, entry.dataset));
    }
    graph.add(catalog);
    graph.add(collection(page, &base, extension));
    agent(&mut graph, hub_agent, &page.publisher.name);
    for code in ["ZHO", "ENG"] {
        typed(
            &mut graph,
            format!("{LANGUAGE}{code}"),
            "dct:LinguisticSystem",
        );
    }
    for entry in page.entries {
        dataset(&mut graph, &base, page.publisher, entry);
    }
    graph
}

/// The `hydra:PagedCollection` node of the page, at the page's own URL.
fn collection(page: &Page, base: &str, extension: &str) -> Node {
    let url = |n: u64| Iri::Full(format!("{base}/catalog.{extension}?page={n}"));
    let mut node = Node::new(url(page.number()), "hydra:PagedCollection");
    node.count("hydra:totalItems", page.total)
        .count("hydra:itemsPerPage", page.items_per_page());
    let links = [
        (Some(1), ["hydra:firstPage", "hydra:first"]),
        (Some(page.last_page()), ["hydra:lastPage", "hydra:last"]),
        (page.next_page(), ["hydra:nextPage", "hydra:next"]),
        (
            page.previous_page(),
            ["hydra:previousPage", "hydra:previous"],
        ),
    ];
    for (target, predicates) in links {
        if let Some(n) = target {
            for predicate in predicates {
                node.iri(predicate, url(n));
            }
        }
    }
    node
}

fn dataset(graph: &mut Graph, base: &str, publisher: &Publisher, entry: &Entry) {
    let d = entry.dataset;
    let mut node = Node::new(dataset_iri(base, d), "dcat:Dataset");
    node.text("dct:identifier", d.id)
        .zh_en("dct:title", d.title_zh, d.title_en)
        .zh_en("dct:description", d.description_zh, d.description_en);

    let (agent_iri, name) = match d.owner {
        Owner::Hub => (publisher_iri(base), publisher.name.as_str()),
        Owner::Department(code) => {
            let name = publisher
                .departments
                .iter()
                .find(|(c, _)| c == code)
                .map_or(code, |(_, name)| name.as_str());
            (format!("{base}/departments/{}", segment(code)), name)
        }
    };
    node.iri("dct:publisher", Iri::Full(agent_iri.clone()));
    agent(graph, Iri::Full(agent_iri), name);

    for keyword in d.keywords {
        let lang = if keyword.chars().any(is_han) {
            "zh"
        } else {
            "en"
        };
        node.lang("dcat:keyword", keyword, lang);
    }

    let frequency = format!("{FREQUENCY}{}", frequency(d.cycle));
    node.iri("dct:accrualPeriodicity", Iri::Full(frequency.clone()));
    typed(graph, frequency, "dct:Frequency");
    let rights = format!("{ACCESS_RIGHT}{}", access_right(d.open));
    node.iri("dct:accessRights", Iri::Full(rights.clone()));
    typed(graph, rights, "dct:RightsStatement");

    node.nested("dcat:distribution", distribution(base, d));
    typed(graph, MEDIA_TYPE_JSON.into(), "dct:MediaType");
    typed(graph, FILE_TYPE_JSON.into(), "dct:MediaTypeOrExtent");

    let share = share_type(d.share);
    node.iri("hub:shareType", Iri::Term(share.0));
    concept(graph, share);
    let sensitivity = self::sensitivity(d.sensitivity());
    node.iri("hub:sensitivity", Iri::Term(sensitivity.0));
    concept(graph, sensitivity);
    for (order, field) in (1..).zip(d.fields) {
        let mut column = Node::blank("hub:Field");
        let sensitivity = self::sensitivity(field.sensitivity);
        column
            .count("hub:order", order)
            .text("hub:name", field.name)
            .iri("hub:fieldType", Iri::Term(field_type(field.kind)))
            .iri("hub:sensitivity", Iri::Term(sensitivity.0))
            .zh_en("dct:title", field.title_zh, field.title_en);
        concept(graph, sensitivity);
        node.nested("hub:field", column);
    }
    node.nested("hub:status", status(&entry.status));
    graph.add(node);
}

/// The one distribution of a dataset: its rows as JSON.
fn distribution(base: &str, d: &Dataset) -> Node {
    let mut node = Node::blank("dcat:Distribution");
    node.iri("dcat:accessURL", dataset_iri(base, d))
        .iri("dcat:mediaType", Iri::Full(MEDIA_TYPE_JSON.into()))
        .iri("dct:format", Iri::Full(FILE_TYPE_JSON.into()))
        .zh_en(
            "dct:title",
            &format!("{}（JSON 数据行）", d.title_zh),
            &format!("{} (JSON rows)", d.title_en),
        )
        .zh_en(
            "dct:description",
            "数据集的数据行，每行一个 JSON 对象，按键顺序分页。",
            "The dataset's rows, one JSON object each, paged in key order.",
        );
    node
}

fn status(status: &Status) -> Node {
    let mut node = Node::blank("hub:Status");
    if let Some(position) = status.position {
        node.count("hub:position", position);
    }
    if let Some(position) = status.log_position {
        node.count("hub:logPosition", position);
    }
    // xsd:decimal has no exponent, infinity or NaN, and Rust writes a finite f64 without an
    // exponent: a lag that is not finite is as good as unknown.
    if let Some(lag) = status.lag_seconds.filter(|lag| lag.is_finite()) {
        node.typed("hub:lagSeconds", lag.to_string(), "xsd:decimal");
    }
    if let Some(rows) = status.rows {
        node.count("hub:rows", rows);
    }
    node.typed(
        "hub:halted",
        status.halted.is_some().to_string(),
        "xsd:boolean",
    );
    if let Some(reason) = &status.halted {
        node.text("hub:haltReason", reason);
    }
    node
}

/// Adds an agent once.
fn agent(graph: &mut Graph, id: Iri, name: &str) {
    graph.add_once(id, |id| {
        let mut node = Node::new(id, "foaf:Agent");
        node.text("foaf:name", name);
        node
    });
}

/// Adds `iri a class` once: the range shapes check the class of every object.
fn typed(graph: &mut Graph, iri: String, class: Term) {
    graph.add_once(Iri::Full(iri), |id| Node::new(id, class));
}

/// A hub concept: its term and its labels in Chinese and English.
type Concept = (Term, &'static str, &'static str);

/// Adds a hub concept once.
fn concept(graph: &mut Graph, (term, zh, en): Concept) {
    graph.add_once(Iri::Term(term), |id| {
        let mut node = Node::new(id, "skos:Concept");
        node.zh_en("skos:prefLabel", zh, en);
        node
    });
}

fn frequency(cycle: UpdateCycle) -> &'static str {
    match cycle {
        UpdateCycle::Continuous => "CONT",
        UpdateCycle::Daily => "DAILY",
        UpdateCycle::Monthly => "MONTHLY",
    }
}

fn access_right(open: OpenType) -> &'static str {
    match open {
        OpenType::Open => "PUBLIC",
        OpenType::Conditional => "RESTRICTED",
        OpenType::NotOpen => "NON_PUBLIC",
    }
}

fn share_type(share: ShareType) -> Concept {
    match share {
        ShareType::Unconditional => (
            "hub:UnconditionalShare",
            "无条件共享",
            "Unconditional sharing",
        ),
        ShareType::Conditional => ("hub:ConditionalShare", "有条件共享", "Conditional sharing"),
        ShareType::NotShared => ("hub:NotShared", "不予共享", "Not shared"),
    }
}

fn sensitivity(sensitivity: Sensitivity) -> Concept {
    match sensitivity {
        Sensitivity::Public => ("hub:Public", "可公开", "Public"),
        Sensitivity::Internal => ("hub:Internal", "政务内部", "Internal"),
        Sensitivity::Personal => ("hub:Personal", "个人信息", "Personal information"),
        Sensitivity::Sensitive => (
            "hub:Sensitive",
            "敏感个人信息",
            "Sensitive personal information",
        ),
    }
}

fn field_type(kind: FieldType) -> Term {
    match kind {
        FieldType::Text => "xsd:string",
        FieldType::Integer => "xsd:integer",
        FieldType::Decimal => "xsd:decimal",
        FieldType::Timestamp => "xsd:dateTime",
        FieldType::Date => "xsd:date",
        FieldType::Month => "xsd:gYearMonth",
    }
}

/// The hub's publisher, as an agent.
fn publisher_iri(base: &str) -> String {
    format!("{base}/publisher")
}

fn dataset_iri(base: &str, d: &Dataset) -> Iri {
    Iri::Full(format!("{base}/datasets/{}", segment(d.id)))
}

/// What may not stand in a Turtle IRI (`<...>`): controls, space and `<>"{}|^`\`.
const NOT_IN_IRI: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'^')
    .add(b'`')
    .add(b'\\');

/// The base URL without a trailing `/`, percent-encoding what a Turtle IRI may not hold (and,
/// as the encoder always does, non-ASCII as UTF-8), so a misconfigured URL still makes a
/// well-formed document.
fn base(base_url: &str) -> String {
    utf8_percent_encode(base_url.trim_end_matches('/'), NOT_IN_IRI).to_string()
}

/// Everything but RFC 3986's unreserved characters.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id or code as one path segment. Ids and codes are slugs already; this keeps a `/` or
/// space in one from changing the IRI's structure.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// A CJK ideograph: the unified block, extension A, the compatibility block, and the
/// supplementary planes' extensions B to H with their compatibility supplement.
fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{323AF}')
}

#[cfg(test)]
mod tests;
