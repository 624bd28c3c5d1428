//! The behavioural model behind the generated data, and its exact expectations.
//!
//! Everything revenue depends on (customer traits, journeys, conversions, baskets) is drawn through procedures
//! that make Bernoulli draws or sample finite distributions. The same procedures are *enumerated* to compute
//! expectations, so the ground truth written next to the data (the true CRM effect) is the model's exact value
//! and cannot drift from what the sampler does.

use super::rng::{AffinePermutation, Rng, Stream};

/// Which side of the business a customer buys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    OnlineOnly,
    OfflineOnly,
    Hybrid,
}

impl Segment {
    pub(crate) const ALL: [Segment; 3] =
        [Segment::OnlineOnly, Segment::OfflineOnly, Segment::Hybrid];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Segment::OnlineOnly => "online_only",
            Segment::OfflineOnly => "offline_only",
            Segment::Hybrid => "hybrid",
        }
    }

    pub(crate) fn shops_online(self) -> bool {
        self != Segment::OfflineOnly
    }

    pub(crate) fn shops_offline(self) -> bool {
        self != Segment::OnlineOnly
    }
}

/// Marketing channels, in the vocabulary of `marketing_touches.channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Channel {
    Sms,
    Email,
    Push,
    PaidSearch,
    PaidSocial,
    Display,
    Organic,
    Referral,
    Direct,
    StoreVisit,
    QrScan,
}

impl Channel {
    pub(crate) const ALL: [Channel; 11] = [
        Channel::Sms,
        Channel::Email,
        Channel::Push,
        Channel::PaidSearch,
        Channel::PaidSocial,
        Channel::Display,
        Channel::Organic,
        Channel::Referral,
        Channel::Direct,
        Channel::StoreVisit,
        Channel::QrScan,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::PaidSearch => "paid_search",
            Channel::PaidSocial => "paid_social",
            Channel::Display => "display",
            Channel::Organic => "organic",
            Channel::Referral => "referral",
            Channel::Direct => "direct",
            Channel::StoreVisit => "store_visit",
            Channel::QrScan => "qr_scan",
        }
    }

    pub(crate) fn is_in_store(self) -> bool {
        matches!(self, Channel::StoreVisit | Channel::QrScan)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of channels (the distinct channels of one journey).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChannelSet(u16);

impl ChannelSet {
    pub(crate) fn insert(&mut self, c: Channel) {
        self.0 |= c.bit();
    }

    pub(crate) fn contains(self, c: Channel) -> bool {
        self.0 & c.bit() != 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

/// How a channel acts on a journey.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelParams {
    /// Added to the conversion log-odds when the channel is in the journey (counted once however many touches).
    pub(crate) effect: f64,
    /// Probability that a journey includes the channel, when the channel can reach the customer.
    pub(crate) exposure: f64,
    /// What one touch costs, in kopecks.
    pub(crate) cost_cents: i64,
    /// Touches per journey that includes the channel, uniform in this inclusive range.
    pub(crate) touches: (u32, u32),
}

/// Per-segment behaviour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentParams {
    /// Share of customers in the segment.
    pub(crate) share: f64,
    pub(crate) p_email: f64,
    pub(crate) p_phone: f64,
    pub(crate) p_app: f64,
    /// Loyalty membership among customers that are not hard to link.
    pub(crate) p_loyalty: f64,
    /// Web-shop account (needs an e-mail).
    pub(crate) p_web_account: f64,
    /// "Hard" customers: no identifier shared between their online and offline lives.
    pub(crate) p_hard: f64,
    /// Conversion log-odds of a journey without any channel.
    pub(crate) base_logit: f64,
    /// Journeys in the period: 1 + truncated Poisson with this mean.
    pub(crate) extra_journeys_mean: f64,
    /// Distinct items per basket: 1 + truncated Poisson with this mean.
    pub(crate) extra_items_mean: f64,
    /// Probability that a conversion happens in a store (without / with an in-store touch in the journey).
    pub(crate) p_offline: f64,
    pub(crate) p_offline_after_store_touch: f64,
}

/// The traits of a customer that decide which channels reach them and how they buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traits {
    pub(crate) segment: Segment,
    pub(crate) email: bool,
    pub(crate) phone: bool,
    pub(crate) app: bool,
    pub(crate) loyalty: bool,
    pub(crate) web_account: bool,
    /// Online and offline identifiers never appear together (the phone given at the till is unknown online).
    pub(crate) hard: bool,
}

