//! People's identifiers, the stores, and the junk real data carries: canonical forms first, then the raw noise
//! that the identity normalisation rules undo.
//!
//! Canonical forms (what `normalize_email` / `normalize_phone` / `normalize_identifier` must produce):
//! * e-mail: trimmed, lowercase, `+tag` removed from the local part; for gmail.com / googlemail.com dots removed
//!   from the local part and the domain is gmail.com;
//! * phone: E.164 (`+79XXXXXXXXX` mobiles, `+7495…` / `+7812…` store landlines);
//! * other identifiers: the raw value with surrounding whitespace trimmed.
//!
//! Uniqueness comes from the customer index through permutations, never from counters, so a person's
//! identifiers do not depend on how customers are chunked.

use datafusion::common::{Result, exec_err};

use super::model::Traits;
use super::rng::{AffinePermutation, IdDomain, Rng, Stream, mix64, unique_u64};

/// The identifier types, as written in `truth_identifiers.id_type` and `truth_junk.id_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum IdType {
    Email,
    Phone,
    AnonymousId,
    DeviceId,
    AppAccountId,
    LoyaltyCard,
    UserId,
}

impl IdType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            IdType::Email => "email",
            IdType::Phone => "phone",
            IdType::AnonymousId => "anonymous_id",
            IdType::DeviceId => "device_id",
            IdType::AppAccountId => "app_account_id",
            IdType::LoyaltyCard => "loyalty_card",
            IdType::UserId => "user_id",
        }
    }
}

/// Identifier slots per customer for phones: a few spare ones replace numbers that look like junk.
const PHONE_SLOTS: u64 = 8;
/// E-mail slots per customer.
const EMAIL_SLOTS: u64 = 2;
/// Mobile subscriber numbers: `9` + 9 digits, the 9 digits in `[100_000_000, 900_000_000)`.
const MOBILE_TAIL_BASE: u64 = 100_000_000;
const MOBILE_TAIL_SPACE: u64 = 800_000_000;

/// Largest customer count the identifier spaces hold without collisions.
pub(crate) const MAX_CUSTOMERS: u64 = MOBILE_TAIL_SPACE / PHONE_SLOTS;

/// Seed-dependent keys of every identifier permutation.
#[derive(Debug, Clone)]
pub(crate) struct IdKeys {
    scramble: u64,
    email_token: AffinePermutation,
    mobile_tail: AffinePermutation,
    user: AffinePermutation,
    app_account: AffinePermutation,
    loyalty: AffinePermutation,
    landline: AffinePermutation,
}

impl IdKeys {
    pub(crate) fn new(seed: u64) -> IdKeys {
        let mut rng = Rng::new(seed, Stream::IdKeys, 0);
        // Multipliers are powers of 3, 7, 13 and 11: coprime with every modulus (products of 2s and 5s, and 9e6).
        IdKeys {
            scramble: rng.next_u64(),
            email_token: AffinePermutation::new(387_420_489, rng.next_u64(), 1_000_000_000),
            mobile_tail: AffinePermutation::new(387_420_489, rng.next_u64(), MOBILE_TAIL_SPACE),
            user: AffinePermutation::new(282_475_249, rng.next_u64(), 1_000_000_000),
            app_account: AffinePermutation::new(815_730_721, rng.next_u64(), 1_000_000_000),
            loyalty: AffinePermutation::new(31_381_059_609, rng.next_u64(), 100_000_000_000),
            landline: AffinePermutation::new(214_358_881, rng.next_u64(), 9_000_000),
        }
    }

    pub(crate) fn unique(&self, domain: IdDomain, owner: u64, slot: u32) -> u64 {
        unique_u64(self.scramble, domain, owner, slot)
    }

    /// `"U"` + 9 digits.
    pub(crate) fn user_id(&self, customer: u64) -> String {
        format!("U{:09}", self.user.apply(customer))
    }

    /// `"A"` + 9 digits.
    pub(crate) fn app_account_id(&self, customer: u64) -> String {
        format!("A{:09}", self.app_account.apply(customer))
    }

