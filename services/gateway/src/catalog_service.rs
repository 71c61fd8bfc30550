//! `gov.hub.v1.CatalogService` and `gov.hub.v1.DatasetService`.

use hub_api::v1;
use hub_api::v1::catalog_service_server::CatalogService;
use hub_api::v1::dataset_service_server::DatasetService;
use hub_projector::datasets::{
    Dataset, FieldType, OpenType, Owner, Sensitivity, ShareType, UpdateCycle,
};
use tonic::{Request, Response, Status};

use crate::audited::{Answered, Asked, audited, proven};
use crate::catalog::Entry;
use crate::datasets::{Datasets, Reader};
use crate::deadline::read_wait;

#[derive(Clone)]
pub struct Catalog {
    datasets: Datasets,
    base_url: String,
}

impl Catalog {
    /// `base_url`: where the hub's HTTP endpoints are reached, for the access URLs.
    pub fn new(datasets: Datasets, base_url: String) -> Self {
        Self {
            datasets,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn to_proto(&self, entry: Entry) -> v1::Dataset {
        let d: &Dataset = entry.dataset;
        let s = entry.status;
        v1::Dataset {
            id: d.id.into(),
            version: d.version,
            title_zh: d.title_zh.into(),
            title_en: d.title_en.into(),
            description_zh: d.description_zh.into(),
            description_en: d.description_en.into(),
            owner: match d.owner {
                Owner::Department(code) => code.into(),
                Owner::Hub => "hub".into(),
            },
            share_type: share(d.share) as i32,
            open_type: open(d.open) as i32,
            update_cycle: cycle(d.cycle) as i32,
            keywords: d.keywords.iter().map(|k| (*k).into()).collect(),
            fields: d
                .fields
                .iter()
                .map(|f| v1::DatasetField {
                    name: f.name.into(),
                    r#type: field_type(f.kind) as i32,
                    sensitivity: sensitivity(f.sensitivity) as i32,
                    title_zh: f.title_zh.into(),
                    title_en: f.title_en.into(),
                })
                .collect(),
            department_field: d.filters.department.unwrap_or_default().into(),
            district_field: d.filters.district.unwrap_or_default().into(),
            grid_field: d.filters.grid.unwrap_or_default().into(),
            time_field: d.filters.time.unwrap_or_default().into(),
            status: Some(v1::DatasetStatus {
                position: s.position,
                log_position: s.log_position,
                lag_seconds: s.lag_seconds,
                rows: s.rows,
                halted: s.halted.unwrap_or_default(),
            }),
            access_url: format!("{}/datasets/{}", self.base_url, d.id),
        }
    }
}

fn share(t: ShareType) -> v1::ShareType {
    match t {
        ShareType::Unconditional => v1::ShareType::Unconditional,
        ShareType::Conditional => v1::ShareType::Conditional,
        ShareType::NotShared => v1::ShareType::NotShared,
    }
}

fn open(t: OpenType) -> v1::OpenType {
    match t {
        OpenType::Open => v1::OpenType::Open,
        OpenType::Conditional => v1::OpenType::Conditional,
        OpenType::NotOpen => v1::OpenType::NotOpen,
    }
}

fn cycle(c: UpdateCycle) -> v1::UpdateCycle {
    match c {
        UpdateCycle::Continuous => v1::UpdateCycle::Continuous,
        UpdateCycle::Daily => v1::UpdateCycle::Daily,
        UpdateCycle::Monthly => v1::UpdateCycle::Monthly,
    }
}

fn field_type(t: FieldType) -> v1::FieldType {
    match t {
        FieldType::Text => v1::FieldType::Text,
        FieldType::Integer => v1::FieldType::Integer,
        FieldType::Decimal => v1::FieldType::Decimal,
        FieldType::Timestamp => v1::FieldType::Timestamp,
        FieldType::Date => v1::FieldType::Date,
        FieldType::Month => v1::FieldType::Month,
    }
}

fn sensitivity(s: Sensitivity) -> v1::Sensitivity {
    match s {
        Sensitivity::Public => v1::Sensitivity::Public,
        Sensitivity::Internal => v1::Sensitivity::Internal,
        Sensitivity::Personal => v1::Sensitivity::Personal,
        Sensitivity::Sensitive => v1::Sensitivity::Sensitive,
    }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn list_datasets(
        &self,
        request: Request<v1::ListDatasetsRequest>,
    ) -> Result<Response<v1::ListDatasetsResponse>, Status> {
        let who = self.datasets.reader_grpc(&request);
        let result = async {
            proven(&who)?;
            self.datasets.catalogue().await
        }
        .await;
        let asked = Asked {
            action: "gov.hub.v1.CatalogService/ListDatasets",
            ..Asked::default()
        };
        let entries = audited(self.datasets.audit(), &who, asked, result, |entries| {
            Answered {
                count: entries.len() as u64,
                position: 0,
                ..Answered::default()
            }
        })
        .await?;
        Ok(Response::new(v1::ListDatasetsResponse {
            datasets: entries.into_iter().map(|e| self.to_proto(e)).collect(),
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<v1::GetDatasetRequest>,
    ) -> Result<Response<v1::GetDatasetResponse>, Status> {
        let who = self.datasets.reader_grpc(&request);
        let id = &request.get_ref().dataset_id;
        let result = async {
            proven(&who)?;
            self.datasets.entry(id).await
        }
        .await;
        let asked = Asked {
            action: "gov.hub.v1.CatalogService/GetDataset",
            dataset: self.datasets.audit_name(id),
            ..Asked::default()
        };
        let entry = audited(self.datasets.audit(), &who, asked, result, |_| Answered {
            count: 1,
            position: 0,
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(v1::GetDatasetResponse {
            dataset: Some(self.to_proto(entry)),
        }))
    }
}

/// Where `department` reads its feed on NATS.
fn feed_access(department: &str) -> v1::FeedAccess {
    use hub_log::names::{
        DEPARTMENT_JS_API_PREFIX, department_inbox_prefix, feed_consumer, feed_stream,
        feed_subjects,
    };
    v1::FeedAccess {
        stream: feed_stream(department),
        subjects: feed_subjects(department),
        consumer: feed_consumer(department),
        js_api_prefix: DEPARTMENT_JS_API_PREFIX.to_owned(),
        inbox_prefix: department_inbox_prefix(department),
    }
}

#[tonic::async_trait]
impl DatasetService for Catalog {
    async fn read_dataset(
        &self,
        request: Request<v1::ReadDatasetRequest>,
    ) -> Result<Response<v1::ReadDatasetResponse>, Status> {
        let who = self.datasets.reader_grpc(&request);
        let wait = read_wait(request.metadata(), self.datasets.max_wait());
        let result = async {
            let reader = proven(&who)?;
            self.datasets.read(reader, request.get_ref(), wait).await
        }
        .await;
        let asked = Asked {
            action: "gov.hub.v1.DatasetService/ReadDataset",
            dataset: self.datasets.audit_name(&request.get_ref().dataset_id),
            ..Asked::default()
        };
        let rows = audited(self.datasets.audit(), &who, asked, result, |rows| {
            Answered {
                count: rows.rows.len() as u64,
                position: rows.position,
                grants: rows.grants.clone(),
                persons: rows.persons.clone(),
                clear_fields: rows.clear_fields.clone(),
            }
        })
        .await?;
        Ok(Response::new(rows.into()))
    }

    async fn list_readable(
        &self,
        request: Request<v1::ListReadableRequest>,
    ) -> Result<Response<v1::ListReadableResponse>, Status> {
        let asking = self.datasets.reader_grpc(&request);
        let wait = read_wait(request.metadata(), self.datasets.max_wait());
        let result = async {
            let reader = proven(&asking)?;
            let min_position = request.get_ref().min_position;
            self.datasets.readable(reader, min_position, wait).await
        }
        .await;
        let asked = Asked {
            action: "gov.hub.v1.DatasetService/ListReadable",
            ..Asked::default()
        };
        let (datasets, position) = audited(self.datasets.audit(), &asking, asked, result, |r| {
            Answered {
                count: r.0.len() as u64,
                position: r.1,
                ..Answered::default()
            }
        })
        .await?;
        let who = asking?;
        let feed = match &who {
            Reader::Public => None,
            Reader::Department(department) => Some(feed_access(department.code.as_str())),
        };
        Ok(Response::new(v1::ListReadableResponse {
            datasets,
            position,
            feed,
        }))
    }
}