impl Traits {
    /// Decides the traits through `draw(p)` (a Bernoulli draw): sampled with a generator, enumerated for
    /// expectations.
    pub(crate) fn decide(
        segment: Segment,
        p: &SegmentParams,
        draw: &mut dyn FnMut(f64) -> bool,
    ) -> Traits {
        let hard = draw(p.p_hard);
        let email = draw(p.p_email);
        let phone = hard || draw(p.p_phone);
        let app = draw(p.p_app);
        let loyalty = !hard && draw(p.p_loyalty);
        let web_account = email && draw(p.p_web_account);
        Traits {
            segment,
            email,
            phone,
            app,
            loyalty,
            web_account,
            hard,
        }
    }

    /// The CRM knows the customer (loyalty member, web account or app account) and can be held out.
    pub(crate) fn crm_reachable(&self) -> bool {
        self.loyalty || self.web_account || self.app
    }

    /// The CRM has the customer's phone: a hard customer's phone is only ever given at the till.
    pub(crate) fn crm_knows_phone(&self) -> bool {
        self.phone && !self.hard && self.crm_reachable()
    }

    /// Whether `channel` can reach the customer; CRM channels only when `treated`.
    pub(crate) fn reachable_by(&self, channel: Channel, treated: bool) -> bool {
        let treated = treated && self.crm_reachable();
        match channel {
            Channel::Sms => treated && self.crm_knows_phone(),
            Channel::Email => treated && self.email,
            Channel::Push => treated && self.app,
            Channel::PaidSearch
            | Channel::PaidSocial
            | Channel::Display
            | Channel::Organic
            | Channel::Referral
            | Channel::Direct => self.segment.shops_online(),
            Channel::StoreVisit => self.segment.shops_offline() && (self.phone || self.app),
            Channel::QrScan => self.segment == Segment::Hybrid,
        }
    }
}

/// A finite distribution over small non-negative integers, sampled by inversion.
#[derive(Debug, Clone)]
pub(crate) struct Discrete {
    values: Vec<u32>,
    cdf: Vec<f64>,
    mean: f64,
}

impl Discrete {
    /// From `(value, weight)` pairs (weights non-negative, not all zero).
    pub(crate) fn from_weights(pairs: &[(u32, f64)]) -> Discrete {
        let total: f64 = pairs.iter().map(|(_, w)| w).sum();
        let mut acc = 0.0;
        let mut cdf = Vec::with_capacity(pairs.len());
        for (_, w) in pairs {
            acc += w / total;
            cdf.push(acc);
        }
        if let Some(last) = cdf.last_mut() {
            // Inversion must never fall off the end because of rounding.
            *last = 1.0;
        }
        let mean = pairs.iter().map(|(v, w)| f64::from(*v) * w / total).sum();
        Discrete {
            values: pairs.iter().map(|(v, _)| *v).collect(),
            cdf,
            mean,
        }
    }

    /// `offset + Poisson(mean)` with the tail above `offset + max_extra` folded onto it.
    pub(crate) fn shifted_truncated_poisson(offset: u32, mean: f64, max_extra: u32) -> Discrete {
        let mut pairs = Vec::with_capacity(max_extra as usize + 1);
        let mut pmf = (-mean).exp();
        let mut below = 0.0;
        for k in 0..max_extra {
            pairs.push((offset + k, pmf));
            below += pmf;
            pmf *= mean / f64::from(k + 1);
        }
        pairs.push((offset + max_extra, (1.0 - below).max(0.0)));
        Discrete::from_weights(&pairs)
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> u32 {
        let u = rng.next_f64();
        let i = self
            .cdf
            .partition_point(|c| *c <= u)
            .min(self.values.len() - 1);
        self.values[i]
    }

    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }
}