    /// 13 digits, EAN-13 with the in-store prefix 2 and a valid check digit.
    pub(crate) fn loyalty_card(&self, customer: u64) -> String {
        let body = format!("2{:011}", self.loyalty.apply(customer));
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    /// Browser cookie: lowercase uuid-like, unique per (customer, browser, generation).
    pub(crate) fn anonymous_id(&self, customer: u64, browser: u32, generation: u32) -> String {
        uuid_like(
            self.unique(IdDomain::Cookie, customer, browser * 4096 + generation),
            false,
        )
    }

    /// App install: uppercase uuid-like.
    pub(crate) fn device_id(&self, customer: u64, device: u32) -> String {
        uuid_like(self.unique(IdDomain::Device, customer, device), true)
    }

    /// The cookie of a store's shared tablet.
    pub(crate) fn tablet_cookie(&self, store: u64) -> String {
        uuid_like(self.unique(IdDomain::TabletCookie, store, 0), false)
    }

    /// Event, order, receipt, touch or scan id: a prefix and 16 hex digits.
    pub(crate) fn row_id(
        &self,
        prefix: &str,
        domain: IdDomain,
        customer: u64,
        slot: u32,
    ) -> String {
        format!("{prefix}{:016x}", self.unique(domain, customer, slot))
    }

    /// The customer's `slot`-th mobile number (10 national digits), skipping numbers a junk filter would flag.
    pub(crate) fn mobile(&self, customer: u64, slot: u32) -> Result<String> {
        let mut found = 0;
        for attempt in 0..PHONE_SLOTS {
            let tail = MOBILE_TAIL_BASE + self.mobile_tail.apply(customer * PHONE_SLOTS + attempt);
            let national = format!("9{tail}");
            if looks_like_junk_number(&national) {
                continue;
            }
            if found == slot {
                return Ok(national);
            }
            found += 1;
        }
        exec_err!("generate: no clean mobile number left for customer {customer} (slot {slot})")
    }

    /// A landline (10 national digits) for a store: area code + 7 digits not starting with 0.
    pub(crate) fn landline(&self, area_code: &str, store: u64) -> String {
        format!("{area_code}{}", 1_000_000 + self.landline.apply(store))
    }

    /// The unique numeric suffix of a customer's `slot`-th e-mail.
    fn email_token(&self, customer: u64, slot: u32) -> u64 {
        self.email_token
            .apply(customer * EMAIL_SLOTS + u64::from(slot).min(EMAIL_SLOTS - 1))
    }
}

/// Six or more equal digits in a row: what blocklists treat as a placeholder number.
fn looks_like_junk_number(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    bytes.windows(6).any(|w| w.iter().all(|b| *b == w[0]))
}

/// 128 bits formatted 8-4-4-4-12; the low half is derived from the (unique) high half.
fn uuid_like(high: u64, upper: bool) -> String {
    let low = mix64(high ^ 0xA5A5_A5A5_A5A5_A5A5);
    let s = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    );
    if upper { s.to_ascii_uppercase() } else { s }
}

const FIRST_NAMES: &[&str] = &[
    "ivan",
    "anna",
    "dmitry",
    "elena",
    "sergey",
    "olga",
    "alexey",
    "maria",
    "andrey",
    "natalia",
    "mikhail",
    "irina",
    "pavel",
    "tatiana",
    "nikolay",
    "ekaterina",
    "artem",
    "svetlana",
    "maxim",
    "yulia",
    "roman",
    "daria",
    "igor",
    "ksenia",
    "oleg",
    "polina",
    "denis",
    "victoria",
    "egor",
    "alina",
];
const LAST_NAMES: &[&str] = &[
    "ivanov",
    "smirnova",
    "kuznetsov",
    "popova",
    "vasiliev",
    "petrova",
    "sokolov",
    "mikhailova",
    "novikov",
    "fedorova",
    "morozov",
    "volkova",
    "alekseev",
    "lebedeva",
    "semenov",
    "egorova",
    "pavlov",
    "kozlova",
    "stepanov",
    "nikolaeva",
    "orlov",
    "andreeva",
    "makarov",
    "zakharova",
    "zaitsev",
    "soloveva",
    "borisov",
    "yakovleva",
    "grigoriev",
    "romanova",
];
/// (domain, weight)
const EMAIL_DOMAINS: &[(&str, f64)] = &[
    ("gmail.com", 0.30),
    ("mail.ru", 0.25),
    ("yandex.ru", 0.22),
    ("bk.ru", 0.06),
    ("list.ru", 0.05),
    ("inbox.ru", 0.04),
    ("outlook.com", 0.05),
    ("icloud.com", 0.03),
];
const EMAIL_TAGS: &[&str] = &["promo", "shop", "news", "sale", "orders"];

