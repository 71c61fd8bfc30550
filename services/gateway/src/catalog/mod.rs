//! The catalogue (政务信息资源目录): every dataset with its live state.

pub mod dcat;

use hub_projector::datasets::Dataset;

/// Where a dataset's read model stands now. The catalogue is public: the position and row
/// count of a dataset that is not open are left out (a roster's row count, say, is a count
/// the open statistics withhold, and its position moves with each care event).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Every event at or below this log position that the dataset consumes is applied.
    pub position: Option<u64>,
    /// The log's last position when the status was taken; `None` when the log did not say.
    pub log_position: Option<u64>,
    /// How far behind the log the dataset is in time, in seconds; `None` until known.
    pub lag_seconds: Option<f64>,
    /// Rows the dataset holds.
    pub rows: Option<u64>,
    /// Set when the read model stopped rather than serve wrong data.
    pub halted: Option<String>,
}

/// One dataset of the catalogue with its live state.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dataset: &'static Dataset,
    pub status: Status,
}

/// The publisher of the catalogue itself and the city it serves.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// E.g. "上海市大数据中心 Shanghai big data centre".
    pub name: String,
    /// Department code to display name, for dataset publishers.
    pub departments: Vec<(String, String)>,
}
