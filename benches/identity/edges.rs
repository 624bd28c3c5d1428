//! The identity-graph edges of the benchmark: retail-shaped identifiers and co-occurrences, written
//! to Parquet with the columns `identity_stitch` reads (`a_type, a_value, b_type, b_value, ts,
//! source`).
//!
//! People carry cookies (1-3 browsers, rotating; 2 % keep a long-lived browser whose cookie
//! chain of 4-24 cookie syncs gives the graph a long diameter), e-mails, E.164 phones, loyalty
//! cards, app accounts with devices and site user ids; edges are what source systems record
//! together (logins, receipts, loyalty sign-ups, app sessions, QR scans), repeated as often as
//! those events happen, and 15 % of card holders never link the card online. A few junk hubs
//! (a shared tablet cookie per store, the stores' own phones, `test@test.com`, the placeholder
//! phone) tie thousands of people into a few big components unless the guards stop them. Rows
//! are in time order across people, as an edges table built from event logs would be.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::common::BenchResult;
use crate::common::random::{Rng, mix64};

/// Bump when the generated data changes, so that cached files are regenerated.
pub const GENERATOR_VERSION: u32 = 1;
const SEED: u64 = 20_261_122;
const STORES: u32 = 200;
/// 2026-01-01 00:00:00 UTC, and the 120 days the edges span.
const START_SECONDS: i64 = 1_767_225_600;
const SPAN_SECONDS: u64 = 120 * 86_400;
const BATCH_ROWS: usize = 65_536;

const TYPES: [&str; 7] = [
    "anonymous_id",
    "email",
    "phone",
    "loyalty_card",
    "app_account_id",
    "device_id",
    "user_id",
];
const COOKIE: u8 = 0;
const EMAIL: u8 = 1;
const PHONE: u8 = 2;
const CARD: u8 = 3;
const APP: u8 = 4;
const DEVICE: u8 = 5;
const USER: u8 = 6;
/// The `kind` of an absent `b` endpoint (a sighting row).
const NONE: u8 = u8::MAX;

const SOURCES: [&str; 10] = [
    "web_login",
    "web_account",
    "pos_receipt",
    "loyalty_account",
    "app_session",
    "qr_scan",
    "web_order",
    "cookie_sync",
    "web_pageview",
    "store_tablet",
];
const WEB_LOGIN: u8 = 0;
const WEB_ACCOUNT: u8 = 1;
const POS_RECEIPT: u8 = 2;
const LOYALTY_ACCOUNT: u8 = 3;
const APP_SESSION: u8 = 4;
const QR_SCAN: u8 = 5;
const WEB_ORDER: u8 = 6;
const COOKIE_SYNC: u8 = 7;
const WEB_PAGEVIEW: u8 = 8;
const STORE_TABLET: u8 = 9;

/// Owners from here on are junk hubs, not people: `HUB + store` for a store's tablet cookie and
/// phone, and the two below for the shared junk values.
const HUB: u32 = u32::MAX - 1_000;
const TEST_EMAIL_HUB: u32 = u32::MAX;
const PLACEHOLDER_PHONE_HUB: u32 = u32::MAX - 1;

/// One identifier, before it is rendered: whose it is, its type, and which of its kind.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    owner: u32,
    kind: u8,
    slot: u8,
}