/// An e-mail address of a person: how they usually type it, and its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Email {
    /// Local part as the person writes it (lowercase; may contain dots, even for gmail).
    pub(crate) local: String,
    pub(crate) domain: &'static str,
    pub(crate) canonical: String,
}

impl Email {
    pub(crate) fn new(keys: &IdKeys, customer: u64, slot: u32, rng: &mut Rng) -> Email {
        let first = rng.pick(FIRST_NAMES).copied().unwrap_or("user");
        let last = rng.pick(LAST_NAMES).copied().unwrap_or("client");
        let token = keys.email_token(customer, slot);
        // The numeric token ends every local part and names contain no digits, so locals are unique.
        let local = match rng.below(6) {
            0 => format!("{first}.{last}{token}"),
            1 => format!("{first}{last}{token}"),
            2 => format!("{first}_{last}{token}"),
            3 => format!("{last}.{first}{token}"),
            4 => format!("{}.{last}{token}", &first[..1]),
            _ => format!("{last}{token}"),
        };
        let weights: Vec<f64> = EMAIL_DOMAINS.iter().map(|(_, w)| *w).collect();
        let domain = EMAIL_DOMAINS[rng.weighted(&weights)].0;
        let canonical = if is_gmail(domain) {
            format!("{}@gmail.com", local.replace('.', ""))
        } else {
            format!("{local}@{domain}")
        };
        Email {
            local,
            domain,
            canonical,
        }
    }

