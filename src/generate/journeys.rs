//! One customer's life over the period: first a *plan* (traits, CRM group, journeys, conversions, baskets —
//! everything revenue depends on, drawn from the model), then the rows the source systems would have recorded
//! for it (web and app events, receipts, touches, scans, loyalty account), with raw identifiers and junk.

use datafusion::common::{Result, exec_err};

use super::model::{Channel, ChannelSet, Model, Segment, Traits};
use super::population::{
    IdKeys, IdType, Identity, JUNK_EMAILS, PLACEHOLDER_PHONES, Store, raw_phone,
};
use super::rng::{IdDomain, MAX_SLOT, Rng, Stream};
use super::schema::{
    AppEventRow, AppEventsColumns, CrmHoldoutColumns, CrmHoldoutRow, LoyaltyAccountRow,
    LoyaltyAccountsColumns, MarketingTouchRow, MarketingTouchesColumns, PosReceiptRow,
    PosReceiptsColumns, QrScanRow, QrScansColumns, ReceiptLine, Table, TruthIdentifierRow,
    TruthIdentifiersColumns, TruthPeopleColumns, TruthPersonRow, WebEventRow, WebEventsColumns,
};

pub(crate) const MINUTE_US: i64 = 60 * 1_000_000;
pub(crate) const HOUR_US: i64 = 60 * MINUTE_US;
pub(crate) const DAY_US: i64 = 24 * HOUR_US;
const WEEK_US: i64 = 7 * DAY_US;
/// Stores open 09:00-22:00 Moscow time, i.e. 06:00-19:00 UTC.
const STORE_OPENS_US: i64 = 6 * HOUR_US;
const STORE_HOURS_US: i64 = 13 * HOUR_US;
const MAX_JOURNEY_US: i64 = 14 * DAY_US;

const SHOP_URL: &str = "https://www.phygital-shop.ru/";
/// A web session of an account holder who is not signed in yet logs in with this probability (loyalty prices and
/// points show only when signed in).
const P_WEB_LOGIN: f64 = 0.5;
/// A session of a guest (no web account) leaves an e-mail with this probability: the discount pop-up, a
/// back-in-stock alert.
const P_GUEST_EMAIL_CAPTURE: f64 = 0.15;
/// An app session on a device where the app is not signed in yet signs in with this probability.
const P_APP_SIGN_IN: f64 = 0.9;
/// Share of CRM e-mails and SMS whose link the recipient follows.
const P_EMAIL_CLICK: f64 = 0.15;
const P_SMS_CLICK: f64 = 0.12;
/// A followed link opens the app (a universal link) rather than the site, for people with both.
const P_LINK_OPENS_APP: f64 = 0.4;

/// Share of ad clicks that open in a social network's in-app browser or a private window: one page on a cookie
/// never seen again (the unlinkable minority of real web data).
fn p_throwaway_session(channel: Channel) -> f64 {
    if channel == Channel::PaidSocial {
        0.05
    } else {
        0.01
    }
}
const CURRENCY: &str = "RUB";

/// Everything shared by all customers of a run.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) model: Model,
    pub(crate) keys: IdKeys,
    pub(crate) stores: Vec<Store>,
    pub(crate) period_start_us: i64,
    pub(crate) period_end_us: i64,
}

impl World {
    fn period_us(&self) -> i64 {
        self.period_end_us - self.period_start_us
    }