/// Every outcome of a procedure that randomises only through Bernoulli draws, with its probability
/// (outcomes of probability 0 are skipped). The procedure must be deterministic given its draws.
pub(crate) fn enumerate_outcomes<T>(
    mut procedure: impl FnMut(&mut dyn FnMut(f64) -> bool) -> T,
) -> Vec<(f64, T)> {
    let mut outcomes = Vec::new();
    // Outcomes forced on the first draws of the next run; later draws take `true` first (depth-first search).
    let mut script: Vec<bool> = Vec::new();
    loop {
        let mut taken: Vec<(bool, f64)> = Vec::new();
        let value = procedure(&mut |p: f64| {
            let p = p.clamp(0.0, 1.0);
            let outcome = script.get(taken.len()).copied().unwrap_or(p > 0.0);
            taken.push((outcome, p));
            outcome
        });
        let probability: f64 = taken
            .iter()
            .map(|&(o, p)| if o { p } else { 1.0 - p })
            .product();
        if probability > 0.0 {
            outcomes.push((probability, value));
        }
        // Backtrack to the deepest draw whose `false` branch is possible and not explored yet.
        loop {
            match taken.pop() {
                None => return outcomes,
                Some((true, p)) if p < 1.0 => {
                    script = taken.iter().map(|&(o, _)| o).chain([false]).collect();
                    break;
                }
                Some(_) => {}
            }
        }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One article of the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct Sku {
    pub(crate) code: String,
    pub(crate) price_cents: i64,
}

pub(crate) const CATALOG_SIZE: u64 = 1000;

/// The model: parameters plus the seed-dependent catalogue.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) segments: [SegmentParams; 3],
    pub(crate) channels: [ChannelParams; 11],
    /// Added to every journey's conversion log-odds of a treated customer (brand effect of the CRM programme).
    pub(crate) crm_logit_uplift: f64,
    /// Share of CRM-reachable customers held out ('control').
    pub(crate) control_share: f64,
    pub(crate) journeys: [Discrete; 3],
    pub(crate) items: [Discrete; 3],
    pub(crate) quantity: Discrete,
    pub(crate) catalog: Vec<Sku>,
}

/// The true effect of the CRM programme, computed from the model (not from a sample).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CrmTruth {
    pub(crate) reachable_share: f64,
    pub(crate) control_share: f64,
    pub(crate) logit_uplift: f64,
    pub(crate) control_revenue_per_customer: f64,
    pub(crate) target_revenue_per_customer: f64,
    pub(crate) control_orders_per_customer: f64,
    pub(crate) target_orders_per_customer: f64,
}

impl CrmTruth {
    pub(crate) fn ate_revenue_per_customer(&self) -> f64 {
        self.target_revenue_per_customer - self.control_revenue_per_customer
    }

    pub(crate) fn relative_lift(&self) -> f64 {
        self.target_revenue_per_customer / self.control_revenue_per_customer - 1.0
    }

    pub(crate) fn ate_orders_per_customer(&self) -> f64 {
        self.target_orders_per_customer - self.control_orders_per_customer
    }
}

impl Model {
    pub(crate) fn new(seed: u64) -> Model {
        use Channel as C;
        let channel = |c: Channel| -> ChannelParams {
            let (effect, exposure, cost_cents, touches) = match c {
                C::Sms => (0.20, 0.35, 350, (1, 2)),
                C::Email => (0.12, 0.60, 10, (1, 3)),
                C::Push => (0.18, 0.40, 5, (1, 2)),
                C::PaidSearch => (0.60, 0.35, 2500, (1, 3)),
                C::PaidSocial => (0.30, 0.30, 1200, (1, 2)),
                C::Display => (0.10, 0.45, 150, (1, 3)),
                C::Organic => (0.40, 0.40, 0, (1, 2)),
                C::Referral => (0.35, 0.12, 0, (1, 1)),
                C::Direct => (0.20, 0.35, 0, (1, 2)),
                C::StoreVisit => (0.90, 0.50, 0, (1, 1)),
                C::QrScan => (0.50, 0.15, 0, (1, 1)),
            };
            ChannelParams {
                effect,
                exposure,
                cost_cents,
                touches,
            }
        };
        let segment = |s: Segment| -> SegmentParams {
            match s {
                Segment::OnlineOnly => SegmentParams {
                    share: 0.35,
                    p_email: 1.0,
                    p_phone: 0.55,
                    p_app: 0.45,
                    p_loyalty: 0.15,
                    p_web_account: 0.8,
                    p_hard: 0.0,
                    base_logit: -2.0,
                    extra_journeys_mean: 1.6,
                    extra_items_mean: 1.0,
                    p_offline: 0.0,
                    p_offline_after_store_touch: 0.0,
                },
                Segment::OfflineOnly => SegmentParams {
                    share: 0.30,
                    p_email: 0.5,
                    p_phone: 0.9,
                    p_app: 0.12,
                    p_loyalty: 0.7,
                    p_web_account: 0.0,
                    p_hard: 0.0,
                    base_logit: -1.5,
                    extra_journeys_mean: 1.2,
                    extra_items_mean: 1.6,
                    p_offline: 1.0,
                    p_offline_after_store_touch: 1.0,
                },
                Segment::Hybrid => SegmentParams {
                    share: 0.35,
                    p_email: 1.0,
                    p_phone: 0.85,
                    p_app: 0.5,
                    p_loyalty: 1.0,
                    p_web_account: 0.8,
                    p_hard: 0.15,
                    base_logit: -1.7,
                    extra_journeys_mean: 1.4,
                    extra_items_mean: 1.5,
                    p_offline: 0.5,
                    p_offline_after_store_touch: 0.75,
                },
            }
        };
        let segments = Segment::ALL.map(segment);
        Model {
            journeys: segments
                .map(|p| Discrete::shifted_truncated_poisson(1, p.extra_journeys_mean, 20)),
            items: segments.map(|p| Discrete::shifted_truncated_poisson(1, p.extra_items_mean, 15)),
            segments,
            channels: Channel::ALL.map(channel),
            crm_logit_uplift: 0.05,
            control_share: 0.10,
            quantity: Discrete::from_weights(&[(1, 0.75), (2, 0.18), (3, 0.07)]),
            catalog: catalog(seed),
        }
    }