    /// How the CRM stores it: lowercase, as typed at sign-up (dots of a gmail address kept).
    pub(crate) fn as_registered(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// One occurrence as a person or a system typed it: case changes, stray whitespace, `+tags`, and for gmail
    /// moved dots and googlemail.com — all undone by the canonical rules.
    pub(crate) fn raw(&self, rng: &mut Rng) -> String {
        if rng.chance(0.55) {
            return self.as_registered();
        }
        let gmail = is_gmail(self.domain);
        let mut local = if gmail && rng.chance(0.5) {
            let bare: String = self.local.chars().filter(|c| *c != '.').collect();
            insert_dot(&bare, rng)
        } else {
            self.local.clone()
        };
        if rng.chance(0.25) {
            local.push('+');
            local.push_str(rng.pick(EMAIL_TAGS).copied().unwrap_or("tag"));
        }
        let domain = if gmail && rng.chance(0.2) {
            "googlemail.com"
        } else {
            self.domain
        };
        let mut raw = match rng.below(4) {
            0 => format!("{}@{domain}", capitalize(&local)),
            1 => format!("{local}@{domain}").to_ascii_uppercase(),
            2 => format!("{local}@{}", domain.to_ascii_uppercase()),
            _ => format!("{local}@{domain}"),
        };
        if rng.chance(0.3) {
            raw = pad_with_whitespace(&raw, rng);
        }
        raw
    }
}

fn is_gmail(domain: &str) -> bool {
    domain == "gmail.com" || domain == "googlemail.com"
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A dot at a random inner position (never first or last).
fn insert_dot(local: &str, rng: &mut Rng) -> String {
    if local.len() < 3 {
        return local.to_string();
    }
    let at = 1 + rng.index(local.len() - 2);
    format!("{}.{}", &local[..at], &local[at..])
}

/// Leading and/or trailing spaces or tabs, as pasted into forms.
pub(crate) fn pad_with_whitespace(value: &str, rng: &mut Rng) -> String {
    const PADS: &[&str] = &[" ", "  ", "\t", " \t"];
    let pad = rng.pick(PADS).copied().unwrap_or(" ");
    match rng.below(3) {
        0 => format!("{pad}{value}"),
        1 => format!("{value}{pad}"),
        _ => format!("{pad}{value}{pad}"),
    }
}

/// A phone number as typed at a till or in a form, from its 10 national digits (`9161234567`).
pub(crate) fn raw_phone(national: &str, rng: &mut Rng) -> String {
    if national.len() != 10 {
        return national.to_string();
    }
    let (code, a, b, c) = (
        &national[..3],
        &national[3..6],
        &national[6..8],
        &national[8..],
    );
    match rng.below(8) {
        0 => format!("8 ({code}) {a}-{b}-{c}"),
        1 => format!("+7 {code} {a}-{b}-{c}"),
        2 => format!("8{national}"),
        3 => national.to_string(),
        4 => format!("+7({code}){a}{b}{c}"),
        5 => format!("7 {code} {a} {b} {c}"),
        6 => format!("8-{code}-{a}-{b}-{c}"),
        _ => format!("+7{national}"),
    }
}

/// E.164 of a Russian national number.
pub(crate) fn canonical_phone(national: &str) -> String {
    format!("+7{national}")
}

/// Placeholder phones typed when a customer refuses: (raw, canonical).
pub(crate) const PLACEHOLDER_PHONES: &[(&str, &str)] = &[
    ("0000000000", "+70000000000"),
    ("+7 (000) 000-00-00", "+70000000000"),
    ("89999999999", "+79999999999"),
    ("9999999999", "+79999999999"),
    ("1111111111", "+71111111111"),
    ("8 (111) 111-11-11", "+71111111111"),
];

/// Placeholder and test e-mails: (raw, canonical, kind).
pub(crate) const JUNK_EMAILS: &[(&str, &str, &str)] = &[
    ("test@test.com", "test@test.com", "test_email"),
    ("TEST@TEST.COM", "test@test.com", "test_email"),
    ("noemail@mail.ru", "noemail@mail.ru", "placeholder_email"),
    (
        "noemail@noemail.ru",
        "noemail@noemail.ru",
        "placeholder_email",
    ),
    (
        "no-email@yandex.ru",
        "no-email@yandex.ru",
        "placeholder_email",
    ),
];

/// Cookies are scrambled with `browser * 4096 + generation` as slot: rotation stops at the last generation.
const MAX_COOKIE_GENERATION: u32 = 4095;
/// The pseudo-browser index of throwaway cookies (private windows, in-app browsers); real browsers are 0..3.
const THROWAWAY_BROWSER: u32 = 200;
/// Share of browsers that expire the shop's cookie after a week without a visit (Safari's tracking prevention
/// where the shop's cookie is not set by its server).
const P_EXPIRING_BROWSER: f64 = 0.15;
const COOKIE_EXPIRY_US: i64 = 7 * 24 * 3600 * 1_000_000;
/// Chance that the person cleared cookies since the previous session on a browser.
const P_COOKIES_CLEARED: f64 = 0.03;

/// A browser and its cookie: it changes when cookies are cleared or, on an expiring browser, after a week away.
struct Browser {
    index: u32,
    generation: u32,
    expires_cookies: bool,
    /// Time of the latest session on the browser; `None` before the first.
    last_visit_us: Option<i64>,
    /// The shop's "remember me" login of the current cookie: lost with the cookie.
    signed_in: bool,
}

/// A person's identifiers, with a record of those that actually reached a table (the truth).
pub(crate) struct Identity {
    pub(crate) customer: u64,
    pub(crate) person_id: String,
    pub(crate) emails: Vec<Email>,
    /// National numbers; for a hard-to-link customer only ever used offline.
    pub(crate) phones: Vec<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) app_account_id: Option<String>,
    devices: Vec<String>,
    /// Per device: the app keeps its login once the person has signed in there.
    devices_signed_in: Vec<bool>,
    browsers: Vec<Browser>,
    /// The browser of the latest [`Identity::cookie`] session.
    current_browser: usize,
    /// Throwaway cookies handed out so far.
    throwaway_cookies: u32,
    pub(crate) loyalty_card: Option<String>,
    /// The card is shown at the till and in store; not for hard-to-link people, whose card lives in the app only.
    pub(crate) card_in_store: bool,
    /// Index of the store the person usually shops at.
    pub(crate) home_store: usize,
    /// Identifiers that reached a row; the truth lists exactly these.
    used: Vec<IdUse>,
}

impl Identity {
    /// Draws the identifiers of `customer` with the given traits; `stores` is the number of stores.
    pub(crate) fn new(
        keys: &IdKeys,
        stores: usize,
        customer: u64,
        traits: &Traits,
        rng: &mut Rng,
    ) -> Result<Identity> {
        let mut emails = Vec::new();
        if traits.email {
            emails.push(Email::new(keys, customer, 0, rng));
            if rng.chance(0.15) {
                emails.push(Email::new(keys, customer, 1, rng));
            }
        }
        let mut phones = Vec::new();
        if traits.phone {
            phones.push(keys.mobile(customer, 0)?);
            if rng.chance(0.2) {
                phones.push(keys.mobile(customer, 1)?);
            }
        }
        let app_account_id = traits.app.then(|| keys.app_account_id(customer));
        let device_count = if traits.app {
            1 + rng.weighted(&[0.7, 0.25, 0.05])
        } else {
            0
        };
        let browser_count = if traits.segment.shops_online() {
            1 + rng.weighted(&[0.6, 0.3, 0.1])
        } else {
            0
        };
        Ok(Identity {
            customer,
            person_id: format!("P{customer:09}"),
            emails,
            phones,
            user_id: traits.web_account.then(|| keys.user_id(customer)),
            app_account_id,
            devices: (0..device_count as u32)
                .map(|d| keys.device_id(customer, d))
                .collect(),
            devices_signed_in: vec![false; device_count],
            browsers: (0..browser_count as u32)
                .map(|index| Browser {
                    index,
                    generation: 0,
                    expires_cookies: rng.chance(P_EXPIRING_BROWSER),
                    last_visit_us: None,
                    signed_in: false,
                })
                .collect(),
            current_browser: 0,
            throwaway_cookies: 0,
            // The app is also a digital loyalty card: every app user has one.
            loyalty_card: (traits.loyalty || traits.app).then(|| keys.loyalty_card(customer)),
            card_in_store: !traits.hard,
            home_store: rng.index(stores),
            used: Vec::new(),
        })
    }

