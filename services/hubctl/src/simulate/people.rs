//! Synthetic people, companies and places, drawn from the seed: plausible in form (names,
//! identity numbers and credit codes with valid check characters, mobile numbers, addresses)
//! and made up. Addresses lie on made-up roads; nothing is taken from real records.

use rand::Rng;

/// Picks an index by weight (weights need not sum to anything in particular).
pub fn weighted<R: Rng>(rng: &mut R, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.gen_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len().saturating_sub(1)
}

/// One of `items`, uniformly.
pub fn pick<'a, R: Rng, T>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Surnames, most common first, and their rough weights.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董";
const SURNAME_WEIGHTS: [u32; 35] = [
    72, 70, 66, 53, 45, 31, 25, 20, 20, 19, 15, 15, 12, 12, 11, 11, 10, 9, 9, 9, 8, 8, 6, 6, 6, 5,
    5, 5, 5, 5, 4, 4, 4, 4, 4,
];
const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华",
    "建国", "建华", "志强", "志明", "海涛", "晓东", "国庆", "文斌", "子轩", "浩然", "宇航",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "玲", "燕", "萍", "红", "洁", "琳", "秀英",
    "桂英", "玉兰", "丽华", "海燕", "晓红", "雨桐", "欣怡", "梓涵", "诗涵", "佳怡",
];

/// A person's name: a surname and a given name of one or two characters.
pub fn person_name<R: Rng>(rng: &mut R, female: bool) -> String {
    let surname = SURNAMES
        .chars()
        .nth(weighted(rng, &SURNAME_WEIGHTS))
        .unwrap_or('王');
    let given = if female {
        pick(rng, GIVEN_FEMALE)
    } else {
        pick(rng, GIVEN_MALE)
    };
    format!("{surname}{given}")
}

const IDENTITY_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of an identity number
/// (GB 11643).
pub fn identity_check(first17: &str) -> char {
    let sum: u32 = IDENTITY_WEIGHTS
        .iter()
        .zip(first17.bytes())
        .map(|(w, b)| w * u32::from(b - b'0'))
        .sum();
    char::from(b"10X98765432"[(sum % 11) as usize])
}

