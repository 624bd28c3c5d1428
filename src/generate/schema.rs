//! The tables the generator writes: one definition per table gives its column names, Arrow types, nullability,
//! the row type the simulation fills and the builders that turn rows into a `RecordBatch`, so the schema and the
//! data can never disagree.
//!
//! Types are narrow and stable (the BigQuery sync maps them one to one): timestamps are
//! `Timestamp(Microsecond, "UTC")`, money is `Decimal128(12, 2)`, identifiers and text are `Utf8`, dates `Date32`,
//! receipt lines a `List<Struct<sku, qty, unit_price>>` (a REPEATED RECORD in BigQuery).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Array,
    ListArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;

/// Precision and scale of every money column.
pub const MONEY_PRECISION: u8 = 12;
pub const MONEY_SCALE: i8 = 2;

fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One column kind: its Arrow type, nullability, the value a row gives it and how values are collected.
pub(crate) trait Column {
    type Value<'a>;
    fn new() -> Self;
    fn data_type() -> DataType;
    fn nullable() -> bool;
    fn push(&mut self, value: Self::Value<'_>);
    fn finish(&mut self) -> Result<ArrayRef>;
}

/// Declares a column kind backed by an Arrow builder.
macro_rules! builder_column {
    ($(#[$doc:meta])* $name:ident, $builder:ty, $value:ty, nullable = $nullable:expr,
     new = $new:expr, data_type = $dt:expr, push = |$b:ident, $v:ident| $push:expr) => {
        $(#[$doc])*
        pub(crate) struct $name($builder);

        impl Column for $name {
            type Value<'a> = $value;
            fn new() -> Self {
                $name($new)
            }
            fn data_type() -> DataType {
                $dt
            }
            fn nullable() -> bool {
                $nullable
            }
            fn push(&mut self, $v: Self::Value<'_>) {
                let $b = &mut self.0;
                $push
            }
            fn finish(&mut self) -> Result<ArrayRef> {
                Ok(Arc::new(self.0.finish()))
            }
        }
    };
}

builder_column!(
    /// Non-null text.
    Text, StringBuilder, &'a str, nullable = false, new = StringBuilder::new(), data_type = DataType::Utf8,
    push = |b, v| b.append_value(v)
);
builder_column!(
    /// Nullable text.
    OptText, StringBuilder, Option<&'a str>, nullable = true, new = StringBuilder::new(),
    data_type = DataType::Utf8, push = |b, v| b.append_option(v)
);
builder_column!(
    /// Non-null UTC timestamp, microseconds since the epoch.
    Ts, TimestampMicrosecondBuilder, i64, nullable = false,
    new = TimestampMicrosecondBuilder::new().with_timezone("UTC"), data_type = timestamp_type(),
    push = |b, v| b.append_value(v)
);
builder_column!(
    /// Non-null amount in kopecks (cents), stored as `Decimal128(12, 2)`.
    Money, Decimal128Builder, i64, nullable = false,
    new = Decimal128Builder::new().with_data_type(money_type()), data_type = money_type(),
    push = |b, v| b.append_value(i128::from(v))
);
builder_column!(
    /// Nullable amount in kopecks (cents).
    OptMoney, Decimal128Builder, Option<i64>, nullable = true,
    new = Decimal128Builder::new().with_data_type(money_type()), data_type = money_type(),
    push = |b, v| b.append_option(v.map(i128::from))
);
builder_column!(
    /// Non-null float.
    Float, Float64Builder, f64, nullable = false, new = Float64Builder::new(), data_type = DataType::Float64,
    push = |b, v| b.append_value(v)
);
builder_column!(
    /// Non-null boolean.
    Bool, BooleanBuilder, bool, nullable = false, new = BooleanBuilder::new(), data_type = DataType::Boolean,
    push = |b, v| b.append_value(v)
);
builder_column!(
    /// Non-null date, days since the epoch.
    Date, Date32Builder, i32, nullable = false, new = Date32Builder::new(), data_type = DataType::Date32,
    push = |b, v| b.append_value(v)
);

/// One line of a receipt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiptLine<'a> {
    pub(crate) sku: &'a str,
    pub(crate) qty: i32,
    pub(crate) unit_price_cents: i64,
}

/// The lines of a receipt: `List<Struct<sku Utf8, qty Int32, unit_price Decimal128(12,2)>>`, never null.
pub(crate) struct ReceiptLines {
    offsets: Vec<i32>,
    sku: StringBuilder,
    qty: Vec<i32>,
    unit_price: Decimal128Builder,
}

impl ReceiptLines {
    fn line_fields() -> Fields {
        Fields::from(vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("qty", DataType::Int32, false),
            Field::new("unit_price", money_type(), false),
        ])
    }

    fn item_field() -> Arc<Field> {
        Arc::new(Field::new(
            "item",
            DataType::Struct(Self::line_fields()),
            false,
        ))
    }
}

impl Column for ReceiptLines {
    type Value<'a> = &'a [ReceiptLine<'a>];

    fn new() -> Self {
        ReceiptLines {
            offsets: vec![0],
            sku: StringBuilder::new(),
            qty: Vec::new(),
            unit_price: Decimal128Builder::new().with_data_type(money_type()),
        }
    }

    fn data_type() -> DataType {
        DataType::List(Self::item_field())
    }

    fn nullable() -> bool {
        false
    }

    fn push(&mut self, lines: Self::Value<'_>) {
        for line in lines {
            self.sku.append_value(line.sku);
            self.qty.push(line.qty);
            self.unit_price
                .append_value(i128::from(line.unit_price_cents));
        }
        // Offsets are bounded by the rows of one chunk, far below i32::MAX.
        self.offsets.push(self.qty.len() as i32);
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let lines = StructArray::try_new(
            Self::line_fields(),
            vec![
                Arc::new(self.sku.finish()),
                Arc::new(Int32Array::from(std::mem::take(&mut self.qty))),
                Arc::new(self.unit_price.finish()),
            ],
            None,
        )?;
        let list = ListArray::try_new(
            Self::item_field(),
            OffsetBuffer::new(offsets.into()),
            Arc::new(lines),
            None,
        )?;
        Ok(Arc::new(list))
    }
}

/// Declares every table: the [`Table`] enum, and per table a row struct and a column collector whose field
/// names are the column names.
macro_rules! tables {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, truth = $truth:literal, $row:ident, $columns:ident {
            $($field:ident : $kind:ty),+ $(,)?
        }
    )+) => {
        /// The tables `phygital generate` writes, each into its own folder.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Table { $($(#[$doc])* $variant,)+ }

        impl Table {
            pub const ALL: &'static [Table] = &[$(Table::$variant,)+];

            /// The table (and folder) name.
            pub fn name(self) -> &'static str {
                match self { $(Table::$variant => $name,)+ }
            }

            /// Ground truth for measuring quality; never an input of the pipeline.
            pub fn is_ground_truth(self) -> bool {
                match self { $(Table::$variant => $truth,)+ }
            }

            pub fn schema(self) -> SchemaRef {
                match self {
                    $(Table::$variant => Arc::new(Schema::new(vec![
                        $(Field::new(stringify!($field), <$kind as Column>::data_type(), <$kind as Column>::nullable()),)+
                    ])),)+
                }
            }
        }