    /// Every identifier that reached a row, as (type, canonical value), each once; the record starts over.
    pub(crate) fn take_used(&mut self, keys: &IdKeys) -> Vec<(IdType, String)> {
        let mut used = std::mem::take(&mut self.used);
        used.sort_unstable();
        used.dedup();
        used.into_iter()
            .filter_map(|id| self.canonical(keys, id))
            .collect()
    }

    /// The identifier's type and canonical value.
    fn canonical(&self, keys: &IdKeys, id: IdUse) -> Option<(IdType, String)> {
        Some(match id {
            IdUse::Email(i) => (IdType::Email, self.emails.get(i)?.canonical.clone()),
            IdUse::Phone(i) => (IdType::Phone, canonical_phone(self.phones.get(i)?)),
            IdUse::Cookie {
                browser,
                generation,
            } => (
                IdType::AnonymousId,
                keys.anonymous_id(self.customer, browser, generation),
            ),
            IdUse::Device(i) => (IdType::DeviceId, self.devices.get(i)?.clone()),
            IdUse::AppAccount => (IdType::AppAccountId, self.app_account_id.clone()?),
            IdUse::User => (IdType::UserId, self.user_id.clone()?),
            IdUse::Loyalty => (IdType::LoyaltyCard, self.loyalty_card.clone()?),
        })
    }

    /// A raw occurrence of one of the person's e-mails (the first one most of the time).
    pub(crate) fn email_raw(&mut self, rng: &mut Rng) -> Option<String> {
        let i = if self.emails.len() > 1 && rng.chance(0.3) {
            1
        } else {
            0
        };
        let raw = self.emails.get(i)?.raw(rng);
        self.used.push(IdUse::Email(i));
        Some(raw)
    }

    /// The first e-mail as the person registered it (what the CRM and its e-mail service hold).
    pub(crate) fn registered_email(&mut self) -> Option<String> {
        let registered = self.emails.first()?.as_registered();
        self.used.push(IdUse::Email(0));
        Some(registered)
    }

    /// A raw occurrence of one of the person's phones.
    pub(crate) fn phone_raw(&mut self, rng: &mut Rng) -> Option<String> {
        let i = rng.index(self.phones.len());
        let raw = raw_phone(self.phones.get(i)?, rng);
        self.used.push(IdUse::Phone(i));
        Some(raw)
    }

    /// The phone the person gave at sign-up (the first one): what the loyalty account and the CRM hold.
    pub(crate) fn phone_on_file(&mut self, rng: &mut Rng) -> Option<String> {
        let raw = raw_phone(self.phones.first()?, rng);
        self.used.push(IdUse::Phone(0));
        Some(raw)
    }

    pub(crate) fn app_account(&mut self) -> Option<String> {
        let id = self.app_account_id.clone()?;
        self.used.push(IdUse::AppAccount);
        Some(id)
    }

