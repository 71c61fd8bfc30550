//! Requests the tests send, valid on the demo reference data.

use hub_api::v1;
use tonic::Request;

/// A valid grid-incident report from a grid worker in Xuhui (demo reference data).
pub fn incident(request_id: &str) -> v1::ReportCaseRequest {
    v1::ReportCaseRequest {
        request_id: request_id.to_owned(),
        kind: Some(v1::report_case_request::Kind::GridIncident(
            v1::GridIncident {
                grid_code: "310104001001001".into(),
                category: v1::IncidentCategory::FireHazard as i32,
                location: Some(v1::Location {
                    longitude: 121.44,
                    latitude: 31.2,
                    address: "3号楼北门".into(),
                }),
            },
        )),
        description: "消防通道被电动车堵塞 fire lane blocked".into(),
        reporter: Some(v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: "GW-0107".into(),
        }),
        // None named: a grid worker's report comes from patrol.
        channel: v1::ReportChannel::Unspecified as i32,
    }
}

/// A valid property complaint from a resident in Changning, made on the 12345 hotline.
pub fn complaint(request_id: &str) -> v1::ReportCaseRequest {
    v1::ReportCaseRequest {
        request_id: request_id.to_owned(),
        kind: Some(v1::report_case_request::Kind::PropertyComplaint(
            v1::PropertyComplaint {
                company_credit_code: "91350100M000100Y43".into(),
                compound: "华阳花园".into(),
                category: v1::ComplaintCategory::MaintenanceFund as i32,
                district_code: "310105".into(),
            },
        )),
        description: "维修资金使用不公开".into(),
        reporter: Some(v1::Reporter {
            kind: v1::ReporterKind::Resident as i32,
            grid_worker_id: String::new(),
        }),
        channel: v1::ReportChannel::Hotline as i32,
    }
}

/// The person [`care`] registers: sensitive personal data, which tests look for where it
/// must never be.
pub const CARE_NAME: &str = "王小明";
pub const CARE_IDENTITY: &str = "11010519491231002X";
pub const CARE_PHONE: &str = "13812345678";
pub const CARE_ADDRESS: &str = "漕溪北路88弄3号";

/// A valid registration for care in a Xuhui community, as civil affairs sends it.
pub fn care(request_id: &str) -> v1::RegisterCareRequest {
    v1::RegisterCareRequest {
        request_id: request_id.to_owned(),
        name: CARE_NAME.into(),
        identity_number: CARE_IDENTITY.into(),
        category: v1::CareCategory::SevereMentalDisorder as i32,
        community_code: "310104001001".into(),
        risk_level: v1::RiskLevel::High as i32,
        phone: CARE_PHONE.into(),
        address: CARE_ADDRESS.into(),
    }
}

/// The acting person every test request names (a staff id, never a person's data).
pub const ACTING_PERSON: &str = "staff-0001";
/// The purpose every test request names unless it names a grant.
pub const PURPOSE: &str = "case:test";

/// Wraps a message as sent by `department` (the development-mode header), with the acting
/// person and purpose every department request names.
pub fn from<T>(department: &str, message: T) -> Request<T> {
    from_for(department, PURPOSE, message)
}

/// [`from`] with the given purpose, e.g. `grant:<id>` for a read under a grant.
pub fn from_for<T>(department: &str, purpose: &str, message: T) -> Request<T> {
    let mut request = acting(purpose, message);
    request.metadata_mut().insert(
        hub_ingest::DEPARTMENT_HEADER,
        department.parse().expect("ascii department"),
    );
    request
}

/// A message with the acting person and `purpose` headers only: the department comes from
/// the connection's certificate or a token.
pub fn acting<T>(purpose: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        hub_api::identity::PERSON_HEADER,
        ACTING_PERSON.parse().expect("ascii"),
    );
    metadata.insert(
        hub_api::identity::PURPOSE_HEADER,
        purpose.parse().expect("ascii purpose"),
    );
    request
}

/// A historic case for `ImportCases`: the grid incident of [`incident`], reported at
/// `reported_at` (Unix seconds).
pub fn historic(request_id: &str, reported_at: i64) -> v1::HistoricCase {
    let report = incident(request_id);
    v1::HistoricCase {
        request_id: report.request_id,
        kind: report.kind.map(Into::into),
        description: report.description,
        reporter: report.reporter,
        channel: report.channel,
        reported_at: Some(prost_types::Timestamp {
            seconds: reported_at,
            nanos: 0,
        }),
    }
}

/// The cases as one client-streamed import, in chunks of `chunk`.
pub fn import_chunks(
    cases: &[v1::HistoricCase],
    chunk: usize,
) -> Request<futures::stream::Iter<std::vec::IntoIter<v1::ImportCasesRequest>>> {
    let chunks: Vec<v1::ImportCasesRequest> = cases
        .chunks(chunk)
        .map(|c| v1::ImportCasesRequest { cases: c.to_vec() })
        .collect();
    from("urban-management", futures::stream::iter(chunks))
}