#[derive(Debug, Clone, Copy)]
struct EdgeSpec {
    seconds: u32,
    source: u8,
    a: Endpoint,
    b: Endpoint,
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a_type", DataType::Utf8, false),
        Field::new("a_value", DataType::Utf8, false),
        Field::new("b_type", DataType::Utf8, true),
        Field::new("b_value", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// Writes exactly `edges` rows to `path` (through a temporary file, so an interrupted run leaves
/// no truncated file behind).
pub fn write(path: &Path, edges: usize) -> BenchResult<()> {
    let mut specs = generate(edges);
    // Event logs arrive in time order, across people: no locality for the stitcher to exploit.
    specs.sort_unstable_by_key(|spec| spec.seconds);
    let partial = path.with_extension("parquet.partial");
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let schema = schema();
    let mut writer = ArrowWriter::try_new(
        File::create(&partial)?,
        Arc::clone(&schema),
        Some(properties),
    )?;
    let mut value = String::new();
    for chunk in specs.chunks(BATCH_ROWS) {
        let mut a_type = StringBuilder::new();
        let mut a_value = StringBuilder::new();
        let mut b_type = StringBuilder::new();
        let mut b_value = StringBuilder::new();
        let mut ts = TimestampMicrosecondBuilder::with_capacity(chunk.len()).with_timezone("UTC");
        let mut source = StringBuilder::new();
        for spec in chunk {
            render(spec.a, &mut value);
            a_type.append_value(TYPES[spec.a.kind as usize]);
            a_value.append_value(&value);
            if spec.b.kind == NONE {
                b_type.append_null();
                b_value.append_null();
            } else {
                render(spec.b, &mut value);
                b_type.append_value(TYPES[spec.b.kind as usize]);
                b_value.append_value(&value);
            }
            ts.append_value((START_SECONDS + i64::from(spec.seconds)) * 1_000_000);
            source.append_value(SOURCES[spec.source as usize]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(a_type.finish()),
            Arc::new(a_value.finish()),
            Arc::new(b_type.finish()),
            Arc::new(b_value.finish()),
            Arc::new(ts.finish()),
            Arc::new(source.finish()),
        ];
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), columns)?)?;
    }
    writer.close()?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// People, one after the other, until there are `edges` rows.
fn generate(edges: usize) -> Vec<EdgeSpec> {
    let mut specs = Vec::with_capacity(edges + 64);
    let mut person = 0u32;
    while specs.len() < edges {
        person_edges(person, &mut specs);
        person += 1;
    }
    specs.truncate(edges);
    specs
}

fn person_edges(person: u32, out: &mut Vec<EdgeSpec>) {
    let mut rng = Rng::new(SEED, u64::from(person));
    let id = |kind: u8, slot: u8| Endpoint {
        owner: person,
        kind,
        slot,
    };
    let none = Endpoint {
        owner: 0,
        kind: NONE,
        slot: 0,
    };
    let mut edge = |rng: &mut Rng, source: u8, a: Endpoint, b: Endpoint| {
        out.push(EdgeSpec {
            seconds: rng.below(SPAN_SECONDS) as u32,
            source,
            a,
            b,
        });
    };

    // Cookies: 1-3 browsers rotating 1-3 cookies each; some browsers live long and sync their
    // cookie chain (a path of cookie → cookie edges).
    let browsers = 1 + rng.weighted(&[0.6, 0.3, 0.1]);
    let mut cookies: Vec<Endpoint> = Vec::new();
    for _ in 0..browsers {
        let long_lived = rng.chance(0.02);
        let rotations = if long_lived {
            4 + rng.below(21)
        } else {
            1 + rng.below(3)
        };
        for rotation in 0..rotations {
            let cookie = id(COOKIE, cookies.len() as u8);
            if long_lived && rotation > 0 {
                let previous = cookies[cookies.len() - 1];
                edge(&mut rng, COOKIE_SYNC, previous, cookie);
            }
            cookies.push(cookie);
            if cookies.len() == usize::from(u8::MAX) {
                break;
            }
        }
    }
    let emails: Vec<Endpoint> = match rng.weighted(&[0.15, 0.77, 0.08]) {
        0 => vec![],
        1 => vec![id(EMAIL, 0)],
        _ => vec![id(EMAIL, 0), id(EMAIL, 1)],
    };
    let user = (!emails.is_empty() && rng.chance(0.6)).then(|| id(USER, 0));
    let phone = rng.chance(0.7).then(|| id(PHONE, 0));
    let card = rng.chance(0.45).then(|| id(CARD, 0));
    let app = rng.chance(0.3).then(|| id(APP, 0));
    // 15 % of card holders never link the card to anything online.
    let card_linked_online = !rng.chance(0.15);

    for &cookie in &cookies {
        if !emails.is_empty() {
            for _ in 0..1 + rng.below(3) {
                let email = emails[rng.below(emails.len() as u64) as usize];
                edge(&mut rng, WEB_LOGIN, cookie, email);
            }
        }
        if let Some(user) = user {
            for _ in 0..rng.below(3) {
                edge(&mut rng, WEB_LOGIN, cookie, user);
            }
        }
        if rng.chance(0.3) {
            edge(&mut rng, WEB_PAGEVIEW, cookie, none);
        }
    }
    if let (Some(user), Some(&email)) = (user, emails.first()) {
        edge(&mut rng, WEB_ACCOUNT, user, email);
    }
    if let Some(card) = card {
        if let Some(phone) = phone {
            edge(&mut rng, LOYALTY_ACCOUNT, card, phone);
            for _ in 0..1 + rng.below(6) {
                edge(&mut rng, POS_RECEIPT, card, phone);
            }
        } else {
            for _ in 0..1 + rng.below(4) {
                edge(&mut rng, POS_RECEIPT, card, none);
            }
        }
        if card_linked_online {
            if let Some(&email) = emails.first() {
                edge(&mut rng, LOYALTY_ACCOUNT, card, email);
            }
            if let Some(app) = app {
                edge(&mut rng, LOYALTY_ACCOUNT, card, app);
            }
        }
        // Junk: the till falls back to the store's own phone, or the placeholder.
        if rng.chance(0.02) {
            let store = HUB + rng.below(u64::from(STORES)) as u32;
            edge(
                &mut rng,
                POS_RECEIPT,
                card,
                Endpoint {
                    owner: store,
                    kind: PHONE,
                    slot: 0,
                },
            );
        }
        if rng.chance(0.005) {
            let placeholder = Endpoint {
                owner: PLACEHOLDER_PHONE_HUB,
                kind: PHONE,
                slot: 0,
            };
            edge(&mut rng, POS_RECEIPT, card, placeholder);
        }
    } else if let (Some(phone), Some(&email)) = (phone, emails.first())
        && rng.chance(0.3)
    {
        edge(&mut rng, WEB_ORDER, email, phone);
    }
    if let Some(app) = app {
        for device in 0..1 + rng.below(2) {
            for _ in 0..1 + rng.below(4) {
                edge(&mut rng, APP_SESSION, id(DEVICE, device as u8), app);
            }
        }
        if let Some(&email) = emails.first()
            && card_linked_online
        {
            edge(&mut rng, APP_SESSION, app, email);
        }
        if rng.chance(0.2) {
            edge(&mut rng, QR_SCAN, app, cookies[0]);
        }
    }
    // Junk: the store's shared tablet, where customers log in to check their orders, and the
    // test account typed into sign-up forms.
    if let Some(&email) = emails.first()
        && rng.chance(0.01)
    {
        let store = HUB + rng.below(u64::from(STORES)) as u32;
        edge(
            &mut rng,
            STORE_TABLET,
            Endpoint {
                owner: store,
                kind: COOKIE,
                slot: 0,
            },
            email,
        );
    }
    if rng.chance(0.002) {
        let test = Endpoint {
            owner: TEST_EMAIL_HUB,
            kind: EMAIL,
            slot: 0,
        };
        edge(&mut rng, WEB_LOGIN, cookies[0], test);
    }
}

const FIRST_NAMES: [&str; 24] = [
    "ivan",
    "anna",
    "olga",
    "sergey",
    "maria",
    "dmitry",
    "elena",
    "alexey",
    "natalia",
    "pavel",
    "irina",
    "nikolai",
    "tatiana",
    "andrey",
    "ekaterina",
    "mikhail",
    "svetlana",
    "yuri",
    "daria",
    "oleg",
    "julia",
    "artem",
    "ksenia",
    "roman",
];
const LAST_NAMES: [&str; 20] = [
    "ivanov",
    "smirnov",
    "kuznetsov",
    "popov",
    "vasiliev",
    "petrov",
    "sokolov",
    "mikhailov",
    "novikov",
    "fedorov",
    "morozov",
    "volkov",
    "alekseev",
    "lebedev",
    "semenov",
    "egorov",
    "pavlov",
    "kozlov",
    "stepanov",
    "nikolaev",
];
const MAIL_DOMAINS: [&str; 6] = [
    "gmail.com",
    "mail.ru",
    "yandex.ru",
    "bk.ru",
    "list.ru",
    "outlook.com",
];

/// An affine bijection of `0..modulus` (`multiplier` coprime with `modulus`): distinct people get
/// distinct numbers that do not look sequential.
fn scramble(index: u64, multiplier: u64, offset: u64, modulus: u64) -> u64 {
    (index % modulus * multiplier + offset) % modulus
}

/// The identifier's value, as the stitcher receives it (already normalised).
fn render(endpoint: Endpoint, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let owner = u64::from(endpoint.owner);
    let slot = u64::from(endpoint.slot);
    let hash = mix64(SEED ^ (owner << 16) ^ (u64::from(endpoint.kind) << 8) ^ slot);
    let _ = match (endpoint.kind, endpoint.owner) {
        (EMAIL, TEST_EMAIL_HUB) => write!(out, "test@test.com"),
        (PHONE, PLACEHOLDER_PHONE_HUB) => write!(out, "+70000000000"),
        (PHONE, owner) if owner >= HUB => {
            write!(
                out,
                "+7495{:07}",
                scramble(u64::from(owner - HUB), 7_919, 1_234_567, 10_000_000)
            )
        }
        (COOKIE | DEVICE, _) => {
            let low = mix64(hash);
            let uuid = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                hash >> 32,
                (hash >> 16) & 0xffff,
                hash & 0xfff,
                0x8000 | ((low >> 48) & 0x3fff),
                low & 0xffff_ffff_ffff
            );
            if endpoint.kind == DEVICE {
                write!(out, "{}", uuid.to_ascii_uppercase())
            } else {
                write!(out, "{uuid}")
            }
        }
        (EMAIL, _) => {
            let first = FIRST_NAMES[(hash % FIRST_NAMES.len() as u64) as usize];
            let last = LAST_NAMES[((hash >> 8) % LAST_NAMES.len() as u64) as usize];
            let number = scramble(owner, 7_654_321, 4_242, 100_000_000);
            if slot == 0 {
                let domain = MAIL_DOMAINS[((hash >> 16) % MAIL_DOMAINS.len() as u64) as usize];
                write!(out, "{first}.{last}{number}@{domain}")
            } else {
                write!(
                    out,
                    "{}{last}.{number}@work-{}.ru",
                    &first[..1],
                    (hash >> 20) % 5_000
                )
            }
        }
        (PHONE, _) => write!(
            out,
            "+79{:09}",
            scramble(owner * 4 + slot, 387_420_489, 123_456_789, 1_000_000_000)
        ),
        (CARD, _) => write!(
            out,
            "2780{:09}",
            scramble(owner, 48_828_127, 987_654_321, 1_000_000_000)
        ),
        (APP, _) => write!(out, "app_{:012x}", hash & 0xffff_ffff_ffff),
        (USER, _) => write!(
            out,
            "u{:08}",
            scramble(owner, 31_415_927, 2_718_281, 100_000_000)
        ),
        _ => write!(out, "?"),
    };
}