    pub(crate) fn user(&mut self) -> Option<String> {
        let id = self.user_id.clone()?;
        self.used.push(IdUse::User);
        Some(id)
    }

    /// An app session on one of the person's devices, and whether the app is signed in there: once signed in
    /// (with probability `p_sign_in` per session, or always when `must_sign_in`, e.g. to order) it stays so.
    pub(crate) fn device(
        &mut self,
        rng: &mut Rng,
        p_sign_in: f64,
        must_sign_in: bool,
    ) -> Option<(String, bool)> {
        let i = rng.index(self.devices.len());
        let id = self.devices.get(i)?.clone();
        self.used.push(IdUse::Device(i));
        let signed_in = self.devices_signed_in.get_mut(i)?;
        if !*signed_in && (must_sign_in || rng.chance(p_sign_in)) {
            *signed_in = true;
        }
        Some((id, *signed_in))
    }

    /// The cookie of a session at `ts` on one of the person's browsers (sessions come in time order). The cookie
    /// changes when the person cleared cookies, or after a week without a visit on an expiring browser.
    pub(crate) fn cookie(&mut self, keys: &IdKeys, ts: i64, rng: &mut Rng) -> Option<String> {
        let i = rng.index(self.browsers.len());
        let cleared = rng.chance(P_COOKIES_CLEARED);
        let browser = self.browsers.get_mut(i)?;
        if let Some(last) = browser.last_visit_us {
            let expired = browser.expires_cookies && ts - last > COOKIE_EXPIRY_US;
            if (expired || cleared) && browser.generation < MAX_COOKIE_GENERATION {
                browser.generation += 1;
                browser.signed_in = false;
            }
        }
        browser.last_visit_us = Some(ts);
        self.current_browser = i;
        let (index, generation) = (browser.index, browser.generation);
        self.used.push(IdUse::Cookie {
            browser: index,
            generation,
        });
        Some(keys.anonymous_id(self.customer, index, generation))
    }

    /// A cookie used for one session only: a private window or the in-app browser of a social network.
    pub(crate) fn throwaway_cookie(&mut self, keys: &IdKeys) -> String {
        let generation = self.throwaway_cookies.min(MAX_COOKIE_GENERATION);
        self.throwaway_cookies += 1;
        self.used.push(IdUse::Cookie {
            browser: THROWAWAY_BROWSER,
            generation,
        });
        keys.anonymous_id(self.customer, THROWAWAY_BROWSER, generation)
    }

    /// Whether the cookie of the latest session carries the shop's login.
    pub(crate) fn signed_in(&self) -> bool {
        self.browsers
            .get(self.current_browser)
            .is_some_and(|b| b.signed_in)
    }

    /// The person logs in on the browser of the latest session: its cookie stays signed in until it rotates.
    pub(crate) fn sign_in(&mut self) {
        if let Some(browser) = self.browsers.get_mut(self.current_browser) {
            browser.signed_in = true;
        }
    }

    /// Whether the person browses the web shop at all (has a browser).
    pub(crate) fn browses_web(&self) -> bool {
        !self.browsers.is_empty()
    }

    /// A loyalty card as presented or typed: sometimes with stray whitespace.
    pub(crate) fn loyalty_raw(&mut self, rng: &mut Rng, p_whitespace: f64) -> Option<String> {
        let card = self.loyalty_card.clone()?;
        self.used.push(IdUse::Loyalty);
        Some(if rng.chance(p_whitespace) {
            pad_with_whitespace(&card, rng)
        } else {
            card
        })
    }
}

/// One of a person's identifiers (by position), recorded when a row carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IdUse {
    Email(usize),
    Phone(usize),
    Cookie { browser: u32, generation: u32 },
    Device(usize),
    AppAccount,
    User,
    Loyalty,
}

/// (city, area code, weight)
const CITIES: &[(&str, &str, f64)] = &[
    ("Moscow", "495", 0.45),
    ("Saint Petersburg", "812", 0.25),
    ("Yekaterinburg", "343", 0.10),
    ("Novosibirsk", "383", 0.10),
    ("Kazan", "843", 0.10),
];
const STORE_PLACES: &[&str] = &[
    "Aviapark",
    "Mega",
    "Galereya",
    "Evropeisky",
    "Atrium",
    "Okhotny Ryad",
    "Metropolis",
    "Gorod",
    "Rodeo Drive",
    "Planeta",
    "Kolumbus",
    "Vegas",
    "Tsvetnoy",
    "Nevsky Centre",
    "Greenwich",
    "Aura",
];

