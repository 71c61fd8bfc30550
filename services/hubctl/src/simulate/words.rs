//! What the simulated people write: descriptions, outcomes, reasons and notes, in Chinese
//! with an English gloss, as the hub's own examples are.

use hub_api::v1::{CareCategory, ComplaintCategory, IncidentCategory};

pub type Text = (&'static str, &'static str);

pub fn incident(category: IncidentCategory) -> &'static [Text] {
    use IncidentCategory as C;
    match category {
        C::SafetyHazard => &[
            ("窨井盖缺失", "manhole cover missing"),
            ("路灯杆倾斜", "lamp post leaning"),
            ("外墙空鼓有脱落风险", "loose facade tiles may fall"),
            ("高空悬挂物不牢固", "loosely hung object overhead"),
        ],
        C::FireHazard => &[
            ("消防通道被电动车堵塞", "fire lane blocked by e-bikes"),
            (
                "楼道内飞线充电",
                "e-bike charged by a cable out of a window",
            ),
            ("楼道堆放杂物", "corridor piled with clutter"),
            ("灭火器过期", "fire extinguisher expired"),
        ],
        C::Dispute => &[
            ("邻里噪音纠纷", "neighbours' dispute over noise"),
            ("楼上漏水引发纠纷", "dispute over a leak from upstairs"),
            ("停车位纠纷", "dispute over a parking space"),
        ],
        C::Sanitation => &[
            ("垃圾桶满溢未清运", "bins overflowing, not collected"),
            (
                "绿化带内倾倒建筑垃圾",
                "construction waste dumped in a green belt",
            ),
            ("路面油污", "oil spilled on the road"),
            ("小广告乱贴", "flyers pasted on walls"),
        ],
        C::IllegalConstruction => &[
            ("顶楼违章搭建", "illegal rooftop structure"),
            (
                "底楼私自扩建",
                "ground-floor flat extended without a permit",
            ),
            ("占用绿地搭棚", "shed built on a lawn"),
        ],
        C::GroupRenting => &[
            (
                "疑似群租，一套房住十余人",
                "suspected group renting, a dozen people in one flat",
            ),
            ("隔断分租", "flat partitioned and sublet"),
        ],
        C::Other | C::Unspecified => &[
            (
                "独居老人多日未出门",
                "elderly person living alone not seen for days",
            ),
            ("共享单车乱停放", "shared bikes blocking the pavement"),
            ("流浪犬出没", "stray dogs about"),
        ],
    }
}

pub fn incident_outcome(category: IncidentCategory) -> Text {
    use IncidentCategory as C;
    match category {
        C::SafetyHazard => ("已设置围挡并修复", "fenced off and repaired"),
        C::FireHazard => ("已清理通道并告知住户", "cleared and residents told"),
        C::Dispute => ("已调解，双方达成一致", "mediated, both sides agreed"),
        C::Sanitation => ("已清运并加强巡查", "cleared, patrols stepped up"),
        C::IllegalConstruction => ("已责令限期拆除", "ordered to be removed by a date"),
        C::GroupRenting => ("已约谈房东并整改", "landlord summoned, flat restored"),
        C::Other | C::Unspecified => ("已联系相关方处理", "the parties concerned saw to it"),
    }
}

pub fn complaint(category: ComplaintCategory) -> &'static [Text] {
    use ComplaintCategory as C;
    match category {
        C::Fees => &[
            ("物业费上涨未公示", "fees raised without notice"),
            ("停车费收费不透明", "opaque parking charges"),
        ],
        C::PublicRevenue => &[
            (
                "公共收益去向不明",
                "income from common areas not accounted for",
            ),
            (
                "电梯广告收入未公示",
                "lift advertising income not published",
            ),
        ],
        C::MaintenanceFund => &[
            (
                "维修资金使用不公开",
                "use of the maintenance fund not disclosed",
            ),
            ("电梯维修拖延", "lift repairs delayed despite the fund"),
        ],
        C::ServiceQuality => &[
            ("保洁不到位", "cleaning neglected"),
            ("保安脱岗", "guards away from their posts"),
            ("报修无人响应", "repair requests unanswered"),
        ],
        C::Other | C::Unspecified => &[(
            "未经业主大会更换物业",
            "manager replaced without the owners' assembly",
        )],
    }
}

pub const COMPLAINT_OUTCOME: Text = (
    "已约谈物业公司并督促整改",
    "company summoned and told to put it right",
);
pub const SECOND_OUTCOME: Text = ("回访后再次处理", "handled again after a follow-up visit");
pub const REJECT_TRANSFER: Text = ("属于贵部门职责范围", "within your remit");

pub fn visit_notes(category: CareCategory) -> &'static [Text] {
    use CareCategory as C;
    match category {
        C::DrugRehabilitation => &[
            ("按时报到，尿检阴性", "reported on time, test negative"),
            ("已协助联系就业培训", "helped to a job-training place"),
        ],
        C::SevereMentalDisorder => &[
            ("按时服药，情绪稳定", "taking medication, stable"),
            ("家属反映近期睡眠差", "family reports poor sleep lately"),
        ],
        C::ElderlyInHardship => &[
            (
                "身体状况良好，已送米油",
                "in good health, rice and oil delivered",
            ),
            ("需要助餐服务", "needs a meal service"),
        ],
        C::LeftBehindChild => &[
            (
                "学习正常，与祖父母同住",
                "at school as usual, living with grandparents",
            ),
            ("已联系在外务工的父母", "parents working away contacted"),
        ],
        C::Unspecified => &[("情况正常", "nothing of note")],
    }
}

pub const RISK_UP: Text = (
    "走访发现情况变化，提高关注等级",
    "circumstances changed at the visit: closer follow-up",
);
pub const RISK_DOWN: Text = (
    "情况持续稳定，降低关注等级",
    "stable for a while: less frequent follow-up",
);

pub fn care_close(category: CareCategory) -> Text {
    use CareCategory as C;
    match category {
        C::DrugRehabilitation => ("社区康复期满", "community rehabilitation completed"),
        C::LeftBehindChild => ("父母返乡共同生活", "parents back home"),
        _ => ("迁出本区", "moved out of the district"),
    }
}

pub const GRANT_PURPOSE: Text = (
    "排查辖区重点人员，落实联防联控",
    "checking persons at risk in the precinct with civil affairs",
);
pub const GRANT_REJECT: Text = (
    "申请字段超出必要范围",
    "fields beyond what the purpose needs",
);
pub const GRANT_REVOKE: Text = ("专项排查已结束", "the check is over");

/// `(zh, en)` as one text: `zh en`.
pub fn both((zh, en): Text) -> String {
    format!("{zh} {en}")
}