    pub(crate) fn segment(&self, s: Segment) -> &SegmentParams {
        &self.segments[s as usize]
    }

    pub(crate) fn channel(&self, c: Channel) -> &ChannelParams {
        &self.channels[c as usize]
    }

    pub(crate) fn journeys(&self, s: Segment) -> &Discrete {
        &self.journeys[s as usize]
    }

    pub(crate) fn items(&self, s: Segment) -> &Discrete {
        &self.items[s as usize]
    }

    pub(crate) fn sample_segment(&self, rng: &mut Rng) -> Segment {
        Segment::ALL[rng.weighted(&self.segments.map(|p| p.share))]
    }

    fn segment_probability(&self, s: Segment) -> f64 {
        let total: f64 = self.segments.iter().map(|p| p.share).sum();
        self.segment(s).share / total
    }

    /// The distinct channels of one journey, drawn through `draw`.
    pub(crate) fn journey_channels(
        &self,
        traits: &Traits,
        treated: bool,
        draw: &mut dyn FnMut(f64) -> bool,
    ) -> ChannelSet {
        let mut set = ChannelSet::default();
        for c in Channel::ALL {
            if traits.reachable_by(c, treated) && draw(self.channel(c).exposure) {
                set.insert(c);
            }
        }
        set
    }

    /// Conversion probability of a journey over `channels`.
    pub(crate) fn conversion_probability(
        &self,
        traits: &Traits,
        treated: bool,
        channels: ChannelSet,
    ) -> f64 {
        let uplift = if treated && traits.crm_reachable() {
            self.crm_logit_uplift
        } else {
            0.0
        };
        let logit = self.segment(traits.segment).base_logit
            + channels.iter().map(|c| self.channel(c).effect).sum::<f64>()
            + uplift;
        sigmoid(logit)
    }

    pub(crate) fn mean_price_cents(&self) -> f64 {
        let n = self.catalog.len().max(1) as f64;
        self.catalog
            .iter()
            .map(|s| s.price_cents as f64)
            .sum::<f64>()
            / n
    }

    /// Expected basket value (kopecks) of a conversion: items × quantity × price, independent draws.
    pub(crate) fn expected_basket_cents(&self, s: Segment) -> f64 {
        self.items(s).mean() * self.quantity.mean() * self.mean_price_cents()
    }

    /// Expected conversions of one journey.
    pub(crate) fn expected_journey_conversion(&self, traits: &Traits, treated: bool) -> f64 {
        enumerate_outcomes(|draw| self.journey_channels(traits, treated, draw))
            .into_iter()
            .map(|(p, set)| p * self.conversion_probability(traits, treated, set))
            .sum()
    }