    /// A timestamp pulled inside the period (events of a session may spill over its edges otherwise).
    fn clamp(&self, ts: i64) -> i64 {
        ts.clamp(self.period_start_us, self.period_end_us - 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrmGroup {
    Control,
    Target,
}

impl CrmGroup {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CrmGroup::Control => "control",
            CrmGroup::Target => "target",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Store,
    Web,
    App,
    /// The shared tablet in a store: a web order under the store's cookie.
    StoreTablet,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversion {
    pub(crate) place: Place,
    /// (catalogue index, quantity)
    pub(crate) lines: Vec<(usize, u32)>,
}

impl Conversion {
    pub(crate) fn amount_cents(&self, model: &Model) -> i64 {
        self.lines
            .iter()
            .map(|&(sku, qty)| model.catalog.get(sku).map_or(0, |s| s.price_cents) * i64::from(qty))
            .sum()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Journey {
    pub(crate) start_us: i64,
    /// The conversion time if it converts, else when the journey fades out.
    pub(crate) end_us: i64,
    pub(crate) channels: ChannelSet,
    pub(crate) conversion: Option<Conversion>,
}

#[derive(Debug, Clone)]
pub(crate) struct PersonPlan {
    pub(crate) traits: Traits,
    /// `None` for customers the CRM does not know.
    pub(crate) crm_group: Option<CrmGroup>,
    pub(crate) journeys: Vec<Journey>,
}

/// Draws the plan of `customer` (stream [`Stream::Plan`]), following the model exactly.
pub(crate) fn plan_person(world: &World, customer: u64) -> PersonPlan {
    let model = &world.model;
    let mut rng = Rng::new(world.seed, Stream::Plan, customer);
    let segment = model.sample_segment(&mut rng);
    let params = *model.segment(segment);
    let traits = Traits::decide(segment, &params, &mut |p| rng.chance(p));
    let crm_group = traits.crm_reachable().then(|| {
        if rng.chance(model.control_share) {
            CrmGroup::Control
        } else {
            CrmGroup::Target
        }
    });
    let treated = crm_group == Some(CrmGroup::Target);
    let n = model.journeys(segment).sample(&mut rng);
    let journeys = (0..n)
        .map(|_| {
            let channels = model.journey_channels(&traits, treated, &mut |p| rng.chance(p));
            let converts = rng.chance(model.conversion_probability(&traits, treated, channels));
            let conversion = converts.then(|| {
                let in_store_touch = channels.iter().any(Channel::is_in_store);
                let p_store = if in_store_touch {
                    params.p_offline_after_store_touch
                } else {
                    params.p_offline
                };
                let place = if rng.chance(p_store) {
                    Place::Store
                } else if traits.app && rng.chance(0.5) {
                    Place::App
                } else if segment == Segment::Hybrid && rng.chance(0.05) {
                    Place::StoreTablet
                } else {
                    Place::Web
                };
                let items = model.items(segment).sample(&mut rng);
                let lines = (0..items)
                    .map(|_| {
                        (
                            rng.index(model.catalog.len()),
                            model.quantity.sample(&mut rng),
                        )
                    })
                    .collect();
                Conversion { place, lines }
            });
            let length = rng.range_i64(HOUR_US, MAX_JOURNEY_US.min(world.period_us()) + 1);
            let earliest_end = (world.period_start_us + length).min(world.period_end_us - 1);
            let mut end_us = rng.range_i64(earliest_end, world.period_end_us);
            if conversion
                .as_ref()
                .is_some_and(|c| matches!(c.place, Place::Store | Place::StoreTablet))
            {
                end_us = in_store_hours(end_us, &mut rng);
            }
            Journey {
                start_us: (end_us - length).max(world.period_start_us),
                end_us,
                channels,
                conversion,
            }
        })
        .collect();
    PersonPlan {
        traits,
        crm_group,
        journeys,
    }
}

/// The same day, at a random time while stores are open (still inside the period: days start at midnight).
fn in_store_hours(ts: i64, rng: &mut Rng) -> i64 {
    ts.div_euclid(DAY_US) * DAY_US + STORE_OPENS_US + rng.range_i64(0, STORE_HOURS_US)
}

/// A uniform time in `[start, end)` while stores are open; when the window misses opening hours entirely (a
/// short night-time journey), the last opening hour before `end`.
fn time_in_store_hours(start: i64, end: i64, rng: &mut Rng) -> i64 {
    let first_day = start.div_euclid(DAY_US);
    let last_day = (end - 1).div_euclid(DAY_US);
    let open_spans: Vec<(i64, i64)> = (first_day..=last_day)
        .filter_map(|day| {
            let opens = (day * DAY_US + STORE_OPENS_US).max(start);
            let closes = (day * DAY_US + STORE_OPENS_US + STORE_HOURS_US).min(end);
            (opens < closes).then_some((opens, closes))
        })
        .collect();
    let total: i64 = open_spans.iter().map(|(a, b)| b - a).sum();
    if total == 0 {
        let day = if (end - 1).rem_euclid(DAY_US) >= STORE_OPENS_US + STORE_HOURS_US {
            last_day
        } else {
            last_day - 1
        };
        let closes = day * DAY_US + STORE_OPENS_US + STORE_HOURS_US;
        return closes - rng.range_i64(1, HOUR_US);
    }
    let mut offset = rng.range_i64(0, total);
    for (opens, closes) in &open_spans {
        if offset < closes - opens {
            return opens + offset;
        }
        offset -= closes - opens;
    }
    end - 1
}

/// The rows of one chunk of customers, per table.
pub(crate) struct ChunkTables {
    web: WebEventsColumns,
    app: AppEventsColumns,
    receipts: PosReceiptsColumns,
    loyalty: LoyaltyAccountsColumns,
    touches: MarketingTouchesColumns,
    scans: QrScansColumns,
    crm: CrmHoldoutColumns,
    truth: TruthIdentifiersColumns,
    people: TruthPeopleColumns,
}

impl ChunkTables {
    pub(crate) fn new() -> Self {
        ChunkTables {
            web: WebEventsColumns::new(),
            app: AppEventsColumns::new(),
            receipts: PosReceiptsColumns::new(),
            loyalty: LoyaltyAccountsColumns::new(),
            touches: MarketingTouchesColumns::new(),
            scans: QrScansColumns::new(),
            crm: CrmHoldoutColumns::new(),
            truth: TruthIdentifiersColumns::new(),
            people: TruthPeopleColumns::new(),
        }
    }

    /// The batches of every per-customer table, in a fixed order.
    pub(crate) fn finish(
        &mut self,
    ) -> Result<Vec<(Table, datafusion::arrow::record_batch::RecordBatch)>> {
        Ok(vec![
            (Table::WebEvents, self.web.finish()?),
            (Table::AppEvents, self.app.finish()?),
            (Table::PosReceipts, self.receipts.finish()?),
            (Table::LoyaltyAccounts, self.loyalty.finish()?),
            (Table::MarketingTouches, self.touches.finish()?),
            (Table::QrScans, self.scans.finish()?),
            (Table::CrmHoldout, self.crm.finish()?),
            (Table::TruthIdentifiers, self.truth.finish()?),
            (Table::TruthPeople, self.people.finish()?),
        ])
    }
}

/// Per-customer sequence of row ids of one kind.
struct Slots {
    domain: IdDomain,
    prefix: &'static str,
    next: u32,
}

impl Slots {
    fn new(domain: IdDomain, prefix: &'static str) -> Self {
        Slots {
            domain,
            prefix,
            next: 0,
        }
    }

    fn next_id(&mut self, keys: &IdKeys, customer: u64) -> Result<String> {
        if self.next > MAX_SLOT {
            return exec_err!(
                "generate: customer {customer} has more than {MAX_SLOT} rows of one kind ({})",
                self.prefix
            );
        }
        let id = keys.row_id(self.prefix, self.domain, customer, self.next);
        self.next += 1;
        Ok(id)
    }
}

/// What brought a web session about; sessions are replayed in time order so cookies rotate chronologically.
enum Visit {
    Touch(Channel),
    QrLanding {
        store: usize,
        with_card: bool,
    },
    Order(i64),
    /// A followed CRM link: the message's touch row (sent at `sent_us`) gets the landing cookie.
    CrmClick {
        channel: Channel,
        campaign: String,
        ids: TouchIds,
        sent_us: i64,
    },
}

struct Emitter<'w, 't> {
    world: &'w World,
    tables: &'t mut ChunkTables,
    rng: Rng,
    id: Identity,
    web_ids: Slots,
    app_ids: Slots,
    order_ids: Slots,
    receipt_ids: Slots,
    touch_ids: Slots,
    scan_ids: Slots,
}

/// Simulates `customer` and appends every row it produces to `tables`.
pub(crate) fn emit_person(world: &World, customer: u64, tables: &mut ChunkTables) -> Result<()> {
    let plan = plan_person(world, customer);
    let mut rng = Rng::new(world.seed, Stream::Detail, customer);
    let id = Identity::new(
        &world.keys,
        world.stores.len(),
        customer,
        &plan.traits,
        &mut rng,
    )?;
    let mut e = Emitter {
        world,
        tables,
        rng,
        id,
        web_ids: Slots::new(IdDomain::WebEvent, "we_"),
        app_ids: Slots::new(IdDomain::AppEvent, "ae_"),
        order_ids: Slots::new(IdDomain::Order, "ORD-"),
        receipt_ids: Slots::new(IdDomain::Receipt, "RCP-"),
        touch_ids: Slots::new(IdDomain::Touch, "tch_"),
        scan_ids: Slots::new(IdDomain::Scan, "qr_"),
    };
    e.emit(&plan)
}

impl Emitter<'_, '_> {
    fn emit(&mut self, plan: &PersonPlan) -> Result<()> {
        let mut visits: Vec<(i64, Visit)> = Vec::new();
        for journey in &plan.journeys {
            self.emit_journey(plan, journey, &mut visits)?;
        }
        if plan.traits.app {
            for _ in 0..self.rng.below(6) {
                let ts = self
                    .rng
                    .range_i64(self.world.period_start_us, self.world.period_end_us);
                self.app_session(ts, None, None)?;
            }
        }
        // Stable sort: simultaneous visits keep the order they were planned in.
        visits.sort_by_key(|(ts, _)| *ts);
        for (ts, visit) in visits {
            self.web_visit(ts, visit)?;
        }
        if self.id.loyalty_card.is_some() {
            self.loyalty_account(&plan.traits)?;
        }
        if let Some(group) = plan.crm_group {
            self.crm_holdout(group);
        }
        self.truth(plan);
        Ok(())
    }

    fn store(&mut self) -> usize {
        if self.rng.chance(0.8) {
            self.id.home_store
        } else {
            self.rng.index(self.world.stores.len())
        }
    }

    fn emit_journey(
        &mut self,
        plan: &PersonPlan,
        journey: &Journey,
        visits: &mut Vec<(i64, Visit)>,
    ) -> Result<()> {
        for channel in journey.channels.iter() {
            let (lo, hi) = self.world.model.channel(channel).touches;
            let n = lo + self.rng.below(u64::from(hi.saturating_sub(lo)) + 1) as u32;
            for _ in 0..n {
                let ts = if channel.is_in_store() {
                    self.world.clamp(time_in_store_hours(
                        journey.start_us,
                        journey.end_us,
                        &mut self.rng,
                    ))
                } else {
                    self.rng.range_i64(journey.start_us, journey.end_us)
                };
                self.touch(plan, channel, ts, visits)?;
            }
        }
        if let Some(conversion) = &journey.conversion {
            let amount = conversion.amount_cents(&self.world.model);
            match conversion.place {
                Place::Store => self.receipt(journey.end_us, conversion, amount)?,
                Place::Web => visits.push((journey.end_us, Visit::Order(amount))),
                Place::App => self.app_session(journey.end_us, None, Some(amount))?,
                Place::StoreTablet => self.tablet_order(journey.end_us, amount)?,
            }
        }
        Ok(())
    }

    fn campaign_week(&self, ts: i64) -> i64 {
        (ts - self.world.period_start_us).div_euclid(WEEK_US) + 1
    }

    fn push_touch(
        &mut self,
        ts: i64,
        channel: Channel,
        campaign: Option<&str>,
        ids: TouchIds,
    ) -> Result<()> {
        let touch_id = self.touch_ids.next_id(&self.world.keys, self.id.customer)?;
        self.tables.touches.push(MarketingTouchRow {
            touch_id: &touch_id,
            touch_ts: ts,
            channel: channel.name(),
            campaign,
            email: ids.email.as_deref(),
            phone_raw: ids.phone_raw.as_deref(),
            app_account_id: ids.app_account_id.as_deref(),
            anonymous_id: ids.anonymous_id.as_deref(),
            cost: self.world.model.channel(channel).cost_cents,
        });
        Ok(())
    }

    fn touch(
        &mut self,
        plan: &PersonPlan,
        channel: Channel,
        ts: i64,
        visits: &mut Vec<(i64, Visit)>,
    ) -> Result<()> {
        let week = self.campaign_week(ts);
        match channel {
            Channel::Sms => {
                let phone_raw = self.id.phone_on_file(&mut self.rng);
                let campaign = format!("crm_sms_w{week:02}");
                let ids = TouchIds {
                    phone_raw,
                    ..TouchIds::default()
                };
                self.crm_message(channel, ts, campaign, ids, P_SMS_CLICK, visits)
            }
            Channel::Email => {
                // The e-mail service sends to the address as registered, with the odd legacy import.
                let email = if self.rng.chance(0.8) {
                    self.id.registered_email()
                } else {
                    self.id.email_raw(&mut self.rng)
                };
                let campaign = format!("crm_email_w{week:02}");
                let ids = TouchIds {
                    email,
                    ..TouchIds::default()
                };
                self.crm_message(channel, ts, campaign, ids, P_EMAIL_CLICK, visits)
            }
            Channel::Push => {
                let app_account_id = self.id.app_account();
                let campaign = format!("crm_push_w{week:02}");
                self.push_touch(
                    ts,
                    channel,
                    Some(&campaign),
                    TouchIds {
                        app_account_id,
                        ..TouchIds::default()
                    },
                )?;
                if self.rng.chance(0.35) {
                    let opened = ts + self.rng.range_i64(MINUTE_US, 30 * MINUTE_US);
                    self.app_session(opened, Some(("push_open", &campaign)), None)?;
                }
                Ok(())
            }
            Channel::StoreVisit => {
                // Recognised by the app's beacon or by the Wi-Fi login with a phone number.
                let by_app = plan.traits.app && (!plan.traits.phone || self.rng.chance(0.5));
                let ids = if by_app {
                    TouchIds {
                        app_account_id: self.id.app_account(),
                        ..TouchIds::default()
                    }
                } else {
                    TouchIds {
                        phone_raw: self.id.phone_raw(&mut self.rng),
                        ..TouchIds::default()
                    }
                };
                let campaign = if by_app { "app_beacon" } else { "wifi_login" };
                self.push_touch(ts, channel, Some(campaign), ids)
            }
            Channel::QrScan => {
                let store = self.store();
                let with_card =
                    self.id.card_in_store && self.id.loyalty_card.is_some() && self.rng.chance(0.7);
                if plan.traits.app && self.rng.chance(0.6) {
                    let app_account_id = self.id.app_account();
                    let loyalty_card = if with_card {
                        self.id.loyalty_raw(&mut self.rng, 0.0)
                    } else {
                        None
                    };
                    self.qr_scan(
                        ts,
                        store,
                        None,
                        app_account_id.as_deref(),
                        loyalty_card.as_deref(),
                    )?;
                    self.push_touch(
                        ts,
                        channel,
                        Some("qr_shelf_promo"),
                        TouchIds {
                            app_account_id,
                            ..TouchIds::default()
                        },
                    )
                } else {
                    visits.push((ts, Visit::QrLanding { store, with_card }));
                    Ok(())
                }
            }
            web => {
                visits.push((ts, Visit::Touch(web)));
                Ok(())
            }
        }
    }

    /// A CRM e-mail or SMS. Its touch row is the send; when the recipient follows the link, the row also records
    /// where it opened, as e-mail services report clicks: the app account (a universal link opens the app) or
    /// the cookie of the landing session (the click id in the URL joins the two), and that session follows.
    fn crm_message(
        &mut self,
        channel: Channel,
        ts: i64,
        campaign: String,
        ids: TouchIds,
        p_click: f64,
        visits: &mut Vec<(i64, Visit)>,
    ) -> Result<()> {
        let (web, app) = (self.id.browses_web(), self.id.app_account_id.is_some());
        if !(web || app) || !self.rng.chance(p_click) {
            return self.push_touch(ts, channel, Some(&campaign), ids);
        }
        let opened = ts + self.rng.range_i64(MINUTE_US, 6 * HOUR_US);
        if app && (!web || self.rng.chance(P_LINK_OPENS_APP)) {
            let app_account_id = self.id.app_account();
            self.push_touch(
                ts,
                channel,
                Some(&campaign),
                TouchIds {
                    app_account_id,
                    ..ids
                },
            )?;
            return self.app_session(opened, Some(("link_open", &campaign)), None);
        }
        visits.push((
            opened,
            Visit::CrmClick {
                channel,
                campaign,
                ids,
                sent_us: ts,
            },
        ));
        Ok(())
    }

    fn qr_scan(
        &mut self,
        ts: i64,
        store: usize,
        anonymous_id: Option<&str>,
        app_account_id: Option<&str>,
        loyalty_card: Option<&str>,
    ) -> Result<()> {
        let scan_id = self.scan_ids.next_id(&self.world.keys, self.id.customer)?;
        let store_id = self.store_id(store);
        self.tables.scans.push(QrScanRow {
            scan_id: &scan_id,
            scan_ts: ts,
            store_id: &store_id,
            anonymous_id,
            app_account_id,
            loyalty_card,
        });
        Ok(())
    }

    fn store_id(&self, store: usize) -> String {
        self.world
            .stores
            .get(store)
            .map_or_else(String::new, |s| s.id.clone())
    }

    /// One web session: landing page, a few more pages, maybe a login; or the checkout of an order.
    fn web_visit(&mut self, ts: i64, visit: Visit) -> Result<()> {
        if let Visit::Touch(channel) = visit
            && self.rng.chance(p_throwaway_session(channel))
        {
            return self.bounce(ts, channel);
        }
        let Some(cookie) = self.id.cookie(&self.world.keys, ts, &mut self.rng) else {
            return Ok(());
        };
        match visit {
            Visit::Touch(channel) => {
                let landing = Landing::for_channel(channel, &mut self.rng, &self.world.model);
                let campaign = landing.utm.map(|u| u.2);
                self.push_touch(
                    ts,
                    channel,
                    campaign,
                    TouchIds {
                        anonymous_id: Some(cookie.clone()),
                        ..TouchIds::default()
                    },
                )?;
                self.browse(ts, &cookie, &landing)
            }
            Visit::QrLanding { store, with_card } => {
                let loyalty_card = if with_card {
                    self.id.loyalty_raw(&mut self.rng, 0.05)
                } else {
                    None
                };
                self.qr_scan(ts, store, Some(&cookie), None, loyalty_card.as_deref())?;
                self.push_touch(
                    ts,
                    Channel::QrScan,
                    Some("qr_shelf_promo"),
                    TouchIds {
                        anonymous_id: Some(cookie.clone()),
                        ..TouchIds::default()
                    },
                )?;
                let store_id = self.store_id(store);
                let landing = Landing {
                    path: format!("promo/qr?store={store_id}"),
                    utm: Some(("qr", "offline", "qr_shelf_promo")),
                    referrer: None,
                };
                self.browse(ts, &cookie, &landing)
            }
            Visit::Order(amount) => self.web_order(ts, &cookie, amount),
            Visit::CrmClick {
                channel,
                campaign,
                ids,
                sent_us,
            } => {
                self.push_touch(
                    sent_us,
                    channel,
                    Some(&campaign),
                    TouchIds {
                        anonymous_id: Some(cookie.clone()),
                        ..ids
                    },
                )?;
                let utm = if channel == Channel::Sms {
                    ("crm", "sms", "crm_sms")
                } else {
                    ("crm", "email", "crm_email")
                };
                let mut landing = Landing::for_channel(channel, &mut self.rng, &self.world.model);
                landing.utm = Some(utm);
                // CRM links carry a login token: an account holder lands signed in.
                if self.id.user_id.is_some() {
                    self.id.sign_in();
                }
                self.browse(ts, &cookie, &landing)
            }
        }
    }

    /// An ad click that opened in a private window or an in-app browser: one page, then gone.
    fn bounce(&mut self, ts: i64, channel: Channel) -> Result<()> {
        let cookie = self.id.throwaway_cookie(&self.world.keys);
        let landing = Landing::for_channel(channel, &mut self.rng, &self.world.model);
        self.push_touch(
            ts,
            channel,
            landing.utm.map(|u| u.2),
            TouchIds {
                anonymous_id: Some(cookie.clone()),
                ..TouchIds::default()
            },
        )?;
        self.web_event(WebEvent {
            ts,
            cookie: &cookie,
            name: "page_view",
            url: &landing.url(),
            utm: landing.utm,
            referrer: landing.referrer,
            ..WebEvent::default()
        })
    }

    fn web_event(&mut self, row: WebEvent<'_>) -> Result<()> {
        let event_id = self.web_ids.next_id(&self.world.keys, self.id.customer)?;
        self.tables.web.push(WebEventRow {
            event_id: &event_id,
            event_ts: self.world.clamp(row.ts),
            anonymous_id: row.cookie,
            user_id: row.user_id,
            email: row.email,
            event_name: row.name,
            page_url: row.url,
            utm_source: row.utm.map(|u| u.0),
            utm_medium: row.utm.map(|u| u.1),
            utm_campaign: row.utm.map(|u| u.2),
            referrer: row.referrer,
            order_id: row.order_id,
            revenue: row.revenue,
        });
        Ok(())
    }

    fn browse(&mut self, start: i64, cookie: &str, landing: &Landing) -> Result<()> {
        let url = landing.url();
        // A cookie that logged in before is still signed in ("remember me").
        let mut user_id = if self.id.signed_in() {
            self.id.user()
        } else {
            None
        };
        self.web_event(WebEvent {
            ts: start,
            cookie,
            user_id: user_id.as_deref(),
            name: "page_view",
            url: &url,
            utm: landing.utm,
            referrer: landing.referrer,
            ..WebEvent::default()
        })?;
        let mut ts = start;
        if user_id.is_none() && self.id.user_id.is_some() && self.rng.chance(P_WEB_LOGIN) {
            self.id.sign_in();
            ts += self.rng.range_i64(10_000_000, 2 * MINUTE_US);
            user_id = self.id.user();
            let email = self.id.email_raw(&mut self.rng);
            self.web_event(WebEvent {
                ts,
                cookie,
                user_id: user_id.as_deref(),
                email: email.as_deref(),
                name: "login",
                url: &format!("{SHOP_URL}account/login"),
                ..WebEvent::default()
            })?;
        } else if self.id.user_id.is_none()
            && !self.id.emails.is_empty()
            && self.rng.chance(P_GUEST_EMAIL_CAPTURE)
        {
            ts += self.rng.range_i64(10_000_000, 2 * MINUTE_US);
            let email = self.id.email_raw(&mut self.rng);
            self.web_event(WebEvent {
                ts,
                cookie,
                email: email.as_deref(),
                name: "email_capture",
                url: &format!("{SHOP_URL}subscribe"),
                ..WebEvent::default()
            })?;
        }
        for _ in 0..self.rng.below(4) {
            ts += self.rng.range_i64(10_000_000, 4 * MINUTE_US);
            let sku = self.random_sku();
            let (name, url) = if self.rng.chance(0.15) {
                ("add_to_cart", format!("{SHOP_URL}product/{sku}"))
            } else {
                ("page_view", format!("{SHOP_URL}product/{sku}"))
            };
            self.web_event(WebEvent {
                ts,
                cookie,
                user_id: user_id.as_deref(),
                name,
                url: &url,
                ..WebEvent::default()
            })?;
        }
        Ok(())
    }

    fn random_sku(&mut self) -> String {
        let catalog = &self.world.model.catalog;
        catalog
            .get(self.rng.index(catalog.len()))
            .map_or_else(String::new, |s| s.code.clone())
    }

    /// Checkout on the web shop: logged in, or as a guest giving an e-mail (sometimes a fake one).
    fn web_order(&mut self, ts: i64, cookie: &str, amount: i64) -> Result<()> {
        let cart_url = format!("{SHOP_URL}cart");
        let cart_ts = ts - self.rng.range_i64(2 * MINUTE_US, 10 * MINUTE_US);
        self.web_event(WebEvent {
            ts: cart_ts,
            cookie,
            name: "page_view",
            url: &cart_url,
            ..WebEvent::default()
        })?;
        let signed_in = self.id.signed_in();
        let logged_in = self.id.user_id.is_some() && (signed_in || self.rng.chance(0.7));
        let user_id = if logged_in { self.id.user() } else { None };
        let email = if signed_in && logged_in {
            // Already signed in: the order carries the account's e-mail without a login step.
            self.id.email_raw(&mut self.rng)
        } else if logged_in {
            self.id.sign_in();
            let email = self.id.email_raw(&mut self.rng);
            let login_ts = ts - self.rng.range_i64(MINUTE_US, 2 * MINUTE_US);
            self.web_event(WebEvent {
                ts: login_ts,
                cookie,
                user_id: user_id.as_deref(),
                email: email.as_deref(),
                name: "login",
                url: &format!("{SHOP_URL}account/login"),
                ..WebEvent::default()
            })?;
            email
        } else if self.rng.chance(0.03) {
            self.rng.pick(JUNK_EMAILS).map(|j| j.0.to_string())
        } else {
            self.id.email_raw(&mut self.rng)
        };
        let order_id = self.order_ids.next_id(&self.world.keys, self.id.customer)?;
        self.web_event(WebEvent {
            ts,
            cookie,
            user_id: user_id.as_deref(),
            email: email.as_deref(),
            name: "order_completed",
            url: &format!("{SHOP_URL}checkout/complete"),
            order_id: Some(&order_id),
            revenue: Some(amount),
            ..WebEvent::default()
        })
    }

    /// An order placed on a store's shared tablet: the store's cookie, the customer's own e-mail.
    fn tablet_order(&mut self, ts: i64, amount: i64) -> Result<()> {
        let store = self.store();
        let Some(cookie) = self
            .world
            .stores
            .get(store)
            .map(|s| s.tablet_cookie.clone())
        else {
            return Ok(());
        };
        let email = self.id.email_raw(&mut self.rng);
        let browse_ts = ts - self.rng.range_i64(2 * MINUTE_US, 8 * MINUTE_US);
        self.web_event(WebEvent {
            ts: browse_ts,
            cookie: &cookie,
            name: "page_view",
            url: &format!("{SHOP_URL}catalog?instore=tablet"),
            ..WebEvent::default()
        })?;
        let order_id = self.order_ids.next_id(&self.world.keys, self.id.customer)?;
        self.web_event(WebEvent {
            ts,
            cookie: &cookie,
            email: email.as_deref(),
            name: "order_completed",
            url: &format!("{SHOP_URL}checkout/complete"),
            order_id: Some(&order_id),
            revenue: Some(amount),
            ..WebEvent::default()
        })
    }

    /// An app session: a background visit, an open from a push or a link (`(event name, campaign)`), or an
    /// order (`order_amount`).
    fn app_session(
        &mut self,
        start: i64,
        opened_by: Option<(&'static str, &str)>,
        order_amount: Option<i64>,
    ) -> Result<()> {
        // Ordering needs the account; a device where the app was never signed in browses logged out.
        let Some((device, signed_in)) =
            self.id
                .device(&mut self.rng, P_APP_SIGN_IN, order_amount.is_some())
        else {
            return Ok(());
        };
        let account = if signed_in {
            self.id.app_account()
        } else {
            None
        };
        let mut events: Vec<(&'static str, Option<&str>)> = vec![match opened_by {
            Some((event, campaign)) => (event, Some(campaign)),
            None => ("app_open", None),
        }];
        for _ in 0..1 + self.rng.below(3) {
            events.push(("screen_view", None));
        }
        if order_amount.is_some() {
            events.push(("add_to_cart", None));
        }
        // An order session ends at the order time; others start at `start`.
        let span: i64 = (events.len() as i64) * MINUTE_US;
        let mut ts = if order_amount.is_some() {
            start - span
        } else {
            start
        };
        for (name, campaign) in events {
            self.app_event(ts, &device, account.as_deref(), name, campaign, None)?;
            ts += self.rng.range_i64(10_000_000, MINUTE_US);
        }
        if let Some(amount) = order_amount {
            let order_id = self.order_ids.next_id(&self.world.keys, self.id.customer)?;
            self.app_event(
                start,
                &device,
                account.as_deref(),
                "order_completed",
                None,
                Some((&order_id, amount)),
            )?;
        }
        Ok(())
    }

    fn app_event(
        &mut self,
        ts: i64,
        device: &str,
        account: Option<&str>,
        name: &str,
        campaign: Option<&str>,
        order: Option<(&str, i64)>,
    ) -> Result<()> {
        let event_id = self.app_ids.next_id(&self.world.keys, self.id.customer)?;
        self.tables.app.push(AppEventRow {
            event_id: &event_id,
            event_ts: self.world.clamp(ts),
            device_id: device,
            app_account_id: account,
            event_name: name,
            campaign,
            order_id: order.map(|o| o.0),
            revenue: order.map(|o| o.1),
        });
        Ok(())
    }

    /// A store purchase: card and/or phone as the cashier entered them, the store's own number for customers
    /// who refuse, a placeholder now and then.
    fn receipt(&mut self, ts: i64, conversion: &Conversion, amount: i64) -> Result<()> {
        let store = self.store();
        let loyalty_card = if self.id.card_in_store && self.rng.chance(0.85) {
            self.id.loyalty_raw(&mut self.rng, 0.04)
        } else {
            None
        };
        let roll = self.rng.next_f64();
        let phone_raw = if roll < 0.04 {
            self.world
                .stores
                .get(store)
                .map(|s| raw_phone(&s.phone_national, &mut self.rng))
        } else if roll < 0.05 {
            self.rng.pick(PLACEHOLDER_PHONES).map(|p| p.0.to_string())
        } else if self
            .rng
            // Tills find the loyalty account by the phone the customer says, so card and phone often go together.
            .chance(if loyalty_card.is_some() { 0.5 } else { 0.7 })
        {
            self.id.phone_raw(&mut self.rng)
        } else {
            None
        };
        let catalog = &self.world.model.catalog;
        let lines: Vec<ReceiptLine<'_>> = conversion
            .lines
            .iter()
            .filter_map(|&(sku, qty)| {
                catalog.get(sku).map(|s| ReceiptLine {
                    sku: &s.code,
                    qty: qty as i32,
                    unit_price_cents: s.price_cents,
                })
            })
            .collect();
        let receipt_id = self
            .receipt_ids
            .next_id(&self.world.keys, self.id.customer)?;
        let store_id = self.store_id(store);
        self.tables.receipts.push(PosReceiptRow {
            receipt_id: &receipt_id,
            receipt_ts: ts,
            store_id: &store_id,
            loyalty_card: loyalty_card.as_deref(),
            phone_raw: phone_raw.as_deref(),
            amount,
            currency: CURRENCY,
            items: &lines,
        });
        Ok(())
    }

    fn loyalty_account(&mut self, traits: &Traits) -> Result<()> {
        let Some(card) = self.id.loyalty_raw(&mut self.rng, 0.0) else {
            return Ok(());
        };
        // A hard-to-link person's card was issued by the app, which never got the phone given at the till.
        let phone_raw = if !self.id.card_in_store {
            None
        } else if !self.id.phones.is_empty() && self.rng.chance(0.96) {
            self.id.phone_on_file(&mut self.rng)
        } else if !self.id.phones.is_empty() || self.rng.chance(0.3) {
            self.rng.pick(PLACEHOLDER_PHONES).map(|p| p.0.to_string())
        } else {
            None
        };
        let email_raw = if !self.id.emails.is_empty() && self.rng.chance(0.97) {
            self.id.email_raw(&mut self.rng)
        } else if !self.id.emails.is_empty() || self.rng.chance(0.25) {
            self.rng.pick(JUNK_EMAILS).map(|j| j.0.to_string())
        } else {
            None
        };
        // The app shows the loyalty card: a card the app issued names its app account, and nearly every app user
        // with a plastic card added it there.
        let app_account_id = if !traits.loyalty || self.rng.chance(0.95) {
            self.id.app_account()
        } else {
            None
        };
        let registered_ts = self.rng.range_i64(
            self.world.period_start_us - 3 * 365 * DAY_US,
            self.world.period_start_us,
        );
        let store_id = (traits.segment.shops_offline() && self.id.card_in_store)
            .then(|| self.store_id(self.id.home_store));
        self.tables.loyalty.push(LoyaltyAccountRow {
            loyalty_card: &card,
            phone_raw: phone_raw.as_deref(),
            email_raw: email_raw.as_deref(),
            app_account_id: app_account_id.as_deref(),
            registered_ts,
            store_id: store_id.as_deref(),
        });
        Ok(())
    }

    /// The key the CRM knows the customer by: loyalty card, else the e-mail as registered, else the app account.
    fn crm_holdout(&mut self, group: CrmGroup) {
        let key = if let Some(card) = self.id.loyalty_card.clone() {
            Some((card, IdType::LoyaltyCard))
        } else if self.id.user_id.is_some()
            && let Some(email) = self.id.registered_email()
        {
            Some((email, IdType::Email))
        } else {
            self.id.app_account().map(|a| (a, IdType::AppAccountId))
        };
        if let Some((customer_key, key_type)) = key {
            self.tables.crm.push(CrmHoldoutRow {
                customer_key: &customer_key,
                key_type: key_type.name(),
                group: group.name(),
            });
        }
    }

    fn truth(&mut self, plan: &PersonPlan) {
        for (id_type, id_value) in self.id.take_used(&self.world.keys) {
            self.tables.truth.push(TruthIdentifierRow {
                id_type: id_type.name(),
                id_value: &id_value,
                person_id: &self.id.person_id,
            });
        }
        self.tables.people.push(TruthPersonRow {
            person_id: &self.id.person_id,
            segment: plan.traits.segment.name(),
            crm_group: plan.crm_group.map(CrmGroup::name),
            hard_to_link: plan.traits.hard,
        });
    }
}

/// Identifiers carried by a touch (the one of its channel).
#[derive(Default)]
struct TouchIds {
    email: Option<String>,
    phone_raw: Option<String>,
    app_account_id: Option<String>,
    anonymous_id: Option<String>,
}

/// (utm_source, utm_medium, utm_campaign)
type Utm = (&'static str, &'static str, &'static str);

/// Where a web visit lands and what it carries.
struct Landing {
    path: String,
    utm: Option<Utm>,
    referrer: Option<&'static str>,
}

impl Landing {
    /// The landing page's URL with its UTM parameters.
    fn url(&self) -> String {
        let url = format!("{SHOP_URL}{}", self.path);
        match self.utm {
            Some((source, medium, campaign)) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}utm_source={source}&utm_medium={medium}&utm_campaign={campaign}")
            }
            None => url,
        }
    }

    fn for_channel(channel: Channel, rng: &mut Rng, model: &Model) -> Landing {
        const PATHS: &[&str] = &[
            "",
            "catalog/sneakers",
            "catalog/outerwear",
            "catalog/accessories",
            "sale",
        ];
        let path = if rng.chance(0.3) {
            let sku = model
                .catalog
                .get(rng.index(model.catalog.len()))
                .map_or("", |s| s.code.as_str());
            format!("product/{sku}")
        } else {
            rng.pick(PATHS).copied().unwrap_or("").to_string()
        };
        let pick = |rng: &mut Rng, items: &[&'static str]| rng.pick(items).copied().unwrap_or("");
        let (utm, referrer) = match channel {
            Channel::PaidSearch => {
                let source = pick(rng, &["google", "yandex"]);
                (
                    Some((
                        source,
                        "cpc",
                        pick(rng, &["search_brand", "search_generic", "search_sneakers"]),
                    )),
                    None,
                )
            }
            Channel::PaidSocial => {
                let source = pick(rng, &["vk", "telegram", "ok"]);
                (
                    Some((
                        source,
                        "paid_social",
                        pick(rng, &["social_prospecting", "social_retargeting"]),
                    )),
                    None,
                )
            }
            Channel::Display => {
                let source = pick(rng, &["yandex_rsya", "dv360"]);
                (
                    Some((
                        source,
                        "display",
                        pick(rng, &["display_retargeting", "display_awareness"]),
                    )),
                    None,
                )
            }
            Channel::Organic => (
                None,
                Some(pick(
                    rng,
                    &[
                        "https://www.google.com/",
                        "https://yandex.ru/",
                        "https://www.bing.com/",
                    ],
                )),
            ),
            Channel::Referral => (
                None,
                Some(pick(
                    rng,
                    &[
                        "https://vc.ru/",
                        "https://pikabu.ru/",
                        "https://t.me/s/sneakerdeals",
                        "https://habr.com/",
                    ],
                )),
            ),
            _ => (None, None),
        };
        Landing {
            path,
            utm,
            referrer,
        }
    }
}

/// One web event before ids are assigned.
#[derive(Default)]
struct WebEvent<'a> {
    ts: i64,
    cookie: &'a str,
    user_id: Option<&'a str>,
    email: Option<&'a str>,
    name: &'a str,
    url: &'a str,
    utm: Option<Utm>,
    referrer: Option<&'a str>,
    order_id: Option<&'a str>,
    revenue: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::super::population::{IdKeys, make_stores};
    use super::*;

    fn world(seed: u64, customers: u64) -> World {
        let keys = IdKeys::new(seed);
        let stores = make_stores(
            seed,
            &keys,
            super::super::population::store_count(customers),
            20_454,
        );
        World {
            seed,
            model: Model::new(seed),
            keys,
            stores,
            period_start_us: 20_454 * DAY_US,
            period_end_us: (20_454 + 120) * DAY_US,
        }
    }

    #[test]
    fn plans_are_deterministic_per_customer() {
        let w = world(3, 1000);
        let a = plan_person(&w, 17);
        let b = plan_person(&w, 17);
        assert_eq!(a.traits, b.traits);
        assert_eq!(a.journeys.len(), b.journeys.len());
        for (x, y) in a.journeys.iter().zip(&b.journeys) {
            assert_eq!(
                (x.start_us, x.end_us, x.channels),
                (y.start_us, y.end_us, y.channels)
            );
        }
    }

    #[test]
    fn journeys_stay_inside_the_period_and_store_purchases_in_opening_hours() {
        let w = world(5, 1000);
        for c in 0..3000 {
            let plan = plan_person(&w, c);
            for j in &plan.journeys {
                assert!(
                    j.start_us >= w.period_start_us
                        && j.start_us <= j.end_us
                        && j.end_us < w.period_end_us
                );
                if let Some(conv) = &j.conversion {
                    assert!(!conv.lines.is_empty() && conv.amount_cents(&w.model) > 0);
                    if conv.place == Place::Store {
                        let time_of_day = j.end_us.rem_euclid(DAY_US);
                        assert!(
                            (STORE_OPENS_US..STORE_OPENS_US + STORE_HOURS_US)
                                .contains(&time_of_day)
                        );
                    }
                    if plan.traits.segment == Segment::OnlineOnly {
                        assert_ne!(conv.place, Place::Store);
                    }
                    if plan.traits.segment == Segment::OfflineOnly {
                        assert_eq!(conv.place, Place::Store);
                    }
                }
                for c in j.channels.iter() {
                    let crm = matches!(c, Channel::Sms | Channel::Email | Channel::Push);
                    assert!(
                        !crm || plan.crm_group == Some(CrmGroup::Target),
                        "CRM channels only reach treated customers"
                    );
                }
            }
        }
    }

    #[test]
    fn in_store_times_fall_in_opening_hours() {
        let mut rng = Rng::new(1, Stream::Detail, 0);
        let day = 20_454 * DAY_US;
        let open = |t: i64| {
            (STORE_OPENS_US..STORE_OPENS_US + STORE_HOURS_US).contains(&t.rem_euclid(DAY_US))
        };
        for (start, end) in [
            (day, day + 3 * DAY_US),
            (day + 10 * HOUR_US, day + 11 * HOUR_US),
            (day + 18 * HOUR_US, day + 30 * HOUR_US),
        ] {
            for _ in 0..200 {
                let t = time_in_store_hours(start, end, &mut rng);
                assert!(
                    open(t) && t >= start && t < end,
                    "{t} outside {start}..{end}"
                );
            }
        }
        // A night-only window: the evening before, still before the end.
        let (start, end) = (day + 20 * HOUR_US, day + 23 * HOUR_US);
        for _ in 0..50 {
            let t = time_in_store_hours(start, end, &mut rng);
            assert!(open(t) && t < end && t > end - DAY_US);
        }
        let (start, end) = (day + HOUR_US, day + 2 * HOUR_US);
        let t = time_in_store_hours(start, end, &mut rng);
        assert!(open(t) && t < start && t > start - DAY_US);
    }

    /// The simulated revenue of treated vs control customers agrees with the exact expectation.
    #[test]
    fn simulated_crm_effect_matches_the_model() {
        let w = world(9, 1000);
        let truth = w.model.crm_truth();
        let (mut n, mut revenue) = ([0f64; 2], [0f64; 2]);
        let (mut sq, customers) = ([0f64; 2], 120_000u64);
        for c in 0..customers {
            let plan = plan_person(&w, c);
            let Some(group) = plan.crm_group else {
                continue;
            };
            let g = usize::from(group == CrmGroup::Target);
            let r: f64 = plan
                .journeys
                .iter()
                .filter_map(|j| j.conversion.as_ref())
                .map(|conv| conv.amount_cents(&w.model) as f64 / 100.0)
                .sum();
            n[g] += 1.0;
            revenue[g] += r;
            sq[g] += r * r;
        }
        let mean = |g: usize| revenue[g] / n[g];
        let se = |g: usize| ((sq[g] / n[g] - mean(g).powi(2)) / n[g]).sqrt();
        for (g, expected) in [
            (0, truth.control_revenue_per_customer),
            (1, truth.target_revenue_per_customer),
        ] {
            assert!(
                (mean(g) - expected).abs() < 4.0 * se(g),
                "group {g}: simulated {} vs model {expected} (se {})",
                mean(g),
                se(g)
            );
        }
        let share_control = n[0] / (n[0] + n[1]);
        assert!((share_control - w.model.control_share).abs() < 0.01);
    }

    #[test]
    fn emitted_rows_are_deterministic_and_truth_is_collected() {
        let w = world(2, 1000);
        let mut a = ChunkTables::new();
        let mut b = ChunkTables::new();
        for c in 0..200 {
            emit_person(&w, c, &mut a).unwrap();
            emit_person(&w, c, &mut b).unwrap();
        }
        let (ba, bb) = (a.finish().unwrap(), b.finish().unwrap());
        let rows: usize = ba.iter().map(|(_, b)| b.num_rows()).sum();
        assert!(rows > 200 * 10, "a few dozen rows per customer, got {rows}");
        for ((ta, x), (tb, y)) in ba.iter().zip(&bb) {
            assert_eq!(ta, tb);
            assert_eq!(x, y, "{}", ta.name());
            assert_eq!(x.schema(), ta.schema());
        }
        let people = &ba.iter().find(|(t, _)| *t == Table::TruthPeople).unwrap().1;
        assert_eq!(people.num_rows(), 200);
    }
}