/// A resident identity number (GB 11643) registered in `division` (6 digits), born on
/// `birth`; its 17th digit is odd for a man and even for a woman, as the standard has it.
pub fn identity_number<R: Rng>(
    rng: &mut R,
    division: &str,
    birth: jiff::civil::Date,
    female: bool,
) -> String {
    let order = rng.gen_range(0..50u32) * 2 + u32::from(!female);
    let sequence = rng.gen_range(0..10u32) * 100 + order;
    let first17 = format!(
        "{division}{:04}{:02}{:02}{sequence:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let check = identity_check(&first17);
    format!("{first17}{check}")
}

/// A date of birth in the years `from..=to`.
pub fn birth_date<R: Rng>(rng: &mut R, from: i16, to: i16) -> jiff::civil::Date {
    let year = rng.gen_range(from..=to);
    let month = rng.gen_range(1..=12i8);
    let day = rng.gen_range(1..=28i8);
    jiff::civil::Date::new(year, month, day).unwrap_or(jiff::civil::date(year, 1, 1))
}

/// A mainland mobile number (11 digits, starting 1) on a common prefix.
pub fn mobile<R: Rng>(rng: &mut R) -> String {
    const PREFIXES: &[&str] = &[
        "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
        "156", "158", "159", "177", "180", "181", "186", "187", "188", "189", "199",
    ];
    format!(
        "{}{:08}",
        pick(rng, PREFIXES),
        rng.gen_range(0..100_000_000u32)
    )
}

/// Road names for made-up addresses, compounds and streets.
pub const ROADS: &[&str] = &[
    "建设", "人民", "解放", "中山", "和平", "新华", "胜利", "文化", "青年", "光明", "长江", "黄河",
    "东风", "朝阳", "幸福", "团结", "友谊", "振兴", "复兴", "迎宾", "滨江", "育才", "桂花", "樱花",
    "丁香", "枫林", "松柏", "翠竹", "金桥", "银杏", "望江", "春晖", "秋实", "明德", "崇文", "尚贤",
    "嘉禾", "丰收", "安居", "康乐",
];

/// A made-up home address: a lane and house on a road, and a room.
pub fn home_address<R: Rng>(rng: &mut R, roads: &[&str]) -> String {
    format!(
        "{}路{}弄{}号{}室",
        pick(rng, roads),
        rng.gen_range(1..=999u32),
        rng.gen_range(1..=40u32),
        rng.gen_range(1..=6u32) * 100 + rng.gen_range(1..=4u32)
    )
}

const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The GB 32100 check character of the first 17 characters of a unified social credit code.
pub fn credit_check(first17: &str) -> char {
    let sum: u32 = CREDIT_WEIGHTS
        .iter()
        .zip(first17.bytes())
        .map(|(w, b)| {
            let value = CREDIT_ALPHABET.iter().position(|&c| c == b).unwrap_or(0);
            w * value as u32
        })
        .sum();
    char::from(CREDIT_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// A company's unified social credit code (GB 32100): registered by market regulation (9)
/// as an enterprise (1) in `division`, with an organisation code (GB 11714, its own check
/// character) and the code's check character.
pub fn credit_code<R: Rng>(rng: &mut R, division: &str) -> String {
    const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let body: Vec<u32> = (0..8).map(|_| rng.gen_range(0..10)).collect();
    let sum: u32 = body.iter().zip(ORG_WEIGHTS).map(|(d, w)| d * w).sum();
    let org_check = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).unwrap_or('0'),
    };
    let org: String = body
        .iter()
        .filter_map(|d| char::from_digit(*d, 10))
        .chain([org_check])
        .collect();
    let first17 = format!("91{division}{org}");
    let check = credit_check(&first17);
    format!("{first17}{check}")
}

const COMPANY_WORDS: &[&str] = &[
    "安居", "万家", "华宇", "金盾", "锦绣", "恒信", "永安", "嘉和", "众诚", "同心", "盛世", "宏达",
    "新城", "东方", "绿洲", "阳光", "百合", "美好", "和顺", "宜家",
];
const COMPOUND_SUFFIXES: &[&str] = &["花园", "苑", "新村", "公寓", "家园", "小区", "名邸", "雅居"];

/// A made-up property-management company's name.
pub fn company_name<R: Rng>(rng: &mut R) -> String {
    format!("{}物业服务有限公司", pick(rng, COMPANY_WORDS))
}

/// A made-up residential compound's name on one of `roads`.
pub fn compound_name<R: Rng>(rng: &mut R, roads: &[&str]) -> String {
    format!("{}{}", pick(rng, roads), pick(rng, COMPOUND_SUFFIXES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_domain::codes::{CreditCode, IdentityNumber};
    use rand::SeedableRng;

    #[test]
    fn identity_numbers_have_valid_check_characters_and_birth_dates() {
        // The standard's own example.
        assert_eq!(identity_check("11010519491231002"), 'X');
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for i in 0..2000 {
            let birth = birth_date(&mut rng, 1930, 2020);
            let female = i % 2 == 0;
            let number = identity_number(&mut rng, "310104", birth, female);
            assert_eq!(number.len(), 18);
            IdentityNumber::parse(&number).unwrap_or_else(|e| panic!("{i}: {e}"));
            let gender_digit = number.as_bytes()[16] - b'0';
            assert_eq!(
                gender_digit.is_multiple_of(2),
                female,
                "the 17th digit says the gender"
            );
            let mut wrong = number[..17].to_owned();
            wrong.push(if number.ends_with('0') { '1' } else { '0' });
            assert!(
                IdentityNumber::parse(&wrong).is_err(),
                "a wrong check is refused"
            );
        }
    }

    #[test]
    fn credit_codes_have_valid_check_characters() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..2000 {
            let code = credit_code(&mut rng, "310105");
            assert!(code.starts_with("91310105"));
            CreditCode::parse(&code).unwrap_or_else(|e| panic!("{e}"));
        }
        // The credit code the hub's own test fixtures use.
        assert_eq!(credit_check("91350100M000100Y4"), '3');
    }

    #[test]
    fn phones_and_names_are_well_formed() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..500 {
            let phone = mobile(&mut rng);
            assert!(phone.len() == 11 && phone.starts_with('1'));
            assert!(phone.bytes().all(|b| b.is_ascii_digit()));
            let female = rng.gen_bool(0.5);
            let name = person_name(&mut rng, female);
            assert!((2..=3).contains(&name.chars().count()), "{name}");
            assert!(home_address(&mut rng, ROADS).chars().count() <= 100);
        }
    }
}