    /// Expected (orders, revenue in kopecks) of a customer over the period.
    pub(crate) fn expected_customer_value(&self, traits: &Traits, treated: bool) -> (f64, f64) {
        let orders = self.journeys(traits.segment).mean()
            * self.expected_journey_conversion(traits, treated);
        (orders, orders * self.expected_basket_cents(traits.segment))
    }

    /// Every trait combination of a segment with its probability.
    pub(crate) fn trait_distribution(&self, s: Segment) -> Vec<(f64, Traits)> {
        let params = *self.segment(s);
        enumerate_outcomes(|draw| Traits::decide(s, &params, draw))
    }

    /// Expected revenue (kopecks) per customer of a segment, over trait mix and CRM assignment.
    #[cfg(test)]
    pub(crate) fn expected_segment_revenue(&self, s: Segment) -> f64 {
        self.trait_distribution(s)
            .iter()
            .map(|(p, traits)| {
                let untreated = self.expected_customer_value(traits, false).1;
                let value = if traits.crm_reachable() {
                    let treated = self.expected_customer_value(traits, true).1;
                    self.control_share * untreated + (1.0 - self.control_share) * treated
                } else {
                    untreated
                };
                p * value
            })
            .sum()
    }

    /// The true CRM effect among CRM-reachable customers (revenue in roubles).
    pub(crate) fn crm_truth(&self) -> CrmTruth {
        let (mut reach, mut control_orders, mut target_orders, mut control_rev, mut target_rev) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for s in Segment::ALL {
            let ps = self.segment_probability(s);
            for (p, traits) in self.trait_distribution(s) {
                if !traits.crm_reachable() {
                    continue;
                }
                let w = ps * p;
                reach += w;
                let (o0, r0) = self.expected_customer_value(&traits, false);
                let (o1, r1) = self.expected_customer_value(&traits, true);
                control_orders += w * o0;
                control_rev += w * r0;
                target_orders += w * o1;
                target_rev += w * r1;
            }
        }
        let per_customer = |x: f64| if reach > 0.0 { x / reach } else { 0.0 };
        CrmTruth {
            reachable_share: reach,
            control_share: self.control_share,
            logit_uplift: self.crm_logit_uplift,
            control_revenue_per_customer: per_customer(control_rev) / 100.0,
            target_revenue_per_customer: per_customer(target_rev) / 100.0,
            control_orders_per_customer: per_customer(control_orders),
            target_orders_per_customer: per_customer(target_orders),
        }
    }
}