        $(
            #[derive(Debug)]
            pub(crate) struct $row<'a> { $(pub(crate) $field: <$kind as Column>::Value<'a>,)+ }

            pub(crate) struct $columns { $($field: $kind,)+ }

            impl $columns {
                pub(crate) fn new() -> Self {
                    $columns { $($field: <$kind as Column>::new(),)+ }
                }

                pub(crate) fn push(&mut self, row: $row<'_>) {
                    $(self.$field.push(row.$field);)+
                }

                /// The rows collected so far as a batch; the collector starts over empty.
                pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
                    let columns = vec![$(self.$field.finish()?,)+];
                    Ok(RecordBatch::try_new(Table::$variant.schema(), columns)?)
                }
            }
        )+
    };
}

tables! {
    /// Sessions and orders on the web shop.
    WebEvents = "web_events", truth = false, WebEventRow, WebEventsColumns {
        event_id: Text,
        event_ts: Ts,
        anonymous_id: Text,
        user_id: OptText,
        email: OptText,
        event_name: Text,
        page_url: Text,
        utm_source: OptText,
        utm_medium: OptText,
        utm_campaign: OptText,
        referrer: OptText,
        order_id: OptText,
        revenue: OptMoney,
    }
    /// Mobile-app events and orders.
    AppEvents = "app_events", truth = false, AppEventRow, AppEventsColumns {
        event_id: Text,
        event_ts: Ts,
        device_id: Text,
        app_account_id: OptText,
        event_name: Text,
        campaign: OptText,
        order_id: OptText,
        revenue: OptMoney,
    }
    /// Store purchases as the till recorded them.
    PosReceipts = "pos_receipts", truth = false, PosReceiptRow, PosReceiptsColumns {
        receipt_id: Text,
        receipt_ts: Ts,
        store_id: Text,
        loyalty_card: OptText,
        phone_raw: OptText,
        amount: Money,
        currency: Text,
        items: ReceiptLines,
    }
    /// Loyalty programme members.
    LoyaltyAccounts = "loyalty_accounts", truth = false, LoyaltyAccountRow, LoyaltyAccountsColumns {
        loyalty_card: Text,
        phone_raw: OptText,
        email_raw: OptText,
        app_account_id: OptText,
        registered_ts: Ts,
        store_id: OptText,
    }
    /// Marketing touches of every channel, online and offline.
    MarketingTouches = "marketing_touches", truth = false, MarketingTouchRow, MarketingTouchesColumns {
        touch_id: Text,
        touch_ts: Ts,
        channel: Text,
        campaign: OptText,
        email: OptText,
        phone_raw: OptText,
        app_account_id: OptText,
        anonymous_id: OptText,
        cost: Money,
    }
    /// QR codes scanned in stores, with the phone's browser cookie or the app account.
    QrScans = "qr_scans", truth = false, QrScanRow, QrScansColumns {
        scan_id: Text,
        scan_ts: Ts,
        store_id: Text,
        anonymous_id: OptText,
        app_account_id: OptText,
        loyalty_card: OptText,
    }
    /// CRM holdout: 'control' customers receive no CRM message, 'target' ones do.
    CrmHoldout = "crm_holdout", truth = false, CrmHoldoutRow, CrmHoldoutColumns {
        customer_key: Text,
        key_type: Text,
        group: Text,
    }
    /// The stores, with their own phone numbers (which cashiers type for customers who refuse to give one).
    Stores = "stores", truth = false, StoreRow, StoresColumns {
        store_id: Text,
        store_name: Text,
        city: Text,
        phone_raw: Text,
        opened_date: Date,
    }
    /// Ground truth: which person owns each identifier (canonical form).
    TruthIdentifiers = "truth_identifiers", truth = true, TruthIdentifierRow, TruthIdentifiersColumns {
        id_type: Text,
        id_value: Text,
        person_id: Text,
    }
    /// Ground truth: junk identifiers the generator may inject (canonical form); owned by nobody.
    TruthJunk = "truth_junk", truth = true, TruthJunkRow, TruthJunkColumns {
        id_type: Text,
        id_value: Text,
        kind: Text,
    }
    /// Ground truth: the channel effects used to simulate conversions.
    TruthChannelEffects = "truth_channel_effects", truth = true, TruthChannelEffectRow, TruthChannelEffectsColumns {
        channel: Text,
        effect: Float,
        exposure_probability: Float,
        cost_per_touch: Money,
    }
    /// Ground truth: the true CRM effect, from the model's expectations.
    TruthCrmEffect = "truth_crm_effect", truth = true, TruthCrmEffectRow, TruthCrmEffectColumns {
        metric: Text,
        value: Float,
    }
    /// Ground truth: every simulated person, their segment and CRM group.
    TruthPeople = "truth_people", truth = true, TruthPersonRow, TruthPeopleColumns {
        person_id: Text,
        segment: Text,
        crm_group: OptText,
        hard_to_link: Bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Table::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }

    #[test]
    fn schemas_follow_the_design() {
        let cols = |t: Table| -> Vec<String> {
            t.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        assert_eq!(
            cols(Table::WebEvents),
            [
                "event_id",
                "event_ts",
                "anonymous_id",
                "user_id",
                "email",
                "event_name",
                "page_url",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "referrer",
                "order_id",
                "revenue"
            ]
        );
        assert_eq!(
            cols(Table::MarketingTouches),
            [
                "touch_id",
                "touch_ts",
                "channel",
                "campaign",
                "email",
                "phone_raw",
                "app_account_id",
                "anonymous_id",
                "cost"
            ]
        );
        assert_eq!(
            cols(Table::CrmHoldout),
            ["customer_key", "key_type", "group"]
        );
        assert_eq!(
            cols(Table::TruthIdentifiers),
            ["id_type", "id_value", "person_id"]
        );
        let receipts = Table::PosReceipts.schema();
        assert_eq!(
            receipts.field_with_name("amount").unwrap().data_type(),
            &DataType::Decimal128(12, 2)
        );
        assert_eq!(
            receipts.field_with_name("receipt_ts").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let DataType::List(item) = receipts.field_with_name("items").unwrap().data_type() else {
            panic!("items is not a list");
        };
        let DataType::Struct(fields) = item.data_type() else {
            panic!("items are not structs");
        };
        assert_eq!(
            fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
            ["sku", "qty", "unit_price"]
        );
        assert!(!item.is_nullable());
        assert!(Table::TruthJunk.is_ground_truth() && !Table::Stores.is_ground_truth());
    }

    #[test]
    fn collectors_produce_batches_matching_the_schema() {
        let mut receipts = PosReceiptsColumns::new();
        let lines = [
            ReceiptLine {
                sku: "SKU-000001",
                qty: 2,
                unit_price_cents: 14_900,
            },
            ReceiptLine {
                sku: "SKU-000002",
                qty: 1,
                unit_price_cents: 99_900,
            },
        ];
        receipts.push(PosReceiptRow {
            receipt_id: "R1",
            receipt_ts: 1_767_225_600_000_000,
            store_id: "S0001",
            loyalty_card: None,
            phone_raw: Some("8 (916) 123-45-67"),
            amount: 129_700,
            currency: "RUB",
            items: &lines,
        });
        receipts.push(PosReceiptRow {
            receipt_id: "R2",
            receipt_ts: 1_767_225_600_000_001,
            store_id: "S0001",
            loyalty_card: Some("2000000000015"),
            phone_raw: None,
            amount: 14_900,
            currency: "RUB",
            items: &lines[..1],
        });
        let batch = receipts.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), Table::PosReceipts.schema());
        let items = batch
            .column(7)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        assert_eq!(items.value_length(0), 2);
        assert_eq!(items.value_length(1), 1);
        // The collector starts over.
        assert_eq!(receipts.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn empty_collectors_build_empty_batches() {
        // A table can end up without rows (tiny runs); its file must still carry the schema.
        assert_eq!(WebEventsColumns::new().finish().unwrap().num_rows(), 0);
        assert_eq!(TruthPeopleColumns::new().finish().unwrap().num_rows(), 0);
        assert_eq!(StoresColumns::new().finish().unwrap().num_columns(), 5);
    }
}