/// A store and its identifiers.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) city: &'static str,
    /// The store's own landline, 10 national digits.
    pub(crate) phone_national: String,
    /// How the phone is written in the store master data.
    pub(crate) phone_raw: String,
    pub(crate) opened_date: i32,
    /// The cookie of the shared tablet on which customers order in the store.
    pub(crate) tablet_cookie: String,
}

/// How many stores a population of `customers` gets: one per ~2000 customers, at least 5, at most 400.
pub(crate) fn store_count(customers: u64) -> u64 {
    (customers / 2000).clamp(5, 400)
}

pub(crate) fn make_stores(
    seed: u64,
    keys: &IdKeys,
    count: u64,
    period_start_date: i32,
) -> Vec<Store> {
    let weights: Vec<f64> = CITIES.iter().map(|(_, _, w)| *w).collect();
    (0..count)
        .map(|s| {
            let mut rng = Rng::new(seed, Stream::Stores, s);
            let (city, area, _) = CITIES[rng.weighted(&weights)];
            let place = rng.pick(STORE_PLACES).copied().unwrap_or("Centre");
            let phone_national = keys.landline(area, s);
            Store {
                id: format!("S{:04}", s + 1),
                name: format!("Phygital {place} ({city})"),
                city,
                phone_raw: raw_phone(&phone_national, &mut rng),
                phone_national,
                opened_date: period_start_date - rng.range_i64(30, 3650) as i32,
                tablet_cookie: keys.tablet_cookie(s),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An independent transcription of the canonical e-mail rules, to check the noise is undone.
    pub(crate) fn reference_canonical_email(raw: &str) -> String {
        let e = raw.trim().to_lowercase();
        let (local, domain) = e.split_once('@').unwrap();
        let local = local.split('+').next().unwrap();
        if domain == "gmail.com" || domain == "googlemail.com" {
            format!("{}@gmail.com", local.replace('.', ""))
        } else {
            format!("{local}@{domain}")
        }
    }

    /// An independent transcription of the canonical phone rule for Russian numbers.
    pub(crate) fn reference_canonical_phone(raw: &str) -> Option<String> {
        let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
        match digits.len() {
            11 if digits.starts_with('7') || digits.starts_with('8') => {
                Some(format!("+7{}", &digits[1..]))
            }
            10 => Some(format!("+7{digits}")),
            _ => None,
        }
    }

    #[test]
    fn raw_emails_canonicalise_back() {
        let keys = IdKeys::new(11);
        let mut rng = Rng::new(11, Stream::Detail, 0);
        let mut saw = (false, false, false, false);
        for customer in 0..300 {
            let email = Email::new(&keys, customer, 0, &mut rng);
            assert_eq!(reference_canonical_email(&email.canonical), email.canonical);
            assert_eq!(
                reference_canonical_email(&email.as_registered()),
                email.canonical
            );
            for _ in 0..20 {
                let raw = email.raw(&mut rng);
                assert_eq!(
                    reference_canonical_email(&raw),
                    email.canonical,
                    "raw {raw:?}"
                );
                saw.0 |= raw.contains('+');
                saw.1 |= raw.contains("googlemail.com");
                saw.2 |= raw.starts_with([' ', '\t']) || raw.ends_with([' ', '\t']);
                saw.3 |= raw.chars().any(|c| c.is_ascii_uppercase());
            }
        }
        assert_eq!(saw, (true, true, true, true), "every kind of noise appears");
    }

    #[test]
    fn gmail_canonical_has_no_dots_in_local_part() {
        let keys = IdKeys::new(2);
        let mut rng = Rng::new(2, Stream::Detail, 0);
        let gmail: Vec<Email> = (0..200)
            .map(|c| Email::new(&keys, c, 0, &mut rng))
            .filter(|e| e.domain == "gmail.com")
            .collect();
        assert!(!gmail.is_empty());
        for e in gmail {
            let (local, domain) = e.canonical.split_once('@').unwrap();
            assert!(
                !local.contains('.') && domain == "gmail.com",
                "{}",
                e.canonical
            );
        }
    }

    #[test]
    fn emails_are_unique_per_customer_and_slot() {
        let keys = IdKeys::new(3);
        let mut rng = Rng::new(3, Stream::Detail, 0);
        let mut seen = std::collections::HashSet::new();
        for customer in 0..2000 {
            for slot in 0..2 {
                assert!(seen.insert(Email::new(&keys, customer, slot, &mut rng).canonical));
            }
        }
    }

    #[test]
    fn raw_phones_canonicalise_back_in_every_format() {
        let keys = IdKeys::new(5);
        let mut rng = Rng::new(5, Stream::Detail, 0);
        let mut formats = std::collections::HashSet::new();
        for customer in 0..200 {
            let national = keys.mobile(customer, 0).unwrap();
            assert!(national.starts_with('9') && national.len() == 10);
            for _ in 0..10 {
                let raw = raw_phone(&national, &mut rng);
                assert_eq!(
                    reference_canonical_phone(&raw),
                    Some(canonical_phone(&national)),
                    "raw {raw:?}"
                );
                formats.insert(
                    raw.chars()
                        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
                        .collect::<String>(),
                );
            }
        }
        assert!(formats.contains("d (ddd) ddd-dd-dd"));
        assert!(formats.contains("+d ddd ddd-dd-dd"));
        assert!(formats.contains("ddddddddddd"));
        assert!(formats.contains("dddddddddd"));
        assert!(formats.contains("+d(ddd)ddddddd"));
        assert!(formats.contains("d ddd ddd dd dd"));
        assert!(formats.contains("d-ddd-ddd-dd-dd"));
        for (raw, canonical) in PLACEHOLDER_PHONES {
            assert_eq!(reference_canonical_phone(raw).as_deref(), Some(*canonical));
        }
        for (raw, canonical, _) in JUNK_EMAILS {
            assert_eq!(reference_canonical_email(raw), *canonical);
        }
    }

    #[test]
    fn phones_are_unique_and_never_look_like_junk() {
        let keys = IdKeys::new(8);
        let mut seen = std::collections::HashSet::new();
        for customer in 0..5000 {
            for slot in 0..2 {
                let p = keys.mobile(customer, slot).unwrap();
                assert!(!looks_like_junk_number(&p));
                assert!(seen.insert(p));
            }
        }
        assert!(looks_like_junk_number("9111111234"));
        assert!(!looks_like_junk_number("9161234567"));
    }

    #[test]
    fn identifier_formats() {
        let keys = IdKeys::new(1);
        let card = keys.loyalty_card(42);
        assert_eq!(card.len(), 13);
        assert!(card.starts_with('2') && card.chars().all(|c| c.is_ascii_digit()));
        // EAN-13: weighted digit sum (1, 3, 1, 3, …) including the check digit is a multiple of 10.
        let sum: u32 = card
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        assert_eq!(sum % 10, 0);
        let user = keys.user_id(42);
        assert!(
            user.starts_with('U')
                && user.len() == 10
                && user[1..].chars().all(|c| c.is_ascii_digit())
        );
        let app = keys.app_account_id(42);
        assert!(app.starts_with('A') && app[1..].chars().all(|c| c.is_ascii_digit()));
        let cookie = keys.anonymous_id(42, 1, 3);
        assert_eq!(cookie.len(), 36);
        assert!(
            cookie
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        let device = keys.device_id(42, 0);
        assert!(
            device
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('A'..='F').contains(&c))
        );
        assert_ne!(keys.anonymous_id(42, 1, 3), keys.anonymous_id(42, 1, 4));
        assert_ne!(keys.anonymous_id(42, 0, 0), keys.tablet_cookie(42));
        assert_ne!(IdKeys::new(2).user_id(42), user);
    }

    #[test]
    fn stores_have_distinct_landlines() {
        let keys = IdKeys::new(4);
        let stores = make_stores(4, &keys, 400, 20_454);
        let phones: std::collections::HashSet<_> = stores
            .iter()
            .map(|s| canonical_phone(&s.phone_national))
            .collect();
        assert_eq!(phones.len(), 400);
        for s in &stores {
            assert_eq!(
                reference_canonical_phone(&s.phone_raw),
                Some(canonical_phone(&s.phone_national))
            );
            assert!(
                !s.phone_national.starts_with('9'),
                "landlines never collide with mobiles"
            );
            assert!(s.opened_date < 20_454);
        }
        assert_eq!(store_count(2000), 5);
        assert_eq!(store_count(10_000_000), 400);
    }
}