/// The catalogue: prices log-uniform between 150 and 6000 roubles, ending in 9 like shelf prices.
fn catalog(seed: u64) -> Vec<Sku> {
    let mut rng = Rng::new(seed, Stream::Catalog, 0);
    let codes = AffinePermutation::new(7_919, rng.next_u64(), 1_000_000);
    (0..CATALOG_SIZE)
        .map(|i| {
            let roubles = (150f64.ln() + rng.next_f64() * 40f64.ln()).exp();
            let shelf = ((roubles / 10.0).round() as i64 * 10 - 1).max(9);
            Sku {
                code: format!("SKU-{:06}", codes.apply(i)),
                price_cents: shelf * 100,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumeration_covers_all_outcomes_once() {
        let outcomes = enumerate_outcomes(|draw| (draw(0.3), draw(0.5), draw(1.0), draw(0.0)));
        let total: f64 = outcomes.iter().map(|(p, _)| p).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // draw(1.0) is always true and draw(0.0) always false: 4 reachable outcomes.
        assert_eq!(outcomes.len(), 4);
        let p = |v| {
            outcomes
                .iter()
                .find(|(_, o)| *o == v)
                .map(|(p, _)| *p)
                .unwrap()
        };
        assert!((p((true, true, true, false)) - 0.15).abs() < 1e-12);
        assert!((p((false, false, true, false)) - 0.35).abs() < 1e-12);
    }

    #[test]
    fn enumeration_follows_data_dependent_procedures() {
        // The second draw only happens when the first succeeds.
        let outcomes = enumerate_outcomes(|draw| {
            if draw(0.5) {
                1 + u32::from(draw(0.5))
            } else {
                0
            }
        });
        let mut got: Vec<(f64, u32)> = outcomes;
        got.sort_by_key(|(_, v)| *v);
        assert_eq!(got, vec![(0.5, 0), (0.25, 1), (0.25, 2)]);
    }

    #[test]
    fn trait_distributions_sum_to_one_and_respect_rules() {
        let model = Model::new(1);
        for s in Segment::ALL {
            let dist = model.trait_distribution(s);
            let total: f64 = dist.iter().map(|(p, _)| p).sum();
            assert!((total - 1.0).abs() < 1e-12, "{s:?}: {total}");
            for (_, t) in &dist {
                assert!(!t.hard || (t.phone && !t.loyalty));
                assert!(!t.web_account || t.email);
                if s == Segment::Hybrid && !t.hard {
                    assert!(t.loyalty, "linkable hybrids are loyalty members");
                }
            }
        }
    }

    #[test]
    fn sampled_traits_match_the_enumerated_distribution() {
        let model = Model::new(1);
        let s = Segment::Hybrid;
        let params = *model.segment(s);
        let n = 40_000;
        let mut rng = Rng::new(3, Stream::Plan, 0);
        let mut hard = 0;
        let mut app_and_phone = 0;
        for _ in 0..n {
            let t = Traits::decide(s, &params, &mut |p| rng.chance(p));
            hard += u32::from(t.hard);
            app_and_phone += u32::from(t.app && t.phone);
        }
        let dist = model.trait_distribution(s);
        let expect = |f: &dyn Fn(&Traits) -> bool| {
            dist.iter()
                .filter(|(_, t)| f(t))
                .map(|(p, _)| p)
                .sum::<f64>()
        };
        let tolerance = 4.0 * (0.25 / f64::from(n)).sqrt();
        assert!((f64::from(hard) / f64::from(n) - expect(&|t| t.hard)).abs() < tolerance);
        assert!(
            (f64::from(app_and_phone) / f64::from(n) - expect(&|t| t.app && t.phone)).abs()
                < tolerance
        );
    }

    #[test]
    fn truncated_poisson_mean_and_sampling_agree() {
        let d = Discrete::shifted_truncated_poisson(1, 1.6, 20);
        assert!((d.mean() - 2.6).abs() < 1e-9, "{}", d.mean());
        let mut rng = Rng::new(4, Stream::Plan, 1);
        let n = 50_000;
        let sum: u64 = (0..n).map(|_| u64::from(d.sample(&mut rng))).sum();
        assert!((sum as f64 / n as f64 - d.mean()).abs() < 0.03);
        // A tiny cap folds the tail onto the maximum.
        let capped = Discrete::shifted_truncated_poisson(0, 5.0, 1);
        assert!((capped.mean() - (1.0 - (-5f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn crm_effect_is_positive_and_consistent() {
        let truth = Model::new(7).crm_truth();
        assert!(truth.reachable_share > 0.5 && truth.reachable_share < 1.0);
        assert!(truth.ate_revenue_per_customer() > 0.0);
        assert!(
            truth.relative_lift() > 0.02 && truth.relative_lift() < 0.3,
            "{truth:?}"
        );
        assert!(truth.ate_orders_per_customer() > 0.0);
    }

    #[test]
    fn hybrids_spend_about_seventy_percent_more() {
        let model = Model::new(1);
        let online = model.expected_segment_revenue(Segment::OnlineOnly);
        let offline = model.expected_segment_revenue(Segment::OfflineOnly);
        let hybrid = model.expected_segment_revenue(Segment::Hybrid);
        let single = (online * model.segment(Segment::OnlineOnly).share
            + offline * model.segment(Segment::OfflineOnly).share)
            / (model.segment(Segment::OnlineOnly).share
                + model.segment(Segment::OfflineOnly).share);
        let ratio = hybrid / single;
        assert!(
            (1.55..1.85).contains(&ratio),
            "hybrid / single-channel revenue = {ratio}"
        );
    }

    #[test]
    fn catalog_is_deterministic_and_positive() {
        let a = catalog(5);
        let b = catalog(5);
        assert_eq!(a.len(), CATALOG_SIZE as usize);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.code == y.code && x.price_cents == y.price_cents)
        );
        assert!(
            a.iter()
                .all(|s| s.price_cents > 0 && s.price_cents % 100 == 0)
        );
        let codes: std::collections::HashSet<_> = a.iter().map(|s| &s.code).collect();
        assert_eq!(codes.len(), a.len());
        let prices = |c: &[Sku]| c.iter().map(|s| s.price_cents).collect::<Vec<_>>();
        assert_ne!(prices(&catalog(6)), prices(&a));
    }
}
